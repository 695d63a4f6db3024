package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/srekit/srekit/certs/caa"
)

// Exit statuses of `srekit caa check` beyond 0 (all allowed), 1 (error) and
// 2 (usage): scripts tell a policy answer from a broken run.
const (
	exitForbidden    = 3 // some name is forbidden (and none undecidable)
	exitCannotDecide = 4 // some name could not be decided
)

func init() {
	cmd := &cobra.Command{
		Use:   "caa",
		Short: "May this CA issue for this name? CAA per RFC 8659/8657, with DNSSEC status",
		Long: `CAA (RFC 8659) records say which certificate authorities may issue for a
domain; RFC 8657 narrows that to an ACME account and validation methods.
'srekit caa check' climbs from a name toward the root exactly as a CA must,
follows CNAME and DNAME, reports the DNSSEC status of every answer, and
explains the decision. 'srekit caa record' writes the records for a policy.`,
	}
	cmd.AddCommand(caaCheckCmd(), caaRecordCmd())
	root.AddCommand(cmd)
}

type caaCheckFlags struct {
	ca, account, method, resolver, profile, output, file, trustAnchor, zone, origin string
	wildcard                                                                        bool
	concurrency, retries                                                            int
	rate                                                                            float64
	timeout, cache                                                                  time.Duration
}

func caaCheckCmd() *cobra.Command {
	var fl caaCheckFlags
	cmd := &cobra.Command{
		Use:   "check NAME... | --file FILE",
		Short: "Decide whether a CA may issue for names, and show why",
		Long: `Decide whether the CA named by --ca may issue a certificate for each NAME.

The answer is one of:
  allowed        the CAA records (or their absence) permit it
  forbidden      the relevant CAA record set does not authorize this CA,
                 account or validation method
  cannot decide  a lookup failed (SERVFAIL, REFUSED, timeout, bogus DNSSEC)
                 on the way: a CA must not issue

The output shows the reason, the relevant record set and where it was found,
every answer on the climb (with CNAME/DNAME steps) and each answer's DNSSEC
status: from the resolver's AD bit, or validated here with --trust-anchor.

With --file (or "-" for stdin) names are read one per line ("*.name" for a
wildcard, "#" comments), checked concurrently, and written as JSON lines.
Exit status: 0 all allowed, 3 some forbidden, 4 some could not be decided,
1 on errors, 2 on bad usage.`,
		Example: `  srekit caa check www.example.com --ca letsencrypt.org
  srekit caa check '*.example.com' --ca letsencrypt.org --method dns-01 \
      --account https://acme-v02.api.letsencrypt.org/acme/acct/1234
  srekit caa check example.org --ca pki.goog --resolver 127.0.0.1:53 -o json
  srekit caa check example.org --ca letsencrypt.org --profile letsencrypt
  srekit caa check example.org --ca letsencrypt.org --trust-anchor /usr/share/dns/root.ds
  srekit caa check www.example.com --ca letsencrypt.org --zone example.com.zone --origin example.com
  srekit caa check --file names.txt --ca letsencrypt.org --concurrency 64 --rate 500 > out.jsonl`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCAACheck(cmd.Context(), fl, args)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.ca, "ca", "", "issuer domain name of the CA, as in its CAA records (e.g. letsencrypt.org) (required)")
	f.StringVar(&fl.account, "account", "", "ACME account URI of the applicant (RFC 8657 accounturi)")
	f.StringVar(&fl.method, "method", "", "validation method used: dns-01, http-01, tls-alpn-01, ... (RFC 8657 validationmethods)")
	f.BoolVar(&fl.wildcard, "wildcard", false, "check for a wildcard certificate (same as writing *.NAME)")
	f.StringVar(&fl.resolver, "resolver", "", "DNS server to ask, HOST:PORT (default: the first nameserver of /etc/resolv.conf)")
	f.StringVar(&fl.profile, "profile", "rfc8659", "how to read records: rfc8659 (the RFCs) or letsencrypt (as Boulder does)")
	f.StringVarP(&fl.output, "output", "o", "", "output: text or json (default text for names, JSON lines for --file)")
	f.StringVar(&fl.file, "file", "", "read names from FILE, one per line (- for stdin)")
	f.StringVar(&fl.zone, "zone", "", "check against the CAA/CNAME/DNAME records of this zone file instead of DNS (a policy before it is published)")
	f.StringVar(&fl.origin, "origin", "", "origin for relative names in --zone (default: $ORIGIN in the file, else the root)")
	f.StringVar(&fl.trustAnchor, "trust-anchor", "", "validate DNSSEC here from the DS/DNSKEY records in FILE instead of trusting the AD bit")
	f.IntVar(&fl.concurrency, "concurrency", 32, "names checked at once with --file")
	f.Float64Var(&fl.rate, "rate", 0, "at most this many names started per second with --file (0: no limit)")
	f.DurationVar(&fl.timeout, "timeout", 2*time.Second, "wait this long for each DNS answer")
	f.IntVar(&fl.retries, "retries", 1, "resend a query this many times after a timeout")
	f.DurationVar(&fl.cache, "cache", 5*time.Minute, "reuse answers for their DNS TTL, at most this long, so names under the same parents share lookups (0: off)")
	return cmd
}

