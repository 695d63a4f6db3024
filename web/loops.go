package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/srekit/srekit/loops"
	"github.com/srekit/srekit/store"
)

func init() {
	Register(Part{
		Slug:    "loops",
		Title:   "Loops",
		Summary: "causal loop diagrams: find reinforcing and balancing loops, draw them, simulate and see which loop dominates",
		Order:   20,
		Mount:   mountLoops,
		Demo: func(ctx context.Context, st *store.Store) error {
			_, data, err := loops.ExampleSource("capacity-overload")
			if err != nil {
				return err
			}
			return loops.SaveModel(ctx, st, "my retry storm", string(data))
		},
	})
}

// maxWebLoops caps enumeration for a page: the table is for reading.
const maxWebLoops = 2000

func mountLoops(s *Server) error {
	s.HandleFunc("GET /loops", s.loopsPage)
	// Analysing and simulating a posted model only computes: a read.
	s.HandleFunc("POST /loops", s.loopsPage, BodyLimit(2<<20))
	s.HandleFunc("GET /api/v1/loops/examples", func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, loops.Examples())
	})
	s.HandleFunc("POST /api/v1/loops/analyze", s.loopsAPIAnalyze, BodyLimit(2<<20))
	s.HandleFunc("POST /api/v1/loops/simulate", s.loopsAPISimulate, BodyLimit(2<<20))
	s.HandleFunc("GET /api/v1/loops/models", func(w http.ResponseWriter, r *http.Request) {
		names, err := loops.ListModels(r.Context(), s.Store)
		if err != nil {
			Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		if names == nil {
			names = []string{}
		}
		WriteJSON(w, http.StatusOK, names)
	})
	s.HandleFunc("GET /api/v1/loops/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		m, err := loops.LoadModel(r.Context(), s.Store, r.PathValue("name"))
		if errors.Is(err, loops.ErrNoModel) {
			Error(w, http.StatusNotFound, err.Error())
			return
		} else if err != nil {
			Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, m)
	})
	s.HandleFunc("PUT /api/v1/loops/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		body, err := ReadBody(r)
		if err != nil {
			Error(w, http.StatusRequestEntityTooLarge, err.Error())
			return
		}
		if err := loops.SaveModel(r.Context(), s.Store, r.PathValue("name"), string(body)); err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"saved": r.PathValue("name")})
	}, Write(), BodyLimit(2<<20))
	s.HandleFunc("DELETE /api/v1/loops/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		err := loops.DeleteModel(r.Context(), s.Store, r.PathValue("name"))
		if errors.Is(err, loops.ErrNoModel) {
			Error(w, http.StatusNotFound, err.Error())
			return
		} else if err != nil {
			Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, map[string]string{"deleted": r.PathValue("name")})
	}, Write())
	return nil
}

type loopsView struct {
	Examples  []string
	Saved     []string
	Example   string
	Name      string // the saved model shown, if any
	Source    string
	Error     string
	Model     *loops.Model
	Analysis  *loops.Analysis
	Diagram   template.HTML
	Stocks    template.HTML
	Dominance template.HTML
	Periods   []loops.Period
	SimError  string
}

func (s *Server) loopsPage(w http.ResponseWriter, r *http.Request) {
	v := loopsView{Examples: loops.Examples(), Example: r.FormValue("example"), Name: r.URL.Query().Get("model")}
	saved, err := loops.ListModels(r.Context(), s.Store)
	if err != nil {
		v.Error = err.Error()
	}
	v.Saved = saved
	if r.Method == http.MethodPost {
		v.Source = r.FormValue("model")
		v.Example = ""
	} else if v.Name != "" {
		m, err := loops.LoadModel(r.Context(), s.Store, v.Name)
		if err != nil {
			v.Error = err.Error()
		}
		v.Source = m.Source
	} else {
		if v.Example == "" {
			v.Example = "replica-checker"
		}
		_, data, err := loops.ExampleSource(v.Example)
		if err != nil {
			v.Error = err.Error()
		}
		v.Source = string(data)
	}
	if v.Error == "" {
		s.buildLoopsView(r.Context(), &v)
	}
	if v.Name == "" && v.Example != "" {
		v.Name = "my " + v.Example
	}
	s.Render(w, "loops.html", Page{Title: "Loops", Active: "loops", Data: v})
}

func (s *Server) buildLoopsView(ctx context.Context, v *loopsView) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	name := "model"
	if v.Example != "" {
		name = v.Example
	}
	m, err := loops.ParseFile(name, strings.NewReader(v.Source))
	if err != nil {
		v.Error = err.Error()
		return
	}
	a, err := loops.Analyze(ctx, m, maxWebLoops)
	if err != nil {
		v.Error = err.Error()
		return
	}
	v.Model, v.Analysis = m, a
	svg, err := loops.SVG(ctx, m, a, loops.DiagramOptions{ID: "cld"})
	if err != nil {
		v.Error = err.Error()
		return
	}
	v.Diagram = template.HTML(svg)
	if m.Simulatable() != nil {
		return // a CLD without equations: nothing to simulate
	}
	res, err := loops.Simulate(ctx, m, loops.SimOptions{Analysis: a, MaxSteps: 200_000})
	if err != nil {
		v.SimError = err.Error()
		return
	}
	// one small chart per stock: stocks rarely share a scale
	var charts []string
	for i, k := range res.Kinds {
		if k != loops.Stock || len(charts) == 6 {
			continue
		}
		if c, err := res.Chart([]string{res.Names[i]}, fmt.Sprintf("loops-stock-%d", len(charts))); err == nil {
			charts = append(charts, c)
		}
	}
	if len(charts) == 0 {
		if c, err := res.Chart(nil, "loops-stock-0"); err == nil {
			charts = append(charts, c)
		}
	}
	v.Stocks = template.HTML(strings.Join(charts, ""))
	v.Dominance = template.HTML(res.DominanceChart(8, "loops-dominance"))
	// fold flickers shorter than 10 steps into their neighbours
	for _, p := range res.DominancePeriods() {
		if n := len(v.Periods); n > 0 && (p.To-p.From < res.DT*10 || v.Periods[n-1].Loop == p.Loop) {
			v.Periods[n-1].To = p.To
			continue
		}
		v.Periods = append(v.Periods, p)
	}
}

// analyzePosted parses the model in the request body and analyses its loops,
// answering the error itself when either fails (ok is then false).
func analyzePosted(w http.ResponseWriter, r *http.Request) (m *loops.Model, a *loops.Analysis, ok bool) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return nil, nil, false
	}
	m, err = loops.ParseFile("model", strings.NewReader(string(body)))
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return nil, nil, false
	}
	a, err = loops.Analyze(r.Context(), m, maxWebLoops)
	if err != nil {
		Error(w, http.StatusServiceUnavailable, err.Error())
		return nil, nil, false
	}
	return m, a, true
}

func (s *Server) loopsAPIAnalyze(w http.ResponseWriter, r *http.Request) {
	_, a, ok := analyzePosted(w, r)
	if !ok {
		return
	}
	WriteJSON(w, http.StatusOK, a)
}

func (s *Server) loopsAPISimulate(w http.ResponseWriter, r *http.Request) {
	m, a, ok := analyzePosted(w, r)
	if !ok {
		return
	}
	res, err := loops.Simulate(r.Context(), m, loops.SimOptions{Analysis: a, MaxSteps: 200_000})
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	res.WriteJSON(w)
}
