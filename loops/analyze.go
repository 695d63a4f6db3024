package loops

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Loop is one feedback loop: an elementary cycle of links.
type Loop struct {
	// ID is R1, R2, ... for reinforcing loops, B1, ... for balancing and U1, ...
	// for loops whose polarity is not known, numbered shortest first and then
	// by variable names, so the same model always gets the same names.
	ID       string   `json:"id"`
	Title    string   `json:"title,omitempty"` // from the model's loops section
	Polarity Polarity `json:"polarity"`        // + reinforcing, - balancing, ? indeterminate
	// Variables in loop order, starting from the first by name; the last links back to the first.
	Variables []string `json:"variables"`
	Delays    int      `json:"delays"` // links marked as delayed
	vars      []int
	links     []int
}

// Kind is "reinforcing", "balancing" or "indeterminate".
func (l *Loop) Kind() string {
	switch l.Polarity {
	case Positive:
		return "reinforcing"
	case Negative:
		return "balancing"
	}
	return "indeterminate"
}

// Path is the loop as text: a -> b -> c -> a.
func (l *Loop) Path() string {
	return strings.Join(append(append([]string{}, l.Variables...), l.Variables[0]), " -> ")
}

// VarCount is how many loops pass through a variable.
type VarCount struct {
	Name  string `json:"name"`
	Loops int    `json:"loops"`
}

// Analysis is the loop structure of a model.
type Analysis struct {
	Loops []*Loop `json:"loops"`
	// Truncated is true when enumeration stopped at MaxLoops: there are more.
	Truncated     bool       `json:"truncated"`
	MaxLoops      int        `json:"max_loops"`
	Reinforcing   int        `json:"reinforcing"`
	Balancing     int        `json:"balancing"`
	Indeterminate int        `json:"indeterminate"`
	Central       []VarCount `json:"variables_in_most_loops"`
}

// DefaultMaxLoops caps enumeration: a dense diagram can have more loops than
// atoms in the universe, and nobody reads past a few thousand.
const DefaultMaxLoops = 10000

// Analyze finds the model's feedback loops with Johnson's algorithm, stopping
// after maxLoops (DefaultMaxLoops when <= 0) and saying so. It stops early,
// with the loops found so far and ctx's error, if ctx is cancelled.
func Analyze(ctx context.Context, m *Model, maxLoops int) (*Analysis, error) {
	if maxLoops <= 0 {
		maxLoops = DefaultMaxLoops
	}
	a := &Analysis{MaxLoops: maxLoops}
	n := len(m.Variables)
	// Vertices in name order, so enumeration and naming do not depend on the
	// order of the file.
	rank := make([]int, n)
	byRank := make([]int, n)
	for i := range byRank {
		byRank[i] = i
	}
	sort.SliceStable(byRank, func(i, j int) bool { return m.Variables[byRank[i]].key < m.Variables[byRank[j]].key })
	for r, v := range byRank {
		rank[v] = r
	}
	// adjacency over ranks: adj[r] = (neighbour rank, link index)
	type edge struct{ to, link int }
	adj := make([][]edge, n)
	for li, l := range m.Links {
		adj[rank[l.from]] = append(adj[rank[l.from]], edge{rank[l.to], li})
	}
	for _, es := range adj {
		sort.Slice(es, func(i, j int) bool { return es[i].to < es[j].to })
	}

	var found [][]int // each: link indices in cycle order, starting at its least vertex
	blocked := make([]bool, n)
	bset := make([]map[int]bool, n)
	inComp := make([]bool, n)
	var stack []int // links on the current path
	stop := false
	checks := 0

	var circuit func(v, s int) bool
	circuit = func(v, s int) bool {
		if stop {
			return false
		}
		if checks++; checks&1023 == 0 && ctx.Err() != nil {
			stop = true
			return false
		}
		f := false
		blocked[v] = true
		for _, e := range adj[v] {
			if !inComp[e.to] {
				continue
			}
			if e.to == s {
				c := append(append([]int{}, stack...), e.link)
				found = append(found, c)
				if len(found) >= maxLoops {
					stop = true
					return true
				}
				f = true
			} else if !blocked[e.to] {
				stack = append(stack, e.link)
				if circuit(e.to, s) {
					f = true
				}
				stack = stack[:len(stack)-1]
				if stop {
					return f
				}
			}
		}
		if f {
			unblock(v, blocked, bset)
		} else {
			for _, e := range adj[v] {
				if inComp[e.to] {
					if bset[e.to] == nil {
						bset[e.to] = map[int]bool{}
					}
					bset[e.to][v] = true
				}
			}
		}
		return f
	}

	for s := 0; s < n && !stop; s++ {
		comp := sccWith(s, n, func(v int, fn func(int)) {
			for _, e := range adj[v] {
				if e.to >= s {
					fn(e.to)
				}
			}
		})
		if len(comp) == 0 {
			continue
		}
		for i := range inComp {
			inComp[i] = false
		}
		for _, v := range comp {
			inComp[v] = true
			blocked[v] = false
			bset[v] = nil
		}
		circuit(s, s)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("loop analysis: %w", err)
	}
	a.Truncated = len(found) >= maxLoops

	a.Loops = make([]*Loop, 0, len(found))
	for _, c := range found {
		l := &Loop{Polarity: Positive, links: c, vars: make([]int, 0, len(c)), Variables: make([]string, 0, len(c))}
		for _, li := range c {
			lk := m.Links[li]
			l.vars = append(l.vars, lk.from)
			l.Variables = append(l.Variables, m.Variables[lk.from].Name)
			switch lk.Polarity {
			case Negative:
				if l.Polarity != Unknown {
					l.Polarity = l.Polarity.flip()
				}
			case Unknown:
				l.Polarity = Unknown
			}
			if lk.Delay {
				l.Delays++
			}
		}
		a.Loops = append(a.Loops, l)
	}
	sort.SliceStable(a.Loops, func(i, j int) bool {
		x, y := a.Loops[i], a.Loops[j]
		if len(x.vars) != len(y.vars) {
			return len(x.vars) < len(y.vars)
		}
		for k := range x.vars {
			if rank[x.vars[k]] != rank[y.vars[k]] {
				return rank[x.vars[k]] < rank[y.vars[k]]
			}
		}
		return false
	})
	titles := map[string]string{}
	for _, nl := range m.Loops {
		idx := make([]int, 0, len(nl.Variables))
		for _, name := range nl.Variables {
			idx = append(idx, m.index[Canonical(name)])
		}
		titles[intSetKey(idx)] = nl.Title
	}
	count := make([]int, n)
	for _, l := range a.Loops {
		switch l.Polarity {
		case Positive:
			a.Reinforcing++
			l.ID = fmt.Sprintf("R%d", a.Reinforcing)
		case Negative:
			a.Balancing++
			l.ID = fmt.Sprintf("B%d", a.Balancing)
		default:
			a.Indeterminate++
			l.ID = fmt.Sprintf("U%d", a.Indeterminate)
		}
		if len(titles) > 0 {
			l.Title = titles[intSetKey(l.vars)]
		}
		for _, v := range l.vars {
			count[v]++
		}
	}
	for _, v := range byRank {
		if count[v] > 0 {
			a.Central = append(a.Central, VarCount{m.Variables[v].Name, count[v]})
		}
	}
	sort.SliceStable(a.Central, func(i, j int) bool { return a.Central[i].Loops > a.Central[j].Loops })
	return a, nil
}

