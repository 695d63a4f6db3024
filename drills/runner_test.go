package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

// fakePagerDuty is an Events API v2 endpoint that records what it receives
// and, like PagerDuty, folds triggers with the same dedup key into one incident.
type fakePagerDuty struct {
	mu        sync.Mutex
	requests  int
	incidents map[string]map[string]any // dedup key -> first event
	fail      int                       // answer 503 to this many requests first
}

func (f *fakePagerDuty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if f.fail > 0 {
		f.fail--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var ev map[string]any
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil || ev["routing_key"] == "" || ev["dedup_key"] == "" {
		http.Error(w, `{"status":"invalid event"}`, http.StatusBadRequest)
		return
	}
	if f.incidents == nil {
		f.incidents = map[string]map[string]any{}
	}
	key := ev["dedup_key"].(string)
	if _, ok := f.incidents[key]; !ok && ev["event_action"] == "trigger" {
		f.incidents[key] = ev
	}
	w.WriteHeader(http.StatusAccepted)
	fmt.Fprintf(w, `{"status":"success","dedup_key":%q}`, key)
}

func testConfig(t *testing.T, pdURL string, people int) *Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "dry_run: false\nseed: 7\nrules: {min_interval_person: 1h, min_interval_team: 10m, max_per_month: 40, target_per_month: 25}\n")
	b.WriteString("catalogue:\n  - {id: dns, title: DNS fails, runbook: 'https://runbooks.example/dns', severity: critical}\n  - {id: disk, title: Disk full}\n")
	b.WriteString("people:\n")
	for i := 0; i < people; i++ {
		fmt.Fprintf(&b, "  - {name: p%d, team: t%d, timezone: UTC, work_hours: '08:00-18:00', work_days: [mon, tue, wed, thu, fri, sat, sun], opt_in_until: '2030-01-01', pager: {kind: pagerduty, routing_key: rk%d, url: %q}}\n", i, i%2, i, pdURL)
	}
	c, err := ParseConfig("test.yaml", strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// TestRestartMidDayLosesAndDoublesNothing runs a day of drills with a restart
// (a new runner and a freshly parsed configuration over the same store) in the
// middle of it, and a crash between claiming a drill and sending it.
func TestRestartMidDayLosesAndDoublesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		pd := &fakePagerDuty{}
		srv := httptest.NewServer(pd)
		defer srv.Close()
		day := time.Date(2027, 3, 3, 0, 0, 0, 0, time.UTC)
		clk := &clock{t: day}
		newRunner := func() *Runner {
			return &Runner{Store: st, Config: testConfig(t, srv.URL, 3), Now: clk.Now, BaseURL: "http://srekit.test", Horizon: 24 * time.Hour}
		}
		r := newRunner()
		if _, err := r.PlanAhead(ctx); err != nil {
			t.Fatal(err)
		}
		planned, err := Records(ctx, st, day, day.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(planned) == 0 {
			t.Fatal("nothing planned for the day")
		}
		crashed := false
		for m := 0; m < 24*60; m += 5 {
			clk.Set(day.Add(time.Duration(m) * time.Minute))
			if m == 13*60 {
				r = newRunner() // restart
				if _, err := r.PlanAhead(ctx); err != nil {
					t.Fatal(err)
				}
			}
			// Once, crash after claiming a due drill and before sending it.
			if !crashed {
				due, _ := Records(ctx, st, time.Time{}, clk.Now().Add(time.Millisecond), StatusPlanned)
				if len(due) > 0 {
					if ok, err := claim(ctx, st, due[0].ID); err != nil || !ok {
						t.Fatalf("claim: %v %v", ok, err)
					}
					crashed = true
					r = newRunner()
				}
			}
			if _, err := r.RunDue(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if !crashed {
			t.Fatal("the crash was never simulated")
		}
		after, err := Records(ctx, st, day, day.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(planned) {
			t.Fatalf("%d drills planned, %d after the day: restart changed the plan", len(planned), len(after))
		}
		for _, rec := range after {
			if rec.Status != StatusPaged {
				t.Errorf("drill %s at %s is %s (%s), want paged", rec.Person, rec.At, rec.Status, rec.Reason)
			}
		}
		pd.mu.Lock()
		defer pd.mu.Unlock()
		if len(pd.incidents) != len(planned) {
			t.Fatalf("PagerDuty has %d incidents for %d drills", len(pd.incidents), len(planned))
		}
		if pd.requests != len(planned) {
			t.Fatalf("%d requests for %d drills: a page was lost or sent twice", pd.requests, len(planned))
		}
		for _, ev := range pd.incidents {
			summary := ev["payload"].(map[string]any)["summary"].(string)
			if !strings.HasPrefix(summary, "[DRILL] ") {
				t.Fatalf("summary %q does not start with [DRILL]", summary)
			}
		}
	})
}

func TestTemporaryFailureRetriesWithSameKey(t *testing.T) {
	st := storetest.SQLite(t)
	ctx := context.Background()
	pd := &fakePagerDuty{fail: 2}
	srv := httptest.NewServer(pd)
	defer srv.Close()
	day := time.Date(2027, 3, 3, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: day}
	r := &Runner{Store: st, Config: testConfig(t, srv.URL, 1), Now: clk.Now, Horizon: 24 * time.Hour}
	if _, err := r.PlanAhead(ctx); err != nil {
		t.Fatal(err)
	}
	recs, _ := Records(ctx, st, time.Time{}, time.Time{})
	clk.Set(recs[0].At)
	for i := 0; i < 3; i++ {
		if _, err := r.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := RecordByID(ctx, st, recs[0].ID)
	if got.Status != StatusPaged || len(pd.incidents) != 1 || pd.requests != 3 {
		t.Fatalf("status %s, %d incidents, %d requests; want paged after two 503s", got.Status, len(pd.incidents), pd.requests)
	}
}

func TestRulesAtPagingTime(t *testing.T) {
	ctx := context.Background()
	pd := &fakePagerDuty{}
	srv := httptest.NewServer(pd)
	defer srv.Close()
	day := time.Date(2027, 3, 3, 0, 0, 0, 0, time.UTC)

	setup := func(t *testing.T) (*Runner, *clock, Record) {
		st := storetest.SQLite(t)
		clk := &clock{t: day}
		r := &Runner{Store: st, Config: testConfig(t, srv.URL, 1), Now: clk.Now, Horizon: 24 * time.Hour}
		if _, err := r.PlanAhead(ctx); err != nil {
			t.Fatal(err)
		}
		recs, _ := Records(ctx, st, time.Time{}, time.Time{})
		clk.Set(recs[0].At)
		return r, clk, recs[0]
	}
	expectSkip := func(t *testing.T, r *Runner, rec Record, want string) {
		t.Helper()
		if _, err := r.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := RecordByID(ctx, r.Store, rec.ID)
		if got.Status != StatusSkipped || !strings.Contains(got.Reason, want) {
			t.Fatalf("status %s (%s), want skipped because %q", got.Status, got.Reason, want)
		}
		pd.mu.Lock()
		_, reached := pd.incidents[rec.DedupKey]
		pd.mu.Unlock()
		if reached {
			t.Fatal("a skipped drill reached the pager")
		}
	}
	t.Run("paused", func(t *testing.T) {
		r, _, rec := setup(t)
		SetPaused(ctx, r.Store, true)
		expectSkip(t, r, rec, "paused")
	})
	t.Run("opted out after planning", func(t *testing.T) {
		r, clk, rec := setup(t)
		SetOptIn(ctx, r.Store, "p0", "", clk.Now())
		expectSkip(t, r, rec, "opt-in")
	})
	t.Run("missed while down", func(t *testing.T) {
		r, clk, rec := setup(t)
		clk.Set(rec.At.Add(2 * time.Hour))
		expectSkip(t, r, rec, "missed")
	})
	t.Run("incident webhook says open", func(t *testing.T) {
		r, _, rec := setup(t)
		inc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, `{"open": true, "reason": "SEV2 in progress"}`)
		}))
		defer inc.Close()
		r.Config.Incidents.WebhookURL = inc.URL
		expectSkip(t, r, rec, "SEV2 in progress")
	})
	t.Run("incident source unreachable", func(t *testing.T) {
		r, _, rec := setup(t)
		r.Config.Incidents.WebhookURL = "http://127.0.0.1:1/open"
		expectSkip(t, r, rec, "cannot tell")
	})
	t.Run("dry run pages nobody", func(t *testing.T) {
		r, _, rec := setup(t)
		yes := true
		r.Config.DryRun = &yes
		before := pd.requests
		if _, err := r.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		got, _ := RecordByID(ctx, r.Store, rec.ID)
		if got.Status != StatusDryRun || pd.requests != before {
			t.Fatalf("dry run: status %s, %d new requests", got.Status, pd.requests-before)
		}
	})
}

