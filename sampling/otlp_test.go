package sampling

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// capture is a real OTLP/gRPC receiver that records what it gets, and can
// fail the first N exports with Unavailable.
type capture struct {
	ptraceotlp.UnimplementedGRPCServer
	mu       sync.Mutex
	spans    int
	failNext int
	addr     string
}

func (c *capture) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failNext > 0 {
		c.failNext--
		return ptraceotlp.NewExportResponse(), status.Error(codes.Unavailable, "try later")
	}
	c.spans += req.Traces().SpanCount()
	return ptraceotlp.NewExportResponse(), nil
}

func (c *capture) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spans
}

func startCapture(t *testing.T, failFirst int) *capture {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &capture{failNext: failFirst, addr: ln.Addr().String()}
	gs := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(gs, c)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	return c
}

// startSampler runs a sampler on loopback ports and returns its addresses.
func startSampler(t *testing.T, yaml string) (s *Sampler, grpcAddr, httpAddr string) {
	cfg, err := ParseConfig([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	s, err = New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gl, _ := net.Listen("tcp", "127.0.0.1:0")
	hl, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { s.Serve(ctx, gl, hl); done <- struct{}{} }()
	go func() { s.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })
	return s, gl.Addr().String(), "http://" + hl.Addr().String() + "/v1/traces"
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOTLPEndToEnd(t *testing.T) {
	down := startCapture(t, 2) // the first two exports fail: retried
	s, grpcAddr, httpURL := startSampler(t, `
exporter: {protocol: grpc, endpoint: `+down.addr+`, retry: {initial: 10ms}}
buffer: {decision_wait: 50ms, trace_timeout: 200ms}
policies: [{name: errors, errors: {}}]
`)
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	ctx := context.Background()
	// gRPC: an error trace (kept) and an ok trace (dropped).
	td := traces(
		spanSpec{service: "api", name: "GET", trace: tid(1, 1), id: 1, err: true},
		spanSpec{service: "db", name: "q", trace: tid(1, 1), id: 2, parent: 1},
		spanSpec{service: "api", name: "GET", trace: tid(2, 2), id: 1},
	)
	if _, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatal(err)
	}
	// HTTP protobuf and JSON: one error trace each.
	for i, enc := range []string{"proto", "json"} {
		req := ptraceotlp.NewExportRequestFromTraces(traces(spanSpec{service: "web", name: "POST", trace: tid(uint64(10+i), 3), id: 1, err: true}))
		var body []byte
		ct := "application/x-protobuf"
		if enc == "json" {
			body, _ = req.MarshalJSON()
			ct = "application/json"
		} else {
			body, _ = req.MarshalProto()
		}
		resp, err := http.Post(httpURL, ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: HTTP %d", enc, resp.StatusCode)
		}
	}
	waitFor(t, "4 kept spans exported", func() bool { return down.count() == 4 })
	st := s.Status()
	if st.SpansIn != 5 || st.TracesKept != 3 || st.TracesDropped != 1 || st.Export.Retries < 2 {
		t.Fatalf("status %+v export %+v", st, st.Export)
	}

	// Malformed input: gRPC InvalidArgument, HTTP 400, both counted.
	var out rawMsg
	err = conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &rawMsg{data: []byte{0x0a, 0xff, 0x01}}, &out, grpc.ForceCodecV2(rawCodec{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("malformed gRPC: %v", err)
	}
	for _, c := range []struct{ ct, body string }{
		{"application/x-protobuf", "\x0a\xff\x01"},
		{"application/json", `{"resourceSpans": [{"scopeSpans": 7}]}`},
	} {
		resp, err := http.Post(httpURL, c.ct, bytes.NewReader([]byte(c.body)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("malformed %s: HTTP %d", c.ct, resp.StatusCode)
		}
	}
	resp, _ := http.Post(httpURL, "text/plain", bytes.NewReader([]byte("hi")))
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain: HTTP %d", resp.StatusCode)
	}
	if got := s.Status().Malformed; got != 4 {
		t.Fatalf("malformed counted %d, want 4", got)
	}
}

func TestExporterQueueBoundsAndGivesUp(t *testing.T) {
	// Nothing listens on this port: exports fail and retries give up.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	e, err := NewExporter(ExporterConfig{Protocol: "grpc", Endpoint: addr, QueueSize: 2, Workers: 1, Timeout: 200 * time.Millisecond,
		Retry: RetryConfig{Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond, MaxElapsed: 100 * time.Millisecond}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		e.EmitTraces(traces(spanSpec{service: "a", name: "x", trace: tid(1, uint64(i)), id: 1}))
	}
	if st := e.Status(); st.DroppedQueueFull != 8 {
		t.Fatalf("queue of 2 took %d of 10", 10-st.DroppedQueueFull)
	}
	e.Start()
	e.Close()
	if st := e.Status(); st.DroppedFailed != 2 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
}

func FuzzDecodeOTLP(f *testing.F) {
	req := ptraceotlp.NewExportRequestFromTraces(traces(
		spanSpec{service: "api", name: "GET", trace: tid(1, 1), id: 1, err: true, attrs: map[string]any{"http.status_code": "503"}},
		spanSpec{service: "db", name: "q", trace: tid(1, 1), id: 2, parent: 1}))
	pb, _ := req.MarshalProto()
	js, _ := req.MarshalJSON()
	f.Add(pb, false)
	f.Add(js, true)
	// Several traces under several resources and scopes, with events,
	// links, status, tracestate and schema URLs.
	rich := traces(
		spanSpec{service: "api", name: "GET", trace: tid(1, 1), id: 1, events: []string{"exception"}},
		spanSpec{service: "db", name: "q", trace: tid(2, 2), id: 2, parent: 1, err: true, attrs: map[string]any{"http.response.status_code": 503.0}},
		spanSpec{service: "api", name: "POST", trace: tid(3, 3), id: 3, attrs: map[string]any{"k": []any{1, "x", map[string]any{"n": true}}}})
	rs := rich.ResourceSpans().At(0)
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rs.ScopeSpans().At(0).Scope().SetName("lib")
	rs.ScopeSpans().At(0).SetSchemaUrl("s")
	sp0 := rs.ScopeSpans().At(0).Spans().At(0)
	sp0.TraceState().FromRaw("ot=th:8;rv:c0000000000000,vendor=1")
	sp0.Links().AppendEmpty().SetTraceID(tid(9, 9))
	sp0.Status().SetMessage("boom")
	richPB, _ := ptraceotlp.NewExportRequestFromTraces(rich).MarshalProto()
	f.Add(richPB, false)
	f.Add([]byte{0x0a, 0xff, 0x01}, false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","endTimeUnixNano":"-5"}]}]}]}`), true)
	f.Fuzz(func(t *testing.T, data []byte, isJSON bool) {
		enc := "proto"
		if isJSON {
			enc = "json"
		}
		pb, err := DecodeOTLP(data, enc)
		un := &ptrace.ProtoUnmarshaler{}
		if !isJSON {
			// The sampler validates protobuf itself; it must accept what
			// pdata accepts and nothing pdata would reject.
			if _, perr := un.UnmarshalTraces(data); (perr == nil) != (err == nil) {
				t.Fatalf("pdata says %v, the sampler %v", perr, err)
			}
		}
		if err != nil {
			return
		}
		td, err := un.UnmarshalTraces(pb)
		if err != nil {
			t.Fatalf("accepted body does not decode: %v", err)
		}
		// Splitting by trace keeps every span, each fragment decodes and
		// holds one trace.
		frags, invalid, err := splitRequest(pb, nil)
		if err != nil {
			t.Fatal(err)
		}
		n := invalid
		for _, fr := range frags {
			n += fr.sum.spans
			ft, err := un.UnmarshalTraces(fr.encoded(nil))
			if err != nil || ft.SpanCount() != fr.sum.spans {
				t.Fatalf("fragment: %v, %d spans want %d", err, ft.SpanCount(), fr.sum.spans)
			}
		}
		if n != td.SpanCount() {
			t.Fatalf("split %d spans of %d", n, td.SpanCount())
		}
		// Whatever decodes goes through the buffer and decisions; what is
		// emitted decodes (the sink checks) and is every valid span.
		k := newSink()
		b := NewBuffer(BufferConfig{MaxMemory: 4 << 20, KeptCache: 64, DroppedCache: 64}, func(t *Trace, _ Trigger) Decision {
			return Decision{Keep: true, Threshold: ProbabilityThreshold(0.5)}
		}, k.emit)
		if err := b.AddRequest(pb); err != nil {
			t.Fatal(err)
		}
		b.Flush()
		got := 0
		for _, ts := range k.spans {
			got += len(ts)
		}
		if got != n-invalid {
			t.Fatalf("emitted %d spans of %d", got, n-invalid)
		}
	})
}
