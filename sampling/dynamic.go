package sampling

import (
	"math"
	"sort"
	"sync"
	"time"
)

// DynamicPolicy is a per-key sampler whose rates adapt (in the manner of
// Honeycomb Refinery's EMA dynamic sampler): it counts traces per key
// (service, operation, status, a root attribute...), smooths the counts with
// an exponential moving average every Interval, and gives each key a rate so
// that the total kept meets the goal — GoalRate (keep one trace in N
// overall) or TargetPerSec (traces per second) — while rare keys keep
// everything. The kept budget is shared out in proportion to the logarithm
// of each key's count, smallest keys first; a key whose share exceeds its
// count keeps all of it and the rest flows to the bigger keys.
//
// The rate is applied as a consistent probability (1/rate), so its keeps
// carry adjusted counts. Keys never seen before an adjustment keep all.
type DynamicPolicy struct {
	Key          keyFields
	GoalRate     float64
	TargetPerSec float64
	Interval     time.Duration
	Weight       float64 // EMA weight of the newest interval, (0, 1]
	MaxKeys      int
	// MinPerInterval raises each key's expected keeps per interval to at
	// least this (all of a smaller key), taken from the budget first; when
	// the floors exceed the budget the total kept exceeds the goal.
	MinPerInterval float64

	mu     sync.Mutex
	last   time.Time
	counts map[string]float64
	ema    map[string]float64
	rates  map[string]float64
}

func (p *DynamicPolicy) Evaluate(t *Trace, now time.Time) Threshold {
	k := p.Key.key(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.counts == nil {
		p.counts, p.ema, p.rates = map[string]float64{}, map[string]float64{}, map[string]float64{}
		p.last = now
	}
	if el := now.Sub(p.last); el >= p.Interval {
		p.adjust(el)
		p.last = now
	}
	if _, ok := p.counts[k]; !ok && len(p.counts) >= p.MaxKeys {
		k = "\x00other"
	}
	p.counts[k]++
	r := p.rates[k]
	if r <= 1 {
		return KeepAll
	}
	return ProbabilityThreshold(1 / r)
}

func (p *DynamicPolicy) adjust(elapsed time.Duration) {
	for k := range p.ema {
		if _, ok := p.counts[k]; !ok {
			p.counts[k] = 0
		}
	}
	var total float64
	type kc struct {
		k string
		c float64
	}
	keys := make([]kc, 0, len(p.counts))
	for k, c := range p.counts {
		e := c
		if old, ok := p.ema[k]; ok {
			e = p.Weight*c + (1-p.Weight)*old
		}
		if e < 0.01 {
			delete(p.ema, k)
			delete(p.rates, k)
			continue
		}
		p.ema[k] = e
		total += e
		keys = append(keys, kc{k, e})
	}
	clear(p.counts)
	var budget float64
	if p.TargetPerSec > 0 {
		budget = p.TargetPerSec * elapsed.Seconds()
	} else {
		budget = total / p.GoalRate
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].c < keys[j].c })
	var weights float64
	for _, x := range keys {
		weights += math.Log1p(x.c)
	}
	for _, x := range keys {
		w := math.Log1p(x.c)
		share := budget * w / weights
		weights -= w
		if share >= x.c || share <= 0 && budget >= x.c {
			p.rates[x.k] = 1
			budget -= x.c
			continue
		}
		if floor := math.Max(1, p.MinPerInterval); share < floor {
			// Every key keeps at least one trace per interval, or the
			// configured floor: a key's estimate from a handful of keeps
			// at 1/p each is skewed; from a dozen or more it is near-normal.
			if floor >= x.c {
				p.rates[x.k] = 1
				budget -= x.c
				continue
			}
			share = floor
		}
		p.rates[x.k] = x.c / share
		budget -= share
	}
}

// Rates returns the current rate (keep one in N) per key, for display.
func (p *DynamicPolicy) Rates() map[string]float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]float64, len(p.rates))
	for k, v := range p.rates {
		out[k] = v
	}
	return out
}
