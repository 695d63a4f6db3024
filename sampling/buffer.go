package sampling

import (
	"container/heap"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BufferConfig sizes the trace buffer. The zero value of a field means its
// default (see WithDefaults).
type BufferConfig struct {
	// MaxMemory bounds the buffered spans, in bytes (estimated: see spanBytes).
	MaxMemory int64
	// DecisionWait is how long after the root span a trace is decided, for
	// its stragglers to arrive.
	DecisionWait time.Duration
	// TraceTimeout is how long after its first span a trace with no root is decided.
	TraceTimeout time.Duration
	// MaxSpansPerTrace and MaxBytesPerTrace decide a trace at once when it
	// reaches them; its later spans follow the decision without buffering,
	// so a trace of a million spans never holds more than this.
	MaxSpansPerTrace int
	MaxBytesPerTrace int64
	// KeptCache and DroppedCache are how many decided trace IDs are
	// remembered for late spans.
	KeptCache, DroppedCache int
	// StressProbability is the keep probability of stateless consistent
	// sampling under stress relief.
	StressProbability float64
	// StressRecover ends stress relief when buffered memory falls below this
	// fraction of MaxMemory.
	StressRecover float64
}

// WithDefaults fills the zero fields with their defaults.
func (c BufferConfig) WithDefaults() BufferConfig {
	if c.MaxMemory <= 0 {
		c.MaxMemory = 256 << 20
	}
	if c.DecisionWait <= 0 {
		c.DecisionWait = 2 * time.Second
	}
	if c.TraceTimeout <= 0 {
		c.TraceTimeout = 30 * time.Second
	}
	if c.MaxSpansPerTrace <= 0 {
		c.MaxSpansPerTrace = 10000
	}
	if c.MaxBytesPerTrace <= 0 {
		c.MaxBytesPerTrace = 8 << 20
	}
	// A single trace may take at most half a shard's share.
	if lim := c.MaxMemory / nShards / 2; c.MaxBytesPerTrace > lim {
		c.MaxBytesPerTrace = lim
	}
	if c.KeptCache <= 0 {
		c.KeptCache = 100000
	}
	if c.DroppedCache <= 0 {
		c.DroppedCache = 1000000
	}
	if c.StressProbability <= 0 {
		c.StressProbability = 0.01
	}
	if c.StressRecover <= 0 || c.StressRecover >= 1 {
		c.StressRecover = 0.5
	}
	return c
}

// Trigger says why a trace was decided.
type Trigger uint8

const (
	TriggerRoot    Trigger = iota // root span arrived, plus DecisionWait
	TriggerTimeout                // TraceTimeout after the first span, no root
	TriggerCap                    // span or byte cap reached
	TriggerMemory                 // decided early to free memory
	TriggerFlush                  // shutdown
	numTriggers
)

var triggerNames = [...]string{"root", "timeout", "cap", "memory", "flush"}

func (t Trigger) String() string { return triggerNames[t] }

// Decision is the verdict on one trace.
type Decision struct {
	Keep bool
	// Threshold is the applied threshold, written on kept spans (it includes
	// any upstream threshold); AdjustedCount follows from it. It is set for
	// dropped traces too (MaxThreshold when no policy could have kept the
	// trace), so that an evaluation knows every trace's keep probability.
	Threshold Threshold
	// Policy names the deciding policy (or drop rule); Reason is a short word
	// for metrics: "policy", "drop_rule", "no_match", "sampled_out".
	Policy, Reason string
}

// Decider decides one summarized trace. It is called with the trace's shard
// locked, so it must not call back into the buffer.
type Decider func(t *Trace, trig Trigger) Decision

// Emitter receives kept spans, ready to export, outside any lock.
type Emitter func(ptrace.Traces)

// nShards splits the buffer by trace ID so receivers on several cores do
// not contend for one lock. Each shard gets an equal part of MaxMemory.
const nShards = 16

// Buffer holds spans by trace ID until their trace is decided. Safe for
// concurrent use.
type Buffer struct {
	cfg    BufferConfig
	decide Decider
	emit   Emitter
	now    func() time.Time
	shards [nShards]*shard
	stress atomic.Bool
	stat   BufferStats
	// stressTh is the stateless threshold under stress relief.
	stressTh Threshold
}

// BufferStats are the buffer's counters (read them with Stats).
type BufferStats struct {
	SpansIn, SpansInvalid        atomic.Int64
	LateKept, LateDropped        atomic.Int64
	StressKept, StressDropped    atomic.Int64
	StressActivations            atomic.Int64
	Decided                      [numTriggers]atomic.Int64
	SpansKept, SpansDropped      atomic.Int64
	TracesKept, TracesDropped    atomic.Int64
	BytesKept, BytesDropped      atomic.Int64
	BufferedBytes, BufferedTrace atomic.Int64
}

type shard struct {
	mu         sync.Mutex
	traces     map[uint64]*Trace
	head, tail *Trace // arrival order, oldest first
	deadlines  deadlineHeap
	bytes      int64
	budget     int64
	kept       *fpSet
	dropped    *fpSet
	delays     logHist // decision delay: first arrival to decision
}

// NewBuffer returns a buffer that calls decide for each trace and emit with
// kept spans. Call Tick periodically (Run does) so waits and timeouts fire.
func NewBuffer(cfg BufferConfig, decide Decider, emit Emitter) *Buffer {
	cfg = cfg.WithDefaults()
	b := &Buffer{cfg: cfg, decide: decide, emit: emit, now: time.Now,
		stressTh: ProbabilityThreshold(cfg.StressProbability)}
	for i := range b.shards {
		b.shards[i] = &shard{
			traces:  map[uint64]*Trace{},
			budget:  cfg.MaxMemory / nShards,
			kept:    newFPSet(cfg.KeptCache/nShards, true),
			dropped: newFPSet(cfg.DroppedCache/nShards, false),
		}
	}
	return b
}

// Config is the effective configuration, defaults filled in.
func (b *Buffer) Config() BufferConfig { return b.cfg }

// Stressed reports whether stress relief is on.
func (b *Buffer) Stressed() bool { return b.stress.Load() }

// Stats gives the counters.
func (b *Buffer) Stats() *BufferStats { return &b.stat }

// DecisionDelay returns the q-quantile of the time from a trace's first
// span to its decision.
func (b *Buffer) DecisionDelay(q float64) time.Duration {
	hs := make([]*logHist, 0, nShards)
	for _, sh := range b.shards {
		sh.mu.Lock()
		h := sh.delays
		sh.mu.Unlock()
		hs = append(hs, &h)
	}
	return quantile(q, hs...)
}

// CacheBytes is the fixed memory of the decision caches.
func (b *Buffer) CacheBytes() int64 {
	var n int64
	for _, sh := range b.shards {
		n += sh.kept.Bytes() + sh.dropped.Bytes()
	}
	return n
}

// pending collects what to emit once the shard lock is released.
type pending struct {
	spans []stampedSpan
}

type stampedSpan struct {
	ref spanRef
}

func (p *pending) keep(refs []spanRef, th Threshold, rv uint64, writeRV bool) {
	// Spans of a trace nearly always share one tracestate: rewrite it once.
	var lastIn, lastOut string
	have := false
	for _, r := range refs {
		ts := r.span.TraceState()
		in := ts.AsRaw()
		if !have || in != lastIn {
			lastIn, lastOut, have = in, WithThreshold(in, th, rv, writeRV), true
		}
		ts.FromRaw(lastOut)
		p.spans = append(p.spans, stampedSpan{r})
	}
}

// Add buffers the spans of td (taking ownership of it) and emits what can
// go out at once: late spans of kept traces, stateless keeps under stress,
// traces decided because they hit a cap or memory ran short.
//
// The spans are grouped by shard first and each shard is locked once, so
// the spans of one trace in one request are added together: a decision
// (on another goroutine's Tick) never falls between them.
func (b *Buffer) Add(td ptrace.Traces) {
	now := b.now()
	var byShard [nShards][]spanRef
	per := td.SpanCount()/nShards + 4
	for i := range byShard {
		byShard[i] = make([]spanRef, 0, per)
	}
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := &resourceRef{res: rs.Resource(), schemaURL: rs.SchemaUrl()}
		if v, ok := rs.Resource().Attributes().Get("service.name"); ok {
			res.service = v.AsString()
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := &scopeRef{res: res, scope: ss.Scope(), schemaURL: ss.SchemaUrl()}
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				b.stat.SpansIn.Add(1)
				id := sp.TraceID()
				if id.IsEmpty() {
					b.stat.SpansInvalid.Add(1)
					continue
				}
				si := fingerprint(id) >> 60
				byShard[si] = append(byShard[si], spanRef{span: sp, scope: scope})
			}
		}
	}
	var out pending
	for si, refs := range byShard {
		if len(refs) == 0 {
			continue
		}
		sh := b.shards[si]
		sh.mu.Lock()
		for _, ref := range refs {
			b.addSpanLocked(sh, now, ref, &out)
		}
		sh.mu.Unlock()
	}
	b.flushOut(&out)
}

