package replication

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// Sample is the cluster at one moment.
type Sample struct {
	T float64 `json:"t"` // seconds since the start
	// As the checker sees them at its last pass:
	UnderReplicated int `json:"under_replicated"` // blocks with fewer than min replicas heartbeated OK
	AtRisk          int `json:"at_risk"`          // blocks with at most one such replica
	Unavailable     int `json:"unavailable"`      // blocks with none
	CopiesInFlight  int `json:"copies_in_flight"`
	// CopyMBps is the cluster's copy traffic; ClientMBps what clients got.
	CopyMBps   float64 `json:"copy_mbps"`
	ClientMBps float64 `json:"client_mbps"`
	// MeanLoad and MaxLoad are offered traffic over capacity across running nodes.
	MeanLoad float64 `json:"mean_load"`
	MaxLoad  float64 `json:"max_load"`
	// HeartbeatFailures is late or lost heartbeats per second over the sample.
	HeartbeatFailures float64 `json:"heartbeat_failures"`
	DeclaredDead      int     `json:"declared_dead"` // nodes the checker believes dead
	Down              int     `json:"down"`          // nodes really not running
}

// Verdict values.
const (
	Steady     = "steady"     // no fault and nothing happened
	Recovered  = "recovered"  // healthy again after the fault, and stayed so
	Metastable = "metastable" // still degraded long (30 min or more) after the fault ended
	Recovering = "recovering" // degraded at the end, but the fault ended too recently to say
)

// MetastableAfter is how long after its trigger ends a cluster must still be
// degraded to be called metastable.
const MetastableAfter = 30 * time.Minute

