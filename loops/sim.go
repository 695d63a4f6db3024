package loops

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/srekit/srekit/chart"
)

// SimOptions overrides the model's simulation section; zero fields keep it.
type SimOptions struct {
	Start, Stop, DT float64
	Method          string // "euler" (default) or "rk4"
	// Analysis, when set, makes Simulate score its loops at every step.
	Analysis *Analysis
	// MaxSteps guards against a DT too small for the horizon; 1,000,000 when zero.
	MaxSteps int
}

// Result is a simulation run: every variable at every step, and, when loops
// were given, each loop's relative score (Loops That Matter) at every step.
type Result struct {
	Model  string      `json:"model"`
	Method string      `json:"method"`
	DT     float64     `json:"dt"`
	Names  []string    `json:"names"`
	Kinds  []Kind      `json:"kinds"`
	Time   []float64   `json:"time"`
	Values [][]float64 `json:"values"` // Values[variable][step]
	// LoopIDs and LoopScores: relative loop score, in [-1, 1], per loop per
	// step (0 at the first step, where nothing has changed yet). Positive
	// means the loop is acting as reinforcing at that moment.
	LoopIDs    []string    `json:"loop_ids,omitempty"`
	LoopScores [][]float64 `json:"loop_scores,omitempty"`
	// Dominant is the loop with the largest absolute score at each step ("" if none).
	Dominant []string `json:"dominant,omitempty"`
}

// Series returns the values of the named variable, or nil.
func (r *Result) Series(name string) []float64 {
	k := Canonical(name)
	for i, n := range r.Names {
		if Canonical(n) == k {
			return r.Values[i]
		}
	}
	return nil
}

