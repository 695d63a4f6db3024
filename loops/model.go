// Package loops is srekit's causal loop diagram (CLD) and stock-and-flow
// toolkit. A Model is a signed directed graph of variables; from it loops
// finds every feedback loop (Johnson's algorithm, with a cap), says whether
// each one reinforces (R) or balances (B), draws the diagram (DOT and SVG),
// and, when the variables carry equations, simulates the model (Euler or
// RK4) and scores each loop at every step in the manner of Loops That Matter
// (Schoenberg, Davidsen and Eberlein, 2020), so one can see when a vicious
// cycle takes over.
//
// Models are YAML files (see docs/loops.md) or XMILE 1.0 files imported with
// ImportXMILE; both become the same Model.
package loops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Kind is what a variable is in a stock-and-flow model.
type Kind string

const (
	Auxiliary Kind = "auxiliary" // computed from others each step (the default)
	Stock     Kind = "stock"     // accumulates its inflows minus its outflows
	Flow      Kind = "flow"      // a rate into or out of a stock
)

// Polarity is the sign of a causal link: a change in the cause moves the
// effect the same way (+), the other way (-), or it is not known (?).
type Polarity int8

const (
	Positive Polarity = 1
	Negative Polarity = -1
	Unknown  Polarity = 2
)

func (p Polarity) flip() Polarity {
	switch p {
	case Positive:
		return Negative
	case Negative:
		return Positive
	}
	return p
}

// String is "+", "-" or "?".
func (p Polarity) String() string {
	switch p {
	case Positive:
		return "+"
	case Negative:
		return "-"
	}
	return "?"
}

// ParsePolarity reads "+", "-", "?" (and the words positive, negative, unknown).
func ParsePolarity(s string) (Polarity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "+", "positive", "s", "same":
		return Positive, nil
	case "-", "negative", "o", "opposite":
		return Negative, nil
	case "?", "unknown", "":
		return Unknown, nil
	}
	return 0, fmt.Errorf("bad polarity %q: want +, - or ?", s)
}

// MarshalText lets polarities appear as "+", "-", "?" in JSON.
func (p Polarity) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Variable is one node of the model.
type Variable struct {
	Name     string   `json:"name"`
	Kind     Kind     `json:"kind"`
	Units    string   `json:"units,omitempty"`
	Doc      string   `json:"doc,omitempty"`
	Equation string   `json:"equation,omitempty"` // auxiliary/flow value; for a stock without flows, its net rate
	Initial  string   `json:"initial,omitempty"`  // stock initial value
	Inflows  []string `json:"inflows,omitempty"`
	Outflows []string `json:"outflows,omitempty"`
	// Table, when set, is a graphical function: the variable's value is
	// Table(equation), or, without an equation, name(x) can be called.
	Table *Table `json:"table,omitempty"`
	// NonNegative keeps a stock from going below zero (XMILE's non_negative).
	NonNegative bool `json:"non_negative,omitempty"`
	Line        int  `json:"line,omitempty"` // where it was defined, for errors

	key      string
	eq, init *node
	eqLine   int
	inIdx    []int
	outIdx   []int
}

// Link is one causal arrow.
type Link struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Polarity Polarity `json:"polarity"`
	Delay    bool     `json:"delay,omitempty"`
	// Derived links come from equations and flows rather than from the file.
	Derived bool `json:"derived,omitempty"`
	Line    int  `json:"line,omitempty"`

	from, to int
}

// NamedLoop lets a model give a loop a title ("re-replication storm"): the
// analysis puts it on the loop through exactly these variables.
type NamedLoop struct {
	Title     string   `json:"title"`
	Variables []string `json:"variables"`
	Line      int      `json:"line,omitempty"`
}

// SimSpec is the simulation's time axis.
type SimSpec struct {
	Start  float64 `json:"start"`
	Stop   float64 `json:"stop"`
	DT     float64 `json:"dt"`
	Method string  `json:"method"` // "euler" or "rk4"
	Units  string  `json:"time_units,omitempty"`
}

