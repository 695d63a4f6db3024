package firmware

import (
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Component is what a metainfo.xml file describes: one updatable piece of
// firmware, the devices it applies to, its releases and what it requires.
// The shape is the AppStream/LVFS one so that files from vendors and from
// the LVFS read without conversion.
type Component struct {
	ID        string // reverse-DNS id: com.example.Bmc.firmware
	Name      string
	Summary   string
	Developer string
	// Provides lists the device GUIDs (or other ids) the firmware is flashed onto.
	Provides []string
	// VersionFormat is LVFS::VersionFormat; plain when absent.
	VersionFormat Format
	// Protocol is LVFS::UpdateProtocol (org.uefi.capsule, org.dmtf.redfish, ...).
	Protocol   string
	Categories []string
	Releases   []Release
	Requires   []Requirement
}

// Release is one version of a component.
type Release struct {
	Version         string
	Date            time.Time
	Urgency         string // low, medium, high, critical
	Description     string
	InstallDuration int // seconds
	Checksums       []Checksum
	Issues          []Issue
}

// Checksum is a digest of a file of the package (target "content") or of
// the package itself (target "container").
type Checksum struct {
	Filename string
	Target   string
	Type     string // sha1, sha256, sha512, md5
	Value    string // lower-case hex
}

// Issue is a problem a release fixes: a CVE or a vendor advisory.
type Issue struct {
	Type string // cve, dell, lenovo, intel, vince, ...
	ID   string
	URL  string
}

// Requirement is one condition in <requires>: on another component's
// version (id), on the device's current firmware (firmware), on the
// hardware (hardware: GUIDs joined by '|') or on the client (client).
type Requirement struct {
	Kind    string // id, firmware, hardware, client
	Value   string // the element text: component id, firmware name ("bootloader"), GUIDs, feature
	Compare string // eq ne lt le gt ge glob regex (empty for hardware and client)
	Version string
	Depth   int // for firmware requirements on a parent (depth="1") or child (-1)
}

// Compares are the comparisons fwupd defines for requirements.
var Compares = []string{"eq", "ne", "lt", "le", "gt", "ge", "glob", "regex"}

// Latest is the newest release by version, falling back to document order
// when versions do not compare.
func (c *Component) Latest() (Release, bool) {
	if len(c.Releases) == 0 {
		return Release{}, false
	}
	best := c.Releases[0]
	for _, r := range c.Releases[1:] {
		a, errA := Parse(r.Version, c.VersionFormat)
		b, errB := Parse(best.Version, c.VersionFormat)
		if errA == nil && errB == nil && Less(b, a) {
			best = r
		}
	}
	return best, true
}

// CVEs lists the CVE ids a release fixes.
func (r Release) CVEs() []string {
	var out []string
	for _, i := range r.Issues {
		if strings.EqualFold(i.Type, "cve") {
			out = append(out, i.ID)
		}
	}
	return out
}

// xml shapes of metainfo.xml.
type xComponent struct {
	XMLName     xml.Name `xml:"component"`
	Type        string   `xml:"type,attr"`
	ID          string   `xml:"id"`
	Name        string   `xml:"name"`
	Summary     string   `xml:"summary"`
	Description *xInner  `xml:"description"`
	Provides    struct {
		Firmware []struct {
			Type  string `xml:"type,attr"`
			Value string `xml:",chardata"`
		} `xml:"firmware"`
	} `xml:"provides"`
	MetadataLicense string `xml:"metadata_license"`
	ProjectLicense  string `xml:"project_license"`
	Developer       string `xml:"developer_name"`
	Releases        struct {
		Release []xRelease `xml:"release"`
	} `xml:"releases"`
	Requires *struct {
		Items []xReq `xml:",any"`
	} `xml:"requires"`
	Custom struct {
		Values []struct {
			Key   string `xml:"key,attr"`
			Value string `xml:",chardata"`
		} `xml:"value"`
	} `xml:"custom"`
	Categories struct {
		Category []string `xml:"category"`
	} `xml:"categories"`
}

type xInner struct {
	Inner string `xml:",innerxml"`
}

type xRelease struct {
	Version         string     `xml:"version,attr"`
	Date            string     `xml:"date,attr"`
	Timestamp       string     `xml:"timestamp,attr"`
	Urgency         string     `xml:"urgency,attr"`
	InstallDuration string     `xml:"install_duration,attr"`
	Checksums       []xSum     `xml:"checksum"`
	Description     *xInner    `xml:"description"`
	Issues          []xIssue   `xml:"issues>issue"`
	Artifacts       []xArtifct `xml:"artifacts>artifact"`
}

type xSum struct {
	Type     string `xml:"type,attr"`
	Filename string `xml:"filename,attr"`
	Target   string `xml:"target,attr"`
	Value    string `xml:",chardata"`
}

type xArtifct struct {
	Type      string   `xml:"type,attr"`
	Filename  string   `xml:"filename"`
	Checksums []xSum   `xml:"checksum"`
	Location  []string `xml:"location"`
}

type xIssue struct {
	Type  string `xml:"type,attr"`
	URL   string `xml:"url,attr"`
	Value string `xml:",chardata"`
}

type xReq struct {
	XMLName xml.Name
	Compare string `xml:"compare,attr"`
	Version string `xml:"version,attr"`
	Depth   string `xml:"depth,attr"`
	Value   string `xml:",chardata"`
}

// MaxMetainfoSize caps the metainfo.xml accepted, so a hostile package cannot
// make the parser allocate without bound.
const MaxMetainfoSize = 4 << 20

var tagRe = regexp.MustCompile(`<[^>]*>`)

// ParseMetainfo reads a metainfo.xml document and checks what srekit relies
// on: a component id, at least one release with a version valid in the
// declared format, known checksum types and requirement comparisons.
func ParseMetainfo(data []byte) (*Component, error) {
	if len(data) > MaxMetainfoSize {
		return nil, fmt.Errorf("metainfo of %d bytes is over the %d byte limit", len(data), MaxMetainfoSize)
	}
	var x xComponent
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	dec.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		if strings.EqualFold(label, "utf-8") || strings.EqualFold(label, "us-ascii") {
			return r, nil
		}
		return nil, fmt.Errorf("unsupported encoding %q (want UTF-8)", label)
	}
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("bad metainfo XML: %w", err)
	}
	if x.Type != "" && x.Type != "firmware" {
		return nil, fmt.Errorf("metainfo component type is %q, want firmware", x.Type)
	}
	c := &Component{ID: strings.TrimSpace(x.ID), Name: strings.TrimSpace(x.Name), Summary: strings.TrimSpace(x.Summary),
		Developer: strings.TrimSpace(x.Developer), VersionFormat: FormatPlain}
	if c.ID == "" {
		return nil, errors.New("metainfo has no component <id>")
	}
	for _, p := range x.Provides.Firmware {
		if v := strings.TrimSpace(p.Value); v != "" {
			c.Provides = append(c.Provides, strings.ToLower(v))
		}
	}
	for _, cv := range x.Custom.Values {
		switch cv.Key {
		case "LVFS::VersionFormat":
			f, err := ParseFormat(cv.Value)
			if err != nil {
				return nil, fmt.Errorf("metainfo LVFS::VersionFormat: %w", err)
			}
			c.VersionFormat = f
		case "LVFS::UpdateProtocol":
			c.Protocol = strings.TrimSpace(cv.Value)
		}
	}
	for _, cat := range x.Categories.Category {
		c.Categories = append(c.Categories, strings.TrimSpace(cat))
	}
	if len(x.Releases.Release) == 0 {
		return nil, errors.New("metainfo has no <release>")
	}
	for i, xr := range x.Releases.Release {
		r, err := parseRelease(xr, c.VersionFormat)
		if err != nil {
			return nil, fmt.Errorf("metainfo release %d: %w", i+1, err)
		}
		c.Releases = append(c.Releases, r)
	}
	if x.Requires != nil {
		for _, xq := range x.Requires.Items {
			q := Requirement{Kind: xq.XMLName.Local, Value: strings.TrimSpace(xq.Value), Compare: xq.Compare, Version: strings.TrimSpace(xq.Version)}
			if xq.Depth != "" {
				d, err := strconv.Atoi(xq.Depth)
				if err != nil {
					return nil, fmt.Errorf("metainfo requirement %s: bad depth %q", q.Kind, xq.Depth)
				}
				q.Depth = d
			}
			if err := q.validate(); err != nil {
				return nil, fmt.Errorf("metainfo requirement: %w", err)
			}
			c.Requires = append(c.Requires, q)
		}
	}
	return c, nil
}

