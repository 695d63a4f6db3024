package mesh

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func testCluster(t *testing.T, cfg Cluster) *cluster {
	t.Helper()
	c, err := newCluster(cfg, "", nil, newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPanicModeUsesAllWhenTooFewHealthy(t *testing.T) {
	c := testCluster(t, Cluster{Name: "x", Endpoints: []EndpointConfig{{Address: "a:1"}, {Address: "b:1"}, {Address: "c:1"}}})
	eps := c.endpoints()
	now := time.Now()
	eps[0].unhealthy = true
	seen := map[string]bool{}
	for range 200 {
		seen[c.pick(now, nil).Addr] = true
	}
	if seen["a:1"] || !seen["b:1"] || !seen["c:1"] {
		t.Errorf("one of three unhealthy (above the 50%% panic threshold): picks %v", seen)
	}
	eps[1].unhealthy = true // one of three healthy: below the threshold
	seen = map[string]bool{}
	for range 200 {
		seen[c.pick(now, nil).Addr] = true
	}
	if !seen["a:1"] || !seen["b:1"] || !seen["c:1"] {
		t.Errorf("panic mode should spread over all endpoints: picks %v", seen)
	}
}

func TestEjectionGrowsAndIsCapped(t *testing.T) {
	c := testCluster(t, Cluster{Name: "x",
		Endpoints: []EndpointConfig{{Address: "a:1"}, {Address: "b:1"}, {Address: "c:1"}, {Address: "d:1"}},
		Outlier:   &OutlierConfig{Consecutive5xx: 2, BaseEjection: Duration(time.Second), MaxEjection: Duration(3 * time.Second), MaxEjectedPercent: 50}})
	eps := c.endpoints()
	now := time.Now()
	fail := func(e *Endpoint, at time.Time) {
		c.record(e, at, time.Millisecond, outcome5xx)
		c.record(e, at, time.Millisecond, outcome5xx)
	}
	fail(eps[0], now)
	if st := eps[0].Status(now); !st.Ejected || st.EjectedUntil.Sub(now) != time.Second {
		t.Fatalf("first ejection: %+v, want 1s", st)
	}
	// Back after a second, ejected again: twice the base time.
	later := now.Add(1100 * time.Millisecond)
	if !eps[0].available(later) {
		t.Fatal("the endpoint should be back after its ejection time")
	}
	fail(eps[0], later)
	if d := eps[0].Status(later).EjectedUntil.Sub(later); d != 2*time.Second {
		t.Errorf("second ejection lasts %v, want 2s", d)
	}
	fail(eps[1], later)
	if !eps[1].Status(later).Ejected {
		t.Errorf("a second endpoint of four may be ejected (50%%)")
	}
	fail(eps[2], later)
	if eps[2].Status(later).Ejected {
		t.Errorf("a third endpoint of four was ejected: over max_ejected_percent 50")
	}
	// A healthy stretch longer than max_ejection forgives one ejection.
	calm := later.Add(5 * time.Second)
	eps[0].available(calm)
	c.record(eps[0], calm, time.Millisecond, outcomeOK)
	fail(eps[0], calm.Add(time.Millisecond))
	if d := eps[0].Status(calm).EjectedUntil.Sub(calm.Add(time.Millisecond)); d != 2*time.Second {
		t.Errorf("after a calm stretch the third ejection lasts %v, want 2s (one forgiven)", d)
	}
	// The cap on ejection time.
	for i := range 5 {
		at := later.Add(time.Duration(10+i*10) * time.Second)
		eps[1].available(at)
		fail(eps[1], at)
		if d := eps[1].Status(at).EjectedUntil.Sub(at); d > 3*time.Second {
			t.Errorf("ejection of %v exceeds max_ejection 3s", d)
		}
	}
}

func TestPerTryTimeoutRetriesElsewhere(t *testing.T) {
	slow := newBackend(t, "slow", "127.0.0.2", 10*time.Second)
	fast := newBackend(t, "fast", "127.0.0.3", 0)
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters:
  - name: api
    balancer: round_robin
    endpoints: [{address: "{{a}}"}, {address: "{{b}}"}]
    retry: {attempts: 2, per_try_timeout: 700ms, budget: 1, min_per_second: 100}
`
	_, url := startMesh(t, y, map[string]string{"a": slow.addr, "b": fast.addr})
	var l load
	client := newClient()
	for range 6 {
		l.one(client, "GET", url+"/")
	}
	if f := l.failures(); len(f) > 0 {
		t.Fatalf("per-try timeouts should have been retried on the fast backend: %v", f)
	}
	if l.by["fast"] != 6 || slow.hits.Load() == 0 {
		t.Errorf("answers %v, slow backend tried %d times", l.by, slow.hits.Load())
	}
}

func TestRetryBudget(t *testing.T) {
	b := newRetryBudget(0.5, 0)
	now := time.Now()
	if b.withdraw(now) {
		t.Fatal("an empty budget allowed a retry")
	}
	for range 10 {
		b.deposit()
	}
	n := 0
	for b.withdraw(now) {
		n++
	}
	if n != 5 {
		t.Errorf("10 requests at a 0.5 budget allowed %d retries, want 5", n)
	}
}

func TestClientGoneIsNotABackendFailure(t *testing.T) {
	be := newBackend(t, "slow", "127.0.0.2", 2*time.Second)
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters: [{name: api, endpoints: [{address: "{{a}}"}], outlier: {consecutive_5xx: 1}}]
`
	m, url := startMesh(t, y, map[string]string{"a": be.addr})
	client := &http.Client{Timeout: 100 * time.Millisecond}
	if _, err := client.Get(url + "/"); err == nil {
		t.Fatal("the client should have timed out")
	}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if n := testHistogramCount(t, m, "srekit_mesh_request_duration_seconds", `code="client_closed"`); n == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := testHistogramCount(t, m, "srekit_mesh_request_duration_seconds", `code="client_closed"`); n != 1 {
		t.Fatalf("client_closed requests: %d, want 1", n)
	}
	for _, e := range m.Endpoints() {
		if e.Ejections > 0 || e.Failures > 0 {
			t.Errorf("a client hanging up was counted against the backend: %+v", e)
		}
	}
}

func testHistogramCount(t *testing.T, m *Mesh, name, label string) uint64 {
	t.Helper()
	mfs, err := m.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			s := ""
			for _, lp := range mt.GetLabel() {
				s += lp.GetName() + `="` + lp.GetValue() + `",`
			}
			if strings.Contains(s, label) {
				n += mt.GetHistogram().GetSampleCount()
			}
		}
	}
	return n
}

