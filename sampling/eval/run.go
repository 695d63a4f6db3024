package eval

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/srekit/srekit/sampling"
)

// DefaultSamplerConfig is the sampler configuration eval uses unless given
// another: errors, learned slow traces per key, a dynamic per-key sample of
// the rest, with waits short enough for replayed (sped-up) time.
const DefaultSamplerConfig = `
buffer:
  max_memory: 256MiB
  decision_wait: 300ms
  trace_timeout: 3s
  max_spans_per_trace: 1000
policies:
  - name: errors
    errors: {}
  - name: slow
    latency: {quantile: 0.97, window: 1m, min_samples: 20, key: [service, operation]}
  - name: dynamic
    dynamic: {key: [service, operation, status], goal_rate: 20, interval: 1s}
`

// Options configure a run.
type Options struct {
	Workload WorkloadConfig
	// SamplerConfig is the sampler's YAML; DefaultSamplerConfig when empty.
	// Its receivers and exporter are replaced by loopback ones.
	SamplerConfig string
	// Speedup replays simulated time this many times faster than real time.
	Speedup float64
	// Progress, when set, is called with the fraction of spans sent.
	Progress func(done float64)
	Log      *slog.Logger
	debug    func(*Workload, []kept)
}

// receiver is the real OTLP/gRPC endpoint the sampler exports to.
type receiver struct {
	ptraceotlp.UnimplementedGRPCServer
	mu     sync.Mutex
	traces map[pcommon.TraceID]*received
	spans  int
	bytes  int64
}

type received struct {
	spans     int
	threshold sampling.Threshold
	thSeen    bool
	badTh     bool // spans of the trace disagree on the threshold
}

var sizer = &ptrace.ProtoMarshaler{}

func (r *receiver) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	td := req.Traces()
	r.mu.Lock()
	defer r.mu.Unlock()
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				s := sp.At(k)
				rec := r.traces[s.TraceID()]
				if rec == nil {
					rec = &received{}
					r.traces[s.TraceID()] = rec
				}
				rec.spans++
				r.spans++
				r.bytes += int64(sizer.SpanSize(s))
				ot := sampling.ParseTraceState(s.TraceState().AsRaw())
				th := sampling.KeepAll
				if ot.HasThreshold {
					th = ot.Threshold
				}
				if rec.thSeen && rec.threshold != th {
					rec.badTh = true
				}
				rec.threshold, rec.thSeen = th, true
			}
		}
	}
	return ptraceotlp.NewExportResponse(), nil
}

// Result is the outcome of a run: the tail sampler's scorecard and head
// sampling's at the same kept fraction.
type Result struct {
	Tail, Head Scorecard
	Workload   WorkloadSummary
	Config     string
	RanAt      time.Time
	Wall       time.Duration
	// Series is the sampler's counters sampled during the run.
	Series []StatsPoint
}

// WorkloadSummary describes the generated workload.
type WorkloadSummary struct {
	Seed                        uint64
	Traces, Spans, Keys         int
	ErrorTraces, SlowTraces     int
	LateSpans, HugeTraces       int
	RareKeys                    int
	SimulatedSeconds, SpikeRate float64
}

// Run generates the workload, replays it through a sampler over OTLP/gRPC on
// loopback, and scores what comes out.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.SamplerConfig == "" {
		o.SamplerConfig = DefaultSamplerConfig
	}
	if o.Speedup <= 0 {
		o.Speedup = 10
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	cfg, err := sampling.ParseConfig([]byte(o.SamplerConfig))
	if err != nil {
		return nil, err
	}
	w := Generate(o.Workload)

	// The downstream receiver.
	recv := &receiver{traces: map[pcommon.TraceID]*received{}}
	rln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rs := grpc.NewServer(grpc.MaxRecvMsgSize(64 << 20))
	ptraceotlp.RegisterGRPCServer(rs, recv)
	go rs.Serve(rln)
	defer rs.Stop()

	// The sampler, between the sender and the receiver.
	cfg.Exporter.Protocol = "grpc"
	cfg.Exporter.Endpoint = rln.Addr().String()
	cfg.Exporter.QueueSize = 10000
	cfg.Peers.Members = nil
	s, err := sampling.New(cfg, nil, o.Log)
	if err != nil {
		return nil, err
	}
	var probMu sync.Mutex
	probs := map[pcommon.TraceID]sampling.Threshold{}
	s.SetDecisionHook(func(t *sampling.Trace, d sampling.Decision) {
		probMu.Lock()
		if _, seen := probs[t.ID]; !seen {
			probs[t.ID] = d.Threshold
		}
		probMu.Unlock()
	})
	sln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.Serve(sctx, sln, nil) }()
	go func() { defer wg.Done(); s.Run(sctx) }()
	stopped := false
	stopSampler := func() {
		if !stopped {
			stopped = true
			stop()
			wg.Wait()
		}
	}
	defer stopSampler()

	conn, err := grpc.NewClient(sln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	main, late := w.events()
	totalSpans := len(main) + len(late)
	var sentSpans int
	var sentBytes int64
	mem := startMemWatch(s)
	cpu0 := cpuTime()
	began := time.Now()

	send := func(evs []spanEvent, simOrigin time.Duration) error {
		n, b, err := replay(ctx, client, w, evs, simOrigin, o.Speedup, func(k int) {
			if o.Progress != nil {
				o.Progress(float64(sentSpans+k) / float64(totalSpans))
			}
		})
		sentSpans += n
		sentBytes += b
		return err
	}
	if err := send(main, 0); err != nil {
		return nil, err
	}
	if len(late) > 0 {
		// Late spans arrive after every trace has been decided.
		time.Sleep(cfg.Buffer.TraceTimeout + cfg.Buffer.DecisionWait + 500*time.Millisecond)
		if err := send(late, late[0].at); err != nil {
			return nil, err
		}
	}
	time.Sleep(200 * time.Millisecond)
	stopSampler() // decides what is left and drains the exporter
	wall := time.Since(began)
	cpu := cpuTime() - cpu0
	peakHeap, peakBuffered := mem.stop()
	series := mem.series

	st := s.Status()
	res := &Result{Config: o.SamplerConfig, RanAt: time.Now().UTC(), Wall: wall, Series: series}
	res.Workload = summarize(w, totalSpans, len(late))
	stressP := cfg.StressRelief.Percent / 100
	res.Tail = score(w, recv, probs, stressP, "tail (srekit sampler)")
	if o.debug != nil {
		o.debug(w, outcomes(w, recv, probs, stressP))
	}
	res.Tail.SpansSent, res.Tail.BytesSent = sentSpans, sentBytes
	res.Tail.SpanFraction = float64(recv.spans) / float64(sentSpans)
	res.Tail.ByteFraction = float64(recv.bytes) / float64(sentBytes)
	res.Tail.CPUSecondsPerMillionSpans = cpu.Seconds() / float64(sentSpans) * 1e6
	res.Tail.PeakHeapBytes = peakHeap
	res.Tail.PeakBufferedBytes = peakBuffered
	res.Tail.DecisionDelayP99 = st.DecisionP99
	res.Tail.LateSpansKept, res.Tail.LateSpansDropped = st.LateKept, st.LateDropped
	res.Tail.StressActivations = st.Stress
	res.Tail.ExportDropped = st.Export.DroppedQueueFull + st.Export.DroppedFailed
	res.Head = scoreHead(w, res.Tail.TraceFraction)
	return res, nil
}