func TestAcknowledgeAndFindings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		pd := &fakePagerDuty{}
		srv := httptest.NewServer(pd)
		defer srv.Close()
		day := time.Date(2027, 3, 3, 0, 0, 0, 0, time.UTC)
		clk := &clock{t: day}
		r := &Runner{Store: st, Config: testConfig(t, srv.URL, 1), Now: clk.Now, Horizon: 24 * time.Hour}
		r.PlanAhead(ctx)
		recs, _ := Records(ctx, st, time.Time{}, time.Time{})
		clk.Set(recs[0].At)
		r.RunDue(ctx)
		rec := recs[0]
		if err := Acknowledge(ctx, st, rec.ID, rec.At.Add(3*time.Minute), "link"); err != nil {
			t.Fatal(err)
		}
		if err := Acknowledge(ctx, st, rec.ID, rec.At.Add(5*time.Minute), "link"); err != ErrAlreadyAcked {
			t.Fatalf("second ack: %v", err)
		}
		if err := Mitigate(ctx, st, rec.ID, rec.At.Add(20*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if err := AddFinding(ctx, st, rec.ID, "resolver config still points at the old DNS", []string{"outdated-software", "dns"}, rec.At.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := AddFinding(ctx, st, rec.ID, "", nil, rec.At); err == nil {
			t.Fatal("empty finding accepted")
		}
		if err := AddFinding(ctx, st, rec.ID, "x", []string{"two words"}, rec.At); err == nil {
			t.Fatal("tag with a space accepted")
		}
		fs, err := Findings(ctx, st)
		if err != nil || len(fs) != 1 || fs[0].Tags[0] != "outdated-software" {
			t.Fatalf("findings %v, %v", fs, err)
		}
		got, _ := RecordByID(ctx, st, rec.ID)
		if got.AckedAt.Sub(rec.At) != 3*time.Minute || got.MitigatedAt.Sub(rec.At) != 20*time.Minute {
			t.Fatalf("ack %v mitigated %v", got.AckedAt, got.MitigatedAt)
		}
	})
}

