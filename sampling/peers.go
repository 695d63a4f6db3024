package sampling

import (
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Peers spreads the load over several samplers by trace ID, so that each
// trace is buffered and decided by exactly one of them: its owner, chosen
// by rendezvous (highest random weight) hashing of the trace ID over the
// members. A sampler forwards spans it does not own to their owner over
// OTLP/gRPC. Rendezvous hashing moves only the traces of a member that
// joins or leaves; and for a grace period after a change, traces stay with
// their previous owner when it is still a member, so traces already being
// decided (and their late spans) keep their decision.
type Peers struct {
	self  string
	grace time.Duration
	log   *slog.Logger
	now   func() time.Time

	mu        sync.Mutex
	members   []string
	previous  []string
	changedAt time.Time
	exporters map[string]*Exporter
}

// NewPeers routes for self among members (addresses of the peers' OTLP/gRPC receivers).
func NewPeers(self string, members []string, grace time.Duration, log *slog.Logger) *Peers {
	if log == nil {
		log = slog.Default()
	}
	p := &Peers{self: self, grace: grace, log: log, now: time.Now, exporters: map[string]*Exporter{}}
	p.members = append([]string(nil), members...)
	return p
}

// EnablePeers makes the sampler forward spans it does not own.
func (s *Sampler) EnablePeers(p *Peers) { s.peers = p }

// SetMembers changes the membership; the previous one keeps routing traces
// whose owner is still a member for the grace period.
func (p *Peers) SetMembers(members []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.previous = p.members
	p.members = append([]string(nil), members...)
	p.changedAt = p.now()
}

// Owner returns the member that owns trace id.
func (p *Peers) Owner(id pcommon.TraceID) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ownerLocked(id)
}

func (p *Peers) ownerLocked(id pcommon.TraceID) string {
	owner := rendezvous(id, p.members)
	if p.previous != nil && p.now().Sub(p.changedAt) < p.grace {
		old := rendezvous(id, p.previous)
		for _, m := range p.members {
			if m == old {
				return old
			}
		}
	}
	return owner
}

// rendezvous picks the member with the highest hash of (member, trace ID).
func rendezvous(id pcommon.TraceID, members []string) string {
	var best string
	var bestW uint64
	for _, m := range members {
		h := fnv.New64a()
		h.Write([]byte(m))
		h.Write(id[:])
		w := h.Sum64()
		w ^= w >> 33
		w *= 0xff51afd7ed558ccd
		w ^= w >> 33
		if best == "" || w > bestW || (w == bestW && m < best) {
			best, bestW = m, w
		}
	}
	return best
}

// Route forwards the fragments owned by other members (as they were
// received, encoded) and returns the rest.
func (p *Peers) Route(frags []*fragment) []*fragment {
	p.mu.Lock()
	if len(p.members) <= 1 {
		p.mu.Unlock()
		return frags
	}
	type dest struct {
		body  []byte
		spans int
	}
	out := map[string]*dest{}
	mine := frags[:0:0]
	for _, f := range frags {
		owner := p.ownerLocked(f.id)
		if owner == p.self {
			mine = append(mine, f)
			continue
		}
		d := out[owner]
		if d == nil {
			d = &dest{}
			out[owner] = d
		}
		d.body = f.encoded(d.body)
		d.spans += f.sum.spans
	}
	var sends []func()
	for owner, d := range out {
		exp := p.exporterLocked(owner)
		d := d
		sends = append(sends, func() { exp.Emit(d.body, d.spans) })
	}
	p.mu.Unlock()
	for _, f := range sends {
		f()
	}
	return mine
}

func (p *Peers) exporterLocked(addr string) *Exporter {
	if e := p.exporters[addr]; e != nil {
		return e
	}
	e, err := NewExporter(ExporterConfig{Protocol: "grpc", Endpoint: addr, QueueSize: 1000, Workers: 2,
		Timeout: 5 * time.Second, Retry: RetryConfig{50 * time.Millisecond, 2 * time.Second, 30 * time.Second}}, p.log)
	if err != nil {
		// grpc.NewClient only fails on a malformed target, which the config
		// check rejects; fall back to a discarding exporter.
		p.log.Error("peer exporter", "peer", addr, "err", err)
		e, _ = NewExporter(ExporterConfig{}, p.log)
	}
	e.Start()
	p.exporters[addr] = e
	return e
}

// Close drains the forwarding queues.
func (p *Peers) Close() {
	p.mu.Lock()
	exps := p.exporters
	p.exporters = map[string]*Exporter{}
	p.mu.Unlock()
	for _, e := range exps {
		e.Close()
	}
}
