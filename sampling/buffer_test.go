package sampling

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// keepErrors keeps traces with an error, drops the rest.
func keepErrors(t *Trace, _ Trigger) Decision {
	if t.HasError {
		return Decision{Keep: true, Threshold: KeepAll, Policy: "errors", Reason: "policy"}
	}
	return Decision{Reason: "no_match"}
}

func newTestBuffer(cfg BufferConfig, d Decider) (*Buffer, *sink, *fakeClock) {
	k := newSink()
	b := NewBuffer(cfg, d, k.emit)
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	b.now = clk.now
	return b, k, clk
}

func TestBufferDecidesAfterRootPlusWait(t *testing.T) {
	b, k, clk := newTestBuffer(BufferConfig{DecisionWait: time.Second, TraceTimeout: 10 * time.Second}, keepErrors)
	id := tid(1, 1)
	b.Add(traces(spanSpec{service: "db", name: "query", trace: id, id: 2, parent: 1, err: true}))
	clk.advance(2 * time.Second)
	b.Tick()
	if k.count(id) != 0 {
		t.Fatal("decided before the root arrived or the timeout")
	}
	b.Add(traces(spanSpec{service: "api", name: "GET /", trace: id, id: 1}))
	clk.advance(999 * time.Millisecond)
	b.Tick()
	if k.count(id) != 0 {
		t.Fatal("decided before root + wait")
	}
	clk.advance(2 * time.Millisecond)
	b.Tick()
	if k.count(id) != 2 {
		t.Fatalf("kept %d spans, want 2", k.count(id))
	}
	if got := b.Stats().Decided[TriggerRoot].Load(); got != 1 {
		t.Fatalf("root decisions %d", got)
	}
	for _, ts := range k.spans[id] {
		if !strings.HasPrefix(ts, "ot=th:0") {
			t.Fatalf("kept span tracestate %q lacks the applied threshold", ts)
		}
	}
	// A late span follows the decision, with the same threshold.
	b.Add(traces(spanSpec{service: "cache", name: "get", trace: id, id: 3, parent: 1}))
	if k.count(id) != 3 || b.Stats().LateKept.Load() != 1 {
		t.Fatalf("late span of a kept trace: %d spans, late kept %d", k.count(id), b.Stats().LateKept.Load())
	}
	if b.Stats().BufferedBytes.Load() != 0 || b.Stats().BufferedTrace.Load() != 0 {
		t.Fatal("memory accounting does not return to zero")
	}
}

func TestBufferTimeoutAndLateDrop(t *testing.T) {
	b, k, clk := newTestBuffer(BufferConfig{DecisionWait: time.Second, TraceTimeout: 5 * time.Second}, keepErrors)
	id := tid(2, 2)
	b.Add(traces(spanSpec{service: "db", name: "q", trace: id, id: 2, parent: 1}))
	clk.advance(5 * time.Second)
	b.Tick()
	if b.Stats().Decided[TriggerTimeout].Load() != 1 || b.Stats().TracesDropped.Load() != 1 {
		t.Fatal("no timeout decision")
	}
	// The late root (with an error!) follows the drop decision.
	b.Add(traces(spanSpec{service: "api", name: "GET", trace: id, id: 1, err: true}))
	clk.advance(5 * time.Second)
	b.Tick()
	if k.count(id) != 0 || b.Stats().LateDropped.Load() != 1 {
		t.Fatalf("late span of a dropped trace: kept %d, late dropped %d", k.count(id), b.Stats().LateDropped.Load())
	}
}

func TestBufferCapsHugeTrace(t *testing.T) {
	b, k, _ := newTestBuffer(BufferConfig{MaxSpansPerTrace: 100, MaxMemory: 64 << 20}, keepErrors)
	id := tid(3, 3)
	b.Add(traces(spanSpec{service: "api", name: "root", trace: id, id: 1, err: true}))
	for batch := 0; batch < 50; batch++ {
		var specs []spanSpec
		for i := 0; i < 100; i++ {
			specs = append(specs, spanSpec{service: "w", name: "child", trace: id, id: uint64(2 + batch*100 + i), parent: 1})
		}
		b.Add(traces(specs...))
		if n := b.Stats().BufferedTrace.Load(); n > 1 {
			t.Fatalf("buffered %d traces", n)
		}
	}
	if b.Stats().Decided[TriggerCap].Load() != 1 {
		t.Fatal("cap did not trigger a decision")
	}
	if got := k.count(id); got != 5001 {
		t.Fatalf("kept %d spans of 5001 (the spans after the cap follow the decision)", got)
	}
	if b.Stats().BufferedBytes.Load() != 0 {
		t.Fatal("the capped trace still holds memory")
	}
}

