package eval

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/srekit/srekit/sampling"
)

// ExternalOptions score a sampler running in another process (srekit
// sampler or an OpenTelemetry Collector with the tail sampling processor):
// the workload is sent to Target over OTLP/gRPC and the sampler must export
// to Sink, where this process listens.
type ExternalOptions struct {
	Workload WorkloadConfig
	Target   string // the sampler's OTLP/gRPC receiver
	Sink     string // where the sampler exports (we listen here)
	PID      int    // the sampler's process, for CPU and peak memory (0: not measured)
	Speedup  float64
	// Settle is how long to wait after sending for the sampler to decide
	// (its decision wait or timeout, plus margin).
	Settle time.Duration
	// Outcomes, when set, is a file to write one line per workload trace
	// to (trace ID, key, duration, error, slow, kept spans), so two
	// samplers' choices can be compared trace by trace.
	Outcomes string
}

// ExternalResult is the scorecard of an external sampler plus its
// throughput and resource use.
type ExternalResult struct {
	Scorecard
	Workload          WorkloadSummary
	SendSeconds       float64 `json:"send_seconds"`
	SpansPerSecond    float64 `json:"spans_per_second"`
	CPUSeconds        float64 `json:"cpu_seconds"`
	SpansPerCPUSecond float64 `json:"spans_per_cpu_second"`
	PeakRSSBytes      int64   `json:"peak_rss_bytes"`
}

// RunExternal replays the workload through an external sampler and scores
// what it exports. Kept traces count with the adjusted count of the
// threshold on their spans (1 when there is none); a dropped trace's keep
// probability is unknown from outside, and is taken as the overall kept
// fraction for the representativeness figures.
func RunExternal(ctx context.Context, o ExternalOptions) (*ExternalResult, error) {
	if o.Speedup <= 0 {
		o.Speedup = 1000
	}
	if o.Settle <= 0 {
		o.Settle = 5 * time.Second
	}
	w := Generate(o.Workload)
	recv := &receiver{traces: map[pcommon.TraceID]*received{}}
	ln, err := net.Listen("tcp", o.Sink)
	if err != nil {
		return nil, fmt.Errorf("listen for the sampler's exports on %s: %w", o.Sink, err)
	}
	gs := grpc.NewServer(grpc.MaxRecvMsgSize(256 << 20))
	ptraceotlp.RegisterGRPCServer(gs, recv)
	go gs.Serve(ln)
	defer gs.Stop()
	conn, err := grpc.NewClient(o.Target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	main, late := w.events()
	cpu0 := procCPU(o.PID)
	start := time.Now()
	n, b, err := replay(ctx, client, w, main, 0, o.Speedup, func(int) {})
	if err != nil {
		return nil, err
	}
	sendWall := time.Since(start)
	time.Sleep(o.Settle)
	if len(late) > 0 {
		n2, b2, err := replay(ctx, client, w, late, late[0].at, o.Speedup, func(int) {})
		if err != nil {
			return nil, err
		}
		n, b = n+n2, b+b2
	}
	// Wait until the sampler has exported everything (no new spans for 2s).
	var mu sync.Mutex
	last, quietSince := -1, time.Now()
	for time.Since(quietSince) < 2*time.Second {
		time.Sleep(200 * time.Millisecond)
		recv.mu.Lock()
		cur := recv.spans
		recv.mu.Unlock()
		mu.Lock()
		if cur != last {
			last, quietSince = cur, time.Now()
		}
		mu.Unlock()
	}
	cpu := procCPU(o.PID) - cpu0
	res := &ExternalResult{Workload: summarize(w, n, len(late)), SendSeconds: sendWall.Seconds(),
		SpansPerSecond: float64(len(main)) / sendWall.Seconds(), CPUSeconds: cpu, PeakRSSBytes: procPeakRSS(o.PID)}
	if cpu > 0 {
		res.SpansPerCPUSecond = float64(n) / cpu
	}
	recv.mu.Lock()
	keptTraces := len(recv.traces)
	recv.mu.Unlock()
	frac := float64(keptTraces) / float64(len(w.Traces))
	res.Scorecard = score(w, recv, map[pcommon.TraceID]sampling.Threshold{}, frac, o.Target)
	res.SpansSent, res.BytesSent = n, b
	if o.Outcomes != "" {
		if err := writeOutcomes(o.Outcomes, w, recv); err != nil {
			return nil, err
		}
	}
	res.SpanFraction = float64(recv.spans) / float64(n)
	res.ByteFraction = float64(recv.bytes) / float64(b)
	return res, nil
}

// procCPU is a process's user+system CPU seconds from /proc (0 when unknown).
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start after ")".
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}

// procPeakRSS is a process's peak resident memory (VmHWM) in bytes.
func procPeakRSS(pid int) int64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// writeOutcomes writes the per-trace outcome file (tab-separated).
func writeOutcomes(path string, w *Workload, r *receiver) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	fmt.Fprintln(bw, "trace_id\tkey\tduration_ms\tp99_ms\terror\tslow\tspans\tkept_spans\tthreshold")
	r.mu.Lock()
	for _, t := range w.Traces {
		kept, th := 0, ""
		if rec := r.traces[t.ID]; rec != nil {
			kept, th = rec.spans, rec.threshold.String()
		}
		fmt.Fprintf(bw, "%s\t%s\t%.3f\t%.3f\t%v\t%v\t%d\t%d\t%s\n", t.ID, t.Key, float64(t.Duration)/1e6, float64(w.P99[t.Key])/1e6,
			t.Error, t.Slow, t.Spans, kept, th)
	}
	r.mu.Unlock()
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
