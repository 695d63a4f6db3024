package main

import (
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/srekit/srekit/profiling"
)

func init() {
	var (
		cfg      profiling.AgentConfig
		labels   []string
		pprofs   []string
		allow    []string
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run on a host: capture profiles when the srekit server asks, and upload them",
		Long: `Run the profiling agent on a host. It registers with a srekit server (host name,
labels, what it can capture), long-polls it for capture requests and runs
them: CPU, heap, allocs, goroutine, mutex and block profiles from the
net/http/pprof endpoints of local services (--pprof), and perf record -g of
the whole host or one PID (--perf). It runs only the kinds listed in --allow:
a request can name a kind and a target, never a command.

If the server goes away the agent keeps its results in memory (up to 100;
also on disk with --buffer-dir, so they survive an agent restart) and
delivers them when it is back; it reconnects with backoff.

With --preroll the agent profiles each pprof target continuously in 10-second
pieces and keeps the last minutes; a capture with pre-roll (an alert rule
with preroll: true) uploads those minutes too, so the profile covers the time
before the alert fired.

The token is the agent's own token ('srekit profiling agent-token issue NAME',
then run with --name NAME), or the server's shared SREKIT_AGENT_TOKEN, or its
write token. Use an https:// server URL beyond this host; --ca-cert trusts a
private CA.

perf captures upload the perf script itself (gzip'ed), so the server keeps
each sample's time and offers the sub-second heat map of the capture.`,
		Example: `  # a Go service with net/http/pprof on :6060, server on another host
  srekit agent --server https://srekit.internal:8443 --token $SREKIT_AGENT_TOKEN \
      --pprof api=http://127.0.0.1:6060 --label env=prod --label region=eu-west

  # whole-host CPU with perf, two services, 5 minutes of pre-roll
  srekit agent --server http://127.0.0.1:8080 --token T --perf \
      --pprof api=http://127.0.0.1:6060 --pprof worker=http://127.0.0.1:6061 --preroll 5m

  # with its own token, bound to the name web-1
  srekit agent --server https://srekit.internal:8443 --name web-1 --token "$(cat /etc/srekit/web-1.token)" --perf

  # only CPU and goroutine captures, nothing else
  srekit agent --server http://127.0.0.1:8080 --token T --pprof api=http://127.0.0.1:6060 --allow cpu,goroutine`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", logLevel)
			}
			cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg.Labels = profiling.Labels{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return usagef("--label %q: want key=value", l)
				}
				cfg.Labels[k] = v
			}
			if err := cfg.Labels.Validate(); err != nil {
				return usagef("--label: %v", err)
			}
			for _, p := range pprofs {
				name, u, ok := strings.Cut(p, "=")
				if !ok || name == "" || u == "" {
					return usagef("--pprof %q: want name=http://host:port", p)
				}
				cfg.Pprof = append(cfg.Pprof, profiling.PprofTarget{Name: name, URL: u})
			}
			for _, a := range allow {
				for _, k := range strings.Split(a, ",") {
					if k = strings.TrimSpace(k); k != "" {
						cfg.Allow = append(cfg.Allow, k)
					}
				}
			}
			cfg.Version = versionString()
			err := profiling.RunAgent(cmd.Context(), cfg)
			if err != nil && strings.HasPrefix(err.Error(), "agent: ") {
				return usagef("%s", strings.TrimPrefix(err.Error(), "agent: "))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Server, "server", os.Getenv("SREKIT_SERVER"), "srekit server URL (env SREKIT_SERVER)")
	f.StringVar(&cfg.Token, "token", os.Getenv("SREKIT_AGENT_TOKEN"), "agent token (env SREKIT_AGENT_TOKEN)")
	f.StringVar(&cfg.Name, "name", "", "agent name (default: the host name)")
	f.StringArrayVar(&labels, "label", nil, "label for every snapshot, key=value (repeatable)")
	f.StringArrayVar(&pprofs, "pprof", nil, "a local service's pprof base URL, name=http://127.0.0.1:6060 (repeatable)")
	f.BoolVar(&cfg.Perf, "perf", false, "offer perf record -g captures of the host (needs perf and permission)")
	f.IntVar(&cfg.PerfFrequency, "perf-frequency", 99, "perf sampling frequency, Hz")
	f.StringArrayVar(&allow, "allow", nil, "capture kinds allowed, comma-separated: cpu,heap,allocs,goroutine,mutex,block,perf (default: all offered)")
	f.DurationVar(&cfg.Preroll, "preroll", 0, "keep this much continuous CPU profile history per pprof target (e.g. 5m)")
	f.DurationVar(&cfg.PrerollChunk, "preroll-chunk", 10*time.Second, "length of each pre-roll piece")
	f.StringVar(&cfg.BufferDir, "buffer-dir", "", "keep undelivered results in this directory too, so they survive an agent restart")
	f.StringVar(&cfg.CACert, "ca-cert", "", "PEM file of the CA that signed the server's certificate")
	f.BoolVar(&cfg.AllowHTTP, "allow-http", false, "allow a plain-HTTP server beyond loopback (sends the token in clear)")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(cmd)
}
