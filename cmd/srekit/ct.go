package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/store"
)

func init() {
	cmd := &cobra.Command{
		Use:   "ct",
		Short: "Certificate Transparency monitor: watch the logs for certificates for your names",
		Long: `Certificate Transparency logs (RFC 6962, and the static-ct-api tiles that
Let's Encrypt and others now serve) record nearly every publicly trusted
certificate. 'srekit ct watch' tails them, verifies every signed tree head and
that each log stays append-only, and reports each certificate for a watched
name once, with its issuer checked against the issuers you expect.`,
	}
	cmd.AddCommand(ctWatchCmd(), ctFindingsCmd(), ctLogsCmd())
	root.AddCommand(cmd)
}

type ctWatchFlags struct {
	logList, watchFile, hook, webhook, secretEnv, startDate, metricsAddr, logFilter, logLevel string
	issuers                                                                                   []string
	once, noProgress                                                                          bool
	workers                                                                                   int
	batch, startIndex                                                                         uint64
	rate                                                                                      float64
	poll, reload                                                                              time.Duration
}

func ctWatchCmd() *cobra.Command {
	var fl ctWatchFlags
	cmd := &cobra.Command{
		Use:   "watch [NAME...]",
		Short: "Tail CT logs and report certificates for watched names",
		Long: `Tail every log of a v3 log list (Chrome's, Apple's or your own) and report
certificates for the watched names.

A NAME is either exact or a subtree:
  example.com     certificates valid for example.com (also *.com wildcards)
  .example.com    example.com and every name below it, wildcards included
Certificates whose names are redacted ("?.example.com") match fail-safe, and
entries that cannot be parsed are always reported (rule "(unparseable)").
The precertificate and the final certificate are one finding.

--issuers lists the issuers you expect (CAA issuer domains such as
letsencrypt.org, or any text found in the issuer's O or CN); a certificate
from another issuer is flagged "unexpected issuer". In a --watch-file each
line is "NAME [issuers=a,b]".

State lives in the database (--db): after a stop, a crash or a restart the
monitor goes on where it committed last, and never reports a finding twice.
Each finding runs --hook once (env SREKIT_CT_*, SREKIT_CT_JSON_FILE) and is
POSTed to --webhook signed with HMAC-SHA256 (header X-Srekit-Signature).

New logs are read from the beginning, so the whole tree is verified;
--start-index or --start-date backfill from a point instead. Logs that answer
429 are waited on for as long as Retry-After says.`,
		Example: `  # Watch a name and its subtree once through every log of a list
  srekit ct watch .example.com --log-list log_list.json --once

  # Tail forever, expecting Let's Encrypt only, with a hook and a webhook
  export SREKIT_CT_WEBHOOK_SECRET=s3cret
  srekit ct watch .example.com shop.example.net --issuers letsencrypt.org \
      --log-list https://www.gstatic.com/ct/log_list/v3/log_list.json \
      --hook 'mail -s "CT: $SREKIT_CT_NAMES" sre@example.com < $SREKIT_CT_JSON_FILE' \
      --webhook https://hooks.example.com/ct --metrics-addr 127.0.0.1:9464

  # Backfill a week of one log, 8 downloads at a time, at most 20 requests/s
  srekit ct watch --watch-file names.txt --log-list list.json --logs Argon \
      --start-date 2026-01-01 --workers 8 --rate 20`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCTWatch(cmd.Context(), fl, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.logList, "log-list", "", "log list (v3 JSON), a file or an http(s) URL (required)")
	f.StringVar(&fl.watchFile, "watch-file", "", "file of watch rules, one per line: NAME [issuers=a,b]")
	f.StringSliceVar(&fl.issuers, "issuers", nil, "expected issuers for the NAME arguments (CAA domains or issuer names)")
	f.StringVar(&fl.hook, "hook", "", "shell command run once per finding (env SREKIT_CT_*)")
	f.StringVar(&fl.webhook, "webhook", "", "URL receiving each finding as a signed JSON POST")
	f.StringVar(&fl.secretEnv, "webhook-secret-env", "SREKIT_CT_WEBHOOK_SECRET", "environment variable holding the webhook HMAC secret")
	f.BoolVar(&fl.once, "once", false, "stop when every log is caught up instead of tailing")
	f.IntVar(&fl.workers, "workers", 4, "parallel downloads per log")
	f.Uint64Var(&fl.batch, "batch", 256, "entries per RFC 6962 get-entries request")
	f.Float64Var(&fl.rate, "rate", 0, "most requests per second per log (0: no limit)")
	f.DurationVar(&fl.poll, "poll", time.Minute, "wait between tree head fetches when tailing")
	f.DurationVar(&fl.reload, "reload", time.Hour, "reload the log list this often when tailing (0: never)")
	f.Uint64Var(&fl.startIndex, "start-index", 0, "start logs new to the database at this entry index")
	f.StringVar(&fl.startDate, "start-date", "", "start logs new to the database at this date (YYYY-MM-DD or RFC 3339)")
	f.StringVar(&fl.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this address")
	f.StringVar(&fl.logFilter, "logs", "", "only the logs whose description contains this text")
	f.BoolVar(&fl.noProgress, "no-progress", false, "no progress bar even on a terminal")
	f.StringVar(&fl.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	return cmd
}

func runCTWatch(ctx context.Context, fl ctWatchFlags, args []string) error {
	if fl.logList == "" {
		return usagef("--log-list is required (a v3 log list file or URL)")
	}
	var rules []ct.Rule
	for _, a := range args {
		r, err := ct.ParseRule(a)
		if err != nil {
			return usagef("%v", err)
		}
		r.Issuers = fl.issuers
		rules = append(rules, r)
	}
	if fl.watchFile != "" {
		f, err := os.Open(fl.watchFile)
		if err != nil {
			return err
		}
		more, err := ct.ParseWatchList(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", fl.watchFile, err)
		}
		rules = append(rules, more...)
	}
	if len(rules) == 0 {
		return usagef("nothing to watch: give NAMEs or --watch-file")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(fl.logLevel)); err != nil {
		return usagef("--log-level %q: want debug, info, warn or error", fl.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var startTime time.Time
	if fl.startDate != "" {
		var err error
		if startTime, err = time.Parse("2006-01-02", fl.startDate); err != nil {
			if startTime, err = time.Parse(time.RFC3339, fl.startDate); err != nil {
				return usagef("--start-date %q: want YYYY-MM-DD or RFC 3339", fl.startDate)
			}
		}
	}
	hc := &http.Client{Timeout: 60 * time.Second}
	ll, err := ct.LoadLogList(ctx, fl.logList, hc)
	if err != nil {
		return err
	}
	logs := filterLogs(ll, fl.logFilter)
	if len(logs) == 0 {
		return fmt.Errorf("no logs in %s match %q", fl.logList, fl.logFilter)
	}
	st, err := store.Open(ctx, dbFlag)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := ct.SaveRules(ctx, st, rules); err != nil {
		return err
	}
	if err := ct.SaveLogListInfo(ctx, st, fl.logList, ll); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	metrics := ct.NewMetrics(reg)
	metrics.LogList(ll.Timestamp)
	if fl.metricsAddr != "" {
		ln, err := net.Listen("tcp", fl.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	notifier := &ct.Notifier{Store: st, Hook: fl.hook, Webhook: fl.webhook, HTTP: hc, Logger: logger}
	if fl.webhook != "" {
		secret := os.Getenv(fl.secretEnv)
		if secret == "" {
			return usagef("--webhook needs a secret in $%s (see --webhook-secret-env)", fl.secretEnv)
		}
		notifier.Secret = []byte(secret)
	}
	m := &ct.Monitor{Store: st, Logs: logs, Rules: rules, Workers: fl.workers, Batch: fl.batch, Rate: fl.rate,
		Poll: fl.poll, Once: fl.once, StartIndex: fl.startIndex, StartTime: startTime, HTTP: hc,
		UserAgent: "srekit-ct/" + version, Notifier: notifier, Metrics: metrics, Logger: logger}
	var bar *ctProgress
	if !fl.noProgress && isatty.IsTerminal(os.Stderr.Fd()) {
		bar = newCTProgress()
		m.Progress = bar.update
	}
	start := time.Now()
	var runErr error
	for {
		// When tailing, the log list is reloaded every --reload and the
		// monitor restarted on the new set of logs (state is in the store).
		runCtx, cancel := context.WithCancel(ctx)
		var newList *ct.LogList
		reloaded := make(chan struct{})
		if !fl.once && fl.reload > 0 {
			go func() {
				defer close(reloaded)
				t := time.NewTicker(fl.reload)
				defer t.Stop()
				for {
					select {
					case <-runCtx.Done():
						return
					case <-t.C:
					}
					nl, err := ct.LoadLogList(runCtx, fl.logList, hc)
					if err != nil {
						logger.Warn("reload log list", "err", err)
						continue
					}
					metrics.LogList(nl.Timestamp)
					ct.SaveLogListInfo(runCtx, st, fl.logList, nl)
					if !sameLogs(m.Logs, filterLogs(nl, fl.logFilter)) {
						newList = nl
						cancel()
						return
					}
				}
			}()
		} else {
			close(reloaded)
		}
		runErr = m.Run(runCtx)
		cancel()
		<-reloaded
		if newList == nil || ctx.Err() != nil {
			break
		}
		m.Logs = filterLogs(newList, fl.logFilter)
		logger.Info("log list changed; monitoring the new set of logs", "logs", len(m.Logs))
	}
	if bar != nil {
		bar.finish()
	}
	fs, err := ct.Findings(context.WithoutCancel(ctx), st, ct.FindingFilter{})
	if err != nil {
		return errors.Join(runErr, err)
	}
	fmt.Fprintf(os.Stderr, "srekit: %d logs, %d findings stored (%s); 'srekit ct findings' lists them\n", len(logs), len(fs), time.Since(start).Round(time.Millisecond))
	return runErr
}

// filterLogs keeps the logs whose description contains filter.
func filterLogs(ll *ct.LogList, filter string) []*ct.LogInfo {
	var out []*ct.LogInfo
	for _, l := range ll.Logs {
		if filter == "" || strings.Contains(strings.ToLower(l.Description), strings.ToLower(filter)) {
			out = append(out, l)
		}
	}
	return out
}

// sameLogs reports whether two log sets have the same logs at the same URLs and states.
func sameLogs(a, b []*ct.LogInfo) bool {
	key := func(ls []*ct.LogInfo) map[string]bool {
		m := map[string]bool{}
		for _, l := range ls {
			m[l.IDString()+" "+l.URL+" "+l.State] = true
		}
		return m
	}
	ka, kb := key(a), key(b)
	if len(ka) != len(kb) {
		return false
	}
	for k := range ka {
		if !kb[k] {
			return false
		}
	}
	return true
}

// ctProgress is one progress bar over every log's backlog.
type ctProgress struct {
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	first map[string]uint64
	pos   map[string]uint64
	size  map[string]uint64
}

func newCTProgress() *ctProgress {
	return &ctProgress{first: map[string]uint64{}, pos: map[string]uint64{}, size: map[string]uint64{},
		bar: progressbar.NewOptions64(-1, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("entries"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("entries"), progressbar.OptionThrottle(200*time.Millisecond))}
}

func (p *ctProgress) update(l *ct.LogInfo, pos, size uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := l.IDString()
	if _, ok := p.first[id]; !ok {
		p.first[id] = pos
	}
	p.pos[id], p.size[id] = pos, size
	var done, total uint64
	for k := range p.pos {
		done += p.pos[k] - min(p.first[k], p.pos[k])
		total += p.size[k] - min(p.first[k], p.size[k])
	}
	p.bar.ChangeMax64(int64(total))
	p.bar.Set64(int64(done))
}

func (p *ctProgress) finish() {
	p.bar.Finish()
	fmt.Fprintln(os.Stderr)
}

func ctFindingsCmd() *cobra.Command {
	var out outputFormat = "table"
	var limit int
	var rule string
	cmd := &cobra.Command{
		Use:   "findings",
		Short: "List stored CT findings, newest first",
		Example: `  srekit ct findings
  srekit ct findings --rule .example.com -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := store.Open(cmd.Context(), dbFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			fs, err := ct.Findings(cmd.Context(), st, ct.FindingFilter{Rule: rule, Limit: limit, NewestOut: true})
			if err != nil {
				return err
			}
			t := table{Header: []string{"FOUND", "RULE", "NAMES", "ISSUER", "STATUS", "FORMS", "NOT AFTER"}}
			for _, f := range fs {
				status := "expected issuer"
				if !f.IssuerExpected {
					status = "UNEXPECTED ISSUER"
				}
				if f.Kind != "match" {
					status = f.Kind
				}
				forms := []string{}
				if f.HasPrecert {
					forms = append(forms, "precert")
				}
				if f.HasCert {
					forms = append(forms, "cert")
				}
				t.Rows = append(t.Rows, []string{f.Found.Format(time.DateTime), f.Rule, strings.Join(f.Names, " "), f.Issuer, status,
					strings.Join(forms, "+"), dateOrDash(f.NotAfter)})
			}
			if fs == nil {
				fs = []*ct.Finding{}
			}
			return t.write(os.Stdout, out, fs)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	cmd.Flags().IntVar(&limit, "limit", 100, "most findings to list (0: all)")
	cmd.Flags().StringVar(&rule, "rule", "", "only findings of this rule")
	return cmd
}

func ctLogsCmd() *cobra.Command {
	var out outputFormat = "table"
	cmd := &cobra.Command{
		Use:     "logs",
		Short:   "Show each monitored log's state: position, verified tree head, backlog, problems",
		Example: `  srekit ct logs -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := store.Open(cmd.Context(), dbFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			logs, err := ct.Logs(cmd.Context(), st)
			if err != nil {
				return err
			}
			t := table{Header: []string{"LOG", "API", "STATUS", "POSITION", "VERIFIED", "BACKLOG", "STH AGE", "ERROR"}}
			for _, l := range logs {
				age := "-"
				if l.LatestTimestamp > 0 {
					age = time.Since(time.UnixMilli(int64(l.LatestTimestamp))).Round(time.Second).String()
				}
				t.Rows = append(t.Rows, []string{l.Description, string(l.Kind), l.Status, fmt.Sprint(l.Position), fmt.Sprint(l.VerifiedSize),
					fmt.Sprint(l.Backlog()), age, l.LastError})
			}
			if logs == nil {
				logs = []*ct.LogState{}
			}
			return t.write(os.Stdout, out, logs)
		},
	}
	cmd.Flags().VarP(&out, "output", "o", "output format: table, json or csv")
	return cmd
}

func dateOrDash(t time.Time) string {
	if t.Year() < 1971 {
		return "-"
	}
	return t.Format(time.DateOnly)
}
