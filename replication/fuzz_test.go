package replication

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParseParams: any parameter file gives parameters or one clear error,
// never a panic; small valid ones also run.
func FuzzParseParams(f *testing.F) {
	if data, err := os.ReadFile("testdata/full.yaml"); err == nil {
		f.Add(string(data))
	}
	f.Add("cluster: {nodes: 10, racks: 2, blocks: 100}\nscenario: brownout\nduration: 15m\n")
	f.Add("cluster: {nodes: 8, racks: 8, blocks: 50, replication_factor: 5}\nevents: [{kind: deploy, at: 1m, duration: 1m, fraction: 1}]\nduration: 5m\nmitigations: {circuit_breaker: 0.5, backoff: 1s}\n")
	f.Add("heartbeat: {interval: 1s, timeout: 1s}\nchecker: {interval: 1s, min_replicas: 1}\n")
	f.Fuzz(func(t *testing.T, src string) {
		p, err := ParseParams("fuzz.yaml", strings.NewReader(src))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if p.Cluster.Nodes <= 50 && p.Cluster.Blocks <= 2000 && p.Duration <= Duration(20*time.Minute) && p.Cluster.ReplicationFactor <= p.Cluster.Nodes {
			if _, err := Run(context.Background(), p); err != nil {
				t.Fatal(err)
			}
		}
	})
}
