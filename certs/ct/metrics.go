package ct

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the monitor's Prometheus metrics: the health of each log
// (backlog, age of its newest tree head) and of the log list, throughput,
// throttling and problems. A nil *Metrics records nothing.
type Metrics struct {
	Backlog     *prometheus.GaugeVec
	Position    *prometheus.GaugeVec
	TreeSize    *prometheus.GaugeVec
	STHTime     *prometheus.GaugeVec
	Entries     *prometheus.CounterVec
	Requests    *prometheus.GaugeVec
	Throttled   *prometheus.GaugeVec
	Problems    *prometheus.CounterVec
	Findings    prometheus.Counter
	LogListTime prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	l := []string{"log"}
	m := &Metrics{
		Backlog:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "srekit_ct_log_backlog_entries", Help: "Entries in the newest verified tree head not processed yet."}, l),
		Position:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "srekit_ct_log_position", Help: "Entries processed."}, l),
		TreeSize:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "srekit_ct_log_tree_size", Help: "Size of the newest verified tree head."}, l),
		STHTime:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "srekit_ct_log_sth_timestamp_seconds", Help: "Timestamp of the newest verified tree head (age = time() - this)."}, l),
		Entries:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_ct_entries_processed_total", Help: "Log entries processed."}, l),
		Requests:    prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "srekit_ct_log_requests", Help: "HTTP requests made to the log by this process."}, l),
		Throttled:   prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "srekit_ct_log_throttled", Help: "429/503 answers from the log to this process."}, l),
		Problems:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "srekit_ct_log_problems_total", Help: "Forks, bad signatures and inconsistencies found."}, []string{"log", "kind"}),
		Findings:    prometheus.NewCounter(prometheus.CounterOpts{Name: "srekit_ct_findings_total", Help: "New findings stored."}),
		LogListTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "srekit_ct_loglist_timestamp_seconds", Help: "log_list_timestamp of the log list in use (age = time() - this)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Backlog, m.Position, m.TreeSize, m.STHTime, m.Entries, m.Requests, m.Throttled, m.Problems, m.Findings, m.LogListTime)
	}
	return m
}

// LogList records the timestamp of the log list in use.
func (m *Metrics) LogList(t time.Time) {
	if m != nil && !t.IsZero() {
		m.LogListTime.Set(float64(t.Unix()))
	}
}

func (m *Metrics) treeHead(l *LogInfo, th *TreeHead, st *LogState) {
	if m == nil {
		return
	}
	m.TreeSize.WithLabelValues(l.Description).Set(float64(th.Size))
	m.STHTime.WithLabelValues(l.Description).Set(float64(th.Timestamp) / 1000)
	m.Backlog.WithLabelValues(l.Description).Set(float64(st.Backlog()))
}

func (m *Metrics) processed(l *LogInfo, n uint64, st *LogState) {
	if m == nil {
		return
	}
	m.Entries.WithLabelValues(l.Description).Add(float64(n))
	m.Position.WithLabelValues(l.Description).Set(float64(st.Position))
	m.Backlog.WithLabelValues(l.Description).Set(float64(st.Backlog()))
}

func (m *Metrics) observeFetcher(l *LogInfo, f *Fetcher) {
	if m == nil {
		return
	}
	m.Requests.WithLabelValues(l.Description).Set(float64(f.Requests.Load()))
	m.Throttled.WithLabelValues(l.Description).Set(float64(f.Throttled.Load()))
}

func (m *Metrics) problem(l *LogInfo, kind string) {
	if m != nil {
		m.Problems.WithLabelValues(l.Description, kind).Inc()
	}
}

func (m *Metrics) findings(n int) {
	if m != nil && n > 0 {
		m.Findings.Add(float64(n))
	}
}
