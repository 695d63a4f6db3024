package collapse

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sharedTestdata finds ../shared/testdata beside the repository (in CI a copy
// of shared/ sits beside the clone). Without it the test fails under CI and
// is skipped loudly elsewhere.
func sharedTestdata(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("repository root (go.mod) not found")
		}
		dir = parent
	}
	td := filepath.Join(dir, "..", "shared", "testdata", "flamegraph")
	if _, err := os.Stat(td); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shared test data missing: %v", err)
		}
		t.Skipf("SKIPPED: compatibility test NOT RUN: shared test data missing: %v", err)
	}
	return td
}

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
	td := sharedTestdata(t)
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
