package loops

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// XMILE 1.0 (OASIS, 2015) is the interchange format Stella, iThink and other
// tools write. ImportXMILE reads the part of it that is a plain stock-and-flow
// model: sim_specs, stocks (with inflows, outflows, non_negative), flows,
// auxiliaries, and graphical functions (inline or standalone, continuous). It
// refuses, naming the element and line, what it would otherwise get wrong:
// arrays, modules, macros, conveyors, queues, several models, and graphical
// functions that extrapolate or are discrete.

type xnode struct {
	name     string
	attrs    map[string]string
	text     strings.Builder
	children []*xnode
	line     int
}

func (n *xnode) child(name string) *xnode {
	for _, c := range n.children {
		if c.name == name {
			return c
		}
	}
	return nil
}

func (n *xnode) all(name string) []*xnode {
	var out []*xnode
	for _, c := range n.children {
		if c.name == name {
			out = append(out, c)
		}
	}
	return out
}

func (n *xnode) value() string { return strings.TrimSpace(n.text.String()) }

const maxXMLDepth = 64

func readXML(r io.Reader) (*xnode, error) {
	dec := xml.NewDecoder(r)
	dec.Strict = true
	root := &xnode{name: "#document"}
	stack := []*xnode{root}
	for {
		line, _ := dec.InputPos()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(stack) > maxXMLDepth {
				return nil, fmt.Errorf("line %d: elements nested deeper than %d", line, maxXMLDepth)
			}
			n := &xnode{name: t.Name.Local, attrs: map[string]string{}, line: line}
			for _, a := range t.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			top := stack[len(stack)-1]
			top.children = append(top.children, n)
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			stack[len(stack)-1].text.Write(t)
		}
	}
	return root, nil
}

// ImportXMILE reads an XMILE 1.0 file into a Model.
func ImportXMILE(name string, r io.Reader) (*Model, error) {
	errAt := func(line int, format string, args ...any) error {
		return &Error{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	doc, err := readXML(io.LimitReader(r, maxModelBytes))
	if err != nil {
		return nil, &Error{File: name, Msg: "not valid XML: " + err.Error()}
	}
	x := doc.child("xmile")
	if x == nil {
		return nil, errAt(0, "not an XMILE file: no <xmile> root element")
	}
	m := &Model{File: name}
	if h := x.child("header"); h != nil {
		if n := h.child("name"); n != nil {
			m.Name = n.value()
		}
	}
	for _, c := range x.children {
		switch c.name {
		case "macro":
			return nil, errAt(c.line, "XMILE macros are not supported")
		}
	}
	if err := readSimSpecs(x.child("sim_specs"), &m.Sim, errAt); err != nil {
		return nil, err
	}
	models := x.all("model")
	if len(models) == 0 {
		return nil, errAt(x.line, "no <model> element")
	}
	if len(models) > 1 {
		return nil, errAt(models[1].line, "several <model> elements (modules/submodels) are not supported")
	}
	mod := models[0]
	if mod.attrs["name"] != "" {
		return nil, errAt(mod.line, "named model %q (a module) is not supported", mod.attrs["name"])
	}
	if ss := mod.child("sim_specs"); ss != nil {
		if err := readSimSpecs(ss, &m.Sim, errAt); err != nil {
			return nil, err
		}
	}
	vars := mod.child("variables")
	if vars == nil {
		return nil, errAt(mod.line, "<model> has no <variables>")
	}
	fixName := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, `\n`, " "), "\n", " ") }
	for _, c := range vars.children {
		v := &Variable{Name: fixName(c.attrs["name"]), Line: c.line}
		switch c.name {
		case "stock":
			v.Kind = Stock
		case "flow":
			v.Kind = Flow
		case "aux":
			v.Kind = Auxiliary
		case "gf":
			v.Kind = Auxiliary
		case "group":
			continue // a grouping for display only
		case "module":
			return nil, errAt(c.line, "XMILE modules are not supported (<module name=%q>)", c.attrs["name"])
		default:
			return nil, errAt(c.line, "XMILE <%s> is not supported", c.name)
		}
		if v.Name == "" {
			return nil, errAt(c.line, "<%s> without a name", c.name)
		}
		if c.name == "gf" {
			t, err := readGF(c, errAt)
			if err != nil {
				return nil, err
			}
			v.Table = t
			m.Variables = append(m.Variables, v)
			continue
		}
		flowNonNeg := false
		for _, f := range c.children {
			switch f.name {
			case "eqn":
				if c.name == "stock" {
					v.Initial = f.value()
				} else {
					v.Equation = f.value()
				}
			case "inflow":
				v.Inflows = append(v.Inflows, fixName(f.value()))
			case "outflow":
				v.Outflows = append(v.Outflows, fixName(f.value()))
			case "non_negative":
				if c.name == "stock" {
					v.NonNegative = true
				} else {
					flowNonNeg = true
				}
			case "units":
				v.Units = f.value()
			case "doc":
				v.Doc = f.value()
			case "gf":
				t, err := readGF(f, errAt)
				if err != nil {
					return nil, err
				}
				v.Table = t
			case "dimensions":
				return nil, errAt(f.line, "arrays (<dimensions> on %q) are not supported", v.Name)
			case "element":
				return nil, errAt(f.line, "array elements (<element> in %q) are not supported", v.Name)
			case "conveyor":
				return nil, errAt(f.line, "conveyors (stock %q) are not supported", v.Name)
			case "queue":
				return nil, errAt(f.line, "queues (stock %q) are not supported", v.Name)
			case "leak", "leak_integers", "overflow":
				return nil, errAt(f.line, "<%s> on %q (conveyors) is not supported", f.name, v.Name)
			default:
				// display, range, scale, format, event_poster and the like do not change the model
			}
		}
		if flowNonNeg && v.Equation != "" {
			v.Equation = "MAX(0, (" + v.Equation + "))"
		}
		m.Variables = append(m.Variables, v)
	}
	if m.Name == "" {
		m.Name = strings.TrimSuffix(name, ".xmile")
	}
	if err := m.Build(); err != nil {
		return nil, err
	}
	return m, nil
}

