// Package chart draws small, dependency-free SVG charts on the server: line
// charts of series over x (time, step number) and bar charts, with axes, ticks,
// a legend and optional horizontal reference lines. Pages embed the SVG inline;
// the CLI writes it to files. It is deliberately small: enough for srekit's
// pages, no JavaScript.
package chart

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Series is one named line or set of bars.
type Series struct {
	Name   string
	X      []float64 // for bar charts, ignored (bars follow Labels)
	Y      []float64
	Color  string // CSS colour; a palette colour when empty
	Dashed bool
	// PointLabels, when set, are written beside the points of a line series
	// (e.g. step numbers on a cost-versus-availability chart).
	PointLabels []string
}

// RefLine is a horizontal line across the plot, such as a price or a threshold.
type RefLine struct {
	Y     float64
	Label string
	Color string
}

// Chart describes one chart.
type Chart struct {
	Title         string
	XLabel        string
	YLabel        string
	Width, Height int // pixels; 720 x 320 when zero
	Series        []Series
	Refs          []RefLine
	// Labels names the x positions of a bar chart (one bar group per label).
	Labels []string
	// FromZero makes the y axis start at zero (bar charts always do).
	FromZero bool
	// ID is put on the <svg> element, for tests and styling.
	ID string
	// XFormat formats x tick labels; plain numbers when nil.
	XFormat func(float64) string
	// YFormat formats y tick labels; plain numbers when nil.
	YFormat func(float64) string
}

// Palette is the default series colours, chosen to stay apart for colour-blind readers.
var Palette = []string{"#0b63ce", "#d1495b", "#2e933c", "#edae49", "#6a4c93", "#00798c", "#8d6a9f", "#444"}

const (
	padLeft   = 64
	padRight  = 16
	padTop    = 30
	padBottom = 60
)

func (c *Chart) size() (int, int) {
	w, h := c.Width, c.Height
	if w <= 0 {
		w = 720
	}
	if h <= 0 {
		h = 320
	}
	return w, h
}

func color(s Series, i int) string {
	if s.Color != "" {
		return s.Color
	}
	return Palette[i%len(Palette)]
}

// bounds returns the data range, widened to include the reference lines.
func (c *Chart) bounds(bars bool) (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, s := range c.Series {
		for i, y := range s.Y {
			if math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			ymin, ymax = math.Min(ymin, y), math.Max(ymax, y)
			if !bars && i < len(s.X) {
				xmin, xmax = math.Min(xmin, s.X[i]), math.Max(xmax, s.X[i])
			}
		}
	}
	for _, r := range c.Refs {
		ymin, ymax = math.Min(ymin, r.Y), math.Max(ymax, r.Y)
	}
	if (c.FromZero || bars) && ymin > 0 {
		ymin = 0
	}
	if math.IsInf(ymin, 0) {
		ymin, ymax = 0, 1
	}
	if math.IsInf(xmin, 0) {
		xmin, xmax = 0, 1
	}
	if ymax == ymin {
		ymax = ymin + 1
	}
	if xmax == xmin {
		xmax = xmin + 1
	}
	return
}

// niceTicks returns about n round tick values covering [lo, hi].
func niceTicks(lo, hi float64, n int) []float64 {
	span := hi - lo
	step := math.Pow(10, math.Floor(math.Log10(span/float64(n))))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= float64(n) {
			step *= m
			break
		}
	}
	var ticks []float64
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, math.Round(v/step)*step)
	}
	return ticks
}

func formatNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case a >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case a == math.Trunc(a):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// SVG renders a line chart: each series is drawn through its (X, Y) points.
func (c Chart) SVG() string { return c.render(false) }

// BarSVG renders a bar chart: one group per label, one bar per series.
func (c Chart) BarSVG() string { return c.render(true) }