// Result is one run.
type Result struct {
	Params  Params   `json:"params"`
	Samples []Sample `json:"samples"`
	Verdict string   `json:"verdict"`
	// RecoveredAt is when the cluster became healthy for good (seconds), -1 if never.
	RecoveredAt  float64 `json:"recovered_at"`
	TriggerStart float64 `json:"trigger_start"`
	TriggerEnd   float64 `json:"trigger_end"`
	// Totals.
	CopiesStarted   int64 `json:"copies_started"`
	CopiesCompleted int64 `json:"copies_completed"`
	CopiesFailed    int64 `json:"copies_failed"`
	Declarations    int64 `json:"declarations"` // times a node was declared dead
	PeakUnder       int   `json:"peak_under_replicated"`
	PeakAtRisk      int   `json:"peak_at_risk"`
	PeakDeclared    int   `json:"peak_declared_dead"`
	// Elapsed is the wall time the run took.
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Headline is the verdict in a few words: "recovered 14m after the fault began".
func (r *Result) Headline() string {
	s, _, _ := strings.Cut(r.Summary(), ";")
	return s
}

// Summary is one line: the verdict and the peaks.
func (r *Result) Summary() string {
	s := r.Verdict
	switch r.Verdict {
	case Recovered:
		if r.PeakUnder == 0 && r.CopiesStarted == 0 {
			s += ": rode the fault out, no block ever looked under-replicated"
		} else {
			s += fmt.Sprintf(" %s after the fault began", fmtSeconds(r.RecoveredAt-r.TriggerStart))
		}
	case Metastable:
		s += fmt.Sprintf(": still degraded %s after the fault ended", fmtSeconds(r.Samples[len(r.Samples)-1].T-r.TriggerEnd))
	}
	return fmt.Sprintf("%s; peak %d under-replicated blocks, %d at risk, %d nodes declared dead; %d copies started, %d failed",
		s, r.PeakUnder, r.PeakAtRisk, r.PeakDeclared, r.CopiesStarted, r.CopiesFailed)
}

func fmtSeconds(s float64) string {
	return (time.Duration(math.Round(s)) * time.Second).String()
}

type copyRec struct {
	block  int32
	src    int32
	start  int32   // second started, for the timeout
	finish float64 // the destination's virtual clock value at which it completes
}

type cand struct {
	block int32
	ok    int8
}

type sim struct {
	p     Params
	rng   *rand.Rand
	n     int
	slots int
	// nodes
	rack       []int32
	rackNodes  [][]int32
	up         []bool
	declared   []bool
	lastHB     []int32
	heardSince []int32 // for a declared node: since when it has been heard again (-1: not)
	phase      []int32
	client     []float64 // client MB/s offered
	load       []float64
	nIn, nOut  []int32
	vclock     []float64
	queue      [][]copyRec
	qhead      []int
	nodeBlocks [][]int32
	// blocks
	repl    []int32 // blocks*slots, -1 = empty
	nextTry []int32
	tries   []uint8
	stamp   []uint32
	pass    uint32
	cands   []cand
	// faults
	brownLoss float64
	// counters
	hbFail                     int
	started, completed, failed int64
	declarations               int64
	under, atRisk, unavailable int
	tokens                     float64
}

// Run simulates one cluster with the parameters p (validated here).
func Run(ctx context.Context, p Params) (*Result, error) {
	return RunProgress(ctx, p, nil)
}

// RunProgress is Run calling progress(done, total) with simulated seconds now and then.
func RunProgress(ctx context.Context, p Params, progress func(done, total int)) (*Result, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	s := newSim(p)
	total := int(p.Duration.Seconds())
	every := int(p.SampleEvery.Seconds())
	res := &Result{Params: p, RecoveredAt: -1}
	res.TriggerStart, res.TriggerEnd = -1, -1
	for _, e := range p.Events {
		st, en := e.At.Seconds(), e.At.Seconds()+e.Duration.Seconds()
		if res.TriggerStart < 0 || st < res.TriggerStart {
			res.TriggerStart = st
		}
		if en > res.TriggerEnd {
			res.TriggerEnd = en
		}
	}
	checkEvery := int(p.Checker.Interval.Seconds())
	hbFailWindow := 0
	for t := 0; t <= total; t++ {
		if t&255 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if progress != nil {
				progress(t, total)
			}
		}
		s.events(int32(t))
		copyMBps, clientMBps, meanLoad, maxLoad := s.traffic(int32(t))
		s.heartbeats(int32(t))
		if t%checkEvery == 0 {
			s.checkerPass(int32(t))
		}
		hbFailWindow += s.hbFail
		s.hbFail = 0
		if t%every == 0 {
			declared, down, inFlight := 0, 0, 0
			for i := 0; i < s.n; i++ {
				if s.declared[i] {
					declared++
				}
				if !s.up[i] {
					down++
				}
				inFlight += int(s.nIn[i])
			}
			window := every
			if t == 0 {
				window = 1
			}
			smp := Sample{T: float64(t), UnderReplicated: s.under, AtRisk: s.atRisk, Unavailable: s.unavailable,
				CopiesInFlight: inFlight, CopyMBps: copyMBps, ClientMBps: clientMBps, MeanLoad: meanLoad, MaxLoad: maxLoad,
				HeartbeatFailures: float64(hbFailWindow) / float64(window), DeclaredDead: declared, Down: down}
			hbFailWindow = 0
			res.Samples = append(res.Samples, smp)
			res.PeakUnder = max(res.PeakUnder, smp.UnderReplicated)
			res.PeakAtRisk = max(res.PeakAtRisk, smp.AtRisk)
			res.PeakDeclared = max(res.PeakDeclared, smp.DeclaredDead)
		}
	}
	if progress != nil {
		progress(total, total)
	}
	res.CopiesStarted, res.CopiesCompleted, res.CopiesFailed, res.Declarations = s.started, s.completed, s.failed, s.declarations
	res.judge()
	res.Elapsed = time.Since(began)
	return res, nil
}

// healthy: nothing under-replicated, and no node that runs is believed dead.
func (s Sample) healthy() bool { return s.UnderReplicated == 0 && s.DeclaredDead <= s.Down }

func (r *Result) judge() {
	if len(r.Samples) == 0 {
		return
	}
	if r.TriggerStart < 0 {
		r.Verdict = Steady
		for _, s := range r.Samples {
			if !s.healthy() {
				r.Verdict = Recovering
			}
		}
		return
	}
	// the first moment after the trigger ended from which every sample is healthy
	last := len(r.Samples) - 1
	i := last
	for i >= 0 && r.Samples[i].healthy() && r.Samples[i].T >= r.TriggerEnd {
		i--
	}
	end := r.Samples[last]
	switch {
	case end.healthy() && i < last:
		r.Verdict = Recovered
		r.RecoveredAt = r.Samples[i+1].T
	case end.T-r.TriggerEnd >= MetastableAfter.Seconds():
		r.Verdict = Metastable
	default:
		r.Verdict = Recovering
	}
}