func TestReloadAddsAndRemovesListeners(t *testing.T) {
	// With busy polling the event loops hold duplicates of the listening
	// socket: they must be closed with it, or the address stays bound.
	for _, extra := range []string{"", ", busy_poll: 200us"} {
		t.Run("listener"+extra, func(t *testing.T) { testReloadListeners(t, extra) })
	}
}

func testReloadListeners(t *testing.T, extra string) {
	be := newBackend(t, "a", "127.0.0.2", 0)
	base := `
admin: "off"
routes: [{cluster: api}]
clusters: [{name: api, endpoints: [{address: "` + be.addr + `"}]}]
`
	m, url1 := startMesh(t, base+`listeners: [{addr: "127.0.0.1:0"`+extra+`}]`, nil)
	first := m.Addrs()[0].String()
	cfg, err := ParseConfig("two.yaml", []byte(base+`listeners: [{addr: "`+first+`"`+extra+`}, {addr: "127.0.0.1:0", name: second`+extra+`}]`))
	if err != nil {
		t.Fatal(err)
	}
	// The first listener's config text changed (port 0 became its port),
	// so it is reopened on the same address; the second is new.
	if err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	addrs := m.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("listeners after adding one: %v", addrs)
	}
	client := newClient()
	for _, u := range []string{url1, "http://" + addrs[1].String()} {
		res, err := client.Get(u + "/")
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		res.Body.Close()
	}
	second := addrs[1].String()
	cfg, err = ParseConfig("one.yaml", []byte(base+`listeners: [{addr: "`+second+`", name: second`+extra+`}]`))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", first, time.Second); err == nil {
		t.Errorf("the removed listener %s still accepts connections", first)
	}
	res, err := client.Get("http://" + second + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}
