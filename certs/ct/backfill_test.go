package ct_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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
		// Static logs get the frontier at the start from hash tiles (so it
		// starts at 0); RFC 6962 logs start an unverified frontier there.
		wantFS := want
		if static {
			wantFS = 0
		}
		if logs[0].FrontierStart != wantFS || logs[0].Position != l.Size() || logs[0].Status != "ok" {
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

// TestBackfillFromIndexVerified: a static log backfilled from an index gets
// its frontier from hash tiles, so the root is still checked; a log whose
// hash tiles lie is caught at that check.
func TestBackfillFromIndexVerified(t *testing.T) {
	l, _ := ctlogtest.NewLog("", true)
	sc, _ := ctlogtest.NewScenario()
	if err := sc.Fill(l, 70500, 100, 300); err != nil {
		t.Fatal(err)
	}
	l.Publish()
	var lie atomic.Bool
	h := l.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lie.Load() && strings.HasPrefix(r.URL.Path, "/tile/1/") {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			b[0] ^= 1
			w.Write(b)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	list := mustList(t, l.LogListJSON(srv.URL+"/", "tiles"))
	for _, start := range []uint64{65536, 65793, 70001, 70499} {
		st := storetest.SQLite(t)
		m := &ct.Monitor{Store: st, Logs: list.Logs, Rules: scenarioRules(t), Once: true, StartIndex: start}
		if err := m.Run(context.Background()); err != nil {
			t.Fatalf("start %d: %v", start, err)
		}
		logs, _ := ct.Logs(context.Background(), st)
		if logs[0].FrontierStart != 0 || logs[0].VerifiedSize != l.Size() || logs[0].Status != "ok" {
			t.Fatalf("start %d: %+v", start, logs[0])
		}
	}
	// A log serving a wrong hash tile is reported, not trusted.
	lie.Store(true)
	st := storetest.SQLite(t)
	m := &ct.Monitor{Store: st, Logs: list.Logs, Rules: scenarioRules(t), Once: true, StartIndex: 70000}
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "inconsistent") {
		t.Fatalf("lying hash tiles not caught: %v", err)
	}
}
