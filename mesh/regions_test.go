package mesh

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// The scenario: three "regions" on 127.0.0.2, .3 and .4 with
// latency injected in the backends.
const regionsYAML = `
admin: "off"
timings_interval: 100ms
listeners:
  - addr: 127.0.0.1:0
routes:
  - path_prefix: /
    cluster: api
clusters:
  - name: api
    balancer: {{balancer}}
    decay_time: 2s
    failure_penalty: 500ms
    endpoints:
      - {address: "{{a}}", region: eu}
      - {address: "{{b}}", region: us}
      - {address: "{{c}}", region: ap}
    health_check: {path: /healthz, interval: 100ms, timeout: 500ms, healthy_threshold: 1, unhealthy_threshold: 2}
    outlier: {consecutive_5xx: 3, consecutive_connect_errors: 1, base_ejection: 300ms, max_ejection: 2s}
    retry: {attempts: 3, per_try_timeout: 2s, budget: 0.5, min_per_second: 50}
`

func threeRegions(t *testing.T) (a, b, c *backend) {
	a = newBackend(t, "eu", "127.0.0.2", 2*time.Millisecond)
	b = newBackend(t, "us", "127.0.0.3", 15*time.Millisecond)
	c = newBackend(t, "ap", "127.0.0.4", 30*time.Millisecond)
	return
}

func TestMostRequestsGoToFastest(t *testing.T) {
	a, b, c := threeRegions(t)
	_, url := startMesh(t, regionsYAML, map[string]string{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "p2c_ewma"})
	client := newClient()
	// Warm up first: the first requests pay for new connections, and a
	// slow one (a GC pause or -race on a busy machine) lifts a peak EWMA
	// for a decay time; the claim is about the settled balancer.
	var warm load
	for range 100 {
		warm.one(client, "GET", url+"/x")
	}
	var l load
	for range 300 {
		l.one(client, "GET", url+"/x")
	}
	if f := append(warm.failures(), l.failures()...); len(f) > 0 {
		t.Fatalf("%d failures, first: %s", len(f), f[0])
	}
	t.Logf("answers after warm-up: %v", l.by)
	// Power of two choices over three endpoints sends about 2/3 to the
	// fastest (it wins every pair it is drawn in) and almost none to the
	// slowest; round robin would give each 1/3.
	if l.by["eu"] < 120 || l.by["eu"] <= l.by["us"] || l.by["eu"] <= l.by["ap"] {
		t.Errorf("fastest region answered %d of 300, want most: %v", l.by["eu"], l.by)
	}
}

func TestRoundRobinSpreadsEvenly(t *testing.T) {
	a, b, c := threeRegions(t)
	for _, be := range []*backend{a, b, c} {
		be.delay.Store(0)
	}
	_, url := startMesh(t, regionsYAML, map[string]string{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "round_robin"})
	var l load
	client := newClient()
	for range 90 {
		l.one(client, "GET", url+"/")
	}
	if l.by["eu"] != 30 || l.by["us"] != 30 || l.by["ap"] != 30 {
		t.Errorf("round robin over 90 sequential requests: %v, want 30 each", l.by)
	}
}

func TestLocalityPrefersOwnRegionUnlessSlower(t *testing.T) {
	a, b, c := threeRegions(t)
	a.delay.Store(int64(2 * time.Millisecond))
	b.delay.Store(int64(2 * time.Millisecond))
	repl := map[string]string{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "p2c_ewma"}
	_, url := startMesh(t, "region: us\n"+regionsYAML, repl)
	var l load
	client := newClient()
	for range 200 {
		l.one(client, "GET", url+"/")
	}
	// Without the preference us and eu would share the traffic about evenly.
	if l.by["us"] < 150 {
		t.Errorf("front door in us, us as fast as eu: us answered %d of 200: %v", l.by["us"], l.by)
	}
	// A front door in the slow region sends traffic elsewhere.
	_, url2 := startMesh(t, "region: ap\n"+regionsYAML, repl)
	var l2 load
	for range 200 {
		l2.one(client, "GET", url2+"/")
	}
	// eu and us are equally fast, so either may take most of the rest.
	if l2.by["ap"] >= l2.by["eu"]+l2.by["us"] || l2.by["ap"] > 100 {
		t.Errorf("front door in ap (30ms) should not keep traffic local when eu is at 2ms: %v", l2.by)
	}
}