func (fl caaCheckFlags) resolverFor() (*caa.Resolver, error) {
	server := fl.resolver
	if server == "" {
		s, err := caa.SystemResolver()
		if err != nil {
			return nil, err
		}
		server = s
	} else if _, _, err := net.SplitHostPort(server); err != nil {
		server = net.JoinHostPort(strings.Trim(server, "[]"), "53")
	}
	r := &caa.Resolver{Server: server, Timeout: fl.timeout, Retries: fl.retries}
	if fl.retries == 0 {
		r.Retries = -1
	}
	if fl.cache > 0 {
		r.Cache = caa.NewCache(fl.cache)
	}
	if fl.trustAnchor != "" {
		ta, err := caa.LoadTrustAnchors(fl.trustAnchor)
		if err != nil {
			return nil, fmt.Errorf("--trust-anchor: %w", err)
		}
		r.Anchors = ta
	}
	return r, nil
}

func runCAACheck(ctx context.Context, fl caaCheckFlags, args []string) error {
	if fl.ca == "" {
		return usagef("--ca is required: the CA's issuer domain name, e.g. --ca letsencrypt.org")
	}
	profile, err := caa.ParseProfile(fl.profile)
	if err != nil {
		return usagef("--profile: %v", err)
	}
	if fl.file == "" && len(args) == 0 {
		return usagef("give a NAME or --file FILE (see 'srekit caa check --help')")
	}
	if fl.file != "" && len(args) > 0 {
		return usagef("give names or --file, not both")
	}
	switch fl.output {
	case "", "text", "json":
	default:
		return usagef("-o %q: want text or json", fl.output)
	}
	if fl.concurrency < 1 {
		return usagef("--concurrency must be at least 1")
	}
	var zone *caa.Zone
	if fl.zone != "" {
		if fl.file != "" {
			return usagef("--zone checks names given as arguments, not --file")
		}
		f, err := os.Open(fl.zone)
		if err != nil {
			return err
		}
		zone, err = caa.ParseZone(f, fl.origin, fl.zone)
		f.Close()
		if err != nil {
			return err
		}
	}
	var r *caa.Resolver
	if zone == nil {
		var err error
		if r, err = fl.resolverFor(); err != nil {
			return err
		}
	}
	base := caa.Request{Issuer: strings.TrimSuffix(fl.ca, "."), AccountURI: fl.account, Method: fl.method, Profile: profile}
	var worst caa.Verdict = caa.Allowed
	note := func(v caa.Verdict) {
		if v == caa.CannotDecide || v == caa.Forbidden && worst == caa.Allowed {
			worst = v
		}
	}
	if fl.file != "" {
		if err := caaBatch(ctx, r, base, fl, note); err != nil {
			return err
		}
	} else {
		for i, a := range args {
			req, err := caaRequest(base, a, fl.wildcard)
			if err != nil {
				return usagef("%v", err)
			}
			var d caa.Decision
			if zone != nil {
				d = caa.Evaluate(req, zone.Climb(req.Name))
			} else {
				d = r.Check(ctx, req)
			}
			note(d.Verdict)
			if fl.output == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				enc.Encode(d)
			} else {
				if i > 0 {
					fmt.Println()
				}
				writeDecision(os.Stdout, d)
			}
		}
	}
	switch worst {
	case caa.Forbidden:
		return exitStatus(exitForbidden)
	case caa.CannotDecide:
		return exitStatus(exitCannotDecide)
	}
	return nil
}

