package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/srekit/srekit/replication"
)

// replicationFlags are the knobs both run and demo share.
type replicationFlags struct {
	file, scenario, mitigations string
	nodes, racks, blocks        int
	duration, every             time.Duration
	seed                        uint64
	charts                      string
}

func (f *replicationFlags) add(cmd *cobra.Command, mitigationsDefault string) {
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "YAML parameters (see docs/replication.md); flags below override it")
	fl.StringVar(&f.scenario, "scenario", "", "fault: "+strings.Join(replication.ScenarioNames(), ", "))
	fl.StringVar(&f.mitigations, "mitigations", mitigationsDefault, "comma-separated: grace, copy-limit, rate-limit, priority, breaker, backoff, all, none")
	fl.IntVar(&f.nodes, "nodes", 0, "number of nodes")
	fl.IntVar(&f.racks, "racks", 0, "number of racks")
	fl.IntVar(&f.blocks, "blocks", 0, "number of blocks")
	fl.DurationVar(&f.duration, "duration", 0, "simulated time")
	fl.Uint64Var(&f.seed, "seed", 0, "random seed (the same seed gives the same run)")
	fl.DurationVar(&f.every, "every", 5*time.Minute, "print a row this often")
	fl.StringVar(&f.charts, "charts", "", "write SVG charts of every series into this directory")
}

func (f *replicationFlags) params(cmd *cobra.Command) (replication.Params, error) {
	p := replication.Defaults()
	if f.file != "" {
		fh, err := os.Open(f.file)
		if err != nil {
			return p, err
		}
		defer fh.Close()
		if p, err = replication.ParseParams(f.file, fh); err != nil {
			return p, err
		}
	}
	fl := cmd.Flags()
	if fl.Changed("scenario") {
		p.Scenario, p.Events = f.scenario, nil
	}
	if fl.Changed("nodes") {
		p.Cluster.Nodes = f.nodes
	}
	if fl.Changed("racks") {
		p.Cluster.Racks = f.racks
	} else if fl.Changed("nodes") && p.Cluster.Racks > p.Cluster.Nodes {
		p.Cluster.Racks = max(1, p.Cluster.Nodes/20)
	}
	if fl.Changed("blocks") {
		p.Cluster.Blocks = f.blocks
	}
	if fl.Changed("duration") {
		p.Duration = replication.Duration(f.duration)
	}
	if fl.Changed("seed") {
		p.Seed = f.seed
	}
	if fl.Changed("mitigations") || f.file == "" {
		m := replication.Mitigations{}
		for _, name := range strings.Split(f.mitigations, ",") {
			var err error
			if m, err = replication.MitigationByName(m, name); err != nil {
				return p, usagef("--mitigations: %v", err)
			}
		}
		p.Mitigations = m
	}
	if err := p.Validate(); err != nil {
		return p, err
	}
	return p, nil
}

// runWithProgress runs one simulation, with a progress bar on a terminal.
func runWithProgress(ctx context.Context, p replication.Params, label string) (*replication.Result, error) {
	var progress func(done, total int)
	if isatty.IsTerminal(os.Stderr.Fd()) {
		bar := progressbar.NewOptions(int(p.Duration.Seconds()), progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription(label+" (simulated seconds)"), progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish())
		progress = func(done, total int) { bar.Set(done) }
		defer bar.Finish()
	}
	return replication.RunProgress(ctx, p, progress)
}

func writeCharts(dir string, runs ...*replication.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, m := range replication.Metrics {
		svg, err := replication.Chart(m.Key, "", runs...)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, m.Key+".svg"), []byte(svg), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "charts written to %s/\n", dir)
	return nil
}

func clock(t float64) string {
	d := time.Duration(t) * time.Second
	return fmt.Sprintf("%d:%02d", int(d.Hours()), int(d.Minutes())%60)
}

