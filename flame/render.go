package flame

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// RenderOptions are flamegraph.pl's options, plus trimming and the
// differential views. The zero value draws what flamegraph.pl draws by default.
type RenderOptions struct {
	Title     string  // heading; "Flame Graph" (or "Icicle Graph", "Flame Chart") by default
	Subtitle  string  // second heading, optional
	Width     int     // image width in pixels (1200)
	Height    int     // frame height in pixels (16)
	MinWidth  float64 // frames narrower than this are left out: pixels (0.1), or percent of the total with MinWidthPercent
	FontType  string  // "Verdana"
	FontSize  float64 // 12
	FontWidth float64 // average character width relative to FontSize (0.59)
	CountName string  // what counts are ("samples", or the profile's unit)
	NameType  string  // what frames are ("Function:")
	Colors    string  // palette: hot (default), mem, io, wakeup, chain, java, js, perl, red, green, blue, aqua, yellow, purple, orange
	BgColors  string  // background: yellow, blue, green, grey or "#rrggbb"; chosen by palette by default
	Search    string  // a regex searched when the graph opens
	Inverted  bool    // icicle graph: root at the top

	MinWidthPercent bool              // MinWidth is a percentage of the total
	Hash            bool              // colours keyed by a hash weighting the first characters of the name
	Random          bool              // random colours
	Palette         map[string]string // consistent palette (--cp): names found here keep their colour, new ones are added
	Reverse         bool              // reverse each stack (leaf becomes root), then merge
	Flamechart      bool              // keep the input order (time) and do not merge non-adjacent stacks
	Negate          bool              // swap the differential hues (blue grew, red shrank)
	Factor          float64           // multiply the counts shown in tooltips (1)
	Notes           string            // text in an SVG comment (for tooling)
	Total           int64             // scale the graph to this total when larger than the profile's

	// MaxNodes bounds the number of frames drawn: when more would be drawn,
	// the narrowest are left out (shown as "trimmed" placeholders), so a huge
	// profile still makes a small, fast file. 0 means no bound.
	MaxNodes int
	// Elided draws a differential profile by its "before" counts, showing
	// what shrank or disappeared (frames gone from "after" are invisible in
	// the usual view).
	Elided bool
}

//go:embed flame.js
var flameJS string

// ErrNoSamples is returned when there is nothing to draw.
var ErrNoSamples = errors.New("no stack counts found")

// withDefaults fills in flamegraph.pl's defaults.
func (o RenderOptions) withDefaults(p *Profile) (RenderOptions, error) {
	if o.Width <= 0 {
		o.Width = 1200
	}
	if o.Height <= 0 {
		o.Height = 16
	}
	if o.Width <= 2*xpad+10 || o.Width > 1<<20 || o.Height > 1<<10 {
		return o, fmt.Errorf("width %d or height %d out of range", o.Width, o.Height)
	}
	if o.MinWidth <= 0 && !o.MinWidthPercent {
		o.MinWidth = 0.1
	}
	if o.MinWidth < 0 || o.MinWidthPercent && o.MinWidth > 100 {
		return o, fmt.Errorf("minwidth %g out of range", o.MinWidth)
	}
	if o.FontType == "" {
		o.FontType = "Verdana"
	}
	if o.FontSize <= 0 {
		o.FontSize = 12
	}
	if o.FontWidth <= 0 {
		o.FontWidth = 0.59
	}
	if o.CountName == "" {
		o.CountName = p.Unit
		if o.CountName == "" {
			o.CountName = "samples"
		}
	}
	if o.NameType == "" {
		o.NameType = "Function:"
	}
	if o.Colors == "" {
		o.Colors = "hot"
	}
	if !ValidPalette(o.Colors) {
		return o, fmt.Errorf("unknown palette %q (want one of %s)", o.Colors, strings.Join(Palettes, ", "))
	}
	if o.Factor == 0 {
		o.Factor = 1
	}
	if o.Title == "" {
		switch {
		case o.Flamechart:
			o.Title = "Flame Chart"
		case o.Inverted:
			o.Title = "Icicle Graph"
		default:
			o.Title = "Flame Graph"
		}
	}
	if strings.ContainsAny(o.Notes, "<>") || strings.Contains(o.Notes, "--") {
		return o, errors.New("notes cannot contain <, > or --")
	}
	if o.Search != "" {
		if _, err := regexp.Compile(o.Search); err != nil {
			return o, fmt.Errorf("search: %w", err)
		}
	}
	if o.BgColors == "" {
		switch o.Colors {
		case "mem":
			o.BgColors = "green"
		case "io", "wakeup", "chain":
			o.BgColors = "blue"
		case "red", "green", "blue", "aqua", "yellow", "purple", "orange":
			o.BgColors = "grey"
		default:
			o.BgColors = "yellow"
		}
	}
	return o, nil
}

