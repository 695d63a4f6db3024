package flame

import (
	"sort"
	"strings"
)

// frame is one box of a drawn graph: a function at a depth over an interval
// of the cumulative count axis.
type frame struct {
	name       string
	depth      int
	start, end int64 // on the drawn axis (after counts for a diff, unless elided)
	before     int64 // total before count (diffs)
	after      int64 // total after count (diffs)
	delta      int64 // self change, after - before, of stacks ending here (diffs)
	trimmed    int   // > 0: a placeholder for this many frames too narrow to draw
}

// layout is the frames of a graph and its totals.
type layout struct {
	frames   []frame
	total    int64 // width of the root
	maxDepth int
	maxDelta int64
	// trimmedFrames and trimmedValue count what was left out for being narrower
	// than the minimum width or beyond MaxNodes.
	trimmedFrames int
	trimmedValue  int64
}

// openFrame is a frame on the current path while the stacks flow past.
type openFrame struct {
	name          string
	start         int64
	before, after int64
	delta         int64
	// the current run of adjacent children too narrow to draw
	runStart, runEnd int64
	runCount         int
}

// flowInput is one stack with its counts, in drawing order.
type flowInput struct {
	stack         []string
	before, after int64
}

// flow merges stacks in order into frames, as flamegraph.pl does: a frame
// spans the adjacent stacks that share its prefix. Frames narrower than
// minValue are left out; adjacent left-out siblings are drawn as one
// placeholder frame when that is wide enough, so nothing vanishes silently.
// keep, when not nil, receives the widths of the frames that are kept.
//
// Placeholders are only drawn from placeMin (at least minValue) up: a
// pixel, so that slivers of hatching do not outnumber the real frames.
func flow(in []flowInput, diff, elided bool, minValue, placeMin int64, keep func(int64)) *layout {
	placeMin = max(placeMin, minValue)
	l := &layout{}
	path := []openFrame{{name: ""}}
	var t int64
	var emit func(of *openFrame, depth int, end int64)
	emit = func(of *openFrame, depth int, end int64) {
		w := end - of.start
		parent := (*openFrame)(nil)
		if depth > 0 {
			parent = &path[depth-1]
		}
		if w < minValue || w == 0 {
			if parent != nil && w > 0 {
				if parent.runCount > 0 && parent.runEnd == of.start {
					parent.runEnd = end
				} else {
					flushRun(l, parent, depth-1, placeMin)
					parent.runStart, parent.runEnd = of.start, end
				}
				parent.runCount++
				l.trimmedFrames++
			}
			return
		}
		flushRun(l, of, depth, placeMin)
		if parent != nil {
			flushRun(l, parent, depth-1, placeMin)
		}
		if keep != nil {
			keep(w)
		}
		if depth > l.maxDepth {
			l.maxDepth = depth
		}
		if d := abs64(of.delta); d > l.maxDelta {
			l.maxDelta = d
		}
		l.frames = append(l.frames, frame{name: of.name, depth: depth, start: of.start, end: end,
			before: of.before, after: of.after, delta: of.delta})
	}
	for _, s := range in {
		v := s.before
		if diff && !elided {
			v = s.after
		}
		if v == 0 && !(diff && (s.before != 0 || s.after != 0)) {
			continue
		}
		// length of the common prefix with the open path (path[0] is the root)
		same := 0
		for same < len(s.stack) && same+1 < len(path) && sameString(path[same+1].name, s.stack[same]) {
			same++
		}
		for d := len(path) - 1; d > same; d-- {
			emit(&path[d], d, t)
			path = path[:d]
		}
		for _, name := range s.stack[same:] {
			path = append(path, openFrame{name: name, start: t})
		}
		for d := range path {
			path[d].before = SatAdd(path[d].before, s.before)
			path[d].after = SatAdd(path[d].after, s.after)
		}
		if diff {
			path[len(path)-1].delta = SatAdd(path[len(path)-1].delta, s.after-s.before)
		}
		t = SatAdd(t, v)
	}
	for d := len(path) - 1; d > 0; d-- {
		emit(&path[d], d, t)
	}
	l.total = t
	root := &path[0]
	flushRun(l, root, 0, placeMin)
	if keep != nil {
		keep(t)
	}
	if abs64(root.delta) > l.maxDelta {
		l.maxDelta = abs64(root.delta)
	}
	l.frames = append(l.frames, frame{name: "", depth: 0, start: 0, end: t, before: root.before, after: root.after, delta: root.delta})
	for _, f := range l.frames {
		if f.trimmed > 0 {
			l.trimmedValue += f.end - f.start
		}
	}
	return l
}

// flushRun draws the pending run of too-narrow children of of as one
// placeholder frame, if the run is wide enough to be seen.
func flushRun(l *layout, of *openFrame, depth int, minValue int64) {
	if of.runCount == 0 {
		return
	}
	if of.runEnd-of.runStart >= minValue && of.runEnd > of.runStart {
		l.frames = append(l.frames, frame{depth: depth + 1, start: of.runStart, end: of.runEnd, trimmed: of.runCount})
		if depth+1 > l.maxDepth {
			l.maxDepth = depth + 1
		}
	}
	of.runCount = 0
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// flowInputs orders the profile's stacks for drawing: sorted by stack (so
// that identical prefixes merge), or in input order for a flame chart;
// reversed first for --reverse; waker frames annotated for the chain palette.
func flowInputs(p *Profile, o *RenderOptions) []flowInput {
	transform := o.Reverse || o.Colors == "chain"
	fix := func(stack []string) []string {
		if !transform {
			return stack
		}
		st := append([]string(nil), stack...)
		if o.Reverse {
			for i, j := 0, len(st)-1; i < j; i, j = i+1, j-1 {
				st[i], st[j] = st[j], st[i]
			}
		}
		if o.Colors == "chain" {
			waker := false
			for i, f := range st {
				if f == "--" {
					waker = true
					continue
				}
				if waker && !strings.HasSuffix(f, "_[w]") {
					st[i] = f + "_[w]"
				}
			}
		}
		return st
	}
	var in []flowInput
	if o.Flamechart {
		// input order, adjacent identical stacks merge in flow
		in = make([]flowInput, 0, len(p.Samples))
		for _, s := range p.Samples {
			in = append(in, flowInput{stack: fix(s.Stack), before: s.Value, after: s.Value2})
		}
		return in
	}
	q := p
	if transform {
		b := newBuilder()
		for _, s := range p.Samples {
			b.add(fix(s.Stack), s.Value, s.Value2)
		}
		q = b.profile()
	} else if !sort.SliceIsSorted(p.Samples, func(i, j int) bool {
		return compareStacks(p.Samples[i].Stack, p.Samples[j].Stack) < 0
	}) {
		q = p.Compact()
	}
	in = make([]flowInput, len(q.Samples))
	for i, s := range q.Samples {
		in[i] = flowInput{stack: s.Stack, before: s.Value, after: s.Value2}
	}
	return in
}