func newSim(p Params) *sim {
	c := p.Cluster
	n := c.Nodes
	s := &sim{p: p, n: n, rng: rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))}
	s.slots = c.ReplicationFactor + 3
	s.rack = make([]int32, n)
	s.rackNodes = make([][]int32, c.Racks)
	for i := 0; i < n; i++ {
		r := int32(i * c.Racks / n)
		s.rack[i] = r
		s.rackNodes[r] = append(s.rackNodes[r], int32(i))
	}
	s.up = make([]bool, n)
	s.declared = make([]bool, n)
	s.lastHB = make([]int32, n)
	s.heardSince = make([]int32, n)
	s.phase = make([]int32, n)
	s.client = make([]float64, n)
	s.load = make([]float64, n)
	s.nIn, s.nOut = make([]int32, n), make([]int32, n)
	s.vclock = make([]float64, n)
	s.queue = make([][]copyRec, n)
	s.qhead = make([]int, n)
	hb := int32(p.Heartbeat.Interval.Seconds())
	for i := 0; i < n; i++ {
		s.up[i] = true
		s.phase[i] = int32(s.rng.IntN(int(hb)))
		// client demand varies by node, 0.8x to 1.2x the average
		s.client[i] = c.ClientLoad * c.NetworkMBps * (0.8 + 0.4*s.rng.Float64())
	}
	// Placement as HDFS does it: first replica anywhere, second on another
	// rack, third on the second's rack, any more anywhere.
	b := c.Blocks
	s.repl = make([]int32, b*s.slots)
	for i := range s.repl {
		s.repl[i] = -1
	}
	counts := make([]int32, n)
	for blk := 0; blk < b; blk++ {
		row := s.repl[blk*s.slots : blk*s.slots+s.slots]
		for k := 0; k < c.ReplicationFactor; k++ {
			var node int32
			for tries := 0; ; tries++ {
				switch {
				case k == 1 && c.Racks > 1 && tries < 20:
					r := s.rng.IntN(c.Racks - 1)
					if int32(r) >= s.rack[row[0]] {
						r++
					}
					rn := s.rackNodes[r]
					node = rn[s.rng.IntN(len(rn))]
				case k == 2 && tries < 20:
					rn := s.rackNodes[s.rack[row[1]]]
					node = rn[s.rng.IntN(len(rn))]
				default:
					node = int32(s.rng.IntN(n))
				}
				if !holds(row[:k], node) {
					break
				}
			}
			row[k] = node
			counts[node]++
		}
	}
	s.nodeBlocks = make([][]int32, n)
	for i := range s.nodeBlocks {
		s.nodeBlocks[i] = make([]int32, 0, counts[i]+counts[i]/8)
	}
	for blk := 0; blk < b; blk++ {
		for _, node := range s.repl[blk*s.slots : blk*s.slots+c.ReplicationFactor] {
			s.nodeBlocks[node] = append(s.nodeBlocks[node], int32(blk))
		}
	}
	s.nextTry = make([]int32, b)
	s.tries = make([]uint8, b)
	s.stamp = make([]uint32, b)
	return s
}

func holds(row []int32, node int32) bool {
	for _, r := range row {
		if r == node {
			return true
		}
	}
	return false
}

