package drills

import (
	"context"
	"math"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/srekit/srekit/store/storetest"
)

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 3, 2, 4}
	for q, want := range map[float64]float64{0: 1, 0.5: 3, 1: 5, 0.25: 2, 0.9: 4.6} {
		if got := Quantile(xs, q); math.Abs(got-want) > 1e-12 {
			t.Errorf("Quantile(%v) = %v, want %v", q, got, want)
		}
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("Quantile of nothing must be NaN")
	}
}

func TestReport(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	pd := &fakePagerDuty{}
	srv := httptest.NewServer(pd)
	defer srv.Close()
	c := testConfig(t, srv.URL, 2)
	day := time.Date(2027, 3, 3, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day}
	r := &Runner{Store: st, Config: c, Now: clk.Now, Horizon: 5 * 24 * time.Hour}
	if _, err := r.PlanAhead(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := Records(ctx, st, time.Time{}, time.Time{})
	acked := 0
	for _, rec := range recs {
		clk.Set(rec.At)
		r.RunDue(ctx)
		if rec.Person == "p0" {
			if err := Acknowledge(ctx, st, rec.ID, rec.At.Add(time.Duration(acked+1)*time.Minute), "link"); err != nil {
				t.Fatal(err)
			}
			acked++
		}
	}
	if acked < 2 {
		t.Fatalf("only %d drills for p0", acked)
	}
	AddRealPage(ctx, st, "p1", "t1", day.Add(36*time.Hour), "import")
	rep, err := BuildReport(ctx, st, c, day.Add(10*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := rep.People[0], rep.People[1]
	if p0.Acked != acked || p0.AckP50 != Quantile(seq(acked), 0.5)*60 {
		t.Fatalf("p0: %d acked, p50 %v", p0.Acked, p0.AckP50)
	}
	if p1.Acked != 0 || p1.AckP50 != -1 {
		t.Fatalf("p1 has acks: %+v", p1)
	}
	if p1.DaysSince > 8 {
		t.Fatalf("p1's last page (a real one, day 1.5) should be at most 8 days before the report, got %d", p1.DaysSince)
	}
	if len(rep.Teams) != 2 || len(p0.Trend) != 1 || p0.Trend[0].Month != "2027-03" {
		t.Fatalf("teams %d, trend %+v", len(rep.Teams), p0.Trend)
	}
}

func seq(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(i + 1)
	}
	return out
}
