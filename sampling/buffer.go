package sampling

import (
	"bytes"
	"container/heap"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BufferConfig sizes the trace buffer. The zero value of a field means its
// default (see WithDefaults).
type BufferConfig struct {
	// MaxMemory bounds the buffered traces plus the decision caches, in
	// bytes: what their allocations really take (encoded spans, per-trace
	// records, cache tables).
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
	// remembered for late spans (at least; up to twice as many). Their
	// tables count against MaxMemory.
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
	// The decision caches are part of MaxMemory. Unset, they get up to an
	// eighth of it: 100 000 kept and 1 000 000 dropped trace IDs when that
	// fits, proportionally fewer when it does not.
	if c.KeptCache <= 0 || c.DroppedCache <= 0 {
		kept, dropped := 100000, 1000000
		if c.KeptCache > 0 {
			kept = c.KeptCache
		}
		if c.DroppedCache > 0 {
			dropped = c.DroppedCache
		}
		// Halve the unset ones (not below 1024) until they fit.
		for cacheBytes(kept, dropped) > c.MaxMemory/8 {
			shrunk := false
			if c.KeptCache <= 0 && kept > 1024 {
				kept, shrunk = kept/2, true
			}
			if c.DroppedCache <= 0 && dropped > 1024 {
				dropped, shrunk = dropped/2, true
			}
			if !shrunk {
				break
			}
		}
		c.KeptCache, c.DroppedCache = kept, dropped
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

// Emitter receives kept spans, ready to export, outside any lock: body is
// an encoded OTLP ExportTraceServiceRequest holding spans spans. The
// emitter owns body.
type Emitter func(body []byte, spans int)

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
	// budget is what buffered traces may take: MaxMemory less the caches.
	budget int64
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
	bytes      int64 // buffered traces and interned headers
	share      int64 // the shard's fair share of the buffer's budget
	// headerBytes is the part of bytes taken by interned headers.
	headerBytes int64
	kept        *fpSet
	dropped     *fpSet
	// headers interns the resources and scopes of buffered spans.
	headers map[string]*header
	delays  logHist // decision delay: first arrival to decision
}

// NewBuffer returns a buffer that calls decide for each trace and emit with
// kept spans. Call Tick periodically (Run does) so waits and timeouts fire.
func NewBuffer(cfg BufferConfig, decide Decider, emit Emitter) *Buffer {
	cfg = cfg.WithDefaults()
	b := &Buffer{cfg: cfg, decide: decide, emit: emit, now: time.Now,
		stressTh: ProbabilityThreshold(cfg.StressProbability)}
	b.budget = cfg.MaxMemory - cacheBytes(cfg.KeptCache, cfg.DroppedCache)
	for i := range b.shards {
		b.shards[i] = &shard{
			traces:  map[uint64]*Trace{},
			headers: map[string]*header{},
			share:   b.budget / nShards,
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

// cacheBytes is what the decision caches of a buffer take.
func cacheBytes(kept, dropped int) int64 {
	return nShards * (fpSetBytes(kept/nShards, true) + fpSetBytes(dropped/nShards, false))
}

// CacheBytes is the fixed memory of the decision caches.
func (b *Buffer) CacheBytes() int64 {
	var n int64
	for _, sh := range b.shards {
		n += sh.kept.Bytes() + sh.dropped.Bytes()
	}
	return n
}

// pending collects what to emit once the shard lock is released: one
// export body for everything decided together.
type pending struct {
	body  []byte
	spans int
}

// keep appends fragments with the decision's threshold written on their spans.
func (p *pending) keep(segs []seg, th Threshold, rv uint64, writeRV bool) {
	st := stamper{th: th, rv: rv, writeRV: writeRV}
	// Room for the spans, their headers and a tracestate each, at once.
	need := 0
	for i := range segs {
		need += len(segs[i].spans) + len(segs[i].hdr.key) + 16 + 40*int(segs[i].n)
	}
	p.body = slices.Grow(p.body, need)
	var n int
	p.body, n = encodeSegs(p.body, segs, &st)
	p.spans += n
}

// Add buffers the spans of td. It encodes td and goes through AddRequest;
// receivers call AddRequest with the body as it came.
func (b *Buffer) Add(td ptrace.Traces) error {
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return err
	}
	return b.AddRequest(body)
}

// AddRequest validates an encoded OTLP ExportTraceServiceRequest, splits
// it by trace, buffers the pieces, and emits what can go out at once: late
// spans of kept traces, stateless keeps under stress, traces decided because
// they hit a cap or memory ran short. A malformed body is an error and
// changes nothing. The buffer keeps no reference to body.
func (b *Buffer) AddRequest(body []byte) error {
	sc := getScratch()
	defer putScratch(sc)
	frags, invalid, err := splitRequest(body, sc)
	if err != nil {
		return err
	}
	b.stat.SpansInvalid.Add(int64(invalid))
	b.stat.SpansIn.Add(int64(invalid))
	b.addFragments(frags)
	return nil
}

// addFragments buffers the fragments of one request. They are grouped by
// shard first and each shard is locked once, so the spans of one trace in
// one request are added together: a decision (on another goroutine's Tick)
// never falls between them.
func (b *Buffer) addFragments(frags []*fragment) {
	now := b.now()
	var byShard [nShards][]*fragment
	for _, f := range frags {
		b.stat.SpansIn.Add(int64(f.sum.spans))
		si := f.fp >> 60
		byShard[si] = append(byShard[si], f)
	}
	var out pending
	for si, fs := range byShard {
		if len(fs) == 0 {
			continue
		}
		sh := b.shards[si]
		sh.mu.Lock()
		for _, f := range fs {
			b.addFragLocked(sh, now, f, &out)
		}
		sh.mu.Unlock()
	}
	b.flushOut(&out)
}

func (b *Buffer) flushOut(out *pending) {
	if out.spans == 0 || b.emit == nil {
		return
	}
	b.emit(out.body, out.spans)
	out.body, out.spans = nil, 0
}

func (b *Buffer) addFragLocked(sh *shard, now time.Time, f *fragment, out *pending) {
	fp := f.fp
	size := f.size
	nspans := int64(f.sum.spans)
	t := sh.traces[fp]
	if t == nil {
		if v, ok := sh.kept.Get(fp); ok {
			b.stat.LateKept.Add(nspans)
			b.stat.SpansKept.Add(nspans)
			b.stat.BytesKept.Add(size)
			th := Threshold(v &^ (1 << 63))
			rv, derived := Randomness(f.id, f.firstFlags, ParseTraceState(f.firstState))
			out.keep(f.segs, th, rv, derived)
			return
		}
		if _, ok := sh.dropped.Get(fp); ok {
			b.stat.LateDropped.Add(nspans)
			b.stat.SpansDropped.Add(nspans)
			b.stat.BytesDropped.Add(size)
			return
		}
		ot := ParseTraceState(f.firstState)
		rv, derived := Randomness(f.id, f.firstFlags, ot)
		if b.stress.Load() {
			b.stateless(sh, f, ot, rv, derived, size, out)
			return
		}
		t = &Trace{ID: f.id, fp: fp, firstAt: now.UnixNano(), Randomness: rv, RandomDerived: derived, Bytes: traceOverhead}
		sh.traces[fp] = t
		sh.pushBack(t)
		sh.bytes += traceOverhead
		b.stat.BufferedBytes.Add(traceOverhead)
		b.stat.BufferedTrace.Add(1)
		sh.schedule(t, now.Add(b.cfg.TraceTimeout))
	}
	hadRoot := t.HasRoot
	before := sh.bytes
	sh.bytes += t.merge(f, sh) // merge counts new interned headers itself
	b.stat.BufferedBytes.Add(sh.bytes - before)
	if !hadRoot && t.HasRoot {
		t.rootAt = now.UnixNano()
		if at := now.Add(b.cfg.DecisionWait); at.UnixNano() < t.deadline {
			sh.schedule(t, at)
		}
	}
	if t.SpanCount >= b.cfg.MaxSpansPerTrace || t.Bytes >= b.cfg.MaxBytesPerTrace {
		b.decideLocked(sh, t, TriggerCap, now, out)
	}
	b.relieveLocked(sh, now, out)
}

// relieveLocked decides the shard's oldest traces early while the buffer as
// a whole is over its memory budget and this shard holds more than 90% of
// its fair share. The budget is the buffer's, not the shard's, so shards
// lend each other room: a huge trace or a burst in one shard does not force
// early decisions while the others have room.
func (b *Buffer) relieveLocked(sh *shard, now time.Time, out *pending) {
	for b.stat.BufferedBytes.Load() > b.budget && sh.bytes > sh.share*9/10 && sh.head != nil {
		old := sh.head
		if time.Duration(now.UnixNano()-old.firstAt) < b.cfg.DecisionWait && !b.stress.Load() {
			// Memory cannot hold traces even for their wait: tail sampling
			// is not possible at this load, switch to stateless sampling.
			b.stress.Store(true)
			b.stat.StressActivations.Add(1)
		}
		b.decideLocked(sh, old, TriggerMemory, now, out)
	}
}

// stateless decides a fragment of an unknown trace by trace randomness alone
// (stress relief), and records the decision so the trace's other spans agree.
func (b *Buffer) stateless(sh *shard, f *fragment, ot OTTraceState, rv uint64, derived bool, size int64, out *pending) {
	th := b.stressTh
	if ot.HasThreshold && ot.Threshold > th {
		th = ot.Threshold
	}
	n := int64(f.sum.spans)
	if b.stressTh.Keeps(rv) {
		sh.kept.Put(f.fp, uint64(th)|boolBit(derived))
		b.stat.StressKept.Add(n)
		b.stat.SpansKept.Add(n)
		b.stat.BytesKept.Add(size)
		out.keep(f.segs, th, rv, derived)
		return
	}
	sh.dropped.Put(f.fp, 0)
	b.stat.StressDropped.Add(n)
	b.stat.SpansDropped.Add(n)
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
	before := sh.bytes
	sh.bytes -= t.Bytes
	b.stat.BufferedTrace.Add(-1)
	b.stat.Decided[trig].Add(1)
	sh.delays.Add(time.Duration(now.UnixNano() - t.firstAt))
	t.summarize()
	d := b.decide(t, trig)
	if d.Keep {
		sh.kept.Put(t.fp, uint64(d.Threshold)|boolBit(t.RandomDerived))
		b.stat.TracesKept.Add(1)
		b.stat.SpansKept.Add(int64(t.SpanCount))
		b.stat.BytesKept.Add(t.Bytes)
		out.keep(t.segs, d.Threshold, t.Randomness, t.RandomDerived)
	} else {
		sh.dropped.Put(t.fp, 0)
		b.stat.TracesDropped.Add(1)
		b.stat.SpansDropped.Add(int64(t.SpanCount))
		b.stat.BytesDropped.Add(t.Bytes)
	}
	t.release(sh)
	b.stat.BufferedBytes.Add(sh.bytes - before)
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
			if t.rootAt != 0 {
				trig = TriggerRoot
			}
			b.decideLocked(sh, t, trig, now, &out)
		}
		b.relieveLocked(sh, now, &out)
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

// intern returns the shard's copy of h, making one (counted in the shard's
// bytes) if there is none.
func (sh *shard) intern(h *header) *header {
	if c := sh.headers[string(h.key)]; c != nil {
		return c
	}
	c := parseHeader(bytes.Clone(h.key))
	sh.headers[string(c.key)] = c
	sh.bytes += headerBytes(c)
	sh.headerBytes += headerBytes(c)
	return c
}

// unref drops a reference to an interned header, freeing it at zero.
func (sh *shard) unref(h *header) {
	h.refs--
	if h.refs <= 0 {
		delete(sh.headers, string(h.key))
		sh.bytes -= headerBytes(h)
		sh.headerBytes -= headerBytes(h)
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
