package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// srekitBin is the srekit binary built once for the tests that run it as a
// user would: exit codes, stderr and signals are part of what is tested.
var srekitBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "srekit-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srekitBin = filepath.Join(dir, "srekit")
	build := exec.Command("go", "build", "-o", srekitBin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build srekit:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stopWith sends sig to a srekit process and waits up to within for it to
// exit; the returned error is the process's exit error (nil: exit 0).
func stopWith(t *testing.T, cmd *exec.Cmd, sig os.Signal, within time.Duration) error {
	t.Helper()
	cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		cmd.Process.Kill()
		t.Fatalf("srekit did not stop within %v of %v", within, sig)
		return nil
	}
}

// run runs srekit with args on a fresh database and returns stdout, stderr
// and the exit code.
func run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runIn(t, filepath.Join(t.TempDir(), "cli.db"), stdin, args...)
}

// runIn is run against the database db (SREKIT_DB).
func runIn(t *testing.T, db, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(srekitBin, args...)
	cmd.Env = append(os.Environ(), "SREKIT_DB="+db)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestHelpListsParts(t *testing.T) {
	out, _, code := run(t, "", "--help")
	if code != 0 || !strings.Contains(out, "cost") || !strings.Contains(out, "serve") || !strings.Contains(out, "completion") {
		t.Fatalf("--help (exit %d):\n%s", code, out)
	}
	out, _, code = run(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "srekit ") {
		t.Fatalf("version (exit %d): %q", code, out)
	}
}

// TestGroupsRefuseUnknownWords: a group command given a word that is not
// one of its subcommands fails with exit 2 (cobra alone shows the help and
// exits 0), and given nothing still shows its help.
func TestGroupsRefuseUnknownWords(t *testing.T) {
	for _, group := range []string{"flame", "sct", "loops", "firmware", "mesh", "profiling"} {
		_, errOut, code := run(t, "", group, "example.com:443")
		if code != 2 || !strings.Contains(errOut, `unknown command "example.com:443" for "srekit `+group+`"`) {
			t.Errorf("srekit %s example.com:443: exit %d, %q", group, code, errOut)
		}
	}
	out, _, code := run(t, "", "flame")
	if code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("srekit flame: exit %d:\n%s", code, out)
	}
}

func TestCostExampleLaaS(t *testing.T) {
	out, _, code := run(t, "", "cost", "example", "laas")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, fig := range []string{"1.13", "8.33", "5.33", "1.12", "2.08", "2.09", "2.22", "2.43", "2.51", "2.45", "4.98"} {
		if !strings.Contains(out, " "+fig+" ") {
			t.Errorf("output lacks break-even %s:\n%s", fig, out)
		}
	}
	if !strings.Contains(out, "assumption") {
		t.Error("output shows no assumptions")
	}
	// csv and json
	csvOut, _, code := run(t, "", "cost", "example", "laas", "-o", "csv")
	if code != 0 || strings.Count(csvOut, "\n") != 12 {
		t.Errorf("csv (exit %d): %d lines", code, strings.Count(csvOut, "\n"))
	}
	jsonOut, _, code := run(t, "", "cost", "example", "laas", "-o", "json")
	if code != 0 || !strings.Contains(jsonOut, `"break_even"`) {
		t.Errorf("json (exit %d)", code)
	}
}

func TestCostRunFileAndBadInput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "laas.yaml")
	if _, _, code := run(t, "", "cost", "example", "laas", "--write", path); code != 0 {
		t.Fatal("--write failed")
	}
	out, _, code := run(t, "", "cost", "run", path)
	if code != 0 || !strings.Contains(out, "4.98") {
		t.Fatalf("cost run (exit %d):\n%s", code, out)
	}
	out, _, code = run(t, "units_per_month: 10\nmeasures: [{name: rent, monthly: [{name: rent, cost: 50}]}]\n", "cost", "run", "-")
	if code != 0 || !strings.Contains(out, "5.00") {
		t.Fatalf("cost run - (exit %d):\n%s", code, out)
	}
	for _, tc := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"units_per_month: 1\nmeasures:\n  - name: a\n    capital: [{name: x, price: 1, lifetime_months: -3}]\n", []string{"cost", "run", "-"}, 1, "stdin:4: measures[0].capital[0].lifetime_months: must be positive"},
		{"", []string{"cost", "run", filepath.Join(dir, "missing.yaml")}, 1, "no such file"},
		{"", []string{"cost", "example", "nope"}, 2, "no built-in scenario"},
		{"", []string{"cost", "availability", "series", "99.9", "banana"}, 2, "not a number"},
		{"", []string{"cost", "availability", "kofn", "--k", "4", "--n", "3", "--unit", "0.9"}, 2, "k <= n"},
		{"", []string{"cost", "run"}, 2, "accepts 1 arg"},
		{"", []string{"cost", "run", path, "-o", "xml"}, 2, "want table, json or csv"},
	} {
		_, stderr, code := run(t, tc.stdin, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, stderr, tc.code, tc.want)
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") > 0 || strings.Contains(stderr, "panic") {
			t.Errorf("%v: stderr is not one line: %q", tc.args, stderr)
		}
	}
}