// events applies the faults that begin or end at second t.
func (s *sim) events(t int32) {
	for i, e := range s.p.Events {
		at := int32(e.At.Seconds())
		end := at + int32(e.Duration.Seconds())
		switch e.Kind {
		case "node-dies":
			if t == at {
				// the nodes that die are chosen from the seed, the same each run
				r := rand.New(rand.NewPCG(s.p.Seed+uint64(i)+1, 7))
				for _, k := range r.Perm(s.n)[:e.Count] {
					s.down(int32(k), t)
				}
			}
		case "rack-power":
			r := rand.New(rand.NewPCG(s.p.Seed+uint64(i)+1, 11))
			racks := r.Perm(len(s.rackNodes))[:e.Count]
			for _, rk := range racks {
				for _, k := range s.rackNodes[rk] {
					if t == at {
						s.down(k, t)
					} else if t == end {
						s.upAgain(k, t)
					}
				}
			}
		case "brownout":
			if t == at {
				s.brownLoss = e.Loss
			} else if t == end {
				s.brownLoss = 0
			}
		case "deploy":
			r := rand.New(rand.NewPCG(s.p.Seed+uint64(i)+1, 13))
			k := int(math.Round(e.Fraction * float64(s.n)))
			for _, node := range r.Perm(s.n)[:max(k, 1)] {
				if t == at {
					s.down(int32(node), t)
				} else if t == end {
					s.upAgain(int32(node), t)
				}
			}
		}
	}
}

// down stops a node: copies into it fail now; copies out of it fail when
// they would have finished.
func (s *sim) down(node int32, t int32) {
	if !s.up[node] {
		return
	}
	s.up[node] = false
	q := s.queue[node][s.qhead[node]:]
	for _, c := range q {
		s.nOut[c.src]--
		s.failed++
	}
	s.queue[node] = s.queue[node][:0]
	s.qhead[node] = 0
	s.nIn[node] = 0
}

func (s *sim) upAgain(node int32, t int32) {
	if s.up[node] {
		return
	}
	s.up[node] = true
	s.lastHB[node] = t // it heartbeats as soon as it is up
}

// traffic shares each node's network and disk between clients and copies,
// advances every copy, and completes or abandons those that are due.
func (s *sim) traffic(t int32) (copyMBps, clientMBps, meanLoad, maxLoad float64) {
	c := s.p.Cluster
	stream := c.CopyStreamMBps
	running := 0
	// loads first: a node's load is its offered traffic over capacity
	srcScaleSum, srcWeight := 0.0, 0.0
	for i := 0; i < s.n; i++ {
		if !s.up[i] {
			s.load[i] = 0
			continue
		}
		streams := float64(s.nIn[i] + s.nOut[i])
		copies := streams * stream
		net := (s.client[i] + copies) / c.NetworkMBps
		diskCap := c.DiskMBps
		if c.ThrashStreams > 0 {
			diskCap /= 1 + streams/float64(c.ThrashStreams)
		}
		disk := (s.client[i] + copies) / diskCap
		l := math.Max(net, disk)
		s.load[i] = l
		meanLoad += l
		maxLoad = math.Max(maxLoad, l)
		running++
		clientMBps += s.client[i] * math.Min(1, 1/l)
		if s.nOut[i] > 0 {
			srcScaleSum += float64(s.nOut[i]) * math.Min(1, 1/l)
			srcWeight += float64(s.nOut[i])
		}
	}
	if running > 0 {
		meanLoad /= float64(running)
	}
	srcScale := 1.0
	if srcWeight > 0 {
		srcScale = srcScaleSum / srcWeight
	}
	timeout := int32(s.p.Cluster.CopyTimeout.Seconds())
	for d := 0; d < s.n; d++ {
		if !s.up[d] || s.nIn[d] == 0 {
			continue
		}
		// processor sharing: every copy into d moves at the same rate, so they
		// finish in the order they started, and a virtual clock per node is enough
		rate := stream * math.Min(1, math.Min(1/s.load[d], srcScale))
		s.vclock[d] += rate
		copyMBps += rate * float64(s.nIn[d])
		q := s.queue[d]
		h := s.qhead[d]
		for h < len(q) {
			cp := q[h]
			if cp.finish <= s.vclock[d] {
				s.finish(d, cp, true)
			} else if timeout > 0 && t-cp.start >= timeout {
				s.finish(d, cp, false)
			} else {
				break
			}
			h++
		}
		if h == len(q) {
			s.queue[d] = q[:0]
			s.qhead[d] = 0
		} else {
			if h > 4096 && h > len(q)/2 { // compact now and then
				n := copy(q, q[h:])
				s.queue[d] = q[:n]
				h = 0
			}
			s.qhead[d] = h
		}
	}
	return
}

