package firmware

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/srekit/srekit/firmware/cab"
)

// Package is firmware in srekit's one format: a metainfo.xml describing a
// component and its release, and the files it names. It is read from an LVFS
// cabinet or from a plain directory holding the same files (the form for BMC
// and switch images that vendors ship bare).
type Package struct {
	Source    string // the path it was read from
	Cabinet   bool   // read from a cabinet (else a directory)
	Metainfo  string // name of the metainfo file
	Component *Component
	Files     map[string][]byte
}

// DefaultPackageLimit caps how much a package may hold once decompressed.
const DefaultPackageLimit = cab.DefaultLimit

// OpenPackage reads a cabinet file or a package directory, parses its
// metainfo and verifies the content checksums. limit caps the decompressed
// size (DefaultPackageLimit when <= 0). Nothing is written anywhere.
func OpenPackage(path string, limit int64) (*Package, error) {
	if limit <= 0 {
		limit = DefaultPackageLimit
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	p := &Package{Source: path, Files: map[string][]byte{}}
	if st.IsDir() {
		if err := p.readDir(path, limit); err != nil {
			return nil, err
		}
	} else {
		if st.Size() > limit {
			return nil, fmt.Errorf("%s: %d bytes is over the limit of %d", path, st.Size(), limit)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		files, err := cab.Read(data, limit)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		p.Cabinet = true
		for _, f := range files {
			p.Files[f.Name] = f.Data
		}
	}
	if err := p.load(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// ReadPackage reads a cabinet held in memory (an upload), like OpenPackage.
func ReadPackage(name string, data []byte, limit int64) (*Package, error) {
	files, err := cab.Read(data, limit)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &Package{Source: name, Cabinet: true, Files: map[string][]byte{}}
	for _, f := range files {
		p.Files[f.Name] = f.Data
	}
	if err := p.load(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

func (p *Package) readDir(dir string, limit int64) error {
	var total int64
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !d.Type().IsRegular() {
			return nil // directories, and symlinks that could point anywhere
		}
		rel, _ := filepath.Rel(dir, path)
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		if total > limit {
			return fmt.Errorf("%s: package directory is over the limit of %d bytes", dir, limit)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		p.Files[filepath.ToSlash(rel)] = b
		return nil
	})
}

func (p *Package) load() error {
	var metas []string
	for name := range p.Files {
		if strings.HasSuffix(name, ".metainfo.xml") {
			metas = append(metas, name)
		}
	}
	sort.Strings(metas)
	switch len(metas) {
	case 0:
		return errors.New("no *.metainfo.xml in the package")
	case 1:
	default:
		return fmt.Errorf("%d metainfo files (%s): srekit reads one component per package", len(metas), strings.Join(metas, ", "))
	}
	p.Metainfo = metas[0]
	c, err := ParseMetainfo(p.Files[p.Metainfo])
	if err != nil {
		return fmt.Errorf("%s: %w", p.Metainfo, err)
	}
	p.Component = c
	return p.Verify()
}

// Verify checks every content checksum of every release against the files of
// the package. A checksum naming a file the package lacks is an error too: a
// package must not promise what it does not carry.
func (p *Package) Verify() error {
	for _, r := range p.Component.Releases {
		for _, s := range r.Checksums {
			if s.Target == "container" || s.Target == "signature" || s.Target == "device" {
				continue
			}
			name := s.Filename
			if name == "" {
				var err error
				if name, err = p.PayloadName(); err != nil {
					return fmt.Errorf("release %s: checksum without filename: %w", r.Version, err)
				}
			}
			data, ok := p.Files[name]
			if !ok {
				return fmt.Errorf("release %s: checksum names %q, which is not in the package", r.Version, name)
			}
			got, _ := Digest(s.Type, data)
			if got != s.Value {
				return fmt.Errorf("release %s: %s checksum mismatch for %s: metainfo says %s, file has %s", r.Version, s.Type, name, s.Value, got)
			}
		}
	}
	return nil
}

// PayloadName is the firmware image: the file the latest release's checksum
// names, or else the only file that is not metadata.
func (p *Package) PayloadName() (string, error) {
	if r, ok := p.Component.Latest(); ok {
		for _, s := range r.Checksums {
			if s.Filename != "" && (s.Target == "" || s.Target == "content") {
				if _, ok := p.Files[s.Filename]; ok {
					return s.Filename, nil
				}
			}
		}
	}
	var cands []string
	for name := range p.Files {
		if name == p.Metainfo || strings.HasSuffix(name, ".sig") || strings.HasSuffix(name, ".jcat") || strings.HasSuffix(name, ".asc") {
			continue
		}
		cands = append(cands, name)
	}
	if len(cands) != 1 {
		sort.Strings(cands)
		return "", fmt.Errorf("cannot tell the payload among %d files %v", len(cands), cands)
	}
	return cands[0], nil
}

// Payload returns the firmware image bytes.
func (p *Package) Payload() (string, []byte, error) {
	name, err := p.PayloadName()
	if err != nil {
		return "", nil, err
	}
	return name, p.Files[name], nil
}

// SignatureName is where a package's detached signature lives: beside a
// cabinet as FILE.sig, inside a directory as METAINFO.sig.
func (p *Package) SignatureName() string {
	if p.Cabinet {
		return p.Source + ".sig"
	}
	return filepath.Join(p.Source, p.Metainfo+".sig")
}

// VerifySignature checks the package's detached Ed25519 signature (base64)
// over its metainfo.xml against a list of trusted public keys. The metainfo
// pins every file by checksum and Verify checks those, so signing it signs
// the whole package; the same signature serves a cabinet and a directory.
func (p *Package) VerifySignature(keys []ed25519.PublicKey) error {
	if len(keys) == 0 {
		return errors.New("no trusted keys configured")
	}
	raw, err := os.ReadFile(p.SignatureName())
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature %s is not a base64 Ed25519 signature", p.SignatureName())
	}
	for _, k := range keys {
		if ed25519.Verify(k, p.Files[p.Metainfo], sig) {
			return nil
		}
	}
	return fmt.Errorf("signature %s does not verify with any of the %d trusted keys", p.SignatureName(), len(keys))
}

// ParseKeys reads a key list: one base64 Ed25519 public key per line, '#' comments.
func ParseKeys(r io.Reader) ([]ed25519.PublicKey, error) {
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return nil, err
	}
	var keys []ed25519.PublicKey
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = strings.TrimSpace(line[:j])
		}
		if line == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("key list line %d: not a base64 Ed25519 public key", i+1)
		}
		keys = append(keys, ed25519.PublicKey(k))
	}
	return keys, nil
}

