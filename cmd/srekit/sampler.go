package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/srekit/srekit/sampling"
	"github.com/srekit/srekit/sampling/eval"
	"github.com/srekit/srekit/store"
)

func init() {
	var (
		configPath string
		useDB      bool
		logLevel   string
		statsEvery time.Duration
		peers      []string
		peerSelf   string
	)
	cmd := &cobra.Command{
		Use:   "sampler",
		Short: "OTLP tail trace sampler: keep every error and slow trace, bounded memory, unbiased counts",
		Long: `Run a tail trace sampler between your OpenTelemetry SDKs (or collectors) and
your tracing backend. It receives OTLP over gRPC (:4317) and HTTP (:4318,
protobuf and JSON), holds each trace's spans until its root has arrived plus
decision_wait (or trace_timeout, or a span/byte cap), decides with the
policies of the config file, and exports the kept spans over OTLP.

Every kept span carries the applied OpenTelemetry sampling threshold
(tracestate ot=th:...), so backends can count with adjusted counts.
Spans are buffered in their protobuf encoding. Memory is bounded by
buffer.max_memory in real bytes (buffered spans, per-trace records, decision
caches), and the Go memory limit is set to max_memory + 32MiB so the process
tracks it; under pressure the oldest traces are decided early, then stress
relief samples statelessly by trace ID.

Prometheus metrics are served on the 'metrics' address (/metrics), with a
JSON status on /status and Go profiles on /debug/pprof/. Send SIGHUP (or
edit the file) to reload the policies (other settings need a restart).

See 'srekit sampler check' to validate a config and 'srekit sampler eval'
for the scorecard against head sampling.`,
		Example: `  srekit sampler --config sampler.yaml
  srekit sampler --config sampler.yaml --db postgres://srekit@db/srekit   # also record stats for 'srekit serve'
  srekit sampler --config sampler.yaml --peers 10.0.0.1:4317,10.0.0.2:4317 --peer-self 10.0.0.1:4317
  srekit sampler check --config sampler.yaml
  srekit sampler eval --traces 50000 --seed 3`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usagef("--config FILE is required (see 'srekit sampler --help'; sampling/testdata/sampler.yaml is an example)")
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg, err := sampling.LoadConfig(configPath)
			if err != nil {
				return err
			}
			if len(peers) > 0 {
				cfg.Peers.Members, cfg.Peers.Self = peers, peerSelf
				if err := cfg.Validate(); err != nil {
					return usagef("--peers/--peer-self: %v", err)
				}
			}
			return runSampler(cmd.Context(), cfg, configPath, log, useDB, statsEvery)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&configPath, "config", "c", "", "sampler configuration file (YAML)")
	f.BoolVar(&useDB, "record-stats", false, "record counter snapshots in the srekit database (--db) for the /sampling page")
	f.DurationVar(&statsEvery, "stats-every", 10*time.Second, "how often to record stats with --record-stats")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.StringSliceVar(&peers, "peers", nil, "OTLP/gRPC addresses of all samplers sharing the load (this one included); overrides peers.members")
	f.StringVar(&peerSelf, "peer-self", "", "this sampler's address among --peers")
	cmd.AddCommand(samplerCheckCmd(), samplerEvalCmd())
	root.AddCommand(cmd)
}

// samplerHeadroom is the memory beyond max_memory the sampler process
// allows itself: Go runtime, receive buffers of requests being split,
// export queue.
const samplerHeadroom = 32 << 20