func background(name string) (string, string, error) {
	switch name {
	case "yellow":
		return "#eeeeee", "#eeeeb0", nil
	case "blue":
		return "#eeeeee", "#e0e0ff", nil
	case "green":
		return "#eef2ee", "#e0ffe0", nil
	case "grey", "gray":
		return "#f8f8f8", "#e8e8e8", nil
	}
	if len(name) == 7 && name[0] == '#' {
		if _, err := strconv.ParseUint(name[1:], 16, 32); err == nil {
			return name, name, nil
		}
	}
	return "", "", fmt.Errorf("unknown background %q (want yellow, blue, green, grey or #rrggbb)", name)
}

// graph is a laid-out graph ready to be written.
type graph struct {
	o       RenderOptions
	l       *layout
	diff    bool
	timeMax int64
	scale   float64 // pixels per count
	height  int
	ypad1   float64
	ypad2   float64
	ypad3   float64
}

const xpad = 10

// lay lays the profile out under the options.
func lay(p *Profile, o RenderOptions) (*graph, error) {
	o, err := o.withDefaults(p)
	if err != nil {
		return nil, err
	}
	diff := p.Diff
	in := flowInputs(p, &o)
	var total int64
	for _, s := range in {
		if diff && !o.Elided {
			total = SatAdd(total, s.after)
		} else {
			total = SatAdd(total, s.before)
		}
	}
	if total <= 0 {
		return nil, ErrNoSamples
	}
	timeMax := total
	if o.Total > timeMax {
		timeMax = o.Total
	}
	scale := float64(o.Width-2*xpad) / float64(timeMax)
	var minValue int64
	if o.MinWidthPercent {
		minValue = int64(math.Ceil(float64(timeMax) * o.MinWidth / 100))
	} else {
		minValue = int64(math.Ceil(o.MinWidth / scale))
	}
	placeMin := int64(math.Ceil(1 / scale)) // a pixel
	var l *layout
	if o.MaxNodes > 0 {
		var widths []int64
		l = flow(in, diff, o.Elided, minValue, placeMin, func(w int64) { widths = append(widths, w) })
		if len(l.frames) > o.MaxNodes {
			sort.Slice(widths, func(i, j int) bool { return widths[i] > widths[j] })
			cut := widths[min(o.MaxNodes, len(widths)-1)] + 1
			if cut > minValue {
				minValue = cut
			}
			for len(l.frames) > o.MaxNodes {
				l = flow(in, diff, o.Elided, minValue, placeMin, nil)
				minValue += minValue/4 + 1 // placeholders can push past the bound
			}
		}
	} else {
		l = flow(in, diff, o.Elided, minValue, placeMin, nil)
	}
	g := &graph{o: o, l: l, diff: diff, timeMax: timeMax, scale: scale}
	g.ypad1 = o.FontSize * 3
	g.ypad2 = o.FontSize*2 + 10
	g.ypad3 = o.FontSize * 2
	h := float64(l.maxDepth+1)*float64(o.Height) + g.ypad1 + g.ypad2
	if o.Subtitle != "" {
		h += g.ypad3
	}
	g.height = int(math.Ceil(h))
	return g, nil
}

// Render writes p as a self-contained interactive SVG flame graph, as
// flamegraph.pl draws it: hover for details, click to zoom, Ctrl-F to search
// with a regex (matches painted rgb(230,0,230), "Matched: x%" shown), Ctrl-I
// to toggle case; zoom and search are kept in the URL.
func Render(w io.Writer, p *Profile, o RenderOptions) error {
	g, err := lay(p, o)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	if err := g.writeSVG(bw, true); err != nil {
		return err
	}
	return bw.Flush()
}

