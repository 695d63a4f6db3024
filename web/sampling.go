package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"time"

	"github.com/srekit/srekit/chart"
	"github.com/srekit/srekit/sampling/eval"
	"github.com/srekit/srekit/store"
)

func init() {
	Register(Part{
		Slug:    "sampling",
		Title:   "Sampling",
		Summary: "tail trace sampler: every error and slow trace kept, memory bounded in bytes, unbiased adjusted counts",
		Order:   40,
		Mount:   mountSampling,
		Demo:    samplingDemo,
	})
}

// samplingDemo runs a small real evaluation (OTLP over loopback) so the page
// has a scorecard and a time series to show.
func samplingDemo(ctx context.Context, st *store.Store) error {
	res, err := eval.Run(ctx, eval.Options{
		// Small and fast: every `serve --demo` (and browser tests with demo
		// data) runs it.
		Workload: eval.WorkloadConfig{Seed: 1, Traces: 2000, Duration: 10 * time.Second, HugeTraces: 1, HugeSpans: 1500},
		Speedup:  40,
		SamplerConfig: `
buffer: {decision_wait: 50ms, trace_timeout: 300ms, max_spans_per_trace: 1000}
policies:
  - {name: errors, errors: {}}
  - {name: slow, latency: {quantile: 0.97, window: 1m, min_samples: 20}}
  - {name: dynamic, dynamic: {key: [service, operation, status], goal_rate: 20, interval: 100ms}}
`,
	})
	if err != nil {
		return err
	}
	_, err = eval.Save(ctx, st, res)
	return err
}

func mountSampling(s *Server) error {
	s.HandleFunc("GET /sampling", s.samplingPage)
	s.HandleFunc("GET /api/v1/sampling/scorecard", s.samplingAPIScorecard)
	s.HandleFunc("GET /api/v1/sampling/stats", s.samplingAPIStats)
	return nil
}

// samplingView is what templates/sampling.html shows.
type samplingView struct {
	Run         *eval.Result
	Rows        []eval.Row
	Passed      bool
	Failed      []string
	RecallChart template.HTML
	RateChart   template.HTML
	MemChart    template.HTML
	StatsFrom   string // "live" or "eval"
	Instances   int
	Latest      *eval.StatsPoint
	Error       string
}

func (s *Server) samplingView(r *http.Request) samplingView {
	var v samplingView
	ctx := r.Context()
	run, err := eval.Latest(ctx, s.Store)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Run = run
	pts, err := eval.RecentStats(ctx, s.Store, time.Now().Add(-time.Hour))
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.StatsFrom = "live"
	if len(pts) == 0 && run != nil {
		pts, v.StatsFrom = run.Series, "eval"
	}
	if run != nil {
		v.Rows = run.Rows()
		v.Passed, v.Failed = run.Tail.Pass()
		v.RecallChart = template.HTML(recallChart(run))
	}
	if len(pts) > 1 {
		v.RateChart, v.MemChart = statsCharts(pts)
		last := pts[len(pts)-1]
		v.Latest = &last
		seen := map[string]bool{}
		for _, p := range pts {
			seen[p.Instance] = true
		}
		v.Instances = len(seen)
	}
	return v
}

// recallChart: tail against head on the measures with a bar.
func recallChart(r *eval.Result) string {
	t, h := r.Tail, r.Head
	return chart.Chart{
		ID:     "sampling-recall",
		Title:  "What matters: tail sampling against head sampling at the same kept fraction",
		Labels: []string{"error recall", "slow recall", "rare keys", "completeness", "representative"},
		Series: []chart.Series{
			{Name: "tail (srekit)", Y: []float64{t.ErrorRecall, t.SlowRecall, t.RareCoverage, t.Completeness, t.Representativeness}, Color: "#2e933c"},
			{Name: "head", Y: []float64{h.ErrorRecall, h.SlowRecall, h.RareCoverage, h.Completeness, h.Representativeness}, Color: "#d1495b"},
		},
		Refs:    []chart.RefLine{{Y: 0.99, Label: "0.99"}},
		YFormat: func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
		Height:  300,
	}.BarSVG()
}

// statsCharts: spans per second in and kept (summed over instances), and
// buffered memory against max_memory.
func statsCharts(pts []eval.StatsPoint) (template.HTML, template.HTML) {
	type prev struct {
		p  eval.StatsPoint
		ok bool
	}
	last := map[string]prev{}
	t0 := pts[0].At
	in := chart.Series{Name: "spans in / s", Color: "#0b63ce"}
	kept := chart.Series{Name: "spans kept / s", Color: "#2e933c"}
	mem := chart.Series{Name: "buffered MiB", Color: "#6a4c93"}
	var maxMem float64
	for _, p := range pts {
		x := p.At.Sub(t0).Seconds()
		if pr := last[p.Instance]; pr.ok {
			dt := p.At.Sub(pr.p.At).Seconds()
			if dt > 0 && p.SpansIn >= pr.p.SpansIn {
				in.X, in.Y = append(in.X, x), append(in.Y, float64(p.SpansIn-pr.p.SpansIn)/dt)
				kept.X, kept.Y = append(kept.X, x), append(kept.Y, float64(p.SpansKept-pr.p.SpansKept)/dt)
			}
		}
		last[p.Instance] = prev{p, true}
		mem.X, mem.Y = append(mem.X, x), append(mem.Y, float64(p.BufferedBytes)/(1<<20))
		maxMem = float64(p.MaxMemory) / (1 << 20)
	}
	rates := chart.Chart{ID: "sampling-rates", Title: "Throughput", XLabel: "seconds", YLabel: "spans / s",
		Series: []chart.Series{in, kept}, FromZero: true, Height: 260}.SVG()
	memory := chart.Chart{ID: "sampling-memory", Title: "Buffered span memory", XLabel: "seconds", YLabel: "MiB",
		Series: []chart.Series{mem}, FromZero: true, Height: 220,
		Refs: []chart.RefLine{{Y: maxMem, Label: "max_memory"}}}.SVG()
	return template.HTML(rates), template.HTML(memory)
}

func (s *Server) samplingPage(w http.ResponseWriter, r *http.Request) {
	s.Render(w, "sampling.html", Page{Title: "Sampling", Active: "sampling", Data: s.samplingView(r)})
}

func (s *Server) samplingAPIScorecard(w http.ResponseWriter, r *http.Request) {
	run, err := eval.Latest(r.Context(), s.Store)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if run == nil {
		Error(w, http.StatusNotFound, "no scorecard yet: run 'srekit sampler eval --save'")
		return
	}
	WriteJSON(w, http.StatusOK, run)
}

func (s *Server) samplingAPIStats(w http.ResponseWriter, r *http.Request) {
	since := time.Now().Add(-time.Hour)
	if v := r.URL.Query().Get("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			Error(w, http.StatusBadRequest, "since: want an RFC 3339 time such as 2026-01-02T15:04:05Z")
			return
		}
		since = t
	}
	pts, err := eval.RecentStats(r.Context(), s.Store, since)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if pts == nil {
		pts = []eval.StatsPoint{}
	}
	WriteJSON(w, http.StatusOK, pts)
}