func parseRelease(xr xRelease, f Format) (Release, error) {
	r := Release{Version: strings.TrimSpace(xr.Version), Urgency: strings.ToLower(xr.Urgency)}
	if r.Version == "" {
		return r, errors.New("no version")
	}
	if _, err := Parse(r.Version, f); err != nil {
		return r, err
	}
	switch {
	case xr.Date != "":
		d, err := time.Parse("2006-01-02", strings.TrimSpace(xr.Date))
		if err != nil {
			return r, fmt.Errorf("version %s: bad date %q (want YYYY-MM-DD)", r.Version, xr.Date)
		}
		r.Date = d
	case xr.Timestamp != "":
		n, err := strconv.ParseInt(strings.TrimSpace(xr.Timestamp), 10, 64)
		if err != nil {
			return r, fmt.Errorf("version %s: bad timestamp %q", r.Version, xr.Timestamp)
		}
		r.Date = time.Unix(n, 0).UTC()
	}
	switch r.Urgency {
	case "", "low", "medium", "high", "critical":
	default:
		return r, fmt.Errorf("version %s: unknown urgency %q", r.Version, xr.Urgency)
	}
	if xr.InstallDuration != "" {
		n, err := strconv.Atoi(xr.InstallDuration)
		if err != nil || n < 0 {
			return r, fmt.Errorf("version %s: bad install_duration %q", r.Version, xr.InstallDuration)
		}
		r.InstallDuration = n
	}
	if xr.Description != nil {
		r.Description = strings.Join(strings.Fields(tagRe.ReplaceAllString(xr.Description.Inner, " ")), " ")
	}
	sums := xr.Checksums
	for _, a := range xr.Artifacts {
		for _, s := range a.Checksums {
			if s.Filename == "" {
				s.Filename = a.Filename
			}
			sums = append(sums, s)
		}
	}
	for _, s := range sums {
		cs := Checksum{Filename: strings.TrimSpace(s.Filename), Target: s.Target, Type: strings.ToLower(s.Type), Value: strings.ToLower(strings.TrimSpace(s.Value))}
		if cs.Type == "" {
			cs.Type = "sha1"
		}
		if newHash(cs.Type) == nil {
			return r, fmt.Errorf("version %s: unknown checksum type %q", r.Version, s.Type)
		}
		if _, err := hex.DecodeString(cs.Value); err != nil || len(cs.Value) != 2*newHash(cs.Type).Size() {
			return r, fmt.Errorf("version %s: checksum %q is not a %s digest", r.Version, cs.Value, cs.Type)
		}
		r.Checksums = append(r.Checksums, cs)
	}
	for _, xi := range xr.Issues {
		id := strings.TrimSpace(xi.Value)
		if id == "" {
			continue
		}
		typ := strings.ToLower(xi.Type)
		if typ == "" && strings.HasPrefix(strings.ToUpper(id), "CVE-") {
			typ = "cve"
		}
		if typ == "cve" && !cveRe.MatchString(id) {
			return r, fmt.Errorf("version %s: %q is not a CVE id", r.Version, id)
		}
		r.Issues = append(r.Issues, Issue{Type: typ, ID: id, URL: xi.URL})
	}
	return r, nil
}

