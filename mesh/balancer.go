package mesh

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// Balancer picks one endpoint among candidates that are all allowed to take
// the request (healthy or in panic mode, not ejected, under their
// concurrency limit, not already tried). It is the pluggable piece of the
// load-balancing policy; health, locality and retries happen around it.
type Balancer interface {
	Pick(candidates []*Endpoint, now time.Time) *Endpoint
}

// NewBalancer returns the balancer named in a cluster's config.
func NewBalancer(name string, decay, defaultRTT time.Duration) Balancer {
	switch name {
	case "least_request":
		return LeastRequest{}
	case "round_robin":
		return &RoundRobin{}
	default:
		return P2CEWMA{Decay: decay, DefaultRTT: defaultRTT}
	}
}

// P2CEWMA is power of two choices over peak-EWMA latency, as in Linkerd: two
// endpoints are drawn at random and the one with the lower expected latency
// times (requests in flight + 1) wins. Drawing two keeps the choice cheap and
// avoids the herd that "always the best" causes; the EWMA makes it follow
// latency, so most requests go to the fastest endpoints.
type P2CEWMA struct {
	Decay      time.Duration
	DefaultRTT time.Duration
}

func (p P2CEWMA) cost(e *Endpoint, now time.Time) float64 {
	return e.Latency(now, p.Decay, p.DefaultRTT) * float64(e.inflight.Load()+1)
}

// Pick implements Balancer.
func (p P2CEWMA) Pick(c []*Endpoint, now time.Time) *Endpoint {
	switch len(c) {
	case 0:
		return nil
	case 1:
		return c[0]
	}
	i := rand.IntN(len(c))
	j := rand.IntN(len(c) - 1)
	if j >= i {
		j++
	}
	a, b := c[i], c[j]
	if p.cost(b, now) < p.cost(a, now) {
		return b
	}
	return a
}

// LeastRequest is power of two choices over requests in flight (Envoy's
// default least-request policy).
type LeastRequest struct{}

// Pick implements Balancer.
func (LeastRequest) Pick(c []*Endpoint, now time.Time) *Endpoint {
	switch len(c) {
	case 0:
		return nil
	case 1:
		return c[0]
	}
	i := rand.IntN(len(c))
	j := rand.IntN(len(c) - 1)
	if j >= i {
		j++
	}
	if c[j].inflight.Load() < c[i].inflight.Load() {
		return c[j]
	}
	return c[i]
}

// RoundRobin takes the candidates in turn: what HAProxy and nginx do by
// default, and the baseline the regions experiment compares against.
type RoundRobin struct{ n atomic.Uint64 }

// Pick implements Balancer.
func (r *RoundRobin) Pick(c []*Endpoint, now time.Time) *Endpoint {
	if len(c) == 0 {
		return nil
	}
	return c[int(r.n.Add(1)%uint64(len(c)))]
}
