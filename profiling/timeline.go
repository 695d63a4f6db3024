package profiling

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/flame/collapse"
)

// A Timeline is the time order of a snapshot's samples: when each sample was
// taken and which of the snapshot's stacks it hit. perf script prints a
// timestamp per sample; keeping it lets the page draw a FlameScope-style
// sub-second heat map and show the flame graph of just a chosen time range.
// pprof and folded profiles are already aggregated and have none.
type Timeline struct {
	// Origin is the first sample's time on the capturing clock (perf's is
	// the host's monotonic clock), in microseconds; offsets count from it.
	Origin int64
	// Stacks is how many distinct stacks Stack indexes (the snapshot's
	// stacks in canonical, sorted order).
	Stacks int
	// Samples are in time order.
	Samples []TimedSample
}

// TimedSample is one sample of a Timeline.
type TimedSample struct {
	Offset int64 // microseconds after Origin
	Stack  int32 // index into the snapshot's sorted distinct stacks
	Value  int64 // the sample's weight (perf's period, 1 when it prints none)
}

// Timeline bounds: a timeline beyond them is not kept (the snapshot still
// is), so one upload cannot make the heat map or the store unreasonable.
const (
	// MaxTimelineSamples is the most samples a timeline keeps: 99 Hz on 64
	// CPUs for ten minutes is 3.8 million.
	MaxTimelineSamples = 4_000_000
	// MaxTimelineSpan is the longest time a timeline covers, in
	// microseconds (one hour; a capture is at most ten minutes).
	MaxTimelineSpan = 3600 * 1_000_000
	// maxTimelineStacks bounds the stack indexes a stored timeline may use.
	maxTimelineStacks = 1 << 24
)

// timelineMagic starts an encoded timeline, with the format version after it.
var timelineMagic = []byte("SKTL\x01")

// errNoTimeline says why a profile got no timeline; the snapshot is stored anyway.
var errNoTimeline = errors.New("no timeline")

