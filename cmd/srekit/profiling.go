package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/profiling"
	"github.com/srekit/srekit/store"
)

func init() {
	group := &cobra.Command{
		Use:   "profiling",
		Short: "Profiling service: store, list, merge, search and upload profile snapshots",
		Long: `The profiling service keeps profile snapshots (pprof, folded, perf script)
with labels and time ranges in the srekit database, compressed and stored once
per distinct content. 'srekit serve' adds capture from any host running
'srekit agent', schedules, Alertmanager-triggered capture and the /profiling page.

These commands work on the database named by --db (the same one the server
uses), except upload, which sends a file to a running server.

Selectors are Pyroscope/PromQL style: checkout{env="prod", host=~"web-.*"}
(the leading name is the service label).`,
	}
	group.AddCommand(profImportCmd(), profListCmd(), profMergeCmd(), profSearchCmd(), profCompactCmd(), profUploadCmd(), profPullCmd(), profAgentTokenCmd())
	root.AddCommand(group)
}

// selection flags shared by ls, merge and search.
type profSelection struct {
	kind, from, until, ids string
}

func (s *profSelection) register(cmd *cobra.Command, defKind string) {
	f := cmd.Flags()
	f.StringVar(&s.kind, "kind", defKind, "profile kind: cpu, alloc_space, inuse_space, goroutine, ...")
	f.StringVar(&s.from, "from", "", "snapshots ending at or after (Unix seconds, RFC 3339, now-1h)")
	f.StringVar(&s.until, "until", "", "snapshots starting at or before")
	f.StringVar(&s.ids, "ids", "", "only these snapshot ids, comma-separated")
}

func (s *profSelection) query(selector string) (profiling.Query, error) {
	var q profiling.Query
	var err error
	if q.Selector, err = profiling.ParseSelector(selector); err != nil {
		return q, usagef("%v", err)
	}
	q.Kind = s.kind
	now := time.Now()
	if q.From, err = profiling.ParseTime(s.from, now); err != nil {
		return q, usagef("--from: %v", err)
	}
	if q.Until, err = profiling.ParseTime(s.until, now); err != nil {
		return q, usagef("--until: %v", err)
	}
	for _, f := range strings.Split(s.ids, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return q, usagef("--ids: %q is not a snapshot id", f)
		}
		q.IDs = append(q.IDs, id)
	}
	return q, nil
}

// withProfilingDB runs a command with the profiling store open, closing it after.
func withProfilingDB(run func(cmd *cobra.Command, db *profiling.DB, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		db, closeDB, err := openProfilingDB(cmd)
		if err != nil {
			return err
		}
		defer closeDB()
		return run(cmd, db, args)
	}
}

func openProfilingDB(cmd *cobra.Command) (*profiling.DB, func(), error) {
	st, err := store.Open(cmd.Context(), dbFlag)
	if err != nil {
		return nil, nil, err
	}
	return &profiling.DB{S: st}, func() { st.Close() }, nil
}