func runSampler(ctx context.Context, cfg *sampling.Config, path string, log *slog.Logger, record bool, statsEvery time.Duration) error {
	s, err := sampling.New(cfg, nil, log)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit for the Go heap from max_memory (which counts the
		// buffered traces and decision caches in real bytes) plus room for
		// the runtime, request buffers and the export queue, so that the
		// process's memory tracks the budget the operator set instead of
		// growing to twice the live heap between collections. Buffered
		// spans are pointer-free byte slices, so frequent collections are
		// cheap.
		debug.SetMemoryLimit(cfg.BufferConfig().WithDefaults().MaxMemory + samplerHeadroom)
	}
	if len(cfg.Peers.Members) > 1 {
		s.EnablePeers(sampling.NewPeers(cfg.Peers.Self, cfg.Peers.Members, 2*cfg.BufferConfig().WithDefaults().TraceTimeout+time.Minute, log))
	}
	listen := func(addr, what string) (net.Listener, error) {
		if addr == "off" {
			return nil, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s listen on %s: %w", what, addr, err)
		}
		return ln, nil
	}
	gl, err := listen(cfg.Receivers.GRPC, "receivers.grpc")
	if err != nil {
		return err
	}
	hl, err := listen(cfg.Receivers.HTTP, "receivers.http")
	if err != nil {
		return err
	}
	ml, err := listen(cfg.Metrics, "metrics")
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(s, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(s.Status())
	})
	var ms *http.Server
	if ml != nil {
		ms = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go ms.Serve(ml)
		defer ms.Close()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.Run(ctx) }()
	go func() { defer wg.Done(); watchReload(ctx, s, path, log) }()
	if record {
		st, err := store.Open(ctx, dbFlag)
		if err != nil {
			return err
		}
		defer st.Close()
		wg.Add(1)
		go func() { defer wg.Done(); recordStats(ctx, st, s, statsEvery, log) }()
	}
	addr := func(l net.Listener) string {
		if l == nil {
			return "off"
		}
		return l.Addr().String()
	}
	log.Info("sampler running", "grpc", addr(gl), "http", addr(hl), "metrics", addr(ml),
		"export", cfg.Exporter.Protocol+" "+cfg.Exporter.Endpoint, "max_memory", cfg.BufferConfig().WithDefaults().MaxMemory, "policies", len(cfg.Policies))
	if cfg.Exporter.Endpoint == "" {
		log.Warn("exporter.endpoint is empty: kept spans are counted and discarded")
	}
	err = s.Serve(ctx, gl, hl)
	cancel()
	wg.Wait()
	log.Info("sampler stopped", "spans_in", s.Status().SpansIn)
	return err
}

// watchReload reloads the policies on SIGHUP or when the file changes.
func watchReload(ctx context.Context, s *sampling.Sampler, path string, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	mtime := func() time.Time {
		if fi, err := os.Stat(path); err == nil {
			return fi.ModTime()
		}
		return time.Time{}
	}
	last := mtime()
	tk := time.NewTicker(2 * time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		case <-tk.C:
			if m := mtime(); m.Equal(last) {
				continue
			} else {
				last = m
			}
		}
		if err := s.ReloadFile(path); err != nil {
			log.Error("reload failed; the previous policies stay in force", "err", err)
		}
	}
}

func recordStats(ctx context.Context, st *store.Store, s *sampling.Sampler, every time.Duration, log *slog.Logger) {
	host, _ := os.Hostname()
	instance := fmt.Sprintf("%s/%d", host, os.Getpid())
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		x := s.Status()
		p := eval.StatsPoint{At: time.Now().UTC(), Instance: instance, SpansIn: x.SpansIn, SpansKept: x.SpansKept, SpansDropped: x.SpansDropped,
			TracesKept: x.TracesKept, TracesDropped: x.TracesDropped, BufferedBytes: x.BufferedBytes, MaxMemory: x.MaxMemory, Stressed: x.Stressed}
		if err := eval.RecordStats(ctx, st, p); err != nil && ctx.Err() == nil {
			log.Warn("record stats", "err", err)
		}
	}
}