// Encode returns the compact stored form: gzip over a header (sample count,
// stack count, origin) and three columns of varints (offset deltas, stack
// indexes, value deltas). Columns keep like with like, so the time deltas of
// a steady sampling rate and the repeated periods compress to almost nothing.
func (t *Timeline) Encode() ([]byte, error) {
	var raw []byte
	raw = append(raw, timelineMagic...)
	raw = binary.AppendUvarint(raw, uint64(len(t.Samples)))
	raw = binary.AppendUvarint(raw, uint64(t.Stacks))
	raw = binary.AppendVarint(raw, t.Origin)
	var prev int64
	for i, s := range t.Samples {
		if s.Offset < prev || (i == 0 && s.Offset < 0) {
			return nil, fmt.Errorf("timeline: sample %d is out of time order", i)
		}
		raw = binary.AppendUvarint(raw, uint64(s.Offset-prev))
		prev = s.Offset
	}
	for i, s := range t.Samples {
		if s.Stack < 0 || int(s.Stack) >= t.Stacks {
			return nil, fmt.Errorf("timeline: sample %d names stack %d of %d", i, s.Stack, t.Stacks)
		}
		raw = binary.AppendUvarint(raw, uint64(s.Stack))
	}
	prev = 0
	for _, s := range t.Samples {
		raw = binary.AppendVarint(raw, s.Value-prev)
		prev = s.Value
	}
	var b bytes.Buffer
	zw := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(zw)
	zw.Reset(&b)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// DecodeTimeline reads what Encode wrote. It checks everything (counts
// against the bytes present, stack indexes, time order, the bounds above),
// so a damaged row gives an error, never a panic or a huge allocation.
func DecodeTimeline(data []byte) (*Timeline, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	defer zr.Close()
	// A sample takes at most 10+5+10 bytes; the header at most 35.
	const limit = MaxTimelineSamples*25 + 64
	raw, err := io.ReadAll(io.LimitReader(zr, limit+1))
	if err != nil {
		return nil, fmt.Errorf("timeline: %w", err)
	}
	if len(raw) > limit {
		return nil, errors.New("timeline: too large")
	}
	if !bytes.HasPrefix(raw, timelineMagic) {
		return nil, errors.New("timeline: not a srekit timeline (bad magic or version)")
	}
	r := raw[len(timelineMagic):]
	uv := func(what string) (uint64, error) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, fmt.Errorf("timeline: truncated %s", what)
		}
		r = r[n:]
		return v, nil
	}
	sv := func(what string) (int64, error) {
		v, n := binary.Varint(r)
		if n <= 0 {
			return 0, fmt.Errorf("timeline: truncated %s", what)
		}
		r = r[n:]
		return v, nil
	}
	n, err := uv("sample count")
	if err != nil {
		return nil, err
	}
	stacks, err := uv("stack count")
	if err != nil {
		return nil, err
	}
	t := &Timeline{}
	if t.Origin, err = sv("origin"); err != nil {
		return nil, err
	}
	if n > MaxTimelineSamples || n*3 > uint64(len(r)) {
		return nil, fmt.Errorf("timeline: %d samples do not fit in %d bytes", n, len(r))
	}
	if stacks > maxTimelineStacks || (n > 0 && stacks == 0) {
		return nil, fmt.Errorf("timeline: %d stacks", stacks)
	}
	t.Stacks = int(stacks)
	t.Samples = make([]TimedSample, n)
	var off uint64
	for i := range t.Samples {
		d, err := uv("time column")
		if err != nil {
			return nil, err
		}
		off += d
		if d > MaxTimelineSpan || off > MaxTimelineSpan {
			return nil, fmt.Errorf("timeline: sample %d at %d µs is beyond the %d µs a timeline may span", i, off, int64(MaxTimelineSpan))
		}
		t.Samples[i].Offset = int64(off)
	}
	for i := range t.Samples {
		s, err := uv("stack column")
		if err != nil {
			return nil, err
		}
		if s >= stacks {
			return nil, fmt.Errorf("timeline: sample %d names stack %d of %d", i, s, stacks)
		}
		t.Samples[i].Stack = int32(s)
	}
	var prev int64
	for i := range t.Samples {
		d, err := sv("value column")
		if err != nil {
			return nil, err
		}
		prev += d
		t.Samples[i].Value = prev
	}
	if len(r) != 0 {
		return nil, fmt.Errorf("timeline: %d bytes after the last column", len(r))
	}
	return t, nil
}

// Span is the time from the first to the last sample, in microseconds.
func (t *Timeline) Span() int64 {
	if len(t.Samples) == 0 {
		return 0
	}
	return t.Samples[len(t.Samples)-1].Offset
}

// Grid is a FlameScope heat map: one column per second, each cut into rows
// of RowMS milliseconds; a cell counts the samples taken in it.
type Grid struct {
	Columns int     `json:"columns"`
	Rows    int     `json:"rows"`
	RowMS   int     `json:"row_ms"`
	Cells   [][]int `json:"cells"` // Cells[column][row]
	Max     int     `json:"max"`
	Samples int     `json:"samples"`
	// Seconds is the time from the first to the last sample.
	Seconds float64 `json:"seconds"`
}

// Grid counts samples per cell; rowMS must divide 1000 (20 gives FlameScope's 50 rows).
func (t *Timeline) Grid(rowMS int) (Grid, error) {
	if rowMS <= 0 || 1000%rowMS != 0 {
		return Grid{}, fmt.Errorf("row of %d ms: want a divisor of 1000 such as 10, 20 or 50", rowMS)
	}
	g := Grid{Rows: 1000 / rowMS, RowMS: rowMS, Samples: len(t.Samples), Seconds: float64(t.Span()) / 1e6}
	g.Columns = int(t.Span()/1_000_000) + 1
	if len(t.Samples) == 0 {
		g.Columns = 0
	}
	g.Cells = make([][]int, g.Columns)
	for c := range g.Cells {
		g.Cells[c] = make([]int, g.Rows)
	}
	for _, s := range t.Samples {
		c := s.Offset / 1_000_000
		r := (s.Offset % 1_000_000) / int64(rowMS*1000)
		g.Cells[c][r]++
		g.Max = max(g.Max, g.Cells[c][r])
	}
	return g, nil
}

