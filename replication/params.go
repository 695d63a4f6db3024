// Package replication simulates the replica checker of a distributed
// filesystem, the one in Laura Nolan's "My Little Distributed Filesystem":
//
//	for each block in filesystem.GetAllBlocks() {
//	    if block.replicasHeartbeatedOK() < minReplicas {
//	        block.StartCopyNewReplica()
//	    }
//	}
//
// Nodes sit in racks and hold block replicas; copies and client traffic share
// each node's network and disk; heartbeats travel over the same network and
// are late more often as a node's load passes its capacity. A small fault (a
// dead node, a rack power cut, a network brown-out, a deploy) can turn into a
// re-replication storm that outlives its trigger: a metastable failure. The
// mitigations real systems carry (HDFS, Ceph) are options, alone or combined,
// so one can see which of them break the loop.
//
// The simulator is aggregate where it can be and exact where it matters: the
// checker looks only at blocks with a replica on a node it believes dead,
// copies progress per destination node under processor sharing (one virtual
// clock per node, so a second of simulated time costs O(nodes), not
// O(copies)), and heartbeats are drawn per node. Runs are deterministic for a
// seed.
package replication

import (
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Duration is a time.Duration that reads "10s", "5m", "6h" in YAML and JSON.
type Duration time.Duration

// UnmarshalYAML reads a Go duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// MarshalYAML writes the duration as "1m30s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText writes the duration as "1m30s" (JSON).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Seconds is the duration in seconds.
func (d Duration) Seconds() float64 { return time.Duration(d).Seconds() }

func parseDuration(s string) (Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return 0, nil
	}
	if v, err := time.ParseDuration(s); err == nil {
		if v < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return Duration(v), nil
	}
	var secs float64
	if _, err := fmt.Sscanf(s, "%g", &secs); err == nil && fmt.Sprint(secs) == s && secs >= 0 && secs < 1e9 {
		return Duration(secs * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("bad duration %q (want e.g. 30s, 10m, 6h)", s)
}

// Cluster is the hardware and the data.
type Cluster struct {
	Nodes             int     `yaml:"nodes" json:"nodes"`
	Racks             int     `yaml:"racks" json:"racks"`
	Blocks            int     `yaml:"blocks" json:"blocks"`
	ReplicationFactor int     `yaml:"replication_factor" json:"replication_factor"`
	BlockMB           float64 `yaml:"block_mb" json:"block_mb"`
	// NetworkMBps and DiskMBps are each node's capacity in MB/s.
	NetworkMBps float64 `yaml:"network_mbps" json:"network_mbps"`
	DiskMBps    float64 `yaml:"disk_mbps" json:"disk_mbps"`
	// ClientLoad is the share of network capacity clients use on an average node.
	ClientLoad float64 `yaml:"client_load" json:"client_load"`
	// CopyStreamMBps is the most one copy moves per second when nothing competes.
	CopyStreamMBps float64 `yaml:"copy_stream_mbps" json:"copy_stream_mbps"`
	// MaxTransfers is how many copies a node serves at once before refusing
	// more (HDFS's transfer thread pool: 4096); it is not a mitigation.
	MaxTransfers int `yaml:"max_transfers" json:"max_transfers"`
	// CopyTimeout abandons a copy that has not finished; 0 (the default)
	// never does: like HDFS's pending-replication timeout, giving up on a
	// copy does not stop the transfer already under way.
	CopyTimeout Duration `yaml:"copy_timeout" json:"copy_timeout"`
	// ThrashStreams is the number of concurrent copy streams at which a
	// node's disks deliver half their throughput (spinning disks seek
	// between streams). 0: no thrashing.
	ThrashStreams int `yaml:"thrash_streams" json:"thrash_streams"`
}

// Heartbeat is how nodes prove they are alive.
type Heartbeat struct {
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout: a replica counts as "heartbeated OK" if its node's last
	// heartbeat arrived within this long.
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// The chance that a heartbeat is late grows with the node's load
	// (offered traffic over capacity) as a logistic curve centred on Knee
	// with this Width: 12% at Knee-2*Width, 50% at Knee, 88% at Knee+2*Width.
	Knee  float64 `yaml:"knee" json:"knee"`
	Width float64 `yaml:"width" json:"width"`
	// BaseLoss is the chance of a late heartbeat on an idle network.
	BaseLoss float64 `yaml:"base_loss" json:"base_loss"`
	// Rejoin is how long a node declared dead must be heard from again
	// before its replicas count again: it re-registers and sends a full
	// block report, as an HDFS datanode does.
	Rejoin Duration `yaml:"rejoin" json:"rejoin"`
}

// Checker is the replica checker loop.
type Checker struct {
	// Interval between passes over the blocks (the seed's "while true").
	Interval    Duration `yaml:"interval" json:"interval"`
	MinReplicas int      `yaml:"min_replicas" json:"min_replicas"` // the replication factor when 0
}

// Mitigations are the guards real systems put around the checker. The zero
// value is the naive checker of the seed.
type Mitigations struct {
	// GracePeriod is extra time without heartbeats before a node is declared
	// dead (HDFS: 10.5 minutes in all; Ceph: 600 s before "out").
	GracePeriod Duration `yaml:"grace_period" json:"grace_period"`
	// PerNodeCopyLimit caps copies a node sends or receives at once (HDFS:
	// 2, hard limit 4; Ceph: osd_max_backfills 1). 0: no limit.
	PerNodeCopyLimit int `yaml:"per_node_copy_limit" json:"per_node_copy_limit"`
	// CopyRateLimit caps copies started per second cluster-wide. 0: no limit.
	CopyRateLimit float64 `yaml:"copy_rate_limit" json:"copy_rate_limit"`
	// Priority copies blocks with fewest live replicas first.
	Priority bool `yaml:"priority" json:"priority"`
	// CircuitBreaker stops declaring nodes dead while more than this share of
	// nodes look dead at once (Ceph: mon_osd_min_in_ratio 0.75, i.e. 0.25).
	// 0: off.
	CircuitBreaker float64 `yaml:"circuit_breaker" json:"circuit_breaker"`
	// Backoff: after starting a copy for a block, wait before starting
	// another for it, doubling each time, with jitter. 0: off (the seed
	// starts a new copy on every pass while the block is short).
	Backoff    Duration `yaml:"backoff" json:"backoff"`
	BackoffMax Duration `yaml:"backoff_max" json:"backoff_max"`
}

// Any reports whether any mitigation is on.
func (m Mitigations) Any() bool { return m != Mitigations{} }

// Names lists the mitigations that are on, for labels.
func (m Mitigations) Names() []string {
	var out []string
	if m.GracePeriod > 0 {
		out = append(out, "grace "+time.Duration(m.GracePeriod).String())
	}
	if m.PerNodeCopyLimit > 0 {
		out = append(out, fmt.Sprintf("%d copies/node", m.PerNodeCopyLimit))
	}
	if m.CopyRateLimit > 0 {
		out = append(out, fmt.Sprintf("%g copies/s", m.CopyRateLimit))
	}
	if m.Priority {
		out = append(out, "priority")
	}
	if m.CircuitBreaker > 0 {
		out = append(out, fmt.Sprintf("breaker at %g%% dead", m.CircuitBreaker*100))
	}
	if m.Backoff > 0 {
		out = append(out, "jittered backoff")
	}
	return out
}

// Recommended is every mitigation at the settings HDFS and Ceph ship with.
func Recommended() Mitigations {
	return Mitigations{
		GracePeriod:      Duration(10 * time.Minute),
		PerNodeCopyLimit: 2,
		CopyRateLimit:    0,
		Priority:         true,
		CircuitBreaker:   0.25,
		Backoff:          Duration(30 * time.Second),
		BackoffMax:       Duration(10 * time.Minute),
	}
}

// MitigationByName turns a word into one mitigation on top of m.
func MitigationByName(m Mitigations, name string) (Mitigations, error) {
	r := Recommended()
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "grace", "grace-period", "grace_period":
		m.GracePeriod = r.GracePeriod
	case "copy-limit", "per-node-copy-limit", "node-limit", "limit":
		m.PerNodeCopyLimit = r.PerNodeCopyLimit
	case "rate-limit", "copy-rate-limit", "rate":
		m.CopyRateLimit = 200
	case "priority":
		m.Priority = true
	case "breaker", "circuit-breaker":
		m.CircuitBreaker = r.CircuitBreaker
	case "backoff", "jitter", "jittered-backoff":
		m.Backoff, m.BackoffMax = r.Backoff, r.BackoffMax
	case "all":
		r.CopyRateLimit = 200
		return r, nil
	case "none", "":
	default:
		return m, fmt.Errorf("unknown mitigation %q (want grace, copy-limit, rate-limit, priority, breaker, backoff, all or none)", name)
	}
	return m, nil
}

// Event is one fault.
type Event struct {
	// Kind: node-dies, rack-power, brownout, deploy.
	Kind string   `yaml:"kind" json:"kind"`
	At   Duration `yaml:"at" json:"at"`
	// Duration of the fault (rack power, brown-out, deploy restart time); a
	// node that dies stays dead.
	Duration Duration `yaml:"duration" json:"duration"`
	// Count of nodes (node-dies) or racks (rack-power).
	Count int `yaml:"count" json:"count"`
	// Loss is the extra heartbeat loss during a brown-out.
	Loss float64 `yaml:"loss" json:"loss"`
	// Fraction of nodes a deploy restarts.
	Fraction float64 `yaml:"fraction" json:"fraction"`
}

// Params is one simulation.
type Params struct {
	Cluster     Cluster     `yaml:"cluster" json:"cluster"`
	Heartbeat   Heartbeat   `yaml:"heartbeat" json:"heartbeat"`
	Checker     Checker     `yaml:"checker" json:"checker"`
	Mitigations Mitigations `yaml:"mitigations" json:"mitigations"`
	Scenario    string      `yaml:"scenario" json:"scenario"` // a named scenario, or "" with Events
	Events      []Event     `yaml:"events" json:"events"`
	Duration    Duration    `yaml:"duration" json:"duration"`
	// SampleEvery is how often the time series are recorded.
	SampleEvery Duration `yaml:"sample_every" json:"sample_every"`
	Seed        uint64   `yaml:"seed" json:"seed"`
}

// Defaults is a mid-sized cluster (200 nodes, 100,000 blocks) over two
// hours, the naive checker, and no fault.
func Defaults() Params {
	return Params{
		Cluster: Cluster{
			Nodes: 200, Racks: 10, Blocks: 100_000, ReplicationFactor: 3, BlockMB: 128,
			NetworkMBps: 1250, DiskMBps: 1000, ClientLoad: 0.4, CopyStreamMBps: 30,
			MaxTransfers: 4096, ThrashStreams: 256,
		},
		Heartbeat:   Heartbeat{Interval: Duration(3 * time.Second), Timeout: Duration(10 * time.Second), Knee: 1.0, Width: 0.05, BaseLoss: 0.001, Rejoin: Duration(time.Minute)},
		Checker:     Checker{Interval: Duration(30 * time.Second)},
		Duration:    Duration(2 * time.Hour),
		SampleEvery: Duration(10 * time.Second),
		Seed:        1,
	}
}

// Scenarios are the faults srekit knows by name, all starting 10 minutes in.
var Scenarios = map[string][]Event{
	"none":       nil,
	"node-dies":  {{Kind: "node-dies", At: Duration(10 * time.Minute), Count: 1}},
	"rack-power": {{Kind: "rack-power", At: Duration(10 * time.Minute), Duration: Duration(5 * time.Minute), Count: 1}},
	"brownout":   {{Kind: "brownout", At: Duration(10 * time.Minute), Duration: Duration(2 * time.Minute), Loss: 0.3}},
	"deploy":     {{Kind: "deploy", At: Duration(10 * time.Minute), Duration: Duration(2 * time.Minute), Fraction: 0.1}},
}

// ScenarioNames lists the named scenarios in a fixed order.
func ScenarioNames() []string {
	return []string{"node-dies", "rack-power", "brownout", "deploy", "none"}
}

// ParseParams reads YAML parameters over Defaults: only what is given changes.
func ParseParams(name string, r io.Reader) (Params, error) {
	p := Defaults()
	data, err := io.ReadAll(io.LimitReader(r, 1<<20))
	if err != nil {
		return p, fmt.Errorf("read %s: %w", name, err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && err != io.EOF {
		// one line: yaml lists several problems on several lines
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		var parts []string
		for _, l := range strings.Split(msg, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				parts = append(parts, l)
			}
		}
		return p, fmt.Errorf("%s: %s", name, strings.Join(parts, "; "))
	}
	if err := p.Validate(); err != nil {
		return p, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// Limits keep one run within a laptop's means.
const (
	MaxNodes  = 20_000
	MaxBlocks = 20_000_000
	MaxRF     = 10
	MaxHours  = 7 * 24
)

// Validate checks the parameters and fills in what depends on others.
func (p *Params) Validate() error {
	c := &p.Cluster
	switch {
	case c.Nodes < 2 || c.Nodes > MaxNodes:
		return fmt.Errorf("cluster.nodes must be 2 to %d, not %d", MaxNodes, c.Nodes)
	case c.Racks < 1 || c.Racks > c.Nodes:
		return fmt.Errorf("cluster.racks must be 1 to nodes (%d), not %d", c.Nodes, c.Racks)
	case c.Blocks < 1 || c.Blocks > MaxBlocks:
		return fmt.Errorf("cluster.blocks must be 1 to %d, not %d", MaxBlocks, c.Blocks)
	case c.ReplicationFactor < 1 || c.ReplicationFactor > MaxRF || c.ReplicationFactor > c.Nodes:
		return fmt.Errorf("cluster.replication_factor must be 1 to %d and at most the nodes, not %d", MaxRF, c.ReplicationFactor)
	case !(c.BlockMB > 0) || !(c.NetworkMBps > 0) || !(c.DiskMBps > 0) || !(c.CopyStreamMBps > 0):
		return fmt.Errorf("cluster block_mb, network_mbps, disk_mbps and copy_stream_mbps must be positive")
	case !(c.ClientLoad >= 0) || c.ClientLoad > 2:
		return fmt.Errorf("cluster.client_load must be 0 to 2, not %g", c.ClientLoad)
	case c.MaxTransfers < 1:
		return fmt.Errorf("cluster.max_transfers must be at least 1")
	case c.ThrashStreams < 0:
		return fmt.Errorf("cluster.thrash_streams must be 0 (off) or more")
	case p.Heartbeat.Interval < Duration(time.Second):
		return fmt.Errorf("heartbeat.interval must be at least 1s")
	case p.Heartbeat.Timeout < p.Heartbeat.Interval:
		return fmt.Errorf("heartbeat.timeout (%v) must be at least the interval (%v)", time.Duration(p.Heartbeat.Timeout), time.Duration(p.Heartbeat.Interval))
	case !(p.Heartbeat.Width > 0):
		return fmt.Errorf("heartbeat.width must be positive")
	case !(p.Heartbeat.BaseLoss >= 0 && p.Heartbeat.BaseLoss < 1):
		return fmt.Errorf("heartbeat.base_loss must be in [0, 1)")
	case p.Checker.Interval < Duration(time.Second):
		return fmt.Errorf("checker.interval must be at least 1s")
	case p.Checker.MinReplicas < 0 || p.Checker.MinReplicas > c.ReplicationFactor:
		return fmt.Errorf("checker.min_replicas must be 0 (the replication factor) to %d", c.ReplicationFactor)
	case p.Duration < Duration(time.Minute) || p.Duration > Duration(MaxHours*time.Hour):
		return fmt.Errorf("duration must be 1m to %dh", MaxHours)
	case p.SampleEvery < Duration(time.Second):
		return fmt.Errorf("sample_every must be at least 1s")
	case p.Mitigations.PerNodeCopyLimit < 0 || !(p.Mitigations.CopyRateLimit >= 0) || !(p.Mitigations.CircuitBreaker >= 0 && p.Mitigations.CircuitBreaker <= 1):
		return fmt.Errorf("mitigations: limits must be >= 0 and circuit_breaker a share in [0, 1]")
	}
	if p.Checker.MinReplicas == 0 {
		p.Checker.MinReplicas = c.ReplicationFactor
	}
	if p.Mitigations.Backoff > 0 && p.Mitigations.BackoffMax < p.Mitigations.Backoff {
		p.Mitigations.BackoffMax = p.Mitigations.Backoff * 16
	}
	if p.Scenario != "" {
		ev, ok := Scenarios[p.Scenario]
		if !ok {
			return fmt.Errorf("unknown scenario %q (want %s)", p.Scenario, strings.Join(ScenarioNames(), ", "))
		}
		if len(p.Events) == 0 {
			p.Events = append([]Event{}, ev...)
		}
	}
	for i, e := range p.Events {
		switch e.Kind {
		case "node-dies":
			if e.Count < 1 || e.Count > c.Nodes {
				return fmt.Errorf("events[%d]: node-dies count must be 1 to %d", i, c.Nodes)
			}
		case "rack-power":
			if e.Count < 1 || e.Count > c.Racks {
				return fmt.Errorf("events[%d]: rack-power count must be 1 to %d racks", i, c.Racks)
			}
			if e.Duration <= 0 {
				return fmt.Errorf("events[%d]: rack-power needs a duration", i)
			}
		case "brownout":
			if !(e.Loss > 0 && e.Loss <= 1) || e.Duration <= 0 {
				return fmt.Errorf("events[%d]: brownout needs loss in (0, 1] and a duration", i)
			}
		case "deploy":
			if !(e.Fraction > 0 && e.Fraction <= 1) || e.Duration <= 0 {
				return fmt.Errorf("events[%d]: deploy needs fraction in (0, 1] and a duration (the restart time)", i)
			}
		default:
			return fmt.Errorf("events[%d]: unknown kind %q (want node-dies, rack-power, brownout, deploy)", i, e.Kind)
		}
		if e.At >= p.Duration {
			return fmt.Errorf("events[%d]: at %v is after the end of the run (%v)", i, time.Duration(e.At), time.Duration(p.Duration))
		}
	}
	return nil
}