// Model is a causal loop diagram, optionally with the equations that make it
// a simulatable stock-and-flow model.
type Model struct {
	Name        string      `json:"name"`
	Description string      `json:"description,omitempty"`
	Variables   []*Variable `json:"variables"`
	// Links holds the links written in the file plus those derived from
	// equations and flows (Derived), one per ordered pair of variables.
	Links []*Link     `json:"links"`
	Loops []NamedLoop `json:"loops,omitempty"`
	Sim   SimSpec     `json:"simulation"`
	File  string      `json:"file,omitempty"`
	index map[string]int
	out   [][]int // adjacency: out[v] = indices into Links
}

// Error is a problem in a model file, with where it is.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	f := e.File
	if f == "" {
		f = "model"
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s line %d: %s", f, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", f, e.Msg)
}

// maxModelBytes bounds what Parse reads: CLDs are small; this is a guard against
// feeding it a disk image by mistake.
const maxModelBytes = 16 << 20

// ParseFile reads a model from r; name is used in error messages. The format
// is chosen by content: XMILE when it starts with '<', YAML otherwise.
func ParseFile(name string, r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxModelBytes {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file is larger than %d MiB", maxModelBytes>>20)}
	}
	if t := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(t) > 0 && t[0] == '<' {
		return ImportXMILE(name, bytes.NewReader(data))
	}
	return Parse(name, data)
}

// Parse reads a YAML model. Every problem is an *Error naming the line.
func Parse(name string, data []byte) (*Model, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: name, Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &Error{File: name, Msg: "empty model"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line, Msg: "a model is a mapping with name, variables and links"}
	}
	m := &Model{File: name}
	errf := func(n *yaml.Node, format string, args ...any) error {
		return &Error{File: name, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch k.Value {
		case "name":
			m.Name = v.Value
		case "description":
			m.Description = v.Value
		case "variables":
			if v.Kind != yaml.SequenceNode {
				return nil, errf(v, "variables must be a list")
			}
			for _, item := range v.Content {
				vr, err := decodeVariable(item, errf)
				if err != nil {
					return nil, err
				}
				m.Variables = append(m.Variables, vr)
			}
		case "links":
			if v.Kind != yaml.SequenceNode {
				return nil, errf(v, "links must be a list")
			}
			for _, item := range v.Content {
				l, err := decodeLink(item, errf)
				if err != nil {
					return nil, err
				}
				m.Links = append(m.Links, l)
			}
		case "loops":
			if v.Kind != yaml.SequenceNode {
				return nil, errf(v, "loops must be a list")
			}
			for _, item := range v.Content {
				var nl NamedLoop
				if err := decodeFields(item, errf, map[string]func(*yaml.Node) error{
					"title":     func(n *yaml.Node) error { nl.Title = n.Value; return nil },
					"variables": func(n *yaml.Node) error { return decodeStrings(n, &nl.Variables, errf) },
				}); err != nil {
					return nil, err
				}
				nl.Line = item.Line
				m.Loops = append(m.Loops, nl)
			}
		case "simulation":
			if err := decodeFields(v, errf, map[string]func(*yaml.Node) error{
				"start":      floatField(&m.Sim.Start, errf),
				"stop":       floatField(&m.Sim.Stop, errf),
				"dt":         floatField(&m.Sim.DT, errf),
				"method":     func(n *yaml.Node) error { m.Sim.Method = strings.ToLower(n.Value); return nil },
				"time_units": func(n *yaml.Node) error { m.Sim.Units = n.Value; return nil },
			}); err != nil {
				return nil, err
			}
		default:
			return nil, errf(k, "unknown key %q (want name, description, variables, links, loops, simulation)", k.Value)
		}
	}
	if err := m.Build(); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeFields(n *yaml.Node, errf func(*yaml.Node, string, ...any) error, fields map[string]func(*yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return errf(n, "want a mapping of fields here")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f, ok := fields[k.Value]
		if !ok {
			names := make([]string, 0, len(fields))
			for f := range fields {
				names = append(names, f)
			}
			sort.Strings(names)
			return errf(k, "unknown field %q (want %s)", k.Value, strings.Join(names, ", "))
		}
		if err := f(v); err != nil {
			return err
		}
	}
	return nil
}

func scalar(n *yaml.Node, errf func(*yaml.Node, string, ...any) error, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errf(n, "%s must be a single value", what)
	}
	return n.Value, nil
}

