package mesh

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the mesh's Prometheus metrics, on the admin listener's /metrics.
type metrics struct {
	reg       *prometheus.Registry
	upstream  *prometheus.HistogramVec // per attempt, by endpoint and region
	requests  *prometheus.HistogramVec // per client request, by cluster, region and code
	retries   *prometheus.CounterVec
	budgetOut *prometheus.CounterVec
	ejections *prometheus.CounterVec
	panics    *prometheus.CounterVec
	overflow  *prometheus.CounterVec
	conns     *prometheus.CounterVec
	reloads   *prometheus.CounterVec
	polls     *prometheus.CounterVec
}

var latencyBuckets = []float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .02, .03, .05, .075, .1, .15, .25, .5, 1, 2.5, 5, 10}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.upstream = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "srekit_mesh_upstream_duration_seconds", Help: "Time to response headers of each attempt to a backend, by endpoint and region.",
		Buckets: latencyBuckets}, []string{"cluster", "region", "endpoint", "outcome"})
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "srekit_mesh_request_duration_seconds", Help: "Time to serve each client request, by cluster, the region that answered and status code class.",
		Buckets: latencyBuckets}, []string{"cluster", "region", "code"})
	m.retries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_retries_total", Help: "Retries and hedges sent."}, []string{"cluster", "kind"})
	m.budgetOut = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_retry_budget_exhausted_total", Help: "Retries not sent because the retry budget was spent."}, []string{"cluster"})
	m.ejections = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_ejections_total", Help: "Endpoints ejected by outlier detection."}, []string{"cluster", "endpoint"})
	m.panics = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_panic_picks_total", Help: "Picks made in panic mode (too few healthy endpoints, health ignored)."}, []string{"cluster"})
	m.overflow = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_circuit_open_total", Help: "Requests refused because every endpoint was at its concurrency limit."}, []string{"cluster"})
	m.conns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_upstream_connections_total", Help: "Backend connections used by attempts: reused=true from the warm pool, false newly dialed."}, []string{"cluster", "reused"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_config_reloads_total", Help: "Config reloads by result."}, []string{"result"})
	m.polls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_mesh_loop_polls_total", Help: "Event loop polls that found work: how=spin while busy polling (busy_poll), how=wait by the ordinary poll, at once or after the loop parked and was woken."}, []string{"how"})
	m.reg.MustRegister(m.upstream, m.requests, m.retries, m.budgetOut, m.ejections, m.panics, m.overflow, m.conns, m.reloads, m.polls)
	return m
}

// histogram is a lock-free log-bucketed latency histogram (about 9% wide
// buckets from 1µs to 100s), cheap enough to record every request and
// precise enough for percentiles on a chart.
type histogram struct {
	buckets [histBuckets]atomic.Uint64
	sum     atomic.Uint64 // microseconds
}

const histPerOctave = 8
const histBuckets = 28 * histPerOctave

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		return 0
	}
	i := int(math.Log2(us) * histPerOctave)
	return min(i, histBuckets-1)
}

func bucketValue(i int) float64 { // upper bound, in ms
	return math.Exp2(float64(i+1)/histPerOctave) / 1000
}

func (h *histogram) record(d time.Duration) {
	h.buckets[bucketOf(d)].Add(1)
	h.sum.Add(uint64(d / time.Microsecond))
}

// Point is one interval of one region's timings.
type Point struct {
	T      time.Time `json:"t"`
	Count  uint64    `json:"count"`
	MeanMS float64   `json:"mean_ms"`
	P50MS  float64   `json:"p50_ms"`
	P90MS  float64   `json:"p90_ms"`
	P99MS  float64   `json:"p99_ms"`
}

func (h *histogram) point(t time.Time) Point {
	var counts [histBuckets]uint64
	var n uint64
	for i := range h.buckets {
		counts[i] = h.buckets[i].Load()
		n += counts[i]
	}
	p := Point{T: t, Count: n}
	if n == 0 {
		return p
	}
	p.MeanMS = float64(h.sum.Load()) / float64(n) / 1000
	q := func(f float64) float64 {
		rank := uint64(math.Ceil(f * float64(n)))
		var acc uint64
		for i, c := range counts {
			acc += c
			if acc >= rank {
				return bucketValue(i)
			}
		}
		return bucketValue(histBuckets - 1)
	}
	p.P50MS, p.P90MS, p.P99MS = q(.5), q(.9), q(.99)
	return p
}

// Timings keeps, per region that answered (and "all"), a series of
// per-interval latency percentiles of client requests: the data behind the
// talk's global timings chart.
type Timings struct {
	Interval time.Duration
	Keep     int

	mu      sync.RWMutex
	current map[string]*histogram
	series  map[string][]Point
	start   time.Time
}

// NewTimings returns timings with the given interval, keeping keep points.
func NewTimings(interval time.Duration, keep int) *Timings {
	return &Timings{Interval: interval, Keep: keep, current: map[string]*histogram{}, series: map[string][]Point{}, start: time.Now()}
}

// Record adds one client request served by region.
func (t *Timings) Record(region string, d time.Duration) {
	if region == "" {
		region = "unlabelled"
	}
	t.mu.RLock()
	h, all := t.current[region], t.current["all"]
	t.mu.RUnlock()
	if h == nil || all == nil {
		t.mu.Lock()
		if t.current[region] == nil {
			t.current[region] = &histogram{}
		}
		if t.current["all"] == nil {
			t.current["all"] = &histogram{}
		}
		h, all = t.current[region], t.current["all"]
		t.mu.Unlock()
	}
	h.record(d)
	all.record(d)
}

// Roll closes the current interval at now and starts the next one.
func (t *Timings) Roll(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for r, h := range t.current {
		s := append(t.series[r], h.point(now))
		if len(s) > t.Keep {
			s = s[len(s)-t.Keep:]
		}
		t.series[r] = s
	}
	t.current = map[string]*histogram{}
}

// TimingsReport is what /api/v1/mesh/timings returns.
type TimingsReport struct {
	IntervalSeconds float64          `json:"interval_seconds"`
	Regions         []RegionSeries   `json:"regions"`
	Endpoints       []EndpointStatus `json:"endpoints"`
}

// RegionSeries is one region's timings over time.
type RegionSeries struct {
	Region string  `json:"region"`
	Points []Point `json:"points"`
}

// Report returns the series, regions sorted with "all" first.
func (t *Timings) Report() TimingsReport {
	t.mu.RLock()
	defer t.mu.RUnlock()
	rep := TimingsReport{IntervalSeconds: t.Interval.Seconds(), Regions: []RegionSeries{}}
	for r, s := range t.series {
		rep.Regions = append(rep.Regions, RegionSeries{Region: r, Points: slices.Clone(s)})
	}
	slices.SortFunc(rep.Regions, func(a, b RegionSeries) int {
		if a.Region == "all" {
			return -1
		}
		if b.Region == "all" {
			return 1
		}
		if a.Region < b.Region {
			return -1
		}
		return 1
	})
	return rep
}
