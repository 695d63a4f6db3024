package sampling

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Sampler is the running pipeline: receivers hand it OTLP traces
// (Consume), the buffer holds them, the policy set decides, kept spans go
// to the emitter (normally an Exporter). Policies can be swapped while it
// runs (Reload); the buffer keeps its traces.
type Sampler struct {
	buf      *Buffer
	policies atomic.Pointer[PolicySet]
	cfgMu    sync.Mutex
	cfg      *Config
	log      *slog.Logger
	started  time.Time
	peers    *Peers

	// Malformed counts rejected requests by protocol ("grpc", "http").
	malformedGRPC, malformedHTTP atomic.Int64
	requests                     atomic.Int64
	reloads, reloadErrors        atomic.Int64
	exporter                     *Exporter
	hook                         func(t *Trace, d Decision)
}

// New builds a sampler from a validated config. emit receives kept spans;
// when nil, an Exporter built from cfg.Exporter is used (and must be
// started with Start).
func New(cfg *Config, emit Emitter, log *slog.Logger) (*Sampler, error) {
	if log == nil {
		log = slog.Default()
	}
	ps, err := cfg.BuildPolicies()
	if err != nil {
		return nil, err
	}
	s := &Sampler{cfg: cfg, log: log, started: time.Now()}
	s.policies.Store(ps)
	if emit == nil {
		exp, err := NewExporter(cfg.Exporter, log)
		if err != nil {
			return nil, err
		}
		s.exporter = exp
		emit = exp.Emit
	}
	s.buf = NewBuffer(cfg.BufferConfig(), s.decide, emit)
	return s, nil
}

func (s *Sampler) decide(t *Trace, trig Trigger) Decision {
	d := s.policies.Load().Decide(t, time.Now())
	if h := s.hook; h != nil {
		h(t, d)
	}
	return d
}

// SetDecisionHook makes the sampler call fn with every decision (with the
// trace's shard locked: fn must be quick and must not call the sampler).
// Evaluations use it to learn the keep probability of dropped traces too.
// Set it before traffic starts.
func (s *Sampler) SetDecisionHook(fn func(t *Trace, d Decision)) { s.hook = fn }

// Buffer is the sampler's trace buffer (for stats).
func (s *Sampler) Buffer() *Buffer { return s.buf }

// Policies is the policy set in force.
func (s *Sampler) Policies() *PolicySet { return s.policies.Load() }

// Exporter is the built-in exporter, nil when an emitter was given.
func (s *Sampler) Exporter() *Exporter { return s.exporter }

// Consume buffers decoded traces (encoding them first); receivers use
// ConsumeRequest.
func (s *Sampler) Consume(td ptrace.Traces) error {
	body, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return err
	}
	return s.ConsumeRequest(body)
}

// ConsumeRequest validates an encoded OTLP ExportTraceServiceRequest and
// splits it by trace: traces owned by a peer are forwarded to it, the rest
// are buffered. A malformed body is an error and changes nothing.
func (s *Sampler) ConsumeRequest(body []byte) error {
	sc := getScratch()
	defer putScratch(sc)
	frags, invalid, err := splitRequest(body, sc)
	if err != nil {
		return err
	}
	s.requests.Add(1)
	st := s.buf.Stats()
	st.SpansInvalid.Add(int64(invalid))
	st.SpansIn.Add(int64(invalid))
	if s.peers != nil {
		frags = s.peers.Route(frags)
	}
	s.buf.addFragments(frags)
	return nil
}

// Reload swaps in the policies of cfg (the buffer, receivers and exporter
// settings are not reloaded: they need a restart). Learned state (latency
// quantiles, dynamic rates) starts over.
func (s *Sampler) Reload(cfg *Config) error {
	ps, err := cfg.BuildPolicies()
	if err != nil {
		s.reloadErrors.Add(1)
		return err
	}
	s.policies.Store(ps)
	s.cfgMu.Lock()
	s.cfg.Policies = cfg.Policies
	s.cfgMu.Unlock()
	s.reloads.Add(1)
	s.log.Info("policies reloaded", "policies", len(cfg.Policies))
	return nil
}

// Run ticks the buffer until ctx ends, then decides everything still
// buffered and drains the exporter.
func (s *Sampler) Run(ctx context.Context) {
	interval := s.buf.cfg.DecisionWait / 10
	if interval < 5*time.Millisecond {
		interval = 5 * time.Millisecond
	}
	if interval > 100*time.Millisecond {
		interval = 100 * time.Millisecond
	}
	if s.exporter != nil {
		s.exporter.Start()
	}
	s.buf.Run(interval, ctx.Done())
	s.buf.Flush()
	if s.exporter != nil {
		s.exporter.Close()
	}
	if s.peers != nil {
		s.peers.Close()
	}
}