func (s *sim) finish(d int, cp copyRec, ok bool) {
	s.nIn[d]--
	s.nOut[cp.src]--
	if !ok || !s.up[cp.src] {
		s.failed++
		return
	}
	s.completed++
	blk := int(cp.block)
	row := s.repl[blk*s.slots : blk*s.slots+s.slots]
	if holds(row, int32(d)) {
		return // a duplicate copy: wasted work
	}
	placed := false
	for k, r := range row {
		if r < 0 {
			row[k] = int32(d)
			placed = true
			break
		}
	}
	if !placed { // every slot taken: the new replica replaces one on a node believed dead
		for k, r := range row {
			if s.declared[r] {
				row[k] = int32(d)
				placed = true
				break
			}
		}
	}
	if placed {
		s.nodeBlocks[d] = append(s.nodeBlocks[d], cp.block)
		s.tries[blk] = 0
	}
}

// lateChance is the probability that a heartbeat from a node at this load
// arrives too late (or not at all).
func (s *sim) lateChance(load float64) float64 {
	h := s.p.Heartbeat
	x := (load - h.Knee) / h.Width
	sig := 1 / (1 + math.Exp(-x))
	return 1 - (1-h.BaseLoss)*(1-sig)*(1-s.brownLoss)
}

// heartbeats draws each due heartbeat, then declares nodes dead (or alive
// again) the way the checker sees them.
func (s *sim) heartbeats(t int32) {
	hb := int32(s.p.Heartbeat.Interval.Seconds())
	for i := 0; i < s.n; i++ {
		if !s.up[i] || (t+s.phase[i])%hb != 0 {
			continue
		}
		if s.rng.Float64() < s.lateChance(s.load[i]) {
			s.hbFail++
		} else {
			s.lastHB[i] = t
		}
	}
	timeout := int32(s.p.Heartbeat.Timeout.Seconds())
	deadAfter := timeout + int32(s.p.Mitigations.GracePeriod.Seconds())
	rejoin := int32(s.p.Heartbeat.Rejoin.Seconds())
	lookingDead := 0
	for i := 0; i < s.n; i++ {
		if t-s.lastHB[i] > timeout {
			lookingDead++
		}
	}
	breakerOpen := s.p.Mitigations.CircuitBreaker > 0 && float64(lookingDead) > s.p.Mitigations.CircuitBreaker*float64(s.n)
	for i := 0; i < s.n; i++ {
		silent := t - s.lastHB[i]
		switch {
		case s.declared[i] && silent <= timeout:
			// heard again: after re-registering and a block report, its replicas count again
			if s.heardSince[i] < 0 {
				s.heardSince[i] = t
			}
			if t-s.heardSince[i] >= rejoin {
				s.declared[i] = false
			}
		case s.declared[i]:
			s.heardSince[i] = -1
		case silent > deadAfter && !breakerOpen:
			s.declared[i] = true
			s.heardSince[i] = -1
			s.declarations++
		}
	}
}

// checkerPass is the seed's loop: every block with fewer than minReplicas
// replicas on nodes that heartbeated OK gets a new copy started. Only blocks
// with a replica on a node believed dead can be short, so only those are
// visited.
func (s *sim) checkerPass(t int32) {
	p := s.p
	s.pass++
	s.cands = s.cands[:0]
	s.under, s.atRisk, s.unavailable = 0, 0, 0
	minRep := p.Checker.MinReplicas
	visit := 0
	for d := 0; d < s.n; d++ {
		if s.declared[d] {
			visit += len(s.nodeBlocks[d])
		}
	}
	if visit > len(s.stamp)/2 {
		// so many nodes are believed dead that a straight scan of every block
		// (as the seed does) is cheaper than following the nodes' lists
		s.scanAll(minRep)
	} else {
		s.scanDeclared(minRep)
	}
	s.startCopies(t)
}

// scanAll checks every block.
func (s *sim) scanAll(minRep int) {
	nb := len(s.stamp)
	for b := 0; b < nb; b++ {
		row := s.repl[b*s.slots : b*s.slots+s.slots]
		ok := 0
		for _, r := range row {
			if r >= 0 && !s.declared[r] {
				ok++
			}
		}
		if ok < minRep {
			s.short(int32(b), ok)
		}
	}
}