func TestKillFastestNoFailuresThenItReturns(t *testing.T) {
	a, b, c := threeRegions(t)
	_, url := startMesh(t, regionsYAML, map[string]string{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "p2c_ewma"})
	client := newClient()
	var l load
	stop := make(chan struct{})
	wg := l.run(client, url+"/", 4, stop)
	time.Sleep(1200 * time.Millisecond)
	killed := time.Now()
	a.kill()
	time.Sleep(1500 * time.Millisecond)
	revived := time.Now()
	a.revive()
	time.Sleep(3500 * time.Millisecond)
	close(stop)
	wg.Wait()
	end := time.Now()

	if f := l.failures(); len(f) > 0 {
		t.Fatalf("%d of %d idempotent requests failed while the fastest was killed; first: %s", len(f), l.total, f[0])
	}
	before := l.between(killed.Add(-time.Second), killed)
	during := l.between(killed.Add(time.Second), revived)
	// eu may still be ejected for up to max_ejection (2 s) after it is back.
	after := l.between(revived.Add(2200*time.Millisecond), end)
	t.Logf("before kill %v; 1s after kill %v; after revival %v; total %d", before, during, after, l.total)
	if before["eu"] <= before["us"] || before["eu"] <= before["ap"] {
		t.Errorf("before the kill eu should answer more than any other region: %v", before)
	}
	if during["eu"] != 0 || during["us"]+during["ap"] == 0 {
		t.Errorf("a second after the kill traffic should have moved: %v", during)
	}
	if after["eu"] <= after["us"] || after["eu"] <= after["ap"] {
		t.Errorf("after revival traffic should return to eu: %v", after)
	}
}

func TestFast500IsEjected(t *testing.T) {
	// "penalty": the failure penalty alone keeps a fast-failing backend from
	// looking fast. "ejection": with no penalty, outlier detection must
	// eject it.
	for _, tc := range []struct{ name, penalty string }{{"penalty", "500ms"}, {"ejection", "1us"}} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, c := threeRegions(t)
			a.delay.Store(0)
			a.status.Store(500)
			b.delay.Store(int64(3 * time.Millisecond))
			c.delay.Store(int64(3 * time.Millisecond))
			y := replaceAll(regionsYAML, "failure_penalty: 500ms", "failure_penalty: "+tc.penalty)
			y = replaceAll(y, "base_ejection: 300ms", "base_ejection: 1s")
			m, url := startMesh(t, y, map[string]string{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "p2c_ewma"})
			var l load
			client := newClient()
			for range 300 {
				l.one(client, "GET", url+"/")
			}
			t.Logf("answers %v, fast-500 backend hits %d", l.by, a.hits.Load())
			if a.hits.Load() > 15 {
				t.Errorf("the fast-500 backend got %d of 300 requests; it should be avoided", a.hits.Load())
			}
			if tc.name == "ejection" {
				ejected := false
				for _, e := range m.Endpoints() {
					if e.Addr == a.addr && e.Ejections > 0 {
						ejected = true
					}
				}
				if !ejected {
					t.Errorf("the fast-500 backend was never ejected: %+v", m.Endpoints())
				}
			}
		})
	}
}