// Status is a snapshot for pages and the status endpoint.
type Status struct {
	Uptime         time.Duration `json:"uptime_ns"`
	SpansIn        int64         `json:"spans_in"`
	SpansKept      int64         `json:"spans_kept"`
	SpansDropped   int64         `json:"spans_dropped"`
	TracesKept     int64         `json:"traces_kept"`
	TracesDropped  int64         `json:"traces_dropped"`
	BytesKept      int64         `json:"bytes_kept"`
	BytesDropped   int64         `json:"bytes_dropped"`
	BufferedTraces int64         `json:"buffered_traces"`
	BufferedBytes  int64         `json:"buffered_bytes"`
	MaxMemory      int64         `json:"max_memory"`
	CacheBytes     int64         `json:"cache_bytes"`
	LateKept       int64         `json:"late_spans_kept"`
	LateDropped    int64         `json:"late_spans_dropped"`
	InvalidSpans   int64         `json:"invalid_spans"`
	Stressed       bool          `json:"stress_relief"`
	Stress         int64         `json:"stress_activations"`
	Malformed      int64         `json:"malformed_requests"`
	DecisionP99    time.Duration `json:"decision_delay_p99_ns"`
	Decided        map[string]int64
	Policies       []PolicyCount   `json:"policies"`
	Export         *ExporterStatus `json:"export,omitempty"`
}

// Status reads the counters.
func (s *Sampler) Status() Status {
	st := s.buf.Stats()
	out := Status{
		Uptime:  time.Since(s.started),
		SpansIn: st.SpansIn.Load(), SpansKept: st.SpansKept.Load(), SpansDropped: st.SpansDropped.Load(),
		TracesKept: st.TracesKept.Load(), TracesDropped: st.TracesDropped.Load(),
		BytesKept: st.BytesKept.Load(), BytesDropped: st.BytesDropped.Load(),
		BufferedTraces: st.BufferedTrace.Load(), BufferedBytes: st.BufferedBytes.Load(),
		MaxMemory: s.buf.cfg.MaxMemory, CacheBytes: s.buf.CacheBytes(),
		LateKept: st.LateKept.Load(), LateDropped: st.LateDropped.Load(), InvalidSpans: st.SpansInvalid.Load(),
		Stressed: s.buf.Stressed(), Stress: st.StressActivations.Load(),
		Malformed:   s.malformedGRPC.Load() + s.malformedHTTP.Load(),
		DecisionP99: s.buf.DecisionDelay(0.99),
		Decided:     map[string]int64{},
		Policies:    s.policies.Load().Counts(),
	}
	for i := range st.Decided {
		out.Decided[Trigger(i).String()] = st.Decided[i].Load()
	}
	if s.exporter != nil {
		es := s.exporter.Status()
		out.Export = &es
	}
	return out
}

// ---- Prometheus ----

