package mesh

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Endpoint is one backend address with what the mesh has learned about it:
// requests in flight, a peak-EWMA of latency, health from active checks and
// ejection from passive outlier detection. An Endpoint survives config
// reloads while its address stays in its cluster, so its warm connections and
// its statistics carry over.
type Endpoint struct {
	Addr   string
	Region string
	Zone   string

	inflight atomic.Int64
	requests atomic.Int64
	failures atomic.Int64

	mu           sync.Mutex
	ewma         float64 // seconds
	avg          float64 // plain moving average, seconds; 0 until measured
	stamp        time.Time
	unhealthy    bool // from active health checks
	hcOK, hcBad  int
	ejectedUntil time.Time
	ejections    int
	consec5xx    int
	consecConn   int
}

// EndpointStatus is a snapshot of an endpoint for the admin API and the page.
type EndpointStatus struct {
	Addr         string    `json:"addr"`
	Region       string    `json:"region"`
	Zone         string    `json:"zone"`
	InFlight     int64     `json:"in_flight"`
	Requests     int64     `json:"requests"`
	Failures     int64     `json:"failures"`
	EWMAms       float64   `json:"ewma_ms"`
	Healthy      bool      `json:"healthy"`
	Ejected      bool      `json:"ejected"`
	EjectedUntil time.Time `json:"ejected_until,omitzero"`
	Ejections    int       `json:"ejections"`
}

// Status returns a snapshot.
func (e *Endpoint) Status(now time.Time) EndpointStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	st := EndpointStatus{Addr: e.Addr, Region: e.Region, Zone: e.Zone,
		InFlight: e.inflight.Load(), Requests: e.requests.Load(), Failures: e.failures.Load(),
		EWMAms: e.ewma * 1000, Healthy: !e.unhealthy, Ejections: e.ejections}
	if now.Before(e.ejectedUntil) {
		st.Ejected, st.EjectedUntil = true, e.ejectedUntil
	}
	return st
}

// InFlight is the number of requests being served by the endpoint now.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// available reports whether the endpoint may take traffic (healthy, not ejected).
func (e *Endpoint) available(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.ejectedUntil.IsZero() && !now.Before(e.ejectedUntil) {
		// Back from ejection: measure it afresh rather than carry the penalty.
		e.ejectedUntil = time.Time{}
		e.resetLocked()
	}
	return !e.unhealthy && e.ejectedUntil.IsZero()
}

// Latency returns the endpoint's peak-EWMA latency estimate, decayed to now;
// def when nothing has been measured.
func (e *Endpoint) Latency(now time.Time, tau, def time.Duration) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.latencyLocked(now, tau, def)
}

func (e *Endpoint) latencyLocked(now time.Time, tau, def time.Duration) float64 {
	if e.stamp.IsZero() {
		return def.Seconds()
	}
	// An endpoint that gets no traffic drifts back towards the default, so
	// one penalised long ago is probed again rather than shunned forever.
	dt := now.Sub(e.stamp).Seconds()
	if dt <= 0 {
		return e.ewma
	}
	w := math.Exp(-dt / tau.Seconds())
	return e.ewma*w + def.Seconds()*(1-w)
}

// observe records one attempt's latency: the peak-EWMA jumps to any value
// above the estimate and decays towards lower ones with time constant tau, so
// that a slowing endpoint loses traffic at once and a recovering one regains
// it gradually (Linkerd's peak-EWMA).
func (e *Endpoint) observe(now time.Time, rtt time.Duration, tau time.Duration) {
	v := rtt.Seconds()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stamp.IsZero() || v > e.ewma {
		e.ewma, e.stamp = v, now
		return
	}
	dt := now.Sub(e.stamp).Seconds()
	if dt < 0 {
		dt = 0
	}
	w := math.Exp(-dt / tau.Seconds())
	e.ewma = e.ewma*w + v*(1-w)
	e.stamp = now
}

// observeAvg feeds the plain moving average the locality preference
// compares regions by: unlike the peak-EWMA it is not thrown by one slow
// request, and health checks feed it too, so regions that get no traffic
// still have a latency to compare with.
func (e *Endpoint) observeAvg(rtt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.avg == 0 {
		e.avg = rtt.Seconds()
		return
	}
	e.avg = 0.9*e.avg + 0.1*rtt.Seconds()
}

// averageLatency is the plain moving average, or def when unmeasured.
func (e *Endpoint) averageLatency(def time.Duration) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.avg == 0 {
		return def.Seconds()
	}
	return e.avg
}

// reset forgets the latency estimate, for an endpoint coming back from
// ejection or ill health: it is measured afresh instead of carrying a penalty.
func (e *Endpoint) resetLocked() {
	e.ewma, e.stamp, e.avg = 0, time.Time{}, 0
	e.consec5xx, e.consecConn = 0, 0
}
