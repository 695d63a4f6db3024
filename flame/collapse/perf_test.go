package collapse

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/srekit/srekit/internal/sharedtest"
)

var perfOptionSets = map[string]PerfOptions{
	"default": {},
	"pid":     {PID: true},
	"tid":     {TID: true},
	"kernel":  {Kernel: true},
	"jit":     {JIT: true},
	"all":     {All: true},
	"addrs":   {Addrs: true},
}

// TestPerfCompatibility checks that every input collapses byte for byte as
// stackcollapse-perf.pl collapses it, with every option.
func TestPerfCompatibility(t *testing.T) {
	td := sharedtest.Dir(t, "perf compatibility test", "flamegraph")
	inputs, err := filepath.Glob(filepath.Join(td, "*.txt"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs in %s (%v)", td, err)
	}
	checked := 0
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".txt")
		for opt, o := range perfOptionSets {
			want, err := os.ReadFile(filepath.Join(td, "results", name+"-collapsed-"+opt+".txt"))
			if err != nil {
				t.Errorf("%s %s: %v", name, opt, err)
				continue
			}
			t.Run(name+"/"+opt, func(t *testing.T) {
				f, err := os.Open(in)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				p, err := PerfScript(f, o, nil)
				if err != nil {
					t.Fatal(err)
				}
				var got bytes.Buffer
				if err := p.WriteFolded(&got); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want) {
					t.Errorf("output differs from stackcollapse-perf.pl's:\n%s", firstDiff(got.String(), string(want)))
				}
			})
			checked++
		}
	}
	if checked != len(inputs)*len(perfOptionSets) {
		t.Errorf("checked %d cases, want %d", checked, len(inputs)*len(perfOptionSets))
	}
}

// firstDiff shows the first differing line of two texts.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var a, b string
		if i < len(g) {
			a = g[i]
		}
		if i < len(w) {
			b = w[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n got: %q\nwant: %q", i+1, a, b)
		}
	}
	return "(same lines)"
}

// repeatReader yields data n times.
type repeatReader struct {
	data []byte
	n    int
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, io.EOF
	}
	k := copy(p, r.data[r.off:])
	r.off += k
	if r.off == len(r.data) {
		r.off = 0
		r.n--
	}
	return k, nil
}

// TestPerfStreams checks that collapsing allocates little compared with its
// input: memory follows the distinct stacks, not the input size.
func TestPerfStreams(t *testing.T) {
	f, err := os.Open(filepath.Join(sharedtest.Dir(t, "perf compatibility test", "flamegraph"), "example-perf-stacks.txt.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	one, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	const times = 16
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p, err := PerfScript(&repeatReader{data: one, n: times}, PerfOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	input := uint64(len(one) * times)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("collapsed %d bytes allocating %d bytes", input, alloc)
	if alloc > input/8 {
		t.Errorf("collapsing %d bytes allocated %d bytes: not streaming", input, alloc)
	}
	single, err := PerfScript(bytes.NewReader(one), PerfOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total() != times*single.Total() || len(p.Samples) != len(single.Samples) {
		t.Errorf("repeated input: total %d (want %d), %d stacks (want %d)", p.Total(), times*single.Total(), len(p.Samples), len(single.Samples))
	}
}
