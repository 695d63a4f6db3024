package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/srekit/srekit/drills"
	"github.com/srekit/srekit/store"
)

func init() {
	group := &cobra.Command{
		Use:   "drills",
		Short: "Opt-in random on-call paging drills under strict rules",
		Long: `On-call drills, after the talk "Managing On-Call Atrophy": opt-in random pages,
marked [DRILL], only in each person's working hours and timezone, never during a
real incident, with minimum intervals, monthly caps, holidays and a pause switch.

A configuration (roster, rules, catalogue) is a YAML file. New configurations
start in dry run: set 'dry_run: false' to page for real. 'srekit serve' runs
the drills of the configuration stored with 'srekit drills apply'.`,
	}
	group.AddCommand(drillsValidateCmd(), drillsPlanCmd(), drillsApplyCmd(), drillsPauseCmd(true), drillsPauseCmd(false),
		drillsImportCmd(), drillsReportCmd(), drillsExampleCmd())
	root.AddCommand(group)
}

func readDrillsConfig(path string) (*drills.Config, string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, "", err
	}
	c, err := drills.ParseConfig(path, strings.NewReader(string(b)))
	return c, string(b), err
}

func drillsValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "validate FILE",
		Short:   "Check a drills configuration: every rule satisfiable, every person pageable",
		Example: `  srekit drills validate drills.yaml`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := readDrillsConfig(args[0])
			if err != nil {
				return err
			}
			opted := 0
			for _, p := range c.People {
				if p.OptedIn(time.Now()) {
					opted++
				}
			}
			mode := "dry run (nobody is paged)"
			if !c.IsDryRun() {
				mode = "LIVE: people will be paged"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid; %d people (%d opted in now), %d drills in the catalogue; %s\n",
				args[0], len(c.People), opted, len(c.Catalogue), mode)
			return nil
		},
	}
}

func drillsPlanCmd() *cobra.Command {
	out := outputFormat("table")
	var from string
	var days int
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show the drills a configuration would schedule (nothing is stored or paged)",
		Example: `  srekit drills plan drills.yaml --days 30
  srekit drills plan drills.yaml --from 2027-01-01 --days 365 -o csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := readDrillsConfig(args[0])
			if err != nil {
				return err
			}
			start := time.Now().UTC()
			if from != "" {
				start, err = time.Parse("2006-01-02", from)
				if err != nil {
					return usagef("--from %q: want YYYY-MM-DD", from)
				}
			}
			if days < 1 || days > 3660 {
				return usagef("--days must be between 1 and 3660")
			}
			plan := c.Plan(start, start.AddDate(0, 0, days), nil)
			t := table{Header: []string{"when (UTC)", "person", "team", "local time", "drill"}}
			for _, p := range plan {
				person, _ := c.Person(p.Person)
				d, _ := c.Drill(p.DrillID)
				t.Rows = append(t.Rows, []string{p.At.Format("2006-01-02 15:04"), p.Person, p.Team,
					p.At.In(person.Location()).Format("Mon 15:04 MST"), d.Title})
			}
			return t.write(cmd.OutOrStdout(), out, plan)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	cmd.Flags().StringVar(&from, "from", "", "first day (YYYY-MM-DD, UTC); today when empty")
	cmd.Flags().IntVar(&days, "days", 60, "days to plan")
	return cmd
}

func drillsApplyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "apply FILE",
		Short: "Validate a configuration and store it for 'srekit serve' to run",
		Example: `  srekit drills apply drills.yaml --db ~/.local/share/srekit/srekit.db
  srekit drills apply drills.yaml --db postgres://srekit@db/srekit`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, text, err := readDrillsConfig(args[0])
			if err != nil {
				return err
			}
			st, err := store.Open(cmd.Context(), dbFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := drills.SaveConfig(cmd.Context(), st, text)
			if err != nil {
				return err
			}
			st.LogEvent(cmd.Context(), "drills", "apply", args[0])
			mode := "dry run"
			if !c.IsDryRun() {
				mode = "live"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %s in %s (%s)\n", args[0], st.Location, mode)
			return nil
		},
	}
}

