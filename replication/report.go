package replication

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/srekit/srekit/chart"
)

// Metric is one time series a Result carries.
type Metric struct {
	Key   string // CSV column and JSON key
	Title string
	Unit  string
	Get   func(Sample) float64
}

// Metrics are the series, in the order CSV columns and charts use.
var Metrics = []Metric{
	{"under_replicated", "Under-replicated blocks", "blocks", func(s Sample) float64 { return float64(s.UnderReplicated) }},
	{"at_risk", "Blocks with one or zero live replicas (data at risk)", "blocks", func(s Sample) float64 { return float64(s.AtRisk) }},
	{"unavailable", "Blocks with no live replica", "blocks", func(s Sample) float64 { return float64(s.Unavailable) }},
	{"copy_mbps", "Copy traffic", "MB/s", func(s Sample) float64 { return s.CopyMBps }},
	{"client_mbps", "Client traffic served", "MB/s", func(s Sample) float64 { return s.ClientMBps }},
	{"copies_in_flight", "Copies in flight", "copies", func(s Sample) float64 { return float64(s.CopiesInFlight) }},
	{"mean_load", "Mean node load (offered / capacity)", "", func(s Sample) float64 { return s.MeanLoad }},
	{"max_load", "Highest node load", "", func(s Sample) float64 { return s.MaxLoad }},
	{"heartbeat_failures", "Late or lost heartbeats", "per second", func(s Sample) float64 { return s.HeartbeatFailures }},
	{"declared_dead", "Nodes declared dead", "nodes", func(s Sample) float64 { return float64(s.DeclaredDead) }},
	{"down", "Nodes really down", "nodes", func(s Sample) float64 { return float64(s.Down) }},
}

// MetricByKey finds a metric.
func MetricByKey(key string) (Metric, bool) {
	for _, m := range Metrics {
		if m.Key == key {
			return m, true
		}
	}
	return Metric{}, false
}

// WriteCSV writes one row per sample: time in seconds, then every metric.
func (r *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := []string{"t_seconds"}
	for _, m := range Metrics {
		head = append(head, m.Key)
	}
	cw.Write(head)
	for _, s := range r.Samples {
		row := []string{strconv.FormatFloat(s.T, 'f', 0, 64)}
		for _, m := range Metrics {
			row = append(row, strconv.FormatFloat(m.Get(s), 'g', 6, 64))
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the whole result.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	return enc.Encode(r)
}

// Label names a run for legends: "naive" or its mitigations.
func (r *Result) Label() string {
	names := r.Params.Mitigations.Names()
	if len(names) == 0 {
		return "naive"
	}
	if len(names) > 2 {
		return "mitigated"
	}
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// minutes labels an x axis in minutes as 0m, 30m, 1h, 1h30m.
func minutes(x float64) string {
	d := time.Duration(math.Round(x)) * time.Minute
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", d/time.Hour, (d%time.Hour)/time.Minute)
	}
	return fmt.Sprintf("%dm", d/time.Minute)
}

// Chart draws one metric for several runs on the same axes, with the fault's
// start and end marked in the title.
func Chart(metric string, id string, runs ...*Result) (string, error) {
	m, ok := MetricByKey(metric)
	if !ok {
		return "", fmt.Errorf("no metric %q", metric)
	}
	c := chart.Chart{Title: m.Title, XLabel: "minutes since start", YLabel: m.Unit, ID: id, FromZero: true, Height: 260, XFormat: minutes}
	colors := []string{"#d1495b", "#2e933c", "#0b63ce", "#edae49"}
	for i, r := range runs {
		s := chart.Series{Name: r.Label(), Color: colors[i%len(colors)]}
		for _, smp := range r.Samples {
			s.X = append(s.X, smp.T/60)
			s.Y = append(s.Y, m.Get(smp))
		}
		c.Series = append(c.Series, s)
	}
	return c.SVG(), nil
}

// ChartKeys are the metrics the demo and the web page draw.
var ChartKeys = []string{"under_replicated", "at_risk", "declared_dead", "copy_mbps", "mean_load", "heartbeat_failures"}
