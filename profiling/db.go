package profiling

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/store"
)

// DB is the profiling service's persistence over a srekit store.
type DB struct {
	S *store.Store

	batchOnce sync.Once
	batch     chan *saveReq
}

// saveReq is one snapshot waiting for the group commit.
type saveReq struct {
	s    *Snapshot
	data []byte
	tl   []byte // encoded timeline, if any
	raw  int
	id   int64
	dup  bool
	err  error
	done chan struct{}
}

// maxBatch bounds how many snapshots share one transaction.
const maxBatch = 64

// commitLoop is the group commit: concurrent Saves wait while one
// transaction is committing and then share the next one, so that a durable
// commit (an fsync on SQLite) is paid once per batch instead of once per
// upload. Each Save still returns only after its snapshot is committed.
func (d *DB) commitLoop() {
	for first := range d.batch {
		reqs := []*saveReq{first}
	more:
		for len(reqs) < maxBatch {
			select {
			case r := <-d.batch:
				reqs = append(reqs, r)
			default:
				break more
			}
		}
		ctx := context.Background()
		err := d.S.InTx(ctx, func(tx *store.Tx) error {
			for _, r := range reqs {
				var err error
				if r.id, r.dup, err = saveTx(ctx, tx, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && len(reqs) > 1 {
			// One bad apple: commit each alone so the others are kept.
			for _, r := range reqs {
				r.err = d.S.InTx(ctx, func(tx *store.Tx) error {
					var err error
					r.id, r.dup, err = saveTx(ctx, tx, r)
					return err
				})
			}
		} else {
			for _, r := range reqs {
				r.err = err
			}
		}
		for _, r := range reqs {
			close(r.done)
		}
	}
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// Save stores a snapshot. Its body is stored once per distinct content (by
// SHA-256 of the canonical folded text); saving the same profile with the same
// kind, labels and time range again is a no-op that returns the first id and
// dup=true, so a retried upload never doubles the data.
func (d *DB) Save(ctx context.Context, s *Snapshot) (id int64, dup bool, err error) {
	if s.Profile == nil {
		return 0, false, errors.New("save snapshot: no profile")
	}
	if s.Kind == "" {
		return 0, false, errors.New("save snapshot: no kind")
	}
	if err := s.Labels.Validate(); err != nil {
		return 0, false, fmt.Errorf("save snapshot: %w", err)
	}
	if s.End.IsZero() {
		s.End = time.Now()
	}
	if s.Start.IsZero() || s.Start.After(s.End) {
		s.Start = s.End
	}
	if s.Resolution == "" {
		s.Resolution = ResRaw
	}
	data, hash, raw, total, err := encodeProfile(s.Profile)
	if err != nil {
		return 0, false, fmt.Errorf("save snapshot: encode: %w", err)
	}
	s.Hash, s.Total = hash, total
	var tl []byte
	if s.Timeline != nil && len(s.Timeline.Samples) > 0 {
		if tl, err = s.Timeline.Encode(); err != nil {
			return 0, false, fmt.Errorf("save snapshot: %w", err)
		}
		if len(tl) > maxTimelineBytes {
			tl = nil // the snapshot is kept; only its sub-second view is not
		}
	}
	d.batchOnce.Do(func() {
		d.batch = make(chan *saveReq, maxBatch)
		go d.commitLoop()
	})
	r := &saveReq{s: s, data: data, tl: tl, raw: raw, done: make(chan struct{})}
	select {
	case d.batch <- r:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	<-r.done // not abandoned on ctx: the snapshot may be committing
	if r.err != nil {
		return 0, false, r.err
	}
	s.ID = r.id
	s.HasTimeline = r.tl != nil
	return r.id, r.dup, nil
}

// saveTx writes an encoded snapshot inside a transaction.
func saveTx(ctx context.Context, tx *store.Tx, r *saveReq) (id int64, dup bool, err error) {
	s, data, raw := r.s, r.data, r.raw
	labels := s.Labels.canonical()
	if _, err := tx.Exec(ctx, `INSERT INTO profiling_blobs (hash, data, raw_bytes, total) VALUES (?, ?, ?, ?)
		ON CONFLICT (hash) DO NOTHING`, s.Hash, data, raw, s.Total); err != nil {
		return 0, false, fmt.Errorf("save profile blob: %w", err)
	}
	err = tx.QueryRow(ctx, `INSERT INTO profiling_snapshots
		(blob_hash, kind, unit, labels, start_ms, end_ms, source, total, resolution)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (blob_hash, kind, labels, start_ms, end_ms) DO NOTHING RETURNING id`,
		s.Hash, s.Kind, s.Unit, labels, ms(s.Start), ms(s.End), s.Source, s.Total, s.Resolution).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		err = tx.QueryRow(ctx, `SELECT id FROM profiling_snapshots
			WHERE blob_hash = ? AND kind = ? AND labels = ? AND start_ms = ? AND end_ms = ?`,
			s.Hash, s.Kind, labels, ms(s.Start), ms(s.End)).Scan(&id)
		if err == nil && r.tl != nil {
			err = saveTimelineTx(ctx, tx, id, r.tl, s.Timeline)
		}
		return id, true, err
	}
	if err != nil {
		return 0, false, fmt.Errorf("save snapshot: %w", err)
	}
	for k, v := range s.Labels {
		if _, err := tx.Exec(ctx, "INSERT INTO profiling_labels (snapshot_id, key, value) VALUES (?, ?, ?)", id, k, v); err != nil {
			return 0, false, fmt.Errorf("save snapshot labels: %w", err)
		}
	}
	if r.tl != nil {
		if err := saveTimelineTx(ctx, tx, id, r.tl, s.Timeline); err != nil {
			return 0, false, err
		}
	}
	return id, false, nil
}

// Query selects snapshots. Zero fields select everything.
type Query struct {
	Selector   Selector
	Kind       string
	From       time.Time // snapshots ending at or after From
	Until      time.Time // snapshots starting at or before Until
	IDs        []int64
	Resolution string // raw, hour, day; empty for all
	Unit       string // nanoseconds, samples, bytes, ...; empty for all
	Limit      int    // newest first; 0 for no limit
}

// List returns the snapshots matching q, newest first, without profiles.
func (d *DB) List(ctx context.Context, q Query) ([]Snapshot, error) {
	var where []string
	var args []any
	if q.Kind != "" {
		where = append(where, "s.kind = ?")
		args = append(args, q.Kind)
	}
	if !q.From.IsZero() {
		where = append(where, "s.end_ms >= ?")
		args = append(args, ms(q.From))
	}
	if !q.Until.IsZero() {
		where = append(where, "s.start_ms <= ?")
		args = append(args, ms(q.Until))
	}
	if q.Resolution != "" {
		where = append(where, "s.resolution = ?")
		args = append(args, q.Resolution)
	}
	if q.Unit != "" {
		where = append(where, "s.unit = ?")
		args = append(args, q.Unit)
	}
	if len(q.IDs) > 0 {
		ph := strings.TrimSuffix(strings.Repeat("?,", len(q.IDs)), ",")
		where = append(where, "s.id IN ("+ph+")")
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	exact := true
	for _, m := range q.Selector {
		if m.Op == OpEqual && m.Value != "" {
			where = append(where, "EXISTS (SELECT 1 FROM profiling_labels l WHERE l.snapshot_id = s.id AND l.key = ? AND l.value = ?)")
			args = append(args, m.Name, m.Value)
		} else {
			exact = false
		}
	}
	query := `SELECT s.id, s.blob_hash, s.kind, s.unit, s.labels, s.start_ms, s.end_ms, s.source, s.total, s.resolution,
		CASE WHEN EXISTS (SELECT 1 FROM profiling_timelines t WHERE t.snapshot_id = s.id) THEN 1 ELSE 0 END
		FROM profiling_snapshots s`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY s.start_ms DESC, s.id DESC"
	if exact && q.Limit > 0 {
		query += fmt.Sprintf(" LIMIT %d", q.Limit)
	}
	rows, err := d.S.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	defer rows.Close()
	out := []Snapshot{}
	for rows.Next() {
		var s Snapshot
		var labels string
		var start, end, timeline int64
		if err := rows.Scan(&s.ID, &s.Hash, &s.Kind, &s.Unit, &labels, &start, &end, &s.Source, &s.Total, &s.Resolution, &timeline); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		if s.Labels, err = parseLabelsJSON(labels); err != nil {
			return nil, fmt.Errorf("snapshot %d labels: %w", s.ID, err)
		}
		s.Start, s.End = fromMS(start), fromMS(end)
		s.HasTimeline = timeline != 0
		if !q.Selector.Matches(s.Labels) {
			continue
		}
		out = append(out, s)
		if q.Limit > 0 && len(out) >= q.Limit {
			break
		}
	}
	return out, rows.Err()
}

// Get returns one snapshot with its profile.
func (d *DB) Get(ctx context.Context, id int64) (*Snapshot, error) {
	ss, err := d.List(ctx, Query{IDs: []int64{id}})
	if err != nil {
		return nil, err
	}
	if len(ss) == 0 {
		return nil, fmt.Errorf("snapshot %d: %w", id, ErrNotFound)
	}
	s := ss[0]
	m := stackMap{}
	if err := d.loadBlobs(ctx, map[string]int64{s.Hash: 1}, func(hash string, data []byte) error {
		return decodeInto(m, data)
	}); err != nil {
		return nil, err
	}
	s.Profile = m.profile(s.Unit)
	return &s, nil
}

// loadBlobs fetches the blobs named in hashes, in batches, calling fn for each.
func (d *DB) loadBlobs(ctx context.Context, hashes map[string]int64, fn func(hash string, data []byte) error) error {
	list := make([]string, 0, len(hashes))
	for h := range hashes {
		list = append(list, h)
	}
	sort.Strings(list)
	const batch = 200
	for i := 0; i < len(list); i += batch {
		part := list[i:min(i+batch, len(list))]
		args := make([]any, len(part))
		for j, h := range part {
			args[j] = h
		}
		ph := strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")
		rows, err := d.S.Query(ctx, "SELECT hash, data FROM profiling_blobs WHERE hash IN ("+ph+")", args...)
		if err != nil {
			return fmt.Errorf("load profiles: %w", err)
		}
		for rows.Next() {
			var h string
			var data []byte
			if err := rows.Scan(&h, &data); err != nil {
				rows.Close()
				return fmt.Errorf("load profiles: %w", err)
			}
			if err := fn(h, data); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("load profiles: %w", err)
		}
	}
	return nil
}

// MergeResult describes a merge.
type MergeResult struct {
	Profile   *flame.Profile `json:"-"`
	Kind      string         `json:"kind"`
	Unit      string         `json:"unit"`
	Snapshots int            `json:"snapshots"`
	Blobs     int            `json:"distinct_profiles"`
	Total     int64          `json:"total"`
	Stacks    int            `json:"stacks"`
	Start     time.Time      `json:"start"`
	End       time.Time      `json:"end"`
	// Samples and Ranges describe a merge of time ranges (MergeRanges).
	Samples int     `json:"samples,omitempty"`
	Ranges  []Range `json:"ranges,omitempty"`
}

// Merge sums every snapshot q selects into one profile. The selection must be
// of one kind (a CPU profile plus a heap profile is meaningless). Each
// distinct blob is decoded once, in parallel, and weighted by how many
// selected snapshots share it.
func (d *DB) Merge(ctx context.Context, q Query) (*MergeResult, error) {
	ss, err := d.List(ctx, q)
	if err != nil {
		return nil, err
	}
	return d.MergeSnapshots(ctx, ss)
}

// MergeSnapshots merges listed snapshots (see Merge).
func (d *DB) MergeSnapshots(ctx context.Context, ss []Snapshot) (*MergeResult, error) {
	if len(ss) == 0 {
		return nil, fmt.Errorf("merge: no snapshot matches: %w", ErrNotFound)
	}
	res := &MergeResult{Kind: ss[0].Kind, Unit: ss[0].Unit, Snapshots: len(ss), Start: ss[0].Start, End: ss[0].End}
	weights := map[string]int64{}
	for _, s := range ss {
		if s.Kind != res.Kind {
			return nil, fmt.Errorf("merge: the selection mixes kinds %s and %s: choose one kind", res.Kind, s.Kind)
		}
		if s.Unit != res.Unit {
			return nil, fmt.Errorf("merge: the selection mixes units %s and %s (pprof CPU profiles count nanoseconds, perf and folded ones samples): choose one with unit=%s or unit=%s", res.Unit, s.Unit, res.Unit, s.Unit)
		}
		weights[s.Hash]++
		if s.Start.Before(res.Start) {
			res.Start = s.Start
		}
		if s.End.After(res.End) {
			res.End = s.End
		}
	}
	res.Blobs = len(weights)
	merged, err := d.mergeBlobs(ctx, weights)
	if err != nil {
		return nil, err
	}
	res.Profile = merged.profile(res.Unit)
	res.Total = merged.total()
	res.Stacks = len(res.Profile.Samples)
	return res, nil
}

// mergeBlobs decodes the weighted blobs with one worker per CPU and sums them.
func (d *DB) mergeBlobs(ctx context.Context, weights map[string]int64) (stackMap, error) {
	type job struct {
		hash string
		data []byte
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan job, workers*2)
	results := make(chan stackMap, workers*2)
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				m := stackMap{}
				if err := decodeInto(m, j.data); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("profile %s: %w", j.hash[:12], err) })
					continue
				}
				if w := weights[j.hash]; w != 1 {
					for k, v := range m {
						m[k] = v * w
					}
				}
				results <- m
			}
		}()
	}
	merged := stackMap{}
	done := make(chan struct{})
	go func() {
		for m := range results {
			if len(merged) == 0 {
				merged = m
				continue
			}
			for k, v := range m {
				merged[k] += v
			}
		}
		close(done)
	}()
	err := d.loadBlobs(ctx, weights, func(hash string, data []byte) error {
		jobs <- job{hash, data}
		return nil
	})
	close(jobs)
	wg.Wait()
	close(results)
	<-done
	if err != nil {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return merged, nil
}

// Diff merges two selections and returns flame's differential profile
// (Value is before, Value2 after).
func (d *DB) Diff(ctx context.Context, before, after Query) (*flame.Profile, *MergeResult, *MergeResult, error) {
	a, err := d.Merge(ctx, before)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("before: %w", err)
	}
	b, err := d.Merge(ctx, after)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("after: %w", err)
	}
	if a.Kind != b.Kind {
		return nil, nil, nil, fmt.Errorf("diff: before is %s and after is %s: compare one kind", a.Kind, b.Kind)
	}
	if a.Unit != b.Unit {
		return nil, nil, nil, fmt.Errorf("diff: before counts %s and after %s: compare profiles of one unit", a.Unit, b.Unit)
	}
	return flame.Diff(a.Profile, b.Profile), a, b, nil
}

