package collapse

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/srekit/srekit/flame"
)

var ambiguousTail = regexp.MustCompile(`\s\d+(\.\d*)?$`)

// seedFiles adds the package's sample inputs as fuzz seeds.
func seedFiles(f *testing.F, names ...string) {
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkProfile asserts what every collapser promises: no negative counts,
// and folded output that reads back to the same profile.
func checkProfile(t *testing.T, p *flame.Profile) {
	t.Helper()
	for _, s := range p.Samples {
		if s.Value < 0 || s.Value2 < 0 {
			t.Fatalf("negative count in %v", s)
		}
	}
	var out bytes.Buffer
	if err := p.WriteFolded(&out); err != nil {
		t.Fatal(err)
	}
	// folded text cannot tell a last frame ending in " 12" from a second count
	// column (flamegraph.pl reads it the same way): no round trip then
	for _, s := range p.Samples {
		if n := len(s.Stack); n > 0 && ambiguousTail.MatchString(s.Stack[n-1]) {
			return
		}
	}
	q, err := flame.ParseFolded(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	var again bytes.Buffer
	q.WriteFolded(&again)
	// stacks with frames holding newlines cannot round-trip; collapsers never make them
	if !bytes.Equal(out.Bytes(), again.Bytes()) && !bytes.ContainsAny(out.Bytes(), "\r") {
		t.Fatalf("folded output does not read back:\n%q\n%q", out.Bytes(), again.Bytes())
	}
}

func FuzzPerf(f *testing.F) {
	f.Add([]byte("java 25607 4794564.109216: 1 cycles:\n\t7f f->g+0x1 (/tmp/perf-1.map)\n\tffff [unknown] ([kernel.kallsyms])\n\n"))
	f.Add([]byte("a  1/0 x: 00 ev:\n x (y(z)\n\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, o := range []PerfOptions{{}, {All: true, TID: true, Addrs: true}} {
			p, err := PerfScript(bytes.NewReader(in), o, nil)
			if err != nil {
				t.Fatal(err) // only read errors, impossible here
			}
			checkProfile(t, p)
		}
	})
}

func FuzzDTrace(f *testing.F) {
	seedFiles(f, "dtrace.txt")
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := DTraceStacks(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		checkProfile(t, p)
	})
}

func FuzzJstack(f *testing.F) {
	seedFiles(f, "jstack.txt")
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := JstackDump(bytes.NewReader(in), JstackOptions{ShortenPackages: true})
		if err != nil {
			t.Fatal(err)
		}
		checkProfile(t, p)
	})
}

func FuzzBpftrace(f *testing.F) {
	seedFiles(f, "bpftrace.txt")
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := BpftraceMaps(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		checkProfile(t, p)
	})
}

func FuzzPprof(f *testing.F) {
	f.Add(testPprof(f))
	f.Add([]byte{0x1f, 0x8b, 0x08, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := PprofProfile(bytes.NewReader(in), -1, 1<<20)
		if err != nil {
			return // a clear error is fine; a panic is not
		}
		checkProfile(t, p)
	})
}

func FuzzCollapse(f *testing.F) {
	seedFiles(f, "dtrace.txt", "jstack.txt", "bpftrace.txt")
	f.Add([]byte("a;b 1\nc 2 3\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, _, err := Collapse(bytes.NewReader(in), Auto, Options{MaxPprofBytes: 1 << 20})
		if err != nil {
			return
		}
		checkProfile(t, p)
	})
}
