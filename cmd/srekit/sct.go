package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/sct"
)

// exitNotCompliant is the exit status of `srekit sct check` when the SCTs
// would not satisfy a policy: scripts tell it from a failed run (1).
const exitNotCompliant = 3

func init() {
	cmd := &cobra.Command{
		Use:   "sct",
		Short: "Audit the Signed Certificate Timestamps a TLS server presents",
	}
	cmd.AddCommand(sctCheckCmd())
	root.AddCommand(cmd)
}

func sctCheckCmd() *cobra.Command {
	var (
		logList, caFile, serverName string
		insecure, jsonOut           bool
		timeout                     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "check HOST[:PORT]",
		Short: "Collect, verify and judge a server's SCTs against the Chrome and Apple CT policies",
		Long: `Connect to HOST (port 443 unless given) with TLS and collect the server's
Signed Certificate Timestamps from all three places they travel: the
certificate's extension (embedded), the TLS extension, and a stapled OCSP
response. Each SCT is verified with its log's key from the log list, and the
set is judged against Chrome's and Apple's CT policies.

This is an audit, not enforcement: the policies depend on a log list that
browsers refresh every few weeks. Programs outside a browser should not
refuse connections on this basis (a stale list breaks them when logs change).

Exit status: 0 when both policies are met, 3 when one is not, 1 on errors.`,
		Example: `  srekit sct check example.com --log-list log_list.json
  srekit sct check 10.0.0.5:8443 --server-name api.example.com --log-list list.json -o json
  srekit sct check example.com --log-list https://www.gstatic.com/ct/log_list/v3/log_list.json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if logList == "" {
				return usagef("--log-list is required (a v3 log list file or URL)")
			}
			addr := args[0]
			if _, _, err := net.SplitHostPort(addr); err != nil {
				addr = net.JoinHostPort(addr, "443")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			ll, err := ct.LoadLogList(ctx, logList, &http.Client{Timeout: timeout})
			if err != nil {
				return err
			}
			cfg := &tls.Config{ServerName: serverName, InsecureSkipVerify: insecure}
			if caFile != "" {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return err
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return fmt.Errorf("%s: no PEM certificates", caFile)
				}
				cfg.RootCAs = pool
			}
			r, err := sct.Check(ctx, addr, cfg, ll)
			if err != nil {
				return err
			}
			r.Sort()
			if jsonOut {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else {
				printSCTReport(r)
			}
			if !r.Chrome.Compliant || !r.Apple.Compliant {
				return exitStatus(exitNotCompliant)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&logList, "log-list", "", "log list (v3 JSON), a file or an http(s) URL (required)")
	f.StringVar(&caFile, "ca-file", "", "PEM roots to verify the server with, instead of the system's")
	f.StringVar(&serverName, "server-name", "", "SNI and name to verify (default: HOST)")
	f.BoolVar(&insecure, "insecure", false, "do not verify the server's certificate chain (SCTs are still verified)")
	f.BoolVar(&jsonOut, "json", false, "print the report as JSON")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "time allowed for the log list and the connection")
	return cmd
}

func printSCTReport(r *sct.Report) {
	fmt.Printf("%s\n  subject   %s\n  issuer    %s\n  names     %v\n  validity  %s .. %s (%.0f days)\n",
		r.Host, r.Subject, r.Issuer, r.DNSNames, r.NotBefore.Format(time.DateOnly), r.NotAfter.Format(time.DateOnly),
		r.NotAfter.Sub(r.NotBefore).Hours()/24)
	if r.LogListAge != "" {
		fmt.Printf("  log list  %s old\n", r.LogListAge)
	}
	fmt.Printf("\nSCTs (%d):\n", len(r.SCTs))
	if len(r.SCTs) == 0 {
		fmt.Println("  none")
	}
	for _, s := range r.SCTs {
		fmt.Println("  " + s.Summary())
	}
	for _, p := range []sct.Policy{r.Chrome, r.Apple} {
		verdict := "COMPLIANT"
		if !p.Compliant {
			verdict = "NOT COMPLIANT"
		}
		fmt.Printf("\n%s CT policy: %s\n", p.Name, verdict)
		for _, reason := range p.Reasons {
			fmt.Println("  - " + reason)
		}
	}
}