// intSetKey is a loop's variables as a set, for matching named loops.
func intSetKey(vars []int) string {
	s := append([]int{}, vars...)
	sort.Ints(s)
	return fmt.Sprint(s)
}

func unblock(u int, blocked []bool, bset []map[int]bool) {
	// iterative, so that long chains cannot exhaust the stack
	work := []int{u}
	for len(work) > 0 {
		v := work[len(work)-1]
		work = work[:len(work)-1]
		if !blocked[v] {
			continue
		}
		blocked[v] = false
		for w := range bset[v] {
			delete(bset[v], w)
			if blocked[w] {
				work = append(work, w)
			}
		}
	}
}

// sccWith returns the strongly connected component containing s in the graph
// given by succ restricted to vertices >= s, if that component has a cycle
// (two or more vertices, or a self-loop); nil otherwise. Tarjan's algorithm,
// iterative.
func sccWith(s, n int, succ func(v int, fn func(int))) []int {
	index := make(map[int]int)
	low := make(map[int]int)
	onStack := make(map[int]bool)
	var stack []int
	next := 0
	var result []int
	selfLoop := false
	succ(s, func(w int) {
		if w == s {
			selfLoop = true
		}
	})
	type frame struct {
		v     int
		succs []int
		i     int
	}
	succList := func(v int) []int {
		var out []int
		succ(v, func(w int) { out = append(out, w) })
		return out
	}
	// Only the component of s matters, and it is found by a DFS from s.
	index[s], low[s] = next, next
	next++
	stack = append(stack, s)
	onStack[s] = true
	frames := []frame{{v: s, succs: succList(s)}}
	for len(frames) > 0 {
		f := &frames[len(frames)-1]
		if f.i < len(f.succs) {
			w := f.succs[f.i]
			f.i++
			if _, seen := index[w]; !seen {
				index[w], low[w] = next, next
				next++
				stack = append(stack, w)
				onStack[w] = true
				frames = append(frames, frame{v: w, succs: succList(w)})
			} else if onStack[w] && index[w] < low[f.v] {
				low[f.v] = index[w]
			}
			continue
		}
		v := f.v
		frames = frames[:len(frames)-1]
		if len(frames) > 0 {
			p := &frames[len(frames)-1]
			if low[v] < low[p.v] {
				low[p.v] = low[v]
			}
		}
		if low[v] == index[v] {
			var comp []int
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp = append(comp, w)
				if w == v {
					break
				}
			}
			if v == s {
				result = comp
			}
		}
	}
	if len(result) == 1 && !selfLoop {
		return nil
	}
	return result
}

// LoopsThrough returns the loops that contain the named variable.
func (a *Analysis) LoopsThrough(name string) []*Loop {
	key := Canonical(name)
	var out []*Loop
	for _, l := range a.Loops {
		for _, v := range l.Variables {
			if Canonical(v) == key {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

// Loop returns the loop with this ID (R1, B2, ...) or nil.
func (a *Analysis) Loop(id string) *Loop {
	for _, l := range a.Loops {
		if strings.EqualFold(l.ID, id) {
			return l
		}
	}
	return nil
}