// writeSVG writes the whole <svg> element; standalone adds the XML prolog.
func (g *graph) writeSVG(bw *bufio.Writer, standalone bool) error {
	o := g.o
	bg1, bg2, err := background(o.BgColors)
	if err != nil {
		return err
	}
	if standalone {
		bw.WriteString("<?xml version=\"1.0\" standalone=\"no\"?>\n<!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd\">\n")
	}
	fmt.Fprintf(bw, "<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" class=\"flamegraph\">\n",
		o.Width, g.height, o.Width, g.height)
	fmt.Fprintf(bw, "<!-- Flame graph drawn by srekit flame; the layout and colours follow Brendan Gregg's flamegraph.pl. -->\n<!-- NOTES: %s -->\n", o.Notes)
	fs := fmtNum(o.FontSize)
	fmt.Fprintf(bw, `<defs>
	<linearGradient id="background" y1="0" y2="1" x1="0" x2="0">
		<stop stop-color="%s" offset="5%%"/>
		<stop stop-color="%s" offset="95%%"/>
	</linearGradient>
</defs>
<style type="text/css">
	text { font-family:%s; font-size:%spx; fill:rgb(0,0,0); }
	#search, #ignorecase { opacity:0.1; cursor:pointer; }
	#search:hover, #search.show, #ignorecase:hover, #ignorecase.show { opacity:1; }
	#subtitle { text-anchor:middle; fill:rgb(160,160,160); }
	#title { text-anchor:middle; font-size:%spx; }
	#unzoom { cursor:pointer; }
	#frames > *:hover { stroke:black; stroke-width:0.5; cursor:pointer; }
	.hide { display:none; }
	.parent { opacity:0.5; }
	.new rect { stroke:rgb(120,0,0); stroke-width:1; stroke-dasharray:3,2; }
	.gone rect { stroke:rgb(0,0,120); stroke-width:1; stroke-dasharray:3,2; }
	.trim rect { fill:url(#trimfill); }
</style>
<defs><pattern id="trimfill" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="rgb(215,215,215)"/><rect width="2" height="6" fill="rgb(170,170,170)"/></pattern></defs>
`, bg1, bg2, xmlEscape(o.FontType), fs, fmtNum(o.FontSize+5))
	fmt.Fprintf(bw, "<rect x=\"0.0\" y=\"0\" width=\"%d.0\" height=\"%d.0\" fill=\"url(#background)\"/>\n", o.Width, g.height)
	half := o.Width / 2
	fmt.Fprintf(bw, "<text id=\"title\" x=\"%d.00\" y=\"%s\">%s</text>\n", half, fmtNum(o.FontSize*2), xmlEscape(o.Title))
	if o.Subtitle != "" {
		fmt.Fprintf(bw, "<text id=\"subtitle\" x=\"%d.00\" y=\"%s\">%s</text>\n", half, fmtNum(o.FontSize*4), xmlEscape(o.Subtitle))
	}
	low := float64(g.height) - g.ypad2/2
	fmt.Fprintf(bw, "<text id=\"details\" x=\"%d.00\" y=\"%s\"> </text>\n", xpad, fmtNum(low))
	fmt.Fprintf(bw, "<text id=\"unzoom\" x=\"%d.00\" y=\"%s\" class=\"hide\">Reset Zoom</text>\n", xpad, fmtNum(o.FontSize*2))
	fmt.Fprintf(bw, "<text id=\"search\" x=\"%d.00\" y=\"%s\">Search</text>\n", o.Width-xpad-100, fmtNum(o.FontSize*2))
	fmt.Fprintf(bw, "<text id=\"ignorecase\" x=\"%d.00\" y=\"%s\">ic</text>\n", o.Width-xpad-16, fmtNum(o.FontSize*2))
	fmt.Fprintf(bw, "<text id=\"matched\" x=\"%d.00\" y=\"%s\"> </text>\n", o.Width-xpad-100, fmtNum(low))
	if g.l.trimmedFrames > 0 {
		fmt.Fprintf(bw, "<text id=\"trimmed\" x=\"%d.00\" y=\"%s\" style=\"font-size:%spx;fill:rgb(100,100,100)\">%d frames too narrow to draw were left out (hatched where wide enough to show)</text>\n",
			half-200, fmtNum(low), fmtNum(o.FontSize*0.8), g.l.trimmedFrames)
	}
	g.writeFrames(bw)
	cfg, _ := json.Marshal(map[string]any{
		"xpad": xpad, "fontsize": o.FontSize, "fontwidth": o.FontWidth, "inverted": o.Inverted,
		"nametype": o.NameType, "searchcolor": SearchColor, "search": o.Search,
	})
	bw.WriteString("<script type=\"text/ecmascript\"><![CDATA[\nvar flameConfig = ")
	bw.Write(cfg)
	bw.WriteString(";\n")
	bw.WriteString(flameJS)
	bw.WriteString("]]></script>\n")
	bw.WriteString("</svg>\n")
	return nil
}

