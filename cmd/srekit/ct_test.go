package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/srekit/srekit/certs/ct/ctlogtest"
)

// TestCTWatchOnceWithHook runs `srekit ct watch --once` against a local
// static-ct-api test log and checks the hook ran once per stored finding.
func TestCTWatchOnceWithHook(t *testing.T) {
	l, err := ctlogtest.NewLog("", true)
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := ctlogtest.NewScenario()
	if err := sc.Fill(l, 600, 10, 0); err != nil {
		t.Fatal(err)
	}
	l.Publish()
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	dir := t.TempDir()
	list := filepath.Join(dir, "list.json")
	os.WriteFile(list, l.LogListJSON(srv.URL+"/", "CLI test log"), 0o644)
	watch := filepath.Join(dir, "watch.txt")
	os.WriteFile(watch, []byte(strings.Join(ctlogtest.ScenarioRules, "\n")), 0o644)
	db := filepath.Join(dir, "ct.db")
	hookOut := filepath.Join(dir, "hook.txt")
	_, stderr, code := run(t, "", "ct", "watch", "--once", "--db", db, "--log-list", list, "--watch-file", watch,
		"--hook", `test -s "$SREKIT_CT_JSON_FILE" && echo "$SREKIT_CT_DELIVERY_ID $SREKIT_CT_RULE" >> `+hookOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out, stderr, code := run(t, "", "ct", "findings", "--db", db, "--limit", "0", "-o", "json")
	if code != 0 {
		t.Fatalf("findings: exit %d: %s", code, stderr)
	}
	var fs []map[string]any
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatal(err)
	}
	if len(fs) != len(sc.Expected) {
		t.Fatalf("%d findings, want %d", len(fs), len(sc.Expected))
	}
	hook, _ := os.ReadFile(hookOut)
	lines := strings.Split(strings.TrimSpace(string(hook)), "\n")
	if len(lines) != len(fs) {
		t.Fatalf("hook ran %d times for %d findings", len(lines), len(fs))
	}
	// Running again finds nothing new and runs no hook.
	if _, stderr, code := run(t, "", "ct", "watch", "--once", "--db", db, "--log-list", list, "--watch-file", watch,
		"--hook", "echo again >> "+hookOut); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, stderr)
	}
	hook2, _ := os.ReadFile(hookOut)
	if string(hook2) != string(hook) {
		t.Fatal("the second run notified again")
	}
	out, _, _ = run(t, "", "ct", "logs", "--db", db)
	if !strings.Contains(out, "CLI test log") || !strings.Contains(out, "ok") {
		t.Fatalf("ct logs: %s", out)
	}
}

func TestCTAndSCTUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"ct", "watch", "example.com"},
		{"ct", "watch", "--log-list", "x.json"},
		{"ct", "watch", "bad name/x", "--log-list", "x.json"},
		{"sct", "check", "example.com"},
	} {
		_, stderr, code := run(t, "", args...)
		if code != 2 || !strings.HasPrefix(stderr, "srekit: ") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
	_, stderr, code := run(t, "", "ct", "watch", "example.com", "--log-list", "/nonexistent.json")
	if code != 1 || !strings.Contains(stderr, "nonexistent") {
		t.Errorf("missing log list: exit %d, %q", code, stderr)
	}
}

// TestCTWatchReloadsLogList: when tailing, a log added to the list file is
// picked up at the next reload; SIGINT stops the monitor cleanly.
func TestCTWatchReloadsLogList(t *testing.T) {
	var logs []*ctlogtest.Log
	var entries []ctlogtest.LogListEntry
	for i := range 2 {
		l, _ := ctlogtest.NewLog("", i == 1)
		sc, _ := ctlogtest.NewScenario()
		sc.Fill(l, 300, 10, 0)
		l.Publish()
		srv := httptest.NewServer(l.Handler())
		defer srv.Close()
		logs = append(logs, l)
		entries = append(entries, ctlogtest.LogListEntry{Log: l, URL: srv.URL + "/", Description: fmt.Sprint("reload log ", i)})
	}
	dir := t.TempDir()
	list := filepath.Join(dir, "list.json")
	os.WriteFile(list, ctlogtest.LogList(entries[0]), 0o644)
	db := filepath.Join(dir, "ct.db")
	cmd := exec.Command(srekitBin, "ct", "watch", ".sub.example", "--db", db, "--log-list", list, "--poll", "200ms", "--reload", "500ms")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor := func(what string, ok func(string) bool) {
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			out, _, _ := run(t, "", "ct", "logs", "--db", db)
			if ok(out) {
				return
			}
		}
		out, _, _ := run(t, "", "ct", "logs", "--db", db)
		t.Fatalf("timed out waiting for %s: %s\nstderr: %s", what, out, errb.String())
	}
	waitFor("log 0", func(s string) bool { return strings.Contains(s, "reload log 0") && strings.Contains(s, "ok") })
	os.WriteFile(list, ctlogtest.LogList(entries...), 0o644)
	waitFor("log 1", func(s string) bool { return strings.Contains(s, "reload log 1") && strings.Count(s, " ok ") >= 2 })
	if err := stopWith(t, cmd, syscall.SIGINT, 20*time.Second); err != nil {
		t.Fatalf("exit after SIGINT: %v; stderr %s", err, errb.String())
	}
}
