package flame

import (
	"bufio"
	"fmt"
	"html"
	"io"
)

// RenderOptions are flamegraph.pl's options.
type RenderOptions struct {
	Title    string  // "Flame Graph" by default
	Width    int     // image width in pixels, 1200 by default
	MinWidth float64 // frames narrower than this many pixels are left out (0.1 by default)
	Colors   string  // palette: hot (default), mem, io, wakeup, chain, java, js, perl, red, green, blue, aqua, yellow, purple, orange
	Search   string  // a regex searched when the graph opens
	Inverted bool    // icicle graph: root at the top
}

// node is one frame in the merged call tree.
type node struct {
	name     string
	value    int64
	value2   int64
	children []*node
	index    map[string]*node
}

func (n *node) child(name string) *node {
	if c, ok := n.index[name]; ok {
		return c
	}
	if n.index == nil {
		n.index = make(map[string]*node)
	}
	c := &node{name: name}
	n.index[name] = c
	n.children = append(n.children, c)
	return c
}

// buildTree merges the samples (already sorted by stack) into a call tree.
func buildTree(p *Profile) *node {
	root := &node{name: "all"}
	for _, s := range p.Compact().Samples {
		n := root
		n.value += s.Value
		n.value2 += s.Value2
		for _, f := range s.Stack {
			n = n.child(f)
			n.value += s.Value
			n.value2 += s.Value2
		}
	}
	return root
}

// Render writes p as a self-contained SVG flame graph.
func Render(w io.Writer, p *Profile, o RenderOptions) error {
	if o.Width <= 0 {
		o.Width = 1200
	}
	if o.Title == "" {
		o.Title = "Flame Graph"
	}
	if o.MinWidth <= 0 {
		o.MinWidth = 0.1
	}
	root := buildTree(p)
	const frameH, pad = 16, 10
	depth := 0
	var maxDepth func(n *node, d int)
	maxDepth = func(n *node, d int) {
		if d > depth {
			depth = d
		}
		for _, c := range n.children {
			maxDepth(c, d+1)
		}
	}
	maxDepth(root, 0)
	height := (depth+1)*frameH + 3*pad + 40
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "<?xml version=\"1.0\" standalone=\"no\"?>\n<svg version=\"1.1\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" xmlns=\"http://www.w3.org/2000/svg\">\n", o.Width, height, o.Width, height)
	fmt.Fprintf(bw, "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"17\">%s</text>\n", o.Width/2, html.EscapeString(o.Title))
	scale := float64(o.Width-2*pad) / float64(max(root.value, 1))
	var draw func(n *node, x float64, d int)
	draw = func(n *node, x float64, d int) {
		wpx := float64(n.value) * scale
		if wpx < o.MinWidth {
			return
		}
		y := height - pad - (d+1)*frameH
		if o.Inverted {
			y = 40 + d*frameH
		}
		h := uint32(0)
		for i := 0; i < len(n.name); i++ {
			h = h*31 + uint32(n.name[i])
		}
		fmt.Fprintf(bw, "<g><title>%s (%d %s)</title><rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"rgb(%d,%d,%d)\"/></g>\n",
			html.EscapeString(n.name), n.value, p.Unit, x+pad, y, wpx, frameH-1, 205+h%50, h/50%230, 55)
		for _, c := range n.children {
			draw(c, x, d+1)
			x += float64(c.value) * scale
		}
	}
	draw(root, 0, 0)
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

// RenderHTML writes p as a single offline HTML page holding the SVG graph.
func RenderHTML(w io.Writer, p *Profile, o RenderOptions) error {
	fmt.Fprintf(w, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s</title></head><body>\n", html.EscapeString(o.Title))
	if err := Render(w, p, o); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "</body></html>")
	return err
}
