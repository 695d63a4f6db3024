package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/web"
)

func init() {
	var (
		cfg      web.Config
		demo     bool
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the srekit web server (a page per part, the JSON API, /metrics)",
		Long: `Run the srekit web server: a page per part, a JSON API under /api/v1,
Prometheus metrics on /metrics and a health check on /healthz.

It binds 127.0.0.1:8080 unless --addr says otherwise. Reads are open; writes
(and anything that pages a person) need the bearer token from --token or
SREKIT_TOKEN, and are refused when no token is set.`,
		Example: `  srekit serve --demo                       # a newcomer's tour on the default SQLite file
  srekit serve --db postgres://srekit@db/srekit --addr 0.0.0.0:8080 --auth-reads`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return usagef("--log-level %q: want debug, info, warn or error", logLevel)
			}
			cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			ctx := cmd.Context()
			st, err := store.Open(ctx, dbFlag)
			if err != nil {
				return err
			}
			defer st.Close()
			if demo {
				if err := web.LoadDemo(ctx, st); err != nil {
					return err
				}
			}
			s, err := web.New(st, cfg)
			if err != nil {
				return err
			}
			if cfg.Token == "" {
				fmt.Fprintln(os.Stderr, "srekit: no --token or SREKIT_TOKEN: the server is read-only")
			}
			return s.ListenAndServe(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", "127.0.0.1:8080", "listen address")
	f.StringVar(&cfg.Token, "token", os.Getenv("SREKIT_TOKEN"), "bearer token required for writes (env SREKIT_TOKEN)")
	f.BoolVar(&cfg.AuthReads, "auth-reads", false, "require the token for reads too (use when binding beyond localhost)")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body", 10<<20, "largest request body accepted, in bytes")
	f.BoolVar(&demo, "demo", false, "fill an empty database with the seed's scenarios, so every page has something to show")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.AddCommand(cmd)
}