// writeFrames writes the <g id="frames"> group, one <g> per frame.
func (g *graph) writeFrames(bw *bufio.Writer) {
	o := g.o
	c := &colorer{palette: o.Colors, hash: o.Hash, fixed: o.Palette}
	if o.Random {
		c.random = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	bw.WriteString("<g id=\"frames\">\n")
	var buf []byte
	fh := float64(o.Height)
	charW := o.FontSize * o.FontWidth
	for i := range g.l.frames {
		f := &g.l.frames[i]
		x1 := xpad + float64(f.start)*g.scale
		x2 := xpad + float64(f.end)*g.scale
		if f.depth == 0 {
			x2 = xpad + float64(g.timeMax)*g.scale
		}
		var y1, y2 float64
		if !o.Inverted {
			y1 = float64(g.height) - g.ypad2 - float64(f.depth+1)*fh + 1
			y2 = float64(g.height) - g.ypad2 - float64(f.depth)*fh
		} else {
			y1 = g.ypad1 + float64(f.depth)*fh
			y2 = g.ypad1 + float64(f.depth+1)*fh - 1
		}
		if o.Subtitle != "" && o.Inverted {
			y1 += g.ypad3
			y2 += g.ypad3
		}
		samples := math.Round(float64(f.end-f.start) * o.Factor)
		name := f.name
		buf = append(buf[:0], "<g"...)
		switch {
		case f.trimmed > 0:
			buf = append(buf, " class=\"trim\""...)
		case g.diff && f.depth > 0 && f.before == 0 && f.after > 0:
			buf = append(buf, " class=\"new\""...)
		case g.diff && f.depth > 0 && f.after == 0 && f.before > 0:
			buf = append(buf, " class=\"gone\""...)
		}
		buf = append(buf, "><title>"...)
		switch {
		case f.depth == 0:
			buf = append(buf, "all ("...)
			buf = appendCommas(buf, samples)
			buf = append(buf, ' ')
			buf = appendXML(buf, o.CountName)
			buf = append(buf, ", 100%)"...)
		case f.trimmed > 0:
			buf = append(buf, "[trimmed: "...)
			buf = strconv.AppendInt(buf, int64(f.trimmed), 10)
			buf = append(buf, " narrow frames] ("...)
			buf = appendCommas(buf, samples)
			buf = append(buf, ' ')
			buf = appendXML(buf, o.CountName)
			buf = append(buf, ", "...)
			buf = strconv.AppendFloat(buf, 100*samples/(float64(g.timeMax)*o.Factor), 'f', 2, 64)
			buf = append(buf, "%)"...)
		default:
			buf = appendXML(buf, stripAnnotation(name))
			buf = append(buf, " ("...)
			buf = appendCommas(buf, samples)
			buf = append(buf, ' ')
			buf = appendXML(buf, o.CountName)
			buf = append(buf, ", "...)
			buf = strconv.AppendFloat(buf, 100*samples/(float64(g.timeMax)*o.Factor), 'f', 2, 64)
			buf = append(buf, '%')
			if g.diff {
				d := f.delta
				if o.Negate {
					d = -d
				}
				buf = append(buf, "; "...)
				if d > 0 {
					buf = append(buf, '+')
				}
				buf = strconv.AppendFloat(buf, 100*float64(d)*o.Factor/(float64(g.timeMax)*o.Factor), 'f', 2, 64)
				buf = append(buf, '%')
				switch {
				case f.before == 0:
					buf = append(buf, "; new"...)
				case f.after == 0:
					buf = append(buf, "; gone"...)
				}
			}
			buf = append(buf, ')')
		}
		buf = append(buf, "</title><rect x=\""...)
		buf = strconv.AppendFloat(buf, x1, 'f', 1, 64)
		buf = append(buf, "\" y=\""...)
		buf = appendNum(buf, y1)
		buf = append(buf, "\" width=\""...)
		buf = strconv.AppendFloat(buf, roundTo(x2, 1)-roundTo(x1, 1), 'f', 1, 64)
		buf = append(buf, "\" height=\""...)
		buf = strconv.AppendFloat(buf, y2-y1, 'f', 1, 64)
		buf = append(buf, "\" fill=\""...)
		switch {
		case f.trimmed > 0:
			buf = append(buf, "rgb(215,215,215)"...)
		case name == "--":
			buf = append(buf, "rgb(160,160,160)"...)
		case name == "-":
			buf = append(buf, "rgb(200,200,200)"...)
		case g.diff:
			buf = append(buf, diffColor(f.delta, g.l.maxDelta, o.Negate)...)
		default:
			buf = append(buf, c.color(name)...)
		}
		buf = append(buf, "\" rx=\"2\" ry=\"2\"/><text x=\""...)
		buf = strconv.AppendFloat(buf, x1+3, 'f', 2, 64)
		buf = append(buf, "\" y=\""...)
		buf = appendNum(buf, 3+(y1+y2)/2)
		buf = append(buf, "\">"...)
		if f.depth > 0 && f.trimmed == 0 {
			buf = appendXML(buf, fitText(stripAnnotation(name), int((x2-x1)/charW)))
		}
		buf = append(buf, "</text></g>\n"...)
		bw.Write(buf)
	}
	bw.WriteString("</g>\n")
}

// fitText cuts name to chars characters, ending in ".." when cut, or
// returns "" when not even one character and the dots fit.
func fitText(name string, chars int) string {
	if chars < 3 {
		return ""
	}
	n := utf8.RuneCountInString(name)
	if n <= chars {
		return name
	}
	i, k := 0, 0
	for i = range name {
		if k == chars-2 {
			break
		}
		k++
	}
	return name[:i] + ".."
}

// stripAnnotation removes a trailing _[k], _[w], _[i] or _[j] (kernel,
// waker, inlined, JIT), which only picks the colour.
func stripAnnotation(name string) string {
	if n := len(name); n >= 4 && name[n-4] == '_' && name[n-3] == '[' && name[n-1] == ']' {
		switch name[n-2] {
		case 'k', 'w', 'i', 'j':
			return name[:n-4]
		}
	}
	return name
}

func roundTo(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// fmtNum formats a number as Perl prints it: no decimals when whole.
func fmtNum(v float64) string { return string(appendNum(nil, v)) }

func appendNum(b []byte, v float64) []byte {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.AppendInt(b, int64(v), 10)
	}
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}

// appendCommas appends a whole number with thousands separators.
func appendCommas(b []byte, v float64) []byte {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	if neg {
		b = append(b, '-')
		s = s[1:]
	}
	for i := 0; i < len(s); i++ {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return b
}

// appendXML appends s escaped for XML text and attributes, with invalid
// UTF-8 and characters XML forbids replaced by U+FFFD.
func appendXML(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '&':
				b = append(b, "&amp;"...)
			case c == '<':
				b = append(b, "&lt;"...)
			case c == '>':
				b = append(b, "&gt;"...)
			case c == '"':
				b = append(b, "&quot;"...)
			case c < 0x20 && c != '\t':
				b = append(b, "\uFFFD"...)
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || r == 0xFFFE || r == 0xFFFF {
			b = append(b, "\uFFFD"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

func xmlEscape(s string) string { return string(appendXML(nil, s)) }