func (b *Buffer) flushOut(out *pending) {
	if len(out.spans) == 0 || b.emit == nil {
		return
	}
	b.emit(buildTraces(out.spans))
}

func (b *Buffer) addSpanLocked(sh *shard, now time.Time, ref spanRef, out *pending) {
	id := ref.span.TraceID()
	fp := fingerprint(id)
	size := spanBytes(ref.span)
	t := sh.traces[fp]
	if t == nil {
		if v, ok := sh.kept.Get(fp); ok {
			b.stat.LateKept.Add(1)
			b.stat.SpansKept.Add(1)
			b.stat.BytesKept.Add(size)
			th := Threshold(v &^ (1 << 63))
			rv, derived := Randomness(id, ref.span.Flags(), ParseTraceState(ref.span.TraceState().AsRaw()))
			out.keep([]spanRef{ref}, th, rv, derived)
			return
		}
		if _, ok := sh.dropped.Get(fp); ok {
			b.stat.LateDropped.Add(1)
			b.stat.SpansDropped.Add(1)
			b.stat.BytesDropped.Add(size)
			return
		}
		ot := ParseTraceState(ref.span.TraceState().AsRaw())
		rv, derived := Randomness(id, ref.span.Flags(), ot)
		if b.stress.Load() {
			b.stateless(sh, fp, ref, ot, rv, derived, size, out)
			return
		}
		t = &Trace{ID: id, fp: fp, FirstArrival: now, Randomness: rv, RandomDerived: derived, spans: make([]spanRef, 0, 8)}
		sh.traces[fp] = t
		sh.pushBack(t)
		b.stat.BufferedTrace.Add(1)
		sh.schedule(t, now.Add(b.cfg.TraceTimeout))
	}
	t.spans = append(t.spans, ref)
	t.Bytes += size
	sh.bytes += size
	b.stat.BufferedBytes.Add(size)
	if ts := ref.span.TraceState().AsRaw(); ts != "" {
		if ot := ParseTraceState(ts); ot.HasThreshold && ot.Threshold > t.InThreshold {
			t.InThreshold = ot.Threshold
		}
	}
	if t.RootArrival.IsZero() && ref.span.ParentSpanID().IsEmpty() {
		t.RootArrival = now
		if at := now.Add(b.cfg.DecisionWait); at.UnixNano() < t.deadline {
			sh.schedule(t, at)
		}
	}
	if len(t.spans) >= b.cfg.MaxSpansPerTrace || t.Bytes >= b.cfg.MaxBytesPerTrace {
		b.decideLocked(sh, t, TriggerCap, now, out)
	}
	for sh.bytes > sh.budget && sh.head != nil {
		old := sh.head
		if now.Sub(old.FirstArrival) < b.cfg.DecisionWait && !b.stress.Load() {
			// Memory cannot hold traces even for their wait: tail sampling
			// is not possible at this load, switch to stateless sampling.
			b.stress.Store(true)
			b.stat.StressActivations.Add(1)
		}
		b.decideLocked(sh, old, TriggerMemory, now, out)
		if sh.bytes <= sh.budget*9/10 {
			break
		}
	}
}