func floatField(dst *float64, errf func(*yaml.Node, string, ...any) error) func(*yaml.Node) error {
	return func(n *yaml.Node) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(n.Value), 64)
		if err != nil || n.Kind != yaml.ScalarNode {
			return errf(n, "want a number, not %q", n.Value)
		}
		*dst = f
		return nil
	}
}

func decodeStrings(n *yaml.Node, dst *[]string, errf func(*yaml.Node, string, ...any) error) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value != "" {
			*dst = append(*dst, n.Value)
		}
		return nil
	case yaml.SequenceNode:
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return errf(c, "want a variable name")
			}
			*dst = append(*dst, c.Value)
		}
		return nil
	}
	return errf(n, "want a list of variable names")
}

func decodeVariable(item *yaml.Node, errf func(*yaml.Node, string, ...any) error) (*Variable, error) {
	v := &Variable{Line: item.Line}
	if item.Kind == yaml.ScalarNode { // shorthand: just the name
		v.Name = item.Value
	} else if err := decodeFields(item, errf, map[string]func(*yaml.Node) error{
		"name":  func(n *yaml.Node) (err error) { v.Name, err = scalar(n, errf, "name"); return },
		"units": func(n *yaml.Node) error { v.Units = n.Value; return nil },
		"doc":   func(n *yaml.Node) error { v.Doc = n.Value; return nil },
		"kind": func(n *yaml.Node) error {
			switch k := Kind(strings.ToLower(n.Value)); k {
			case Stock, Flow, Auxiliary:
				v.Kind = k
			case "aux", "constant", "variable", "":
				v.Kind = Auxiliary
			default:
				return errf(n, "unknown kind %q (want stock, flow or auxiliary)", n.Value)
			}
			return nil
		},
		"equation": func(n *yaml.Node) (err error) {
			v.eqLine = n.Line
			v.Equation, err = scalar(n, errf, "equation")
			return
		},
		"initial": func(n *yaml.Node) (err error) { v.Initial, err = scalar(n, errf, "initial"); return },
		"inflows": func(n *yaml.Node) error { return decodeStrings(n, &v.Inflows, errf) },
		"outflows": func(n *yaml.Node) error {
			return decodeStrings(n, &v.Outflows, errf)
		},
		"non_negative": func(n *yaml.Node) error {
			b, err := strconv.ParseBool(n.Value)
			if err != nil {
				return errf(n, "non_negative: want true or false")
			}
			v.NonNegative = b
			return nil
		},
		"table": func(n *yaml.Node) error {
			t, err := decodeTable(n, errf)
			v.Table = t
			return err
		},
	}); err != nil {
		return nil, err
	}
	if strings.TrimSpace(v.Name) == "" {
		return nil, errf(item, "variable without a name")
	}
	if v.eqLine == 0 {
		v.eqLine = v.Line
	}
	return v, nil
}

// decodeTable reads a graphical function: either {x: [...], y: [...]} or a
// list of [x, y] points.
func decodeTable(n *yaml.Node, errf func(*yaml.Node, string, ...any) error) (*Table, error) {
	t := &Table{}
	nums := func(n *yaml.Node) ([]float64, error) {
		if n.Kind != yaml.SequenceNode {
			return nil, errf(n, "want a list of numbers")
		}
		var out []float64
		for _, c := range n.Content {
			f, err := strconv.ParseFloat(strings.TrimSpace(c.Value), 64)
			if err != nil || c.Kind != yaml.ScalarNode {
				return nil, errf(c, "want a number, not %q", c.Value)
			}
			out = append(out, f)
		}
		return out, nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		if err := decodeFields(n, errf, map[string]func(*yaml.Node) error{
			"x": func(c *yaml.Node) (err error) { t.X, err = nums(c); return },
			"y": func(c *yaml.Node) (err error) { t.Y, err = nums(c); return },
		}); err != nil {
			return nil, err
		}
	case yaml.SequenceNode:
		for _, p := range n.Content {
			xy, err := nums(p)
			if err != nil {
				return nil, err
			}
			if len(xy) != 2 {
				return nil, errf(p, "a table point is [x, y]")
			}
			t.X = append(t.X, xy[0])
			t.Y = append(t.Y, xy[1])
		}
	default:
		return nil, errf(n, "a table is {x: [...], y: [...]} or a list of [x, y] points")
	}
	if err := t.check(); err != nil {
		return nil, errf(n, "%v", err)
	}
	return t, nil
}

