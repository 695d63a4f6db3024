package ct_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

// The crash test re-executes this test binary as a monitor process and kills
// it with SIGKILL; TestMain runs that process when the variable is set.
const helperEnv = "SREKIT_CT_MONITOR_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := helperMonitor(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// helperMonitor runs a monitor from environment settings (the child process).
func helperMonitor() error {
	ctx := context.Background()
	st, err := store.Open(ctx, os.Getenv("HELPER_DB"))
	if err != nil {
		return err
	}
	defer st.Close()
	ll, err := ct.LoadLogList(ctx, os.Getenv("HELPER_LOGLIST"), nil)
	if err != nil {
		return err
	}
	var rules []ct.Rule
	for _, s := range ctlogtest.ScenarioRules {
		r, _ := ct.ParseRule(s)
		rules = append(rules, r)
	}
	m := &ct.Monitor{Store: st, Logs: ll.Logs, Rules: rules, Once: true, Batch: 1000, CommitEvery: 2000,
		Notifier: &ct.Notifier{Store: st, Webhook: os.Getenv("HELPER_WEBHOOK"), Secret: []byte("s3cret"), Retry: 100 * time.Millisecond}}
	return m.Run(ctx)
}

// webhookSink records deliveries, checking each signature.
type webhookSink struct {
	mu        sync.Mutex
	byID      map[string]int
	badSig    int
	srv       *httptest.Server
	deliverys int
}

func newWebhookSink(t *testing.T) *webhookSink {
	w := &webhookSink{byID: map[string]int{}}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p ct.Payload
		w.mu.Lock()
		defer w.mu.Unlock()
		if !ct.VerifySignature([]byte("s3cret"), body, r.Header.Get("X-Srekit-Signature")) || json.Unmarshal(body, &p) != nil || p.DeliveryID != r.Header.Get("X-Srekit-Delivery") {
			w.badSig++
			http.Error(rw, "bad signature", 400)
			return
		}
		w.byID[p.DeliveryID]++
		w.deliverys++
	}))
	t.Cleanup(w.srv.Close)
	return w
}

// TestEndToEnd100k runs 100,000 entries in each of an RFC 6962 log and a
// static-ct-api log through a monitor process, kills it with SIGKILL part
// way, restarts it, and checks the findings and webhook deliveries are exact.
func TestEndToEnd100k(t *testing.T) {
	n := 100_000
	if testing.Short() || raceEnabled {
		n = 20_000
		t.Logf("SMALLER RUN: %d entries per log instead of 100,000 (-short or -race)", n)
	}
	rfc := newTestLog(t, false, n, 40, 4000)
	static := newTestLog(t, true, n, 40, 4000)
	expected := map[string]ctlogtest.Expected{}
	for k, v := range rfc.sc.Expected {
		expected[k] = v
	}
	for k, v := range static.sc.Expected {
		expected[k] = v
	}
	dir := t.TempDir()
	listFile := filepath.Join(dir, "loglist.json")
	list := ctlogtest.LogList(
		ctlogtest.LogListEntry{Log: rfc.log, URL: rfc.srv.URL + "/", Description: "Test RFC 6962 log", Operator: "A"},
		ctlogtest.LogListEntry{Log: static.log, URL: static.srv.URL + "/", Description: "Test static log", Operator: "B"})
	if err := os.WriteFile(listFile, list, 0o644); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "ct.db")
	sink := newWebhookSink(t)

	// Open (and migrate) the database before the child uses it.
	st, err := store.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	// First run: a separate process, killed once it has stored a third of the findings.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_DB="+dbPath, "HELPER_LOGLIST="+listFile, "HELPER_WEBHOOK="+sink.srv.URL)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	killed := false
	deadline := time.Now().Add(2 * time.Minute)
poll:
	for time.Now().Before(deadline) {
		select {
		case err := <-waitErr:
			t.Logf("monitor process ended before the kill: %v", err)
			break poll
		case <-time.After(20 * time.Millisecond):
		}
		var stored int
		if err := st.QueryRow(context.Background(), `SELECT COUNT(*) FROM ct_findings`).Scan(&stored); err != nil {
			continue // the child may still be creating the schema
		}
		if stored >= len(expected)/3 {
			cmd.Process.Kill()
			<-waitErr
			killed = true
			break
		}
	}
	if !killed {
		t.Fatal("the monitor process was not killed mid-way (it finished first or never progressed)")
	}
	var before int
	st.QueryRow(context.Background(), `SELECT COUNT(*) FROM ct_findings`).Scan(&before)
	t.Logf("killed the monitor with %d of %d findings stored", before, len(expected))

	// Restart in this process and finish.
	m := &ct.Monitor{Store: st, Logs: mustList(t, list).Logs, Rules: scenarioRules(t), Once: true, Batch: 1000,
		Notifier: &ct.Notifier{Store: st, Webhook: sink.srv.URL, Secret: []byte("s3cret"), Retry: 100 * time.Millisecond}}
	start := time.Now()
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart finished in %v", time.Since(start))
	checkExactSet(t, st, expected)
	logs, _ := ct.Logs(context.Background(), st)
	for _, l := range logs {
		if l.VerifiedSize != uint64(n) || l.Position != uint64(n) || l.Status != "ok" {
			t.Errorf("log %s: %+v", l.Description, l)
		}
	}
	// Webhook: every finding delivered, signatures valid; a repeat is only
	// possible for a finding delivered in the instant of the kill.
	sink.mu.Lock()
	defer sink.mu.Unlock()
	if sink.badSig != 0 {
		t.Errorf("%d deliveries with bad signatures", sink.badSig)
	}
	if len(sink.byID) != len(expected) {
		t.Errorf("%d distinct deliveries, want %d", len(sink.byID), len(expected))
	}
	repeats := sink.deliverys - len(sink.byID)
	if repeats > 1 {
		t.Errorf("%d repeated deliveries", repeats)
	}
	t.Logf("%d deliveries, %d repeated (crash window)", sink.deliverys, repeats)
}

