package main

import (
	"bytes"
	"encoding/json"
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

	"github.com/srekit/srekit/firmware/redfish/redfishtest"
)

// fwRun runs srekit against one database and returns stdout, stderr, exit code.
func fwRun(t *testing.T, db string, args ...string) (string, string, int) {
	t.Helper()
	return runIn(t, db, "", args...)
}

// TestFirmwareCLI walks the commands a user runs: inventory of 20 fake BMCs
// over Redfish, pack and add a release, approve it, roll it out, and see the
// fleet on target; and the one-line errors on bad input.
func TestFirmwareCLI(t *testing.T) {
	m, err := redfishtest.LoadMockup(redfishtest.MockupDir(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	db := filepath.Join(dir, "fw.db")
	var bmcs []*redfishtest.BMC
	var list strings.Builder
	for i := 0; i < 20; i++ {
		b := redfishtest.New(m)
		b.Steps = 2
		b.Multipart = i%2 == 0
		b.SetVersion("BMC", "1.45.0")
		url := b.Start(t)
		bmcs = append(bmcs, b)
		fmt.Fprintf(&list, "- {host: node%02d, url: %q, model: Contoso 1U, rack: r%d}\n", i, url, i/5)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := fwRun(t, db, args...)
		if code != 0 {
			t.Fatalf("srekit %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	os.WriteFile(filepath.Join(dir, "bmcs.yaml"), []byte(list.String()), 0o644)
	must("firmware", "inventory", "--bmcs", filepath.Join(dir, "bmcs.yaml"), "--store")

	os.WriteFile(filepath.Join(dir, "bmc.bin"), redfishtest.Image("BMC", "1.46.0", "ok"), 0o644)
	os.WriteFile(filepath.Join(dir, "bmc.yaml"), []byte(`id: com.contoso.Bmc.firmware
guids: [1624a9df-5e13-47fc-874a-df3aff143089]
version_format: triplet
payload: bmc.bin
release: {version: 1.46.0, issues: [CVE-2023-34329]}
requires: [{kind: firmware, compare: ge, version: 1.30.0}]
`), 0o644)
	cab := filepath.Join(dir, "bmc-1.46.0.cab")
	must("firmware", "pack", filepath.Join(dir, "bmc.yaml"), "-o", cab)
	if out := must("firmware", "inspect", cab); !strings.Contains(out, "checksums  verified") {
		t.Errorf("inspect:\n%s", out)
	}
	comp := "Contoso/Contoso BMC Firmware/bmc"
	must("firmware", "release", "add", cab, "--component", comp)
	must("firmware", "target", "--model", "Contoso 1U", "--component", comp, "--version", "1.46.0")
	if out := must("firmware", "behind", "-o", "csv"); strings.Count(out, "behind") != 20 {
		t.Errorf("behind before the rollout:\n%s", out)
	}
	if out := must("firmware", "cve", "CVE-2023-34329", "-o", "csv"); strings.Count(out, "node") != 20 {
		t.Errorf("cve:\n%s", out)
	}
	os.WriteFile(filepath.Join(dir, "rollout.yaml"), []byte(`component: {vendor: Contoso, model: Contoso BMC Firmware, kind: bmc}
version: 1.46.0
phases: [{name: canary, percent: 5}, {percent: 50}, {percent: 100}]
domain: rack
install: {target: BMC, poll: 5ms, stall: 30s}
`), 0o644)
	if out := must("firmware", "rollout", "plan", filepath.Join(dir, "rollout.yaml")); !strings.Contains(out, "20 hosts to update") {
		t.Errorf("plan:\n%s", out)
	}
	must("firmware", "rollout", "start", filepath.Join(dir, "rollout.yaml"))
	if out := must("firmware", "behind", "-o", "csv"); strings.Count(out, "\n") != 1 {
		t.Errorf("behind after the rollout:\n%s", out)
	}
	if out := must("firmware", "rollout", "list"); !strings.Contains(out, "completed") {
		t.Errorf("rollout list:\n%s", out)
	}
	for i, b := range bmcs {
		if b.Installs() != 1 || b.Version("BMC") != "1.46.0" {
			t.Errorf("node%02d: %d installs, version %s", i, b.Installs(), b.Version("BMC"))
		}
	}

	// Bad input: one line, non-zero exit, nothing stored.
	data, _ := os.ReadFile(cab)
	evil := filepath.Join(dir, "evil.cab")
	os.WriteFile(evil, bytes.Replace(data, []byte("bmc.bin"), []byte("../a.bi"), 1), 0o644)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"firmware", "inspect", evil}, 1, "path traversal"},
		{[]string{"firmware", "release", "add", evil, "--component", comp}, 1, "path traversal"},
		{[]string{"firmware", "version", "1.2", "--format", "semver"}, 2, "unknown version format"},
		{[]string{"firmware", "version", "2B2QEXE7", "2B2QEXE8"}, 1, "cannot be compared"},
		{[]string{"firmware", "target", "--model", "x", "--component", "nope", "--version", "1"}, 2, "VENDOR/MODEL/KIND"},
	} {
		_, errOut, code := fwRun(t, db, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("srekit %s: exit %d, stderr %q; want exit %d and one line with %q", strings.Join(tc.args, " "), code, errOut, tc.code, tc.want)
		}
	}
	if out := must("firmware", "release", "list", "-o", "csv"); strings.Count(out, "\n") != 2 {
		t.Errorf("a rejected package was stored:\n%s", out)
	}
}

// TestFirmwareInventorySend reads this machine's sysfs and sends it to a
// running `srekit serve`, as an agent on every host would; the server's
// database then holds the host.
func TestFirmwareInventorySend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db := filepath.Join(t.TempDir(), "server.db")
	srv := exec.Command(srekitBin, "serve", "--addr", addr, "--db", db, "--token", "s3cret")
	var stderr bytes.Buffer
	srv.Stderr = &stderr
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not become healthy: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	local, _, code := fwRun(t, filepath.Join(t.TempDir(), "unused.db"), "firmware", "inventory", "-o", "json")
	if code != 0 {
		t.Fatalf("inventory exit %d", code)
	}
	var hosts []struct {
		Name       string
		Components []struct{ Slot, Version string }
	}
	if err := json.Unmarshal([]byte(local), &hosts); err != nil || len(hosts) != 1 || hosts[0].Name == "" {
		t.Fatalf("inventory output %q: %v", local, err)
	}
	if _, errOut, code := fwRun(t, db, "firmware", "inventory", "--send", "http://"+addr, "--token", "wrong"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("send with a wrong token: exit %d, %s", code, errOut)
	}
	if _, errOut, code := fwRun(t, db, "firmware", "inventory", "--send", "http://"+addr, "--token", "s3cret"); code != 0 {
		t.Fatalf("send: exit %d, %s", code, errOut)
	}
	resp, err := http.Get("http://" + addr + "/api/v1/firmware/hosts?host=" + hosts[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var stored []struct{ Host, Slot, Version string }
	json.NewDecoder(resp.Body).Decode(&stored)
	if len(stored) != len(hosts[0].Components) {
		t.Errorf("server holds %d components of %s, the host sent %d", len(stored), hosts[0].Name, len(hosts[0].Components))
	}
	if len(hosts[0].Components) == 0 {
		t.Logf("this machine exposes no firmware in sysfs (a VM without DMI?): only the host row was sent")
	}
}