func readSimSpecs(ss *xnode, spec *SimSpec, errAt func(int, string, ...any) error) error {
	if ss == nil {
		return nil
	}
	num := func(n *xnode, what string) (float64, error) {
		f, err := strconv.ParseFloat(n.value(), 64)
		if err != nil {
			return 0, errAt(n.line, "<%s>: want a number, not %q", what, n.value())
		}
		return f, nil
	}
	var err error
	if n := ss.child("start"); n != nil {
		if spec.Start, err = num(n, "start"); err != nil {
			return err
		}
	}
	if n := ss.child("stop"); n != nil {
		if spec.Stop, err = num(n, "stop"); err != nil {
			return err
		}
	}
	if n := ss.child("dt"); n != nil {
		if spec.DT, err = num(n, "dt"); err != nil {
			return err
		}
		if n.attrs["reciprocal"] == "true" && spec.DT != 0 {
			spec.DT = 1 / spec.DT
		}
	}
	switch strings.ToLower(ss.attrs["method"]) {
	case "", "euler":
		spec.Method = "euler"
	case "rk4":
		spec.Method = "rk4"
	default:
		return errAt(ss.line, "integration method %q is not supported (want Euler or RK4)", ss.attrs["method"])
	}
	spec.Units = ss.attrs["time_units"]
	return nil
}

func readGF(g *xnode, errAt func(int, string, ...any) error) (*Table, error) {
	switch t := g.attrs["type"]; t {
	case "", "continuous":
	default:
		return nil, errAt(g.line, "graphical function type %q is not supported (only continuous)", t)
	}
	list := func(n *xnode) ([]float64, error) {
		sep := n.attrs["sep"]
		if sep == "" {
			sep = ","
		}
		var out []float64
		for _, f := range strings.Split(n.value(), sep) {
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, errAt(n.line, "<%s>: bad number %q", n.name, f)
			}
			out = append(out, v)
		}
		return out, nil
	}
	yp := g.child("ypts")
	if yp == nil {
		return nil, errAt(g.line, "graphical function without <ypts>")
	}
	ys, err := list(yp)
	if err != nil {
		return nil, err
	}
	t := &Table{Y: ys}
	if xp := g.child("xpts"); xp != nil {
		if t.X, err = list(xp); err != nil {
			return nil, err
		}
	} else if xs := g.child("xscale"); xs != nil {
		lo, err1 := strconv.ParseFloat(xs.attrs["min"], 64)
		hi, err2 := strconv.ParseFloat(xs.attrs["max"], 64)
		if err1 != nil || err2 != nil {
			return nil, errAt(xs.line, "<xscale> needs numeric min and max")
		}
		n := len(ys)
		for i := 0; i < n; i++ {
			if n == 1 {
				t.X = append(t.X, lo)
				continue
			}
			t.X = append(t.X, lo+(hi-lo)*float64(i)/float64(n-1))
		}
	} else {
		return nil, errAt(g.line, "graphical function needs <xscale> or <xpts>")
	}
	if err := t.check(); err != nil {
		return nil, errAt(g.line, "%v", err)
	}
	return t, nil
}
