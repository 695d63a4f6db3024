package sampling

import (
	"encoding/binary"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// tid makes a trace ID whose low 56 bits (the randomness) are rv.
func tid(hi uint64, rv uint64) pcommon.TraceID {
	var id pcommon.TraceID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], rv&maxRandomness)
	return id
}

func sid(n uint64) pcommon.SpanID {
	var id pcommon.SpanID
	binary.BigEndian.PutUint64(id[:], n)
	return id
}

type spanSpec struct {
	service, name string
	trace         pcommon.TraceID
	id, parent    uint64
	dur           time.Duration
	err           bool
	events        []string
	attrs         map[string]any
}

// traces builds one request with the given spans, each under its service's resource.
func traces(specs ...spanSpec) ptrace.Traces {
	td := ptrace.NewTraces()
	bySvc := map[string]ptrace.SpanSlice{}
	for _, s := range specs {
		ss, ok := bySvc[s.service]
		if !ok {
			rs := td.ResourceSpans().AppendEmpty()
			rs.Resource().Attributes().PutStr("service.name", s.service)
			ss = rs.ScopeSpans().AppendEmpty().Spans()
			bySvc[s.service] = ss
		}
		sp := ss.AppendEmpty()
		sp.SetTraceID(s.trace)
		sp.SetSpanID(sid(s.id))
		if s.parent != 0 {
			sp.SetParentSpanID(sid(s.parent))
		}
		sp.SetFlags(flagSampled | flagRandom)
		sp.SetName(s.name)
		start := pcommon.Timestamp(1_700_000_000_000_000_000)
		sp.SetStartTimestamp(start)
		sp.SetEndTimestamp(start + pcommon.Timestamp(s.dur))
		if s.err {
			sp.Status().SetCode(ptrace.StatusCodeError)
		}
		for _, e := range s.events {
			sp.Events().AppendEmpty().SetName(e)
		}
		for k, v := range s.attrs {
			sp.Attributes().PutEmpty(k).FromRaw(v)
		}
	}
	return td
}

// sink collects emitted spans by trace ID with their tracestate.
type sink struct {
	mu    sync.Mutex
	spans map[pcommon.TraceID][]string
}

func newSink() *sink { return &sink{spans: map[pcommon.TraceID][]string{}} }

func (k *sink) emit(body []byte, spans int) {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
	if err != nil {
		panic("emitted body does not decode: " + err.Error())
	}
	if td.SpanCount() != spans {
		panic("emitted span count is wrong")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for n := 0; n < sp.Len(); n++ {
				s := sp.At(n)
				k.spans[s.TraceID()] = append(k.spans[s.TraceID()], s.TraceState().AsRaw())
			}
		}
	}
}

func (k *sink) count(id pcommon.TraceID) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.spans[id])
}

// fakeClock is a settable clock for buffer tests.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
