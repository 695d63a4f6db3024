package sampling

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Policy looks at a summarized trace and answers with a threshold: KeepAll
// for "keep it", a probability's threshold for "keep it with this
// probability", MaxThreshold for "not mine". Stateful policies (learned
// latency, dynamic, rate limits) see every trace, so they must be safe for
// concurrent use.
type Policy interface {
	Evaluate(t *Trace, now time.Time) Threshold
}

// PolicySet is a configured list of policies and drop rules, combined as the
// OpenTelemetry Collector's tail sampler does (a drop rule that matches
// wins; otherwise the trace is kept if any policy keeps it), but with
// probabilities instead of yes/no: the trace's threshold is the smallest of
// the policies' thresholds, so the union of consistent samplers is itself a
// consistent sampler with a known probability, and the adjusted count of
// every kept trace is exact.
type PolicySet struct {
	names []string
	pols  []Policy
	drops []int // indexes of drop rules in names/pols
	// counters, by index
	kept       []atomic.Int64
	dropHits   []atomic.Int64
	noMatch    atomic.Int64
	sampledOut atomic.Int64
	spansKept  []atomic.Int64
}

// NewPolicySet combines named policies; isDrop marks the drop rules.
func NewPolicySet(names []string, pols []Policy, isDrop []bool) *PolicySet {
	ps := &PolicySet{names: names, pols: pols,
		kept: make([]atomic.Int64, len(pols)), dropHits: make([]atomic.Int64, len(pols)), spansKept: make([]atomic.Int64, len(pols))}
	for i, d := range isDrop {
		if d {
			ps.drops = append(ps.drops, i)
		}
	}
	return ps
}

// Decide applies the set to t. Every policy is evaluated, so stateful
// policies learn from every trace.
func (ps *PolicySet) Decide(t *Trace, now time.Time) Decision {
	best, by := MaxThreshold, -1
	dropBy := -1
	di := 0
	for i, p := range ps.pols {
		th := p.Evaluate(t, now)
		if di < len(ps.drops) && ps.drops[di] == i {
			di++
			if th < MaxThreshold && dropBy < 0 {
				dropBy = i
			}
			continue
		}
		if th < best {
			best, by = th, i
		}
	}
	switch {
	case dropBy >= 0:
		ps.dropHits[dropBy].Add(1)
		return Decision{Threshold: MaxThreshold, Policy: ps.names[dropBy], Reason: "drop_rule"}
	case by < 0:
		ps.noMatch.Add(1)
		return Decision{Threshold: MaxThreshold, Reason: "no_match"}
	}
	th := best
	if t.InThreshold > th {
		th = t.InThreshold
	}
	if !best.Keeps(t.Randomness) {
		ps.sampledOut.Add(1)
		return Decision{Threshold: th, Policy: ps.names[by], Reason: "sampled_out"}
	}
	ps.kept[by].Add(1)
	ps.spansKept[by].Add(int64(t.SpanCount))
	return Decision{Keep: true, Threshold: th, Policy: ps.names[by], Reason: "policy"}
}

// PolicyCount is one row of per-policy counters.
type PolicyCount struct {
	Policy    string `json:"policy"`
	Drop      bool   `json:"drop,omitempty"`
	Traces    int64  `json:"traces"`
	SpansKept int64  `json:"spans_kept,omitempty"`
}

// Counts reports traces kept per policy (or dropped per drop rule), plus
// pseudo-policies "(no match)" and "(sampled out)".
func (ps *PolicySet) Counts() []PolicyCount {
	var out []PolicyCount
	di := 0
	for i, n := range ps.names {
		if di < len(ps.drops) && ps.drops[di] == i {
			di++
			out = append(out, PolicyCount{Policy: n, Drop: true, Traces: ps.dropHits[i].Load()})
			continue
		}
		out = append(out, PolicyCount{Policy: n, Traces: ps.kept[i].Load(), SpansKept: ps.spansKept[i].Load()})
	}
	out = append(out, PolicyCount{Policy: "(no match)", Drop: true, Traces: ps.noMatch.Load()},
		PolicyCount{Policy: "(sampled out)", Drop: true, Traces: ps.sampledOut.Load()})
	return out
}

// ---- leaf policies ----

// ErrorsPolicy keeps traces with an error: a span with status Error, an
// HTTP 5xx status code attribute, or an "exception" event.
type ErrorsPolicy struct{ Status, HTTP5xx, Exceptions bool }

func (p ErrorsPolicy) Evaluate(t *Trace, _ time.Time) Threshold {
	if (p.Status && t.ErrStatus) || (p.HTTP5xx && t.ErrHTTP) || (p.Exceptions && t.ErrException) {
		return KeepAll
	}
	return MaxThreshold
}

