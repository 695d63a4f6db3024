package sampling

import (
	"time"
	"unsafe"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Trace is the spans of one trace seen so far, held encoded (see wire.go),
// and the summary the policies decide on. The summary is kept up to date as
// spans arrive, so a decision reads no span; a policy that needs more than
// the summary (an attribute condition, a key on a root or resource
// attribute) decodes the spans at decision time with Spans.
type Trace struct {
	ID pcommon.TraceID
	fp uint64
	// segs are the encoded spans received, in runs under interned headers.
	segs []seg
	// Bytes is the memory the buffered trace takes: its fragments'
	// allocations plus the fixed cost of the Trace and its index entries.
	Bytes int64
	// firstAt is when the first span arrived, rootAt when the root did (0
	// until then), in unix nanoseconds.
	firstAt, rootAt int64

	// Randomness is the trace's 56 random bits; RandomDerived says they were
	// hashed from the ID (and so are written into tracestate on export).
	Randomness    uint64
	RandomDerived bool
	// InThreshold is the largest th already on the spans (an upstream head
	// sampler's), KeepAll when none.
	InThreshold Threshold

	// Summary.
	RootName    string // the root span's name ("" until it arrives)
	RootKind    ptrace.SpanKind
	RootService string // the root's service, else the first span's
	HasRoot     bool
	Duration    time.Duration // root span's, else latest end minus earliest start
	// HasError: any span has status Error, an HTTP 5xx code or an exception
	// event; the three signs are also kept apart.
	HasError                         bool
	ErrStatus, ErrHTTP, ErrException bool
	SpanCount                        int

	minStart, maxEnd uint64
	rootDur          uint64
	firstService     string

	// decoded holds the decoded spans during one decision, when a policy asked.
	decoded *ptrace.Traces

	// list and heap bookkeeping
	prev, next *Trace
	deadline   int64 // unix nanos of the pending decision time
	heapGen    uint32
}

// traceOverhead is what a buffered trace costs besides its fragments: the
// Trace itself, its map slot and up to two deadline heap entries.
const traceOverhead = int64(unsafe.Sizeof(Trace{})) + 16 + 2*int64(unsafe.Sizeof(deadlineEntry{}))

// segCost is the cost of one entry of segs.
const segCost = int64(unsafe.Sizeof(seg{}))

// merge adds a fragment's spans and summary, interning its headers in the
// shard; it returns the bytes added to the trace (new headers are counted
// by the shard).
func (t *Trace) merge(f *fragment, sh *shard) int64 {
	var added int64
	for _, fs := range f.segs {
		h := fs.hdr
		if sh != nil {
			h = sh.intern(h)
		}
		if last := len(t.segs) - 1; last >= 0 && t.segs[last].hdr == h {
			// The same service again: one run.
			sg := &t.segs[last]
			old := cap(sg.spans)
			sg.spans = append(sg.spans, fs.spans...)
			sg.n += fs.n
			added += int64(cap(sg.spans) - old)
			continue
		}
		if sh != nil {
			h.refs++
		}
		old := cap(t.segs)
		t.segs = append(t.segs, seg{hdr: h, spans: fs.spans, n: fs.n})
		added += int64(cap(fs.spans)) + int64(cap(t.segs)-old)*segCost
	}
	s := &f.sum
	if t.SpanCount == 0 {
		t.firstService = f.firstService
	}
	if t.SpanCount == 0 || s.minStart < t.minStart {
		t.minStart = s.minStart
	}
	if s.maxEnd > t.maxEnd {
		t.maxEnd = s.maxEnd
	}
	t.SpanCount += s.spans
	if s.hasRoot && !t.HasRoot {
		t.HasRoot, t.RootName, t.RootKind, t.RootService = true, s.rootName, ptrace.SpanKind(s.rootKind), s.rootService
		t.rootDur = 0
		if s.rootEnd > s.rootStart {
			t.rootDur = s.rootEnd - s.rootStart
		}
	}
	t.ErrStatus = t.ErrStatus || s.errStatus
	t.ErrHTTP = t.ErrHTTP || s.errHTTP
	t.ErrException = t.ErrException || s.errException
	t.HasError = t.ErrStatus || t.ErrHTTP || t.ErrException
	if s.hasInTh && s.inTh > t.InThreshold {
		t.InThreshold = s.inTh
	}
	t.Bytes += added
	return added
}

// release drops the trace's spans and its references to interned headers.
func (t *Trace) release(sh *shard) {
	for _, sg := range t.segs {
		sh.unref(sg.hdr)
	}
	t.segs, t.decoded = nil, nil
}

// summarize completes the summary before a decision.
func (t *Trace) summarize() {
	if !t.HasRoot {
		// No root yet: name the trace by its earliest span's service.
		t.RootService = t.firstService
	}
	switch {
	case t.HasRoot:
		t.Duration = time.Duration(t.rootDur)
	case t.maxEnd > t.minStart:
		t.Duration = time.Duration(t.maxEnd - t.minStart)
	default:
		t.Duration = 0
	}
}

// Operation is the root span's name ("" while the root is missing).
func (t *Trace) Operation() string { return t.RootName }

// decode decodes the buffered spans (once per decision).
func (t *Trace) decode() ptrace.Traces {
	if t.decoded != nil {
		return *t.decoded
	}
	body, _ := encodeSegs(nil, t.segs, nil)
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
	if err != nil {
		// Cannot happen: fragments are validated pieces of a request.
		td = ptrace.NewTraces()
	}
	t.decoded = &td
	return td
}

// Spans calls fn for every buffered span with its resource, until fn
// returns false. It decodes the spans (once per decision): policies that
// can decide on the summary should.
func (t *Trace) Spans(fn func(res pcommon.Resource, span ptrace.Span) bool) {
	rss := t.decode().ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				if !fn(rs.Resource(), spans.At(k)) {
					return
				}
			}
		}
	}
}

// root finds the decoded root span and its resource; without a root, the
// first span's resource (isRoot false). any is false when no span decoded.
func (t *Trace) root() (sp ptrace.Span, res pcommon.Resource, isRoot, any bool) {
	t.Spans(func(r pcommon.Resource, s ptrace.Span) bool {
		if !any {
			res, any = r, true
		}
		if s.ParentSpanID().IsEmpty() {
			sp, res, isRoot = s, r, true
			return false
		}
		return true
	})
	return sp, res, isRoot, any
}