func checkExactSet(t *testing.T, st *store.Store, expected map[string]ctlogtest.Expected) {
	t.Helper()
	sc := &ctlogtest.Scenario{Expected: expected}
	checkExact(t, st, sc)
}

// TestForkDetected: a log that rewrites history is reported, loudly.
func TestForkDetected(t *testing.T) {
	for _, static := range []bool{false, true} {
		t.Run(fmt.Sprint("static=", static), func(t *testing.T) {
			storetest.Each(t, func(t *testing.T, st *store.Store) {
				tl := newTestLog(t, static, 1000, 50, 0)
				ctx := context.Background()
				m := &ct.Monitor{Store: st, Logs: tl.list.Logs, Rules: scenarioRules(t), Once: true}
				if err := m.Run(ctx); err != nil {
					t.Fatal(err)
				}
				// The log now rewrites entry 500 and grows.
				der, _ := tl.sc.Good.Issue(tl.sc.Good.Template([]string{"rewritten.test"}, 10), nil)
				tl.log.Fork(500, der)
				tl.log.AddChain([][]byte{der, tl.sc.Good.DER})
				tl.log.Publish()
				err := m.Run(ctx)
				if err == nil {
					t.Fatal("a forked log was not reported")
				}
				ps, _ := ct.Problems(ctx, st, 10)
				if len(ps) != 1 || ps[0].Kind != "fork" {
					t.Fatalf("problems %+v (err %v)", ps, err)
				}
				logs, _ := ct.Logs(ctx, st)
				if logs[0].Status != "fork" || logs[0].VerifiedSize != 1000 {
					t.Fatalf("log state after fork: %+v", logs[0])
				}
				t.Logf("reported: %v", err)
			})
		})
	}
}

// TestBadSignatureDetected: a tree head whose signature fails is reported.
func TestBadSignatureDetected(t *testing.T) {
	tl := newTestLog(t, true, 300, 0, 0)
	tl.log.CorruptHeadSignature()
	st := storetest.SQLite(t)
	m := &ct.Monitor{Store: st, Logs: tl.list.Logs, Rules: scenarioRules(t), Once: true}
	err := m.Run(context.Background())
	if !errors.Is(err, ct.ErrBadSignature) {
		t.Fatalf("err = %v, want a bad signature", err)
	}
	ps, _ := ct.Problems(context.Background(), st, 10)
	if len(ps) != 1 || ps[0].Kind != "bad_signature" {
		t.Fatalf("problems %+v", ps)
	}
	logs, _ := ct.Logs(context.Background(), st)
	if logs[0].Position != 0 {
		t.Fatalf("entries were processed under a bad tree head: position %d", logs[0].Position)
	}
}

// TestThrottledLogIsWaitedOn: 429 with Retry-After pauses every worker.
func TestThrottledLogIsWaitedOn(t *testing.T) {
	l, _ := ctlogtest.NewLog("", false)
	l.MaxBatch = 100
	sc, _ := ctlogtest.NewScenario()
	if err := sc.Fill(l, 3000, 10, 200); err != nil {
		t.Fatal(err)
	}
	l.Publish()
	th := &ctlogtest.Throttle{Next: l.Handler(), On: map[int]bool{5: true, 12: true, 20: true}, RetryAfter: time.Second, Grace: 300 * time.Millisecond}
	srv := httptest.NewServer(th)
	defer srv.Close()
	st := storetest.SQLite(t)
	m := &ct.Monitor{Store: st, Logs: mustList(t, l.LogListJSON(srv.URL+"/", "throttled")).Logs, Rules: scenarioRules(t), Once: true, Workers: 4, Batch: 100}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, st, sc)
	reqs, throttled, violations := th.Counts()
	t.Logf("%d requests, %d answered 429, %d arrived during a Retry-After", reqs, throttled, violations)
	if throttled != 3 {
		t.Fatalf("the throttle answered 429 %d times, want 3", throttled)
	}
	if violations != 0 {
		t.Fatalf("%d requests arrived while told to wait (%v after the 429)", violations, th.Late)
	}
}