// Period is a stretch of time during which one loop dominates.
type Period struct {
	Loop string  `json:"loop"`
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

// DominancePeriods collapses Dominant into runs.
func (r *Result) DominancePeriods() []Period {
	var out []Period
	for i, id := range r.Dominant {
		if id == "" {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Loop == id && out[n-1].To == r.Time[i-1] {
			out[n-1].To = r.Time[i]
			continue
		}
		out = append(out, Period{Loop: id, From: r.Time[i], To: r.Time[i]})
	}
	return out
}

type hiddenStock struct {
	n     *node
	owner int
}

type program struct {
	m      *Model
	order  []int // non-stock variables in evaluation order
	stocks []int
	hidden []hiddenStock
	tables []*Table
}

func compile(m *Model) (*program, error) {
	if err := m.Simulatable(); err != nil {
		return nil, err
	}
	order, cycle := m.evalOrder()
	if cycle != nil {
		return nil, m.checkEquationCycles()
	}
	p := &program{m: m, tables: m.tables()}
	for _, v := range order {
		if m.Variables[v].eq != nil {
			p.order = append(p.order, v)
		}
	}
	for i, v := range m.Variables {
		if v.Kind == Stock {
			p.stocks = append(p.stocks, i)
		}
		if v.eq != nil {
			v.eq.walk(func(x *node) {
				if x.op == opSmooth || x.op == opDelay1 {
					x.slot = len(p.hidden)
					p.hidden = append(p.hidden, hiddenStock{x, i})
				}
			})
		}
	}
	return p, nil
}

func (p *program) value(v int, e *env) float64 {
	vr := p.m.Variables[v]
	x := vr.eq.eval(e)
	if vr.Table != nil {
		x = vr.Table.At(x)
	}
	return x
}

// auxiliaries computes every non-stock variable from the stocks in e.vals.
func (p *program) auxiliaries(e *env) {
	for _, v := range p.order {
		e.vals[v] = p.value(v, e)
	}
}

// netFlow is a stock's rate of change given current values.
func (p *program) netFlow(s int, e *env) float64 {
	v := p.m.Variables[s]
	if v.eq != nil {
		return v.eq.eval(e)
	}
	sum := 0.0
	for _, f := range v.inIdx {
		sum += e.vals[f]
	}
	for _, f := range v.outIdx {
		sum -= e.vals[f]
	}
	return sum
}

// derivs fills dy (stocks, then hidden stocks) for the state y at time t;
// e.vals holds every variable's value afterwards.
func (p *program) derivs(t float64, y, dy []float64, e *env) {
	e.time = t
	ns := len(p.stocks)
	for i, s := range p.stocks {
		e.vals[s] = y[i]
	}
	e.hidden = y[ns:]
	p.auxiliaries(e)
	for i, s := range p.stocks {
		dy[i] = p.netFlow(s, e)
	}
	for i, h := range p.hidden {
		in := h.n.args[0].eval(e)
		tau := h.n.args[1].eval(e)
		cur := y[ns+i]
		switch h.n.op {
		case opSmooth:
			if tau <= 0 {
				dy[ns+i] = 0
				y[ns+i] = in
				continue
			}
			dy[ns+i] = (in - cur) / tau
		case opDelay1:
			if tau <= 0 {
				dy[ns+i] = 0
				continue
			}
			dy[ns+i] = in - cur/tau
		}
	}
}

// initial computes stocks' initial values and hidden stocks' starting levels.
func (p *program) initial(e *env) ([]float64, error) {
	m := p.m
	// Order: a stock's initial value may use auxiliaries, which may use other
	// stocks' initial values.
	n := len(m.Variables)
	state := make([]uint8, n)
	var order []int
	var visit func(v int) error
	visit = func(v int) error {
		switch state[v] {
		case 1:
			return &Error{File: m.File, Line: m.Variables[v].Line, Msg: fmt.Sprintf("initial value of %q depends on itself", m.Variables[v].Name)}
		case 2:
			return nil
		}
		state[v] = 1
		vr := m.Variables[v]
		expr := vr.eq
		if vr.Kind == Stock {
			expr = vr.init
		}
		if expr != nil {
			for _, d := range initDeps(expr) {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		state[v] = 2
		order = append(order, v)
		return nil
	}
	for v := range m.Variables {
		if err := visit(v); err != nil {
			return nil, err
		}
	}
	e.initial = true
	for _, v := range order {
		vr := m.Variables[v]
		switch {
		case vr.Kind == Stock && vr.init != nil:
			e.vals[v] = vr.init.eval(e)
		case vr.Kind == Stock:
			e.vals[v] = 0
		case vr.eq != nil:
			e.vals[v] = p.value(v, e)
		}
	}
	y := make([]float64, len(p.stocks)+len(p.hidden))
	for i, s := range p.stocks {
		y[i] = e.vals[s]
	}
	for i, h := range p.hidden {
		var start float64
		if len(h.n.args) > 2 {
			start = h.n.args[2].eval(e)
		} else {
			start = h.n.args[0].eval(e)
		}
		if h.n.op == opDelay1 {
			start *= h.n.args[1].eval(e)
		}
		y[len(p.stocks)+i] = start
	}
	e.initial = false
	return y, nil
}

// initDeps lists what an expression needs to compute its initial value: a
// SMOOTH or DELAY1 with an explicit initial value does not need its input.
func initDeps(n *node) []int {
	var out []int
	seen := map[int]bool{}
	var walk func(x *node)
	walk = func(x *node) {
		switch x.op {
		case opRef:
			if !seen[x.ref] {
				seen[x.ref] = true
				out = append(out, x.ref)
			}
			return
		case opSmooth, opDelay1:
			if len(x.args) > 2 {
				walk(x.args[2])
				if x.op == opDelay1 {
					walk(x.args[1])
				}
				return
			}
		}
		for _, a := range x.args {
			walk(a)
		}
	}
	walk(n)
	return out
}

// Simulate runs a stock-and-flow model from start to stop, recording every
// variable at every step. Euler is the default, as in Stella and Vensim; RK4
// is there for smooth models where Euler needs a tiny DT.
func Simulate(ctx context.Context, m *Model, opt SimOptions) (*Result, error) {
	p, err := compile(m)
	if err != nil {
		return nil, err
	}
	spec := m.Sim
	if opt.Start != 0 || opt.Stop != 0 {
		spec.Start, spec.Stop = opt.Start, opt.Stop
	}
	if opt.DT != 0 {
		spec.DT = opt.DT
	}
	if opt.Method != "" {
		spec.Method = strings.ToLower(opt.Method)
	}
	if spec.Stop == 0 && spec.Start == 0 {
		spec.Stop = 100
	}
	if spec.DT == 0 {
		spec.DT = 1
	}
	if spec.Method == "" {
		spec.Method = "euler"
	}
	if spec.Method != "euler" && spec.Method != "rk4" {
		return nil, fmt.Errorf("unknown integration method %q: want euler or rk4", spec.Method)
	}
	if !(spec.DT > 0) || !(spec.Stop > spec.Start) || math.IsInf(spec.Stop-spec.Start, 0) {
		return nil, fmt.Errorf("bad time axis: start %g, stop %g, dt %g (want start < stop and dt > 0)", spec.Start, spec.Stop, spec.DT)
	}
	maxSteps := opt.MaxSteps
	if maxSteps <= 0 {
		maxSteps = 1_000_000
	}
	steps := int(math.Round((spec.Stop-spec.Start)/spec.DT)) + 1
	if steps > maxSteps || steps < 1 {
		return nil, fmt.Errorf("%g to %g by %g is %d steps, more than the limit of %d: raise dt", spec.Start, spec.Stop, spec.DT, steps, maxSteps)
	}
	nv := len(m.Variables)
	res := &Result{Model: m.Name, Method: spec.Method, DT: spec.DT, Names: make([]string, nv), Kinds: make([]Kind, nv), Values: make([][]float64, nv)}
	for i, v := range m.Variables {
		res.Names[i] = v.Name
		res.Kinds[i] = v.Kind
		res.Values[i] = make([]float64, 0, steps)
	}
	e := &env{vals: make([]float64, nv), tables: p.tables, dt: spec.DT, start: spec.Start, stop: spec.Stop, time: spec.Start}
	y, err := p.initial(e)
	if err != nil {
		return nil, err
	}
	var sc *scorer
	if opt.Analysis != nil && len(opt.Analysis.Loops) > 0 {
		sc = newScorer(p, opt.Analysis, steps)
		res.LoopIDs = sc.ids
	}
	n := len(y)
	dy := make([]float64, n)
	k2, k3, k4, tmp := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	scratch := &env{vals: make([]float64, nv), tables: p.tables, dt: spec.DT, start: spec.Start, stop: spec.Stop}
	h := spec.DT
	for step := 0; step < steps; step++ {
		if step&1023 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		t := spec.Start + float64(step)*h
		t = math.Round(t*1e9) / 1e9 // 10.1, not 10.100000000000001
		p.derivs(t, y, dy, e)
		res.Time = append(res.Time, t)
		for i := range m.Variables {
			res.Values[i] = append(res.Values[i], e.vals[i])
		}
		if sc != nil {
			sc.record(e, y[len(p.stocks):])
		}
		if step == steps-1 {
			break
		}
		switch spec.Method {
		case "euler":
			for i := range y {
				y[i] += h * dy[i]
			}
		case "rk4":
			for i := range y {
				tmp[i] = y[i] + h/2*dy[i]
			}
			p.derivs(t+h/2, tmp, k2, scratch)
			for i := range y {
				tmp[i] = y[i] + h/2*k2[i]
			}
			p.derivs(t+h/2, tmp, k3, scratch)
			for i := range y {
				tmp[i] = y[i] + h*k3[i]
			}
			p.derivs(t+h, tmp, k4, scratch)
			for i := range y {
				y[i] += h / 6 * (dy[i] + 2*k2[i] + 2*k3[i] + k4[i])
			}
		}
		for i, s := range p.stocks {
			if m.Variables[s].NonNegative && y[i] < 0 {
				y[i] = 0
			}
		}
	}
	if sc != nil {
		res.LoopScores = sc.scores
		res.Dominant = sc.dominant
	}
	return res, nil
}

// WriteCSV writes time and every variable, one row per step.
func (r *Result) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := append([]string{"time"}, r.Names...)
	for _, id := range r.LoopIDs {
		head = append(head, "loop_score_"+id)
	}
	if r.Dominant != nil {
		head = append(head, "dominant_loop")
	}
	cw.Write(head)
	row := make([]string, len(head))
	for s, t := range r.Time {
		row = row[:0]
		row = append(row, strconv.FormatFloat(t, 'g', -1, 64))
		for _, v := range r.Values {
			row = append(row, strconv.FormatFloat(v[s], 'g', 8, 64))
		}
		for _, ls := range r.LoopScores {
			row = append(row, strconv.FormatFloat(ls[s], 'g', 6, 64))
		}
		if r.Dominant != nil {
			row = append(row, r.Dominant[s])
		}
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the result as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	type out struct {
		*Result
		Periods []Period `json:"dominance,omitempty"`
	}
	// NaN and Inf are not JSON: write them as null.
	clean := *r
	clean.Values = nanToNull(r.Values)
	clean.LoopScores = nanToNull(r.LoopScores)
	enc := json.NewEncoder(w)
	return enc.Encode(out{Result: &clean, Periods: r.DominancePeriods()})
}

func nanToNull(in [][]float64) [][]float64 {
	bad := false
	for _, s := range in {
		for _, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				bad = true
			}
		}
	}
	if !bad {
		return in
	}
	out := make([][]float64, len(in))
	for i, s := range in {
		out[i] = make([]float64, len(s))
		for j, v := range s {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				v = 0
			}
			out[i][j] = v
		}
	}
	return out
}

// Chart draws the named variables (the stocks when names is empty) over time.
func (r *Result) Chart(names []string, id string) (string, error) {
	var idx []int
	if len(names) == 0 {
		for i, k := range r.Kinds {
			if k == Stock {
				idx = append(idx, i)
			}
		}
		if len(idx) == 0 {
			for i := range r.Names {
				idx = append(idx, i)
				if len(idx) == 6 {
					break
				}
			}
		}
	}
	for _, n := range names {
		found := false
		for i, rn := range r.Names {
			if Canonical(rn) == Canonical(n) {
				idx = append(idx, i)
				found = true
			}
		}
		if !found {
			return "", fmt.Errorf("no variable %q in the model", n)
		}
	}
	title := r.Model
	if len(idx) == 1 {
		title = r.Names[idx[0]]
	}
	c := chart.Chart{Title: title, XLabel: "time", ID: id, Height: 240}
	for _, i := range idx {
		c.Series = append(c.Series, chart.Series{Name: r.Names[i], X: r.Time, Y: r.Values[i]})
	}
	return c.SVG(), nil
}

// DominanceChart draws the relative scores of the loops that matter most
// (by largest absolute score reached), at most max of them.
func (r *Result) DominanceChart(max int, id string) string {
	type ranked struct {
		i    int
		peak float64
	}
	var rs []ranked
	for i, s := range r.LoopScores {
		peak := 0.0
		for _, v := range s {
			peak = math.Max(peak, math.Abs(v))
		}
		if peak > 0 {
			rs = append(rs, ranked{i, peak})
		}
	}
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].peak > rs[b].peak })
	if max > 0 && len(rs) > max {
		rs = rs[:max]
	}
	c := chart.Chart{Title: "Relative loop score (Loops That Matter): + reinforcing, − balancing", XLabel: "time", YLabel: "relative score", ID: id,
		Refs: []chart.RefLine{{Y: 0, Label: "", Color: "#999"}}}
	for _, x := range rs {
		c.Series = append(c.Series, chart.Series{Name: r.LoopIDs[x.i], X: r.Time, Y: r.LoopScores[x.i]})
	}
	return c.SVG()
}