// SearchRow is one group of a search: how much of its time is spent in
// stacks that have a frame matching the pattern.
type SearchRow struct {
	Group     string  `json:"group"`
	Unit      string  `json:"unit"` // a group's profiles in another unit form another row
	Snapshots int     `json:"snapshots"`
	Total     int64   `json:"total"`
	Matched   int64   `json:"matched"`
	Share     float64 `json:"share"`
	// Top lists the matching frames with the most value, largest first.
	Top []FrameValue `json:"top"`
}

// FrameValue is a function and the value of the stacks that contain it.
type FrameValue struct {
	Frame string `json:"frame"`
	Value int64  `json:"value"`
}

// Search answers "which services spend time in X": over the snapshots q
// selects, it sums the value of stacks with a frame matching re, grouped by
// the label groupBy (service when empty), with the share of each group's total.
func (d *DB) Search(ctx context.Context, q Query, re *regexp.Regexp, groupBy string) ([]SearchRow, error) {
	if groupBy == "" {
		groupBy = "service"
	}
	ss, err := d.List(ctx, q)
	if err != nil {
		return nil, err
	}
	// Per blob: matched value and per matching frame value, computed once.
	type blobResult struct {
		total, matched int64
		frames         map[string]int64
	}
	weights := map[string]int64{}
	for _, s := range ss {
		weights[s.Hash] = 1
	}
	frameMatch := map[string]bool{}
	blobs := map[string]*blobResult{}
	err = d.loadBlobs(ctx, weights, func(hash string, data []byte) error {
		m := stackMap{}
		if err := decodeInto(m, data); err != nil {
			return fmt.Errorf("profile %s: %w", hash[:12], err)
		}
		br := &blobResult{frames: map[string]int64{}}
		for stack, v := range m {
			br.total += v
			hit := false
			seen := map[string]bool{}
			for _, f := range strings.Split(stack, ";") {
				ok, known := frameMatch[f]
				if !known {
					ok = re.MatchString(f)
					frameMatch[f] = ok
				}
				if ok {
					hit = true
					if !seen[f] {
						seen[f] = true
						br.frames[f] += v
					}
				}
			}
			if hit {
				br.matched += v
			}
		}
		blobs[hash] = br
		return nil
	})
	if err != nil {
		return nil, err
	}
	groups := map[string]*SearchRow{}
	frames := map[string]map[string]int64{}
	for _, s := range ss {
		g := s.Labels[groupBy] + "\x00" + s.Unit
		row := groups[g]
		if row == nil {
			row = &SearchRow{Group: s.Labels[groupBy], Unit: s.Unit}
			groups[g] = row
			frames[g] = map[string]int64{}
		}
		br := blobs[s.Hash]
		if br == nil {
			continue
		}
		row.Snapshots++
		row.Total += br.total
		row.Matched += br.matched
		for f, v := range br.frames {
			frames[g][f] += v
		}
	}
	out := make([]SearchRow, 0, len(groups))
	for g, row := range groups {
		if row.Total > 0 {
			row.Share = float64(row.Matched) / float64(row.Total)
		}
		for f, v := range frames[g] {
			row.Top = append(row.Top, FrameValue{f, v})
		}
		sort.Slice(row.Top, func(i, j int) bool {
			if row.Top[i].Value != row.Top[j].Value {
				return row.Top[i].Value > row.Top[j].Value
			}
			return row.Top[i].Frame < row.Top[j].Frame
		})
		if len(row.Top) > 5 {
			row.Top = row.Top[:5]
		}
		if row.Top == nil {
			row.Top = []FrameValue{}
		}
		out = append(out, *row)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Share != out[j].Share {
			return out[i].Share > out[j].Share
		}
		if out[i].Group != out[j].Group {
			return out[i].Group < out[j].Group
		}
		return out[i].Unit < out[j].Unit
	})
	return out, nil
}

