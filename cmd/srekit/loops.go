package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/srekit/srekit/loops"
)

// openModel reads a model file, "-" for stdin, or a shipped example by name.
func openModel(arg string) (*loops.Model, error) {
	if arg == "-" {
		return loops.ParseFile("stdin", os.Stdin)
	}
	f, err := os.Open(arg)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			name := strings.TrimPrefix(arg, "example:")
			if _, _, exErr := loops.ExampleSource(name); exErr == nil {
				return loops.Example(name)
			}
			return nil, fmt.Errorf("%s: no such file, and no example model by that name (have %s)", arg, strings.Join(loops.Examples(), ", "))
		}
		return nil, err
	}
	defer f.Close()
	return loops.ParseFile(arg, f)
}

// writeOut writes to path, or stdout for "" or "-".
func writeOut(path string, write func(io.Writer) error) error {
	if path == "" || path == "-" {
		return write(os.Stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func init() {
	group := &cobra.Command{
		Use:   "loops",
		Short: "Causal loop diagrams: find reinforcing and balancing loops, draw, simulate",
		Long: `Causal loop diagrams (CLDs) and stock-and-flow models.

A model is a YAML file of variables and signed links (or an XMILE 1.0 file from
Stella, iThink and others). 'analyze' finds every feedback loop and says whether
it reinforces (R: an even number of - links) or balances (B: odd); 'diagram'
draws it; 'simulate' runs the equations and scores each loop at every step
(Loops That Matter), so you can see when a vicious cycle takes over.

A MODEL argument is a file, - for stdin, or the name of a shipped example
(see 'srekit loops examples'). The file format is in docs/loops.md.`,
		Example: `  srekit loops analyze replica-checker
  srekit loops diagram replica-checker -o cld.svg
  srekit loops simulate replica-checker --chart stocks.svg --dominance loops.svg > run.csv
  srekit loops analyze model.stmx -o json`,
	}

	var maxLoops int
	var countOnly bool
	var format outputFormat = "table"
	analyze := &cobra.Command{
		Use:   "analyze MODEL",
		Short: "List the feedback loops: R (reinforcing), B (balancing), U (unknown polarity)",
		Long: `List every elementary feedback loop of the model (Johnson's algorithm), up to
--max-loops, and say when the cap was hit. Loops are named R1, B1, U1 ...,
shortest first, then by variable names, so the names do not change when the
file is reordered. Links come from the file and from equations (an inflow is +,
an outflow -, and equation terms get their sign where the algebra shows it).`,
		Example: `  srekit loops analyze replica-checker
  srekit loops analyze big.yaml --max-loops 100000 -o csv
  srekit loops analyze big.yaml --max-loops 1000000 --count`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := openModel(args[0])
			if err != nil {
				return err
			}
			a, err := loops.Analyze(cmd.Context(), m, maxLoops)
			if err != nil {
				return err
			}
			if countOnly {
				fmt.Printf("%d loops (%d reinforcing, %d balancing, %d indeterminate), truncated: %v\n",
					len(a.Loops), a.Reinforcing, a.Balancing, a.Indeterminate, a.Truncated)
				return nil
			}
			t := table{Header: []string{"loop", "kind", "length", "delays", "title", "variables"}}
			for _, l := range a.Loops {
				t.Rows = append(t.Rows, []string{l.ID, l.Kind(), strconv.Itoa(len(l.Variables)), strconv.Itoa(l.Delays), l.Title, l.Path()})
			}
			if format != "table" {
				return t.write(os.Stdout, format, a)
			}
			fmt.Printf("%s: %d variables, %d links, %d loops (%d reinforcing, %d balancing, %d indeterminate)\n",
				m.Name, len(m.Variables), len(m.Links), len(a.Loops), a.Reinforcing, a.Balancing, a.Indeterminate)
			if a.Truncated {
				fmt.Printf("stopped at %d loops (--max-loops): there are more\n", a.MaxLoops)
			}
			fmt.Println()
			for _, l := range a.Loops {
				title := ""
				if l.Title != "" {
					title = " (" + l.Title + ")"
				}
				fmt.Printf("%-5s %-13s %s%s\n", l.ID, l.Kind(), l.Path(), title)
			}
			if len(a.Central) > 0 {
				fmt.Println("\nvariables in the most loops:")
				for i, c := range a.Central {
					if i == 10 {
						break
					}
					fmt.Printf("  %4d  %s\n", c.Loops, c.Name)
				}
			}
			return nil
		},
	}
	analyze.Flags().IntVar(&maxLoops, "max-loops", loops.DefaultMaxLoops, "stop after this many loops")
	analyze.Flags().VarP(&format, "output", "o", "output format: table, json or csv")
	analyze.Flags().BoolVar(&countOnly, "count", false, "print only how many loops of each kind")

	var diagOut, diagFormat, layout string
	var labels int
	diagram := &cobra.Command{
		Use:   "diagram MODEL",
		Short: "Draw the causal loop diagram as SVG (no Graphviz needed) or Graphviz DOT",
		Long: `Draw the model as a causal loop diagram: + or - at each arrowhead, || across
delayed links, stocks boxed, and an R or B label in the middle of each loop.
Layout is Graphviz's, embedded (compiled to WebAssembly): nothing to install.
--format dot writes DOT for your own Graphviz.`,
		Example: `  srekit loops diagram replica-checker -o cld.svg
  srekit loops diagram model.yaml --format dot | dot -Tpng > cld.png
  srekit loops diagram model.yaml --layout circo -o cld.svg`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if diagFormat != "svg" && diagFormat != "dot" {
				return usagef("--format %q: want svg or dot", diagFormat)
			}
			if diagOut == "" && strings.HasSuffix(diagFormat, "dot") {
				diagOut = "-"
			}
			if diagFormat == "" {
				diagFormat = "svg"
			}
			m, err := openModel(args[0])
			if err != nil {
				return err
			}
			a, err := loops.Analyze(cmd.Context(), m, 0)
			if err != nil {
				return err
			}
			opt := loops.DiagramOptions{Layout: layout, MaxLoopLabels: labels}
			var text string
			if diagFormat == "dot" {
				text = loops.DOT(m, a, opt)
			} else if text, err = loops.SVG(cmd.Context(), m, a, opt); err != nil {
				return err
			}
			return writeOut(diagOut, func(w io.Writer) error { _, err := io.WriteString(w, text); return err })
		},
	}
	diagram.Flags().StringVarP(&diagOut, "output", "o", "-", "file to write (- for stdout)")
	diagram.Flags().StringVar(&diagFormat, "format", "svg", "svg or dot")
	diagram.Flags().StringVar(&layout, "layout", "dot", "Graphviz layout engine: dot, neato or circo")
	diagram.Flags().IntVar(&labels, "loop-labels", 12, "draw labels for at most this many loops (shortest first)")

	var (
		simOut, chartOut, domOut, method, vars string
		dt, start, stop                        float64
		simFormat                              outputFormat = "csv"
	)
	simulate := &cobra.Command{
		Use:   "simulate MODEL",
		Short: "Run a stock-and-flow model; write CSV/JSON, charts, and loop dominance",
		Long: `Run the model's equations from start to stop (Euler by default, or RK4) and
write every variable at every step as CSV or JSON. Each loop is scored at every
step in the manner of Loops That Matter: the relative loop score is in [-1, 1],
positive while the loop reinforces, negative while it balances; the loop with
the largest absolute score dominates. --chart draws the stocks (or --vars),
--dominance the loop scores, both SVG.`,
		Example: `  srekit loops simulate replica-checker > run.csv
  srekit loops simulate capacity-overload --method rk4 --dt 0.05 -f json -o run.json
  srekit loops simulate replica-checker --chart stocks.svg --dominance loops.svg --vars "nodes declared dead,node load"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if simFormat == "table" {
				simFormat = "csv"
			}
			m, err := openModel(args[0])
			if err != nil {
				return err
			}
			a, err := loops.Analyze(cmd.Context(), m, 0)
			if err != nil {
				return err
			}
			// a flag left out keeps the model's value (SimOptions treats a zero start/stop pair as "the model's")
			if !cmd.Flags().Changed("start") {
				start = m.Sim.Start
			}
			if !cmd.Flags().Changed("stop") {
				stop = m.Sim.Stop
			}
			res, err := loops.Simulate(cmd.Context(), m, loops.SimOptions{Start: start, Stop: stop, DT: dt, Method: method, Analysis: a})
			if err != nil {
				return err
			}
			if chartOut != "" {
				var names []string
				for _, v := range strings.Split(vars, ",") {
					if v = strings.TrimSpace(v); v != "" {
						names = append(names, v)
					}
				}
				svg, err := res.Chart(names, "")
				if err != nil {
					return err
				}
				if err := os.WriteFile(chartOut, []byte(svg), 0o644); err != nil {
					return err
				}
			}
			if domOut != "" {
				if err := os.WriteFile(domOut, []byte(res.DominanceChart(8, "")), 0o644); err != nil {
					return err
				}
			}
			if periods := res.DominancePeriods(); len(periods) > 0 && simOut != "" && simOut != "-" {
				fmt.Fprintln(os.Stderr, "dominant loops over time:")
				for _, p := range mergeShort(periods, res.DT*10) {
					fmt.Fprintf(os.Stderr, "  %8g to %-8g %s\n", p.From, p.To, p.Loop)
				}
			}
			return writeOut(simOut, func(w io.Writer) error {
				if simFormat == "json" {
					return res.WriteJSON(w)
				}
				return res.WriteCSV(w)
			})
		},
	}
	f := simulate.Flags()
	f.StringVarP(&simOut, "output", "o", "-", "file for the results (- for stdout)")
	f.VarP(&simFormat, "format", "f", "csv or json")
	f.StringVar(&chartOut, "chart", "", "write an SVG chart of the stocks (or --vars) here")
	f.StringVar(&domOut, "dominance", "", "write an SVG chart of the relative loop scores here")
	f.StringVar(&vars, "vars", "", "comma-separated variables for --chart (default: the stocks)")
	f.StringVar(&method, "method", "", "integration method: euler or rk4 (default: the model's, else euler)")
	f.Float64Var(&dt, "dt", 0, "time step (default: the model's)")
	f.Float64Var(&start, "start", 0, "start time (default: the model's)")
	f.Float64Var(&stop, "stop", 0, "stop time (default: the model's)")

	examples := &cobra.Command{
		Use:   "examples [NAME]",
		Short: "List the shipped example models, or print one",
		Example: `  srekit loops examples
  srekit loops examples replica-checker > my-model.yaml`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				_, data, err := loops.ExampleSource(args[0])
				if err != nil {
					return err
				}
				_, err = os.Stdout.Write(data)
				return err
			}
			for _, n := range loops.Examples() {
				m, err := loops.Example(n)
				if err != nil {
					return err
				}
				fmt.Printf("%-20s %s\n", n, m.Name)
			}
			return nil
		},
	}
	group.AddCommand(analyze, diagram, simulate, examples)
	root.AddCommand(group)
}

// mergeShort folds dominance periods shorter than min into their neighbours,
// for a readable summary.
func mergeShort(ps []loops.Period, min float64) []loops.Period {
	var out []loops.Period
	for _, p := range ps {
		if n := len(out); n > 0 && (p.To-p.From < min || out[n-1].Loop == p.Loop) {
			out[n-1].To = p.To
			continue
		}
		out = append(out, p)
	}
	return out
}
