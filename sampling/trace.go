package sampling

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// resourceRef is one incoming ResourceSpans' resource, shared by the spans
// that came with it, so that buffering a span does not copy its resource.
type resourceRef struct {
	res       pcommon.Resource
	schemaURL string
	service   string
}

// scopeRef is one incoming ScopeSpans' scope, shared likewise.
type scopeRef struct {
	res       *resourceRef
	scope     pcommon.InstrumentationScope
	schemaURL string
}

// spanRef is a buffered span and where it came from.
type spanRef struct {
	span  ptrace.Span
	scope *scopeRef
}

// Trace is the spans of one trace seen so far, and what the policies need
// to know about them. The summary fields are filled by summarize just before
// a decision.
type Trace struct {
	ID    pcommon.TraceID
	fp    uint64
	spans []spanRef
	// Bytes is the estimated memory the buffered spans take.
	Bytes int64
	// FirstArrival is when the first span arrived; RootArrival when the root
	// span did (zero until then).
	FirstArrival, RootArrival time.Time

	// Randomness is the trace's 56 random bits; RandomDerived says they were
	// hashed from the ID (and so are written into tracestate on export).
	Randomness    uint64
	RandomDerived bool
	// InThreshold is the largest th already on the spans (an upstream head
	// sampler's), KeepAll when none.
	InThreshold Threshold

	// Summary, valid during a decision.
	Root        ptrace.Span // zero Span when the root never arrived
	RootService string
	HasRoot     bool
	Duration    time.Duration // root span's, else latest end minus earliest start
	HasError    bool          // any span: status error, HTTP 5xx, or an exception event
	SpanCount   int

	// list and heap bookkeeping
	prev, next *Trace
	deadline   int64 // unix nanos of the pending decision time
	heapGen    uint32
}

// Spans calls fn for every buffered span with its resource, until fn returns false.
func (t *Trace) Spans(fn func(res pcommon.Resource, span ptrace.Span) bool) {
	for _, s := range t.spans {
		if !fn(s.scope.res.res, s.span) {
			return
		}
	}
}

// Key fields a policy may group by.
func (t *Trace) Operation() string {
	if t.HasRoot {
		return t.Root.Name()
	}
	return ""
}

// summarize computes the summary fields from the buffered spans.
func (t *Trace) summarize() {
	t.SpanCount = len(t.spans)
	var minStart, maxEnd pcommon.Timestamp
	t.HasError = false
	for i, s := range t.spans {
		sp := s.span
		st, en := sp.StartTimestamp(), sp.EndTimestamp()
		if i == 0 || st < minStart {
			minStart = st
		}
		if en > maxEnd {
			maxEnd = en
		}
		if sp.ParentSpanID().IsEmpty() && !t.HasRoot {
			t.Root, t.HasRoot, t.RootService = sp, true, s.scope.res.service
		}
		if !t.HasError && spanIsError(sp) {
			t.HasError = true
		}
	}
	if !t.HasRoot && len(t.spans) > 0 {
		// No root yet: name the trace by its earliest span's service.
		t.RootService = t.spans[0].scope.res.service
	}
	switch {
	case t.HasRoot:
		t.Duration = spanDuration(t.Root)
	case maxEnd > minStart:
		t.Duration = time.Duration(maxEnd - minStart)
	default:
		t.Duration = 0
	}
}

// spanDuration is end minus start, 0 when the span's clock went backwards.
func spanDuration(s ptrace.Span) time.Duration {
	st, en := s.StartTimestamp(), s.EndTimestamp()
	if en <= st {
		return 0
	}
	return time.Duration(en - st)
}

// spanIsError: status Error, an HTTP 5xx response code (old and new semantic
// conventions, integer or string), or an "exception" event.
func spanIsError(s ptrace.Span) bool {
	if s.Status().Code() == ptrace.StatusCodeError {
		return true
	}
	return spanIsHTTP5xx(s) || spanHasException(s)
}

func spanIsHTTP5xx(s ptrace.Span) bool {
	for _, k := range []string{"http.response.status_code", "http.status_code"} {
		v, ok := s.Attributes().Get(k)
		if !ok {
			continue
		}
		var code int64
		switch v.Type() {
		case pcommon.ValueTypeInt:
			code = v.Int()
		case pcommon.ValueTypeDouble:
			code = int64(v.Double())
		case pcommon.ValueTypeStr:
			s := v.Str()
			if len(s) == 3 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' && s[2] >= '0' && s[2] <= '9' {
				code = int64(s[0]-'0')*100 + int64(s[1]-'0')*10 + int64(s[2]-'0')
			}
		}
		if code >= 500 && code <= 599 {
			return true
		}
	}
	return false
}

func spanHasException(s ptrace.Span) bool {
	ev := s.Events()
	for i := 0; i < ev.Len(); i++ {
		if ev.At(i).Name() == "exception" {
			return true
		}
	}
	return false
}

// spanBytes estimates the memory a buffered span holds: its protobuf size
// times two (pdata's in-memory form is larger than the wire) plus the fixed
// cost of its structs and our reference to it.
func spanBytes(s ptrace.Span) int64 {
	return int64(2*sizer.SpanSize(s)) + spanOverhead
}

const spanOverhead = 240

var sizer = &ptrace.ProtoMarshaler{}
