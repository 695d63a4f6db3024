package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srekit/srekit/profiling"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

const pfToken = "pf-token"

// pfSink keeps the load's result alive so the compiler cannot drop the work.
var pfSink int

// profilingBurnCPU is the hot function of the test service: searches and
// merges must find it.
//
//go:noinline
func profilingBurnCPU(n int) int {
	x := 0
	for i := 0; i < n; i++ {
		x += i * i % 7
	}
	return x
}

// startPprofService starts a real HTTP service with net/http/pprof and a
// /work endpoint, and a client that keeps it busy until the test ends.
func startPprofService(t *testing.T) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	var mu sync.Mutex
	mux.HandleFunc("/work", func(w http.ResponseWriter, r *http.Request) {
		v := profilingBurnCPU(200_000)
		mu.Lock()
		pfSink += v
		mu.Unlock()
		fmt.Fprintln(w, v)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			req, _ := http.NewRequestWithContext(ctx, "GET", base+"/work", nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
	})
	return base
}

// pfServer is a srekit server on a fixed loopback address that a test can
// stop and start again over the same store, as a restart would.
type pfServer struct {
	t      *testing.T
	st     *store.Store
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func (p *pfServer) start() {
	p.t.Helper()
	s, err := New(p.st, Config{Token: pfToken})
	if err != nil {
		p.t.Fatal(err)
	}
	var ln net.Listener
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.done = make(chan error, 1)
	go func() { p.done <- s.Serve(ctx, ln) }()
}

func (p *pfServer) stop() {
	if p.cancel != nil {
		p.cancel()
		<-p.done
		p.cancel = nil
	}
}

func (p *pfServer) url() string { return "http://" + p.addr }

// api calls the server's JSON API with the write token.
func (p *pfServer) api(method, path string, body any, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url()+path, rd)
	req.Header.Set("Authorization", "Bearer "+pfToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode < 300 {
		if s, ok := out.(*string); ok {
			*s = string(b)
		} else if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	if resp.StatusCode >= 300 {
		p.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

func (p *pfServer) waitCapture(id int64, within time.Duration) profiling.Capture {
	p.t.Helper()
	deadline := time.Now().Add(within)
	var c profiling.Capture
	for time.Now().Before(deadline) {
		p.api("GET", fmt.Sprintf("/api/v1/profiling/captures/%d", id), nil, &c)
		if c.Status == profiling.StatusDone || c.Status == profiling.StatusFailed {
			return c
		}
		time.Sleep(200 * time.Millisecond)
	}
	p.t.Fatalf("capture %d still %s after %s", id, c.Status, within)
	return c
}

func (p *pfServer) waitAgent(name string) {
	p.t.Helper()
	for i := 0; i < 100; i++ {
		var as []profiling.Agent
		p.api("GET", "/api/v1/profiling/agents", nil, &as)
		for _, a := range as {
			if a.Name == name {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("agent %s never registered", name)
}

func startAgent(t *testing.T, cfg profiling.AgentConfig) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- profiling.RunAgent(ctx, cfg) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent %s: %v", cfg.Name, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestProfilingEndToEnd runs the whole service over real HTTP: a Go service
// with net/http/pprof under load, agents (the library entry point of
// `srekit agent`), and the srekit server; captures on demand, on a
// schedule (surviving a server restart) and from an Alertmanager webhook,
// a result buffered while the server is down, pre-roll, then merge, search
// and diff through the API.
func TestProfilingEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	svcURL := startPprofService(t)
	srv := &pfServer{t: t, st: storetest.SQLite(t), addr: "127.0.0.1:0"}
	srv.start()
	t.Cleanup(srv.stop)

	stopA := startAgent(t, profiling.AgentConfig{Server: srv.url(), Token: pfToken, Name: "host-a", Host: "host-a",
		Labels: profiling.Labels{"env": "test"}, Pprof: []profiling.PprofTarget{{Name: "api", URL: svcURL}},
		PollWait: 2 * time.Second})
	srv.waitAgent("host-a")

	// On demand.
	var c profiling.Capture
	if code := srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-a", "target": "api", "kind": "cpu", "seconds": 1}, &c); code != 201 {
		t.Fatalf("request capture: %d", code)
	}
	c = srv.waitCapture(c.ID, 30*time.Second)
	if c.Status != profiling.StatusDone || c.SnapshotID == 0 {
		t.Fatalf("on-demand capture: %+v", c)
	}
	var folded string
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d?format=folded", c.SnapshotID), nil, &folded)
	if !strings.Contains(folded, "profilingBurnCPU") {
		t.Fatalf("CPU profile of the loaded service lacks its hot function:\n%.2000s", folded)
	}
	onDemand := c.SnapshotID

	var heap profiling.Capture
	srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-a", "target": "api", "kind": "heap"}, &heap)
	heap = srv.waitCapture(heap.ID, 30*time.Second)
	var snap profiling.Snapshot
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d", heap.SnapshotID), nil, &snap)
	if heap.Status != profiling.StatusDone || snap.Kind != "inuse_space" || snap.Labels["host"] != "host-a" || snap.Labels["env"] != "test" || snap.Labels["service"] != "api" {
		t.Fatalf("heap capture %+v gave snapshot %+v", heap, snap)
	}

	// A kind the agent was not asked to allow is refused by the server.
	if code := srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-a", "target": "api", "kind": "perf"}, nil); code != 400 {
		t.Fatalf("perf capture on a pprof target: status %d, want 400", code)
	}

	// Scheduled, persisted across a restart.
	var sc profiling.Schedule
	if code := srv.api("POST", "/api/v1/profiling/schedules", map[string]any{"agent": "host-a", "target": "api", "kind": "goroutine", "seconds": 1, "every_seconds": 3600, "enabled": true}, &sc); code != 200 {
		t.Fatalf("create schedule: %d", code)
	}
	scheduled := waitScheduled(t, srv, sc.ID, 0)
	srv.stop()
	srv.start()
	var scs []profiling.Schedule
	srv.api("GET", "/api/v1/profiling/schedules", nil, &scs)
	if len(scs) != 1 || scs[0].ID != sc.ID || !scs[0].Next.After(time.Now().Add(50*time.Minute)) {
		t.Fatalf("schedules after restart: %+v", scs)
	}
	scs[0].Next = time.Now() // due now: the restarted server must fire it
	srv.api("PUT", fmt.Sprintf("/api/v1/profiling/schedules/%d", sc.ID), scs[0], nil)
	waitScheduled(t, srv, sc.ID, scheduled)

	// Alert-triggered.
	if code := srv.api("POST", "/api/v1/profiling/alert-rules", map[string]any{"name": "cpu-high", "matchers": map[string]string{"alertname": "HighCPU"},
		"agent_label": "instance", "target": "api", "kind": "cpu", "seconds": 1}, nil); code != 200 {
		t.Fatalf("create alert rule: %d", code)
	}
	payload := map[string]any{"version": "4", "status": "firing", "receiver": "srekit", "groupKey": "{}:{alertname=\"HighCPU\"}",
		"alerts": []map[string]any{
			{"status": "firing", "labels": map[string]string{"alertname": "HighCPU", "instance": "host-a:9100"}, "fingerprint": "abc123", "startsAt": time.Now().Format(time.RFC3339)},
			{"status": "firing", "labels": map[string]string{"alertname": "DiskFull", "instance": "host-a:9100"}, "fingerprint": "def456"},
		}}
	var out struct{ Outcomes []profiling.AlertOutcome }
	if code := srv.api("POST", "/api/v1/alerts/alertmanager", payload, &out); code != 200 || len(out.Outcomes) != 1 || out.Outcomes[0].CaptureID == 0 {
		t.Fatalf("alertmanager webhook: %d %+v", code, out)
	}
	ac := srv.waitCapture(out.Outcomes[0].CaptureID, 30*time.Second)
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d", ac.SnapshotID), nil, &snap)
	if ac.Status != profiling.StatusDone || snap.Labels["alertname"] != "HighCPU" || snap.Labels["alert_fingerprint"] != "abc123" {
		t.Fatalf("alert capture %+v snapshot %+v", ac, snap)
	}
	out.Outcomes = nil
	srv.api("POST", "/api/v1/alerts/alertmanager", payload, &out)
	if len(out.Outcomes) != 1 || out.Outcomes[0].CaptureID != 0 || out.Outcomes[0].Skipped == "" {
		t.Fatalf("repeated notification should not capture again: %+v", out)
	}

	// The server goes away during a capture: the agent keeps the result and delivers it later.
	var lost profiling.Capture
	srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-a", "target": "api", "kind": "cpu", "seconds": 2}, &lost)
	for i := 0; i < 100; i++ {
		srv.api("GET", fmt.Sprintf("/api/v1/profiling/captures/%d", lost.ID), nil, &lost)
		if lost.Status == profiling.StatusRunning {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.stop()
	time.Sleep(3 * time.Second) // the capture finishes and its upload fails
	srv.start()
	if lost = srv.waitCapture(lost.ID, 60*time.Second); lost.Status != profiling.StatusDone {
		t.Fatalf("capture across a server restart: %+v", lost)
	}
	stopA()

	// Pre-roll: a second agent profiles the service continuously.
	startAgent(t, profiling.AgentConfig{Server: srv.url(), Token: pfToken, Name: "host-b", Host: "host-b",
		Pprof: []profiling.PprofTarget{{Name: "api", URL: svcURL}}, Preroll: 3 * time.Second, PrerollChunk: time.Second,
		PollWait: 2 * time.Second})
	srv.waitAgent("host-b")
	time.Sleep(3500 * time.Millisecond) // let the ring fill
	var pc profiling.Capture
	srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-b", "target": "api", "kind": "cpu", "seconds": 1, "preroll": true}, &pc)
	pc = srv.waitCapture(pc.ID, 30*time.Second)
	if pc.Status != profiling.StatusDone || pc.PrerollSnapshotID == 0 {
		t.Fatalf("pre-roll capture: %+v", pc)
	}
	var pre, live profiling.Snapshot
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d", pc.PrerollSnapshotID), nil, &pre)
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d", pc.SnapshotID), nil, &live)
	if pre.Labels["preroll"] != "true" || pre.End.After(live.Start.Add(time.Second)) || pre.End.Sub(pre.Start) < time.Second {
		t.Fatalf("pre-roll snapshot %+v should cover the seconds before live %+v", pre, live)
	}

	// Merge, search and diff through the API.
	var m profiling.MergeResult
	q := url.Values{"query": {`api{env="test"}`}, "kind": {"cpu"}}
	srv.api("GET", "/api/v1/profiling/merge?"+q.Encode(), nil, &m)
	if m.Snapshots < 3 || m.Total == 0 {
		t.Fatalf("merge of host-a's CPU snapshots: %+v", m)
	}
	var mergedFolded string
	q.Set("format", "folded")
	srv.api("GET", "/api/v1/profiling/merge?"+q.Encode(), nil, &mergedFolded)
	if !strings.Contains(mergedFolded, "profilingBurnCPU") {
		t.Fatal("merged profile lacks the hot function")
	}
	var rows []profiling.SearchRow
	srv.api("GET", "/api/v1/profiling/search?pattern=profilingBurnCPU&kind=cpu", nil, &rows)
	if len(rows) != 1 || rows[0].Group != "api" || rows[0].Share <= 0.05 || rows[0].Share > 1 {
		t.Fatalf("search: %+v", rows)
	}
	var diffFolded string
	dq := url.Values{"before_ids": {fmt.Sprint(onDemand)}, "after_ids": {fmt.Sprint(ac.SnapshotID)}, "format": {"folded"}}
	if code := srv.api("GET", "/api/v1/profiling/diff?"+dq.Encode(), nil, &diffFolded); code != 200 {
		t.Fatalf("diff: %d", code)
	}
	first := strings.SplitN(diffFolded, "\n", 2)[0]
	if len(strings.Fields(first)) < 3 {
		t.Fatalf("diff folded output should have two counts per line: %q", first)
	}
	var svg string
	srv.api("GET", "/api/v1/profiling/merge?kind=cpu&format=svg", nil, &svg)
	if !strings.HasPrefix(strings.TrimSpace(svg), "<?xml") && !strings.Contains(svg, "<svg") {
		t.Fatalf("merged SVG: %.200s", svg)
	}

	t.Run("perf", func(t *testing.T) { testPerfCapture(t, srv) })
}

// waitScheduled waits for the schedule to queue a capture other than
// previous and for that capture to finish, returning its id.
func waitScheduled(t *testing.T, srv *pfServer, id, previous int64) int64 {
	t.Helper()
	for i := 0; i < 150; i++ {
		var scs []profiling.Schedule
		srv.api("GET", "/api/v1/profiling/schedules", nil, &scs)
		for _, sc := range scs {
			if sc.ID == id && sc.LastCaptureID != 0 && sc.LastCaptureID != previous {
				c := srv.waitCapture(sc.LastCaptureID, 30*time.Second)
				if c.Status != profiling.StatusDone || c.Kind != "goroutine" || c.Reason != fmt.Sprintf("schedule %d", id) {
					t.Fatalf("scheduled capture: %+v", c)
				}
				return c.ID
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("schedule %d never fired", id)
	return 0
}

// testPerfCapture runs a perf capture of this test process when perf works here.
func testPerfCapture(t *testing.T, srv *pfServer) {
	perf, err := exec.LookPath("perf")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("perf not found: scripts/test.sh installs linux-perf")
		}
		t.Skip("SKIPPED: perf capture NOT TESTED: perf is not installed (apt-get install linux-perf)")
	}
	probe := exec.Command(perf, "record", "-F", "99", "-g", "-o", t.TempDir()+"/probe.data", "-p", fmt.Sprint(os.Getpid()), "--", "sleep", "0.2")
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("SKIPPED: perf capture NOT TESTED: perf record is not permitted here (%v: %s); see /proc/sys/kernel/perf_event_paranoid", err, strings.TrimSpace(string(out)))
	}
	startAgent(t, profiling.AgentConfig{Server: srv.url(), Token: pfToken, Name: "host-perf", Host: "host-perf",
		Perf: true, PollWait: 2 * time.Second})
	srv.waitAgent("host-perf")
	var c profiling.Capture
	srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-perf", "target": "perf", "kind": "perf", "seconds": 1,
		"pid": os.Getpid(), "frequency": 199}, &c)
	if c.PID != os.Getpid() || c.Frequency != 199 {
		t.Fatalf("perf capture fields: pid %d frequency %d", c.PID, c.Frequency)
	}
	c = srv.waitCapture(c.ID, 60*time.Second)
	if c.Status != profiling.StatusDone || c.PID != os.Getpid() || c.Frequency != 199 {
		t.Fatalf("perf capture: %+v", c)
	}
	// The agent sent the perf script, so the snapshot keeps each sample's time.
	var hm struct {
		Snapshot profiling.Snapshot `json:"snapshot"`
		Grid     profiling.Grid     `json:"grid"`
	}
	if code := srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d/heatmap", c.SnapshotID), nil, &hm); code != 200 || hm.Grid.Samples == 0 {
		t.Fatalf("perf capture heat map: %d, %d samples", code, hm.Grid.Samples)
	}
	if hm.Snapshot.Labels["pid"] != fmt.Sprint(os.Getpid()) {
		t.Fatalf("perf snapshot labels %v", hm.Snapshot.Labels)
	}
	// A perf field on a pprof capture is refused.
	if code := srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-perf", "target": "perf", "kind": "perf", "frequency": 99999}, nil); code != 400 {
		t.Fatalf("perf capture at 99999 Hz: status %d, want 400", code)
	}
	var folded string
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d?format=folded", c.SnapshotID), nil, &folded)
	if strings.Count(folded, "\n") == 0 {
		t.Fatal("perf capture stored no stacks")
	}
	t.Logf("perf capture: %d distinct stacks", strings.Count(folded, "\n"))
}

// TestProfilingServerPull: with SREKIT_PROFILING_PULL the server captures
// from a pprof endpoint itself, no agent involved.
func TestProfilingServerPull(t *testing.T) {
	svcURL := startPprofService(t)
	t.Setenv(EnvPull, "svc="+svcURL)
	srv := &pfServer{t: t, st: storetest.SQLite(t), addr: "127.0.0.1:0"}
	srv.start()
	t.Cleanup(srv.stop)
	host, _ := os.Hostname()
	srv.waitAgent("server-" + host)
	var c profiling.Capture
	if code := srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "server-" + host, "target": "svc", "kind": "goroutine"}, &c); code != 201 {
		t.Fatalf("request: %d", code)
	}
	c = srv.waitCapture(c.ID, 30*time.Second)
	var snap profiling.Snapshot
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d", c.SnapshotID), nil, &snap)
	if c.Status != profiling.StatusDone || snap.Kind != "goroutine" || snap.Labels["pull"] != "true" || snap.Total == 0 {
		t.Fatalf("pulled capture %+v snapshot %+v", c, snap)
	}
}