func TestReloadUnderLoadDropsNothing(t *testing.T) {
	a, b, c := threeRegions(t)
	for _, be := range []*backend{a, b, c} {
		be.delay.Store(int64(time.Millisecond))
	}
	repl := map[string]string{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "p2c_ewma"}
	m, url := startMesh(t, regionsYAML, repl)
	client := newClient()
	var l load
	stop := make(chan struct{})
	wg := l.run(client, url+"/", 6, stop)
	variants := []map[string]string{
		{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "round_robin"},
		{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "least_request"},
		{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "p2c_ewma"},
	}
	for i := range 15 {
		y := regionsYAML
		for k, v := range variants[i%3] {
			y = replaceAll(y, "{{"+k+"}}", v)
		}
		if i%2 == 1 { // drop one endpoint, then bring it back
			y = replaceAll(y, `      - {address: "`+c.addr+`", region: ap}`+"\n", "")
		}
		cfg, err := ParseConfig("reload.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Apply(cfg); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if f := l.failures(); len(f) > 0 {
		t.Fatalf("%d of %d requests failed during reloads; first: %s", len(f), l.total, f[0])
	}
	if l.total < 50 {
		t.Fatalf("only %d requests were sent", l.total)
	}
	t.Logf("%d requests over 15 reloads, none failed", l.total)
}

func TestRetriesStopAtBudget(t *testing.T) {
	a, b, c := threeRegions(t)
	for _, be := range []*backend{a, b, c} {
		be.delay.Store(0)
		be.status.Store(503)
	}
	y := replaceAll(regionsYAML, "retry: {attempts: 3, per_try_timeout: 2s, budget: 0.5, min_per_second: 50}",
		"retry: {attempts: 3, budget: 0.1, min_per_second: 1}")
	y = replaceAll(y, "outlier: {consecutive_5xx: 3, consecutive_connect_errors: 1, base_ejection: 300ms, max_ejection: 2s}", "")
	m, url := startMesh(t, y, map[string]string{"a": a.addr, "b": b.addr, "c": c.addr, "balancer": "round_robin"})
	_ = m
	client := newClient()
	start := time.Now()
	const n = 200
	for range n {
		res, err := client.Get(url + "/")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 503 {
			t.Fatalf("status %d, want the backends' 503 relayed", res.StatusCode)
		}
	}
	elapsed := time.Since(start).Seconds()
	hits := a.hits.Load() + b.hits.Load() + c.hits.Load()
	retries := float64(hits - n)
	limit := 0.1*n + 1*(elapsed+1) + 1
	t.Logf("%d requests, %d backend hits, %.0f retries, budget limit %.1f", n, hits, retries, limit)
	if retries > limit {
		t.Errorf("%.0f retries exceed the budget of %.1f", retries, limit)
	}
	if retries < 10 {
		t.Errorf("only %.0f retries: the budget should allow about %d", retries, n/10)
	}
	// A POST is never retried.
	before := a.hits.Load() + b.hits.Load() + c.hits.Load()
	time.Sleep(1100 * time.Millisecond) // refill the floor
	res, err := client.Post(url+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := a.hits.Load() + b.hits.Load() + c.hits.Load() - before; got != 1 {
		t.Errorf("a POST reached the backends %d times, want 1 (not idempotent, never retried)", got)
	}
}

func TestHedgingAnswersFromTheFastOne(t *testing.T) {
	slow := newBackend(t, "slow", "127.0.0.2", 400*time.Millisecond)
	fast := newBackend(t, "fast", "127.0.0.3", 0)
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters:
  - name: api
    balancer: round_robin
    endpoints: [{address: "{{a}}"}, {address: "{{b}}"}]
    retry: {attempts: 2, hedge_after: 30ms, budget: 1, min_per_second: 100}
`
	_, url := startMesh(t, y, map[string]string{"a": slow.addr, "b": fast.addr})
	var l load
	client := newClient()
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				l.one(client, "GET", url+"/")
			}
		}()
	}
	wg.Wait()
	if f := l.failures(); len(f) > 0 {
		t.Fatal(f[0])
	}
	if l.by["fast"] != 20 {
		t.Errorf("with hedging every answer should come from the fast backend: %v", l.by)
	}
	if slow.hits.Load() == 0 {
		t.Errorf("round robin should have sent some first tries to the slow backend")
	}
}

func TestCircuitBreakerLimitsConcurrency(t *testing.T) {
	be := newBackend(t, "one", "127.0.0.2", 300*time.Millisecond)
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters:
  - name: api
    max_concurrent_per_endpoint: 2
    endpoints: [{address: "{{a}}"}]
`
	_, url := startMesh(t, y, map[string]string{"a": be.addr})
	client := newClient()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := client.Get(url + "/")
			if err != nil {
				t.Error(err)
				return
			}
			res.Body.Close()
			mu.Lock()
			codes[res.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[503] == 0 || codes[200] == 0 || codes[200] > 4 {
		t.Errorf("6 concurrent requests, limit 2 in flight: got %v", codes)
	}
}

func replaceAll(s, old, new string) string { return strings.ReplaceAll(s, old, new) }