func TestAvailabilityCommands(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"cost", "availability", "steady", "--mtbf", "999h", "--mttr", "1h"}, "99.900000%"},
		{[]string{"cost", "availability", "kofn", "--k", "1", "--n", "3", "--unit", "90%"}, "1 of 3: 0.999 "},
		{[]string{"cost", "availability", "series", "0.99", "0.99"}, "0.9801"},
		{[]string{"cost", "availability", "parallel", "99", "99"}, "0.9999"},
		{[]string{"cost", "availability", "downtime", "99.9"}, "43m12s"},
		{[]string{"cost", "availability", "downtime", "99.9", "--month", "avg"}, "43m49.8s"},
	} {
		out, stderr, code := run(t, "", tc.args...)
		if code != 0 || !strings.Contains(out, tc.want) {
			t.Errorf("%v: exit %d, out %q, stderr %q; want %q", tc.args, code, out, stderr, tc.want)
		}
	}
}

// TestServeDemoAndGracefulShutdown starts `srekit serve --demo` as a user
// would, checks /healthz and /cost, and stops it with SIGTERM.
func TestServeDemoAndGracefulShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(srekitBin, "serve", "--demo", "--addr", addr, "--db", filepath.Join(t.TempDir(), "serve.db"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("server did not become healthy: %s", stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/cost")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), "4.98") {
		t.Fatal("/cost on the demo server lacks the LaaS figures")
	}
	if err := stopWith(t, cmd, syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM: %s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line: %s", stderr.String())
	}
}

func TestDrillsCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "drills.yaml")
	out, _, code := run(t, "", "drills", "example")
	if code != 0 || !strings.Contains(out, "dry_run: true") {
		t.Fatalf("example (exit %d)", code)
	}
	os.WriteFile(cfg, []byte(out), 0o644)
	if out, _, code := run(t, "", "drills", "validate", cfg); code != 0 || !strings.Contains(out, "valid") || !strings.Contains(out, "dry run") {
		t.Fatalf("validate (exit %d): %s", code, out)
	}
	if out, _, code := run(t, "", "drills", "plan", cfg, "--from", "2027-01-01", "--days", "90"); code != 0 || strings.Count(out, "\n") < 10 {
		t.Fatalf("plan (exit %d): %s", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("people:\n  - {name: x, team: y, timezone: Nowhere/Land, pager: {kind: pagerduty, routing_key: k}}\ncatalogue: [{id: a, title: b}]\n"), 0o644)
	_, stderr, code := run(t, "", "drills", "validate", bad)
	if code != 1 || !strings.Contains(stderr, `timezone "Nowhere/Land": unknown`) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Fatalf("bad timezone: exit %d, %q", code, stderr)
	}
	if _, stderr, code := run(t, "", "drills", "plan", cfg, "--days", "0"); code != 2 || !strings.Contains(stderr, "--days") {
		t.Fatalf("--days 0: exit %d, %q", code, stderr)
	}
	// apply, pause, import and report against one database.
	db := filepath.Join(dir, "d.db")
	for _, args := range [][]string{{"drills", "apply", cfg}, {"drills", "pause"}, {"drills", "resume"}} {
		if _, stderr, code := run(t, "", append(args, "--db", db)...); code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, stderr)
		}
	}
	csvPath := filepath.Join(dir, "pages.csv")
	os.WriteFile(csvPath, []byte("person,team,time\nChidi,storage,2026-11-01T03:12:00Z\n"), 0o644)
	if out, stderr, code := run(t, "", "drills", "import-pages", csvPath, "--db", db); code != 0 || !strings.Contains(out, "imported 1") {
		t.Fatalf("import: exit %d %s %s", code, out, stderr)
	}
	os.WriteFile(csvPath, []byte("person,team,time\nChidi,storage,yesterday\n"), 0o644)
	if _, stderr, code := run(t, "", "drills", "import-pages", csvPath, "--db", db); code != 1 || !strings.Contains(stderr, "line 2") {
		t.Fatalf("bad import: exit %d %s", code, stderr)
	}
	if out, stderr, code := run(t, "", "drills", "report", "--db", db); code != 0 || !strings.Contains(out, "Chidi") {
		t.Fatalf("report: exit %d %s %s", code, out, stderr)
	}
}
