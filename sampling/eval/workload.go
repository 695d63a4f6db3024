// Package eval measures a trace sampler against ground truth: it generates
// a seeded synthetic workload whose every trace is known (its key, whether
// it failed, whether it is slower than its key's p99), sends it over real
// OTLP through a sampler, receives what the sampler exports on a real OTLP
// receiver, and scores the result (Scorecard). The same scorecard is
// computed for head sampling at the same kept fraction, for comparison.
package eval

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// WorkloadConfig shapes the synthetic workload. Zero fields get defaults.
type WorkloadConfig struct {
	Seed     uint64
	Traces   int           // how many traces
	Services int           // services; each has a few operations (root keys)
	Duration time.Duration // simulated time the traces start over
	// SpikeFactor multiplies the trace rate during the middle tenth of the run.
	SpikeFactor float64
	// LateFraction of traces have one span delivered well after the rest.
	LateFraction float64
	// HugeTraces have HugeSpans spans each (to hit the sampler's span cap).
	HugeTraces, HugeSpans int
}

func (c WorkloadConfig) withDefaults() WorkloadConfig {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Traces <= 0 {
		c.Traces = 20000
	}
	if c.Services <= 0 {
		c.Services = 30
	}
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.SpikeFactor <= 0 {
		c.SpikeFactor = 5
	}
	if c.LateFraction <= 0 {
		c.LateFraction = 0.005
	}
	if c.HugeTraces < 0 {
		c.HugeTraces = 0
	} else if c.HugeTraces == 0 {
		c.HugeTraces = 3
	}
	if c.HugeSpans <= 0 {
		c.HugeSpans = 3000
	}
	return c
}

// Key is a root service and operation: what per-key figures are about.
type Key struct{ Service, Operation string }

func (k Key) String() string { return k.Service + "/" + k.Operation }

type keyModel struct {
	Key
	weight    float64
	median    time.Duration
	errorRate float64
	fanout    int // mean number of child spans
	children  []string
}

// TraceTruth is what the workload knows about one trace.
type TraceTruth struct {
	ID       pcommon.TraceID
	Key      Key
	Start    time.Duration // simulated offset of its start
	Duration time.Duration
	Error    bool
	Slow     bool // slower than its key's true p99
	Spans    int
	Late     bool // one span is sent late
	Huge     bool
	seed     uint64
}

// Workload is the generated traces and their truth.
type Workload struct {
	Config WorkloadConfig
	Traces []TraceTruth
	// P99 is the true p99 duration per key (over the whole workload).
	P99  map[Key]time.Duration
	keys []keyModel
}

// Generate builds the workload: a Zipf-like popularity over keys (a few hot
// ones, a long tail of rare ones), log-normal latencies with a 2% tail 5-20x
// slower, per-key error rates (most low, two rare keys that always fail),
// a traffic spike, late spans and a few huge traces.
func Generate(cfg WorkloadConfig) *Workload {
	cfg = cfg.withDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	w := &Workload{Config: cfg, P99: map[Key]time.Duration{}}
	ops := []string{"GET /", "GET /item", "POST /cart", "POST /checkout", "GET /search", "rpc Get", "rpc List", "consume"}
	rank := 0
	for s := 0; s < cfg.Services; s++ {
		svc := fmt.Sprintf("svc-%02d", s)
		nops := 2 + rng.IntN(4)
		for o := 0; o < nops; o++ {
			rank++
			km := keyModel{
				Key:       Key{svc, ops[(s+o)%len(ops)]},
				weight:    1 / math.Pow(float64(rank), 1.1),
				median:    time.Duration(math.Exp(rng.Float64()*4+1)) * time.Millisecond, // ~3ms..150ms
				errorRate: 0.002 + 0.01*rng.Float64(),
				fanout:    2 + rng.IntN(12),
			}
			for c := 0; c < 4; c++ {
				km.children = append(km.children, fmt.Sprintf("svc-%02d", rng.IntN(cfg.Services)))
			}
			w.keys = append(w.keys, km)
		}
	}
	// Two rare keys that always fail, and a rare one that never does.
	for i, name := range []string{"POST /refund", "rpc Migrate", "GET /admin"} {
		w.keys = append(w.keys, keyModel{Key: Key{"svc-rare", name}, weight: 0.0005, median: 20 * time.Millisecond,
			errorRate: map[bool]float64{true: 1, false: 0}[i < 2], fanout: 3, children: []string{"svc-00", "svc-01", "svc-02", "svc-03"}})
	}
	var total float64
	for _, k := range w.keys {
		total += k.weight
	}
	cum := make([]float64, len(w.keys))
	acc := 0.0
	for i, k := range w.keys {
		acc += k.weight / total
		cum[i] = acc
	}
	// Start times: uniform with a spike of SpikeFactor in the middle tenth.
	starts := make([]float64, cfg.Traces)
	for i := range starts {
		starts[i] = spikeTime(rng.Float64(), cfg.SpikeFactor)
	}
	sort.Float64s(starts)
	hugeEvery := 0
	if cfg.HugeTraces > 0 {
		hugeEvery = cfg.Traces / (cfg.HugeTraces + 1)
	}
	for i := 0; i < cfg.Traces; i++ {
		ki := sort.SearchFloat64s(cum, rng.Float64())
		if ki >= len(w.keys) {
			ki = len(w.keys) - 1
		}
		km := w.keys[ki]
		d := float64(km.median) * math.Exp(rng.NormFloat64()*0.4)
		if rng.Float64() < 0.02 {
			d *= 5 + 15*rng.Float64()
		}
		t := TraceTruth{
			Key:      km.Key,
			Start:    time.Duration(starts[i] * float64(cfg.Duration)),
			Duration: time.Duration(d),
			Error:    rng.Float64() < km.errorRate,
			seed:     rng.Uint64(),
		}
		binary.BigEndian.PutUint64(t.ID[:8], rng.Uint64())
		binary.BigEndian.PutUint64(t.ID[8:], rng.Uint64())
		t.Spans = 1 + int(float64(km.fanout)*(0.5+rng.Float64()))
		if hugeEvery > 0 && i%hugeEvery == hugeEvery/2 && i/hugeEvery < cfg.HugeTraces {
			t.Huge, t.Spans, t.Error = true, cfg.HugeSpans, false
		}
		t.Late = !t.Huge && t.Spans > 1 && rng.Float64() < cfg.LateFraction
		w.Traces = append(w.Traces, t)
	}
	// True p99 per key, then mark the slow traces.
	byKey := map[Key][]time.Duration{}
	for _, t := range w.Traces {
		byKey[t.Key] = append(byKey[t.Key], t.Duration)
	}
	for k, ds := range byKey {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		w.P99[k] = ds[int(math.Ceil(0.99*float64(len(ds))))-1]
	}
	for i := range w.Traces {
		t := &w.Traces[i]
		t.Slow = t.Duration > w.P99[t.Key]
	}
	return w
}

