// Package flame is srekit's flame graph toolchain: one stacks model (Profile),
// collapsers that turn profiler output (perf script, DTrace, jstack, pprof,
// bpftrace, folded text) into it, operations around it (merge, diff, filter,
// trim) and renderers that draw it as an interactive SVG or an offline HTML page.
//
// The model follows the shape of github.com/google/pprof/profile: legacy
// formats are converted at the edge into one model, and everything else works
// on that model only. The folded text format ("a;b;c 12", root first) of
// Brendan Gregg's FlameGraph is the interchange format, and srekit's output is
// byte-for-byte compatible with stackcollapse-perf.pl's.
package flame

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unsafe"

	"github.com/google/pprof/profile"
)

// Sample is one distinct call stack and its counts.
type Sample struct {
	Stack  []string // frame names, root first
	Value  int64    // count (samples, ns, bytes...): the "before" side of a diff
	Value2 int64    // second count, used by diffs ("after"); 0 otherwise
}

// Profile is the one stacks model every collapser produces and every renderer reads.
type Profile struct {
	Samples []Sample
	Unit    string // "samples" unless known (e.g. "nanoseconds", "bytes")

	// Diff is true when Value2 carries a second ("after") count, so that
	// WriteFolded writes two columns and renderers draw a differential graph.
	Diff bool

	// Skipped reports the input lines that were not stacks and were left out.
	Skipped Skips
}

// Skips counts input lines a parser left out, keeping the first few with
// their line numbers so a user can find them.
type Skips struct {
	Count int64
	First []Skip
}

// Skip is one input line left out by a parser, and why.
type Skip struct {
	Line   int64
	Text   string // the start of the line, at most 80 bytes
	Reason string
}

// maxSkipExamples bounds how many skipped lines are kept for the report.
const maxSkipExamples = 10

// Add records a skipped line.
func (s *Skips) Add(line int64, text, reason string) {
	s.Count++
	if len(s.First) < maxSkipExamples {
		if len(text) > 80 {
			text = text[:80] + "..."
		}
		s.First = append(s.First, Skip{Line: line, Text: strings.ToValidUTF8(text, "\uFFFD"), Reason: reason})
	}
}

// Err returns the skips as one error ("3 lines were not stacks; first: line 2: ..."),
// or nil when nothing was skipped. Commands use it for --strict.
func (s Skips) Err() error {
	if s.Count == 0 {
		return nil
	}
	f := s.First[0]
	word := "lines were"
	if s.Count == 1 {
		word = "line was"
	}
	return fmt.Errorf("%d %s not stacks; first at line %d: %s: %q", s.Count, word, f.Line, f.Reason, f.Text)
}

// MaxLineBytes is the longest input line the parsers accept; longer lines are
// skipped and reported (stacks of thousands of deep C++ template frames stay
// well under it).
const MaxLineBytes = 4 << 20

// ParseFolded reads flamegraph.pl's folded input: one stack per line, frames
// root first separated by ';', then a space and a count ("a;b;c 12"), or two
// counts for a differential profile ("a;b;c 12 15", as difffolded.pl writes).
// Identical stacks are merged. Lines that are not stacks (as flamegraph.pl
// ignores them) are counted in Profile.Skipped. Decimal counts are rounded.
func ParseFolded(r io.Reader) (*Profile, error) {
	return parseFolded(r, false)
}

// ParseFoldedOrdered is ParseFolded keeping the input order and not merging
// identical stacks, as a flame chart (time on the x axis) needs.
func ParseFoldedOrdered(r io.Reader) (*Profile, error) {
	return parseFolded(r, true)
}

