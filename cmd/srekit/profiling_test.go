package main

import (
	"os"
	"path/filepath"
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

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
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
