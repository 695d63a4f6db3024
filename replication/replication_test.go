package replication

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/srekit/srekit/loops"
)

// small is a cluster small enough for tests and big enough to storm.
func small() Params {
	p := Defaults()
	p.Cluster.Nodes, p.Cluster.Racks, p.Cluster.Blocks = 100, 5, 40_000
	p.Duration = Duration(75 * time.Minute)
	p.SampleEvery = Duration(30 * time.Second)
	return p
}

func TestDeterministicForASeed(t *testing.T) {
	p := small()
	p.Scenario = "brownout"
	p.Duration = Duration(30 * time.Minute)
	a, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a.Samples, b.Samples) || a.CopiesStarted != b.CopiesStarted {
		t.Fatal("two runs with the same seed differ")
	}
	p.Seed = 2
	c, _ := Run(context.Background(), p)
	if reflect.DeepEqual(a.Samples, c.Samples) {
		t.Fatal("a different seed gave the very same run")
	}
}

// The story of the seed: the naive checker turns a two-minute brown-out into
// a storm that outlives it; the mitigated checker rides it out.
func TestBrownoutNaiveIsMetastableMitigatedRecovers(t *testing.T) {
	p := Defaults()
	p.Duration = Duration(75 * time.Minute)
	p.Scenario = "brownout"
	naive, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if naive.Verdict != Metastable {
		t.Errorf("naive: %s", naive.Summary())
	}
	if naive.PeakDeclared < p.Cluster.Nodes/2 || naive.CopiesStarted == 0 {
		t.Errorf("naive: no storm: %s", naive.Summary())
	}
	p.Mitigations = Recommended()
	mit, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if mit.Verdict != Recovered {
		t.Errorf("mitigated: %s", mit.Summary())
	}
	if mit.PeakDeclared > 0 {
		t.Errorf("mitigated: nodes declared dead during a brown-out: %s", mit.Summary())
	}
}

// A node that really dies is re-replicated and the cluster recovers, with
// or without mitigations; with them, the copies wait for the grace period.
func TestNodeDiesIsRepaired(t *testing.T) {
	p := small()
	p.Scenario = "node-dies"
	p.Mitigations = Recommended()
	r, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != Recovered {
		t.Fatalf("%s", r.Summary())
	}
	perNode := p.Cluster.Blocks * p.Cluster.ReplicationFactor / p.Cluster.Nodes
	if r.PeakUnder < perNode/2 || r.PeakUnder > perNode*2 {
		t.Errorf("peak under-replicated %d, want about %d (one node's blocks)", r.PeakUnder, perNode)
	}
	grace := 600 + 10
	if r.RecoveredAt-r.TriggerStart < float64(grace) {
		t.Errorf("recovered %gs after the death, before the grace period ended", r.RecoveredAt-r.TriggerStart)
	}
	if r.PeakAtRisk != 0 {
		t.Errorf("one dead node put %d blocks at risk (RF 3)", r.PeakAtRisk)
	}
}

// The per-node copy limit holds: never more copies in flight than nodes x limit.
func TestCopyLimitHolds(t *testing.T) {
	p := small()
	p.Scenario = "rack-power"
	p.Mitigations = Mitigations{PerNodeCopyLimit: 2}
	p.Duration = Duration(30 * time.Minute)
	r, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range r.Samples {
		if s.CopiesInFlight > 2*p.Cluster.Nodes {
			t.Fatalf("t=%g: %d copies in flight with a limit of 2 per node", s.T, s.CopiesInFlight)
		}
	}
	if r.CopiesStarted == 0 {
		t.Fatal("a rack lost power and nothing was copied")
	}
}

func TestCircuitBreakerCapsDeclarations(t *testing.T) {
	p := small()
	p.Scenario = "deploy"
	p.Events = nil
	p.Mitigations = Mitigations{CircuitBreaker: 0.05}
	p.Duration = Duration(30 * time.Minute)
	r, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	// 10% restart at once: the breaker (5%) trips before all of them are declared
	if r.PeakDeclared > p.Cluster.Nodes/10 {
		t.Errorf("breaker at 5%%: %d declared dead", r.PeakDeclared)
	}
}

func TestParams(t *testing.T) {
	p, err := ParseParams("p.yaml", strings.NewReader(`
cluster: {nodes: 50, racks: 5, blocks: 1000}
mitigations: {grace_period: 10m, per_node_copy_limit: 2}
scenario: rack-power
duration: 1h
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Cluster.Nodes != 50 || p.Cluster.ReplicationFactor != 3 || p.Mitigations.GracePeriod != Duration(10*time.Minute) ||
		len(p.Events) != 1 || p.Events[0].Kind != "rack-power" || p.Checker.MinReplicas != 3 {
		t.Fatalf("%+v", p)
	}
	bad := map[string]string{
		"cluster: {nodes: 1}":                           "cluster.nodes",
		"cluster: {nodez: 5}":                           "field nodez not found",
		"scenario: meteor":                              "unknown scenario",
		"duration: forever":                             "bad duration",
		"events: [{kind: brownout, at: 1m}]":            "brownout needs loss",
		"events: [{kind: node-dies, at: 9h, count: 1}]": "after the end",
		"mitigations: {circuit_breaker: 2}":             "circuit_breaker",
		"heartbeat: {interval: 10s, timeout: 5s}":       "heartbeat.timeout",
	}
	for src, want := range bad {
		_, err := ParseParams("p.yaml", strings.NewReader(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", src, err, want)
		}
	}
	m, err := MitigationByName(Mitigations{}, "grace")
	if err != nil || m.GracePeriod == 0 {
		t.Fatal(m, err)
	}
	if _, err := MitigationByName(m, "prayer"); err == nil {
		t.Fatal("unknown mitigation accepted")
	}
}

func TestOutputs(t *testing.T) {
	p := small()
	p.Duration = Duration(5 * time.Minute)
	r, err := Run(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if r.Verdict != Steady {
		t.Errorf("no fault: %s", r.Summary())
	}
	var csv, js bytes.Buffer
	if err := r.WriteCSV(&csv); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(csv.String()), "\n")
	if len(lines) != len(r.Samples)+1 || !strings.HasPrefix(lines[0], "t_seconds,under_replicated,") {
		t.Fatalf("CSV: %d lines, header %q", len(lines), lines[0])
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back["verdict"] != Steady {
		t.Fatalf("JSON: %v %v", err, back["verdict"])
	}
	svg, err := Chart("under_replicated", "u", r, r)
	if err != nil || !strings.Contains(svg, `id="u"`) {
		t.Fatalf("chart: %v", err)
	}
}

// The replica checker's CLD ships as a loops model: the vicious cycle is
// reinforcing and the mitigations that are loops are balancing.
func TestCLDShipsWithLoops(t *testing.T) {
	m, err := loops.Example("replica-checker")
	if err != nil {
		t.Fatal(err)
	}
	a, err := loops.Analyze(context.Background(), m, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, l := range a.Loops {
		found[l.Title] = l.Kind()
	}
	if found["re-replication storm"] != "reinforcing" || found["breaker"] != "balancing" || found["backoff"] != "balancing" {
		t.Fatalf("%v", found)
	}
}

// The parameter file in docs/replication.md parses, every field included.
func TestDocumentedParamsParse(t *testing.T) {
	f, err := os.Open("testdata/full.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := ParseParams("full.yaml", f)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cluster.Nodes != 1000 || len(p.Events) != 4 || p.Mitigations.CircuitBreaker != 0.25 || p.Heartbeat.Rejoin != Duration(time.Minute) {
		t.Fatalf("%+v", p)
	}
}