func parseFolded(r io.Reader, ordered bool) (*Profile, error) {
	b := newBuilder()
	b.ordered = ordered
	lr := NewLineReader(r, &b.p.Skipped)
	twoCols := 0
	for {
		line, ok := lr.Next()
		if !ok {
			break
		}
		stack, v1, v2, two, reason := parseFoldedLine(line)
		if reason != "" {
			if len(bytes.TrimSpace(line)) > 0 {
				b.p.Skipped.Add(lr.Line(), string(line), reason)
			}
			continue
		}
		if two {
			twoCols++
		}
		b.addJoined(stack, v1, v2)
	}
	if err := lr.Err(); err != nil {
		return nil, err
	}
	p := b.profile()
	p.Diff = twoCols > 0
	return p, nil
}

// parseFoldedLine splits "stack count [count2]". It follows flamegraph.pl:
// the count is the last run of digits (with an optional decimal part) after
// whitespace; a second such run before it makes a differential line.
func parseFoldedLine(line []byte) (stack []byte, v1, v2 int64, two bool, reason string) {
	s, last, ok := cutCount(line)
	if !ok {
		return nil, 0, 0, false, "no count at end of line"
	}
	// an empty stack (" 12") counts towards the total only, as in flamegraph.pl
	if s2, first, ok := cutCount(s); ok {
		return s2, first, last, true, ""
	}
	return s, last, 0, false, ""
}

// cutCount splits line into what comes before the trailing whitespace and the
// number at its end. The number is digits with an optional ".digits" part; it
// is rounded to an integer.
func cutCount(line []byte) (rest []byte, v int64, ok bool) {
	end := len(line)
	i := end
	for i > 0 && line[i-1] >= '0' && line[i-1] <= '9' {
		i--
	}
	frac := ""
	if i > 0 && line[i-1] == '.' {
		frac = string(line[i:end])
		end = i - 1
		i = end
		for i > 0 && line[i-1] >= '0' && line[i-1] <= '9' {
			i--
		}
	}
	if i == end { // no integer digits
		return nil, 0, false
	}
	if i == 0 || !isFoldedSpace(line[i-1]) {
		return nil, 0, false
	}
	digits := line[i:end]
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil {
		return nil, 0, false // overflow
	}
	if frac != "" && frac[0] >= '5' && n < math.MaxInt64 {
		n++
	}
	// one whitespace character separates the count, as in flamegraph.pl;
	// more belongs to the stack
	return line[:i-1], n, true
}

func isFoldedSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r'
}

