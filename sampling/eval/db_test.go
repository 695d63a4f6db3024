package eval

import (
	"context"
	"testing"
	"time"

	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

func TestStoreRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		if r, err := Latest(ctx, st); err != nil || r != nil {
			t.Fatalf("empty store: %v %v", r, err)
		}
		now := time.Now().UTC()
		for i, seed := range []uint64{1, 2} {
			r := &Result{RanAt: now.Add(time.Duration(i) * time.Second), Workload: WorkloadSummary{Seed: seed, Traces: 10}}
			r.Tail.ErrorRecall = float64(seed) / 2
			if _, err := Save(ctx, st, r); err != nil {
				t.Fatal(err)
			}
		}
		r, err := Latest(ctx, st)
		if err != nil || r == nil || r.Workload.Seed != 2 || r.Tail.ErrorRecall != 1 {
			t.Fatalf("latest: %+v %v", r, err)
		}
		for i := 0; i < 3; i++ {
			if err := RecordStats(ctx, st, StatsPoint{At: now.Add(time.Duration(i) * time.Second), Instance: "a", SpansIn: int64(i * 10), Stressed: i == 2}); err != nil {
				t.Fatal(err)
			}
		}
		pts, err := RecentStats(ctx, st, now.Add(500*time.Millisecond))
		if err != nil || len(pts) != 2 || pts[1].SpansIn != 20 || !pts[1].Stressed {
			t.Fatalf("recent: %+v %v", pts, err)
		}
	})
}
