package eval

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/srekit/srekit/store"
)

// Save stores a run's result (the /sampling page shows the latest).
func Save(ctx context.Context, st *store.Store, r *Result) (int64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	passed, _ := r.Tail.Pass()
	return st.InsertID(ctx, `INSERT INTO sampling_runs (ran_at_ms, seed, traces, passed, result) VALUES (?, ?, ?, ?, ?)`,
		r.RanAt.UnixMilli(), int64(r.Workload.Seed), int64(r.Workload.Traces), passed, string(b))
}

// Latest returns the most recent stored result, or nil when there is none.
func Latest(ctx context.Context, st *store.Store) (*Result, error) {
	var s string
	err := st.QueryRow(ctx, `SELECT result FROM sampling_runs ORDER BY ran_at_ms DESC, id DESC LIMIT 1`).Scan(&s)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the latest sampler scorecard: %w", err)
	}
	var r Result
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return nil, fmt.Errorf("stored sampler scorecard is not valid JSON: %w", err)
	}
	return &r, nil
}

// StatsPoint is one snapshot of a sampler's counters.
type StatsPoint struct {
	At                        time.Time
	Instance                  string
	SpansIn, SpansKept        int64
	SpansDropped              int64
	TracesKept, TracesDropped int64
	BufferedBytes, MaxMemory  int64
	Stressed                  bool
}

// RecordStats appends a snapshot.
func RecordStats(ctx context.Context, st *store.Store, p StatsPoint) error {
	_, err := st.Exec(ctx, `INSERT INTO sampling_stats (at_ms, instance, spans_in, spans_kept, spans_dropped, traces_kept, traces_dropped, buffered_bytes, max_memory, stressed)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.At.UnixMilli(), p.Instance, p.SpansIn, p.SpansKept, p.SpansDropped,
		p.TracesKept, p.TracesDropped, p.BufferedBytes, p.MaxMemory, p.Stressed)
	return err
}

// RecentStats returns the snapshots since a time, oldest first, all instances.
func RecentStats(ctx context.Context, st *store.Store, since time.Time) ([]StatsPoint, error) {
	rows, err := st.Query(ctx, `SELECT at_ms, instance, spans_in, spans_kept, spans_dropped, traces_kept, traces_dropped, buffered_bytes, max_memory, stressed
		FROM sampling_stats WHERE at_ms >= ? ORDER BY at_ms, id LIMIT 10000`, since.UnixMilli())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StatsPoint
	for rows.Next() {
		var p StatsPoint
		var ms int64
		if err := rows.Scan(&ms, &p.Instance, &p.SpansIn, &p.SpansKept, &p.SpansDropped, &p.TracesKept, &p.TracesDropped, &p.BufferedBytes, &p.MaxMemory, &p.Stressed); err != nil {
			return nil, err
		}
		p.At = time.UnixMilli(ms).UTC()
		out = append(out, p)
	}
	return out, rows.Err()
}
