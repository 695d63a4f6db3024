// Command srekit is the SRE's toolbelt: one binary whose subcommands are the
// parts of srekit, and `srekit serve`, the web server over all of them.
//
// This package only wires flags to the libraries: one file per command group
// (cost.go, flame.go, ...), each adding its commands to root from init().
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

var root = &cobra.Command{
	Use:   "srekit",
	Short: "The SRE's toolbelt: one binary, one server, a part for each job",
	Long: `srekit turns eight SREcon lightning talks into working tools:
the cost of availability, causal loop diagrams and the replica-checker storm,
flame graphs and a profiling service, a trace sampler, firmware rollouts,
CAA and Certificate Transparency, a front-door proxy and on-call drills.

Every part is a command below, and a page of 'srekit serve'.
Start with:  srekit serve --demo     then open http://127.0.0.1:8080`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// dbFlag is the database every command that stores anything uses.
var dbFlag string

func init() {
	root.PersistentFlags().StringVar(&dbFlag, "db", os.Getenv("SREKIT_DB"),
		"database: a SQLite file path (or sqlite://PATH) or a postgres:// URL (env SREKIT_DB; default ~/.local/share/srekit/srekit.db)")
}

// usageError marks errors in how a command was called, so main exits 2 for
// them as shells and other CLIs do.
type usageError struct{ error }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// markUsageErrors makes wrong argument counts usage errors (exit 2) in
// every command, with a pointer to the command's help.
func markUsageErrors(c *cobra.Command) {
	if orig := c.Args; orig != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := orig(cmd, args); err != nil {
				return usageError{fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())}
			}
			return nil
		}
	}
	// A group (flame, sct, loops...) has no action of its own: without
	// this, cobra shows its help and exits 0 for `srekit sct host:443`
	// or `srekit flame out.folded`, as if something had been done.
	if c.HasSubCommands() && !c.Runnable() {
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())
			}
			return cmd.Help()
		}
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

// exitStatus is returned by commands whose exit status carries an answer
// (caa check: 3 forbidden, 4 cannot decide) after they printed their output;
// main exits with it and prints nothing more. Returning it instead of calling
// os.Exit lets deferred clean-up run.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())}
	})
	markUsageErrors(root)
	if err := root.ExecuteContext(ctx); err != nil {
		var status exitStatus
		if errors.As(err, &status) {
			os.Exit(int(status))
		}
		fmt.Fprintln(os.Stderr, "srekit: "+err.Error())
		var ue usageError
		if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