// Sign returns the base64 detached signature of the package's metainfo.
func (p *Package) Sign(key ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(ed25519.Sign(key, p.Files[p.Metainfo]))
}

// PackSpec is the small YAML description `srekit firmware pack` turns into a
// cabinet. See docs/firmware.md for an example.
type PackSpec struct {
	ID            string   `yaml:"id"`
	Name          string   `yaml:"name"`
	Summary       string   `yaml:"summary"`
	Developer     string   `yaml:"developer"`
	GUIDs         []string `yaml:"guids"`
	VersionFormat string   `yaml:"version_format"`
	Protocol      string   `yaml:"protocol"`
	Category      string   `yaml:"category"`
	Payload       string   `yaml:"payload"` // path, relative to the spec file
	Release       struct {
		Version         string   `yaml:"version"`
		Date            string   `yaml:"date"`
		Urgency         string   `yaml:"urgency"`
		Description     string   `yaml:"description"`
		InstallDuration int      `yaml:"install_duration"`
		Issues          []string `yaml:"issues"` // CVE-... or TYPE:ID (dell:DSA-2024-001)
	} `yaml:"release"`
	Requires []struct {
		Kind    string `yaml:"kind"`
		Value   string `yaml:"value"`
		Compare string `yaml:"compare"`
		Version string `yaml:"version"`
		Depth   int    `yaml:"depth"`
	} `yaml:"requires"`
}

