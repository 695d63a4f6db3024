package ct_test

import (
	"bytes"
	"context"
	"fmt"
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
		// The frontier at the start comes from hash tiles (static) or an
		// inclusion proof (RFC 6962), so it is always the whole tree's.
		if logs[0].FrontierStart != 0 || logs[0].Position != l.Size() || logs[0].Status != "ok" {
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
	for _, static := range []bool{true, false} {
		t.Run(fmt.Sprint("static=", static), func(t *testing.T) { testBackfillFromIndex(t, static) })
	}
}

func testBackfillFromIndex(t *testing.T, static bool) {
	l, _ := ctlogtest.NewLog("", static)
	sc, _ := ctlogtest.NewScenario()
	if err := sc.Fill(l, 70500, 100, 300); err != nil {
		t.Fatal(err)
	}
	l.Publish()
	var lie atomic.Bool
	h := l.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if lie.Load() && (strings.HasPrefix(r.URL.Path, "/tile/1/") || strings.HasPrefix(r.URL.Path, "/ct/v1/get-proof-by-hash")) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			if static {
				b[0] ^= 1
			} else {
				// Change the first hash of the audit path, keeping its length.
				if i := bytes.Index(b, []byte(`"audit_path":["`)); i >= 0 {
					j := i + len(`"audit_path":["`)
					if b[j] == 'A' {
						b[j] = 'B'
					} else {
						b[j] = 'A'
					}
				}
			}
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