func (t *Table) check() error {
	if len(t.X) == 0 || len(t.X) != len(t.Y) {
		return fmt.Errorf("table needs as many x as y values, and at least one (%d x, %d y)", len(t.X), len(t.Y))
	}
	for i := 1; i < len(t.X); i++ {
		if !(t.X[i] >= t.X[i-1]) {
			return fmt.Errorf("table x values must increase (%g after %g)", t.X[i], t.X[i-1])
		}
	}
	return nil
}

func decodeLink(item *yaml.Node, errf func(*yaml.Node, string, ...any) error) (*Link, error) {
	l := &Link{Line: item.Line, Polarity: Unknown}
	polSet := false
	if err := decodeFields(item, errf, map[string]func(*yaml.Node) error{
		"from": func(n *yaml.Node) (err error) { l.From, err = scalar(n, errf, "from"); return },
		"to":   func(n *yaml.Node) (err error) { l.To, err = scalar(n, errf, "to"); return },
		"polarity": func(n *yaml.Node) error {
			p, err := ParsePolarity(n.Value)
			if err != nil {
				return errf(n, "%v", err)
			}
			l.Polarity, polSet = p, true
			return nil
		},
		"delay": func(n *yaml.Node) error {
			b, err := strconv.ParseBool(n.Value)
			if err != nil {
				return errf(n, "delay: want true or false")
			}
			l.Delay = b
			return nil
		},
	}); err != nil {
		return nil, err
	}
	if l.From == "" || l.To == "" {
		return nil, errf(item, "a link needs from and to")
	}
	if !polSet {
		return nil, errf(item, "link %s -> %s has no polarity (want +, - or ?)", l.From, l.To)
	}
	return l, nil
}

