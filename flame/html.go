package flame

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"sort"
	"strings"
)

//go:embed flame_html.js
var htmlJS string

// maxSandwichStacks bounds the stacks embedded for the sandwich view, so the
// page of a huge profile stays small; the page says how much they cover.
const maxSandwichStacks = 20000

// maxTableRows bounds the function table.
const maxTableRows = 2000

// FuncStat is one function's share of a profile.
type FuncStat struct {
	Name  string
	Self  int64 // in stacks where it is the leaf
	Total int64 // in stacks where it appears (once per stack, however deep the recursion)
}

// Functions returns each function's self and total counts, by total, largest first.
func (p *Profile) Functions() []FuncStat {
	idx := make(map[string]int)
	var out []FuncStat
	seen := make(map[string]int) // name -> sample number last counted, for recursion
	for n, s := range p.Samples {
		for i, f := range s.Stack {
			j, ok := idx[f]
			if !ok {
				j = len(out)
				idx[f] = j
				out = append(out, FuncStat{Name: f})
			}
			if last, ok := seen[f]; !ok || last != n+1 {
				out[j].Total += s.Value
				seen[f] = n + 1
			}
			if i == len(s.Stack)-1 {
				out[j].Self += s.Value
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool {
		if out[a].Total != out[b].Total {
			return out[a].Total > out[b].Total
		}
		return out[a].Name < out[b].Name
	})
	return out
}

// RenderHTML writes p as one offline HTML page: the interactive flame graph,
// a table of functions (self and total, sortable, filtered by the search),
// and a sandwich view of one function (its callers above, its callees below).
func RenderHTML(w io.Writer, p *Profile, o RenderOptions) error {
	g, err := lay(p, o)
	if err != nil {
		return err
	}
	o = g.o
	bw := bufio.NewWriterSize(w, 256<<10)
	fmt.Fprintf(bw, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>%s</title>
<meta name="generator" content="srekit flame">
<style>
body { font-family: sans-serif; margin: 1em; color: #222; }
h1 { font-size: 1.3em; margin: 0 0 .5em 0; }
.bar { display: flex; gap: 1em; align-items: center; margin: .5em 0; }
.bar input { width: 24em; padding: .2em; }
#flame svg { width: 100%%; height: auto; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; }
th { cursor: pointer; background: #f4f4f4; position: sticky; top: 0; }
td.name { text-align: left; font-family: monospace; max-width: 60em; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; cursor: pointer; }
tr.sel td { background: #fde; }
.tablewrap { max-height: 30em; overflow: auto; border: 1px solid #ddd; }
.sandwich { position: relative; font: 11px monospace; }
.sandwich div.f { position: absolute; height: 15px; overflow: hidden; white-space: nowrap; border-radius: 2px; box-sizing: border-box; border: 1px solid #fff; padding-left: 2px; }
.sandwich div.me { background: rgb(230,0,230); color: #fff; }
.note { color: #666; font-size: .9em; }
</style></head><body>
<h1>%s</h1>
<div class="bar"><label>Search (regex) <input id="q" type="search" placeholder="e.g. ^ext4_ or malloc"></label>
<label><input id="ic" type="checkbox"> ignore case</label> <span id="qinfo" class="note"></span></div>
<div id="flame">
`, html.EscapeString(o.Title), html.EscapeString(o.Title))
	if err := g.writeSVG(bw, false); err != nil {
		return err
	}
	bw.WriteString("</div>\n<h2>Functions</h2>\n<p class=\"note\">Self: in stacks where the function is the leaf. Total: in stacks where it appears (once per stack, whatever the recursion). Click a function for its sandwich view.</p>\n")
	funcs := p.Functions()
	total := p.Total()
	if g.diff && !o.Elided {
		total = p.Total2()
		q := *p
		q.Samples = make([]Sample, len(p.Samples))
		for i, s := range p.Samples {
			q.Samples[i] = Sample{Stack: s.Stack, Value: s.Value2}
		}
		funcs = q.Functions()
	}
	bw.WriteString("<div class=\"tablewrap\"><table id=\"funcs\"><thead><tr><th data-k=\"name\">Function</th><th data-k=\"self\">Self</th><th data-k=\"selfp\">Self %</th><th data-k=\"total\">Total</th><th data-k=\"totalp\">Total %</th></tr></thead><tbody>\n")
	for i, f := range funcs {
		if i == maxTableRows {
			break
		}
		fmt.Fprintf(bw, "<tr><td class=\"name\" title=\"%s\">%s</td><td>%d</td><td>%.2f</td><td>%d</td><td>%.2f</td></tr>\n",
			html.EscapeString(validText(f.Name)), html.EscapeString(validText(f.Name)), f.Self, pctOf(f.Self, total), f.Total, pctOf(f.Total, total))
	}
	bw.WriteString("</tbody></table></div>\n")
	if len(funcs) > maxTableRows {
		fmt.Fprintf(bw, "<p class=\"note\">%d more functions not listed.</p>\n", len(funcs)-maxTableRows)
	}
	// stacks for the sandwich view
	data, covered := sandwichData(p, g.diff && !o.Elided)
	bw.WriteString("<h2>Sandwich <span id=\"sw-name\" class=\"note\">(click a function)</span></h2>\n")
	if covered < total {
		fmt.Fprintf(bw, "<p class=\"note\">The sandwich view uses the %d largest stacks, %.1f%% of the total.</p>\n", maxSandwichStacks, pctOf(covered, total))
	}
	bw.WriteString("<h3>Callers</h3><div id=\"callers\" class=\"sandwich\"></div><h3>Callees</h3><div id=\"callees\" class=\"sandwich\"></div>\n<script>\nvar flameData = ")
	bw.Write(data)
	bw.WriteString(";\n")
	bw.WriteString(strings.ReplaceAll(htmlJS, "</script", "<\\/script"))
	bw.WriteString("</script>\n</body></html>\n")
	return bw.Flush()
}

func pctOf(v, total int64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(v) / float64(total)
}

func validText(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }

// sandwichData encodes the largest stacks compactly for the page script:
// a table of names and each stack as indexes into it.
func sandwichData(p *Profile, useAfter bool) ([]byte, int64) {
	type st struct {
		stack []string
		v     int64
	}
	var ss []st
	for _, s := range p.Samples {
		v := s.Value
		if useAfter {
			v = s.Value2
		}
		if v > 0 {
			ss = append(ss, st{s.Stack, v})
		}
	}
	if len(ss) > maxSandwichStacks {
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].v > ss[j].v })
		ss = ss[:maxSandwichStacks]
	}
	idx := make(map[string]int)
	var names []string
	stacks := make([][]int, len(ss))
	values := make([]int64, len(ss))
	var covered int64
	for i, s := range ss {
		row := make([]int, len(s.stack))
		for j, f := range s.stack {
			k, ok := idx[f]
			if !ok {
				k = len(names)
				idx[f] = k
				names = append(names, validText(f))
			}
			row[j] = k
		}
		stacks[i] = row
		values[i] = s.v
		covered += s.v
	}
	b, _ := json.Marshal(map[string]any{"names": names, "stacks": stacks, "values": values})
	return b, covered
}
