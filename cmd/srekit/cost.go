package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/srekit/srekit/cost"
)

func init() {
	group := &cobra.Command{
		Use:   "cost",
		Short: "The cost of availability: break-even price per measure, k-of-n availability, nines that pay off",
		Long: `The cost of availability, after the talk "How to achieve '100%' availability"
(Lemonade as a Service). A scenario file describes a business (product, recipe,
units sold, price) and an ordered list of measures taken to keep it available;
'cost run' shows what each measure does to the break-even price, what
availability it buys, and whether it pays for itself.`,
	}
	group.AddCommand(costRunCmd(), costExampleCmd(), costAvailabilityCmd())
	root.AddCommand(group)
}

func costRunCmd() *cobra.Command {
	out := outputFormat("table")
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a scenario file (YAML; - for stdin) and print each step",
		Example: `  srekit cost example laas --write laas.yaml   # start from the talk's scenario
  srekit cost run laas.yaml
  srekit cost run laas.yaml -o csv > steps.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = os.Stdin
			name := "stdin"
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				r, name = f, args[0]
			}
			s, err := cost.ParseScenario(name, r)
			if err != nil {
				return err
			}
			return printCostRun(cmd.OutOrStdout(), s, out)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func costExampleCmd() *cobra.Command {
	out := outputFormat("table")
	var write string
	cmd := &cobra.Command{
		Use:   "example NAME",
		Short: "Run a built-in scenario (laas: the talk's Lemonade as a Service), or write it out",
		Example: `  srekit cost example laas                   # the talk's break-even prices, step by step
  srekit cost example laas --write laas.yaml  # the scenario file, to edit and 'cost run'`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: cost.ExampleNames(),
		RunE: func(cmd *cobra.Command, args []string) error {
			if write != "" {
				b, err := cost.ExampleYAML(args[0])
				if err != nil {
					return err
				}
				if write == "-" {
					_, err = cmd.OutOrStdout().Write(b)
					return err
				}
				if err := os.WriteFile(write, b, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", write)
				return nil
			}
			s, err := cost.Example(args[0])
			if err != nil {
				return usageError{err}
			}
			return printCostRun(cmd.OutOrStdout(), s, out)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	cmd.Flags().StringVar(&write, "write", "", "write the scenario's YAML to this file (- for stdout) instead of running it")
	return cmd
}

func printCostRun(w io.Writer, s *cost.Scenario, out outputFormat) error {
	res, err := cost.Run(s)
	if err != nil {
		return err
	}
	t := table{Header: []string{"#", "step", "fixed/month", "variable/unit", "units/month", "break-even", "profit/month",
		"availability", "+nines", "+cost/unit", "cost/extra nine", "lost to downtime/month", "pays off"}}
	for _, st := range res.Steps {
		name := st.Name
		if st.Alternative {
			name += " (option not taken)"
		}
		if len(st.Assumptions) > 0 || hasAssumed(st) {
			name += " *"
		}
		row := []string{strconv.Itoa(st.Index), name, cost.Money(st.FixedPerMonth), cost.Money(st.VariablePerUnit),
			strconv.FormatFloat(st.Units, 'f', -1, 64), cost.Money(st.BreakEven), cost.Money(st.Profit)}
		if st.Availability != nil {
			row = append(row, fmt.Sprintf("%.6f%%", *st.Availability*100))
		} else {
			row = append(row, "-")
		}
		row = append(row, signed(st.AddedNines, 2), signedMoney(st.CostPerUnit))
		if st.CostPerExtraNine != 0 {
			row = append(row, cost.Money(st.CostPerExtraNine))
		} else {
			row = append(row, "-")
		}
		if st.Availability != nil {
			row = append(row, cost.Money(st.LostRevenue))
		} else {
			row = append(row, "-")
		}
		switch {
		case st.PaysForItself == nil:
			row = append(row, "-")
		case *st.PaysForItself:
			row = append(row, "yes")
		default:
			row = append(row, "no")
		}
		t.Rows = append(t.Rows, row)
	}
	if err := t.write(w, out, res); err != nil {
		return err
	}
	if out == "table" {
		fmt.Fprintf(w, "\n%s, prices in %s per unit, costs per month; sale price %s.\n", res.Scenario, res.Currency, cost.Money(s.Price))
		for _, st := range res.Steps {
			for _, a := range st.Assumptions {
				fmt.Fprintf(w, "* step %d, assumption: %s\n", st.Index, a)
			}
		}
	}
	return nil
}

func hasAssumed(st cost.Step) bool {
	for _, l := range st.Lines {
		if l.Assumed {
			return true
		}
	}
	return false
}

func signed(x float64, prec int) string {
	if x == 0 || math.IsNaN(x) {
		return "-"
	}
	return strconv.FormatFloat(x, 'f', prec, 64)
}

func signedMoney(x float64) string {
	if cost.RoundCents(x) == 0 {
		return "0.00"
	}
	if x > 0 {
		return "+" + cost.Money(x)
	}
	return cost.Money(x)
}

// parseFraction reads an availability as 0.999, 99.9 or 99.9%.
func parseFraction(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number (write 0.999, 99.9 or 99.9%%)", s)
	}
	if pct || v > 1 {
		v /= 100
	}
	if v < 0 || v > 1 || math.IsNaN(v) {
		return 0, fmt.Errorf("%q is not an availability between 0 and 100%%", s)
	}
	return v, nil
}

func parseFractions(args []string) ([]float64, error) {
	out := make([]float64, len(args))
	for i, a := range args {
		v, err := parseFraction(a)
		if err != nil {
			return nil, usageError{err}
		}
		out[i] = v
	}
	return out, nil
}

func printAvailability(w io.Writer, label string, a float64) {
	fmt.Fprintf(w, "%s: %.9g (%.6f%%, %.2f nines)\n", label, a, a*100, cost.Nines(a))
}

func costAvailabilityCmd() *cobra.Command {
	group := &cobra.Command{
		Use:   "availability",
		Short: "Availability math: MTBF/MTTR, series, parallel, k-of-n, downtime budgets",
		Long: `Availability math. Availabilities may be written 0.999, 99.9 or 99.9%.
Failures are taken as independent; k-of-n assumes identical units.`,
	}
	var mtbf, mttr time.Duration
	steady := &cobra.Command{
		Use:     "steady",
		Short:   "Steady-state availability of one repairable unit: MTBF / (MTBF + MTTR)",
		Example: `  srekit cost availability steady --mtbf 720h --mttr 48h`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := cost.Steady(mtbf, mttr)
			if err != nil {
				return usageError{err}
			}
			printAvailability(cmd.OutOrStdout(), "availability", a)
			return nil
		},
	}
	steady.Flags().DurationVar(&mtbf, "mtbf", 0, "mean time between failures (e.g. 720h)")
	steady.Flags().DurationVar(&mttr, "mttr", 0, "mean time to repair (e.g. 48h)")

	series := &cobra.Command{
		Use:     "series A...",
		Short:   "Availability of parts that must all work",
		Example: `  srekit cost availability series 99.95 99.9 99.99`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := parseFractions(args)
			if err != nil {
				return err
			}
			printAvailability(cmd.OutOrStdout(), "series", cost.Series(as...))
			return nil
		},
	}
	parallel := &cobra.Command{
		Use:     "parallel A...",
		Short:   "Availability of parts of which any one suffices",
		Example: `  srekit cost availability parallel 99 99`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := parseFractions(args)
			if err != nil {
				return err
			}
			printAvailability(cmd.OutOrStdout(), "parallel", cost.Parallel(as...))
			return nil
		},
	}
	var k, n int
	var unit string
	kofn := &cobra.Command{
		Use:   "kofn",
		Short: "Availability of n identical units when k must work (n+2 for one needed: --k 1 --n 3)",
		Example: `  srekit cost availability kofn --k 1 --n 3 --unit 93.75%
  srekit cost availability kofn --k 2 --n 3 --mtbf 720h --mttr 48h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var a float64
			var err error
			switch {
			case unit != "" && (mtbf != 0 || mttr != 0):
				return usagef("give --unit or --mtbf/--mttr, not both")
			case unit != "":
				a, err = parseFraction(unit)
			default:
				a, err = cost.Steady(mtbf, mttr)
			}
			if err != nil {
				return usageError{err}
			}
			r, err := cost.KofN(k, n, a)
			if err != nil {
				return usageError{err}
			}
			w := cmd.OutOrStdout()
			printAvailability(w, "one unit", a)
			printAvailability(w, fmt.Sprintf("%d of %d", k, n), r)
			return nil
		},
	}
	kofn.Flags().IntVar(&k, "k", 1, "units that must work")
	kofn.Flags().IntVar(&n, "n", 2, "units installed")
	kofn.Flags().StringVar(&unit, "unit", "", "availability of one unit (or give --mtbf and --mttr)")
	kofn.Flags().DurationVar(&mtbf, "mtbf", 0, "mean time between failures of one unit")
	kofn.Flags().DurationVar(&mttr, "mttr", 0, "mean time to repair one unit")

	var month string
	downtime := &cobra.Command{
		Use:   "downtime SLO...",
		Short: "Downtime an SLO allows per day, week, month, quarter and year",
		Long: `Downtime an availability target allows per day, week, month, quarter and year.
--month 30d counts a month as 30 days (quarter 90, year 365); --month avg
counts it as 365.25/12 = 30.4375 days (quarter 91.3125, year 365.25).`,
		Example: `  srekit cost availability downtime 99.9 99.95 99.99
  srekit cost availability downtime 99.9 --month avg`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			as, err := parseFractions(args)
			if err != nil {
				return err
			}
			periods, err := cost.Periods(cost.MonthConvention(month))
			if err != nil {
				return usageError{err}
			}
			t := table{Header: []string{"SLO", "nines"}}
			for _, p := range periods {
				t.Header = append(t.Header, "per "+p.Name)
			}
			for i, a := range as {
				row := []string{args[i], strconv.FormatFloat(cost.Nines(a), 'f', 2, 64)}
				for _, p := range periods {
					d, _ := cost.AllowedDowntime(a, p.Duration)
					row = append(row, d.Round(time.Millisecond).String())
				}
				t.Rows = append(t.Rows, row)
			}
			return t.write(cmd.OutOrStdout(), "table", nil)
		},
	}
	downtime.Flags().StringVar(&month, "month", "30d", "month convention: 30d or avg")
	group.AddCommand(steady, series, parallel, kofn, downtime)
	return group
}