var (
	descSpans      = prometheus.NewDesc("srekit_sampler_spans_total", "Spans received, kept and dropped.", []string{"outcome"}, nil)
	descTraces     = prometheus.NewDesc("srekit_sampler_traces_total", "Traces decided, by outcome.", []string{"outcome"}, nil)
	descBytes      = prometheus.NewDesc("srekit_sampler_bytes_total", "Estimated span bytes kept and dropped.", []string{"outcome"}, nil)
	descPolicy     = prometheus.NewDesc("srekit_sampler_policy_traces_total", "Traces kept by each policy, or dropped by each drop rule or reason.", []string{"policy", "outcome"}, nil)
	descTrigger    = prometheus.NewDesc("srekit_sampler_decisions_total", "Trace decisions by trigger (root, timeout, cap, memory, flush).", []string{"trigger"}, nil)
	descLate       = prometheus.NewDesc("srekit_sampler_late_spans_total", "Spans arriving after their trace's decision, by the decision they followed.", []string{"decision"}, nil)
	descStressSpan = prometheus.NewDesc("srekit_sampler_stress_spans_total", "Spans decided statelessly under stress relief.", []string{"decision"}, nil)
	descBufTraces  = prometheus.NewDesc("srekit_sampler_buffered_traces", "Traces in memory awaiting a decision.", nil, nil)
	descBufBytes   = prometheus.NewDesc("srekit_sampler_buffered_bytes", "Estimated bytes of buffered spans.", nil, nil)
	descMaxMem     = prometheus.NewDesc("srekit_sampler_max_memory_bytes", "The configured max_memory.", nil, nil)
	descStress     = prometheus.NewDesc("srekit_sampler_stress_relief", "1 while stress relief (stateless sampling) is on.", nil, nil)
	descStressN    = prometheus.NewDesc("srekit_sampler_stress_activations_total", "Times stress relief switched on.", nil, nil)
	descMalformed  = prometheus.NewDesc("srekit_sampler_malformed_requests_total", "OTLP requests rejected as malformed.", []string{"protocol"}, nil)
	descDelay      = prometheus.NewDesc("srekit_sampler_decision_delay_seconds", "Time from a trace's first span to its decision.", []string{"quantile"}, nil)
	descQueue      = prometheus.NewDesc("srekit_sampler_export_queue_batches", "Batches waiting in the export queue.", nil, nil)
	descQueueCap   = prometheus.NewDesc("srekit_sampler_export_queue_capacity", "Capacity of the export queue.", nil, nil)
	descExported   = prometheus.NewDesc("srekit_sampler_exported_spans_total", "Spans exported successfully.", nil, nil)
	descExpDropped = prometheus.NewDesc("srekit_sampler_export_dropped_spans_total", "Kept spans the exporter dropped, by reason.", []string{"reason"}, nil)
	descRetries    = prometheus.NewDesc("srekit_sampler_export_retries_total", "Export attempts retried.", nil, nil)
	descReloads    = prometheus.NewDesc("srekit_sampler_config_reloads_total", "Policy reloads, by result.", []string{"result"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Sampler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSpans, descTraces, descBytes, descPolicy, descTrigger, descLate, descStressSpan,
		descBufTraces, descBufBytes, descMaxMem, descStress, descStressN, descMalformed, descDelay, descQueue, descQueueCap,
		descExported, descExpDropped, descRetries, descReloads} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Sampler) Collect(ch chan<- prometheus.Metric) {
	st := s.buf.Stats()
	c := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	g := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	c(descSpans, st.SpansIn.Load(), "received")
	c(descSpans, st.SpansInvalid.Load(), "invalid")
	c(descSpans, st.SpansKept.Load(), "kept")
	c(descSpans, st.SpansDropped.Load(), "dropped")
	c(descTraces, st.TracesKept.Load(), "kept")
	c(descTraces, st.TracesDropped.Load(), "dropped")
	c(descBytes, st.BytesKept.Load(), "kept")
	c(descBytes, st.BytesDropped.Load(), "dropped")
	for _, pc := range s.policies.Load().Counts() {
		outcome := "kept"
		if pc.Drop {
			outcome = "dropped"
		}
		c(descPolicy, pc.Traces, pc.Policy, outcome)
	}
	for i := range st.Decided {
		c(descTrigger, st.Decided[i].Load(), Trigger(i).String())
	}
	c(descLate, st.LateKept.Load(), "kept")
	c(descLate, st.LateDropped.Load(), "dropped")
	c(descStressSpan, st.StressKept.Load(), "kept")
	c(descStressSpan, st.StressDropped.Load(), "dropped")
	g(descBufTraces, float64(st.BufferedTrace.Load()))
	g(descBufBytes, float64(st.BufferedBytes.Load()))
	g(descMaxMem, float64(s.buf.cfg.MaxMemory))
	stress := 0.0
	if s.buf.Stressed() {
		stress = 1
	}
	g(descStress, stress)
	c(descStressN, st.StressActivations.Load())
	c(descMalformed, s.malformedGRPC.Load(), "grpc")
	c(descMalformed, s.malformedHTTP.Load(), "http")
	for _, q := range []float64{0.5, 0.99} {
		g(descDelay, s.buf.DecisionDelay(q).Seconds(), fmt.Sprint(q))
	}
	if e := s.exporter; e != nil {
		es := e.Status()
		g(descQueue, float64(es.Queued))
		g(descQueueCap, float64(es.Capacity))
		c(descExported, es.SpansSent)
		c(descExpDropped, es.DroppedQueueFull, "queue_full")
		c(descExpDropped, es.DroppedFailed, "export_failed")
		c(descRetries, es.Retries)
	}
	c(descReloads, s.reloads.Load(), "ok")
	c(descReloads, s.reloadErrors.Load(), "error")
}

// ReloadFile reads, validates and applies the policies of a config file;
// a file that does not load is counted as a failed reload and changes nothing.
func (s *Sampler) ReloadFile(path string) error {
	cfg, err := LoadConfig(path)
	if err != nil {
		s.reloadErrors.Add(1)
		return err
	}
	return s.Reload(cfg)
}
