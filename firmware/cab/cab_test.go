package cab

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

func sample() []File {
	r := rand.New(rand.NewSource(1))
	random := make([]byte, 100_000) // incompressible, spans several blocks
	r.Read(random)
	text := bytes.Repeat([]byte("firmware payload line\n"), 5000)
	mod := time.Date(2024, 5, 6, 7, 8, 10, 0, time.UTC)
	return []File{
		{Name: "firmware.bin", Data: random, Modified: mod},
		{Name: "firmware.metainfo.xml", Data: text, Modified: mod},
		{Name: "empty.txt", Data: nil, Modified: mod},
		{Name: "sub/dir.bin", Data: []byte("x"), Modified: mod},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, comp := range []Compression{None, MSZIP} {
		var buf bytes.Buffer
		if err := Write(&buf, sample(), comp); err != nil {
			t.Fatal(err)
		}
		got, err := Read(buf.Bytes(), 0)
		if err != nil {
			t.Fatalf("compression %d: %v", comp, err)
		}
		want := sample()
		sort.Slice(want, func(i, j int) bool { return want[i].Name < want[j].Name })
		if len(got) != len(want) {
			t.Fatalf("got %d files, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].Name != want[i].Name || !bytes.Equal(got[i].Data, want[i].Data) || !got[i].Modified.Equal(want[i].Modified) {
				t.Errorf("compression %d: file %d = %q (%d bytes, %v), want %q (%d bytes, %v)", comp, i,
					got[i].Name, len(got[i].Data), got[i].Modified, want[i].Name, len(want[i].Data), want[i].Modified)
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	var good bytes.Buffer
	if err := Write(&good, []File{{Name: "aa/evil.bin", Data: []byte("payload")}}, None); err != nil {
		t.Fatal(err)
	}
	traversal := bytes.Replace(good.Bytes(), []byte(`aa\evil`), []byte(`..\evil`), 1)
	absolute := bytes.Replace(good.Bytes(), []byte(`aa\evil`), []byte(`\a\evil`), 1)
	corrupt := append([]byte(nil), good.Bytes()...)
	corrupt[len(corrupt)-1] ^= 0xff // payload byte: the block checksum no longer matches

	var bomb bytes.Buffer
	if err := Write(&bomb, []File{{Name: "zeros.bin", Data: make([]byte, 4<<20)}}, MSZIP); err != nil {
		t.Fatal(err)
	}
	if bomb.Len() > 64<<10 {
		t.Fatalf("bomb is %d bytes, expected it to compress well", bomb.Len())
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"traversal", traversal, "path traversal"},
		{"absolute", absolute, "absolute"},
		{"checksum", corrupt, "checksum"},
		{"not a cabinet", []byte("<?xml version='1.0'?>"), "not a cabinet"},
		{"truncated", good.Bytes()[:50], "truncated"},
		{"bomb", bomb.Bytes(), "over the limit"},
	} {
		_, err := Read(tc.data, 1<<20)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := Read(bomb.Bytes(), 1<<20); !errors.Is(err, ErrLimit) {
		t.Errorf("bomb: err = %v, want ErrLimit", err)
	}
	if err := Write(&bytes.Buffer{}, []File{{Name: "../x"}}, None); err == nil {
		t.Error("Write accepted a traversal name")
	}
}

// gcab is Debian's cabinet tool (the GNOME library fwupd uses): cabinets we
// write must list and extract with it, and cabinets it writes (MSZIP) must
// read here.
func gcab(t *testing.T) string {
	p, err := exec.LookPath("gcab")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("gcab not found: scripts/test.sh installs it (apt-get install gcab)")
		}
		t.Skip("SKIPPED: gcab cross-check NOT RUN: gcab is not installed (apt-get install gcab)")
	}
	return p
}

func TestGcabReadsOurs(t *testing.T) {
	bin := gcab(t)
	for _, comp := range []Compression{None, MSZIP} {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.cab")
		var buf bytes.Buffer
		if err := Write(&buf, sample(), comp); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(path, buf.Bytes(), 0o644)
		out, err := exec.Command(bin, "-t", path).CombinedOutput()
		if err != nil {
			t.Fatalf("gcab -t: %v\n%s", err, out)
		}
		for _, f := range sample() {
			if !strings.Contains(string(out), strings.ReplaceAll(f.Name, "/", "\\")) && !strings.Contains(string(out), f.Name) {
				t.Errorf("gcab -t does not list %s:\n%s", f.Name, out)
			}
		}
		xdir := filepath.Join(dir, "x")
		os.Mkdir(xdir, 0o755)
		if out, err := exec.Command(bin, "-x", "-C", xdir, path).CombinedOutput(); err != nil {
			t.Fatalf("gcab -x (compression %d): %v\n%s", comp, err, out)
		}
		for _, f := range sample() {
			got, err := os.ReadFile(filepath.Join(xdir, f.Name))
			if err != nil {
				t.Errorf("gcab -x did not extract %s: %v", f.Name, err)
				continue
			}
			if !bytes.Equal(got, f.Data) {
				t.Errorf("gcab extracted %s with %d bytes, want %d", f.Name, len(got), len(f.Data))
			}
		}
	}
}

func TestReadGcabs(t *testing.T) {
	bin := gcab(t)
	dir := t.TempDir()
	want := map[string][]byte{}
	var names []string
	for _, f := range sample() {
		if strings.Contains(f.Name, "/") {
			continue
		}
		os.WriteFile(filepath.Join(dir, f.Name), f.Data, 0o644)
		want[f.Name] = f.Data
		names = append(names, f.Name)
	}
	for _, z := range []bool{false, true} {
		path := filepath.Join(t.TempDir(), "gcab.cab")
		args := []string{"-c"}
		if z {
			args = append(args, "-z")
		}
		args = append(args, path)
		args = append(args, names...)
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("gcab -c: %v\n%s", err, out)
		}
		data, _ := os.ReadFile(path)
		files, err := Read(data, 0)
		if err != nil {
			t.Fatalf("read gcab cabinet (compressed %v): %v", z, err)
		}
		if len(files) != len(want) {
			t.Fatalf("got %d files, want %d", len(files), len(want))
		}
		for _, f := range files {
			if !bytes.Equal(f.Data, want[f.Name]) {
				t.Errorf("compressed %v: %s has %d bytes, want %d", z, f.Name, len(f.Data), len(want[f.Name]))
			}
		}
	}
}

func FuzzRead(f *testing.F) {
	for _, comp := range []Compression{None, MSZIP} {
		var buf bytes.Buffer
		Write(&buf, []File{{Name: "a.bin", Data: bytes.Repeat([]byte("ab"), 40000)}, {Name: "b.xml", Data: []byte("<component/>")}}, comp)
		f.Add(buf.Bytes())
	}
	f.Add([]byte("MSCF"))
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := Read(data, 1<<20)
		if err != nil {
			return
		}
		var total int
		for _, fl := range files {
			if _, err := CleanName(fl.Name); err != nil {
				t.Fatalf("Read returned unsafe name %q", fl.Name)
			}
			total += len(fl.Data)
		}
		if total > 1<<20 {
			t.Fatalf("Read returned %d bytes past the limit", total)
		}
	})
}

// BenchmarkReadMSZIP reads a 16 MiB MSZIP cabinet (half random, half text).
func BenchmarkReadMSZIP(b *testing.B) {
	data := make([]byte, 16<<20)
	rand.New(rand.NewSource(2)).Read(data[:8<<20])
	copy(data[8<<20:], bytes.Repeat([]byte("firmware table entry 0123456789abcdef\n"), (8<<20)/38))
	var buf bytes.Buffer
	if err := Write(&buf, []File{{Name: "fw.bin", Data: data}}, MSZIP); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Read(buf.Bytes(), 0); err != nil {
			b.Fatal(err)
		}
	}
}
