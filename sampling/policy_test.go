package sampling

import (
	"go.opentelemetry.io/collector/pdata/ptrace"
	"strings"
	"testing"
	"time"
)

// summarized builds a Trace from specs and summarizes it, as the buffer does.
func summarized(rv uint64, specs ...spanSpec) *Trace {
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(traces(specs...))
	if err != nil {
		panic(err)
	}
	frags, _, err := splitRequest(body, nil)
	if err != nil {
		panic(err)
	}
	t := &Trace{Randomness: rv}
	for _, f := range frags {
		t.ID = f.id
		t.merge(f, nil)
	}
	t.summarize()
	return t
}

func root(svc, name string, dur time.Duration, attrs map[string]any) spanSpec {
	return spanSpec{service: svc, name: name, trace: tid(1, 1), id: 1, dur: dur, attrs: attrs}
}

func TestErrorsPolicy(t *testing.T) {
	p := ErrorsPolicy{true, true, true}
	now := time.Now()
	cases := []struct {
		name string
		tr   *Trace
		want bool
	}{
		{"ok", summarized(0, root("a", "x", time.Millisecond, nil)), false},
		{"status", summarized(0, root("a", "x", 0, nil), spanSpec{service: "b", name: "y", trace: tid(1, 1), id: 2, parent: 1, err: true}), true},
		{"http 503 int", summarized(0, root("a", "x", 0, map[string]any{"http.response.status_code": int64(503)})), true},
		{"http 500 string", summarized(0, root("a", "x", 0, map[string]any{"http.status_code": "500"})), true},
		{"http 404", summarized(0, root("a", "x", 0, map[string]any{"http.response.status_code": int64(404)})), false},
	}
	excRoot := root("a", "x", 0, nil)
	excRoot.events = []string{"log", "exception"}
	exc := summarized(0, excRoot)
	cases = append(cases, struct {
		name string
		tr   *Trace
		want bool
	}{"exception event", exc, true})
	for _, c := range cases {
		if got := p.Evaluate(c.tr, now) == KeepAll; got != c.want {
			t.Errorf("%s: keep=%v want %v", c.name, got, c.want)
		}
	}
	onlyStatus := ErrorsPolicy{Status: true}
	if onlyStatus.Evaluate(cases[2].tr, now) != MaxThreshold {
		t.Error("status-only errors policy matched an HTTP 503")
	}
}

func TestLatencyPolicyLearnsP99PerKey(t *testing.T) {
	p := &LatencyPolicy{Quantile: 0.99, Window: time.Hour, MinSamples: 100, Key: keyFields{"service", "operation"}, MaxKeys: 10}
	now := time.Now()
	// Unlearned: keep.
	if p.Evaluate(summarized(0, root("a", "fast", time.Millisecond, nil)), now) != KeepAll {
		t.Fatal("unlearned key not kept")
	}
	for i := 1; i <= 1000; i++ {
		p.Evaluate(summarized(0, root("a", "fast", time.Duration(i)*time.Microsecond, nil)), now)
		p.Evaluate(summarized(0, root("a", "slow", time.Duration(i)*time.Millisecond, nil)), now)
	}
	th, ok := p.LearnedThreshold("a|fast")
	if !ok || th < 900*time.Microsecond || th > 1000*time.Microsecond {
		t.Fatalf("learned p99 of 1..1000µs: %v %v", th, ok)
	}
	if p.Evaluate(summarized(0, root("a", "fast", 2*time.Millisecond, nil)), now) != KeepAll {
		t.Fatal("2ms is slow for 'fast'")
	}
	if p.Evaluate(summarized(0, root("a", "slow", 2*time.Millisecond, nil)), now) == KeepAll {
		t.Fatal("2ms is not slow for 'slow'")
	}
	// After two windows with no traffic the key is unlearned again.
	if p.Evaluate(summarized(0, root("a", "slow", time.Millisecond, nil)), now.Add(3*time.Hour)) != KeepAll {
		t.Fatal("stale learning kept past two windows")
	}
	fixed := &LatencyPolicy{Threshold: time.Second}
	if fixed.Evaluate(summarized(0, root("a", "x", 2*time.Second, nil)), now) != KeepAll ||
		fixed.Evaluate(summarized(0, root("a", "x", time.Millisecond, nil)), now) != MaxThreshold {
		t.Fatal("fixed threshold")
	}
}