// ProbabilisticPolicy keeps a fixed fraction of traces, consistently by
// trace randomness.
type ProbabilisticPolicy struct{ Threshold Threshold }

func (p ProbabilisticPolicy) Evaluate(*Trace, time.Time) Threshold { return p.Threshold }

// AttributePolicy keeps traces with a span (or resource) attribute matching
// a condition: present, equal to one of Values, matching Regex, or a number
// within [Min, Max].
type AttributePolicy struct {
	Key      string
	Values   []string
	Regex    *regexp.Regexp
	Min, Max *float64
	Scope    string // "span", "resource" or "" for both
}

func (p *AttributePolicy) match(v pcommon.Value) bool {
	if p.Min != nil || p.Max != nil {
		var f float64
		switch v.Type() {
		case pcommon.ValueTypeInt:
			f = float64(v.Int())
		case pcommon.ValueTypeDouble:
			f = v.Double()
		default:
			x, err := strconv.ParseFloat(v.AsString(), 64)
			if err != nil {
				return false
			}
			f = x
		}
		return (p.Min == nil || f >= *p.Min) && (p.Max == nil || f <= *p.Max)
	}
	if len(p.Values) == 0 && p.Regex == nil {
		return true // exists
	}
	s := v.AsString()
	for _, w := range p.Values {
		if s == w {
			return true
		}
	}
	return p.Regex != nil && p.Regex.MatchString(s)
}

func (p *AttributePolicy) Evaluate(t *Trace, _ time.Time) Threshold {
	found := false
	seenRes := map[pcommon.Resource]bool{}
	t.Spans(func(res pcommon.Resource, s ptrace.Span) bool {
		if p.Scope != "resource" {
			if v, ok := s.Attributes().Get(p.Key); ok && p.match(v) {
				found = true
				return false
			}
		}
		if p.Scope != "span" && !seenRes[res] {
			seenRes[res] = true
			if v, ok := res.Attributes().Get(p.Key); ok && p.match(v) {
				found = true
				return false
			}
		}
		return true
	})
	if found {
		return KeepAll
	}
	return MaxThreshold
}

// keyFields builds a per-trace key from chosen fields: service, operation,
// status (error/ok), kind, root.ATTR (a root span attribute) or
// resource.ATTR (the root's resource attribute).
type keyFields []string

func validKeyField(f string) bool {
	switch f {
	case "service", "operation", "status", "kind":
		return true
	}
	return (strings.HasPrefix(f, "root.") || strings.HasPrefix(f, "resource.")) && !strings.HasSuffix(f, ".")
}

func (k keyFields) key(t *Trace) string {
	var b strings.Builder
	for i, f := range k {
		if i > 0 {
			b.WriteByte('|')
		}
		switch {
		case f == "service":
			b.WriteString(t.RootService)
		case f == "operation":
			b.WriteString(t.Operation())
		case f == "status":
			if t.HasError {
				b.WriteString("error")
			} else {
				b.WriteString("ok")
			}
		case f == "kind":
			if t.HasRoot {
				b.WriteString(t.RootKind.String())
			}
		case strings.HasPrefix(f, "root."):
			if t.HasRoot {
				if sp, _, isRoot, _ := t.root(); isRoot {
					if v, ok := sp.Attributes().Get(f[5:]); ok {
						b.WriteString(v.AsString())
					}
				}
			}
		case strings.HasPrefix(f, "resource."):
			if _, res, _, any := t.root(); any {
				if v, ok := res.Attributes().Get(f[9:]); ok {
					b.WriteString(v.AsString())
				}
			}
		}
	}
	return b.String()
}

// LatencyPolicy keeps traces slower than a threshold: fixed (Threshold), or
// learned per key as the Quantile of the key's recent durations (two
// rotating windows of Window each), with Threshold as a floor. Until a key
// has MinSamples durations its traces are kept, so a new or rare key is
// never judged on too little.
type LatencyPolicy struct {
	Threshold  time.Duration
	Quantile   float64
	Window     time.Duration
	MinSamples int
	Key        keyFields
	MaxKeys    int

	mu   sync.Mutex
	keys map[string]*latencyKey
}

type latencyKey struct {
	cur, prev logHist
	start     time.Time
}

