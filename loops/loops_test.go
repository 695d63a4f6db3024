package loops

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"os"
	"strings"
	"testing"
)

func mustParse(t testing.TB, src string) *Model {
	t.Helper()
	m, err := Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseErrorsNameTheLine(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"undefined variable in a link", "name: x\nvariables: [a, b]\nlinks:\n  - {from: a, to: c, polarity: '+'}\n", "line 4: link to c: undefined variable \"c\""},
		{"bad polarity", "variables: [a, b]\nlinks:\n  - from: a\n    to: b\n    polarity: plus\n", "line 5: bad polarity \"plus\""},
		{"missing polarity", "variables: [a, b]\nlinks:\n  - {from: a, to: b}\n", "line 3: link a -> b has no polarity"},
		{"equation cycle without a stock", "variables:\n  - {name: a, equation: b + 1}\n  - {name: b, equation: a * 2}\n", "line 2: equations form a cycle without a stock: a -> b -> a"},
		{"undefined variable in an equation", "variables:\n  - {name: a, equation: 'b + nope'}\n  - {name: b, equation: '1'}\n", "line 2: equation of \"a\": undefined variable \"nope\""},
		{"syntax error in an equation", "variables:\n  - {name: a, equation: '1 +'}\n", "line 2: equation of \"a\": column 4: unexpected end"},
		{"duplicate variable", "variables: [a, b, A]\n", "line 1: variable \"A\" is defined twice"},
		{"unknown key", "variables: [a]\nlinkz: []\n", "line 2: unknown key \"linkz\""},
		{"unknown kind", "variables:\n  - {name: a, kind: cloud}\n", "line 2: unknown kind \"cloud\""},
		{"not yaml", "variables: [a\n", "not valid YAML"},
		{"stock with both", "variables:\n  - {name: s, kind: stock, equation: '1', inflows: [f]}\n  - {name: f, equation: '1'}\n", "has both an equation and inflows"},
		{"empty", "", "empty model"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(c.src))
			if err == nil {
				t.Fatalf("no error, want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q does not contain %q", err, c.want)
			}
			if strings.Count(err.Error(), "\n") > 0 {
				t.Fatalf("error is more than one line: %q", err)
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("not a *loops.Error: %T", err)
			}
		})
	}
}

func TestAnalyzeSimple(t *testing.T) {
	data, err := os.ReadFile("testdata/simple.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := mustParse(t, string(data))
	a, err := Analyze(context.Background(), m, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, l := range a.Loops {
		got[l.ID] = l.Path()
	}
	want := map[string]string{
		"U1": "copy traffic -> under replicated blocks -> copy traffic",
		"B1": "copy traffic -> network load -> throttle -> copy traffic",
		"R1": "copy traffic -> network load -> heartbeat loss -> under replicated blocks -> copy traffic",
	}
	if len(got) != len(want) {
		t.Fatalf("got loops %v, want %v", got, want)
	}
	for id, p := range want {
		if got[id] != p {
			t.Errorf("%s = %q, want %q", id, got[id], p)
		}
	}
	if a.Reinforcing != 1 || a.Balancing != 1 || a.Indeterminate != 1 || a.Truncated {
		t.Errorf("counts R%d B%d U%d truncated=%v", a.Reinforcing, a.Balancing, a.Indeterminate, a.Truncated)
	}
	if a.Loop("R1").Delays != 1 {
		t.Errorf("R1 has %d delays, want 1", a.Loop("R1").Delays)
	}
	if a.Central[0].Name != "copy traffic" || a.Central[0].Loops != 3 {
		t.Errorf("variable in most loops = %+v", a.Central[0])
	}
}

// Names must not depend on the order of the file.
func TestLoopNamesStableUnderReordering(t *testing.T) {
	data, _ := os.ReadFile("testdata/simple.yaml")
	m := mustParse(t, string(data))
	a, _ := Analyze(context.Background(), m, 0)
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 10; i++ {
		m2 := mustParse(t, string(data))
		rng.Shuffle(len(m2.Variables), func(i, j int) { m2.Variables[i], m2.Variables[j] = m2.Variables[j], m2.Variables[i] })
		rng.Shuffle(len(m2.Links), func(i, j int) { m2.Links[i], m2.Links[j] = m2.Links[j], m2.Links[i] })
		if err := m2.Build(); err != nil {
			t.Fatal(err)
		}
		b, _ := Analyze(context.Background(), m2, 0)
		for _, l := range a.Loops {
			if b.Loop(l.ID) == nil || b.Loop(l.ID).Path() != l.Path() {
				t.Fatalf("shuffle %d: %s changed", i, l.ID)
			}
		}
	}
}

// completeGraph builds the complete directed graph on n vertices.
func completeGraph(n int) *Model {
	m := &Model{Name: "complete"}
	for i := 0; i < n; i++ {
		m.Variables = append(m.Variables, &Variable{Name: fmt.Sprintf("v%02d", i)})
	}
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			if i != j {
				m.Links = append(m.Links, &Link{From: fmt.Sprintf("v%02d", i), To: fmt.Sprintf("v%02d", j), Polarity: Positive})
			}
		}
	}
	return m
}

