package ct_test

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
	"github.com/srekit/srekit/store/storetest"
)

// TestBackfillFromDate starts a new log at the first entry logged on or
// after a date, found by binary search, and processes only from there.
func TestBackfillFromDate(t *testing.T) {
	for _, static := range []bool{false, true} {
		l, _ := ctlogtest.NewLog("", static)
		sc, _ := ctlogtest.NewScenario()
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		n := 0
		l.Clock = func() time.Time { n++; return base.Add(time.Duration(n) * time.Minute) }
		if err := sc.Fill(l, 1000, 10, 0); err != nil {
			t.Fatal(err)
		}
		l.Publish()
		srv := httptest.NewServer(l.Handler())
		defer srv.Close()
		start := base.Add(600*time.Minute + 30*time.Second)
		want := uint64(0)
		for want < l.Size() && time.UnixMilli(int64(l.Entry(want).Timestamp)).Before(start) {
			want++
		}
		st := storetest.SQLite(t)
		m := &ct.Monitor{Store: st, Logs: mustList(t, l.LogListJSON(srv.URL+"/", "dated")).Logs, Rules: scenarioRules(t), Once: true, StartTime: start}
		if err := m.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		logs, _ := ct.Logs(context.Background(), st)
		if logs[0].FrontierStart != want || logs[0].Position != l.Size() || logs[0].Status != "ok" {
			t.Fatalf("static=%v: started at %d, want %d; state %+v", static, logs[0].FrontierStart, want, logs[0])
		}
		fs, _ := ct.Findings(context.Background(), st, ct.FindingFilter{})
		if len(fs) == 0 {
			t.Fatal("no findings after the start")
		}
		for _, f := range fs {
			if f.Index < want {
				t.Fatalf("finding at %d, before the start %d", f.Index, want)
			}
		}
	}
}