// stateless decides a span of an unknown trace by trace randomness alone
// (stress relief), and records the decision so the trace's other spans agree.
func (b *Buffer) stateless(sh *shard, fp uint64, ref spanRef, ot OTTraceState, rv uint64, derived bool, size int64, out *pending) {
	th := b.stressTh
	if ot.HasThreshold && ot.Threshold > th {
		th = ot.Threshold
	}
	if b.stressTh.Keeps(rv) {
		sh.kept.Put(fp, uint64(th)|boolBit(derived))
		b.stat.StressKept.Add(1)
		b.stat.SpansKept.Add(1)
		b.stat.BytesKept.Add(size)
		out.keep([]spanRef{ref}, th, rv, derived)
		return
	}
	sh.dropped.Put(fp, 0)
	b.stat.StressDropped.Add(1)
	b.stat.SpansDropped.Add(1)
	b.stat.BytesDropped.Add(size)
}

func boolBit(b bool) uint64 {
	if b {
		return 1 << 63
	}
	return 0
}

func (b *Buffer) decideLocked(sh *shard, t *Trace, trig Trigger, now time.Time, out *pending) {
	delete(sh.traces, t.fp)
	sh.unlink(t)
	t.heapGen++ // invalidates its heap entries
	sh.bytes -= t.Bytes
	b.stat.BufferedBytes.Add(-t.Bytes)
	b.stat.BufferedTrace.Add(-1)
	b.stat.Decided[trig].Add(1)
	sh.delays.Add(now.Sub(t.FirstArrival))
	t.summarize()
	d := b.decide(t, trig)
	if d.Keep {
		sh.kept.Put(t.fp, uint64(d.Threshold)|boolBit(t.RandomDerived))
		b.stat.TracesKept.Add(1)
		b.stat.SpansKept.Add(int64(len(t.spans)))
		b.stat.BytesKept.Add(t.Bytes)
		out.keep(t.spans, d.Threshold, t.Randomness, t.RandomDerived)
	} else {
		sh.dropped.Put(t.fp, 0)
		b.stat.TracesDropped.Add(1)
		b.stat.SpansDropped.Add(int64(len(t.spans)))
		b.stat.BytesDropped.Add(t.Bytes)
	}
	t.spans = nil
}

