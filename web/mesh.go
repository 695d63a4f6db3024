package web

import (
	"html/template"
	"math"
	"net/http"
	"os"
	"time"

	"github.com/srekit/srekit/chart"
	"github.com/srekit/srekit/mesh"
)

// The /mesh page shows a running mesh's per-region timings, read from its
// admin listener: SREKIT_MESH_ADMIN, or http://127.0.0.1:9901 (where
// `srekit mesh` and `srekit mesh demo` put it by default). The web server
// does not run a proxy itself: the mesh is a separate process on the
// request path, and the page is a window on it.
func init() {
	Register(Part{
		Slug:    "mesh",
		Title:   "Mesh",
		Summary: "front-door proxy: each request to the fastest healthy backend across regions, with timings per region",
		Order:   80,
		Mount:   mountMesh,
	})
}

func meshAdminURL() string {
	if u := os.Getenv("SREKIT_MESH_ADMIN"); u != "" {
		return u
	}
	return "http://127.0.0.1:9901"
}

func mountMesh(s *Server) error {
	s.HandleFunc("GET /mesh", s.meshPage)
	s.HandleFunc("GET /api/v1/mesh/timings", s.meshAPITimings)
	return nil
}

func (s *Server) meshAPITimings(w http.ResponseWriter, r *http.Request) {
	rep, err := mesh.FetchReport(r.Context(), meshAdminURL())
	if err != nil {
		Error(w, http.StatusBadGateway, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, rep)
}

// meshView is what templates/mesh.html shows.
type meshView struct {
	Admin     string
	Error     string
	P50, P99  template.HTML
	Latest    []meshLatest
	Endpoints []mesh.EndpointStatus
	Interval  float64
}

type meshLatest struct {
	Region string
	mesh.Point
}

func (s *Server) meshPage(w http.ResponseWriter, r *http.Request) {
	v := meshView{Admin: meshAdminURL()}
	rep, err := mesh.FetchReport(r.Context(), v.Admin)
	if err != nil {
		v.Error = err.Error()
	} else {
		v.P50, v.P99 = meshCharts(rep)
		v.Endpoints = rep.Endpoints
		v.Interval = rep.IntervalSeconds
		for _, rs := range rep.Regions {
			if n := len(rs.Points); n > 0 {
				v.Latest = append(v.Latest, meshLatest{rs.Region, rs.Points[n-1]})
			}
		}
	}
	s.Render(w, "mesh.html", Page{Title: "Mesh", Active: "mesh", Data: v})
}

// meshCharts draws per-region percentiles over time: the median (with the
// mean over all regions, the talk's "average global timings") and the p99.
func meshCharts(rep *mesh.TimingsReport) (template.HTML, template.HTML) {
	now := time.Now()
	xf := func(x float64) string { return now.Add(time.Duration(x * float64(time.Second))).Format("15:04:05") }
	p50 := chart.Chart{Title: "Median latency by region that answered (ms)", XLabel: "time", YLabel: "ms", ID: "mesh-p50", FromZero: true, XFormat: xf}
	p99 := chart.Chart{Title: "99th percentile latency by region (ms)", XLabel: "time", YLabel: "ms", ID: "mesh-p99", FromZero: true, XFormat: xf}
	for i, rs := range rep.Regions {
		col := chart.Palette[i%len(chart.Palette)]
		if rs.Region == "all" {
			col = "#444"
		}
		var xs, y50, y99, mean []float64
		for _, p := range rs.Points {
			x := p.T.Sub(now).Seconds()
			xs = append(xs, x)
			if p.Count == 0 {
				y50, y99, mean = append(y50, math.NaN()), append(y99, math.NaN()), append(mean, math.NaN())
				continue
			}
			y50, y99, mean = append(y50, p.P50MS), append(y99, p.P99MS), append(mean, p.MeanMS)
		}
		if len(xs) == 0 {
			continue
		}
		if rs.Region == "all" {
			p50.Series = append(p50.Series, chart.Series{Name: "mean, all regions", X: xs, Y: mean, Color: col, Dashed: true})
			p99.Series = append(p99.Series, chart.Series{Name: "all", X: xs, Y: y99, Color: col, Dashed: true})
			continue
		}
		p50.Series = append(p50.Series, chart.Series{Name: rs.Region, X: xs, Y: y50, Color: col})
		p99.Series = append(p99.Series, chart.Series{Name: rs.Region, X: xs, Y: y99, Color: col})
	}
	return template.HTML(p50.SVG()), template.HTML(p99.SVG())
}