func caaRequest(base caa.Request, name string, wildcard bool) (caa.Request, error) {
	n, wild, err := caa.Normalize(name)
	if err != nil {
		return base, err
	}
	base.Name, base.Wildcard = n, wild || wildcard
	return base, nil
}

// caaBatch reads names from a file or stdin and writes one JSON line (or
// text line) per name, in completion order.
func caaBatch(ctx context.Context, r *caa.Resolver, base caa.Request, fl caaCheckFlags, note func(caa.Verdict)) error {
	var in io.Reader = os.Stdin
	total := -1
	if fl.file != "-" {
		f, err := os.Open(fl.file)
		if err != nil {
			return err
		}
		defer f.Close()
		total, err = countNames(f)
		if err != nil {
			return fmt.Errorf("read %s: %w", fl.file, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return err
		}
		in = f
	}
	var bar *progressbar.ProgressBar
	if isatty.IsTerminal(os.Stderr.Fd()) {
		bar = progressbar.NewOptions(total, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetDescription("checking CAA"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	enc := json.NewEncoder(w)
	// One writer at a time: results from the workers and bad input lines
	// from the reader.
	var outMu sync.Mutex
	emit := func(d caa.Decision) {
		outMu.Lock()
		defer outMu.Unlock()
		note(d.Verdict)
		if fl.output == "text" {
			fmt.Fprintf(w, "%s\t%s\t%s\n", d.Verdict, displayName(d.Request), d.Reason)
		} else {
			enc.Encode(d)
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	reqs := make(chan caa.Request)
	readErr := make(chan error, 1)
	go func() {
		defer close(reqs)
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		line := 0
		for sc.Scan() {
			line++
			s := strings.TrimSpace(sc.Text())
			if s == "" || strings.HasPrefix(s, "#") {
				continue
			}
			req, err := caaRequest(base, s, fl.wildcard)
			if err != nil {
				req.Name = s
				emit(caa.Decision{Request: req, Verdict: caa.CannotDecide, Reason: fmt.Sprintf("line %d: %v", line, err), Climb: []caa.Lookup{}})
				continue
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
		readErr <- sc.Err()
	}()
	r.Batch(ctx, reqs, caa.BatchOptions{Concurrency: fl.concurrency, Rate: fl.rate}, emit)
	if bar != nil {
		bar.Finish()
		fmt.Fprintln(os.Stderr)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case err := <-readErr:
		if err != nil {
			return fmt.Errorf("read names: %w", err)
		}
	default:
	}
	return nil
}

func countNames(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n := 0
	for sc.Scan() {
		s := strings.TrimSpace(sc.Text())
		if s != "" && !strings.HasPrefix(s, "#") {
			n++
		}
	}
	return n, sc.Err()
}

func displayName(req caa.Request) string {
	if req.Wildcard {
		return "*." + req.Name
	}
	return req.Name
}

// writeDecision prints a decision for a person.
func writeDecision(w io.Writer, d caa.Decision) {
	fmt.Fprintf(w, "%s: %s for %s (profile %s)\n", displayName(d.Request), strings.ToUpper(string(d.Verdict)), caaWho(d.Request), d.Request.Profile)
	fmt.Fprintf(w, "reason: %s\n", d.Reason)
	if d.RelevantName != "" {
		fmt.Fprintf(w, "\nrelevant record set at %s\n", d.RelevantName)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, rv := range d.Records {
			mark := " "
			if rv.Authorizes {
				mark = "+"
			}
			fmt.Fprintf(tw, "  %s %s\t%s\t%s\n", mark, rv.Record, rv.Role, rv.Why)
		}
		tw.Flush()
	}
	if len(d.Iodef) > 0 {
		fmt.Fprintf(w, "\nincident reports (iodef): %s\n", strings.Join(d.Iodef, ", "))
	}
	fmt.Fprintf(w, "\nclimb (server %s)\n", climbServer(d.Climb))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, l := range d.Climb {
		status := l.Rcode
		if l.Err != "" {
			status = "FAILED: " + l.Err
		}
		via := ""
		if l.TCP {
			via = " (TCP)"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\t%d records\tdnssec %s\t%.1f ms\n", l.Name, status, via, len(l.Records), l.DNSSEC, l.Millis)
		for _, a := range l.Aliases {
			fmt.Fprintf(tw, "    %s %s -> %s\t\t\tdnssec %s\t\n", a.Type, a.Owner, a.Target, a.DNSSEC)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\ndnssec: %s (the weakest answer that mattered)\n", d.DNSSEC)
	for _, l := range d.Climb {
		if l.DNSSECDetail != "" {
			fmt.Fprintf(w, "  %s: %s\n", l.Name, l.DNSSECDetail)
		}
	}
	if len(d.Notes) > 0 {
		fmt.Fprintln(w, "\nnotes")
		for _, n := range d.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
}

func climbServer(ls []caa.Lookup) string {
	for _, l := range ls {
		if l.Server != "" {
			return l.Server
		}
	}
	return "?"
}

func caaWho(r caa.Request) string {
	s := r.Issuer
	if r.AccountURI != "" {
		s += ", account " + r.AccountURI
	}
	if r.Method != "" {
		s += ", method " + r.Method
	}
	return s
}

func caaRecordCmd() *cobra.Command {
	var (
		cas, wild, methods []string
		account, iodef     string
		noWild             bool
	)
	cmd := &cobra.Command{
		Use:   "record [NAME]",
		Short: "Write the CAA records for a policy, in zone-file syntax, and check them",
		Long: `Write the CAA record set that allows the CAs given with --ca (optionally only
for one ACME account and some validation methods, RFC 8657), in zone-file
syntax ready to paste into a zone, then check the set with the evaluator:
each named CA must be allowed and any other CA forbidden.

With no --ca the set forbids every CA (issue ";").`,
		Example: `  srekit caa record example.com --ca letsencrypt.org
  srekit caa record example.com --ca letsencrypt.org --method dns-01 \
      --account https://acme-v02.api.letsencrypt.org/acme/acct/1234 --iodef mailto:security@example.com
  srekit caa record example.com --ca letsencrypt.org --ca pki.goog --no-wildcard`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := "example.com"
			if len(args) == 1 {
				n, _, err := caa.Normalize(args[0])
				if err != nil {
					return usagef("%v", err)
				}
				name = n
			}
			spec := caa.RecordSpec{Name: name, Issuers: cas, AccountURI: account, Methods: methods, Iodef: iodef, NoWild: noWild}
			if cmd.Flags().Changed("wildcard-ca") {
				spec.Wild = wild
			}
			recs, err := spec.Records()
			if err != nil {
				return usagef("%v", err)
			}
			fmt.Print(caa.ZoneFile(name, recs))
			// Check what was written with the evaluator.
			climb := []caa.Lookup{{Name: name + ".", Records: recs, DNSSEC: caa.Unknown}}
			method := ""
			if len(methods) > 0 {
				method = methods[0]
			}
			fmt.Println(";")
			ok := true
			check := func(issuer string, wildcard bool, want caa.Verdict) {
				d := caa.Evaluate(caa.Request{Name: name, Issuer: issuer, AccountURI: account, Method: method, Wildcard: wildcard}, climb)
				mark := "ok"
				if d.Verdict != want {
					mark, ok = "UNEXPECTED", false
				}
				who := issuer
				if wildcard {
					who += " (wildcard)"
				}
				fmt.Printf("; check %-4s %-40s %s: %s\n", mark, who, d.Verdict, d.Reason)
			}
			for _, ca := range cas {
				check(strings.TrimSuffix(ca, "."), false, caa.Allowed)
			}
			wildWant := cas
			if spec.Wild != nil {
				wildWant = wild
			}
			if noWild {
				wildWant = nil
			}
			for _, ca := range wildWant {
				check(strings.TrimSuffix(ca, "."), true, caa.Allowed)
			}
			if noWild && len(cas) > 0 {
				check(strings.TrimSuffix(cas[0], "."), true, caa.Forbidden)
			}
			check("unlisted-ca.invalid", false, caa.Forbidden)
			if !ok {
				return fmt.Errorf("the record set does not say what was asked (see the checks above)")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&cas, "ca", nil, "issuer domain of a CA allowed to issue (repeat for several)")
	f.StringSliceVar(&wild, "wildcard-ca", nil, "CA allowed to issue wildcards (issuewild); default: the same as --ca")
	f.BoolVar(&noWild, "no-wildcard", false, "forbid wildcard certificates (issuewild \";\")")
	f.StringVar(&account, "account", "", "limit issuance to this ACME account URI (RFC 8657)")
	f.StringSliceVar(&methods, "method", nil, "limit issuance to these validation methods, e.g. dns-01 (RFC 8657)")
	f.StringVar(&iodef, "iodef", "", "where CAs may report policy violations: mailto:, http: or https: URL")
	return cmd
}