// Delete removes snapshots and the blobs no snapshot uses any more.
func (d *DB) Delete(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	return d.S.InTx(ctx, func(tx *store.Tx) error { return deleteTx(ctx, tx, ids) })
}

// DeleteOne removes one snapshot, like Delete; ErrNotFound when there is
// none with that id, so that an API caller can tell a typo from a success.
func (d *DB) DeleteOne(ctx context.Context, id int64) error {
	return d.S.InTx(ctx, func(tx *store.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM profiling_snapshots WHERE id = ?", id).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("snapshot %d: %w", id, ErrNotFound)
			}
			return err
		}
		return deleteTx(ctx, tx, []int64{id})
	})
}

// deleteTx removes snapshots and unused blobs inside a transaction.
func deleteTx(ctx context.Context, tx *store.Tx, ids []int64) error {
	{
		for i := 0; i < len(ids); i += 500 {
			part := ids[i:min(i+500, len(ids))]
			args := make([]any, len(part))
			for j, id := range part {
				args[j] = id
			}
			ph := strings.TrimSuffix(strings.Repeat("?,", len(part)), ",")
			if _, err := tx.Exec(ctx, "DELETE FROM profiling_timelines WHERE snapshot_id IN ("+ph+")", args...); err != nil {
				return fmt.Errorf("delete snapshot timelines: %w", err)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM profiling_labels WHERE snapshot_id IN ("+ph+")", args...); err != nil {
				return fmt.Errorf("delete snapshot labels: %w", err)
			}
			if _, err := tx.Exec(ctx, "DELETE FROM profiling_snapshots WHERE id IN ("+ph+")", args...); err != nil {
				return fmt.Errorf("delete snapshots: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, "DELETE FROM profiling_blobs WHERE hash NOT IN (SELECT blob_hash FROM profiling_snapshots)"); err != nil {
			return fmt.Errorf("delete unused profiles: %w", err)
		}
		return nil
	}
}

// Stats summarises what is stored.
type Stats struct {
	Snapshots       int64 `json:"snapshots"`
	Blobs           int64 `json:"distinct_profiles"`
	CompressedBytes int64 `json:"compressed_bytes"`
	RawBytes        int64 `json:"raw_bytes"`
}

// Stats counts snapshots and stored bytes.
func (d *DB) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	if err := d.S.QueryRow(ctx, "SELECT COUNT(*) FROM profiling_snapshots").Scan(&st.Snapshots); err != nil {
		return st, err
	}
	err := d.S.QueryRow(ctx, "SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0), COALESCE(SUM(raw_bytes), 0) FROM profiling_blobs").
		Scan(&st.Blobs, &st.CompressedBytes, &st.RawBytes)
	return st, err
}
