package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"

	"github.com/srekit/srekit/chart"
	"github.com/srekit/srekit/cost"
	"github.com/srekit/srekit/store"
)

func init() {
	Register(Part{
		Slug:    "cost",
		Title:   "Cost",
		Summary: "the cost of availability: break-even price per measure, k-of-n availability, nines that pay off",
		Order:   10,
		Mount:   mountCost,
		Demo: func(ctx context.Context, st *store.Store) error {
			b, err := cost.ExampleYAML("laas")
			if err != nil {
				return err
			}
			return cost.SaveScenario(ctx, st, "laas", string(b))
		},
	})
}

func mountCost(s *Server) error {
	s.HandleFunc("GET /cost", s.costPage)
	// Running a scenario only computes: it is a read, open like other reads.
	s.HandleFunc("POST /cost/preview", s.costPreview, BodyLimit(1<<20))
	s.HandleFunc("POST /api/v1/cost/run", s.costAPIRun, BodyLimit(1<<20))
	s.HandleFunc("GET /api/v1/cost/scenarios", s.costAPIList)
	s.HandleFunc("GET /api/v1/cost/scenarios/{name}", s.costAPIGet)
	s.HandleFunc("PUT /api/v1/cost/scenarios/{name}", s.costAPIPut, Write(), BodyLimit(1<<20))
	s.HandleFunc("DELETE /api/v1/cost/scenarios/{name}", s.costAPIDelete, Write())
	return nil
}

// costView is what templates/cost.html shows.
type costView struct {
	Scenarios  []string
	Name       string
	YAML       string
	Price      float64
	Result     *cost.Result
	Error      string
	BreakEven  template.HTML
	CostVsNine template.HTML
}

// buildCostView parses and runs a scenario and draws its charts.
func buildCostView(name, yamlText string) costView {
	v := costView{Name: name, YAML: yamlText}
	sc, err := cost.ParseScenario(name, strings.NewReader(yamlText))
	if err != nil {
		v.Error = err.Error()
		return v
	}
	res, err := cost.Run(sc)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Result, v.Price = res, sc.Price
	v.BreakEven, v.CostVsNine = costCharts(res, sc.Price)
	return v
}

// costCharts draws the talk at a glance: the break-even price of each step
// against the sale price, and availability (in nines) against that price.
func costCharts(res *cost.Result, price float64) (template.HTML, template.HTML) {
	labels := make([]string, len(res.Steps))
	taken := chart.Series{Name: "break-even price", Color: "#0b63ce"}
	for i, st := range res.Steps {
		labels[i] = strconv.Itoa(st.Index) + ". " + st.Name
		taken.Y = append(taken.Y, cost.RoundCents(st.BreakEven))
	}
	be := chart.Chart{
		ID: "cost-breakeven-chart", Title: "Break-even price per step (" + res.Currency + " per unit)",
		Labels: labels, Series: []chart.Series{taken}, Width: 1000, Height: 360,
		Refs:    []chart.RefLine{{Y: price, Label: "sale price " + cost.Money(price)}},
		YFormat: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
	}
	path := chart.Series{Name: "measures taken", Color: "#0b63ce"}
	alt := chart.Series{Name: "options not taken", Color: "#edae49"}
	for _, st := range res.Steps {
		if st.Availability == nil || st.Nines > 12 {
			continue
		}
		ser := &path
		if st.Alternative {
			ser = &alt
		}
		ser.X = append(ser.X, cost.RoundCents(st.BreakEven))
		ser.Y = append(ser.Y, st.Nines)
		ser.PointLabels = append(ser.PointLabels, strconv.Itoa(st.Index))
	}
	series := []chart.Series{path}
	if len(alt.X) > 0 {
		series = append(series, alt)
	}
	av := chart.Chart{
		ID: "cost-availability-chart", Title: "Availability (nines) against break-even price; points are step numbers",
		XLabel: "break-even price per unit", YLabel: "nines", Series: series, Width: 1000, Height: 360, FromZero: true,
		XFormat: func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
		YFormat: func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	}
	return template.HTML(be.BarSVG()), template.HTML(av.SVG())
}

// paysOff shows Step.PaysForItself: yes, no, or "-" when the step does not
// change availability.
func paysOff(p *bool) template.HTML {
	switch {
	case p == nil:
		return "-"
	case *p:
		return `<span class="good">yes</span>`
	default:
		return `<span class="bad">no</span>`
	}
}

func (s *Server) costPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	names, err := cost.ListScenarios(ctx, s.Store)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	name := r.URL.Query().Get("scenario")
	var yamlText string
	switch {
	case name != "":
		saved, err := cost.LoadScenario(ctx, s.Store, name)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		yamlText = saved.YAML
	case len(names) > 0:
		saved, err := cost.LoadScenario(ctx, s.Store, names[0])
		if err != nil {
			Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		name, yamlText = saved.Name, saved.YAML
	default:
		b, _ := cost.ExampleYAML("laas")
		name, yamlText = "laas", string(b)
	}
	v := buildCostView(name, yamlText)
	v.Scenarios = names
	s.Render(w, "cost.html", Page{Title: "Cost of availability", Active: "cost", Data: v})
}

// costPreview runs the posted YAML and returns the result as an HTML fragment,
// so the page updates without a reload.
func (s *Server) costPreview(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	v := buildCostView("scenario", string(body))
	t, err := pageTemplate("cost.html")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if v.Error != "" {
		w.WriteHeader(http.StatusUnprocessableEntity)
	}
	if err := t.ExecuteTemplate(w, "cost-result", v); err != nil {
		s.Log.Error("render cost-result", "err", err)
	}
}

func (s *Server) costAPIRun(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	sc, err := cost.ParseScenario("request", strings.NewReader(string(body)))
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := cost.Run(sc)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

func (s *Server) costAPIList(w http.ResponseWriter, r *http.Request) {
	names, err := cost.ListScenarios(r.Context(), s.Store)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if names == nil {
		names = []string{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"scenarios": names, "examples": cost.ExampleNames()})
}

func (s *Server) costAPIGet(w http.ResponseWriter, r *http.Request) {
	saved, err := cost.LoadScenario(r.Context(), s.Store, r.PathValue("name"))
	if errors.Is(err, cost.ErrNotFound) {
		Error(w, http.StatusNotFound, err.Error())
		return
	} else if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	sc, err := saved.Parse()
	if err != nil {
		Error(w, http.StatusInternalServerError, fmt.Sprintf("stored scenario no longer parses: %v", err))
		return
	}
	res, err := cost.Run(sc)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"name": saved.Name, "yaml": saved.YAML, "result": res})
}

func (s *Server) costAPIPut(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	name := r.PathValue("name")
	if err := cost.SaveScenario(r.Context(), s.Store, name, string(body)); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	s.Store.LogEvent(r.Context(), "cost", "save", name)
	WriteJSON(w, http.StatusOK, map[string]string{"saved": name})
}

func (s *Server) costAPIDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	err := cost.DeleteScenario(r.Context(), s.Store, name)
	if errors.Is(err, cost.ErrNotFound) {
		Error(w, http.StatusNotFound, err.Error())
		return
	} else if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.Store.LogEvent(r.Context(), "cost", "delete", name)
	WriteJSON(w, http.StatusOK, map[string]string{"deleted": name})
}