func drillsPauseCmd(pause bool) *cobra.Command {
	use, short := "pause", "Stop all drill pages now (the global pause switch)"
	if !pause {
		use, short = "resume", "Lift the global pause switch"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := store.Open(cmd.Context(), dbFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := drills.SetPaused(cmd.Context(), st, pause); err != nil {
				return err
			}
			st.LogEvent(cmd.Context(), "drills", use, "")
			fmt.Fprintf(cmd.OutOrStdout(), "drills %sd\n", strings.TrimSuffix(use, "e"))
			return nil
		},
	}
}

func drillsImportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import-pages FILE.csv",
		Short: "Import real (not drill) pages: CSV of person,team,time (RFC 3339)",
		Long: `Import real pages, so that reports count the days since anyone was last paged
for real or by a drill. The CSV has a header line and the columns person, team,
time (RFC 3339, e.g. 2027-03-01T03:12:00Z). Rows already imported are skipped.`,
		Example: `  srekit drills import-pages pagerduty-export.csv`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			r := csv.NewReader(f)
			r.FieldsPerRecord = 3
			rows, err := r.ReadAll()
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if len(rows) == 0 {
				return fmt.Errorf("%s: empty", args[0])
			}
			type page struct {
				person, team string
				at           time.Time
			}
			var pages []page
			for i, row := range rows[1:] {
				at, err := time.Parse(time.RFC3339, strings.TrimSpace(row[2]))
				if err != nil {
					return fmt.Errorf("%s line %d: time %q: want RFC 3339", args[0], i+2, row[2])
				}
				if strings.TrimSpace(row[0]) == "" {
					return fmt.Errorf("%s line %d: empty person", args[0], i+2)
				}
				pages = append(pages, page{strings.TrimSpace(row[0]), strings.TrimSpace(row[1]), at})
			}
			st, err := store.Open(cmd.Context(), dbFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, p := range pages {
				if err := drills.AddRealPage(cmd.Context(), st, p.person, p.team, p.at, args[0]); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d pages\n", len(pages))
			return nil
		},
	}
}

func drillsReportCmd() *cobra.Command {
	out := outputFormat("table")
	cmd := &cobra.Command{
		Use:     "report",
		Short:   "Drills per person and team: acknowledgement times, days since the last page",
		Example: `  srekit drills report`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := store.Open(cmd.Context(), dbFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			c, ok, err := drills.LoadConfig(cmd.Context(), st)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("no drills configuration in %s: store one with 'srekit drills apply FILE'", st.Location)
			}
			rep, err := drills.BuildReport(cmd.Context(), st, c, time.Now())
			if err != nil {
				return err
			}
			t := table{Header: []string{"who", "team", "drills", "acked", "ack p50", "ack p90", "days since last page"}}
			add := func(s drills.Stats) {
				days := "never paged"
				if s.DaysSince >= 0 {
					days = strconv.Itoa(s.DaysSince)
				}
				t.Rows = append(t.Rows, []string{s.Name, s.Team, strconv.Itoa(s.Drills), strconv.Itoa(s.Acked), secs(s.AckP50), secs(s.AckP90), days})
			}
			for _, s := range rep.People {
				add(s)
			}
			for _, s := range rep.Teams {
				s.Team = "(team)"
				add(s)
			}
			return t.write(cmd.OutOrStdout(), out, rep)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func secs(s float64) string {
	if s < 0 {
		return "-"
	}
	return (time.Duration(s) * time.Second).String()
}

func drillsExampleCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "example",
		Short:   "Print an example configuration (dry run) to start from",
		Example: `  srekit drills example > drills.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), drills.DemoConfig)
			return err
		},
	}
}