// TestProfilingTwoServersOnePostgres: two srekit servers share one
// PostgreSQL; the agent polls one, the capture is requested on the other.
func TestProfilingTwoServersOnePostgres(t *testing.T) {
	dsn := storetest.PostgresURL(t)
	open := func() *store.Store {
		st, err := store.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	a := &pfServer{t: t, st: open(), addr: "127.0.0.1:0"}
	b := &pfServer{t: t, st: open(), addr: "127.0.0.1:0"}
	a.start()
	t.Cleanup(a.stop)
	b.start()
	t.Cleanup(b.stop)
	svcURL := startPprofService(t)
	startAgent(t, profiling.AgentConfig{Server: a.url(), Token: pfToken, Name: "pg-host", Host: "pg-host",
		Pprof: []profiling.PprofTarget{{Name: "api", URL: svcURL}}, PollWait: 2 * time.Second})
	b.waitAgent("pg-host") // registered through A, seen through B
	var c profiling.Capture
	if code := b.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "pg-host", "target": "api", "kind": "goroutine"}, &c); code != 201 {
		t.Fatalf("request on B: %d", code)
	}
	c = b.waitCapture(c.ID, 30*time.Second)
	var snap profiling.Snapshot
	b.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d", c.SnapshotID), nil, &snap)
	if c.Status != profiling.StatusDone || snap.Labels["host"] != "pg-host" || snap.Total == 0 {
		t.Fatalf("capture across servers: %+v %+v", c, snap)
	}
}