func TestAttributeAndComposites(t *testing.T) {
	now := time.Now()
	min := 100.0
	route := &AttributePolicy{Key: "http.route", Values: []string{"/checkout"}}
	big := &AttributePolicy{Key: "items", Min: &min}
	tr := summarized(0, root("shop", "POST", 0, map[string]any{"http.route": "/checkout", "items": int64(150)}))
	other := summarized(0, root("shop", "GET", 0, map[string]any{"http.route": "/home", "items": int64(1)}))
	if route.Evaluate(tr, now) != KeepAll || route.Evaluate(other, now) != MaxThreshold {
		t.Fatal("attribute values")
	}
	if big.Evaluate(tr, now) != KeepAll || big.Evaluate(other, now) != MaxThreshold {
		t.Fatal("attribute min")
	}
	res := &AttributePolicy{Key: "service.name", Values: []string{"shop"}, Scope: "resource"}
	if res.Evaluate(tr, now) != KeepAll {
		t.Fatal("resource attribute")
	}
	half := ProbabilisticPolicy{ProbabilityThreshold(0.5)}
	if got := (AndPolicy{route, half}).Evaluate(tr, now); got != ProbabilityThreshold(0.5) {
		t.Fatalf("and: %v", got)
	}
	if got := (OrPolicy{route, half}).Evaluate(other, now); got != ProbabilityThreshold(0.5) {
		t.Fatalf("or: %v", got)
	}
	if (NotPolicy{route}).Evaluate(other, now) != KeepAll || (NotPolicy{route}).Evaluate(tr, now) != MaxThreshold {
		t.Fatal("not")
	}
}

func TestPolicySetDropRuleAndAdjustedCounts(t *testing.T) {
	cfg, err := ParseConfig([]byte(`
policies:
  - name: no-health
    drop: {attribute: {key: http.route, values: [/healthz]}}
  - name: errors
    errors: {}
  - name: quarter
    probabilistic: {percent: 25}
`))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := cfg.BuildPolicies()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	health := summarized(maxRandomness, spanSpec{service: "a", name: "GET", trace: tid(1, 1), id: 1, err: true, attrs: map[string]any{"http.route": "/healthz"}})
	if d := ps.Decide(health, now); d.Keep || d.Policy != "no-health" {
		t.Fatalf("drop rule did not win: %+v", d)
	}
	errTrace := summarized(0, spanSpec{service: "a", name: "GET", trace: tid(1, 1), id: 1, err: true})
	if d := ps.Decide(errTrace, now); !d.Keep || d.Threshold != KeepAll || d.Policy != "errors" {
		t.Fatalf("error trace: %+v", d)
	}
	// Upstream head sampling at 50%: the applied threshold includes it.
	errTrace.InThreshold = ProbabilityThreshold(0.5)
	if d := ps.Decide(errTrace, now); d.Threshold != ProbabilityThreshold(0.5) || d.Threshold.AdjustedCount() != 2 {
		t.Fatalf("upstream threshold lost: %+v", d)
	}
	// Probabilistic keeps exactly the traces with rv >= threshold.
	th := ProbabilityThreshold(0.25)
	for _, rv := range []uint64{0, uint64(th) - 1, uint64(th), maxRandomness} {
		tr := summarized(rv, spanSpec{service: "a", name: "GET", trace: tid(1, rv), id: 1})
		d := ps.Decide(tr, now)
		if d.Keep != (rv >= uint64(th)) {
			t.Fatalf("rv %x: keep %v", rv, d.Keep)
		}
		if d.Keep && d.Threshold.AdjustedCount() != 4 {
			t.Fatalf("adjusted count %g, want 4", d.Threshold.AdjustedCount())
		}
	}
	var names []string
	for _, c := range ps.Counts() {
		names = append(names, c.Policy)
	}
	if strings.Join(names, ",") != "no-health,errors,quarter,(no match),(sampled out)" {
		t.Fatalf("counts rows %v", names)
	}
}