func TestAckLinkSignature(t *testing.T) {
	st := storetest.SQLite(t)
	secret, err := AckSecret(context.Background(), st)
	if err != nil || len(secret) != 64 {
		t.Fatalf("secret %q, %v", secret, err)
	}
	again, _ := AckSecret(context.Background(), st)
	if again != secret {
		t.Fatal("the ack secret changed")
	}
	u := AckURL("http://x", secret, 42)
	sig := u[strings.Index(u, "sig=")+4:]
	if !CheckAckSignature(secret, 42, sig) || CheckAckSignature(secret, 43, sig) || CheckAckSignature(secret, 42, "00") {
		t.Fatal("ack signature check is wrong")
	}
}

func TestWebhookSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"event":"drill.trigger"}`)
	h := Sign("s3cret", now, body)
	if err := Verify("s3cret", h, body, now, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		header, secret string
		body           []byte
		at             time.Time
		want           string
	}{
		{h, "other", body, now, "does not match"},
		{h, "s3cret", []byte(`{"event":"x"}`), now, "does not match"},
		{h, "s3cret", body, now.Add(time.Hour), "more than"},
		{"garbage", "s3cret", body, now, "malformed"},
		{"t=abc,v1=00", "s3cret", body, now, "malformed"},
		{"t=1800000000", "s3cret", body, now, "malformed"},
		{"", "s3cret", body, now, "malformed"},
	} {
		err := Verify(tc.secret, tc.header, tc.body, tc.at, 5*time.Minute)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Verify(%q) = %v, want %q", tc.header, err, tc.want)
		}
	}
}

func TestWebhookPagerSignsBody(t *testing.T) {
	var got error
	var summary string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = Verify("hook-secret", r.Header.Get(SignatureHeader), b, time.Now(), time.Minute)
		var v map[string]any
		json.Unmarshal(b, &v)
		summary, _ = v["summary"].(string)
	}))
	defer srv.Close()
	p := &Person{Name: "ann", Team: "web", Pager: Pager{Kind: "webhook", URL: srv.URL, Secret: "hook-secret"}}
	d := &Drill{ID: "dns", Title: "DNS fails", Severity: "warning"}
	if err := Send(context.Background(), srv.Client(), Notice{DedupKey: "k", Person: p, Drill: d, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if got != nil || !strings.HasPrefix(summary, "[DRILL]") {
		t.Fatalf("webhook signature check: %v, summary %q", got, summary)
	}
}
