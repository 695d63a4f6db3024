package loops

import "math"

// scorer computes Loops That Matter scores as a simulation runs.
//
// A link score says how much of the change in the effect, over one step, came
// from the change in the cause: for x -> z with z = f(..., x, ...),
//
//	LS(x->z) = |Δz_x / Δz| * sign(Δz_x / Δx)
//
// where Δz_x is the change z would have had if only x had changed (f
// re-evaluated with x at its new value and everything else at its old one).
// For a flow f into (or out of) stock s the score is ±|Δf / Δ(net flow of s)|.
// A loop's score is the product of its link scores; its relative score is
// that divided by the sum of all loops' absolute scores, so it lies in
// [-1, 1], positive while the loop reinforces and negative while it balances.
// The loop with the largest absolute relative score dominates.
//
// SMOOTH and DELAY1 hold hidden stocks: when scoring a link into a variable
// that smooths x, the hidden level is taken at its new value along with x,
// which approximates the chain through the hidden stock as one link.
type scorer struct {
	p        *program
	loops    []*Loop
	ids      []string
	scores   [][]float64
	dominant []string

	used       []int // links that are in some loop
	linkScore  []float64
	prev, cur  []float64
	prevHidden []float64
	prevNet    []float64 // per variable: net flow of stocks
	curNet     []float64
	first      bool
	scratch    *env
	hidUse     [][]int // per link: hidden slots whose input reads the link's cause
}

func newScorer(p *program, a *Analysis, steps int) *scorer {
	m := p.m
	s := &scorer{p: p, loops: a.Loops, first: true}
	used := map[int]bool{}
	for _, l := range a.Loops {
		s.ids = append(s.ids, l.ID)
		s.scores = append(s.scores, make([]float64, 0, steps))
		for _, li := range l.links {
			used[li] = true
		}
	}
	for li := range m.Links {
		if used[li] {
			s.used = append(s.used, li)
		}
	}
	nv := len(m.Variables)
	s.linkScore = make([]float64, len(m.Links))
	s.prev, s.cur = make([]float64, nv), make([]float64, nv)
	s.prevNet, s.curNet = make([]float64, nv), make([]float64, nv)
	s.scratch = &env{vals: make([]float64, nv), tables: p.tables, hidden: make([]float64, len(p.hidden))}
	s.hidUse = make([][]int, len(m.Links))
	for _, li := range s.used {
		x := m.Links[li].from
		for slot, h := range p.hidden {
			if h.n.args[0].uses(x) {
				s.hidUse[li] = append(s.hidUse[li], slot)
			}
		}
	}
	s.dominant = make([]string, 0, steps)
	return s
}

func (s *scorer) record(e *env, hidden []float64) {
	m := s.p.m
	copy(s.cur, e.vals)
	for _, st := range s.p.stocks {
		s.curNet[st] = s.p.netFlow(st, e)
	}
	if s.first {
		s.first = false
		for i := range s.scores {
			s.scores[i] = append(s.scores[i], 0)
		}
		s.dominant = append(s.dominant, "")
		s.shift(e, hidden)
		return
	}
	for _, li := range s.used {
		s.linkScore[li] = s.link(li, e, hidden)
	}
	total := 0.0
	raw := make([]float64, len(s.loops))
	for i, l := range s.loops {
		v := 1.0
		for _, li := range l.links {
			v *= s.linkScore[li]
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = 0
		}
		raw[i] = v
		total += math.Abs(v)
	}
	best, bestAbs := "", 0.0
	for i := range s.loops {
		rel := 0.0
		if total > 0 {
			rel = raw[i] / total
		}
		s.scores[i] = append(s.scores[i], rel)
		if a := math.Abs(rel); a > bestAbs+1e-12 {
			best, bestAbs = s.loops[i].ID, a
		}
	}
	s.dominant = append(s.dominant, best)
	_ = m
	s.shift(e, hidden)
}

func (s *scorer) shift(e *env, hidden []float64) {
	copy(s.prev, s.cur)
	copy(s.prevNet, s.curNet)
	s.prevHidden = append(s.prevHidden[:0], hidden...)
	s.scratch.time = e.time
	s.scratch.dt, s.scratch.start, s.scratch.stop = e.dt, e.start, e.stop
}

// link scores one link for the step just recorded.
func (s *scorer) link(li int, e *env, hidden []float64) float64 {
	m := s.p.m
	l := m.Links[li]
	x, z := l.from, l.to
	dx := s.cur[x] - s.prev[x]
	zv := m.Variables[z]
	if zv.Kind == Stock && zv.eq == nil {
		sign := 0.0
		for _, f := range zv.inIdx {
			if f == x {
				sign = 1
			}
		}
		for _, f := range zv.outIdx {
			if f == x {
				sign = -1
			}
		}
		dnet := s.curNet[z] - s.prevNet[z]
		if sign == 0 || dnet == 0 {
			return 0
		}
		return sign * math.Abs(dx/dnet)
	}
	if zv.eq == nil || dx == 0 {
		return 0
	}
	// Partial change: z re-evaluated with only x (and hidden stocks fed by x) new.
	sc := s.scratch
	copy(sc.vals, s.prev)
	sc.vals[x] = s.cur[x]
	copy(sc.hidden, s.prevHidden)
	for _, slot := range s.hidUse[li] {
		sc.hidden[slot] = hidden[slot]
	}
	var zPrev, zCur, zPart float64
	if zv.Kind == Stock {
		zPrev, zCur = s.prevNet[z], s.curNet[z]
		zPart = zv.eq.eval(sc)
	} else {
		zPrev, zCur = s.prev[z], s.cur[z]
		zPart = s.p.value(z, sc)
	}
	dz := zCur - zPrev
	dzx := zPart - zPrev
	if dz == 0 || dzx == 0 {
		return 0
	}
	v := math.Abs(dzx / dz)
	if dzx/dx < 0 {
		v = -v
	}
	return v
}