func (p *LatencyPolicy) Evaluate(t *Trace, now time.Time) Threshold {
	if p.Quantile == 0 {
		if t.Duration > p.Threshold {
			return KeepAll
		}
		return MaxThreshold
	}
	k := p.Key.key(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.keys == nil {
		p.keys = map[string]*latencyKey{}
	}
	lk := p.keys[k]
	if lk == nil {
		if len(p.keys) >= p.MaxKeys {
			k = "\x00other"
			lk = p.keys[k]
		}
		if lk == nil {
			lk = &latencyKey{start: now}
			p.keys[k] = lk
		}
	}
	switch age := now.Sub(lk.start); {
	case age >= 2*p.Window:
		lk.cur.Reset()
		lk.prev.Reset()
		lk.start = now
	case age >= p.Window:
		lk.prev = lk.cur
		lk.cur.Reset()
		lk.start = lk.start.Add(p.Window)
	}
	slow := true // unlearned: keep
	if lk.cur.total+lk.prev.total >= uint64(p.MinSamples) {
		q := quantile(p.Quantile, &lk.cur, &lk.prev)
		slow = t.Duration >= q
	}
	lk.cur.Add(t.Duration)
	if slow && t.Duration >= p.Threshold {
		return KeepAll
	}
	return MaxThreshold
}

// LearnedThreshold returns the current learned threshold for a key (for the
// web page and tests); false while the key is unlearned.
func (p *LatencyPolicy) LearnedThreshold(key string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lk := p.keys[key]
	if lk == nil || lk.cur.total+lk.prev.total < uint64(p.MinSamples) {
		return 0, false
	}
	return quantile(p.Quantile, &lk.cur, &lk.prev), true
}

// RateLimitPolicy keeps at most a number of traces, spans or bytes per
// second. It is a consistent sampler whose probability follows the measured
// arrival rate (limit / rate, re-estimated every second), so its keeps carry
// honest adjusted counts; a token bucket of one second's allowance caps bursts.
type RateLimitPolicy struct {
	TracesPerSec, SpansPerSec, BytesPerSec float64

	mu         sync.Mutex
	winStart   time.Time
	n          [3]float64 // this window's arrivals: traces, spans, bytes
	rate       [3]float64 // estimated arrivals per second
	tokens     [3]float64
	lastRefill time.Time
}

func (p *RateLimitPolicy) limits() [3]float64 {
	return [3]float64{p.TracesPerSec, p.SpansPerSec, p.BytesPerSec}
}

func (p *RateLimitPolicy) Evaluate(t *Trace, now time.Time) Threshold {
	p.mu.Lock()
	defer p.mu.Unlock()
	lim := p.limits()
	cost := [3]float64{1, float64(t.SpanCount), float64(t.Bytes)}
	if p.winStart.IsZero() {
		p.winStart, p.lastRefill = now, now
		p.tokens = lim
	}
	if el := now.Sub(p.winStart).Seconds(); el >= 1 {
		for i := range p.n {
			r := p.n[i] / el
			if p.rate[i] == 0 {
				p.rate[i] = r
			} else {
				p.rate[i] = 0.5*p.rate[i] + 0.5*r
			}
			p.n[i] = 0
		}
		p.winStart = now
	}
	if el := now.Sub(p.lastRefill).Seconds(); el > 0 {
		for i := range p.tokens {
			p.tokens[i] = math.Min(lim[i], p.tokens[i]+el*lim[i])
		}
		p.lastRefill = now
	}
	prob := 1.0
	for i := range lim {
		p.n[i] += cost[i]
		if lim[i] > 0 && p.rate[i] > lim[i] {
			prob = math.Min(prob, lim[i]/p.rate[i])
		}
	}
	th := ProbabilityThreshold(prob)
	if !th.Keeps(t.Randomness) {
		return MaxThreshold
	}
	for i := range lim {
		if lim[i] > 0 && p.tokens[i] < cost[i] && !(cost[i] > lim[i] && p.tokens[i] >= lim[i]) {
			return MaxThreshold
		}
	}
	for i := range lim {
		if lim[i] > 0 {
			p.tokens[i] -= cost[i]
		}
	}
	return th
}

// ---- composites ----

// AndPolicy matches when all its policies do; its threshold is the largest
// of theirs (a consistent trace passes all of them exactly when it passes
// the largest).
type AndPolicy []Policy

func (a AndPolicy) Evaluate(t *Trace, now time.Time) Threshold {
	th := KeepAll
	for _, p := range a {
		if x := p.Evaluate(t, now); x > th {
			th = x
		}
	}
	return th
}

// OrPolicy matches when any of its policies does, with the smallest threshold.
type OrPolicy []Policy

func (o OrPolicy) Evaluate(t *Trace, now time.Time) Threshold {
	th := MaxThreshold
	for _, p := range o {
		if x := p.Evaluate(t, now); x < th {
			th = x
		}
	}
	return th
}

// NotPolicy keeps (KeepAll) what its policy does not match at all, and
// nothing else. It is meant for conditions (attributes, errors, latency).
type NotPolicy struct{ P Policy }

func (n NotPolicy) Evaluate(t *Trace, now time.Time) Threshold {
	if n.P.Evaluate(t, now) >= MaxThreshold {
		return KeepAll
	}
	return MaxThreshold
}