func samplerCheckCmd() *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:     "check",
		Short:   "Validate a sampler config file and print what it will do",
		Example: `  srekit sampler check --config sampler.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usagef("--config FILE is required")
			}
			cfg, err := sampling.LoadConfig(configPath)
			if err != nil {
				return err
			}
			b := cfg.BufferConfig().WithDefaults()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: valid\n", configPath)
			fmt.Fprintf(out, "receivers: grpc %s, http %s; export: %s %q\n", cfg.Receivers.GRPC, cfg.Receivers.HTTP, cfg.Exporter.Protocol, cfg.Exporter.Endpoint)
			fmt.Fprintf(out, "buffer: max_memory %d bytes, decide at root + %s or after %s, caps %d spans / %d bytes per trace\n",
				b.MaxMemory, b.DecisionWait, b.TraceTimeout, b.MaxSpansPerTrace, b.MaxBytesPerTrace)
			for i, p := range cfg.Policies {
				fmt.Fprintf(out, "policy %d: %s (%s)\n", i+1, p.Name, policyKind(p))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "sampler configuration file (YAML)")
	return cmd
}

func policyKind(p sampling.PolicyConfig) string {
	switch {
	case p.Errors != nil:
		return "errors"
	case p.Latency != nil:
		if p.Latency.Quantile > 0 {
			return fmt.Sprintf("latency above the learned p%g per key", p.Latency.Quantile*100)
		}
		return "latency above " + p.Latency.Threshold.String()
	case p.Attribute != nil:
		return "attribute " + p.Attribute.Key
	case p.Probabilistic != nil:
		return fmt.Sprintf("probabilistic %g%%", p.Probabilistic.Percent)
	case p.RateLimit != nil:
		return "rate limit"
	case p.Dynamic != nil:
		return "dynamic per-key sampling"
	case p.And != nil:
		return "and"
	case p.Or != nil:
		return "or"
	case p.Not != nil:
		return "not"
	case p.Drop != nil:
		return "drop rule"
	}
	return "?"
}

// evalSeeds runs consecutive seeds and prints one line per seed and the
// representativeness bar over all their keys pooled.
func evalSeeds(cmd *cobra.Command, o eval.Options, seeds int, format outputFormat) error {
	type seedRow struct {
		Seed uint64
		eval.Scorecard
	}
	var rows []seedRow
	var cards []eval.Scorecard
	t := table{Header: []string{"seed", "keys", "kept", "within 3 SE", "off", "expected off (unbiased)", "chance (unbiased)", "bias z"}}
	first, progress := o.Workload.Seed, o.Progress
	for i := 0; i < seeds; i++ {
		o.Workload.Seed = first + uint64(i)
		if progress != nil {
			o.Progress = func(f float64) { progress((float64(i) + f) / float64(seeds)) }
		}
		res, err := eval.Run(cmd.Context(), o)
		if err != nil {
			return fmt.Errorf("seed %d: %w", o.Workload.Seed, err)
		}
		c := res.Tail
		rows = append(rows, seedRow{o.Workload.Seed, c})
		cards = append(cards, c)
		t.Rows = append(t.Rows, []string{fmt.Sprint(o.Workload.Seed), fmt.Sprint(c.Keys), fmt.Sprintf("%.4f", c.TraceFraction),
			fmt.Sprintf("%.2f%%", 100*c.Representativeness), strings.Join(c.OffKeys, "; "), fmt.Sprintf("%.2f", c.ExpectedOffKeys),
			fmt.Sprintf("%.2f", c.IdealBarChance), fmt.Sprintf("%+.2f", c.CountBiasZ)})
	}
	p := eval.Pool(cards)
	verdict := "met"
	if !p.Pass() {
		verdict = "NOT met"
	}
	t.Rows = append(t.Rows, []string{"pooled", fmt.Sprint(p.Keys), fmt.Sprintf("%.4f", p.TraceFraction), fmt.Sprintf("%.2f%%", 100*p.Representativeness),
		fmt.Sprintf("count %d, errors %d, median %d (bar >= 99%%: %s)", p.CountOff, p.ErrorCountOff, p.MedianOff, verdict), fmt.Sprintf("%.2f", p.ExpectedOffKeys), "", ""})
	return t.write(cmd.OutOrStdout(), format, struct {
		Seeds  []seedRow
		Pooled eval.Pooled
	}{rows, p})
}

func samplerEvalCmd() *cobra.Command {
	var (
		o          eval.Options
		configPath string
		format     outputFormat = "table"
		save       bool
		seeds      int
		ext        eval.ExternalOptions
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Score the sampler on a seeded synthetic workload, against head sampling",
		Long: `Generate a seeded synthetic workload with ground truth (many services and
operations, rare keys and rare error keys, latency tails, late spans, huge
traces, a traffic spike), replay it over real OTLP/gRPC through a sampler on
loopback, receive what it exports on a real OTLP receiver, and print the
scorecard: overhead (kept fractions, CPU, memory, decision delay), what
matters (error recall, slow-trace recall, rare-key coverage, completeness)
and representativeness (per-key estimates with adjusted counts within 3
standard errors). Head sampling at the same kept fraction is scored too.

--save stores the result in the srekit database for the /sampling page.

With --target, the workload goes instead to a sampler running in another
process (srekit sampler, or an OpenTelemetry Collector with the tail
sampling processor) which must export to --sink; with --pid its CPU time
and peak memory are measured too. bench/sampling uses this to compare.

