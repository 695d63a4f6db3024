package loops

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"html"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/goccy/go-graphviz"
)

// DiagramOptions controls DOT and SVG output.
type DiagramOptions struct {
	// Layout is the Graphviz engine that places the variables: dot (default),
	// neato or circo.
	Layout string
	// MaxLoopLabels is how many loop labels (R1, B1, ...) are drawn, shortest
	// loops first; 12 when zero. The rest are in the loop table.
	MaxLoopLabels int
	// ID is put on the <svg> element.
	ID string
}

func (o DiagramOptions) maxLabels() int {
	if o.MaxLoopLabels <= 0 {
		return 12
	}
	return o.MaxLoopLabels
}

func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}

// wrap breaks a long name on spaces so nodes stay compact.
func wrap(s string, width int) string {
	words := strings.Fields(strings.ReplaceAll(s, "_", " "))
	var lines []string
	cur := ""
	for _, w := range words {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = w
			continue
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	if cur != "" {
		lines = append(lines, cur)
	}
	return strings.Join(lines, "\n")
}

// DOT writes the model as a Graphviz digraph drawn as a CLD: polarity at the
// arrowhead, "||" on delayed links, stocks as boxes, and a comment line per
// loop (a, when given, adds the loops as a legend node).
func DOT(m *Model, a *Analysis, opt DiagramOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(m.Name))
	layout := opt.Layout
	if layout == "" {
		layout = "dot"
	}
	fmt.Fprintf(&b, "  graph [layout=%s, rankdir=LR, splines=true, overlap=false, nodesep=0.5, ranksep=0.8, fontname=\"Helvetica\"];\n", layout)
	b.WriteString("  node [shape=plaintext, fontname=\"Helvetica\", fontsize=12];\n  edge [fontname=\"Helvetica\", fontsize=14, arrowsize=0.8];\n")
	for i, v := range m.Variables {
		shape := ""
		if v.Kind == Stock {
			shape = ", shape=box"
		}
		fmt.Fprintf(&b, "  v%d [label=%s%s];\n", i, dotQuote(wrap(v.Name, 16)), shape)
	}
	for _, l := range m.Links {
		color := "#0b63ce"
		switch l.Polarity {
		case Negative:
			color = "#d1495b"
		case Unknown:
			color = "#777777"
		}
		attrs := fmt.Sprintf("headlabel=%s, labelfontcolor=%q, color=%q", dotQuote(l.Polarity.String()), color, color)
		if l.Delay {
			attrs += `, label="||"`
		}
		fmt.Fprintf(&b, "  v%d -> v%d [%s];\n", l.from, l.to, attrs)
	}
	if a != nil {
		var rows []string
		for i, lp := range a.Loops {
			if i >= opt.maxLabels() {
				rows = append(rows, fmt.Sprintf("... and %d more", len(a.Loops)-i))
				break
			}
			t := lp.ID + ": " + lp.Path()
			if lp.Title != "" {
				t = lp.ID + " (" + lp.Title + "): " + lp.Path()
			}
			fmt.Fprintf(&b, "  // %s %s\n", lp.Kind(), t)
			rows = append(rows, t)
		}
		if len(rows) > 0 {
			fmt.Fprintf(&b, "  legend [shape=note, fontsize=10, label=%s];\n", dotQuote(strings.Join(rows, "\\l")+"\\l"))
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// layout is where Graphviz put things, in points (y down).
type layout struct {
	w, h  float64
	nodes []pt   // centre of each variable
	sizes []pt   // width, height
	edges [][]pt // bezier control points per link (index = link index)
}

type pt struct{ x, y float64 }

var (
	gvMu sync.Mutex
	gv   *graphviz.Graphviz
)

// graphvizLayout runs Graphviz (compiled to WebAssembly, embedded: nothing to
// install) and reads back positions from its "plain" output, so the drawing
// itself, with CLD conventions, is ours.
func graphvizLayout(ctx context.Context, m *Model, engine string) (*layout, error) {
	switch engine {
	case "", "dot", "neato", "circo", "fdp", "sfdp", "twopi":
	default:
		return nil, fmt.Errorf("unknown layout %q: want dot, neato or circo", engine)
	}
	if engine == "" {
		engine = "dot"
	}
	var src strings.Builder
	src.WriteString("digraph g {\n graph [rankdir=LR, splines=true, overlap=false, nodesep=0.6, ranksep=0.9, sep=\"+12\"];\n node [shape=box, fontsize=12];\n")
	for i, v := range m.Variables {
		fmt.Fprintf(&src, " v%d [label=%s];\n", i, dotQuote(wrap(v.Name, 16)))
	}
	for _, l := range m.Links {
		fmt.Fprintf(&src, " v%d -> v%d;\n", l.from, l.to)
	}
	src.WriteString("}\n")

	gvMu.Lock()
	defer gvMu.Unlock()
	if gv == nil {
		g, err := graphviz.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("start graphviz: %w", err)
		}
		gv = g
	}
	graph, err := graphviz.ParseBytes([]byte(src.String()))
	if err != nil {
		return nil, fmt.Errorf("graphviz: %w", err)
	}
	defer graph.Close()
	gv.SetLayout(graphviz.Layout(engine))
	var out bytes.Buffer
	if err := gv.Render(ctx, graph, graphviz.Format("plain"), &out); err != nil {
		return nil, fmt.Errorf("graphviz layout: %w", err)
	}
	return parsePlain(out.Bytes(), m)
}

func parsePlain(data []byte, m *Model) (*layout, error) {
	const in = 72.0
	lay := &layout{nodes: make([]pt, len(m.Variables)), sizes: make([]pt, len(m.Variables)), edges: make([][]pt, len(m.Links))}
	linkOf := map[[2]int]int{}
	for i, l := range m.Links {
		linkOf[[2]int{l.from, l.to}] = i
	}
	id := func(s string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
		if err != nil || n < 0 || n >= len(m.Variables) {
			return -1
		}
		return n
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		num := func(i int) float64 {
			if i >= len(f) {
				return 0
			}
			v, _ := strconv.ParseFloat(f[i], 64)
			return v
		}
		switch f[0] {
		case "graph":
			lay.w, lay.h = num(2)*in, num(3)*in
		case "node":
			if n := id(f[1]); n >= 0 {
				lay.nodes[n] = pt{num(2) * in, lay.h - num(3)*in}
				lay.sizes[n] = pt{num(4) * in, num(5) * in}
			}
		case "edge":
			if len(f) < 4 {
				continue
			}
			t, h := id(f[1]), id(f[2])
			li, ok := linkOf[[2]int{t, h}]
			if !ok {
				continue
			}
			n, _ := strconv.Atoi(f[3])
			var pts []pt
			for k := 0; k < n; k++ {
				pts = append(pts, pt{num(4+2*k) * in, lay.h - num(5+2*k)*in})
			}
			lay.edges[li] = pts
		}
	}
	return lay, nil
}

// SVG draws the model as a causal loop diagram: variables (stocks boxed),
// curved arrows with + or - at the head, || across delayed links, and loop
// labels (R1, B1, ...) with a circular arrow at the middle of each loop. Every
// arrow carries data-loops listing the loops it belongs to, so a page can
// highlight a loop.
func SVG(ctx context.Context, m *Model, a *Analysis, opt DiagramOptions) (string, error) {
	lay, err := graphvizLayout(ctx, m, opt.Layout)
	if err != nil {
		return "", err
	}
	const margin = 24.0
	w, h := lay.w+2*margin, lay.h+2*margin
	loopsOf := make([][]string, len(m.Links))
	if a != nil {
		for _, lp := range a.Loops {
			for _, li := range lp.links {
				loopsOf[li] = append(loopsOf[li], lp.ID)
			}
		}
	}
	var b strings.Builder
	id := ""
	if opt.ID != "" {
		id = fmt.Sprintf(` id="%s"`, html.EscapeString(opt.ID))
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="cld"%s style="max-width:100%%;height:auto" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
		id, w, h, w, h, html.EscapeString("causal loop diagram: "+m.Name))
	b.WriteString(`<defs>`)
	for _, c := range []struct{ id, col string }{{"pos", "#0b63ce"}, {"neg", "#d1495b"}, {"unk", "#777"}} {
		fmt.Fprintf(&b, `<marker id="arrow-%s" viewBox="0 0 10 10" refX="2" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`, c.id, c.col)
	}
	b.WriteString(`</defs>`)
	fmt.Fprintf(&b, `<rect width="%.0f" height="%.0f" fill="#fff"/><g transform="translate(%.0f,%.0f)">`, w, h, margin, margin)
	for li, l := range m.Links {
		pts := lay.edges[li]
		if len(pts) < 2 {
			continue
		}
		col, mk := "#0b63ce", "pos"
		switch l.Polarity {
		case Negative:
			col, mk = "#d1495b", "neg"
		case Unknown:
			col, mk = "#777", "unk"
		}
		var d strings.Builder
		fmt.Fprintf(&d, "M%.1f,%.1f", pts[0].x, pts[0].y)
		for k := 1; k+2 < len(pts); k += 3 {
			fmt.Fprintf(&d, " C%.1f,%.1f %.1f,%.1f %.1f,%.1f", pts[k].x, pts[k].y, pts[k+1].x, pts[k+1].y, pts[k+2].x, pts[k+2].y)
		}
		fmt.Fprintf(&b, `<g class="link" data-from="%s" data-to="%s" data-polarity="%s" data-loops="%s">`,
			html.EscapeString(l.From), html.EscapeString(l.To), l.Polarity, strings.Join(loopsOf[li], " "))
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.6" marker-end="url(#arrow-%s)"/>`, d.String(), col, mk)
		// polarity sign beside the arrowhead
		end, before := pts[len(pts)-1], pts[len(pts)-2]
		dx, dy := end.x-before.x, end.y-before.y
		n := math.Hypot(dx, dy)
		if n == 0 {
			n = 1
		}
		px, py := -dy/n, dx/n
		fmt.Fprintf(&b, `<text class="polarity" x="%.1f" y="%.1f" text-anchor="middle" font-size="15" font-weight="700" fill="%s">%s</text>`,
			end.x+px*9, end.y+py*9+5, col, html.EscapeString(polaritySign(l.Polarity)))
		if l.Delay {
			mid, tx, ty := bezierMid(pts)
			tn := math.Hypot(tx, ty)
			if tn == 0 {
				tn = 1
			}
			tx, ty = tx/tn, ty/tn
			nx, ny := -ty, tx
			for _, off := range []float64{-2.5, 2.5} {
				cx, cy := mid.x+tx*off, mid.y+ty*off
				fmt.Fprintf(&b, `<line class="delay" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#222" stroke-width="1.6"/>`,
					cx-nx*7, cy-ny*7, cx+nx*7, cy+ny*7)
			}
		}
		b.WriteString(`</g>`)
	}
	for i, v := range m.Variables {
		c, s := lay.nodes[i], lay.sizes[i]
		lines := strings.Split(wrap(v.Name, 16), "\n")
		cls := "var " + string(v.Kind)
		fmt.Fprintf(&b, `<g class="%s" data-name="%s">`, cls, html.EscapeString(v.Name))
		if v.Kind == Stock {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fff" stroke="#333" stroke-width="1.4"/>`, c.x-s.x/2, c.y-s.y/2, s.x, s.y)
		} else {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fff" fill-opacity="0.85" stroke="none" rx="6"/>`, c.x-s.x/2+4, c.y-s.y/2+4, s.x-8, s.y-8)
		}
		y0 := c.y - float64(len(lines)-1)*7 + 4
		for k, line := range lines {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, c.x, y0+float64(k)*14, html.EscapeString(line))
		}
		b.WriteString(`</g>`)
	}
	if a != nil {
		drawLoopLabels(&b, lay, a, opt.maxLabels())
	}
	b.WriteString(`</g></svg>`)
	return b.String(), nil
}

func polaritySign(p Polarity) string {
	if p == Negative {
		return "−"
	}
	return p.String()
}

// bezierMid returns the point halfway along the middle cubic segment and the
// tangent there.
func bezierMid(pts []pt) (pt, float64, float64) {
	segs := (len(pts) - 1) / 3
	if segs < 1 {
		a, b := pts[0], pts[len(pts)-1]
		return pt{(a.x + b.x) / 2, (a.y + b.y) / 2}, b.x - a.x, b.y - a.y
	}
	k := (segs / 2) * 3
	p0, p1, p2, p3 := pts[k], pts[k+1], pts[k+2], pts[k+3]
	if segs%2 == 0 { // even: the join between two middle segments
		a, b := pts[k-1], pts[k+1]
		return p0, b.x - a.x, b.y - a.y
	}
	t := 0.5
	mt := 1 - t
	x := mt*mt*mt*p0.x + 3*mt*mt*t*p1.x + 3*mt*t*t*p2.x + t*t*t*p3.x
	y := mt*mt*mt*p0.y + 3*mt*mt*t*p1.y + 3*mt*t*t*p2.y + t*t*t*p3.y
	tx := 3*mt*mt*(p1.x-p0.x) + 6*mt*t*(p2.x-p1.x) + 3*t*t*(p3.x-p2.x)
	ty := 3*mt*mt*(p1.y-p0.y) + 6*mt*t*(p2.y-p1.y) + 3*t*t*(p3.y-p2.y)
	return pt{x, y}, tx, ty
}

// drawLoopLabels puts a circular arrow with the loop's ID at the middle of
// each of the first max loops (shortest first), nudging labels apart.
func drawLoopLabels(b *strings.Builder, lay *layout, a *Analysis, max int) {
	var placed []pt
	loops := append([]*Loop{}, a.Loops...)
	sort.SliceStable(loops, func(i, j int) bool { return len(loops[i].vars) < len(loops[j].vars) })
	for i, lp := range loops {
		if i >= max {
			break
		}
		var c pt
		for _, li := range lp.links {
			// the middle of each arrow pulls the label into the loop's interior
			if len(lay.edges[li]) < 2 {
				continue
			}
			mid, _, _ := bezierMid(lay.edges[li])
			c.x += mid.x
			c.y += mid.y
		}
		c.x /= float64(len(lp.links))
		c.y /= float64(len(lp.links))
		if len(lp.links) == 1 { // self-loop: sit beside the variable
			v := lay.nodes[lp.vars[0]]
			c = pt{v.x, v.y - 28}
		}
		// move off other labels and off variable names, spiralling out
		clashes := func(c pt) bool {
			for _, p := range placed {
				if math.Abs(p.x-c.x) < 30 && math.Abs(p.y-c.y) < 28 {
					return true
				}
			}
			for k, v := range lay.nodes {
				sz := lay.sizes[k]
				if math.Abs(v.x-c.x) < sz.x/2+14 && math.Abs(v.y-c.y) < sz.y/2+12 {
					return true
				}
			}
			return false
		}
		base := c
		for tries := 1; tries < 64 && clashes(c); tries++ {
			ang := float64(tries) * 2.4
			r := 10 * math.Sqrt(float64(tries))
			c = pt{base.x + r*math.Cos(ang), base.y + r*math.Sin(ang)}
		}
		placed = append(placed, c)
		col := "#b35c00"
		switch lp.Polarity {
		case Negative:
			col = "#0b63ce"
		case Unknown:
			col = "#777"
		}
		title := lp.Kind() + " loop " + lp.ID
		if lp.Title != "" {
			title += " (" + lp.Title + ")"
		}
		title += ": " + lp.Path()
		fmt.Fprintf(b, `<g class="loop-label" data-loop="%s"><title>%s</title>`, lp.ID, html.EscapeString(title))
		// a circle open at the top right with an arrowhead: the conventional loop mark
		r := 13.0
		x0, y0 := c.x+r*math.Cos(-math.Pi/3), c.y+r*math.Sin(-math.Pi/3)
		x1, y1 := c.x+r*math.Cos(-math.Pi/6-0.2), c.y+r*math.Sin(-math.Pi/6-0.2)
		fmt.Fprintf(b, `<path d="M%.1f,%.1f A%.0f,%.0f 0 1 0 %.1f,%.1f" fill="none" stroke="%s" stroke-width="1.5"/>`, x0, y0, r, r, x1, y1, col)
		fmt.Fprintf(b, `<path d="M%.1f,%.1f l-4,-5 l6,0 z" fill="%s"/>`, x0, y0+1, col)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" font-size="11" font-weight="700" fill="%s">%s</text></g>`, c.x, c.y+4, col, lp.ID)
	}
}