func spanBytes(td ptrace.Traces) int {
	n := 0
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		sss := rss.At(i).ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			sp := sss.At(j).Spans()
			for k := 0; k < sp.Len(); k++ {
				n += sizer.SpanSize(sp.At(k))
			}
		}
	}
	return n
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// memWatch samples heap in use and the sampler's buffered bytes.
type memWatch struct {
	done         chan struct{}
	wg           sync.WaitGroup
	base         uint64
	peak         uint64
	peakBuffered int64
	series       []StatsPoint
}

func startMemWatch(s *sampling.Sampler) *memWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := &memWatch{done: make(chan struct{}), base: ms.HeapInuse}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		n := 0
		for {
			select {
			case <-m.done:
				return
			case <-tk.C:
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > m.peak {
				m.peak = ms.HeapInuse
			}
			st := s.Buffer().Stats()
			if b := st.BufferedBytes.Load(); b > m.peakBuffered {
				m.peakBuffered = b
			}
			if n++; n%4 == 0 {
				m.series = append(m.series, StatsPoint{At: time.Now().UTC(), Instance: "eval",
					SpansIn: st.SpansIn.Load(), SpansKept: st.SpansKept.Load(), SpansDropped: st.SpansDropped.Load(),
					TracesKept: st.TracesKept.Load(), TracesDropped: st.TracesDropped.Load(),
					BufferedBytes: st.BufferedBytes.Load(), MaxMemory: s.Buffer().Config().MaxMemory, Stressed: s.Buffer().Stressed()})
			}
		}
	}()
	return m
}

func (m *memWatch) stop() (peakHeapAboveBase int64, peakBuffered int64) {
	close(m.done)
	m.wg.Wait()
	if m.peak < m.base {
		return 0, m.peakBuffered
	}
	return int64(m.peak - m.base), m.peakBuffered
}

// replay sends events over OTLP/gRPC at simulated time / speedup, batching
// what is due into one request (at most 2000 spans), and returns the spans
// and span bytes sent. Like an SDK's batch span processor, it sends at most
// one request per tick unless it is behind (a full batch): a paced replay
// sends requests of realistic size, not one per span.
func replay(ctx context.Context, client ptraceotlp.GRPCClient, w *Workload, evs []spanEvent, simOrigin time.Duration, speedup float64, progress func(int)) (int, int64, error) {
	const tick = 20 * time.Millisecond
	start := time.Now()
	sent, bytes := 0, int64(0)
	for i := 0; i < len(evs); {
		if err := ctx.Err(); err != nil {
			return sent, bytes, err
		}
		due := simOrigin + time.Duration(float64(time.Since(start))*speedup)
		if evs[i].at > due {
			wait := time.Duration(float64(evs[i].at-due) / speedup)
			time.Sleep(min(wait, tick))
			continue
		}
		batchStart := time.Now()
		td := ptrace.NewTraces()
		res := map[string]ptrace.SpanSlice{}
		n := 0
		for i < len(evs) && evs[i].at <= due && n < 2000 {
			w.appendSpan(td, res, evs[i])
			i++
			n++
		}
		sent += n
		bytes += int64(spanBytes(td))
		if _, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
			return sent, bytes, fmt.Errorf("send to sampler: %w", err)
		}
		progress(sent)
		if n < 2000 && i < len(evs) {
			if rest := tick - time.Since(batchStart); rest > 0 {
				time.Sleep(rest)
			}
		}
	}
	return sent, bytes, nil
}