var cveRe = regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)

func newHash(typ string) hash.Hash {
	switch typ {
	case "sha1":
		return sha1.New()
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	case "md5":
		return md5.New()
	}
	return nil
}

// Digest returns the hex digest of data with the named algorithm.
func Digest(typ string, data []byte) (string, error) {
	h := newHash(typ)
	if h == nil {
		return "", fmt.Errorf("unknown checksum type %q", typ)
	}
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func (q Requirement) validate() error {
	switch q.Kind {
	case "id", "firmware":
		if q.Compare == "" && q.Version == "" {
			return nil
		}
		if q.Version == "" {
			return fmt.Errorf("%s %q: compare=%q without a version", q.Kind, q.Value, q.Compare)
		}
		if !validCompare(q.Compare) {
			return fmt.Errorf("%s %q: unknown compare %q (want one of %s)", q.Kind, q.Value, q.Compare, strings.Join(Compares, " "))
		}
		if q.Compare == "regex" {
			if _, err := regexp.Compile(q.Version); err != nil {
				return fmt.Errorf("%s %q: bad regex: %w", q.Kind, q.Value, err)
			}
		}
		if q.Compare == "glob" {
			if _, err := path.Match(q.Version, ""); err != nil {
				return fmt.Errorf("%s %q: bad glob %q", q.Kind, q.Value, q.Version)
			}
		}
	case "hardware":
		if q.Value == "" {
			return errors.New("hardware requirement with no GUID")
		}
	case "client":
		if q.Value == "" {
			return errors.New("client requirement with no feature")
		}
	default:
		return fmt.Errorf("unknown requirement <%s>", q.Kind)
	}
	return nil
}

func validCompare(c string) bool {
	for _, k := range Compares {
		if c == k {
			return true
		}
	}
	return false
}

// Match evaluates a version requirement against the version a host has,
// read in format f. eq/ne/lt/le/gt/ge use Compare (and fail with
// ErrIncomparable rather than guess); glob and regex match the text.
func (q Requirement) Match(have string, f Format) (bool, error) {
	switch q.Compare {
	case "":
		return true, nil
	case "glob":
		return path.Match(q.Version, have)
	case "regex":
		re, err := regexp.Compile(q.Version)
		if err != nil {
			return false, err
		}
		return re.MatchString(have), nil
	}
	if !validCompare(q.Compare) {
		return false, fmt.Errorf("unknown compare %q", q.Compare)
	}
	hv, err := Parse(have, f)
	if err != nil {
		if hv, err = ParseGuess(have); err != nil {
			return false, err
		}
	}
	wv, err := Parse(q.Version, f)
	if err != nil {
		if wv, err = ParseGuess(q.Version); err != nil {
			return false, err
		}
	}
	c, err := Compare(hv, wv)
	if err != nil {
		// Equality is still known for incomparable versions.
		if q.Compare == "eq" || q.Compare == "ne" {
			eq := hv.Raw == wv.Raw
			return eq == (q.Compare == "eq"), nil
		}
		return false, err
	}
	switch q.Compare {
	case "eq":
		return c == 0, nil
	case "ne":
		return c != 0, nil
	case "lt":
		return c < 0, nil
	case "le":
		return c <= 0, nil
	case "gt":
		return c > 0, nil
	}
	return c >= 0, nil // ge
}

// MarshalMetainfo writes c as a metainfo.xml document that fwupd and the
// LVFS accept.
func MarshalMetainfo(c *Component) []byte {
	var b bytes.Buffer
	esc := func(s string) string {
		var e bytes.Buffer
		xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<component type=\"firmware\">\n")
	fmt.Fprintf(&b, "  <id>%s</id>\n  <name>%s</name>\n  <summary>%s</summary>\n", esc(c.ID), esc(c.Name), esc(c.Summary))
	fmt.Fprintf(&b, "  <description><p>%s</p></description>\n", esc(c.Summary))
	b.WriteString("  <provides>\n")
	for _, g := range c.Provides {
		fmt.Fprintf(&b, "    <firmware type=\"flashed\">%s</firmware>\n", esc(g))
	}
	b.WriteString("  </provides>\n  <metadata_license>CC0-1.0</metadata_license>\n  <project_license>proprietary</project_license>\n")
	fmt.Fprintf(&b, "  <developer_name>%s</developer_name>\n  <releases>\n", esc(c.Developer))
	for _, r := range c.Releases {
		fmt.Fprintf(&b, "    <release version=\"%s\"", esc(r.Version))
		if !r.Date.IsZero() {
			fmt.Fprintf(&b, " date=\"%s\"", r.Date.Format("2006-01-02"))
		}
		if r.Urgency != "" {
			fmt.Fprintf(&b, " urgency=\"%s\"", esc(r.Urgency))
		}
		if r.InstallDuration > 0 {
			fmt.Fprintf(&b, " install_duration=\"%d\"", r.InstallDuration)
		}
		b.WriteString(">\n")
		for _, s := range r.Checksums {
			fmt.Fprintf(&b, "      <checksum type=\"%s\" filename=\"%s\" target=\"%s\">%s</checksum>\n", esc(s.Type), esc(s.Filename), esc(s.Target), esc(s.Value))
		}
		desc := r.Description
		if desc == "" {
			desc = "Release " + r.Version + "."
		}
		fmt.Fprintf(&b, "      <description><p>%s</p></description>\n", esc(desc))
		if len(r.Issues) > 0 {
			b.WriteString("      <issues>\n")
			for _, i := range r.Issues {
				fmt.Fprintf(&b, "        <issue type=\"%s\">%s</issue>\n", esc(i.Type), esc(i.ID))
			}
			b.WriteString("      </issues>\n")
		}
		b.WriteString("    </release>\n")
	}
	b.WriteString("  </releases>\n")
	if len(c.Requires) > 0 {
		b.WriteString("  <requires>\n")
		for _, q := range c.Requires {
			fmt.Fprintf(&b, "    <%s", q.Kind)
			if q.Compare != "" {
				fmt.Fprintf(&b, " compare=\"%s\" version=\"%s\"", esc(q.Compare), esc(q.Version))
			}
			if q.Depth != 0 {
				fmt.Fprintf(&b, " depth=\"%d\"", q.Depth)
			}
			if q.Value == "" {
				b.WriteString("/>\n")
			} else {
				fmt.Fprintf(&b, ">%s</%s>\n", esc(q.Value), q.Kind)
			}
		}
		b.WriteString("  </requires>\n")
	}
	if len(c.Categories) > 0 {
		b.WriteString("  <categories>\n")
		for _, cat := range c.Categories {
			fmt.Fprintf(&b, "    <category>%s</category>\n", esc(cat))
		}
		b.WriteString("  </categories>\n")
	}
	b.WriteString("  <custom>\n")
	fmt.Fprintf(&b, "    <value key=\"LVFS::VersionFormat\">%s</value>\n", esc(string(c.VersionFormat)))
	if c.Protocol != "" {
		fmt.Fprintf(&b, "    <value key=\"LVFS::UpdateProtocol\">%s</value>\n", esc(c.Protocol))
	}
	b.WriteString("  </custom>\n</component>\n")
	return b.Bytes()
}