// spikeTime maps a uniform u to [0,1) with density SpikeFactor times higher in [0.45, 0.55).
func spikeTime(u, f float64) float64 {
	a := 0.45 / (0.9 + 0.1*f) // mass before the spike
	b := 0.1 * f / (0.9 + 0.1*f)
	switch {
	case u < a:
		return u / a * 0.45
	case u < a+b:
		return 0.45 + (u-a)/b*0.1
	default:
		return 0.55 + (u-a-b)/(1-a-b)*0.45
	}
}

// spanEvent is one span to send at a simulated time.
type spanEvent struct {
	at    time.Duration
	trace int
	index int // span index within the trace; 0 is the root
}

// events lists every span of the workload in simulated send order: children
// when they end, the root at the end of the trace, late spans 10 s after
// the trace ended (long after the sampler's decision).
func (w *Workload) events() (main, late []spanEvent) {
	for ti, t := range w.Traces {
		rng := rand.New(rand.NewPCG(t.seed, 1))
		for si := 1; si < t.Spans; si++ {
			at := t.Start + time.Duration(rng.Float64()*float64(t.Duration))
			ev := spanEvent{at: at, trace: ti, index: si}
			if t.Late && si == t.Spans-1 {
				ev.at = t.Start + t.Duration + 10*time.Second
				late = append(late, ev)
				continue
			}
			main = append(main, ev)
		}
		main = append(main, spanEvent{at: t.Start + t.Duration, trace: ti, index: 0})
	}
	sort.Slice(main, func(i, j int) bool { return main[i].at < main[j].at })
	sort.Slice(late, func(i, j int) bool { return late[i].at < late[j].at })
	return main, late
}

// base is the wall-clock origin of simulated time in span timestamps.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// appendSpan writes span ev of its trace into td (one resource per service).
func (w *Workload) appendSpan(td ptrace.Traces, res map[string]ptrace.SpanSlice, ev spanEvent) {
	t := &w.Traces[ev.trace]
	svc := t.Key.Service
	var km *keyModel
	for i := range w.keys {
		if w.keys[i].Key == t.Key {
			km = &w.keys[i]
			break
		}
	}
	rng := rand.New(rand.NewPCG(t.seed, uint64(ev.index)+2))
	if ev.index > 0 {
		svc = km.children[ev.index%len(km.children)]
	}
	ss, ok := res[svc]
	if !ok {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("deployment.environment", "eval")
		sc := rs.ScopeSpans().AppendEmpty()
		sc.Scope().SetName("srekit/eval")
		ss = sc.Spans()
		res[svc] = ss
	}
	sp := ss.AppendEmpty()
	sp.SetTraceID(t.ID)
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], uint64(ev.index)+1)
	sp.SetSpanID(id)
	sp.SetFlags(0x03) // sampled, random trace ID
	start := base.Add(t.Start)
	dur := t.Duration
	if ev.index > 0 {
		var parent pcommon.SpanID
		binary.BigEndian.PutUint64(parent[:], 1)
		sp.SetParentSpanID(parent)
		off := time.Duration(rng.Float64() * float64(t.Duration) * 0.5)
		start = start.Add(off)
		dur = time.Duration(rng.Float64() * float64(t.Duration-off))
		sp.SetName(fmt.Sprintf("%s child %d", t.Key.Operation, ev.index%7))
		sp.SetKind(ptrace.SpanKindClient)
	} else {
		sp.SetName(t.Key.Operation)
		sp.SetKind(ptrace.SpanKindServer)
		sp.Attributes().PutStr("http.route", t.Key.Operation)
	}
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
	sp.Attributes().PutStr("eval.note", "synthetic span with a typical amount of attribute payload")
	sp.Attributes().PutInt("eval.index", int64(ev.index))
	if t.Error {
		// The error shows on a random span of the trace, in one of three forms.
		// Not on a late span: an error arriving after the decision cannot
		// change it (a limit shared by every tail sampler).
		n := t.Spans
		if t.Late {
			n--
		}
		errSpan := int(t.seed % uint64(n))
		if ev.index == errSpan {
			switch t.seed % 3 {
			case 0:
				sp.Status().SetCode(ptrace.StatusCodeError)
			case 1:
				sp.Attributes().PutInt("http.response.status_code", 503)
			default:
				e := sp.Events().AppendEmpty()
				e.SetName("exception")
				e.Attributes().PutStr("exception.type", "TimeoutError")
			}
		}
	}
}