func (c Chart) render(bars bool) string {
	w, h := c.size()
	xmin, xmax, ymin, ymax := c.bounds(bars)
	yt := niceTicks(ymin, ymax, 5)
	if len(yt) > 0 {
		ymin = math.Min(ymin, yt[0])
		ymax = math.Max(ymax, yt[len(yt)-1])
	}
	pw, ph := float64(w-padLeft-padRight), float64(h-padTop-padBottom)
	sx := func(x float64) float64 { return padLeft + (x-xmin)/(xmax-xmin)*pw }
	sy := func(y float64) float64 { return padTop + ph - (y-ymin)/(ymax-ymin)*ph }
	yf := c.YFormat
	if yf == nil {
		yf = formatNum
	}
	xf := c.XFormat
	if xf == nil {
		xf = formatNum
	}

	var b strings.Builder
	id := ""
	if c.ID != "" {
		id = fmt.Sprintf(` id="%s"`, html.EscapeString(c.ID))
	}
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart"%s width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, id, w, h, w, h, html.EscapeString(c.Title))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`, w, h)
	if c.Title != "" {
		fmt.Fprintf(&b, `<text x="%d" y="18" font-weight="600">%s</text>`, padLeft, html.EscapeString(c.Title))
	}
	// y grid and ticks
	for _, v := range yt {
		y := sy(v)
		fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#e6e6e6"/>`, padLeft, float64(w-padRight), y, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`, padLeft-6, y+4, html.EscapeString(yf(v)))
	}
	fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%.1f" stroke="#888"/>`, padLeft, padLeft, padTop, padTop+ph)
	fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#888"/>`, padLeft, float64(w-padRight), padTop+ph, padTop+ph)

	if bars {
		c.drawBars(&b, pw, sy, ymin)
	} else {
		for _, v := range niceTicks(xmin, xmax, 8) {
			x := sx(v)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, x, padTop+ph+16, html.EscapeString(xf(v)))
		}
		for i, s := range c.Series {
			var pts []string
			for j := range s.Y {
				if j >= len(s.X) || math.IsNaN(s.Y[j]) || math.IsInf(s.Y[j], 0) {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", sx(s.X[j]), sy(s.Y[j])))
			}
			dash := ""
			if s.Dashed {
				dash = ` stroke-dasharray="5,4"`
			}
			fmt.Fprintf(&b, `<polyline class="series" data-name="%s" fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`,
				html.EscapeString(s.Name), color(s, i), dash, strings.Join(pts, " "))
			if len(pts) <= 40 {
				for _, p := range pts {
					xy := strings.SplitN(p, ",", 2)
					fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, xy[0], xy[1], color(s, i))
				}
			}
			for j, label := range s.PointLabels {
				if j >= len(s.X) || j >= len(s.Y) || math.IsNaN(s.Y[j]) || math.IsInf(s.Y[j], 0) {
					continue
				}
				fmt.Fprintf(&b, `<text class="point-label" x="%.1f" y="%.1f">%s</text>`, sx(s.X[j])+4, sy(s.Y[j])-5, html.EscapeString(label))
			}
		}
	}
	for _, r := range c.Refs {
		col := r.Color
		if col == "" {
			col = "#b3261e"
		}
		y := sy(r.Y)
		fmt.Fprintf(&b, `<line class="ref" x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-dasharray="6,4" stroke-width="1.5"/>`, padLeft, float64(w-padRight), y, y, col)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" fill="%s">%s</text>`, float64(w-padRight-4), y-4, col, html.EscapeString(r.Label))
	}
	if c.XLabel != "" {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`, padLeft+pw/2, h-6, html.EscapeString(c.XLabel))
	}
	if c.YLabel != "" {
		fmt.Fprintf(&b, `<text transform="translate(12,%.1f) rotate(-90)" text-anchor="middle">%s</text>`, padTop+ph/2, html.EscapeString(c.YLabel))
	}
	// legend
	lx := float64(padLeft + 8)
	if len(c.Series) > 1 {
		for i, s := range c.Series {
			fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="10" height="10" fill="%s"/><text x="%.1f" y="%d">%s</text>`,
				lx, padTop+2, color(s, i), lx+14, padTop+11, html.EscapeString(s.Name))
			lx += 24 + 7*float64(len(s.Name))
		}
	}
	b.WriteString(`</svg>`)
	return b.String()
}

func (c Chart) drawBars(b *strings.Builder, pw float64, sy func(float64) float64, ymin float64) {
	n := len(c.Labels)
	if n == 0 {
		return
	}
	group := pw / float64(n)
	k := len(c.Series)
	if k == 0 {
		return
	}
	bw := group * 0.8 / float64(k)
	base := sy(math.Max(ymin, 0))
	for gi, label := range c.Labels {
		gx := padLeft + float64(gi)*group + group*0.1
		for si, s := range c.Series {
			if gi >= len(s.Y) {
				continue
			}
			y := sy(s.Y[gi])
			top, height := math.Min(y, base), math.Abs(base-y)
			fmt.Fprintf(b, `<rect class="bar" data-series="%s" data-label="%s" data-value="%g" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`,
				html.EscapeString(s.Name), html.EscapeString(label), s.Y[gi], gx+float64(si)*bw, top, bw-1, height, color(s, si),
				html.EscapeString(label), html.EscapeString(formatNum(s.Y[gi])))
		}
		lab := label
		if r := []rune(lab); len(r) > 20 {
			lab = string(r[:19]) + "…"
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" transform="rotate(-30 %.1f %.1f)">%s</text>`,
			gx+group*0.4, sy(math.Max(ymin, 0))+14, gx+group*0.4, sy(math.Max(ymin, 0))+14, html.EscapeString(lab))
	}
}