// TestProfilingStoredPullTargets: a pull target added through the API is
// picked up by the running server (no restart) and captured from; a removed
// one goes away; bad ones are refused.
func TestProfilingStoredPullTargets(t *testing.T) {
	svcURL := startPprofService(t)
	t.Setenv(EnvPull, "")
	srv := &pfServer{t: t, st: storetest.SQLite(t), addr: "127.0.0.1:0"}
	srv.start()
	t.Cleanup(srv.stop)
	host, _ := os.Hostname()
	agent := "server-" + host
	for _, bad := range []map[string]any{
		{"name": "api", "url": "ftp://x"},
		{"name": "perf", "url": svcURL},
		{"name": "a b", "url": svcURL},
		{"name": "api", "url": "http://"},
	} {
		if code := srv.api("POST", "/api/v1/profiling/pull-targets", bad, nil); code != 400 {
			t.Errorf("pull target %v: %d, want 400", bad, code)
		}
	}
	if code := srv.api("POST", "/api/v1/profiling/pull-targets", map[string]any{"name": "stored", "url": svcURL, "labels": map[string]string{"env": "test"}}, nil); code != 200 {
		t.Fatalf("add pull target: %d", code)
	}
	targets := func() []string {
		var as []profiling.Agent
		srv.api("GET", "/api/v1/profiling/agents", nil, &as)
		var names []string
		for _, a := range as {
			if a.Name == agent {
				for _, t := range a.Targets {
					names = append(names, t.Name)
				}
			}
		}
		return names
	}
	waitFor := func(want string) {
		t.Helper()
		for i := 0; i < 150; i++ {
			if fmt.Sprint(targets()) == want {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("agent %s targets %v, want %s", agent, targets(), want)
	}
	waitFor("[stored]")
	var c profiling.Capture
	if code := srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": agent, "target": "stored", "kind": "goroutine"}, &c); code != 201 {
		t.Fatalf("request: %d", code)
	}
	c = srv.waitCapture(c.ID, 30*time.Second)
	var snap profiling.Snapshot
	srv.api("GET", fmt.Sprintf("/api/v1/profiling/snapshots/%d", c.SnapshotID), nil, &snap)
	if c.Status != profiling.StatusDone || snap.Labels["env"] != "test" || snap.Labels["service"] != "stored" || snap.Total == 0 {
		t.Fatalf("capture from a stored pull target: %+v snapshot %+v", c, snap)
	}
	var list struct {
		Stored []profiling.PullTarget `json:"stored"`
	}
	srv.api("GET", "/api/v1/profiling/pull-targets", nil, &list)
	if len(list.Stored) != 1 || list.Stored[0].URL != svcURL {
		t.Fatalf("stored pull targets: %+v", list)
	}
	if code := srv.api("DELETE", "/api/v1/profiling/pull-targets/stored", nil, nil); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code := srv.api("DELETE", "/api/v1/profiling/pull-targets/stored", nil, nil); code != 404 {
		t.Fatalf("delete twice: %d, want 404", code)
	}
	waitFor("[]")
	// Deleting the snapshot works once; then it, and any alert rule that
	// never existed, answer 404 rather than a success.
	path := fmt.Sprintf("/api/v1/profiling/snapshots/%d", c.SnapshotID)
	if code := srv.api("DELETE", path, nil, nil); code != 200 {
		t.Fatalf("delete snapshot: %d", code)
	}
	for _, p := range []string{path, "/api/v1/profiling/alert-rules/999999"} {
		if code := srv.api("DELETE", p, nil, nil); code != 404 {
			t.Errorf("DELETE %s: %d, want 404", p, code)
		}
	}
	if code := srv.api("GET", path, nil, nil); code != 404 {
		t.Errorf("GET of a deleted snapshot: %d, want 404", code)
	}
}

// TestProfilingAgentTokens: an agent with its own token registers, captures
// and uploads as itself only; the token cannot act as another agent, and a
// revoked token is refused.
func TestProfilingAgentTokens(t *testing.T) {
	svcURL := startPprofService(t)
	srv := &pfServer{t: t, st: storetest.SQLite(t), addr: "127.0.0.1:0"}
	srv.start()
	t.Cleanup(srv.stop)
	var issued struct {
		Token string `json:"token"`
	}
	if code := srv.api("POST", "/api/v1/profiling/agent-tokens", map[string]string{"agent": "host-t"}, &issued); code != 201 || issued.Token == "" {
		t.Fatalf("issue: %d", code)
	}
	if code := srv.api("POST", "/api/v1/profiling/agent-tokens", map[string]string{"agent": "bad name"}, nil); code != 400 {
		t.Fatalf("issue for a bad name: %d", code)
	}
	// Another agent, with the write token, and one of its captures.
	startAgent(t, profiling.AgentConfig{Server: srv.url(), Token: pfToken, Name: "host-o", Host: "host-o",
		Pprof: []profiling.PprofTarget{{Name: "api", URL: svcURL}}, PollWait: time.Second})
	startAgent(t, profiling.AgentConfig{Server: srv.url(), Token: issued.Token, Name: "host-t", Host: "host-t",
		Pprof: []profiling.PprofTarget{{Name: "api", URL: svcURL}}, PollWait: time.Second})
	srv.waitAgent("host-o")
	srv.waitAgent("host-t")
	var c profiling.Capture
	srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-t", "target": "api", "kind": "goroutine"}, &c)
	if c = srv.waitCapture(c.ID, 30*time.Second); c.Status != profiling.StatusDone {
		t.Fatalf("capture by the agent with its own token: %+v", c)
	}
	var other profiling.Capture
	srv.api("POST", "/api/v1/profiling/captures", map[string]any{"agent": "host-o", "target": "api", "kind": "goroutine"}, &other)

	as := func(tok, method, path, body string) int {
		req, _ := http.NewRequest(method, srv.url()+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct {
		method, path, body string
		code               int
	}{
		{"POST", "/api/v1/profiling/agents", `{"name":"host-o","host":"host-o"}`, 403},
		{"GET", "/api/v1/profiling/agents/host-o/next?wait=0", "", 403},
		{"POST", fmt.Sprintf("/api/v1/profiling/captures/%d/result?format=folded", other.ID), "a;b 1\n", 403},
		{"POST", fmt.Sprintf("/api/v1/profiling/captures/%d/fail", other.ID), `{"error":"x"}`, 403},
		{"POST", "/api/v1/profiling/captures", `{"agent":"host-t","target":"api","kind":"cpu"}`, 401}, // not a write token
		{"GET", "/api/v1/profiling/agents/host-t/next?wait=0", "", 204},
	} {
		if code := as(issued.Token, tc.method, tc.path, tc.body); code != tc.code {
			t.Errorf("%s %s with host-t's token: %d, want %d", tc.method, tc.path, code, tc.code)
		}
	}
	var list []profiling.AgentToken
	srv.api("GET", "/api/v1/profiling/agent-tokens", nil, &list)
	if len(list) != 1 || list[0].Agent != "host-t" {
		t.Fatalf("agent tokens: %+v", list)
	}
	if code := srv.api("DELETE", "/api/v1/profiling/agent-tokens/host-t", nil, nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if code := as(issued.Token, "GET", "/api/v1/profiling/agents/host-t/next?wait=0", ""); code != 401 {
		t.Fatalf("revoked token: %d, want 401", code)
	}
}
