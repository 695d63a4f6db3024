package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/srekit/srekit/mesh"
)

func init() {
	var (
		configPath string
		logLevel   string
		watch      time.Duration
	)
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "Run the front-door proxy: each request to the fastest healthy backend across regions",
		Long: `Run the front-door proxy described by a YAML config (see docs/mesh.md).

Requests are routed by host and path prefix to clusters of endpoints
labelled with region and zone; anything else gets 404, so the mesh is never
an open proxy. Within a cluster the default balancer is power of two
choices over peak-EWMA latency; health checks, outlier ejection, retry
budgets, hedging and circuit breaking are set per cluster.

The admin listener (127.0.0.1:9901 unless the config says otherwise) serves
/metrics, /api/v1/mesh/timings, /api/v1/mesh/endpoints and
POST /api/v1/mesh/reload. SIGHUP (or --watch) reloads the config without
dropping a request; a broken file is refused and the running config kept.

A minimal config (every field is in docs/mesh.md):

  region: eu                       # this front door's region: prefer it
  listeners: [{addr: "0.0.0.0:8080"}]
  routes: [{host: api.example, path_prefix: /, cluster: api}]
  clusters:
    - name: api
      endpoints:
        - {address: "10.0.1.10:8080", region: eu}
        - {address: "10.1.1.10:8080", region: us}
      health_check: {path: /healthz, interval: 2s}
      retry: {attempts: 3, budget: 0.2}`,
		Example: `  srekit mesh --config mesh.yaml
  srekit mesh check --config mesh.yaml          # validate only
  srekit mesh status --admin http://127.0.0.1:9901
  kill -HUP $(pidof srekit)                     # reload`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usagef("--config is required (see 'srekit mesh --help')")
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", logLevel)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg, err := mesh.LoadConfig(configPath)
			if err != nil {
				return err
			}
			m, err := mesh.New(cfg, configPath, log)
			if err != nil {
				return err
			}
			if err := m.Start(); err != nil {
				return err
			}
			for _, a := range m.Addrs() {
				log.Info("listening", "addr", a.String())
			}
			if a := m.AdminAddr(); a != nil {
				log.Info("admin", "url", "http://"+a.String())
			}
			return runMesh(cmd.Context(), m, configPath, watch, log)
		},
	}
	cmd.Flags().StringVarP(&configPath, "config", "c", "", "mesh config file (YAML)")
	cmd.Flags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	cmd.Flags().DurationVar(&watch, "watch", 0, "also reload when the config file changes, checking this often (0: only on SIGHUP)")

	check := &cobra.Command{
		Use:     "check",
		Short:   "Validate a mesh config and print its routes",
		Example: `  srekit mesh check --config mesh.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath == "" {
				return usagef("--config is required")
			}
			cfg, err := mesh.LoadConfig(configPath)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "%s: ok: %d listeners, %d routes, %d clusters\n", configPath, len(cfg.Listeners), len(cfg.Routes), len(cfg.Clusters))
			for _, l := range cfg.Listeners {
				fmt.Fprintf(out, "  listener %s: %s\n", l.Addr, l.Serving())
			}
			for _, r := range cfg.Routes {
				host := r.Host
				if host == "" {
					host = "*"
				}
				fmt.Fprintf(out, "  %s%s -> %s\n", host, r.PathPrefix, r.Cluster)
			}
			return nil
		},
	}
	check.Flags().StringVarP(&configPath, "config", "c", "", "mesh config file (YAML)")

	var admin string
	var format outputFormat = "table"
	status := &cobra.Command{
		Use:   "status",
		Short: "Show a running mesh's endpoints and latest per-region timings",
		Example: `  srekit mesh status --admin http://127.0.0.1:9901
  srekit mesh status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := mesh.FetchReport(cmd.Context(), admin)
			if err != nil {
				return err
			}
			t := table{Header: []string{"ENDPOINT", "REGION", "ZONE", "HEALTHY", "EJECTED", "IN FLIGHT", "REQUESTS", "FAILURES", "EWMA ms"}}
			for _, e := range rep.Endpoints {
				t.Rows = append(t.Rows, []string{e.Addr, e.Region, e.Zone, fmt.Sprint(e.Healthy), fmt.Sprint(e.Ejected),
					fmt.Sprint(e.InFlight), fmt.Sprint(e.Requests), fmt.Sprint(e.Failures), fmt.Sprintf("%.2f", e.EWMAms)})
			}
			if format == "table" {
				if err := t.write(cmd.OutOrStdout(), format, rep); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout())
				rt := table{Header: []string{"REGION", "REQUESTS", "MEAN ms", "P50 ms", "P90 ms", "P99 ms"}}
				for _, r := range rep.Regions {
					if len(r.Points) == 0 {
						continue
					}
					p := r.Points[len(r.Points)-1]
					rt.Rows = append(rt.Rows, []string{r.Region, fmt.Sprint(p.Count), fmt.Sprintf("%.2f", p.MeanMS),
						fmt.Sprintf("%.2f", p.P50MS), fmt.Sprintf("%.2f", p.P90MS), fmt.Sprintf("%.2f", p.P99MS)})
				}
				return rt.write(cmd.OutOrStdout(), format, rep)
			}
			return t.write(cmd.OutOrStdout(), format, rep)
		},
	}
	status.Flags().StringVar(&admin, "admin", "http://127.0.0.1:9901", "the mesh's admin URL")
	status.Flags().VarP(&format, "output", "o", "output format: table, json or csv")

	var (
		demoAdmin, demoBalancer string
		demoRate                float64
		demoInterval            time.Duration
	)
	demo := &cobra.Command{
		Use:   "demo",
		Short: "Run three simulated regions behind a mesh with steady load, for the /mesh page",
		Long: `Start three backends on 127.0.0.2, .3 and .4 with 8, 35 and 70 ms of injected
latency (the regions eu, us and ap), a mesh in front of them and a client
sending a steady load, until interrupted. Then 'srekit serve' shows the
per-region timings on its /mesh page (it reads http://127.0.0.1:9901 unless
SREKIT_MESH_ADMIN says otherwise). Try --balancer round_robin to compare.`,
		Example: `  srekit mesh demo &
  srekit serve          # open http://127.0.0.1:8080/mesh`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if demoRate <= 0 || demoRate > 10000 {
				return usagef("--rate %v: want 1-10000 requests per second", demoRate)
			}
			if demoInterval < 100*time.Millisecond {
				return usagef("--interval %v: want at least 100ms", demoInterval)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			d, err := mesh.StartDemo(mesh.DefaultDemoRegions, demoBalancer, demoAdmin, demoInterval, demoRate, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "demo mesh on %s, admin %s, %g requests/s; Ctrl-C stops it\n", d.URL, d.Admin, demoRate)
			<-cmd.Context().Done()
			d.Close()
			return nil
		},
	}
	demo.Flags().StringVar(&demoAdmin, "admin", "127.0.0.1:9901", "admin listen address")
	demo.Flags().StringVar(&demoBalancer, "balancer", "p2c_ewma", "balancer: p2c_ewma, least_request or round_robin")
	demo.Flags().Float64Var(&demoRate, "rate", 50, "client requests per second")
	demo.Flags().DurationVar(&demoInterval, "interval", 2*time.Second, "width of one timings point")

	cmd.AddCommand(check, status, demo)
	root.AddCommand(cmd)
}

// runMesh serves until ctx ends, reloading on SIGHUP and, with watch, when
// the file's modification time changes.
func runMesh(ctx context.Context, m *mesh.Mesh, path string, watch time.Duration, log *slog.Logger) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var tick <-chan time.Time
	var mtime time.Time
	if watch > 0 {
		t := time.NewTicker(watch)
		defer t.Stop()
		tick = t.C
		if fi, err := os.Stat(path); err == nil {
			mtime = fi.ModTime()
		}
	}
	reload := func(why string) {
		if err := m.Reload(); err != nil {
			log.Error("reload", "why", why, "err", err)
			return
		}
		log.Info("reloaded", "why", why)
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down: letting requests in flight finish")
			sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			return m.Close(sctx)
		case <-hup:
			reload("SIGHUP")
		case <-tick:
			fi, err := os.Stat(path)
			if err == nil && !fi.ModTime().Equal(mtime) {
				mtime = fi.ModTime()
				reload("file changed")
			}
		}
	}
}