func profImportCmd() *cobra.Command {
	var name, format, kind, from, until string
	cmd := &cobra.Command{
		Use:   "import FILE...",
		Short: "Store profile files as snapshots (pprof, folded, lines or perf script)",
		Long: `Store profile files in the database as snapshots. A pprof file gives one
snapshot per sample type (a heap profile: alloc_objects, alloc_space,
inuse_objects, inuse_space). The time range comes from --from/--until, else
from the pprof file, else the file's modification time. Importing the same
file twice stores it once.`,
		Example: `  srekit profiling import --name 'checkout{env="prod",host="web-1"}' cpu-*.pb.gz
  srekit profiling import --name search --format perf --kind cpu out.perf-script`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			labels, err := profiling.ParseName(name)
			if err != nil {
				return usagef("--name: %v", err)
			}
			now := time.Now()
			f, err := profiling.ParseTime(from, now)
			if err != nil {
				return usagef("--from: %v", err)
			}
			u, err := profiling.ParseTime(until, now)
			if err != nil {
				return usagef("--until: %v", err)
			}
			db, closeDB, err := openProfilingDB(cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			var bar *progressbar.ProgressBar
			if len(args) > 20 && isatty.IsTerminal(os.Stderr.Fd()) {
				bar = progressbar.Default(int64(len(args)), "importing")
			}
			stored, dups := 0, 0
			for _, path := range args {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				fm := format
				if fm == "auto" {
					fm = profiling.FormatFolded
					if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) || strings.HasSuffix(path, ".pb") || strings.HasSuffix(path, ".pprof") {
						fm = profiling.FormatPprof
					}
				}
				ds, err := profiling.Decode(data, fm, kind, "", profiling.Limits{})
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				st, _ := os.Stat(path)
				for _, d := range ds {
					start, end := d.Window(f, u, st.ModTime())
					_, dup, err := db.Save(cmd.Context(), &profiling.Snapshot{Kind: d.Kind, Unit: d.Unit, Labels: labels,
						Start: start, End: end, Source: "import:" + filepath.Base(path), Profile: d.Profile, Timeline: d.Timeline})
					if err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
					if dup {
						dups++
					} else {
						stored++
					}
				}
				if bar != nil {
					bar.Add(1)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "stored %d snapshots (%d already there) from %d files\n", stored, dups, len(args))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "service and labels, Pyroscope style: app{env=prod,host=web-1}")
	f.StringVar(&format, "format", "auto", "auto, pprof, folded, lines or perf")
	f.StringVar(&kind, "kind", "", "kind for folded/perf input (cpu), or the one pprof sample type to keep")
	f.StringVar(&from, "from", "", "start of the profiled time range")
	f.StringVar(&until, "until", "", "end of the profiled time range")
	return cmd
}

func profListCmd() *cobra.Command {
	var sel profSelection
	var limit int
	out := outputFormat("table")
	cmd := &cobra.Command{
		Use:   "ls [SELECTOR]",
		Short: "List stored snapshots, newest first",
		Example: `  srekit profiling ls
  srekit profiling ls 'checkout{env="prod"}' --from now-1h -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := sel.query(strings.Join(args, ""))
			if err != nil {
				return err
			}
			q.Limit = limit
			db, closeDB, err := openProfilingDB(cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			ss, err := db.List(cmd.Context(), q)
			if err != nil {
				return err
			}
			t := table{Header: []string{"ID", "KIND", "END", "SECONDS", "TOTAL", "UNIT", "RES", "TIMES", "LABELS"}}
			for _, s := range ss {
				times := "-"
				if s.HasTimeline {
					times = "per-sample"
				}
				t.Rows = append(t.Rows, []string{fmt.Sprint(s.ID), s.Kind, s.End.Format(time.RFC3339), fmt.Sprintf("%.0f", s.End.Sub(s.Start).Seconds()),
					fmt.Sprint(s.Total), s.Unit, s.Resolution, times, s.Labels.String()})
			}
			return t.write(cmd.OutOrStdout(), out, ss)
		},
	}
	sel.register(cmd, "")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many (0: all)")
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func profMergeCmd() *cobra.Command {
	var sel profSelection
	var format, output, title, ranges string
	cmd := &cobra.Command{
		Use:   "merge [SELECTOR]",
		Short: "Merge the selected snapshots into one profile: folded, SVG or offline HTML",
		Example: `  srekit profiling merge 'checkout{env="prod"}' --from now-24h --format svg -o checkout.svg
  srekit profiling merge --kind alloc_space --format html -o allocs.html
  srekit profiling merge search | srekit flame render > search.svg
  srekit profiling merge --ranges 12:2-5,12:7-8.5 --format svg -o spike.svg   # time ranges of perf snapshots`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q, err := sel.query(strings.Join(args, ""))
			if err != nil {
				return err
			}
			if format != "folded" && format != "svg" && format != "html" {
				return usagef("--format %q: want folded, svg or html", format)
			}
			var rs []profiling.Range
			if ranges != "" {
				if len(args) > 0 || sel.ids != "" || sel.from != "" || sel.until != "" {
					return usagef("--ranges names snapshots and times itself: give no selector, --ids, --from or --until with it")
				}
				if rs, err = profiling.ParseRanges(ranges); err != nil {
					return usagef("--ranges: %v", err)
				}
			}
			db, closeDB, err := openProfilingDB(cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			var m *profiling.MergeResult
			if rs != nil {
				m, err = db.MergeRanges(cmd.Context(), rs)
			} else {
				m, err = db.Merge(cmd.Context(), q)
			}
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if output != "" && output != "-" {
				f, err := os.Create(output)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			if title == "" {
				title = fmt.Sprintf("%s: %d snapshots merged", m.Kind, m.Snapshots)
				if rs != nil {
					title = fmt.Sprintf("%s: %d samples of %d time ranges", m.Kind, m.Samples, len(rs))
				}
			}
			o := flame.RenderOptions{Title: title}
			switch format {
			case "svg":
				err = flame.Render(w, m.Profile, o)
			case "html":
				err = flame.RenderHTML(w, m.Profile, o)
			default:
				err = m.Profile.WriteFolded(w)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "merged %d snapshots (%d distinct) into %d stacks, total %d %s\n", m.Snapshots, m.Blobs, m.Stacks, m.Total, m.Unit)
			return nil
		},
	}
	sel.register(cmd, "cpu")
	cmd.Flags().StringVar(&format, "format", "folded", "folded, svg or html (one offline file)")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file (default stdout)")
	cmd.Flags().StringVar(&title, "title", "", "graph title")
	cmd.Flags().StringVar(&ranges, "ranges", "", "merge time ranges of snapshots with per-sample times instead: ID:START-END,... in seconds after the first sample")
	return cmd
}

func profSearchCmd() *cobra.Command {
	var sel profSelection
	var groupBy string
	out := outputFormat("table")
	cmd := &cobra.Command{
		Use:   "search PATTERN [SELECTOR]",
		Short: "Which services spend time in functions matching PATTERN, and what share",
		Example: `  srekit profiling search 'encoding/json\.' --from now-24h
  srekit profiling search 'regexp\.' '{env="prod"}' --group-by host`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			re, err := regexp.Compile(args[0])
			if err != nil {
				return usagef("pattern: %v", err)
			}
			q, err := sel.query(strings.Join(args[1:], ""))
			if err != nil {
				return err
			}
			db, closeDB, err := openProfilingDB(cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			rows, err := db.Search(cmd.Context(), q, re, groupBy)
			if err != nil {
				return err
			}
			t := table{Header: []string{strings.ToUpper(orDefault(groupBy, "service")), "SNAPSHOTS", "MATCHED", "TOTAL", "SHARE", "TOP FUNCTION"}}
			for _, r := range rows {
				top := ""
				if len(r.Top) > 0 {
					top = r.Top[0].Frame
				}
				t.Rows = append(t.Rows, []string{r.Group, fmt.Sprint(r.Snapshots), fmt.Sprint(r.Matched), fmt.Sprint(r.Total), fmt.Sprintf("%.1f%%", r.Share*100), top})
			}
			return t.write(cmd.OutOrStdout(), out, rows)
		},
	}
	sel.register(cmd, "cpu")
	cmd.Flags().StringVar(&groupBy, "group-by", "service", "label to group by")
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func profCompactCmd() *cobra.Command {
	pol := profiling.DefaultRetention
	cmd := &cobra.Command{
		Use:   "compact",
		Short: "Apply retention: merge old snapshots into hourly and daily aggregates, drop the oldest",
		Long: `Apply the retention policy now (the server also does it hourly with the
defaults below): raw snapshots older than --raw are merged into one per hour
per kind and label set, hourly ones older than --hourly into one per day, and
daily ones older than --daily are deleted.`,
		Example: `  srekit profiling compact
  srekit profiling compact --raw 24h --hourly 168h --daily 2160h`,
		Args: cobra.NoArgs,
		RunE: withProfilingDB(func(cmd *cobra.Command, db *profiling.DB, args []string) error {
			res, err := db.Compact(cmd.Context(), pol, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "merged %d snapshots into %d aggregates; deleted %d expired\n", res.Merged, res.Created, res.Deleted)
			return nil
		}),
	}
	cmd.Flags().DurationVar(&pol.Raw, "raw", pol.Raw, "keep raw snapshots this long")
	cmd.Flags().DurationVar(&pol.Hourly, "hourly", pol.Hourly, "keep hourly aggregates this long")
	cmd.Flags().DurationVar(&pol.Daily, "daily", pol.Daily, "keep daily aggregates this long")
	return cmd
}

func profUploadCmd() *cobra.Command {
	var server, token, name, format, from, until string
	cmd := &cobra.Command{
		Use:   "upload FILE",
		Short: "Send a profile file to a running srekit server (its Pyroscope-compatible /ingest)",
		Example: `  srekit profiling upload --server http://127.0.0.1:8080 --token T --name 'api{env=prod}' cpu.pb.gz
  curl -H "Authorization: Bearer T" --data-binary @out.folded 'http://127.0.0.1:8080/ingest?name=api&format=folded'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if server == "" {
				return usagef("--server is required")
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			q := url.Values{"name": {name}}
			for k, v := range map[string]string{"format": format, "from": from, "until": until} {
				if v != "" {
					q.Set(k, v)
				}
			}
			req, err := http.NewRequestWithContext(cmd.Context(), "POST", strings.TrimSuffix(server, "/")+"/ingest?"+q.Encode(), bytes.NewReader(data))
			if err != nil {
				return usagef("--server: %v", err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("server said %s: %s", resp.Status, strings.TrimSpace(string(body)))
			}
			fmt.Fprint(cmd.OutOrStdout(), string(body))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", os.Getenv("SREKIT_SERVER"), "server URL (env SREKIT_SERVER)")
	f.StringVar(&token, "token", os.Getenv("SREKIT_TOKEN"), "write token (env SREKIT_TOKEN)")
	f.StringVar(&name, "name", "", "service and labels: app{env=prod}")
	f.StringVar(&format, "format", "", "pprof, folded, lines or perf (default: pprof when gzip'ed, else folded)")
	f.StringVar(&from, "from", "", "start of the profiled time range")
	f.StringVar(&until, "until", "", "end of the profiled time range")
	return cmd
}

func profPullCmd() *cobra.Command {
	group := &cobra.Command{
		Use:   "pull",
		Short: "Pull targets: pprof endpoints the server captures from itself, without an agent",
		Long: `Pull targets are stored in the database; every server using it picks them up
within seconds (no restart) and offers them as targets of its agent
"server-HOSTNAME" on the /profiling page and in the capture API. The
endpoints must be reachable from the server. SREKIT_PROFILING_PULL on the
server adds targets that are not stored.`,
	}
	out := outputFormat("table")
	ls := &cobra.Command{
		Use:     "ls",
		Short:   "List the stored pull targets",
		Example: `  srekit profiling pull ls -o json`,
		Args:    cobra.NoArgs,
		RunE: withProfilingDB(func(cmd *cobra.Command, db *profiling.DB, args []string) error {
			ts, err := db.PullTargets(cmd.Context())
			if err != nil {
				return err
			}
			t := table{Header: []string{"NAME", "URL", "LABELS"}}
			for _, p := range ts {
				t.Rows = append(t.Rows, []string{p.Name, p.URL, p.Labels.String()})
			}
			return t.write(cmd.OutOrStdout(), out, ts)
		}),
	}
	ls.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	var labels []string
	add := &cobra.Command{
		Use:   "add NAME URL",
		Short: "Add (or change) a pull target",
		Example: `  srekit profiling pull add api http://10.0.0.5:6060 --label env=prod --label team=shop
  srekit profiling pull add worker http://10.0.0.6:6060`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t := profiling.PullTarget{Name: args[0], URL: args[1], Labels: profiling.Labels{}}
			for _, kv := range labels {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usagef("--label %q: want key=value", kv)
				}
				t.Labels[k] = v
			}
			if err := t.Validate(); err != nil {
				return usagef("%v", err)
			}
			db, closeDB, err := openProfilingDB(cmd)
			if err != nil {
				return err
			}
			defer closeDB()
			if err := db.SavePullTarget(cmd.Context(), t); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pull target %s: %s\n", t.Name, t.URL)
			return nil
		},
	}
	add.Flags().StringArrayVar(&labels, "label", nil, "label added to its snapshots, key=value (repeatable)")
	rm := &cobra.Command{
		Use:     "rm NAME",
		Short:   "Remove a pull target",
		Example: `  srekit profiling pull rm api`,
		Args:    cobra.ExactArgs(1),
		RunE: withProfilingDB(func(cmd *cobra.Command, db *profiling.DB, args []string) error {
			return db.DeletePullTarget(cmd.Context(), args[0])
		}),
	}
	group.AddCommand(ls, add, rm)
	return group
}

func profAgentTokenCmd() *cobra.Command {
	group := &cobra.Command{
		Use:   "agent-token",
		Short: "Per-agent tokens: one token per host, bound to its agent name, revocable alone",
		Long: `A per-agent token lets one agent register, poll and upload as itself only
(srekit agent --name NAME --token TOKEN); it cannot change anything else or act
as another agent, and revoking it cuts off that host alone. Only its SHA-256
is stored: the token is printed once, when issued.`,
	}
	issue := &cobra.Command{
		Use:   "issue AGENT",
		Short: "Issue (or replace) the token of an agent and print it",
		Example: `  srekit profiling agent-token issue web-1
  srekit agent --server https://srekit:8080 --name web-1 --token "$(cat web-1.token)" --pprof api=http://127.0.0.1:6060`,
		Args: cobra.ExactArgs(1),
		RunE: withProfilingDB(func(cmd *cobra.Command, db *profiling.DB, args []string) error {
			tok, err := db.IssueAgentToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		}),
	}
	out := outputFormat("table")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the agents that have a token",
		Args:  cobra.NoArgs,
		RunE: withProfilingDB(func(cmd *cobra.Command, db *profiling.DB, args []string) error {
			ts, err := db.AgentTokens(cmd.Context())
			if err != nil {
				return err
			}
			t := table{Header: []string{"AGENT", "ISSUED"}}
			for _, a := range ts {
				t.Rows = append(t.Rows, []string{a.Agent, a.Created.Format(time.RFC3339)})
			}
			return t.write(cmd.OutOrStdout(), out, ts)
		}),
	}
	ls.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	rm := &cobra.Command{
		Use:     "revoke AGENT",
		Aliases: []string{"rm"},
		Short:   "Revoke the token of an agent",
		Args:    cobra.ExactArgs(1),
		RunE: withProfilingDB(func(cmd *cobra.Command, db *profiling.DB, args []string) error {
			return db.RevokeAgentToken(cmd.Context(), args[0])
		}),
	}
	group.AddCommand(issue, ls, rm)
	return group
}