// Tick decides the traces whose wait or timeout has passed, and ends stress
// relief once memory has fallen below StressRecover of MaxMemory.
func (b *Buffer) Tick() {
	now := b.now()
	nowNano := now.UnixNano()
	for _, sh := range b.shards {
		var out pending
		sh.mu.Lock()
		for len(sh.deadlines) > 0 && sh.deadlines[0].at <= nowNano {
			e := heap.Pop(&sh.deadlines).(deadlineEntry)
			t := e.t
			if e.gen != t.heapGen || sh.traces[t.fp] != t {
				continue
			}
			trig := TriggerTimeout
			if !t.RootArrival.IsZero() {
				trig = TriggerRoot
			}
			b.decideLocked(sh, t, trig, now, &out)
		}
		sh.mu.Unlock()
		b.flushOut(&out)
	}
	if b.stress.Load() && float64(b.stat.BufferedBytes.Load()) < b.cfg.StressRecover*float64(b.cfg.MaxMemory) {
		b.stress.Store(false)
	}
}

// Flush decides every buffered trace now (at shutdown, or the end of an evaluation).
func (b *Buffer) Flush() {
	now := b.now()
	for _, sh := range b.shards {
		var out pending
		sh.mu.Lock()
		for sh.head != nil {
			b.decideLocked(sh, sh.head, TriggerFlush, now, &out)
		}
		sh.deadlines = sh.deadlines[:0]
		sh.mu.Unlock()
		b.flushOut(&out)
	}
}

// Run calls Tick every interval until stop is closed.
func (b *Buffer) Run(interval time.Duration, stop <-chan struct{}) {
	tk := time.NewTicker(interval)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			b.Tick()
		}
	}
}

func (sh *shard) pushBack(t *Trace) {
	t.prev, t.next = sh.tail, nil
	if sh.tail != nil {
		sh.tail.next = t
	} else {
		sh.head = t
	}
	sh.tail = t
}

func (sh *shard) unlink(t *Trace) {
	if t.prev != nil {
		t.prev.next = t.next
	} else if sh.head == t {
		sh.head = t.next
	}
	if t.next != nil {
		t.next.prev = t.prev
	} else if sh.tail == t {
		sh.tail = t.prev
	}
	t.prev, t.next = nil, nil
}

func (sh *shard) schedule(t *Trace, at time.Time) {
	t.heapGen++
	t.deadline = at.UnixNano()
	heap.Push(&sh.deadlines, deadlineEntry{at: t.deadline, t: t, gen: t.heapGen})
}

type deadlineEntry struct {
	at  int64
	t   *Trace
	gen uint32
}

type deadlineHeap []deadlineEntry

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at < h[j].at }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadlineEntry)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

// buildTraces groups spans back under copies of their resources and scopes.
func buildTraces(spans []stampedSpan) ptrace.Traces {
	td := ptrace.NewTraces()
	resIdx := map[*resourceRef]ptrace.ResourceSpans{}
	scopeIdx := map[*scopeRef]ptrace.SpanSlice{}
	for _, s := range spans {
		sc := s.ref.scope
		dst, ok := scopeIdx[sc]
		if !ok {
			rs, ok := resIdx[sc.res]
			if !ok {
				rs = td.ResourceSpans().AppendEmpty()
				sc.res.res.CopyTo(rs.Resource())
				rs.SetSchemaUrl(sc.res.schemaURL)
				resIdx[sc.res] = rs
			}
			ss := rs.ScopeSpans().AppendEmpty()
			sc.scope.CopyTo(ss.Scope())
			ss.SetSchemaUrl(sc.schemaURL)
			dst = ss.Spans()
			scopeIdx[sc] = dst
		}
		s.ref.span.MoveTo(dst.AppendEmpty())
	}
	return td
}
