package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSamplerCheckAndBadConfig(t *testing.T) {
	out, errOut, code := run(t, "", "sampler", "check", "--config", "../../sampling/testdata/sampler.yaml")
	if code != 0 || !strings.Contains(out, "valid") || !strings.Contains(out, "policy 2: errors") {
		t.Fatalf("check: code %d\n%s%s", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("policies: [{name: s, latency: {quantile: 2}}]\n"), 0o644)
	_, errOut, code = run(t, "", "sampler", "check", "--config", bad)
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "policies[0] (s).latency.quantile") {
		t.Fatalf("bad config: code %d, stderr %q", code, errOut)
	}
	if _, _, code := run(t, "", "sampler"); code != 2 {
		t.Fatalf("no --config: exit %d, want 2", code)
	}
}

// TestSamplerRunsAndStops starts `srekit sampler` on loopback ports, reads
// its metrics, reloads its policies (file change, SIGHUP, invalid file) and
// stops it with SIGTERM.
func TestSamplerRunsAndStops(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(cfg, []byte("receivers: {grpc: 127.0.0.1:0, http: 127.0.0.1:0}\nmetrics: 127.0.0.1:0\n"), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, srekitBin, "sampler", "--config", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	metricsRE := regexp.MustCompile(`metrics=(127\.0\.0\.1:\d+)`)
	sc := bufio.NewScanner(stderr)
	var metrics string
	for sc.Scan() {
		if m := metricsRE.FindStringSubmatch(sc.Text()); m != nil {
			metrics = m[1]
			break
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	if metrics == "" {
		t.Fatal("no 'sampler running' line with the metrics address")
	}
	scrape := func() string {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if !strings.Contains(scrape(), "srekit_sampler_buffered_bytes") {
		t.Fatal("/metrics lacks the sampler's metrics")
	}
	// Hot reload: a changed file is picked up; an invalid one is refused.
	waitMetric := func(line string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if strings.Contains(scrape(), line) {
				return
			}
		}
		t.Fatalf("metric %q never appeared", line)
	}
	time.Sleep(1100 * time.Millisecond) // a new modification time
	os.WriteFile(cfg, []byte("receivers: {grpc: 127.0.0.1:0, http: 127.0.0.1:0}\nmetrics: 127.0.0.1:0\npolicies: [{name: all, probabilistic: {percent: 100}}]\n"), 0o644)
	waitMetric(`srekit_sampler_config_reloads_total{result="ok"} 1`)
	waitMetric(`srekit_sampler_policy_traces_total{outcome="kept",policy="all"} 0`)
	// SIGHUP reloads too, with the file unchanged (the change watcher has
	// nothing to see, so the second reload is the signal's).
	cmd.Process.Signal(syscall.SIGHUP)
	waitMetric(`srekit_sampler_config_reloads_total{result="ok"} 2`)
	time.Sleep(1100 * time.Millisecond)
	os.WriteFile(cfg, []byte("policies: [{name: all, probabilistic: {percent: 500}}]\n"), 0o644)
	waitMetric(`srekit_sampler_config_reloads_total{result="error"} 1`)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sampler did not exit cleanly on SIGTERM: %v", err)
	}
}

// TestSamplerEvalSeeds runs two small seeds and checks the pooled
// representativeness adds up the seeds' keys.
func TestSamplerEvalSeeds(t *testing.T) {
	out, errOut, code := run(t, "", "sampler", "eval", "--traces", "400", "--span", "5s", "--seeds", "2", "-o", "json")
	if code != 0 {
		t.Fatalf("eval --seeds: code %d\n%s", code, errOut)
	}
	var res struct {
		Seeds []struct {
			Seed uint64
			Keys int
		}
		Pooled struct {
			Runs, Keys         int
			Representativeness float64 `json:"representativeness"`
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(res.Seeds) != 2 || res.Seeds[0].Seed != 1 || res.Seeds[1].Seed != 2 || res.Pooled.Runs != 2 ||
		res.Pooled.Keys != res.Seeds[0].Keys+res.Seeds[1].Keys || res.Pooled.Keys == 0 ||
		res.Pooled.Representativeness <= 0 || res.Pooled.Representativeness > 1 {
		t.Fatalf("pooled result %+v", res)
	}
	if _, errOut, code := run(t, "", "sampler", "eval", "--seeds", "2", "--save"); code != 2 || !strings.Contains(errOut, "--seeds") {
		t.Fatalf("--seeds with --save: code %d, stderr %q", code, errOut)
	}
}
