package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestProfilingCLI(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "p.db")
	a := filepath.Join(dir, "a.folded")
	b := filepath.Join(dir, "b.folded")
	os.WriteFile(a, []byte("main;serve;json.Marshal 30\nmain;serve;db.Query 10\n"), 0o644)
	os.WriteFile(b, []byte("main;index;regexp.Match 50\nmain;index;json.Marshal 50\n"), 0o644)

	out, errOut, code := run(t, "", "--db", db, "profiling", "import", "--name", "checkout{env=prod}", "--until", "2026-11-25T10:00:00Z", a)
	if code != 0 || !strings.Contains(out, "stored 1 snapshots") {
		t.Fatalf("import a (exit %d): %s %s", code, out, errOut)
	}
	out, _, _ = run(t, "", "--db", db, "profiling", "import", "--name", "checkout{env=prod}", "--until", "2026-11-25T10:00:00Z", a)
	if !strings.Contains(out, "stored 0 snapshots (1 already there)") {
		t.Fatalf("re-import: %s", out)
	}
	run(t, "", "--db", db, "profiling", "import", "--name", "search{env=prod}", "--until", "2026-11-25T10:01:00Z", b)

	out, _, code = run(t, "", "--db", db, "profiling", "ls", "{env=\"prod\"}")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, `service="search"`) {
		t.Fatalf("ls (exit %d):\n%s", code, out)
	}
	out, _, code = run(t, "", "--db", db, "profiling", "merge")
	if code != 0 || !strings.Contains(out, "main;index;json.Marshal 50\n") || !strings.Contains(out, "main;serve;json.Marshal 30\n") {
		t.Fatalf("merge (exit %d):\n%s", code, out)
	}
	svg := filepath.Join(dir, "m.svg")
	if _, errOut, code := run(t, "", "--db", db, "profiling", "merge", "checkout", "--format", "svg", "-o", svg); code != 0 {
		t.Fatalf("merge svg (exit %d): %s", code, errOut)
	}
	if b, _ := os.ReadFile(svg); !strings.Contains(string(b), "<svg") {
		t.Fatal("merge --format svg wrote no SVG")
	}
	out, _, code = run(t, "", "--db", db, "profiling", "search", `json\.`)
	if code != 0 || !strings.Contains(out, "50.0%") || !strings.Contains(out, "75.0%") {
		t.Fatalf("search (exit %d):\n%s", code, out)
	}

	// A perf script keeps each sample's time: merge a time range of it.
	perf := filepath.Join(dir, "funcab.perf")
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "testdata", "flamegraph", "perf-funcab-cmd-01.txt"))
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(err)
		}
		t.Logf("SKIPPED part: perf time ranges NOT TESTED: shared test data missing: %v", err)
	} else {
		os.WriteFile(perf, raw, 0o644)
		out, errOut, code = run(t, "", "--db", db, "profiling", "import", "--format", "perf", "--name", "funcab", perf)
		if code != 0 {
			t.Fatalf("import perf (exit %d): %s %s", code, out, errOut)
		}
		out, _, _ = run(t, "", "--db", db, "profiling", "ls", "funcab", "-o", "csv")
		if !strings.Contains(out, "per-sample") {
			t.Fatalf("ls of a perf snapshot: %s", out)
		}
		id := strings.Split(strings.Split(out, "\n")[1], ",")[0]
		// The header timestamps of the file, counted independently: [0.5 s, 1.5 s) after the first.
		var first float64
		n := 0
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && f[3] == "cpu-clock:" {
				v, _ := strconv.ParseFloat(strings.TrimSuffix(f[2], ":"), 64)
				if first == 0 {
					first = v
				}
				if d := v - first; d >= 0.5 && d < 1.5 {
					n++
				}
			}
		}
		out, errOut, code = run(t, "", "--db", db, "profiling", "merge", "--ranges", id+":0.5-1.5")
		sum := 0
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			v, _ := strconv.Atoi(line[strings.LastIndexByte(line, ' ')+1:])
			sum += v
		}
		if code != 0 || sum != n || n == 0 {
			t.Fatalf("merge --ranges (exit %d): %d samples, want %d; %s", code, sum, n, errOut)
		}
	}

	// Pull targets.
	out, errOut, code = run(t, "", "--db", db, "profiling", "pull", "add", "api", "http://10.0.0.5:6060", "--label", "env=prod")
	if code != 0 {
		t.Fatalf("pull add (exit %d): %s", code, errOut)
	}
	out, _, _ = run(t, "", "--db", db, "profiling", "pull", "ls")
	if !strings.Contains(out, "http://10.0.0.5:6060") || !strings.Contains(out, `env="prod"`) {
		t.Fatalf("pull ls: %s", out)
	}
	if _, errOut, code := run(t, "", "--db", db, "profiling", "pull", "rm", "api"); code != 0 {
		t.Fatalf("pull rm (exit %d): %s", code, errOut)
	}

	out, errOut, code = run(t, "", "--db", db, "profiling", "agent-token", "issue", "web-1")
	if code != 0 || !strings.HasPrefix(out, "sat_") {
		t.Fatalf("agent-token issue (exit %d): %s %s", code, out, errOut)
	}
	if out, _, _ = run(t, "", "--db", db, "profiling", "agent-token", "ls"); !strings.Contains(out, "web-1") || strings.Contains(out, "sat_") {
		t.Fatalf("agent-token ls: %s", out)
	}
	if _, errOut, code := run(t, "", "--db", db, "profiling", "agent-token", "revoke", "web-1"); code != 0 {
		t.Fatalf("agent-token revoke (exit %d): %s", code, errOut)
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"profiling", "agent-token", "revoke", "web-1"}, 1, "not found"},
		{[]string{"profiling", "pull", "add", "api", "ftp://x"}, 2, "base URL"},
		{[]string{"profiling", "pull", "rm", "nothing"}, 1, "not found"},
		{[]string{"profiling", "merge", "--ranges", "1:5-2"}, 2, "end must be after"},
		{[]string{"profiling", "ls", `{a=~"("}`}, 2, "regex"},
		{[]string{"profiling", "import", "--name", "x", filepath.Join(dir, "missing")}, 1, "no such file"},
		{[]string{"profiling", "import", "--name", "x{", a}, 2, "--name"},
		{[]string{"profiling", "merge", "--format", "png"}, 2, "--format"},
		{[]string{"profiling", "merge", "nothing-here"}, 1, "no snapshot matches"},
		{[]string{"agent", "--server", "http://10.9.9.9:8080", "--token", "t", "--pprof", "a=http://127.0.0.1:6060"}, 2, "plain HTTP"},
		{[]string{"agent", "--server", "http://127.0.0.1:8080", "--token", "t"}, 2, "nothing to capture"},
	} {
		_, errOut, code := run(t, "", append([]string{"--db", db}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: exit %d, stderr %q; want exit %d with %q on one line", tc.args, code, errOut, tc.code, tc.msg)
		}
	}
}
