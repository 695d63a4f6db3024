package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/srekit/srekit/certs/caa"
	"github.com/srekit/srekit/certs/caa/caatest"
)

// TestCAACommands runs the built binary against Knot and unbound from
// caatest, checking output and exit statuses.
func TestCAACommands(t *testing.T) {
	env := caatest.Start(t)
	bin := filepath.Join(t.TempDir(), "srekit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	run := func(stdin string, args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Stdin = strings.NewReader(stdin)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	res := "--resolver=" + env.Resolver

	out, _, code := run("", "caa", "check", "deep.sub.caa.test", "--ca", "ca.example", res)
	if code != 0 || !strings.Contains(out, "ALLOWED") || !strings.Contains(out, "relevant record set at caa.test.") || !strings.Contains(out, "sub.caa.test.") {
		t.Errorf("allowed: exit %d\n%s", code, out)
	}
	out, _, code = run("", "caa", "check", "caa.test", "--ca", "other.example", res)
	if code != exitForbidden || !strings.Contains(out, "FORBIDDEN") {
		t.Errorf("forbidden: exit %d\n%s", code, out)
	}
	out, _, code = run("", "caa", "check", "www.bogus", "--ca", "ca.example", res, "-o", "json")
	var d caa.Decision
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if code != exitCannotDecide || d.Verdict != caa.CannotDecide || d.DNSSEC != caa.Bogus {
		t.Errorf("bogus: exit %d, %s/%s", code, d.Verdict, d.DNSSEC)
	}
	out, _, code = run("", "caa", "check", "www.signed", "--ca", "ca.example", "--resolver", env.Auth, "--trust-anchor", env.AnchorFile)
	if code != 0 || !strings.Contains(out, "dnssec: secure") {
		t.Errorf("trust anchor: exit %d\n%s", code, out)
	}

	// Batch from stdin: JSON lines, one per name, exit 4 when one is undecidable.
	names := "# comment\ncaa.test\n*.caa.test\nwww.broken.test\nnot a name\n\nalias.caa.test\n"
	out, _, code = run(names, "caa", "check", "--file", "-", "--ca", "ca.example", res, "--concurrency", "3")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitCannotDecide || len(lines) != 5 {
		t.Fatalf("batch: exit %d, %d lines\n%s", code, len(lines), out)
	}
	verdicts := map[string]caa.Verdict{}
	for _, l := range lines {
		var d caa.Decision
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		key := d.Request.Name
		if d.Request.Wildcard {
			key = "*." + key
		}
		verdicts[key] = d.Verdict
	}
	want := map[string]caa.Verdict{"caa.test": caa.Allowed, "*.caa.test": caa.Allowed, "www.broken.test": caa.CannotDecide, "not a name": caa.CannotDecide, "alias.caa.test": caa.Forbidden}
	for k, v := range want {
		if verdicts[k] != v {
			t.Errorf("batch %s: %q, want %q (all: %v)", k, verdicts[k], v, verdicts)
		}
	}

	// Only bad lines, more than any buffer: every one reported, no hang.
	out, _, code = run(strings.Repeat("not..a.name\n", 3000), "caa", "check", "--file", "-", "--ca", "ca.example", res)
	if code != exitCannotDecide || strings.Count(out, "\n") != 3000 {
		t.Errorf("bad lines: exit %d, %d lines", code, strings.Count(out, "\n"))
	}

	// Usage errors exit 2 with one line.
	if _, errOut, code := run("", "caa", "check", "x.test"); code != 2 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("missing --ca: exit %d, %q", code, errOut)
	}
	if _, _, code := run("", "caa", "check", "bad..name", "--ca", "ca.example", res); code != 2 {
		t.Errorf("bad name: exit %d", code)
	}
	if _, _, code := run("", "caa", "check", "--file", filepath.Join(t.TempDir(), "none"), "--ca", "ca.example", res); code != 1 {
		t.Errorf("missing file: exit %d", code)
	}

	zf := filepath.Join(t.TempDir(), "draft.zone")
	if err := os.WriteFile(zf, []byte("$ORIGIN draft.example.\n@ CAA 0 issue \"ca.example\"\nwww CNAME cdn.draft.example.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code = run("", "caa", "check", "a.www.draft.example", "--ca", "ca.example", "--zone", zf)
	if code != 0 || !strings.Contains(out, "relevant record set at draft.example.") {
		t.Errorf("--zone: exit %d\n%s", code, out)
	}

	out, _, code = run("", "caa", "record", "example.com", "--ca", "ca.example", "--method", "dns-01", "--iodef", "mailto:sec@example.com")
	if code != 0 || !strings.Contains(out, `example.com.	3600	IN	CAA	0 issue "ca.example; validationmethods=dns-01"`) || strings.Contains(out, "UNEXPECTED") {
		t.Errorf("record: exit %d\n%s", code, out)
	}
	if _, _, code := run("", "caa", "record", "--ca", "bad_ca!"); code != 2 {
		t.Errorf("record with a bad CA: exit %d", code)
	}
}