func TestJohnsonCountsAndCap(t *testing.T) {
	// elementary cycles of the complete digraph on n vertices: sum over k of C(n,k)(k-1)!
	want := map[int]int{3: 5, 4: 20, 5: 84, 6: 409}
	for n, w := range want {
		m := completeGraph(n)
		if err := m.Build(); err != nil {
			t.Fatal(err)
		}
		a, err := Analyze(context.Background(), m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Loops) != w || a.Truncated {
			t.Errorf("K%d: %d loops (truncated %v), want %d", n, len(a.Loops), a.Truncated, w)
		}
		seen := map[string]bool{}
		for _, l := range a.Loops {
			if seen[l.Path()] {
				t.Fatalf("K%d: loop %s found twice", n, l.Path())
			}
			seen[l.Path()] = true
		}
	}
	m := completeGraph(6)
	m.Build()
	a, _ := Analyze(context.Background(), m, 50)
	if len(a.Loops) != 50 || !a.Truncated {
		t.Fatalf("cap 50: got %d loops, truncated %v", len(a.Loops), a.Truncated)
	}
}

func TestSelfLoopAndPolarityClasses(t *testing.T) {
	m := mustParse(t, `variables: [a, b]
links:
  - {from: a, to: a, polarity: "-"}
  - {from: a, to: b, polarity: "-"}
  - {from: b, to: a, polarity: "-"}
`)
	a, _ := Analyze(context.Background(), m, 0)
	if a.Loop("B1") == nil || a.Loop("B1").Path() != "a -> a" {
		t.Errorf("self-loop: %+v", a.Loops)
	}
	if a.Loop("R1") == nil || a.Loop("R1").Path() != "a -> b -> a" {
		t.Errorf("two negatives should reinforce: %+v", a.Loops)
	}
}

func TestDerivedPolarity(t *testing.T) {
	m := mustParse(t, `variables:
  - {name: x, equation: "1"}
  - {name: y, equation: "2"}
  - {name: a, equation: "x - y"}
  - {name: b, equation: "x / (1 + y)"}
  - {name: c, equation: "MAX(0, 1 - x) * y"}
  - {name: d, equation: "IF x > y THEN 5 ELSE 1"}
  - {name: e, equation: "x * (y - 1)"}
  - {name: f, equation: "x", table: {x: [0, 1], y: [1, 0]}}
  - {name: s, kind: stock, inflows: [a], outflows: [b]}
`)
	want := map[string]Polarity{"x>a": Positive, "y>a": Negative, "x>b": Positive, "y>b": Negative,
		"x>c": Negative, "y>c": Positive, "x>d": Positive, "y>d": Negative, "x>e": Unknown, "x>f": Negative,
		"a>s": Positive, "b>s": Negative}
	for _, l := range m.Links {
		k := l.From + ">" + l.To
		if w, ok := want[k]; ok {
			if l.Polarity != w {
				t.Errorf("%s: %s, want %s", k, l.Polarity, w)
			}
			delete(want, k)
		}
	}
	if len(want) > 0 {
		t.Errorf("links not derived: %v", want)
	}
}