func init() {
	group := &cobra.Command{
		Use:   "replication",
		Short: "Simulate the replica checker of a distributed filesystem, its storms and their mitigations",
		Long: `Simulate a storage cluster whose replica checker copies every block that has
fewer than minReplicas replicas on nodes that heartbeated OK - the loop from
Laura Nolan's "My Little Distributed Filesystem". Copies load the network and
disks, heartbeats travel over the same network and arrive late, nodes look dead,
more blocks look under-replicated, more copies start: a small fault can become
a storm that outlives it (a metastable failure).

Scenarios: node-dies, rack-power (5 min), brownout (30% heartbeat loss for
2 min), deploy (10% of nodes restart). Mitigations: grace (10 min before a node
is declared dead), copy-limit (2 copies per node), rate-limit (200 copies/s
cluster-wide), priority (fewest replicas first), breaker (stop declaring nodes
dead while more than 25% look dead), backoff (jittered exponential), all.`,
		Example: `  srekit replication demo
  srekit replication run --scenario rack-power --mitigations grace,copy-limit
  srekit replication run -f cluster.yaml -o csv > run.csv
  srekit replication run --nodes 1000 --blocks 1000000 --duration 6h --scenario deploy`,
	}

	var rf replicationFlags
	var format outputFormat = "table"
	run := &cobra.Command{
		Use:   "run",
		Short: "Run one simulation and print its time series and verdict",
		Long: `Run one simulation. The table shows the cluster every --every; -o csv or json
gives every sample (every 10 s by default). The last line is the verdict:
recovered (and when), or metastable (still degraded 30 minutes or more after the
fault ended).`,
		Example: `  srekit replication run --scenario brownout
  srekit replication run --scenario brownout --mitigations grace --charts out/
  srekit replication run -f params.yaml -o json > run.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := rf.params(cmd)
			if err != nil {
				return err
			}
			res, err := runWithProgress(cmd.Context(), p, "simulating")
			if err != nil {
				return err
			}
			if rf.charts != "" {
				if err := writeCharts(rf.charts, res); err != nil {
					return err
				}
			}
			switch format {
			case "csv":
				return res.WriteCSV(os.Stdout)
			case "json":
				return res.WriteJSON(os.Stdout)
			}
			fmt.Printf("%d nodes in %d racks, %d blocks x %d; scenario %s; mitigations: %s\n\n",
				p.Cluster.Nodes, p.Cluster.Racks, p.Cluster.Blocks, p.Cluster.ReplicationFactor, orNone(p.Scenario), res.Label())
			t := table{Header: []string{"time", "under-repl", "at risk", "declared dead", "down", "copies", "copy MB/s", "load", "hb fail/s"}}
			step := rf.every.Seconds()
			next := 0.0
			for _, s := range res.Samples {
				if s.T < next {
					continue
				}
				next = s.T + step
				t.Rows = append(t.Rows, []string{clock(s.T), fmt.Sprint(s.UnderReplicated), fmt.Sprint(s.AtRisk), fmt.Sprint(s.DeclaredDead),
					fmt.Sprint(s.Down), fmt.Sprint(s.CopiesInFlight), fmt.Sprintf("%.0f", s.CopyMBps), fmt.Sprintf("%.2f", s.MeanLoad), fmt.Sprintf("%.1f", s.HeartbeatFailures)})
			}
			if err := t.write(os.Stdout, "table", nil); err != nil {
				return err
			}
			fmt.Printf("\nverdict: %s\n(simulated %v in %v)\n", res.Summary(), time.Duration(p.Duration), res.Elapsed.Round(time.Millisecond))
			return nil
		},
	}
	rf.add(run, "none")
	run.Flags().VarP(&format, "output", "o", "table, csv or json")

	var df replicationFlags
	demo := &cobra.Command{
		Use:   "demo",
		Short: "The naive checker and the mitigated one, side by side, through the same fault",
		Long: `Run the same cluster through the same fault twice: once with the seed's naive
replica checker, once with the mitigations HDFS and Ceph ship (grace period,
per-node copy limit, priority, circuit breaker, jittered backoff), and print
them side by side. With the default brown-out (30% of heartbeats lost for two
minutes), the naive checker starts a re-replication storm that is still raging
long after the network recovered; the mitigated one rides it out.`,
		Example: `  srekit replication demo
  srekit replication demo --scenario deploy --charts demo/
  srekit replication demo --mitigations grace      # is the grace period alone enough?`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("scenario") && df.file == "" {
				df.scenario = "brownout"
				cmd.Flags().Set("scenario", "brownout")
			}
			mitigated, err := df.params(cmd)
			if err != nil {
				return err
			}
			naive := mitigated
			naive.Mitigations = replication.Mitigations{}
			a, err := runWithProgress(cmd.Context(), naive, "naive")
			if err != nil {
				return err
			}
			b, err := runWithProgress(cmd.Context(), mitigated, "mitigated")
			if err != nil {
				return err
			}
			if df.charts != "" {
				if err := writeCharts(df.charts, a, b); err != nil {
					return err
				}
			}
			p := mitigated
			fmt.Printf("%d nodes in %d racks, %d blocks x %d; scenario %s\nnaive: the seed's checker; mitigated: %s\n\n",
				p.Cluster.Nodes, p.Cluster.Racks, p.Cluster.Blocks, p.Cluster.ReplicationFactor, orNone(p.Scenario), strings.Join(p.Mitigations.Names(), ", "))
			t := table{Header: []string{"time", "naive under-repl", "dead", "load", "|", "mitigated under-repl", "dead", "load"}}
			step := df.every.Seconds()
			next := 0.0
			for i, s := range a.Samples {
				if s.T < next || i >= len(b.Samples) {
					continue
				}
				next = s.T + step
				m := b.Samples[i]
				t.Rows = append(t.Rows, []string{clock(s.T), fmt.Sprint(s.UnderReplicated), fmt.Sprint(s.DeclaredDead), fmt.Sprintf("%.2f", s.MeanLoad), "|",
					fmt.Sprint(m.UnderReplicated), fmt.Sprint(m.DeclaredDead), fmt.Sprintf("%.2f", m.MeanLoad)})
			}
			if err := t.write(os.Stdout, "table", nil); err != nil {
				return err
			}
			fmt.Printf("\nnaive:     %s\nmitigated: %s\n", a.Summary(), b.Summary())
			return nil
		},
	}
	df.add(demo, "all")
	group.AddCommand(run, demo)
	root.AddCommand(group)
}

func orNone(s string) string {
	if s == "" {
		return "none (or from the events in the file)"
	}
	return s
}