func (s *sim) short(b int32, ok int) {
	s.under++
	if ok <= 1 {
		s.atRisk++
	}
	if ok == 0 {
		s.unavailable++
		return // nothing to copy from
	}
	s.cands = append(s.cands, cand{b, int8(ok)})
}

// scanDeclared checks the blocks that have a replica on a node believed dead.
func (s *sim) scanDeclared(minRep int) {
	for d := 0; d < s.n; d++ {
		if !s.declared[d] {
			continue
		}
		list := s.nodeBlocks[d]
		w := 0
		for _, b := range list {
			row := s.repl[int(b)*s.slots : int(b)*s.slots+s.slots]
			if !holds(row, int32(d)) {
				continue // the replica was replaced: drop the stale entry
			}
			list[w] = b
			w++
			if s.stamp[b] == s.pass {
				continue
			}
			s.stamp[b] = s.pass
			ok := 0
			for _, r := range row {
				if r >= 0 && !s.declared[r] {
					ok++
				}
			}
			if ok < minRep {
				s.short(b, ok)
			}
		}
		s.nodeBlocks[d] = list[:w]
	}
}

// startCopies starts copies for the short blocks found by the pass.
func (s *sim) startCopies(t int32) {
	p := s.p
	m := p.Mitigations
	minRep := p.Checker.MinReplicas
	if m.Priority {
		// counting sort by live replicas: fewest first
		buckets := make([][]cand, minRep+1)
		for _, c := range s.cands {
			buckets[c.ok] = append(buckets[c.ok], c)
		}
		s.cands = s.cands[:0]
		for _, b := range buckets {
			s.cands = append(s.cands, b...)
		}
	}
	if m.CopyRateLimit > 0 {
		s.tokens = math.Min(s.tokens+m.CopyRateLimit*p.Checker.Interval.Seconds(), m.CopyRateLimit*p.Checker.Interval.Seconds())
	}
	for _, c := range s.cands {
		if m.CopyRateLimit > 0 && s.tokens < 1 {
			break
		}
		if m.Backoff > 0 && s.nextTry[c.block] > t {
			continue
		}
		if s.startCopy(c.block, t) && m.CopyRateLimit > 0 {
			s.tokens--
		}
	}
}

// startCopy picks a source among the replicas the checker believes alive and
// a destination not believed dead that does not hold the block, honouring
// the limits, and starts the copy.
func (s *sim) startCopy(b int32, t int32) bool {
	p := s.p
	m := p.Mitigations
	row := s.repl[int(b)*s.slots : int(b)*s.slots+s.slots]
	limit := int32(p.Cluster.MaxTransfers)
	if m.PerNodeCopyLimit > 0 && int32(m.PerNodeCopyLimit) < limit {
		limit = int32(m.PerNodeCopyLimit)
	}
	var srcs [16]int32
	ns := 0
	for _, r := range row {
		if r >= 0 && !s.declared[r] && s.nOut[r] < limit && ns < len(srcs) {
			srcs[ns] = r
			ns++
		}
	}
	if ns == 0 {
		return false
	}
	src := srcs[s.rng.IntN(ns)]
	dst := int32(-1)
	for tries := 0; tries < 6; tries++ {
		d := int32(s.rng.IntN(s.n))
		if s.declared[d] || holds(row, d) || s.nIn[d] >= limit {
			continue
		}
		dst = d
		break
	}
	if dst < 0 {
		return false
	}
	s.started++
	if m.Backoff > 0 {
		k := min(int(s.tries[b]), 16)
		if s.tries[b] < 255 {
			s.tries[b]++
		}
		wait := math.Min(m.Backoff.Seconds()*math.Pow(2, float64(k)), m.BackoffMax.Seconds())
		wait *= 0.5 + s.rng.Float64() // jitter: 0.5x to 1.5x
		s.nextTry[b] = t + int32(math.Ceil(wait))
	}
	if !s.up[src] || !s.up[dst] {
		s.failed++ // connection refused: the checker did not know yet
		return true
	}
	s.queue[dst] = append(s.queue[dst], copyRec{block: b, src: src, start: t, finish: s.vclock[dst] + p.Cluster.BlockMB})
	s.nIn[dst]++
	s.nOut[src]++
	return true
}