func TestExprEval(t *testing.T) {
	cases := []struct {
		src  string
		want float64
	}{
		{"1 + 2 * 3", 7}, {"(1 + 2) * 3", 9}, {"2 ^ 3 ^ 2", 512}, {"-2 ^ 2", -4}, {"10 / 4", 2.5}, {"1 / 0", 0},
		{"MIN(3, 1, 2)", 1}, {"MAX(3, 1, 2)", 3}, {"ABS(-2)", 2}, {"IF 1 > 2 THEN 10 ELSE 20", 20},
		{"if(1 < 2, 10, 20)", 10}, {"IF (1 < 2) THEN 10 ELSE 20", 10}, {"1 < 2 and 2 < 3", 1}, {"not 0", 1}, {"1 = 1", 1}, {"1 <> 1", 0},
		{"TIME", 5}, {"DT", 0.5}, {"STEP(3, 4)", 3}, {"STEP(3, 6)", 0}, {"RAMP(2, 3)", 4}, {"SQRT(16) + EXP(0) + LN(1)", 5},
		{"1e3 + .5", 1000.5}, {"FLOOR(2.7) + CEIL(2.1)", 5}, {"SAFEDIV(1, 0, 7)", 7},
	}
	for _, c := range cases {
		n, err := ParseExpr(c.src)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		got := n.eval(&env{time: 5, dt: 0.5})
		if math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s = %g, want %g", c.src, got, c.want)
		}
	}
	for _, bad := range []string{"", "1 +", "(1", "MIN()", "STEP(1)", "IF 1 THEN 2", "1 2", "a(1, 2)", "$", `"unterminated`, "LOOKUP(1, 2)"} {
		if _, err := ParseExpr(bad); err == nil {
			t.Errorf("%q parsed, want an error", bad)
		}
	}
}

func TestTable(t *testing.T) {
	tb := &Table{X: []float64{0, 1, 2}, Y: []float64{0, 10, 0}}
	for x, want := range map[float64]float64{-1: 0, 0: 0, 0.5: 5, 1: 10, 1.5: 5, 3: 0} {
		if got := tb.At(x); got != want {
			t.Errorf("At(%g) = %g, want %g", x, got, want)
		}
	}
}

func TestSimulateExponentialGrowth(t *testing.T) {
	src := `simulation: {start: 0, stop: 10, dt: 0.1}
variables:
  - {name: population, kind: stock, initial: "100", inflows: [births]}
  - {name: births, kind: flow, equation: "population * 0.1"}
`
	exact := 100 * math.Exp(1)
	for method, tol := range map[string]float64{"euler": 2, "rk4": 1e-6} {
		m := mustParse(t, src)
		r, err := Simulate(context.Background(), m, SimOptions{Method: method})
		if err != nil {
			t.Fatal(err)
		}
		pop := r.Series("population")
		got := pop[len(pop)-1]
		if math.Abs(got-exact) > tol {
			t.Errorf("%s: %g after 10, want %g within %g", method, got, exact, tol)
		}
		if len(r.Time) != 101 || r.Time[100] != 10 {
			t.Errorf("%s: %d steps ending at %g", method, len(r.Time), r.Time[len(r.Time)-1])
		}
	}
}

