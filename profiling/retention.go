package profiling

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/srekit/srekit/store"
)

// Retention says how long each resolution is kept. Raw snapshots older than
// Raw are merged into one snapshot per hour (per kind and label set), hourly
// ones older than Hourly into one per day, and daily ones older than Daily
// are deleted. This keeps years of history at a bounded cost while recent
// profiles stay exact.
type Retention struct {
	Raw, Hourly, Daily time.Duration
}

// DefaultRetention keeps two days of raw snapshots, a month of hourly and a
// year of daily aggregates.
var DefaultRetention = Retention{Raw: 48 * time.Hour, Hourly: 30 * 24 * time.Hour, Daily: 365 * 24 * time.Hour}

// perCaptureLabels are dropped from aggregates: they name one capture, and
// keeping them would leave nothing to merge.
var perCaptureLabels = []string{"capture", "preroll", "schedule", "alert_fingerprint"}

// CompactResult counts what a Compact did.
type CompactResult struct {
	Merged  int `json:"merged"`  // snapshots folded into aggregates
	Created int `json:"created"` // aggregates written
	Deleted int `json:"deleted"` // daily aggregates past retention
}

// Compact applies the retention policy as of now. Each aggregate is written
// and its inputs deleted in one transaction, so a crash never counts samples
// twice; running it again is harmless.
func (d *DB) Compact(ctx context.Context, pol Retention, now time.Time) (CompactResult, error) {
	var res CompactResult
	for _, step := range []struct {
		from, to string
		age      time.Duration
		bucket   time.Duration
	}{
		{ResRaw, ResHour, pol.Raw, time.Hour},
		{ResHour, ResDay, pol.Hourly, 24 * time.Hour},
	} {
		if step.age <= 0 {
			continue
		}
		old, err := d.List(ctx, Query{Resolution: step.from, Until: now.Add(-step.age)})
		if err != nil {
			return res, err
		}
		type key struct {
			kind, unit, labels string
			bucket             int64
		}
		groups := map[key][]Snapshot{}
		for _, s := range old {
			if s.End.After(now.Add(-step.age)) {
				continue
			}
			l := s.Labels.Clone()
			for _, k := range perCaptureLabels {
				delete(l, k)
			}
			s.Labels = l
			b := s.Start.Truncate(step.bucket)
			groups[key{s.Kind, s.Unit, l.canonical(), b.UnixMilli()}] = append(groups[key{s.Kind, s.Unit, l.canonical(), b.UnixMilli()}], s)
		}
		keys := make([]key, 0, len(groups))
		for k := range groups {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i].bucket < keys[j].bucket })
		for _, k := range keys {
			ss := groups[k]
			start := time.UnixMilli(k.bucket).UTC()
			end := start.Add(step.bucket)
			// An aggregate of this bucket from an earlier run joins the merge.
			existing, err := d.List(ctx, Query{Resolution: step.to, Kind: k.kind, From: start, Until: start})
			if err != nil {
				return res, err
			}
			for _, e := range existing {
				if e.Labels.canonical() == k.labels && e.Start.Equal(start) {
					ss = append(ss, e)
				}
			}
			m, err := d.MergeSnapshots(ctx, ss)
			if err != nil {
				return res, fmt.Errorf("retention: %w", err)
			}
			agg := &Snapshot{Kind: k.kind, Unit: k.unit, Labels: ss[0].Labels, Start: start, End: end,
				Source: "retention", Resolution: step.to, Profile: m.Profile}
			data, hash, raw, total, err := encodeProfile(agg.Profile)
			if err != nil {
				return res, err
			}
			agg.Hash, agg.Total = hash, total
			ids := make([]int64, len(ss))
			for i, s := range ss {
				ids[i] = s.ID
			}
			err = d.S.InTx(ctx, func(tx *store.Tx) error {
				if err := deleteTx(ctx, tx, ids); err != nil {
					return err
				}
				_, _, err := saveTx(ctx, tx, &saveReq{s: agg, data: data, raw: raw})
				return err
			})
			if err != nil {
				return res, fmt.Errorf("retention: %w", err)
			}
			res.Merged += len(ss)
			res.Created++
		}
	}
	if pol.Daily > 0 {
		old, err := d.List(ctx, Query{Resolution: ResDay, Until: now.Add(-pol.Daily)})
		if err != nil {
			return res, err
		}
		var ids []int64
		for _, s := range old {
			if !s.End.After(now.Add(-pol.Daily)) {
				ids = append(ids, s.ID)
			}
		}
		if err := d.Delete(ctx, ids); err != nil {
			return res, err
		}
		res.Deleted = len(ids)
	}
	return res, nil
}