// Range sums the samples taken in [from, until) microseconds after Origin,
// per stack index, into sums (len t.Stacks), and returns how many there were.
func (t *Timeline) Range(from, until int64, sums []int64) int {
	i := sort.Search(len(t.Samples), func(i int) bool { return t.Samples[i].Offset >= from })
	n := 0
	for ; i < len(t.Samples) && t.Samples[i].Offset < until; i++ {
		sums[t.Samples[i].Stack] += t.Samples[i].Value
		n++
	}
	return n
}

// perfTimeline builds the timeline of a perf script whose collapsed profile
// is p (from collapsePerf). The collapser is srekit's flame/collapse, which
// aggregates; to learn each sample's stack without a second collapser, every
// distinct sample (its lines less the timestamp) is collapsed once with a
// marker frame naming it as the leaf. The result must add up to p stack for
// stack, or no timeline is kept: the heat map never disagrees with the graph.
func perfTimeline(raw []byte, p *flame.Profile) (*Timeline, error) {
	type block struct {
		ts  int64 // microseconds on perf's clock
		key int   // index of the distinct sample
	}
	var blocks []block
	keys := map[string]int{}
	var batch bytes.Buffer
	batch.Grow(len(raw) + len(raw)/16)
	var marker, kb []byte
	// A sample is its lines up to a blank line: header first, then frames.
	// Lines are kept as offsets into raw; '#' comment lines are skipped (the
	// collapser ignores them too).
	var cur [][2]int
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		defer func() { cur = cur[:0] }()
		header := raw[cur[0][0]:cur[0][1]]
		ts, tsAt, tsLen, ok := perfTimestamp(header)
		if !ok {
			return fmt.Errorf("%w: sample header without a timestamp: %.80q", errNoTimeline, header)
		}
		// The key is the sample less its timestamp: equal samples at other
		// times share one collapse.
		kb = append(kb[:0], header[:tsAt]...)
		kb = append(kb, header[tsAt+tsLen:]...)
		for _, l := range cur[1:] {
			kb = append(kb, '\n')
			kb = append(kb, raw[l[0]:l[1]]...)
		}
		k, seen := keys[string(kb)]
		if !seen {
			k = len(keys)
			keys[string(kb)] = k
			batch.Write(header)
			marker = append(marker[:0], "\n\t0 srekit.timeline."...)
			marker = strconv.AppendInt(marker, int64(k), 10)
			marker = append(marker, " (srekit)\n"...)
			batch.Write(marker)
			for _, l := range cur[1:] {
				batch.Write(raw[l[0]:l[1]])
				batch.WriteByte('\n')
			}
			batch.WriteByte('\n')
		}
		blocks = append(blocks, block{ts, k})
		if len(blocks) > MaxTimelineSamples {
			return fmt.Errorf("%w: more than %d samples", errNoTimeline, MaxTimelineSamples)
		}
		return nil
	}
	for pos := 0; pos < len(raw); {
		nl := bytes.IndexByte(raw[pos:], '\n')
		if nl < 0 {
			break // the collapser ignores a last sample with no blank line after it
		}
		a, b := pos, pos+nl
		pos = b + 1
		if b > a && raw[b-1] == '\r' {
			b--
		}
		switch {
		case b > a && raw[a] == '#':
		case b == a:
			if err := flush(); err != nil {
				return nil, err
			}
		default:
			cur = append(cur, [2]int{a, b})
		}
	}
	if len(blocks) == 0 {
		return nil, fmt.Errorf("%w: no samples", errNoTimeline)
	}
	marked, err := collapse.PerfScript(&batch, collapse.PerfOptions{Kernel: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoTimeline, err)
	}
	type keyed struct {
		stack string
		value int64
	}
	perKey := make([]*keyed, len(keys))
	for _, s := range marked.Samples {
		n := len(s.Stack)
		if n == 0 {
			continue
		}
		k, err := strconv.Atoi(strings.TrimPrefix(s.Stack[n-1], "srekit.timeline."))
		if err != nil || !strings.HasPrefix(s.Stack[n-1], "srekit.timeline.") || k < 0 || k >= len(perKey) || perKey[k] != nil {
			return nil, fmt.Errorf("%w: a sample lost its marker", errNoTimeline)
		}
		perKey[k] = &keyed{strings.Join(s.Stack[:n-1], ";"), s.Value}
	}
	entries := make([]timedEntry, 0, len(blocks))
	for _, b := range blocks {
		kv := perKey[b.key]
		if kv == nil {
			continue // filtered out by the collapser (another event type)
		}
		entries = append(entries, timedEntry{b.ts, kv.stack, kv.value})
	}
	return buildTimeline(entries, p)
}

