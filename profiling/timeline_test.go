package profiling

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/srekit/srekit/internal/sharedtest"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

// headerTimes lists the timestamps of the sample headers of one event, read
// with a regular expression independent of the timeline code.
func headerTimes(t *testing.T, raw []byte, event string) []float64 {
	re := regexp.MustCompile(`(?m)^\S.*?\s(\d+\.\d+):(?:\s+\d+)?\s+` + regexp.QuoteMeta(event) + `:\s*$`)
	var out []float64
	ms := re.FindAllSubmatchIndex(raw, -1)
	if n := len(ms); n > 0 && !bytes.Contains(raw[ms[n-1][1]:], []byte("\n\n")) {
		ms = ms[:n-1] // perf's last sample with no blank line after it is not counted (as stackcollapse-perf.pl)
	}
	for _, mi := range ms {
		m := [][]byte{nil, raw[mi[2]:mi[3]]}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestPerfTimeline builds timelines from real perf script outputs and checks
// them against the collapsed profile and an independent count of the headers.
func TestPerfTimeline(t *testing.T) {
	for _, tc := range []struct {
		file, event string
	}{
		{"perf-funcab-cmd-01.txt", "cpu-clock"},
		{"perf-iperf-stacks-pidtid-01.txt", "cpu-clock"},
		{"perf-cycles-instructions-01.txt", "instructions"}, // two events: the collapser keeps the first
		{"perf-java-stacks-01.txt", "cycles"},
		{"example-perf-stacks.txt.gz", "cycles"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw := sharedtest.Read(t, "perf timeline test", "flamegraph", tc.file)
			ds, err := Decode(raw, FormatPerf, "cpu", "", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			d := ds[0]
			if d.Timeline == nil {
				t.Fatalf("no timeline: %s", d.NoTimeline)
			}
			tl := d.Timeline
			times := headerTimes(t, raw, tc.event)
			if len(tl.Samples) != len(times) {
				t.Fatalf("%d samples in the timeline, %d %s headers in the input", len(tl.Samples), len(times), tc.event)
			}
			lo, hi := times[0], times[0]
			for _, v := range times {
				lo, hi = min(lo, v), max(hi, v)
			}
			if got, want := tl.Span(), int64((hi-lo)*1e6+0.5); got != want {
				t.Fatalf("span %d µs, want %d", got, want)
			}
			// The samples add up to the profile, stack for stack.
			m := stackMap{}
			m.addProfile(d.Profile)
			names := sortedStacks(m)
			if tl.Stacks != len(names) {
				t.Fatalf("timeline names %d stacks, profile has %d", tl.Stacks, len(names))
			}
			sums := make([]int64, tl.Stacks)
			if n := tl.Range(0, tl.Span()+1, sums); n != len(times) {
				t.Fatalf("whole range holds %d samples, want %d", n, len(times))
			}
			for i, k := range names {
				if sums[i] != m[k] {
					t.Fatalf("stack %q: %d in the timeline, %d in the profile", k, sums[i], m[k])
				}
			}
			for i := 1; i < len(tl.Samples); i++ {
				if tl.Samples[i].Offset < tl.Samples[i-1].Offset {
					t.Fatal("samples out of time order")
				}
			}
			// The grid counts every sample once.
			g, err := tl.Grid(20)
			if err != nil {
				t.Fatal(err)
			}
			total := 0
			for _, col := range g.Cells {
				for _, c := range col {
					total += c
				}
			}
			if total != len(times) || g.Rows != 50 || g.Columns != int(tl.Span()/1e6)+1 {
				t.Fatalf("grid: %d samples in %d×%d cells", total, g.Columns, g.Rows)
			}
			// And it survives encoding.
			enc, err := tl.Encode()
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeTimeline(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tl) {
				t.Fatal("timeline changed through Encode/DecodeTimeline")
			}
			t.Logf("%d samples over %.2f s: %d bytes encoded (%.2f bytes/sample)", len(tl.Samples), float64(tl.Span())/1e6, len(enc), float64(len(enc))/float64(len(tl.Samples)))
		})
	}
}

func sortedStacks(m stackMap) []string {
	var names []string
	for k, v := range m {
		if v != 0 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// TestPerfTimelineWithoutTimestamps: perf script printed without times
// (perf script -F without time) gives a snapshot with no timeline, not an error.
func TestPerfTimelineWithoutTimestamps(t *testing.T) {
	raw := sharedtest.Read(t, "perf timeline test", "flamegraph", "perf-funcab-pid-01.txt")
	ds, err := Decode(raw, FormatPerf, "cpu", "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Timeline != nil || ds[0].NoTimeline == "" || len(ds[0].Profile.Samples) == 0 {
		t.Fatalf("timeline %v, note %q", ds[0].Timeline != nil, ds[0].NoTimeline)
	}
}

func TestTimelineGridAndRange(t *testing.T) {
	tl := &Timeline{Stacks: 3, Samples: []TimedSample{
		{Offset: 0, Stack: 0, Value: 1},
		{Offset: 19_999, Stack: 1, Value: 2},
		{Offset: 20_000, Stack: 1, Value: 2},
		{Offset: 999_999, Stack: 2, Value: 5},
		{Offset: 1_500_000, Stack: 0, Value: 1},
		{Offset: 2_000_000, Stack: 2, Value: 7},
	}}
	g, err := tl.Grid(20)
	if err != nil {
		t.Fatal(err)
	}
	if g.Columns != 3 || g.Rows != 50 || g.Max != 2 || g.Samples != 6 || g.Seconds != 2 {
		t.Fatalf("grid %+v", g)
	}
	want := map[[2]int]int{{0, 0}: 2, {0, 1}: 1, {0, 49}: 1, {1, 25}: 1, {2, 0}: 1}
	for c := range g.Cells {
		for r, v := range g.Cells[c] {
			if v != want[[2]int{c, r}] {
				t.Fatalf("cell %d,%d = %d, want %d", c, r, v, want[[2]int{c, r}])
			}
		}
	}
	if _, err := tl.Grid(7); err == nil {
		t.Fatal("a row size that does not divide a second was accepted")
	}
	sums := make([]int64, 3)
	if n := tl.Range(20_000, 1_500_000, sums); n != 2 || !reflect.DeepEqual(sums, []int64{0, 2, 5}) {
		t.Fatalf("range: %d samples, sums %v", n, sums)
	}
	for _, tc := range []struct {
		in   string
		want []Range
		bad  bool
	}{
		{in: "12:1.5-3", want: []Range{{12, 1_500_000, 3_000_000}}},
		{in: "1:0-0.02, 2:4-5", want: []Range{{1, 0, 20_000}, {2, 4_000_000, 5_000_000}}},
		{in: "1:3-2", bad: true},
		{in: "x:1-2", bad: true},
		{in: "1:-1-2", bad: true},
		{in: "1:NaN-2", bad: true},
		{in: "", bad: true},
	} {
		got, err := ParseRanges(tc.in)
		if tc.bad != (err != nil) || (!tc.bad && !reflect.DeepEqual(got, tc.want)) {
			t.Fatalf("ParseRanges(%q) = %v, %v", tc.in, got, err)
		}
	}
	u := unionRanges([]Range{{1, 5, 9}, {1, 0, 2}, {1, 1, 6}, {1, 20, 30}})
	if !reflect.DeepEqual(u, []Range{{1, 0, 9}, {1, 20, 30}}) {
		t.Fatalf("union %v", u)
	}
}

func TestTimelineDecodeRejects(t *testing.T) {
	good := &Timeline{Origin: 5, Stacks: 2, Samples: []TimedSample{{0, 0, 3}, {10, 1, 3}, {10, 1, 4}}}
	enc, err := good.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Timeline{Stacks: 1, Samples: []TimedSample{{5, 0, 1}, {4, 0, 1}}}).Encode(); err == nil {
		t.Fatal("out-of-order samples encoded")
	}
	if _, err := (&Timeline{Stacks: 1, Samples: []TimedSample{{5, 1, 1}}}).Encode(); err == nil {
		t.Fatal("a stack index past the end encoded")
	}
	raw := gunzip(t, enc)
	for name, body := range map[string][]byte{
		"truncated":     raw[:len(raw)-1],
		"trailing":      append(append([]byte{}, raw...), 0),
		"bad magic":     append([]byte("XKTL\x01"), raw[5:]...),
		"huge count":    append(append([]byte("SKTL\x01"), 0xff, 0xff, 0xff, 0xff, 0x0f), raw[6:]...),
		"stack too big": bytes.Replace(raw, []byte{0, 1, 1}, []byte{0, 1, 9}, 1),
	} {
		if _, err := DecodeTimeline(gzipBytes(t, body)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	if _, err := DecodeTimeline([]byte("not gzip")); err == nil {
		t.Error("not gzip: decoded")
	}
}

func gunzip(t testing.TB, b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func gzipBytes(t testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

// FuzzDecodeTimeline feeds the stored-timeline decoder arbitrary bytes (raw
// and gzip-wrapped): it must return an error or a timeline that re-encodes
// to the same thing, never panic.
func FuzzDecodeTimeline(f *testing.F) {
	tl := &Timeline{Origin: 77, Stacks: 3, Samples: []TimedSample{{0, 0, 1}, {10_101, 2, 10101010}, {20_202, 1, 10101010}, {20_202, 1, 1}}}
	enc, _ := tl.Encode()
	f.Add(enc, false)
	f.Add(gunzip(f, enc), true)
	f.Add([]byte("SKTL\x01\x00\x00\x00"), true)
	f.Add([]byte("SKTL\x01\x02\x01\x00\x05\x05\x00\x00\x02\x00"), true)
	f.Fuzz(func(t *testing.T, data []byte, wrap bool) {
		if wrap {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			data = b.Bytes()
		}
		got, err := DecodeTimeline(data)
		if err != nil {
			return
		}
		again, err := got.Encode()
		if err != nil {
			t.Fatalf("decoded timeline does not encode: %v", err)
		}
		back, err := DecodeTimeline(again)
		if err != nil || !reflect.DeepEqual(back, got) {
			t.Fatalf("re-encoded timeline differs: %v", err)
		}
		g, err := got.Grid(20)
		if err != nil || g.Samples != len(got.Samples) {
			t.Fatalf("grid: %v", err)
		}
	})
}

// TestStoreTimeline stores perf snapshots with timelines on both engines and
// reads time ranges back.
func TestStoreTimeline(t *testing.T) {
	raw := sharedtest.Read(t, "perf timeline test", "flamegraph", "perf-funcab-cmd-01.txt")
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		db := &DB{S: st}
		ds, err := Decode(raw, FormatPerf, "cpu", "", Limits{})
		if err != nil {
			t.Fatal(err)
		}
		d := ds[0]
		snap := &Snapshot{Kind: "cpu", Unit: "samples", Labels: Labels{"service": "funcab"}, Start: t0, End: t0.Add(3 * time.Second),
			Source: "perf", Profile: d.Profile, Timeline: d.Timeline}
		id, _, err := db.Save(ctx, snap)
		if err != nil {
			t.Fatal(err)
		}
		plain := &Snapshot{Kind: "cpu", Unit: "samples", Labels: Labels{"service": "other"}, Start: t0, End: t0, Profile: folded(t, "a;b 3\n")}
		pid, _, err := db.Save(ctx, plain)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := db.List(ctx, Query{})
		if err != nil {
			t.Fatal(err)
		}
		flags := map[int64]bool{}
		for _, s := range ss {
			flags[s.ID] = s.HasTimeline
		}
		if !flags[id] || flags[pid] {
			t.Fatalf("listing timeline flags: %v", flags)
		}
		got, err := db.Timeline(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, d.Timeline) {
			t.Fatal("stored timeline differs")
		}
		if _, err := db.Timeline(ctx, pid); !errors.Is(err, ErrNoTimeline) {
			t.Fatalf("folded snapshot timeline: %v", err)
		}
		if _, err := db.Timeline(ctx, 99999); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing snapshot timeline: %v", err)
		}
		// The whole range is the whole profile.
		all, err := db.MergeRanges(ctx, []Range{{ID: id, From: 0, Until: got.Span() + 1}})
		if err != nil {
			t.Fatal(err)
		}
		if foldedText(t, all.Profile) != foldedText(t, mustGet(t, db, id).Profile) || all.Samples != len(got.Samples) {
			t.Fatalf("whole range: %d samples, total %d of %d", all.Samples, all.Total, snap.Total)
		}
		// The first second, and the two halves merged (overlap counted once).
		first, err := db.MergeRanges(ctx, []Range{{ID: id, From: 0, Until: 1_000_000}})
		if err != nil {
			t.Fatal(err)
		}
		var want int64
		n := 0
		for _, s := range got.Samples {
			if s.Offset < 1_000_000 {
				want += s.Value
				n++
			}
		}
		if first.Total != want || first.Samples != n || n == 0 || n == len(got.Samples) {
			t.Fatalf("first second: total %d samples %d, want %d %d", first.Total, first.Samples, want, n)
		}
		halves, err := db.MergeRanges(ctx, []Range{{ID: id, From: 0, Until: 600_000}, {ID: id, From: 400_000, Until: 1_000_000}})
		if err != nil {
			t.Fatal(err)
		}
		if foldedText(t, halves.Profile) != foldedText(t, first.Profile) {
			t.Fatal("overlapping selections merged differ from the union")
		}
		if _, err := db.MergeRanges(ctx, []Range{{ID: pid, From: 0, Until: 1}}); !errors.Is(err, ErrNoTimeline) {
			t.Fatalf("range of a folded snapshot: %v", err)
		}
		// Saving the same upload again keeps one timeline; deleting removes it.
		again := *snap
		if _, dup, err := db.Save(ctx, &again); err != nil || !dup {
			t.Fatalf("re-save: dup %v err %v", dup, err)
		}
		if err := db.Delete(ctx, []int64{id}); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := st.QueryRow(ctx, "SELECT COUNT(*) FROM profiling_timelines").Scan(&left); err != nil || left != 0 {
			t.Fatalf("timelines left after delete: %d %v", left, err)
		}
	})
}

func mustGet(t *testing.T, db *DB, id int64) *Snapshot {
	s, err := db.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTimelineEncodeRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		tl := &Timeline{Origin: r.Int64N(1 << 40), Stacks: 1 + r.IntN(500)}
		var off int64
		for range r.IntN(3000) {
			off += r.Int64N(20_000)
			tl.Samples = append(tl.Samples, TimedSample{Offset: off, Stack: int32(r.IntN(tl.Stacks)), Value: 1 + r.Int64N(3)*10101010})
		}
		enc, err := tl.Encode()
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeTimeline(enc)
		if err != nil {
			t.Fatal(err)
		}
		if len(tl.Samples) == 0 {
			tl.Samples = []TimedSample{}
		}
		if !reflect.DeepEqual(back, tl) {
			t.Fatal("random timeline changed")
		}
	}
}

// BenchmarkPerfTimeline is the cost of keeping the timeline of a perf
// script upload, beside collapsing it.
func BenchmarkPerfTimeline(b *testing.B) {
	raw := sharedtest.Read(b, "perf timeline benchmark", "flamegraph", "example-perf-stacks.txt.gz")
	b.Run("collapse", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			if _, err := collapsePerf(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("collapse+timeline", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			p, err := collapsePerf(raw)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := perfTimeline(raw, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestDemoTimeline: the demo data has one perf snapshot with a timeline
// whose heat map shows the patterns the demo put there.
func TestDemoTimeline(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	if err := Demo(ctx, st, time.Now()); err != nil {
		t.Fatal(err)
	}
	db := &DB{S: st}
	ss, err := db.List(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	var with []Snapshot
	for _, s := range ss {
		if s.HasTimeline {
			with = append(with, s)
		}
	}
	if len(ss) != 145 || len(with) != 1 || with[0].Unit != "samples" {
		t.Fatalf("%d snapshots, %d with a timeline", len(ss), len(with))
	}
	tl, err := db.Timeline(ctx, with[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	g, err := tl.Grid(20)
	if err != nil {
		t.Fatal(err)
	}
	// Garbage collection from 0.4 s to 0.6 s of every second: those rows
	// (20 to 29) are busier than the others.
	gc, other := 0, 0
	for c := 0; c < g.Columns; c++ {
		for r, v := range g.Cells[c] {
			if r >= 20 && r < 30 {
				gc += v
			} else {
				other += v
			}
		}
	}
	if g.Columns != 10 || gc/10 <= other/40 {
		t.Fatalf("demo grid: %d columns, %d samples in GC rows, %d in the others", g.Columns, gc, other)
	}
}
