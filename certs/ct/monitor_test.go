package ct_test

import (
	"context"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

// testLog is a filled test log served over loopback HTTP.
type testLog struct {
	log  *ctlogtest.Log
	sc   *ctlogtest.Scenario
	srv  *httptest.Server
	list *ct.LogList
}

func newTestLog(t testing.TB, static bool, n, every, uniqueNoise int) *testLog {
	t.Helper()
	l, err := ctlogtest.NewLog("", static)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ctlogtest.NewScenario()
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Fill(l, n, every, uniqueNoise); err != nil {
		t.Fatal(err)
	}
	l.Publish()
	srv := httptest.NewServer(l.Handler())
	t.Cleanup(srv.Close)
	return &testLog{log: l, sc: sc, srv: srv, list: mustList(t, l.LogListJSON(srv.URL+"/", "Test Log"))}
}

func mustList(t testing.TB, b []byte) *ct.LogList {
	t.Helper()
	ll, err := ct.ParseLogList(b)
	if err != nil {
		t.Fatal(err)
	}
	return ll
}

func scenarioRules(t testing.TB) []ct.Rule {
	var rules []ct.Rule
	for _, s := range ctlogtest.ScenarioRules {
		r, err := ct.ParseRule(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	return rules
}

// checkExact compares stored findings with the scenario's expectations:
// no miss, no duplicate, no extra, right issuer verdicts.
func checkExact(t *testing.T, st *store.Store, sc *ctlogtest.Scenario) {
	t.Helper()
	fs, err := ct.Findings(context.Background(), st, ct.FindingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var problems []string
	for _, f := range fs {
		k := f.Rule + " " + f.CertKey
		if seen[k] {
			problems = append(problems, "duplicate "+k)
		}
		seen[k] = true
		e, ok := sc.Expected[k]
		if !ok {
			problems = append(problems, "unexpected finding "+k+" names "+strings.Join(f.Names, ","))
			continue
		}
		if e.IssuerExpected != f.IssuerExpected || e.Kind != f.Kind {
			problems = append(problems, "wrong verdict for "+k)
		}
	}
	for k := range sc.Expected {
		if !seen[k] {
			problems = append(problems, "missed "+k)
		}
	}
	sort.Strings(problems)
	if len(problems) > 0 {
		if len(problems) > 10 {
			problems = problems[:10]
		}
		t.Fatalf("%d findings, %d expected; first problems:\n%s", len(fs), len(sc.Expected), strings.Join(problems, "\n"))
	}
	if len(fs) == 0 {
		t.Fatal("scenario produced no findings to check")
	}
}

func TestMonitorSmallBothAPIs(t *testing.T) {
	for _, static := range []bool{false, true} {
		name := "rfc6962"
		if static {
			name = "static"
		}
		t.Run(name, func(t *testing.T) {
			tl := newTestLog(t, static, 3000, 10, 0)
			storetest.Each(t, func(t *testing.T, st *store.Store) {
				m := &ct.Monitor{Store: st, Logs: tl.list.Logs, Rules: scenarioRules(t), Once: true, Batch: 100}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := m.Run(ctx); err != nil {
					t.Fatal(err)
				}
				checkExact(t, st, tl.sc)
				logs, err := ct.Logs(ctx, st)
				if err != nil {
					t.Fatal(err)
				}
				if len(logs) != 1 || logs[0].VerifiedSize != 3000 || logs[0].Position != 3000 || logs[0].Status != "ok" {
					t.Fatalf("log state %+v", logs[0])
				}
			})
		})
	}
}

// TestUndeliveredFindingsAreReportedAndRetried: a failing hook leaves the
// findings pending and makes Run fail; the next run delivers them once.
func TestUndeliveredFindingsAreReportedAndRetried(t *testing.T) {
	tl := newTestLog(t, false, 300, 30, 0)
	st := storetest.SQLite(t)
	flag := t.TempDir() + "/ok"
	out := t.TempDir() + "/out"
	hook := `test -e ` + flag + ` && echo "$SREKIT_CT_DELIVERY_ID" >> ` + out
	m := &ct.Monitor{Store: st, Logs: tl.list.Logs, Rules: scenarioRules(t), Once: true, Notifier: &ct.Notifier{Store: st, Hook: hook}}
	if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "not all delivered") {
		t.Fatalf("a failing hook was not reported: %v", err)
	}
	pending, _ := ct.Findings(context.Background(), st, ct.FindingFilter{Pending: true})
	if len(pending) != len(tl.sc.Expected) || pending[0].NotifyAttempts < 1 || pending[0].NotifyError == "" {
		t.Fatalf("%d pending of %d; first %+v", len(pending), len(tl.sc.Expected), pending[0])
	}
	os.WriteFile(flag, nil, 0o644)
	m2 := &ct.Monitor{Store: st, Logs: tl.list.Logs, Rules: scenarioRules(t), Once: true, Notifier: &ct.Notifier{Store: st, Hook: hook}}
	if err := m2.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	lines := strings.Fields(string(b))
	seen := map[string]bool{}
	for _, l := range lines {
		seen[l] = true
	}
	if len(lines) != len(tl.sc.Expected) || len(seen) != len(lines) {
		t.Fatalf("hook ran %d times (%d distinct) for %d findings", len(lines), len(seen), len(tl.sc.Expected))
	}
}
