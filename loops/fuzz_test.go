package loops

import (
	"context"
	"os"
	"strings"
	"testing"
)

// FuzzParseModel: any input gives a model or one clear error, never a panic;
// a model that parses can be analysed, drawn as DOT and (briefly) simulated.
func FuzzParseModel(f *testing.F) {
	for _, name := range Examples() {
		if _, data, err := ExampleSource(name); err == nil && strings.HasSuffix(name, "") {
			f.Add(data)
		}
	}
	if data, err := os.ReadFile("testdata/simple.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("variables: [a, b]\nlinks:\n  - {from: a, to: b, polarity: '+'}\n  - {from: b, to: a, polarity: '-'}\n"))
	f.Add([]byte("variables:\n  - {name: s, kind: stock, initial: '1', inflows: [f]}\n  - {name: f, equation: 's * 0.1'}\n"))
	f.Add([]byte("variables:\n  - {name: a, equation: 'SMOOTH(b, 2)'}\n  - {name: b, equation: 'a + 1', table: [[0, 1], [1, 2]]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseFile("fuzz", strings.NewReader(string(data)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		a, err := Analyze(context.Background(), m, 200)
		if err != nil {
			t.Fatal(err)
		}
		_ = DOT(m, a, DiagramOptions{})
		if m.Simulatable() == nil {
			Simulate(context.Background(), m, SimOptions{Analysis: a, Start: 0, Stop: 5, DT: 1, MaxSteps: 10})
		}
	})
}

// FuzzExpr: the expression parser never panics, and what it parses prints
// back to something that parses to the same text.
func FuzzExpr(f *testing.F) {
	for _, s := range []string{"1 + 2 * 3", "IF a > b THEN MIN(a, b) ELSE -c ^ 2", "SMOOTH(x, 3, 0)", "DELAY1(x, 2)",
		`"heartbeat loss" * 2`, "lookup(TIME)", "LOOKUP(t, 3)", "not a and b or c", "STEP(1, 2) + PULSE(1, 2, 3) + RAMP(1, 2, 3)",
		"if(a, b, c)", "1e-3 <> .5", "((((1))))"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		n, err := ParseExpr(src)
		if err != nil {
			return
		}
		printed := n.String()
		n2, err := ParseExpr(printed)
		if err != nil {
			t.Fatalf("%q printed as %q which does not parse: %v", src, printed, err)
		}
		if n2.String() != printed {
			t.Fatalf("%q: %q reprints as %q", src, printed, n2.String())
		}
		// evaluation with every name bound must not panic
		vals := make([]float64, 0)
		tables := []*Table{}
		idx := map[string]int{}
		n.walk(func(x *node) {
			if x.op == opRef || x.op == opLookup {
				if _, ok := idx[x.name]; !ok {
					idx[x.name] = len(vals)
					vals = append(vals, 1.5)
					tables = append(tables, &Table{X: []float64{0, 1}, Y: []float64{0, 1}})
				}
				x.ref = idx[x.name]
			}
			if x.op == opSmooth || x.op == opDelay1 {
				x.slot = 0
			}
		})
		n.eval(&env{vals: vals, tables: tables, hidden: []float64{1}, dt: 1})
	})
}

// FuzzXMILE: the XMILE reader never panics and errors are one line.
func FuzzXMILE(f *testing.F) {
	f.Add([]byte(xmileSample))
	if _, data, err := ExampleSource("bass-diffusion"); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`<xmile><model><variables><module name="m"/></variables></model></xmile>`))
	f.Add([]byte(`<xmile><model><variables><aux name="a"><eqn>1</eqn><gf><xpts>0,1</xpts><ypts>1,0</ypts></gf></aux></variables></model></xmile>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ImportXMILE("fuzz.xmile", strings.NewReader(string(data)))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error: %q", err)
			}
			return
		}
		if _, err := Analyze(context.Background(), m, 100); err != nil {
			t.Fatal(err)
		}
	})
}