// ParsePackSpec reads and validates a pack description.
func ParsePackSpec(data []byte) (*PackSpec, error) {
	var s PackSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("bad pack description: %w", err)
	}
	if s.ID == "" || s.Release.Version == "" || s.Payload == "" {
		return nil, errors.New("pack description needs id, payload and release.version")
	}
	return &s, nil
}

// Component builds the component a spec describes for a payload, with sha1
// and sha256 content checksums (fwupd checks them on load).
func (s *PackSpec) Component(payloadName string, payload []byte) (*Component, error) {
	c := &Component{ID: s.ID, Name: s.Name, Summary: s.Summary, Developer: s.Developer, Protocol: s.Protocol, VersionFormat: FormatPlain}
	if c.Name == "" {
		c.Name = s.ID
	}
	if c.Summary == "" {
		c.Summary = "Firmware for " + c.Name
	}
	if c.Developer == "" {
		c.Developer = "Unknown"
	}
	if s.Category != "" {
		c.Categories = []string{s.Category}
	}
	if s.VersionFormat != "" {
		f, err := ParseFormat(s.VersionFormat)
		if err != nil {
			return nil, err
		}
		c.VersionFormat = f
	} else {
		c.VersionFormat = Guess(s.Release.Version)
	}
	if _, err := Parse(s.Release.Version, c.VersionFormat); err != nil {
		return nil, fmt.Errorf("release.version: %w", err)
	}
	for _, g := range s.GUIDs {
		c.Provides = append(c.Provides, strings.ToLower(strings.TrimSpace(g)))
	}
	if len(c.Provides) == 0 {
		return nil, errors.New("pack description needs at least one device GUID (guids)")
	}
	r := Release{Version: s.Release.Version, Urgency: s.Release.Urgency, Description: s.Release.Description, InstallDuration: s.Release.InstallDuration}
	if s.Release.Date != "" {
		d, err := time.Parse("2006-01-02", s.Release.Date)
		if err != nil {
			return nil, fmt.Errorf("release.date %q: want YYYY-MM-DD", s.Release.Date)
		}
		r.Date = d
	}
	for _, is := range s.Release.Issues {
		typ, id := "cve", is
		if i := strings.IndexByte(is, ':'); i > 0 && !strings.HasPrefix(strings.ToUpper(is), "CVE-") {
			typ, id = is[:i], is[i+1:]
		}
		r.Issues = append(r.Issues, Issue{Type: typ, ID: id})
	}
	for _, typ := range []string{"sha1", "sha256"} {
		d, _ := Digest(typ, payload)
		r.Checksums = append(r.Checksums, Checksum{Filename: payloadName, Target: "content", Type: typ, Value: d})
	}
	c.Releases = []Release{r}
	for _, q := range s.Requires {
		c.Requires = append(c.Requires, Requirement{Kind: q.Kind, Value: q.Value, Compare: q.Compare, Version: q.Version, Depth: q.Depth})
	}
	// Round-trip through the parser so pack never writes what inspect rejects.
	back, err := ParseMetainfo(MarshalMetainfo(c))
	if err != nil {
		return nil, err
	}
	return back, nil
}

// Pack writes a cabinet (MSZIP) holding the payload and the metainfo for it.
func Pack(w io.Writer, c *Component, payloadName string, payload []byte) error {
	now := time.Now().UTC()
	base := strings.TrimSuffix(payloadName, filepath.Ext(payloadName))
	files := []cab.File{
		{Name: payloadName, Data: payload, Modified: now},
		{Name: base + ".metainfo.xml", Data: MarshalMetainfo(c), Modified: now},
	}
	return cab.Write(w, files, cab.MSZIP)
}