func TestSmoothAndDelay(t *testing.T) {
	m := mustParse(t, `simulation: {start: 0, stop: 20, dt: 0.01, method: rk4}
variables:
  - {name: input, equation: "STEP(10, 1)"}
  - {name: smoothed, equation: "SMOOTH(input, 2)"}
  - {name: delayed, equation: "DELAY1(input, 2)"}
`)
	r, err := Simulate(context.Background(), m, SimOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at := func(name string, tm float64) float64 { return r.Series(name)[int(math.Round(tm/0.01))] }
	// a first-order response reaches 1-1/e of the step one time constant after it
	if got := at("smoothed", 3); math.Abs(got-10*(1-math.Exp(-1))) > 0.05 {
		t.Errorf("SMOOTH after one time constant = %g", got)
	}
	if got := at("delayed", 3); math.Abs(got-10*(1-math.Exp(-1))) > 0.05 {
		t.Errorf("DELAY1 after one time constant = %g", got)
	}
	if got := at("smoothed", 20); math.Abs(got-10) > 0.01 {
		t.Errorf("SMOOTH settles at %g", got)
	}
}

func TestSimulateNeedsEquations(t *testing.T) {
	data, _ := os.ReadFile("testdata/simple.yaml")
	m := mustParse(t, string(data))
	_, err := Simulate(context.Background(), m, SimOptions{})
	if err == nil || !strings.Contains(err.Error(), "has no equation to simulate") {
		t.Fatalf("got %v", err)
	}
	m = mustParse(t, "variables:\n  - {name: a, equation: '1'}\n")
	if _, err := Simulate(context.Background(), m, SimOptions{DT: 1e-9, Stop: 1000}); err == nil || !strings.Contains(err.Error(), "raise dt") {
		t.Fatalf("tiny dt: %v", err)
	}
	if _, err := Simulate(context.Background(), m, SimOptions{Method: "rk45"}); err == nil {
		t.Fatal("unknown method accepted")
	}
}

// The replica checker model: the vicious cycle is a reinforcing loop, the
// mitigations are balancing loops, and during the brown-out a reinforcing
// loop takes over.
func TestReplicaCheckerModel(t *testing.T) {
	m, err := Example("replica-checker")
	if err != nil {
		t.Fatal(err)
	}
	a, err := Analyze(context.Background(), m, 0)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{}
	for _, l := range a.Loops {
		if l.Title != "" {
			kinds[l.Title] = l.Kind()
		}
	}
	want := map[string]string{"re-replication storm": "reinforcing", "repair": "balancing", "breaker": "balancing", "backoff": "balancing"}
	for title, k := range want {
		if kinds[title] != k {
			t.Errorf("loop %q is %q, want %q (all: %v)", title, kinds[title], k, kinds)
		}
	}
	r, err := Simulate(context.Background(), m, SimOptions{Analysis: a})
	if err != nil {
		t.Fatal(err)
	}
	reinforcingDominates := false
	for i, tm := range r.Time {
		if tm >= 10 && tm <= 12 && strings.HasPrefix(r.Dominant[i], "R") {
			reinforcingDominates = true
		}
	}
	if !reinforcingDominates {
		t.Errorf("no reinforcing loop dominates during the brown-out: %v", r.DominancePeriods())
	}
	dead := r.Series("nodes declared dead")
	if dead[len(dead)-1] < 50 {
		t.Errorf("naive model: %g nodes dead at the end, want a storm that lasts", dead[len(dead)-1])
	}
	// All mitigations on: the brown-out is a blip.
	for name, eq := range map[string]string{"grace period": "10", "per node copy limit": "2", "breaker threshold": "0.25", "backoff on": "1"} {
		m.Var(name).Equation = eq
	}
	if err := m.Build(); err != nil {
		t.Fatal(err)
	}
	r, err = Simulate(context.Background(), m, SimOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dead = r.Series("nodes declared dead")
	if dead[len(dead)-1] > 1 {
		t.Errorf("mitigated model: %g nodes dead at the end", dead[len(dead)-1])
	}
}

func TestExamplesParseAndRun(t *testing.T) {
	for _, name := range Examples() {
		m, err := Example(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		a, err := Analyze(context.Background(), m, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(a.Loops) == 0 {
			t.Errorf("%s: no loops", name)
		}
		r, err := Simulate(context.Background(), m, SimOptions{Analysis: a})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var csv, js strings.Builder
		if err := r.WriteCSV(&csv); err != nil || !strings.HasPrefix(csv.String(), "time,") {
			t.Errorf("%s: CSV %v", name, err)
		}
		if err := r.WriteJSON(&js); err != nil || !strings.Contains(js.String(), `"dominance"`) {
			t.Errorf("%s: JSON %v", name, err)
		}
	}
}

func TestDiagram(t *testing.T) {
	data, _ := os.ReadFile("testdata/simple.yaml")
	m := mustParse(t, string(data))
	a, _ := Analyze(context.Background(), m, 0)
	dot := DOT(m, a, DiagramOptions{})
	for _, want := range []string{"digraph \"Simple CLD\"", `headlabel="-"`, `label="||"`, "R1: copy traffic"} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %q:\n%s", want, dot)
		}
	}
	svg, err := SVG(context.Background(), m, a, DiagramOptions{ID: "cld"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`id="cld"`, `data-loop="R1"`, `data-loop="B1"`, `class="delay"`, `data-polarity="-"`, ">copy traffic<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
	if _, err := SVG(context.Background(), m, a, DiagramOptions{Layout: "nonsense"}); err == nil {
		t.Error("unknown layout accepted")
	}
}

const xmileSample = `<?xml version="1.0" encoding="utf-8"?>
<xmile version="1.0" xmlns="http://docs.oasis-open.org/xmile/ns/XMILE/v1.0">
  <header><name>Tub</name></header>
  <sim_specs method="RK4" time_units="Minutes"><start>0</start><stop>10</stop><dt reciprocal="true">4</dt></sim_specs>
  <model><variables>
    <stock name="Water\nin tub"><eqn>50</eqn><inflow>faucet</inflow><outflow>drain</outflow><non_negative/></stock>
    <flow name="faucet"><eqn>5</eqn></flow>
    <flow name="drain"><eqn>Water_in_tub * drain_fraction(Water_in_tub)</eqn><non_negative/></flow>
    <aux name="drain fraction"><eqn>0</eqn><gf><xscale min="0" max="100"/><ypts>0.05,0.1,0.2</ypts></gf></aux>
  </variables></model>
</xmile>`

func TestImportXMILE(t *testing.T) {
	m, err := ImportXMILE("tub.xmile", strings.NewReader(xmileSample))
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "Tub" || m.Sim.DT != 0.25 || m.Sim.Method != "rk4" || len(m.Variables) != 4 {
		t.Fatalf("model %+v sim %+v", m.Name, m.Sim)
	}
	s := m.Var("water in tub")
	if s == nil || s.Kind != Stock || !s.NonNegative || s.Initial != "50" {
		t.Fatalf("stock %+v", s)
	}
	if tb := m.Var("drain fraction").Table; tb == nil || tb.At(50) != 0.1 {
		t.Fatalf("graphical function %+v", tb)
	}
	a, _ := Analyze(context.Background(), m, 0)
	if a.Loop("B1") == nil {
		t.Fatalf("the drain should make a balancing loop: %+v", a.Loops)
	}
	r, err := Simulate(context.Background(), m, SimOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Series("water in tub"); got[len(got)-1] <= 0 {
		t.Fatal("tub emptied")
	}
	// ParseFile sniffs XMILE.
	if _, err := ParseFile("tub.stmx", strings.NewReader(xmileSample)); err != nil {
		t.Fatal(err)
	}
}

func TestImportXMILEUnsupported(t *testing.T) {
	cases := map[string]string{
		"arrays":      `<aux name="a"><dimensions><dim name="d"/></dimensions><eqn>1</eqn></aux>`,
		"modules":     `<module name="m"/>`,
		"conveyors":   `<stock name="s"><eqn>0</eqn><conveyor><len>1</len></conveyor></stock>`,
		"queues":      `<stock name="s"><eqn>0</eqn><queue/></stock>`,
		"extrapolate": `<aux name="a"><eqn>TIME</eqn><gf type="extrapolate"><xscale min="0" max="1"/><ypts>0,1</ypts></gf></aux>`,
	}
	for want, body := range cases {
		src := `<xmile version="1.0"><model><variables>` + "\n" + body + `</variables></model></xmile>`
		_, err := ImportXMILE("bad.xmile", strings.NewReader(src))
		if err == nil {
			t.Errorf("%s: accepted", want)
			continue
		}
		if !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), "not supported") {
			t.Errorf("%s: %v", want, err)
		}
	}
	if _, err := ImportXMILE("x", strings.NewReader("<notxmile/>")); err == nil || !strings.Contains(err.Error(), "no <xmile>") {
		t.Errorf("non-XMILE: %v", err)
	}
}