// Build checks a model assembled in code (or by Parse or ImportXMILE),
// resolves names, parses equations, derives the links that equations and
// flows imply, and rejects equations that depend on each other in a cycle
// without a stock. It is idempotent.
func (m *Model) Build() error {
	errAt := func(line int, format string, args ...any) error {
		return &Error{File: m.File, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	if len(m.Variables) == 0 {
		return errAt(0, "the model has no variables")
	}
	m.index = make(map[string]int, len(m.Variables))
	for i, v := range m.Variables {
		v.key = Canonical(v.Name)
		if v.key == "" {
			return errAt(v.Line, "variable without a name")
		}
		if j, dup := m.index[v.key]; dup {
			return errAt(v.Line, "variable %q is defined twice (first on line %d)", v.Name, m.Variables[j].Line)
		}
		m.index[v.key] = i
		if v.Kind == "" {
			v.Kind = Auxiliary
		}
	}
	lookup := func(name string, line int, what string) (int, error) {
		i, ok := m.index[Canonical(name)]
		if !ok {
			return 0, errAt(line, "%s: undefined variable %q", what, name)
		}
		return i, nil
	}
	// Flows named by stocks.
	for _, v := range m.Variables {
		v.inIdx, v.outIdx = nil, nil
		if (len(v.Inflows) > 0 || len(v.Outflows) > 0) && v.Kind != Stock {
			if v.Kind == Auxiliary && len(v.Inflows)+len(v.Outflows) > 0 {
				v.Kind = Stock
			}
		}
		for _, f := range v.Inflows {
			i, err := lookup(f, v.Line, "inflow of "+v.Name)
			if err != nil {
				return err
			}
			v.inIdx = append(v.inIdx, i)
		}
		for _, f := range v.Outflows {
			i, err := lookup(f, v.Line, "outflow of "+v.Name)
			if err != nil {
				return err
			}
			v.outIdx = append(v.outIdx, i)
		}
		if v.Kind == Stock && v.Equation != "" && len(v.inIdx)+len(v.outIdx) > 0 {
			return errAt(v.eqLine, "stock %q has both an equation and inflows/outflows: give one", v.Name)
		}
		for _, i := range append(append([]int{}, v.inIdx...), v.outIdx...) {
			f := m.Variables[i]
			if f.Kind == Stock {
				return errAt(v.Line, "stock %q names stock %q as a flow", v.Name, f.Name)
			}
			f.Kind = Flow
		}
	}
	tables := m.tables()
	// Equations.
	for i, v := range m.Variables {
		v.eq, v.init = nil, nil
		if v.Table != nil {
			if err := v.Table.check(); err != nil {
				return errAt(v.Line, "%s: %v", v.Name, err)
			}
		}
		parse := func(src string, line int, what string) (*node, error) {
			if strings.TrimSpace(src) == "" {
				return nil, nil
			}
			n, err := ParseExpr(src)
			if err != nil {
				return nil, errAt(line, "%s of %q: %v", what, v.Name, err)
			}
			var rerr error
			n.walk(func(x *node) {
				if rerr != nil {
					return
				}
				switch x.op {
				case opRef:
					j, ok := m.index[x.name]
					if !ok {
						rerr = errAt(line, "%s of %q: undefined variable %q", what, v.Name, x.name)
						return
					}
					x.ref = j
				case opLookup:
					j, ok := m.index[x.name]
					if !ok {
						rerr = errAt(line, "%s of %q: %s is neither a built-in function nor a variable", what, v.Name, x.name)
						return
					}
					if tables[j] == nil {
						rerr = errAt(line, "%s of %q: %q has no table to look up", what, v.Name, m.Variables[j].Name)
						return
					}
					x.ref = j
				}
			})
			return n, rerr
		}
		var err error
		if v.eq, err = parse(v.Equation, v.eqLine, "equation"); err != nil {
			return err
		}
		if v.init, err = parse(v.Initial, v.Line, "initial value"); err != nil {
			return err
		}
		if v.Kind != Stock && v.Initial != "" {
			return errAt(v.Line, "%q has an initial value but is not a stock", v.Name)
		}
		_ = i
	}
	// Links written in the file.
	pair := map[[2]int]*Link{}
	var links []*Link
	for _, l := range m.Links {
		if l.Derived {
			continue // rebuilt below
		}
		var err error
		if l.from, err = lookup(l.From, l.Line, "link from "+l.From); err != nil {
			return err
		}
		if l.to, err = lookup(l.To, l.Line, "link to "+l.To); err != nil {
			return err
		}
		if l.Polarity != Positive && l.Polarity != Negative && l.Polarity != Unknown {
			return errAt(l.Line, "link %s -> %s: bad polarity", l.From, l.To)
		}
		k := [2]int{l.from, l.to}
		if prev, dup := pair[k]; dup {
			return errAt(l.Line, "link %s -> %s is given twice (first on line %d)", l.From, l.To, prev.Line)
		}
		pair[k] = l
		links = append(links, l)
	}
	// Links implied by equations and flows.
	derive := func(from, to int, p Polarity, delay bool) {
		k := [2]int{from, to}
		if l, ok := pair[k]; ok {
			if delay {
				l.Delay = true
			}
			return
		}
		l := &Link{From: m.Variables[from].Name, To: m.Variables[to].Name, Polarity: p, Delay: delay, Derived: true, from: from, to: to}
		pair[k] = l
		links = append(links, l)
	}
	for to, v := range m.Variables {
		for _, f := range v.inIdx {
			derive(f, to, Positive, false)
		}
		for _, f := range v.outIdx {
			derive(f, to, Negative, false)
		}
		if v.eq == nil {
			continue
		}
		delayed := map[int]bool{}
		v.eq.walk(func(x *node) {
			if x.op == opSmooth || x.op == opDelay1 {
				x.args[0].walk(func(y *node) {
					if y.op == opRef {
						delayed[y.ref] = true
					}
				})
			}
		})
		for _, from := range refsOf(v.eq) {
			p := v.eq.polarityOf(from, tables)
			if p == 0 {
				p = Unknown
			}
			if v.Table != nil {
				switch v.Table.monotone() {
				case -1:
					p = p.flip()
				case 0:
					p = Unknown
				}
			}
			derive(from, to, p, delayed[from])
		}
	}
	m.Links = links
	m.out = make([][]int, len(m.Variables))
	for i, l := range m.Links {
		m.out[l.from] = append(m.out[l.from], i)
	}
	for _, out := range m.out {
		sort.Slice(out, func(a, b int) bool { return m.Links[out[a]].to < m.Links[out[b]].to })
	}
	for _, nl := range m.Loops {
		for _, name := range nl.Variables {
			if _, err := lookup(name, nl.Line, "loop "+nl.Title); err != nil {
				return err
			}
		}
	}
	return m.checkEquationCycles()
}

// refsOf lists the distinct variables an expression reads, in order of first use.
func refsOf(n *node) []int {
	var out []int
	seen := map[int]bool{}
	n.walk(func(x *node) {
		if x.op == opRef && !seen[x.ref] {
			seen[x.ref] = true
			out = append(out, x.ref)
		}
	})
	return out
}

func (m *Model) tables() []*Table {
	t := make([]*Table, len(m.Variables))
	for i, v := range m.Variables {
		t[i] = v.Table
	}
	return t
}

// instantDeps lists what v's equation needs within the same time step: every
// reference except those only inside SMOOTH/DELAY1 inputs (their hidden stock
// breaks the chain, as a stock does).
func instantDeps(n *node) []int {
	var out []int
	seen := map[int]bool{}
	var walk func(x *node)
	walk = func(x *node) {
		switch x.op {
		case opRef:
			if !seen[x.ref] {
				seen[x.ref] = true
				out = append(out, x.ref)
			}
			return
		case opSmooth:
			for _, a := range x.args[1:] {
				walk(a)
			}
			return
		case opDelay1:
			// the output is hidden/time: the delay time counts, the input does not
			for _, a := range x.args[1:] {
				walk(a)
			}
			return
		}
		for _, a := range x.args {
			walk(a)
		}
	}
	if n != nil {
		walk(n)
	}
	return out
}

// evalOrder returns the non-stock variables in an order where each comes after
// everything its equation needs, or the cycle that makes that impossible.
func (m *Model) evalOrder() ([]int, []int) {
	state := make([]uint8, len(m.Variables)) // 0 new, 1 on stack, 2 done
	var order, stack []int
	var cycle []int
	var visit func(v int) bool
	visit = func(v int) bool {
		if m.Variables[v].Kind == Stock {
			return true
		}
		switch state[v] {
		case 1:
			for i := len(stack) - 1; i >= 0; i-- {
				if stack[i] == v {
					cycle = append([]int{}, stack[i:]...)
					break
				}
			}
			return false
		case 2:
			return true
		}
		state[v] = 1
		stack = append(stack, v)
		for _, d := range instantDeps(m.Variables[v].eq) {
			if !visit(d) {
				return false
			}
		}
		stack = stack[:len(stack)-1]
		state[v] = 2
		order = append(order, v)
		return true
	}
	for v := range m.Variables {
		if !visit(v) {
			return nil, cycle
		}
	}
	return order, nil
}

func (m *Model) checkEquationCycles() error {
	_, cycle := m.evalOrder()
	if cycle == nil {
		return nil
	}
	names := make([]string, 0, len(cycle)+1)
	for _, v := range cycle {
		names = append(names, m.Variables[v].Name)
	}
	names = append(names, m.Variables[cycle[0]].Name)
	v := m.Variables[cycle[0]]
	return &Error{File: m.File, Line: v.eqLine, Msg: "equations form a cycle without a stock: " + strings.Join(names, " -> ") +
		" (put a stock, SMOOTH or DELAY1 in the loop)"}
}

// Var returns the variable with this name (any case or spacing), or nil.
func (m *Model) Var(name string) *Variable {
	if i, ok := m.index[Canonical(name)]; ok {
		return m.Variables[i]
	}
	return nil
}

// Simulatable reports why the model cannot be simulated, or nil if it can.
func (m *Model) Simulatable() error {
	for _, v := range m.Variables {
		switch {
		case v.Kind == Stock && v.eq == nil && len(v.inIdx)+len(v.outIdx) == 0:
			return &Error{File: m.File, Line: v.Line, Msg: fmt.Sprintf("stock %q has no inflows, outflows or equation to simulate", v.Name)}
		case v.Kind != Stock && v.eq == nil && v.Table == nil:
			return &Error{File: m.File, Line: v.Line, Msg: fmt.Sprintf("%q has no equation to simulate", v.Name)}
		}
	}
	return nil
}

// ErrNotSimulatable is returned (wrapped) when a CLD without equations is simulated.
var ErrNotSimulatable = errors.New("the model has no equations to simulate")