The representativeness bar ("within 3 SE for at least 99% of keys") is a
rate: one run of ~100 keys allows no miss (or one), and even an exactly
unbiased sampler misses 3 SE on ~0.3% of estimates, so a single run fails it
by chance now and then (the scorecard prints that chance). --seeds N runs N
consecutive seeds and measures the bar over all their keys pooled.`,
		Example: `  srekit sampler eval
  srekit sampler eval --traces 50000 --seed 3 --speedup 20
  srekit sampler eval --config my-policies.yaml -o json
  srekit sampler eval --seeds 8
  srekit sampler eval --save --db ~/srekit.db
  srekit sampler eval --target 127.0.0.1:4317 --sink 127.0.0.1:14317 --pid 4242 --speedup 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Workload.Traces < 100 || o.Workload.Traces > 5_000_000 {
				return usagef("--traces %d: want 100 to 5000000", o.Workload.Traces)
			}
			if o.Speedup <= 0 || o.Speedup > 1000 {
				return usagef("--speedup %g: want (0, 1000]", o.Speedup)
			}
			if seeds < 1 || seeds > 100 {
				return usagef("--seeds %d: want 1 to 100", seeds)
			}
			if seeds > 1 && (ext.Target != "" || save) {
				return usagef("--seeds: not with --target or --save")
			}
			if ext.Target != "" {
				if ext.Sink == "" {
					return usagef("--target needs --sink (the address the sampler exports to)")
				}
				ext.Workload, ext.Speedup = o.Workload, o.Speedup
				res, err := eval.RunExternal(cmd.Context(), ext)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			if configPath != "" {
				b, err := os.ReadFile(configPath)
				if err != nil {
					return err
				}
				if _, err := sampling.ParseConfig(b); err != nil {
					return fmt.Errorf("%s: %w", configPath, err)
				}
				o.SamplerConfig = string(b)
			}
			if isatty.IsTerminal(os.Stderr.Fd()) {
				bar := progressbar.NewOptions(1000, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("replaying spans"),
					progressbar.OptionThrottle(200*time.Millisecond), progressbar.OptionClearOnFinish())
				o.Progress = func(f float64) { bar.Set(int(f * 1000)) }
				defer bar.Finish()
			}
			if seeds > 1 {
				return evalSeeds(cmd, o, seeds, format)
			}
			res, err := eval.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if save {
				st, err := store.Open(cmd.Context(), dbFlag)
				if err != nil {
					return err
				}
				defer st.Close()
				if _, err := eval.Save(cmd.Context(), st, res); err != nil {
					return err
				}
			}
			out := cmd.OutOrStdout()
			switch format {
			case "json":
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			case "csv":
				t := table{Header: []string{"group", "measure", "bar", "tail", "head"}}
				for _, r := range res.Rows() {
					t.Rows = append(t.Rows, []string{r.Group, r.Measure, r.Bar, r.Tail, r.Head})
				}
				return t.write(out, format, nil)
			}
			return res.WriteText(out)
		},
	}
	f := cmd.Flags()
	f.Uint64Var(&o.Workload.Seed, "seed", 1, "workload seed (same seed, same traces)")
	f.IntVar(&o.Workload.Traces, "traces", 20000, "number of traces")
	f.IntVar(&o.Workload.Services, "services", 30, "number of services (each with 2-5 root operations)")
	f.DurationVar(&o.Workload.Duration, "span", time.Minute, "simulated time the traces start over")
	f.Float64Var(&o.Speedup, "speedup", 20, "replay simulated time this many times faster")
	f.StringVarP(&configPath, "config", "c", "", "sampler config (policies and buffer); the built-in eval config when empty")
	f.VarP(&format, "output", "o", "output format: table, json or csv")
	f.IntVar(&seeds, "seeds", 1, "run this many consecutive seeds from --seed and measure representativeness over all their keys")
	f.BoolVar(&save, "save", false, "store the result in the srekit database (--db) for the /sampling page")
	f.StringVar(&ext.Target, "target", "", "score an external sampler: its OTLP/gRPC address (output is JSON)")
	f.StringVar(&ext.Sink, "sink", "", "with --target: the address to receive the sampler's exports on")
	f.IntVar(&ext.PID, "pid", 0, "with --target: the sampler's process ID, to measure its CPU and peak memory")
	f.DurationVar(&ext.Settle, "settle", 5*time.Second, "with --target: wait this long after sending for decisions")
	f.StringVar(&ext.Outcomes, "outcomes", "", "with --target: write each trace's outcome (key, duration, slow, error, kept spans) to this TSV file")
	return cmd
}