// timedEntry is one sample on its way into a Timeline: its time in
// microseconds on the capturing clock, its folded stack and its value.
type timedEntry struct {
	ts    int64
	stack string
	value int64
}

// buildTimeline indexes entries by the stacks of p in stored (sorted)
// order, checks that they add up to p stack for stack, sorts them by time
// and makes the times offsets from the first.
func buildTimeline(entries []timedEntry, p *flame.Profile) (*Timeline, error) {
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: no samples", errNoTimeline)
	}
	if len(entries) > MaxTimelineSamples {
		return nil, fmt.Errorf("%w: more than %d samples", errNoTimeline, MaxTimelineSamples)
	}
	want := stackMap{}
	want.addProfile(p)
	names := make([]string, 0, len(want))
	for k, v := range want {
		if v != 0 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	index := make(map[string]int32, len(names))
	for i, k := range names {
		index[k] = int32(i)
	}
	t := &Timeline{Stacks: len(names), Samples: make([]TimedSample, 0, len(entries))}
	got := stackMap{}
	for _, e := range entries {
		i, ok := index[e.stack]
		if !ok {
			return nil, fmt.Errorf("%w: stack %.80q is not in the profile", errNoTimeline, e.stack)
		}
		got[e.stack] += e.value
		t.Samples = append(t.Samples, TimedSample{Offset: e.ts, Stack: i, Value: e.value})
	}
	if len(got) != len(names) {
		return nil, fmt.Errorf("%w: %d stacks in the samples, %d in the profile", errNoTimeline, len(got), len(names))
	}
	for _, k := range names {
		if got[k] != want[k] {
			return nil, fmt.Errorf("%w: stack %.80q counts %d in the samples and %d in the profile", errNoTimeline, k, got[k], want[k])
		}
	}
	sort.SliceStable(t.Samples, func(i, j int) bool { return t.Samples[i].Offset < t.Samples[j].Offset })
	t.Origin = t.Samples[0].Offset
	if span := uint64(t.Samples[len(t.Samples)-1].Offset) - uint64(t.Origin); span > MaxTimelineSpan {
		return nil, fmt.Errorf("%w: the samples span %.0f s, more than %d s", errNoTimeline, float64(span)/1e6, MaxTimelineSpan/1_000_000)
	}
	for i := range t.Samples {
		t.Samples[i].Offset -= t.Origin
	}
	return t, nil
}

// perfTimestamp finds the "SECONDS.FRACTION:" field of a perf script sample
// header and returns it in microseconds with its position and length.
func perfTimestamp(line []byte) (us int64, at, n int, ok bool) {
	for i := 0; i < len(line); {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if v, ok := parsePerfSeconds(line[i:j]); ok {
			return v, i, j - i, true
		}
		i = j
	}
	return 0, 0, 0, false
}

// parsePerfSeconds reads "123456.789012:" (digits, a dot, digits, a colon)
// into microseconds.
func parsePerfSeconds(f []byte) (int64, bool) {
	if len(f) < 4 || f[len(f)-1] != ':' {
		return 0, false
	}
	f = f[:len(f)-1]
	dot := bytes.IndexByte(f, '.')
	if dot <= 0 || dot == len(f)-1 || dot > 12 {
		return 0, false
	}
	var sec, frac int64
	for _, c := range f[:dot] {
		if c < '0' || c > '9' {
			return 0, false
		}
		sec = sec*10 + int64(c-'0')
	}
	digits := 0
	for _, c := range f[dot+1:] {
		if c < '0' || c > '9' {
			return 0, false
		}
		if digits < 6 {
			frac = frac*10 + int64(c-'0')
			digits++
		}
	}
	for ; digits < 6; digits++ {
		frac *= 10
	}
	return sec*1_000_000 + frac, true
}