func TestBufferMemoryPressureThenStressRelief(t *testing.T) {
	cfg := BufferConfig{MaxMemory: 1 << 20, DecisionWait: time.Second, TraceTimeout: 10 * time.Second, StressProbability: 0.5, StressRecover: 0.5}
	b, k, clk := newTestBuffer(cfg, keepErrors)
	big := strings.Repeat("x", 2000)
	add := func(n, from int) {
		for i := 0; i < n; i++ {
			b.Add(traces(spanSpec{service: "s", name: "op", trace: tid(uint64(from+i), uint64(from+i)*0x9E3779B97F4A7C15>>8), id: 2, parent: 1, attrs: map[string]any{"blob": big}}))
		}
	}
	// Old traces first: they are decided early once memory runs short.
	add(100, 0)
	clk.advance(5 * time.Second)
	add(400, 1000)
	if b.Stats().Decided[TriggerMemory].Load() == 0 {
		t.Fatal("no early decisions under memory pressure")
	}
	if got := b.Stats().BufferedBytes.Load(); got > cfg.MaxMemory {
		t.Fatalf("buffer holds %d bytes, over max_memory %d", got, cfg.MaxMemory)
	}
	// Now everything in memory is young: more load forces stress relief.
	add(2000, 5000)
	if !b.Stressed() || b.Stats().StressActivations.Load() == 0 {
		t.Fatal("stress relief did not switch on when traces could not be held for their wait")
	}
	if got := b.Stats().BufferedBytes.Load(); got > cfg.MaxMemory {
		t.Fatalf("buffer holds %d bytes under stress", got)
	}
	kept, dropped := b.Stats().StressKept.Load(), b.Stats().StressDropped.Load()
	if kept == 0 || dropped == 0 {
		t.Fatalf("stateless sampling at 50%%: kept %d dropped %d", kept, dropped)
	}
	// Stateless decisions are consistent by trace randomness.
	for id, states := range k.spans {
		rv, _ := Randomness(id, flagRandom, OTTraceState{})
		for _, ts := range states {
			if ts == "ot=th:8" && rv < 1<<55 {
				t.Fatalf("kept under stress with rv %x below threshold 8", rv)
			}
		}
	}
	// Memory falls (traces time out): stress relief ends.
	clk.advance(20 * time.Second)
	b.Tick()
	if b.Stressed() {
		t.Fatal("stress relief did not end when memory fell")
	}
}

func TestBufferInvalidTraceID(t *testing.T) {
	b, _, _ := newTestBuffer(BufferConfig{}, keepErrors)
	td := traces(spanSpec{service: "s", name: "x", id: 1})
	b.Add(td)
	if b.Stats().SpansInvalid.Load() != 1 || b.Stats().BufferedTrace.Load() != 0 {
		t.Fatal("span with an empty trace ID was buffered")
	}
}

func TestBufferFlush(t *testing.T) {
	b, k, _ := newTestBuffer(BufferConfig{}, keepErrors)
	id := tid(9, 9)
	b.Add(traces(spanSpec{service: "s", name: "x", trace: id, id: 1, err: true}))
	b.Flush()
	if k.count(id) != 1 || b.Stats().Decided[TriggerFlush].Load() != 1 {
		t.Fatal("flush did not decide")
	}
}

func TestBufferHonoursUpstreamThresholdAndDerivesRandomness(t *testing.T) {
	cfg, _ := ParseConfig([]byte("policies: [{name: errors, errors: {}}]"))
	ps, _ := cfg.BuildPolicies()
	b, k, _ := newTestBuffer(BufferConfig{}, func(tr *Trace, _ Trigger) Decision { return ps.Decide(tr, time.Now()) })
	// Head-sampled upstream at 50% with an explicit rv, and an error: kept,
	// and the written threshold keeps the upstream one (adjusted count 2).
	id := tid(5, 0x00fedcba987654)
	td := traces(spanSpec{service: "a", name: "GET", trace: id, id: 1, err: true}, spanSpec{service: "b", name: "q", trace: id, id: 2, parent: 1})
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.TraceState().FromRaw("ot=th:8;rv:c0000000000000,other=1")
	b.Add(td)
	b.Flush()
	for _, ts := range k.spans[id] {
		o := ParseTraceState(ts)
		if !o.HasThreshold || o.Threshold.String() != "8" || o.Threshold.AdjustedCount() != 2 {
			t.Fatalf("tracestate %q: want th:8", ts)
		}
	}
	if !strings.Contains(k.spans[id][0], "other=1") {
		t.Fatalf("other tracestate members lost: %q", k.spans[id][0])
	}
	// No random flag, no rv: the randomness is derived and written as rv.
	id2 := tid(6, 6)
	td2 := traces(spanSpec{service: "a", name: "GET", trace: id2, id: 1, err: true})
	td2.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetFlags(flagSampled)
	b.Add(td2)
	b.Flush()
	want, _ := Randomness(id2, 0, OTTraceState{})
	if o := ParseTraceState(k.spans[id2][0]); !o.HasRandom || o.Randomness != want {
		t.Fatalf("derived rv not written: %q", k.spans[id2][0])
	}
}

