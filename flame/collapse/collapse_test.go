package collapse

import (
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"github.com/srekit/srekit/internal/sharedtest"
)

func folded(t *testing.T, r *bytes.Buffer, format Format, o Options) (string, Format) {
	t.Helper()
	p, got, err := Collapse(r, format, o)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.WriteFolded(&out); err != nil {
		t.Fatal(err)
	}
	return out.String(), got
}

// TestCollapseFormats collapses each sample input, detecting its format,
// and compares with the expected folded output (checked against the
// FlameGraph scripts, see TestAgainstFlameGraphScripts).
func TestCollapseFormats(t *testing.T) {
	for _, name := range []string{"jstack", "bpftrace", "dtrace"} {
		t.Run(name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join("testdata", name+".folded"))
			if err != nil {
				t.Fatal(err)
			}
			got, format := folded(t, bytes.NewBuffer(in), Auto, Options{})
			if string(format) != name {
				t.Errorf("detected %s, want %s", format, name)
			}
			if got != string(want) {
				t.Errorf("got\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	td := sharedtest.Dir(t, "perf compatibility test", "flamegraph")
	perf, err := os.ReadFile(filepath.Join(td, "perf-java-stacks-01.txt"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := os.ReadFile(filepath.Join(td, "results", "perf-java-stacks-01-collapsed-default.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   []byte
		want Format
	}{
		{perf, Perf},
		{res, Folded},
		{[]byte("a;b 1\n"), Folded},
		{[]byte("hello world\n"), Auto},
		{nil, Folded},
	} {
		if got := Detect(c.in); got != c.want {
			t.Errorf("Detect(%.30q) = %s, want %s", c.in, got, c.want)
		}
	}
	// gzipped perf script output is decompressed on the fly
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(perf)
	zw.Close()
	got, format := folded(t, &gz, Auto, Options{})
	if format != Perf || got != string(res) {
		t.Errorf("gzipped perf: format %s, output equal: %v", format, got == string(res))
	}
	// truncated gzip: one clear error
	trunc := gz.Bytes()
	var again bytes.Buffer
	zw = gzip.NewWriter(&again)
	zw.Write(perf)
	zw.Close()
	trunc = again.Bytes()[:again.Len()/2]
	if _, _, err := Collapse(bytes.NewReader(trunc), Auto, Options{}); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("truncated gzip: err = %v", err)
	}
}

func testPprof(t testing.TB) []byte {
	fn := []*profile.Function{{ID: 1, Name: "main"}, {ID: 2, Name: "work"}, {ID: 3, Name: "inlined"}}
	locs := []*profile.Location{
		{ID: 1, Address: 0x10, Line: []profile.Line{{Function: fn[0]}}},
		{ID: 2, Address: 0x20, Line: []profile.Line{{Function: fn[2]}, {Function: fn[1]}}}, // inlined into work
		{ID: 3, Address: 0x30},
	}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "samples", Unit: "count"}, {Type: "cpu", Unit: "nanoseconds"}},
		Sample: []*profile.Sample{
			{Location: []*profile.Location{locs[1], locs[0]}, Value: []int64{3, 3000}},
			{Location: []*profile.Location{locs[2], locs[0]}, Value: []int64{1, 1000}},
			{Location: []*profile.Location{locs[1], locs[0]}, Value: []int64{2, 2000}},
		},
		Location: locs, Function: fn,
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil { // gzipped
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestPprof(t *testing.T) {
	data := testPprof(t)
	got, format := folded(t, bytes.NewBuffer(data), Auto, Options{SampleIndex: -1})
	if format != Pprof {
		t.Errorf("detected %s", format)
	}
	if want := "main;0x30 1000\nmain;work;inlined 5000\n"; got != want {
		t.Errorf("default sample type: got %q, want %q", got, want)
	}
	p, _, err := Collapse(bytes.NewReader(data), Pprof, Options{SampleIndex: 0})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total() != 6 || p.Unit != "samples" {
		t.Errorf("sample index 0: total %d unit %s", p.Total(), p.Unit)
	}
	p, _, err = Collapse(bytes.NewReader(data), Pprof, Options{SampleType: "cpu"})
	if err != nil || p.Total() != 6000 || p.Unit != "nanoseconds" {
		t.Errorf("sample type cpu: %v total %d unit %s", err, p.Total(), p.Unit)
	}
	if _, _, err := Collapse(bytes.NewReader(data), Pprof, Options{SampleType: "alloc"}); err == nil || !strings.Contains(err.Error(), "samples, cpu") {
		t.Errorf("unknown sample type: %v", err)
	}
	if _, _, err := Collapse(bytes.NewReader(data), Pprof, Options{SampleIndex: 5}); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("bad sample index: %v", err)
	}
	if _, _, err := Collapse(bytes.NewReader(data), Pprof, Options{MaxPprofBytes: 50}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("decompression limit: %v", err)
	}
}

func TestStrictAndSkips(t *testing.T) {
	in := "a;b 3\nnot a stack\nc 2\n"
	p, _, err := Collapse(strings.NewReader(in), Folded, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Skipped.Count != 1 || p.Skipped.First[0].Line != 2 {
		t.Errorf("skips = %+v", p.Skipped)
	}
	if _, _, err := Collapse(strings.NewReader(in), Folded, Options{Strict: true}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("strict: %v", err)
	}
	// negative counts are not stacks
	p, _, err = Collapse(strings.NewReader("a;b -5\nc 1\n"), Folded, Options{})
	if err != nil || p.Skipped.Count != 1 || p.Total() != 1 {
		t.Errorf("negative count: %v skipped %d total %d", err, p.Skipped.Count, p.Total())
	}
	// a line over the limit is skipped and reported, not fatal
	long := "x;" + strings.Repeat("y", 5<<20) + " 1\nok 1\n"
	p, _, err = Collapse(strings.NewReader(long), Folded, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Skipped.Count != 1 || p.Total() != 1 {
		t.Errorf("long line: skipped %d total %d", p.Skipped.Count, p.Total())
	}
	// perf junk lines are reported with their numbers
	pp, err := PerfScript(strings.NewReader("java 1 [000] 1.0: 10 cycles:\n\t1 f (m)\n!!junk\n\n"), PerfOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pp.Skipped.Count != 1 || pp.Skipped.First[0].Line != 3 || pp.Total() != 10 {
		t.Errorf("perf skips = %+v total %d", pp.Skipped, pp.Total())
	}
}

// TestAgainstFlameGraphScripts runs the FlameGraph scripts (in
// $FLAMEGRAPH_DIR) on the sample inputs and compares their output with ours.
func TestAgainstFlameGraphScripts(t *testing.T) {
	dir := os.Getenv("FLAMEGRAPH_DIR")
	if dir == "" {
		t.Skip("SKIPPED: comparison with the FlameGraph scripts NOT RUN: set FLAMEGRAPH_DIR to a checkout of github.com/brendangregg/FlameGraph")
	}
	if _, err := exec.LookPath("perl"); err != nil {
		t.Fatal("perl not found")
	}
	for _, c := range []struct{ script, input string }{
		{"stackcollapse-jstack.pl", "testdata/jstack.txt"},
		{"stackcollapse-bpftrace.pl", "testdata/bpftrace.txt"},
		{"stackcollapse.pl", "testdata/dtrace.txt"},
		{"stackcollapse.pl", filepath.Join(dir, "example-dtrace-stacks.txt")},
	} {
		out, err := exec.Command("perl", filepath.Join(dir, c.script), c.input).Output()
		if err != nil {
			t.Fatalf("%s: %v", c.script, err)
		}
		want, err := normFolded(out)
		if err != nil {
			t.Fatal(err)
		}
		in, err := os.ReadFile(c.input)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := folded(t, bytes.NewBuffer(in), Auto, Options{})
		if got != want {
			t.Errorf("%s on %s differs:\n%s", c.script, c.input, firstDiff(got, want))
		}
	}
}

// normFolded normalises folded text (sorted, merged) for comparison.
func normFolded(b []byte) (string, error) {
	p, _, err := Collapse(bytes.NewReader(b), Folded, Options{})
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = p.WriteFolded(&out)
	return out.String(), err
}

func TestDetectPerfWithoutEvent(t *testing.T) {
	in := "myapp 4242 100.000001:\n\t7f00 work+0x1 (/usr/bin/myapp)\n\t7f01 main+0x2 (/usr/bin/myapp)\n\n"
	if got := Detect([]byte(in)); got != Perf {
		t.Fatalf("Detect = %s, want perf", got)
	}
	out, _ := folded(t, bytes.NewBufferString(in), Auto, Options{})
	if out != "myapp;main;work 1\n" {
		t.Errorf("got %q", out)
	}
}
