package profiling

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/srekit/srekit/store"
)

// maxTimelineBytes bounds one stored (compressed) timeline; a bigger one is
// not kept, and the snapshot falls back to the snapshot-granularity heat map.
const maxTimelineBytes = 32 << 20

func saveTimelineTx(ctx context.Context, tx *store.Tx, id int64, data []byte, t *Timeline) error {
	if _, err := tx.Exec(ctx, `INSERT INTO profiling_timelines (snapshot_id, data, samples, span_us) VALUES (?, ?, ?, ?)
		ON CONFLICT (snapshot_id) DO NOTHING`, id, data, len(t.Samples), t.Span()); err != nil {
		return fmt.Errorf("save snapshot timeline: %w", err)
	}
	return nil
}

// ErrNoTimeline is returned for the time view of a snapshot that has no
// per-sample timestamps.
var ErrNoTimeline = errors.New("no per-sample timestamps: only perf script snapshots have a sub-second view (pprof and folded profiles are already aggregated)")

// Timeline returns the per-sample timeline of snapshot id.
func (d *DB) Timeline(ctx context.Context, id int64) (*Timeline, error) {
	var data []byte
	err := d.S.QueryRow(ctx, "SELECT data FROM profiling_timelines WHERE snapshot_id = ?", id).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		if ss, lerr := d.List(ctx, Query{IDs: []int64{id}}); lerr == nil && len(ss) == 0 {
			return nil, fmt.Errorf("snapshot %d: %w", id, ErrNotFound)
		}
		return nil, fmt.Errorf("snapshot %d: %w", id, ErrNoTimeline)
	}
	if err != nil {
		return nil, fmt.Errorf("snapshot %d timeline: %w", id, err)
	}
	t, err := DecodeTimeline(data)
	if err != nil {
		return nil, fmt.Errorf("snapshot %d: %w", id, err)
	}
	return t, nil
}

// Range is a time range of one snapshot with a timeline, in microseconds
// after its first sample: [From, Until).
type Range struct {
	ID    int64 `json:"id"`
	From  int64 `json:"from_us"`
	Until int64 `json:"until_us"`
}

// String is the form ParseRanges reads: "ID:START-END" in seconds.
func (r Range) String() string {
	f := func(us int64) string { return strconv.FormatFloat(float64(us)/1e6, 'f', -1, 64) }
	return fmt.Sprintf("%d:%s-%s", r.ID, f(r.From), f(r.Until))
}

// ParseRanges reads "ID:START-END,ID:START-END" (seconds after the
// snapshot's first sample, fractions allowed, END excluded).
func ParseRanges(s string) ([]Range, error) {
	var out []Range
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		ids, span, ok := strings.Cut(f, ":")
		if !ok {
			return nil, fmt.Errorf("range %q: want ID:START-END in seconds, e.g. 12:1.5-3", f)
		}
		id, err := strconv.ParseInt(ids, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("range %q: %q is not a snapshot id", f, ids)
		}
		a, b, ok := strings.Cut(span, "-")
		if !ok {
			return nil, fmt.Errorf("range %q: want ID:START-END in seconds, e.g. 12:1.5-3", f)
		}
		from, err1 := parseSeconds(a)
		until, err2 := parseSeconds(b)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("range %q: start and end are seconds after the first sample, e.g. 1.5", f)
		}
		if until <= from {
			return nil, fmt.Errorf("range %q: the end must be after the start", f)
		}
		out = append(out, Range{ID: id, From: from, Until: until})
		if len(out) > 1000 {
			return nil, errors.New("ranges: at most 1000")
		}
	}
	if len(out) == 0 {
		return nil, errors.New("ranges: none given")
	}
	return out, nil
}

// parseSeconds reads a non-negative number of seconds into microseconds.
func parseSeconds(s string) (int64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > MaxTimelineSpan/1e6+1 {
		return 0, fmt.Errorf("%q: want seconds", s)
	}
	return int64(math.Round(v * 1e6)), nil
}

// MergeRanges sums the samples of time ranges of snapshots with timelines
// into one profile (the flame graph of a FlameScope selection, or of several
// selections merged). Overlapping ranges of one snapshot count once.
func (d *DB) MergeRanges(ctx context.Context, rs []Range) (*MergeResult, error) {
	if len(rs) == 0 {
		return nil, errors.New("merge ranges: none given")
	}
	byID := map[int64][]Range{}
	var ids []int64
	for _, r := range rs {
		if byID[r.ID] == nil {
			ids = append(ids, r.ID)
		}
		byID[r.ID] = append(byID[r.ID], r)
	}
	ss, err := d.List(ctx, Query{IDs: ids})
	if err != nil {
		return nil, err
	}
	if len(ss) != len(ids) {
		found := map[int64]bool{}
		for _, s := range ss {
			found[s.ID] = true
		}
		for _, id := range ids {
			if !found[id] {
				return nil, fmt.Errorf("snapshot %d: %w", id, ErrNotFound)
			}
		}
	}
	res := &MergeResult{Kind: ss[0].Kind, Unit: ss[0].Unit, Snapshots: len(ss)}
	merged := stackMap{}
	for _, s := range ss {
		if s.Kind != res.Kind || s.Unit != res.Unit {
			return nil, fmt.Errorf("merge ranges: snapshot %d is %s in %s, snapshot %d %s in %s: choose one kind and unit",
				ss[0].ID, res.Kind, res.Unit, s.ID, s.Kind, s.Unit)
		}
		t, err := d.Timeline(ctx, s.ID)
		if err != nil {
			return nil, err
		}
		m := stackMap{}
		if err := d.loadBlobs(ctx, map[string]int64{s.Hash: 1}, func(_ string, data []byte) error { return decodeInto(m, data) }); err != nil {
			return nil, err
		}
		names := make([]string, 0, len(m))
		for k, v := range m {
			if v != 0 {
				names = append(names, k)
			}
		}
		sort.Strings(names)
		if len(names) != t.Stacks {
			return nil, fmt.Errorf("snapshot %d: its timeline names %d stacks, its profile has %d", s.ID, t.Stacks, len(names))
		}
		sums := make([]int64, len(names))
		for _, r := range unionRanges(byID[s.ID]) {
			res.Samples += t.Range(r.From, r.Until, sums)
		}
		for i, v := range sums {
			if v != 0 {
				merged[names[i]] += v
			}
		}
		if res.Start.IsZero() || s.Start.Before(res.Start) {
			res.Start = s.Start
		}
		if s.End.After(res.End) {
			res.End = s.End
		}
	}
	res.Blobs = len(ss)
	res.Ranges = rs
	res.Profile = merged.profile(res.Unit)
	res.Total = merged.total()
	res.Stacks = len(res.Profile.Samples)
	return res, nil
}

// unionRanges sorts one snapshot's ranges and joins overlapping ones.
func unionRanges(rs []Range) []Range {
	rs = append([]Range(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].From < rs[j].From })
	out := rs[:0]
	for _, r := range rs {
		if n := len(out); n > 0 && r.From <= out[n-1].Until {
			out[n-1].Until = max(out[n-1].Until, r.Until)
			continue
		}
		out = append(out, r)
	}
	return out
}