// WriteFolded writes the profile as folded text, sorted by stack (byte order,
// as stackcollapse-perf.pl sorts), with identical stacks merged. Differential
// profiles get two count columns.
func (p *Profile) WriteFolded(w io.Writer) error {
	q := p.Compact()
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf []byte
	for _, s := range q.Samples {
		buf = appendJoined(buf[:0], s.Stack)
		buf = append(buf, ' ')
		buf = strconv.AppendInt(buf, s.Value, 10)
		if q.Diff {
			buf = append(buf, ' ')
			buf = strconv.AppendInt(buf, s.Value2, 10)
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// appendJoined appends the frames joined by ';'.
func appendJoined(buf []byte, stack []string) []byte {
	for i, f := range stack {
		if i > 0 {
			buf = append(buf, ';')
		}
		buf = append(buf, f...)
	}
	return buf
}

// compareStacks orders stacks as their ';'-joined strings compare byte-wise,
// without joining them: equal frames are skipped whole, and only the first
// differing frame is looked at.
func compareStacks(a, b []string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && sameString(a[i], b[i]) {
		i++
	}
	if i == n {
		return cmpInt(len(a), len(b)) // one is a prefix of the other (or equal)
	}
	x, y := a[i], b[i]
	m := min(len(x), len(y))
	for k := 0; k < m; k++ {
		if x[k] != y[k] {
			return cmpInt(int(x[k]), int(y[k]))
		}
	}
	// one frame is a prefix of the other: what follows the shorter is ';'
	// if its stack goes on, or the end
	if len(x) < len(y) {
		next := -1
		if i+1 < len(a) {
			next = ';'
		}
		if c := cmpInt(next, int(y[len(x)])); c != 0 {
			return c
		}
		return -1 // unreachable: ';' and the end differ from any byte but ';' itself
	}
	next := -1
	if i+1 < len(b) {
		next = ';'
	}
	if c := cmpInt(int(x[len(y)]), next); c != 0 {
		return c
	}
	return 1
}

// sameString is a == b, quick for the interned frame names of one profile,
// which share their bytes.
func sameString(a, b string) bool {
	return len(a) == len(b) && (unsafe.StringData(a) == unsafe.StringData(b) || a == b)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compact returns a copy with identical stacks merged, empty samples (both
// counts zero) dropped, and samples sorted by stack.
func (p *Profile) Compact() *Profile {
	b := newBuilder()
	b.p.Unit = p.Unit
	b.p.Diff = p.Diff
	b.p.Skipped = p.Skipped
	for _, s := range p.Samples {
		if s.Value == 0 && s.Value2 == 0 {
			continue
		}
		b.add(s.Stack, s.Value, s.Value2)
	}
	q := b.profile()
	return q
}

// SatAdd adds two counts, stopping at the largest int64 instead of
// wrapping around to a negative count.
func SatAdd(a, b int64) int64 {
	if c := a + b; (c > a) == (b > 0) {
		return c
	}
	if b > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
}

// Total is the sum of Value over all samples (the "before" side of a diff).
func (p *Profile) Total() int64 {
	var t int64
	for _, s := range p.Samples {
		t = SatAdd(t, s.Value)
	}
	return t
}

// Total2 is the sum of Value2 over all samples (the "after" side of a diff).
func (p *Profile) Total2() int64 {
	var t int64
	for _, s := range p.Samples {
		t = SatAdd(t, s.Value2)
	}
	return t
}

// Merge sums the counts of identical stacks across profiles. The unit is the
// first profile's; the result is differential if any input is.
func Merge(ps ...*Profile) *Profile {
	b := newBuilder()
	for i, p := range ps {
		if p == nil {
			continue
		}
		if i == 0 || b.p.Unit == "" {
			b.p.Unit = p.Unit
		}
		b.p.Diff = b.p.Diff || p.Diff
		b.p.Skipped.Count += p.Skipped.Count
		for _, sk := range p.Skipped.First {
			if len(b.p.Skipped.First) < maxSkipExamples {
				b.p.Skipped.First = append(b.p.Skipped.First, sk)
			}
		}
		for _, s := range p.Samples {
			b.add(s.Stack, s.Value, s.Value2)
		}
	}
	return b.profile()
}

// Diff pairs two profiles stack by stack: Value is the count in before,
// Value2 the count in after, as difffolded.pl does. Counts are not scaled;
// see Normalize.
func Diff(before, after *Profile) *Profile {
	b := newBuilder()
	b.p.Unit = before.Unit
	if b.p.Unit == "" {
		b.p.Unit = after.Unit
	}
	b.p.Diff = true
	for _, s := range before.Samples {
		b.add(s.Stack, s.Value, 0)
	}
	for _, s := range after.Samples {
		b.add(s.Stack, 0, s.Value)
	}
	return b.profile()
}

// Normalize scales the "before" counts of a differential profile so that both
// sides have the same total, as difffolded.pl -n does, so that a graph shows
// changes in share rather than in volume.
func (p *Profile) Normalize() {
	t1, t2 := p.Total(), p.Total2()
	if t1 == 0 || t2 == 0 || t1 == t2 {
		return
	}
	for i := range p.Samples {
		p.Samples[i].Value = int64(math.Round(float64(p.Samples[i].Value) * float64(t2) / float64(t1)))
	}
}

// FromPprof converts a pprof profile: each sample's locations become frames,
// root first, inlined functions expanded (outermost first). sampleIndex picks
// the sample type (e.g. 0 for samples, 1 for cpu nanoseconds); a negative
// index picks the profile's default sample type, or the last one.
func FromPprof(p *profile.Profile, sampleIndex int) (*Profile, error) {
	if p == nil {
		return nil, errors.New("pprof: nil profile")
	}
	if len(p.SampleType) == 0 {
		return nil, errors.New("pprof: profile has no sample types")
	}
	if sampleIndex < 0 {
		sampleIndex = len(p.SampleType) - 1
		if p.DefaultSampleType != "" {
			for i, st := range p.SampleType {
				if st.Type == p.DefaultSampleType {
					sampleIndex = i
				}
			}
		}
	}
	if sampleIndex >= len(p.SampleType) {
		return nil, fmt.Errorf("pprof: sample index %d out of range: the profile has %d sample types (%s)",
			sampleIndex, len(p.SampleType), pprofTypes(p))
	}
	b := newBuilder()
	b.p.Unit = pprofUnit(p.SampleType[sampleIndex])
	var stack []string
	for n, s := range p.Sample {
		if sampleIndex >= len(s.Value) {
			return nil, fmt.Errorf("pprof: sample %d has %d values, want at least %d", n, len(s.Value), sampleIndex+1)
		}
		v := s.Value[sampleIndex]
		if v < 0 {
			return nil, fmt.Errorf("pprof: sample %d has a negative value %d (a diff-base profile? merge it first)", n, v)
		}
		if v == 0 {
			continue
		}
		stack = stack[:0]
		for i := len(s.Location) - 1; i >= 0; i-- {
			loc := s.Location[i]
			if loc == nil {
				continue
			}
			if len(loc.Line) == 0 {
				stack = append(stack, fmt.Sprintf("0x%x", loc.Address))
				continue
			}
			for j := len(loc.Line) - 1; j >= 0; j-- {
				name := ""
				if fn := loc.Line[j].Function; fn != nil {
					name = fn.Name
					if name == "" {
						name = fn.SystemName
					}
				}
				if name == "" {
					name = fmt.Sprintf("0x%x", loc.Address)
				}
				// ';' separates frames in folded text, so it becomes ':' as the collapsers do
				stack = append(stack, strings.ReplaceAll(name, ";", ":"))
			}
		}
		if len(stack) == 0 {
			stack = append(stack, "[unknown]")
		}
		b.add(stack, v, 0)
	}
	return b.profile(), nil
}

func pprofTypes(p *profile.Profile) string {
	var parts []string
	for i, st := range p.SampleType {
		parts = append(parts, fmt.Sprintf("%d=%s/%s", i, st.Type, st.Unit))
	}
	return strings.Join(parts, ", ")
}

// pprofUnit names a pprof sample type's unit in the model's words.
func pprofUnit(st *profile.ValueType) string {
	switch st.Unit {
	case "", "count":
		return "samples"
	}
	return st.Unit
}

// FromCounts makes a profile from counts keyed by ';'-joined stacks, root
// first (the form collapsers accumulate in).
func FromCounts(counts map[string]int64) *Profile {
	b := newBuilder()
	for k, v := range counts {
		b.addJoined([]byte(k), v, 0)
	}
	return b.profile()
}

// builder accumulates samples, merging identical stacks and interning frame
// names so that millions of repeated frames share their strings. Stacks are
// found by a hash of their joined text, not by the text itself, so that a
// profile of long stacks is not held twice in memory.
type builder struct {
	p       *Profile
	index   map[uint64]int32 // hash of the joined stack -> index in p.Samples
	more    map[string]int   // the rare stacks whose hash collided with another's
	ordered bool             // keep input order, do not merge
	frames  map[string]string
	seed    maphash.Seed
	key     []byte
	prev    []string // the last stack added by addJoined
}

func newBuilder() *builder {
	return &builder{
		p:      &Profile{Unit: "samples"},
		index:  make(map[uint64]int32),
		frames: make(map[string]string),
		seed:   maphash.MakeSeed(),
	}
}

func (b *builder) intern(f string) string {
	if s, ok := b.frames[f]; ok {
		return s
	}
	s := strings.Clone(f)
	b.frames[s] = s
	return s
}

func (b *builder) internBytes(f []byte) string {
	if s, ok := b.frames[string(f)]; ok {
		return s
	}
	s := string(f)
	b.frames[s] = s
	return s
}

// find returns the index of the sample with this joined stack, or -1.
func (b *builder) find(joined []byte, h uint64) int {
	i, ok := b.index[h]
	if !ok {
		return -1
	}
	if equalJoined(b.p.Samples[i].Stack, joined) {
		return int(i)
	}
	if j, ok := b.more[string(joined)]; ok {
		return j
	}
	return -1
}

// insert records a new sample's place.
func (b *builder) insert(joined []byte, h uint64, i int) {
	if _, taken := b.index[h]; !taken {
		b.index[h] = int32(i)
		return
	}
	if b.more == nil {
		b.more = make(map[string]int)
	}
	b.more[string(joined)] = i
}

// equalJoined reports whether stack joined with ';' equals joined.
func equalJoined(stack []string, joined []byte) bool {
	for i, f := range stack {
		if i > 0 {
			if len(joined) == 0 || joined[0] != ';' {
				return false
			}
			joined = joined[1:]
		}
		if len(joined) < len(f) || string(joined[:len(f)]) != f {
			return false
		}
		joined = joined[len(f):]
	}
	return len(joined) == 0 && (len(stack) > 0 || len(joined) == 0)
}

// add merges one stack (frames root first).
func (b *builder) add(stack []string, v1, v2 int64) {
	b.key = appendJoined(b.key[:0], stack)
	h := maphash.Bytes(b.seed, b.key)
	if i := b.find(b.key, h); i >= 0 && !b.ordered {
		b.p.Samples[i].Value = SatAdd(b.p.Samples[i].Value, v1)
		b.p.Samples[i].Value2 = SatAdd(b.p.Samples[i].Value2, v2)
		return
	}
	st := make([]string, len(stack))
	for i, f := range stack {
		st[i] = b.intern(f)
	}
	if !b.ordered {
		b.insert(b.key, h, len(b.p.Samples))
	}
	b.p.Samples = append(b.p.Samples, Sample{Stack: st, Value: v1, Value2: v2})
}

// addJoined merges one stack given as ';'-joined text.
func (b *builder) addJoined(joined []byte, v1, v2 int64) {
	h := maphash.Bytes(b.seed, joined)
	if !b.ordered {
		if i := b.find(joined, h); i >= 0 {
			b.p.Samples[i].Value = SatAdd(b.p.Samples[i].Value, v1)
			b.p.Samples[i].Value2 = SatAdd(b.p.Samples[i].Value2, v2)
			return
		}
	}
	n := bytes.Count(joined, []byte{';'}) + 1
	st := make([]string, 0, n)
	rest := joined
	for len(joined) > 0 { // "" is the empty stack
		i := bytes.IndexByte(rest, ';')
		f := rest
		if i >= 0 {
			f = rest[:i]
		}
		// stacks in a row often share their first frames: reuse those
		// names without a map lookup
		if k := len(st); k < len(b.prev) && b.prev[k] == string(f) {
			st = append(st, b.prev[k])
		} else {
			st = append(st, b.internBytes(f))
		}
		if i < 0 {
			break
		}
		rest = rest[i+1:]
	}
	b.prev = st
	if !b.ordered {
		b.insert(joined, h, len(b.p.Samples))
	}
	b.p.Samples = append(b.p.Samples, Sample{Stack: st, Value: v1, Value2: v2})
}

// profile returns the built profile with samples sorted by stack.
func (b *builder) profile() *Profile {
	p := b.p
	b.index, b.more = nil, nil
	if !b.ordered {
		less := func(i, j int) bool { return compareStacks(p.Samples[i].Stack, p.Samples[j].Stack) < 0 }
		if !sort.SliceIsSorted(p.Samples, less) { // collapsers' output is sorted already
			sort.Slice(p.Samples, less)
		}
	}
	return p
}
