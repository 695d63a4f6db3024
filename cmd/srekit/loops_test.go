package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoopsCLI(t *testing.T) {
	out, _, code := run(t, "", "loops", "analyze", "replica-checker")
	if code != 0 || !strings.Contains(out, "(re-replication storm)") || !strings.Contains(out, "reinforcing") || !strings.Contains(out, "variables in the most loops") {
		t.Fatalf("analyze (exit %d):\n%s", code, out)
	}
	model := "variables: [a, b]\nlinks:\n  - {from: a, to: b, polarity: '+'}\n  - {from: b, to: a, polarity: '-'}\n"
	out, _, code = run(t, model, "loops", "analyze", "-", "-o", "csv")
	if code != 0 || !strings.HasPrefix(out, "loop,kind,") || !strings.Contains(out, "B1,balancing,2") {
		t.Fatalf("analyze csv (exit %d):\n%s", code, out)
	}
	out, _, code = run(t, model, "loops", "diagram", "-", "--format", "dot")
	if code != 0 || !strings.Contains(out, "digraph") {
		t.Fatalf("diagram dot (exit %d):\n%s", code, out)
	}
	dir := t.TempDir()
	svg := filepath.Join(dir, "cld.svg")
	if _, errOut, code := run(t, "", "loops", "diagram", "replica-checker", "-o", svg); code != 0 {
		t.Fatalf("diagram svg (exit %d): %s", code, errOut)
	}
	if b, _ := os.ReadFile(svg); !strings.Contains(string(b), `class="loop-label"`) {
		t.Fatal("SVG without loop labels")
	}
	out, _, code = run(t, "", "loops", "simulate", "capacity-overload", "--method", "rk4", "--dominance", filepath.Join(dir, "d.svg"))
	if code != 0 || !strings.HasPrefix(out, "time,") || !strings.Contains(out, "dominant_loop") {
		t.Fatalf("simulate (exit %d):\n%.300s", code, out)
	}
}

func TestLoopsCLIBadInput(t *testing.T) {
	_, errOut, code := run(t, "variables: [a]\nlinks:\n  - {from: a, to: ghost, polarity: '+'}\n", "loops", "analyze", "-")
	if code != 1 || errOut != "srekit: stdin line 3: link to ghost: undefined variable \"ghost\"\n" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, "", "loops", "analyze", "no-such-model")
	if code != 1 || !strings.Contains(errOut, "no such file, and no example model") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = run(t, "variables: [a]\n", "loops", "simulate", "-")
	if code != 1 || !strings.Contains(errOut, "has no equation to simulate") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
}

func TestReplicationCLI(t *testing.T) {
	out, _, code := run(t, "", "replication", "run", "--nodes", "40", "--blocks", "4000", "--duration", "30m", "--scenario", "node-dies", "--mitigations", "grace,copy-limit")
	if code != 0 || !strings.Contains(out, "verdict: recovered") {
		t.Fatalf("run (exit %d):\n%s", code, out)
	}
	out, _, code = run(t, "", "replication", "run", "--nodes", "40", "--blocks", "4000", "--duration", "10m", "-o", "csv")
	if code != 0 || !strings.HasPrefix(out, "t_seconds,under_replicated") {
		t.Fatalf("csv (exit %d):\n%.200s", code, out)
	}
	out, _, code = run(t, "", "replication", "demo", "--nodes", "200", "--blocks", "100000", "--duration", "45m")
	if code != 0 || !strings.Contains(out, "naive:     metastable") || !strings.Contains(out, "mitigated: recovered") {
		t.Fatalf("demo (exit %d):\n%s", code, out)
	}
	_, errOut, code := run(t, "", "replication", "run", "--mitigations", "hope")
	if code != 2 || !strings.Contains(errOut, "unknown mitigation") {
		t.Fatalf("bad mitigation: exit %d %q", code, errOut)
	}
	_, errOut, code = run(t, "", "replication", "run", "--scenario", "meteor")
	if code != 1 || !strings.Contains(errOut, "unknown scenario") {
		t.Fatalf("bad scenario: exit %d %q", code, errOut)
	}
}
