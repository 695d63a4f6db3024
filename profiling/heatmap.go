package profiling

import (
	"fmt"
	"html"
	"math"
	"sort"
	"strings"
	"time"
)

// HeatMapSVG draws sample density over time, one row per value of the label
// groupBy and cols time buckets, in the spirit of FlameScope: dark cells are
// busy periods, and each cell links (through link) to the snapshots of its
// time range, to merge just that sub-range. A snapshot's total is spread over
// the buckets its time range covers. Empty when ss is.
func HeatMapSVG(ss []Snapshot, groupBy string, cols int, link func(from, until time.Time, group string) string) string {
	if len(ss) == 0 || cols <= 0 {
		return ""
	}
	lo, hi := ss[0].Start, ss[0].End
	for _, s := range ss {
		if s.Start.Before(lo) {
			lo = s.Start
		}
		if s.End.After(hi) {
			hi = s.End
		}
	}
	span := hi.Sub(lo)
	if span <= 0 {
		span = time.Second
	}
	step := span / time.Duration(cols)
	if step < time.Second {
		step = time.Second
		cols = int(math.Ceil(float64(span) / float64(step)))
	}
	rows := map[string][]float64{}
	for _, s := range ss {
		g := s.Labels[groupBy]
		if rows[g] == nil {
			rows[g] = make([]float64, cols)
		}
		dur := s.End.Sub(s.Start)
		if dur <= 0 {
			c := min(int(s.Start.Sub(lo)/step), cols-1)
			rows[g][c] += float64(s.Total)
			continue
		}
		for c := max(int(s.Start.Sub(lo)/step), 0); c < cols; c++ {
			cs := lo.Add(time.Duration(c) * step)
			ce := cs.Add(step)
			if !cs.Before(s.End) {
				break
			}
			ov := minTime(ce, s.End).Sub(maxTime(cs, s.Start))
			if ov > 0 {
				rows[g][c] += float64(s.Total) * float64(ov) / float64(dur)
			}
		}
	}
	names := make([]string, 0, len(rows))
	var peak float64
	for g, r := range rows {
		names = append(names, g)
		for _, v := range r {
			peak = math.Max(peak, v)
		}
	}
	sort.Strings(names)
	const labelW, cellH, top = 120, 22, 18
	width := 960
	cw := float64(width-labelW) / float64(cols)
	height := top + cellH*len(names) + 22
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="heatmap" id="heatmap" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, sans-serif" font-size="11">`, width, height, width, height)
	fmt.Fprintf(&b, `<text x="%d" y="12" fill="#555">sample density, %s per cell (click a cell to merge that range)</text>`, labelW, step.Round(time.Second))
	for i, g := range names {
		y := top + i*cellH
		name := g
		if name == "" {
			name = "(no " + groupBy + ")"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#333">%s</text>`, labelW-6, y+15, html.EscapeString(name))
		for c, v := range rows[g] {
			if v == 0 {
				continue
			}
			cs := lo.Add(time.Duration(c) * step)
			alpha := 0.12 + 0.88*v/peak
			fmt.Fprintf(&b, `<a href="%s"><rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#c0392b" fill-opacity="%.2f"><title>%s %s–%s: %.0f</title></rect></a>`,
				html.EscapeString(link(cs, cs.Add(step), g)), float64(labelW)+float64(c)*cw, y, math.Max(cw-1, 1), cellH-2, alpha,
				html.EscapeString(name), cs.Format("15:04:05"), cs.Add(step).Format("15:04:05"), v)
		}
	}
	yAxis := top + cellH*len(names) + 14
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`, labelW, yAxis, lo.UTC().Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#555">%s</text>`, width-2, yAxis, hi.UTC().Format("15:04:05 UTC"))
	b.WriteString(`</svg>`)
	return b.String()
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