// TestBufferAccountsRealBytes: buffered bytes count the encoded spans,
// per-trace records and interned headers, and fall back to zero (headers
// freed) once every trace is decided.
func TestBufferAccountsRealBytes(t *testing.T) {
	b, k, _ := newTestBuffer(BufferConfig{}, keepErrors)
	for i := uint64(1); i <= 50; i++ {
		b.Add(traces(spanSpec{service: "api", name: "GET", trace: tid(i, i), id: 1, err: i%2 == 0},
			spanSpec{service: "db", name: "q", trace: tid(i, i), id: 2, parent: 1}))
	}
	if got := b.Stats().BufferedBytes.Load(); got < 50*traceOverhead {
		t.Fatalf("buffered %d bytes for 50 traces: less than their records", got)
	}
	headers := 0
	for _, sh := range b.shards {
		headers += len(sh.headers)
	}
	if headers == 0 || headers > 2*nShards {
		t.Fatalf("%d interned headers for 2 services", headers)
	}
	b.Flush()
	if got := b.Stats().BufferedBytes.Load(); got != 0 {
		t.Fatalf("%d bytes still counted after flush", got)
	}
	for _, sh := range b.shards {
		if len(sh.headers) != 0 || sh.bytes != 0 {
			t.Fatalf("shard keeps %d headers, %d bytes", len(sh.headers), sh.bytes)
		}
	}
	if len(k.spans) != 25 {
		t.Fatalf("kept %d traces, want the 25 with errors", len(k.spans))
	}
}

// TestKeptSpansRoundTrip: a kept trace goes out as it came in (resources,
// scopes, schema URLs, attributes, events, links, status) but for the
// threshold written into its tracestate.
func TestKeptSpansRoundTrip(t *testing.T) {
	in := traces(
		spanSpec{service: "api", name: "GET", trace: tid(1, 1), id: 1, events: []string{"exception"}, attrs: map[string]any{"k": []any{int64(1), "x"}}},
		spanSpec{service: "db", name: "q", trace: tid(1, 1), id: 2, parent: 1, err: true})
	rs := in.ResourceSpans().At(0)
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rs.ScopeSpans().At(0).Scope().SetName("lib")
	rs.ScopeSpans().At(0).Scope().SetVersion("1.2")
	rs.ScopeSpans().At(0).SetSchemaUrl("scope-schema")
	sp := rs.ScopeSpans().At(0).Spans().At(0)
	sp.Links().AppendEmpty().SetTraceID(tid(9, 9))
	sp.Status().SetMessage("boom")
	sp.TraceState().FromRaw("vendor=1")
	want := ptrace.NewTraces()
	in.CopyTo(want)

	var got []ptrace.Traces
	b := NewBuffer(BufferConfig{}, func(*Trace, Trigger) Decision {
		return Decision{Keep: true, Threshold: ProbabilityThreshold(0.25)}
	}, func(body []byte, _ int) {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, td)
	})
	b.Add(in)
	b.Flush()
	if len(got) != 1 || got[0].SpanCount() != 2 {
		t.Fatalf("emitted %d batches", len(got))
	}
	// Compare span by span, ignoring the tracestate, which must carry the threshold.
	find := func(td ptrace.Traces, id uint64) (ptrace.ResourceSpans, ptrace.ScopeSpans, ptrace.Span) {
		for i := 0; i < td.ResourceSpans().Len(); i++ {
			r := td.ResourceSpans().At(i)
			for j := 0; j < r.ScopeSpans().Len(); j++ {
				s := r.ScopeSpans().At(j)
				for k := 0; k < s.Spans().Len(); k++ {
					if s.Spans().At(k).SpanID() == sid(id) {
						return r, s, s.Spans().At(k)
					}
				}
			}
		}
		t.Fatalf("span %d not emitted", id)
		return ptrace.ResourceSpans{}, ptrace.ScopeSpans{}, ptrace.Span{}
	}
	for _, id := range []uint64{1, 2} {
		wr, ws, wsp := find(want, id)
		gr, gs, gsp := find(got[0], id)
		if ts := gsp.TraceState().AsRaw(); !strings.HasPrefix(ts, "ot=th:c") {
			t.Errorf("span %d tracestate %q: want the 25%% threshold first", id, ts)
		}
		if id == 1 && !strings.Contains(gsp.TraceState().AsRaw(), "vendor=1") {
			t.Errorf("other tracestate members lost: %q", gsp.TraceState().AsRaw())
		}
		wsp.TraceState().FromRaw("")
		gsp.TraceState().FromRaw("")
		for _, pair := range [][2]any{
			{wr.Resource().Attributes().AsRaw(), gr.Resource().Attributes().AsRaw()},
			{wr.SchemaUrl(), gr.SchemaUrl()}, {ws.SchemaUrl(), gs.SchemaUrl()},
			{ws.Scope().Name() + "@" + ws.Scope().Version(), gs.Scope().Name() + "@" + gs.Scope().Version()},
		} {
			if fmt.Sprint(pair[0]) != fmt.Sprint(pair[1]) {
				t.Errorf("span %d: %v became %v", id, pair[0], pair[1])
			}
		}
		wb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(single(wsp))
		gb, _ := (&ptrace.ProtoMarshaler{}).MarshalTraces(single(gsp))
		if !bytes.Equal(wb, gb) {
			t.Errorf("span %d changed on the way through", id)
		}
	}
}

// single wraps a copy of one span in its own Traces.
func single(sp ptrace.Span) ptrace.Traces {
	td := ptrace.NewTraces()
	sp.CopyTo(td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty())
	return td
}
