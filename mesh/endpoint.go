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
	floorCur     float64 // lowest latency in the current window, seconds; 0: none
	floorPrev    float64 // lowest in the previous window
	floorStart   time.Time
	stamp        time.Time
	unhealthy    bool // from active health checks
	hcOK, hcBad  int
	ejectedUntil time.Time
	ejections    int
	lastEjected  time.Time
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

// floorWindow is the width of the windows the latency floor is kept over.
const floorWindow = 5 * time.Second

// observeFloor feeds the latency floor the locality preference compares
// regions by: the lowest latency seen over the last one or two windows. Noise
// (a busy host, a GC pause, queueing) only ever adds latency, so the floor
// tracks network distance the way TCP's min-RTT does; health checks feed it
// too, so regions that get no traffic still have a figure.
func (e *Endpoint) observeFloor(now time.Time, rtt time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.floorStart) >= floorWindow {
		if now.Sub(e.floorStart) < 2*floorWindow {
			e.floorPrev = e.floorCur
		} else {
			e.floorPrev = 0
		}
		e.floorCur, e.floorStart = 0, now
	}
	if v := rtt.Seconds(); e.floorCur == 0 || v < e.floorCur {
		e.floorCur = v
	}
}

// latencyFloor is the floor, or def when nothing recent was measured.
func (e *Endpoint) latencyFloor(now time.Time, def time.Duration) float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Sub(e.floorStart) >= 2*floorWindow {
		return def.Seconds()
	}
	f := e.floorCur
	if e.floorPrev > 0 && (f == 0 || e.floorPrev < f) {
		f = e.floorPrev
	}
	if f == 0 {
		return def.Seconds()
	}
	return f
}

// reset forgets the latency estimate, for an endpoint coming back from
// ejection or ill health: it is measured afresh instead of carrying a penalty.
func (e *Endpoint) resetLocked() {
	e.ewma, e.stamp = 0, time.Time{}
	e.floorCur, e.floorPrev, e.floorStart = 0, 0, time.Time{}
	e.consec5xx, e.consecConn = 0, 0
}