func TestDynamicKeepsRareKeysAndMeetsGoal(t *testing.T) {
	p := &DynamicPolicy{Key: keyFields{"service", "operation"}, GoalRate: 10, Interval: time.Second, Weight: 1, MaxKeys: 100}
	now := time.Now()
	feed := func(n int, op string) {
		for i := 0; i < n; i++ {
			p.Evaluate(summarized(0, root("svc", op, 0, nil)), now)
		}
	}
	feed(10000, "hot")
	feed(1000, "warm")
	feed(3, "rare")
	now = now.Add(time.Second)
	feed(1, "hot") // triggers the adjustment
	rates := p.Rates()
	if rates["svc|rare"] != 1 {
		t.Fatalf("rare key rate %g, want 1 (keep all)", rates["svc|rare"])
	}
	if !(rates["svc|hot"] > rates["svc|warm"] && rates["svc|warm"] > 1) {
		t.Fatalf("rates %v: want hot > warm > 1", rates)
	}
	kept := 10000/rates["svc|hot"] + 1000/rates["svc|warm"] + 3/rates["svc|rare"]
	if goal := 11003.0 / 10; kept < goal*0.95 || kept > goal*1.05 {
		t.Fatalf("expected kept %.0f per interval, goal %.0f", kept, goal)
	}
}

// TestDynamicFloor: with min_per_interval, a small key among many gets at
// least that many expected keeps per interval (all of a key smaller than
// it), taken out of the bigger keys' budget while the budget allows.
func TestDynamicFloor(t *testing.T) {
	p := &DynamicPolicy{Key: keyFields{"service", "operation"}, GoalRate: 20, Interval: time.Second, Weight: 1, MaxKeys: 100, MinPerInterval: 15}
	now := time.Now()
	feed := func(n int, op string) {
		for i := 0; i < n; i++ {
			p.Evaluate(summarized(0, root("svc", op, 0, nil)), now)
		}
	}
	feed(20000, "hot")
	feed(200, "small")
	feed(10, "tiny")
	now = now.Add(time.Second)
	feed(1, "hot")
	rates := p.Rates()
	if rates["svc|tiny"] != 1 {
		t.Fatalf("tiny key rate %g, want 1 (fewer traces than the floor)", rates["svc|tiny"])
	}
	if got := 200 / rates["svc|small"]; got < 15-1e-9 {
		t.Fatalf("small key keeps %.1f per interval, want at least 15 (rates %v)", got, rates)
	}
	kept := 20000/rates["svc|hot"] + 200/rates["svc|small"] + 10
	if goal := 20210.0 / 20; kept < goal*0.95 || kept > goal*1.05 {
		t.Fatalf("expected kept %.0f per interval, goal %.0f: the floor should come out of the budget", kept, goal)
	}
}

func TestRateLimitPolicy(t *testing.T) {
	p := &RateLimitPolicy{TracesPerSec: 100}
	now := time.Now()
	kept := 0
	// 1000 traces/s for 5 seconds.
	for s := 0; s < 5; s++ {
		for i := 0; i < 1000; i++ {
			rv := uint64(s*1000+i) * 0x9E3779B97F4A7C15 >> 8
			tr := summarized(rv, root("a", "x", 0, nil))
			th := p.Evaluate(tr, now.Add(time.Duration(s)*time.Second+time.Duration(i)*time.Millisecond))
			if th.Keeps(rv) {
				kept++
			}
		}
	}
	if kept > 600 || kept < 300 {
		t.Fatalf("kept %d traces in 5s at a limit of 100/s", kept)
	}
}
