package main

import (
	"fmt"
	"io"
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

func TestMeshCLICheckAndBadInput(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("listeners: [{addr: \"127.0.0.1:0\"}]\nroutes: [{host: api.example, cluster: api}]\nclusters: [{name: api, endpoints: [{address: \"127.0.0.2:80\"}]}]\n"), 0o600)
	out, _, code := run(t, "", "mesh", "check", "--config", good)
	if code != 0 || !strings.Contains(out, "ok: 1 listeners, 1 routes, 1 clusters") || !strings.Contains(out, "api.example -> api") ||
		!strings.Contains(out, "listener 127.0.0.1:0: HTTP/1.1 (fast path") {
		t.Fatalf("check (exit %d): %s", code, out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("listeners: [{addr: \"127.0.0.1:0\"}]\nroutes: [{cluster: nope}]\nclusters: [{name: api, endpoints: [{address: \"127.0.0.2:80\"}]}]\n"), 0o600)
	_, errOut, code := run(t, "", "mesh", "--config", bad)
	if code != 1 || errOut != "srekit: "+bad+" line 2: routes[0].cluster: no cluster named \"nope\"\n" {
		t.Fatalf("bad config (exit %d): %q", code, errOut)
	}
	if _, errOut, code := run(t, "", "mesh"); code != 2 || !strings.Contains(errOut, "--config is required") {
		t.Fatalf("no --config (exit %d): %q", code, errOut)
	}
}

// TestMeshCLIServesReloadsAndStops runs `srekit mesh` as a user would:
// it proxies, a broken file on SIGHUP is refused while serving goes on, and
// SIGTERM stops it cleanly.
func TestMeshCLIServesReloadsAndStops(t *testing.T) {
	bl, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	backend := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "from backend") })}
	go backend.Serve(bl)
	defer backend.Close()
	free := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	addr, admin := free(), free()
	cfg := filepath.Join(t.TempDir(), "mesh.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("admin: %q\nlisteners: [{addr: %q}]\nroutes: [{cluster: api}]\nclusters: [{name: api, endpoints: [{address: %q}]}]\n", admin, addr, bl.Addr().String())), 0o600)
	cmd := exec.Command(srekitBin, "mesh", "--config", cfg)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	get := func() string {
		var last error
		for range 100 {
			res, err := http.Get("http://" + addr + "/")
			if err == nil {
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				return string(b)
			}
			last = err
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("mesh never answered: %v\n%s", last, stderr.String())
		return ""
	}
	if got := get(); got != "from backend" {
		t.Fatalf("through the mesh: %q", got)
	}
	os.WriteFile(cfg, []byte("listeners: ["), 0o600)
	cmd.Process.Signal(syscall.SIGHUP)
	time.Sleep(300 * time.Millisecond)
	if got := get(); got != "from backend" {
		t.Fatalf("after a refused reload: %q", got)
	}
	if err := stopWith(t, cmd, syscall.SIGTERM, 20*time.Second); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "reload") || !strings.Contains(stderr.String(), "did not find expected") {
		t.Errorf("the refused reload was not logged:\n%s", stderr.String())
	}
}
