package loops

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// The expression language of equations. It is small on purpose, and the same
// for models written by hand and models imported from XMILE:
//
//	numbers      1, 2.5, 1e-3
//	names        heartbeat_loss, "heartbeat loss" (spaces and case fold to _ and lower case)
//	arithmetic   + - * / ^ (power), unary -, parentheses
//	comparison   < <= > >= = <> (1 for true, 0 for false); and, or, not
//	conditional  IF cond THEN a ELSE b   (also if(cond, a, b))
//	time         TIME, DT, STARTTIME, STOPTIME
//	functions    MIN(a, b, ...), MAX(a, b, ...), ABS, SQRT, EXP, LN, LOG10, FLOOR, CEIL, ROUND,
//	             STEP(height, at), PULSE(height, at[, every]), RAMP(slope, from[, to])
//	lookups      name(x) calls the graphical function of variable name;
//	             LOOKUP(name, x) is the same
//	delays       SMOOTH(input, time[, initial]) first-order exponential smoothing;
//	             DELAY1(input, time[, initial]) first-order material delay
//
// SMOOTH and DELAY1 each hold a hidden stock, integrated with the model's stocks.

// node is one node of a parsed expression.
type node struct {
	op   opKind
	num  float64
	name string // for refs (canonical) and calls (upper-case function name)
	ref  int    // variable index once resolved
	args []*node
	// slot is the hidden-stock index of SMOOTH/DELAY1 nodes once compiled.
	slot int
}

type opKind uint8

const (
	opNum opKind = iota
	opRef
	opTime
	opDT
	opStart
	opStop
	opNeg
	opNot
	opAdd
	opSub
	opMul
	opDiv
	opPow
	opLT
	opLE
	opGT
	opGE
	opEQ
	opNE
	opAnd
	opOr
	opIf
	opCall   // built-in function: name holds it
	opLookup // graphical function of variable ref applied to args[0]
	opSmooth
	opDelay1
)

// maxExprDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxExprDepth = 200

// Canonical is the form of a variable name used for matching: lower case,
// runs of spaces, underscores and newlines folded to one underscore.
func Canonical(name string) string {
	var b strings.Builder
	pendingSep := false
	for _, r := range strings.TrimSpace(name) {
		if unicode.IsSpace(r) || r == '_' || r == '\\' {
			pendingSep = true
			continue
		}
		if pendingSep && b.Len() > 0 {
			b.WriteByte('_')
		}
		pendingSep = false
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}

type tokKind uint8

const (
	tEOF tokKind = iota
	tNum
	tIdent
	tQuoted
	tOp
)

type token struct {
	kind tokKind
	text string
	num  float64
	pos  int
}

func lex(src string) ([]token, error) {
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (src[j] >= '0' && src[j] <= '9' || src[j] == '.') {
				j++
			}
			if j < len(src) && (src[j] == 'e' || src[j] == 'E') {
				k := j + 1
				if k < len(src) && (src[k] == '+' || src[k] == '-') {
					k++
				}
				if k < len(src) && src[k] >= '0' && src[k] <= '9' {
					j = k
					for j < len(src) && src[j] >= '0' && src[j] <= '9' {
						j++
					}
				}
			}
			v, err := strconv.ParseFloat(src[i:j], 64)
			if err != nil {
				return nil, fmt.Errorf("column %d: bad number %q", i+1, src[i:j])
			}
			toks = append(toks, token{kind: tNum, num: v, text: src[i:j], pos: i})
			i = j
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
			j := i
			for j < len(src) {
				d := src[j]
				if d == '_' || d >= 'a' && d <= 'z' || d >= 'A' && d <= 'Z' || d >= '0' && d <= '9' || d >= 0x80 {
					j++
					continue
				}
				break
			}
			toks = append(toks, token{kind: tIdent, text: src[i:j], pos: i})
			i = j
		case c == '"':
			j := strings.IndexByte(src[i+1:], '"')
			if j < 0 {
				return nil, fmt.Errorf("column %d: unterminated quoted name", i+1)
			}
			toks = append(toks, token{kind: tQuoted, text: src[i+1 : i+1+j], pos: i})
			i += j + 2
		default:
			two := ""
			if i+1 < len(src) {
				two = src[i : i+2]
			}
			switch two {
			case "<=", ">=", "<>", "==", "!=", "&&", "||":
				toks = append(toks, token{kind: tOp, text: two, pos: i})
				i += 2
				continue
			}
			if strings.IndexByte("+-*/^(),<>=!", c) < 0 {
				return nil, fmt.Errorf("column %d: unexpected character %q", i+1, c)
			}
			toks = append(toks, token{kind: tOp, text: string(c), pos: i})
			i++
		}
	}
	toks = append(toks, token{kind: tEOF, pos: len(src)})
	return toks, nil
}

type parser struct {
	toks  []token
	i     int
	depth int
}

// ParseExpr parses one equation. Names stay unresolved (see Model.compile).
func ParseExpr(src string) (*node, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tEOF {
		return nil, fmt.Errorf("column %d: unexpected %q after the end of the expression", t.pos+1, t.text)
	}
	return n, nil
}

func (p *parser) peek() token { return p.toks[p.i] }
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tEOF {
		p.i++
	}
	return t
}

func isKeyword(t token, kw string) bool { return t.kind == tIdent && strings.EqualFold(t.text, kw) }

// binary operator precedence; higher binds tighter.
func binop(t token) (opKind, int, bool) {
	if t.kind == tIdent {
		switch strings.ToLower(t.text) {
		case "or":
			return opOr, 1, true
		case "and":
			return opAnd, 2, true
		}
		return 0, 0, false
	}
	if t.kind != tOp {
		return 0, 0, false
	}
	switch t.text {
	case "||":
		return opOr, 1, true
	case "&&":
		return opAnd, 2, true
	case "=", "==":
		return opEQ, 3, true
	case "<>", "!=":
		return opNE, 3, true
	case "<":
		return opLT, 4, true
	case "<=":
		return opLE, 4, true
	case ">":
		return opGT, 4, true
	case ">=":
		return opGE, 4, true
	case "+":
		return opAdd, 5, true
	case "-":
		return opSub, 5, true
	case "*":
		return opMul, 6, true
	case "/":
		return opDiv, 6, true
	case "^":
		return opPow, 8, true
	}
	return 0, 0, false
}

func (p *parser) expr(minPrec int) (*node, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxExprDepth {
		return nil, fmt.Errorf("expression nested deeper than %d levels", maxExprDepth)
	}
	left, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		op, prec, ok := binop(p.peek())
		if !ok || prec < minPrec {
			return left, nil
		}
		p.next()
		next := prec + 1
		if op == opPow { // right associative
			next = prec
		}
		right, err := p.expr(next)
		if err != nil {
			return nil, err
		}
		left = &node{op: op, args: []*node{left, right}}
	}
}

func (p *parser) unary() (*node, error) {
	t := p.peek()
	if t.kind == tOp && (t.text == "-" || t.text == "+" || t.text == "!") || isKeyword(t, "not") {
		p.next()
		p.depth++
		defer func() { p.depth-- }()
		if p.depth > maxExprDepth {
			return nil, fmt.Errorf("expression nested deeper than %d levels", maxExprDepth)
		}
		// unary minus binds looser than ^ (so -2^2 = -4) but tighter than * /
		x, err := p.expr(7)
		if err != nil {
			return nil, err
		}
		switch t.text {
		case "+":
			return x, nil
		case "-":
			return &node{op: opNeg, args: []*node{x}}, nil
		}
		return &node{op: opNot, args: []*node{x}}, nil
	}
	return p.primary()
}

func (p *parser) primary() (*node, error) {
	t := p.next()
	switch t.kind {
	case tNum:
		return &node{op: opNum, num: t.num}, nil
	case tQuoted:
		name := Canonical(t.text)
		if name == "" {
			return nil, fmt.Errorf("column %d: empty quoted name", t.pos+1)
		}
		return p.refOrCall(name, t)
	case tIdent:
		switch strings.ToUpper(t.text) {
		case "IF":
			return p.ifThenElse(t)
		case "TIME":
			return &node{op: opTime}, nil
		case "DT":
			return &node{op: opDT}, nil
		case "STARTTIME", "INITIAL_TIME":
			return &node{op: opStart}, nil
		case "STOPTIME", "FINAL_TIME":
			return &node{op: opStop}, nil
		case "PI":
			return &node{op: opNum, num: math.Pi}, nil
		case "AND", "OR", "THEN", "ELSE":
			return nil, fmt.Errorf("column %d: unexpected %q", t.pos+1, t.text)
		}
		name := Canonical(t.text)
		if name == "" {
			return nil, fmt.Errorf("column %d: %q is not a name", t.pos+1, t.text)
		}
		return p.refOrCall(name, t)
	case tOp:
		if t.text == "(" {
			x, err := p.expr(0)
			if err != nil {
				return nil, err
			}
			if c := p.next(); c.kind != tOp || c.text != ")" {
				return nil, fmt.Errorf("column %d: missing )", c.pos+1)
			}
			return x, nil
		}
		return nil, fmt.Errorf("column %d: unexpected %q", t.pos+1, t.text)
	}
	return nil, fmt.Errorf("column %d: unexpected end of expression", t.pos+1)
}

func (p *parser) ifThenElse(t token) (*node, error) {
	if n := p.peek(); n.kind == tOp && n.text == "(" {
		// if(cond, a, b) function form, unless it is IF (x) THEN ...
		save := p.i
		args, err := p.callArgs()
		if err == nil && !isKeyword(p.peek(), "then") {
			if len(args) != 3 {
				return nil, fmt.Errorf("column %d: if(cond, a, b) takes 3 arguments, not %d", t.pos+1, len(args))
			}
			return &node{op: opIf, args: args}, nil
		}
		p.i = save
	}
	cond, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if !isKeyword(p.next(), "then") {
		return nil, fmt.Errorf("column %d: IF without THEN", t.pos+1)
	}
	a, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	if !isKeyword(p.next(), "else") {
		return nil, fmt.Errorf("column %d: IF ... THEN without ELSE", t.pos+1)
	}
	b, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	return &node{op: opIf, args: []*node{cond, a, b}}, nil
}

func (p *parser) callArgs() ([]*node, error) {
	p.next() // (
	var args []*node
	if n := p.peek(); n.kind == tOp && n.text == ")" {
		p.next()
		return args, nil
	}
	for {
		a, err := p.expr(0)
		if err != nil {
			return nil, err
		}
		args = append(args, a)
		n := p.next()
		if n.kind == tOp && n.text == ")" {
			return args, nil
		}
		if n.kind != tOp || n.text != "," {
			return nil, fmt.Errorf("column %d: want , or ) in the argument list", n.pos+1)
		}
	}
}

// builtins maps function names to their argument counts (min, max; -1 = any).
var builtins = map[string][2]int{
	"MIN": {1, -1}, "MAX": {1, -1}, "ABS": {1, 1}, "SQRT": {1, 1}, "EXP": {1, 1}, "LN": {1, 1},
	"LOG10": {1, 1}, "FLOOR": {1, 1}, "CEIL": {1, 1}, "ROUND": {1, 1}, "INT": {1, 1},
	"STEP": {2, 2}, "PULSE": {2, 3}, "RAMP": {2, 3}, "SMOOTH": {2, 3}, "SMTH1": {2, 3},
	"DELAY1": {2, 3}, "LOOKUP": {2, 2}, "SAFEDIV": {2, 3},
}

func (p *parser) refOrCall(name string, t token) (*node, error) {
	n := p.peek()
	if n.kind != tOp || n.text != "(" {
		return &node{op: opRef, name: name, ref: -1}, nil
	}
	args, err := p.callArgs()
	if err != nil {
		return nil, err
	}
	fn := strings.ToUpper(name)
	if ar, ok := builtins[fn]; ok && t.kind == tIdent {
		if len(args) < ar[0] || ar[1] >= 0 && len(args) > ar[1] {
			return nil, fmt.Errorf("column %d: %s takes %s arguments, not %d", t.pos+1, fn, arity(ar), len(args))
		}
		switch fn {
		case "SMOOTH", "SMTH1":
			return &node{op: opSmooth, args: args}, nil
		case "DELAY1":
			return &node{op: opDelay1, args: args}, nil
		case "LOOKUP":
			if args[0].op != opRef {
				return nil, fmt.Errorf("column %d: LOOKUP's first argument must name a variable with a table", t.pos+1)
			}
			return &node{op: opLookup, name: args[0].name, ref: -1, args: args[1:]}, nil
		}
		return &node{op: opCall, name: fn, args: args}, nil
	}
	if len(args) != 1 {
		return nil, fmt.Errorf("column %d: %s is not a built-in function; a lookup call takes 1 argument", t.pos+1, name)
	}
	return &node{op: opLookup, name: name, ref: -1, args: args}, nil
}

func arity(a [2]int) string {
	switch {
	case a[1] < 0:
		return fmt.Sprintf("%d or more", a[0])
	case a[0] == a[1]:
		return strconv.Itoa(a[0])
	}
	return fmt.Sprintf("%d to %d", a[0], a[1])
}

// quoteName writes a name bare when it reads back as the same name, quoted otherwise.
func quoteName(name string) string {
	bare := name != ""
	for i, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= 0x80 || i > 0 && r >= '0' && r <= '9') {
			bare = false
			break
		}
	}
	switch strings.ToUpper(name) {
	case "IF", "THEN", "ELSE", "AND", "OR", "NOT", "TIME", "DT", "STARTTIME", "INITIAL_TIME", "STOPTIME", "FINAL_TIME", "PI":
		bare = false
	}
	if bare && Canonical(name) == name {
		return name
	}
	return `"` + name + `"`
}

// walk calls fn for n and every node under it.
func (n *node) walk(fn func(*node)) {
	if n == nil {
		return
	}
	fn(n)
	for _, a := range n.args {
		a.walk(fn)
	}
}

// String prints the expression back (canonical names, full parentheses where needed).
func (n *node) String() string {
	var b strings.Builder
	n.format(&b)
	return b.String()
}

var opText = map[opKind]string{
	opAdd: "+", opSub: "-", opMul: "*", opDiv: "/", opPow: "^", opLT: "<", opLE: "<=", opGT: ">", opGE: ">=",
	opEQ: "=", opNE: "<>", opAnd: " and ", opOr: " or ",
}

func (n *node) format(b *strings.Builder) {
	switch n.op {
	case opNum:
		b.WriteString(strconv.FormatFloat(n.num, 'g', -1, 64))
	case opRef:
		b.WriteString(quoteName(n.name))
	case opTime:
		b.WriteString("TIME")
	case opDT:
		b.WriteString("DT")
	case opStart:
		b.WriteString("STARTTIME")
	case opStop:
		b.WriteString("STOPTIME")
	case opNeg:
		b.WriteString("-(")
		n.args[0].format(b)
		b.WriteString(")")
	case opNot:
		b.WriteString("not (")
		n.args[0].format(b)
		b.WriteString(")")
	case opIf:
		b.WriteString("IF ")
		n.args[0].format(b)
		b.WriteString(" THEN ")
		n.args[1].format(b)
		b.WriteString(" ELSE ")
		n.args[2].format(b)
	case opCall, opSmooth, opDelay1, opLookup:
		name := n.name
		switch n.op {
		case opSmooth:
			name = "SMOOTH"
		case opDelay1:
			name = "DELAY1"
		case opLookup:
			name = "LOOKUP"
			b.WriteString("LOOKUP(" + quoteName(n.name) + ", ")
			n.args[0].format(b)
			b.WriteString(")")
			return
		}
		b.WriteString(name + "(")
		for i, a := range n.args {
			if i > 0 {
				b.WriteString(", ")
			}
			a.format(b)
		}
		b.WriteString(")")
	default:
		b.WriteString("(")
		n.args[0].format(b)
		b.WriteString(opText[n.op])
		n.args[1].format(b)
		b.WriteString(")")
	}
}

// env is what evaluation reads: variable values, hidden stocks, tables, time.
type env struct {
	vals    []float64
	hidden  []float64
	tables  []*Table
	time    float64
	dt      float64
	start   float64
	stop    float64
	initial bool // true while computing initial values: SMOOTH/DELAY1 return their input
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (n *node) eval(e *env) float64 {
	switch n.op {
	case opNum:
		return n.num
	case opRef:
		return e.vals[n.ref]
	case opTime:
		return e.time
	case opDT:
		return e.dt
	case opStart:
		return e.start
	case opStop:
		return e.stop
	case opNeg:
		return -n.args[0].eval(e)
	case opNot:
		return b2f(n.args[0].eval(e) == 0)
	case opIf:
		if n.args[0].eval(e) != 0 {
			return n.args[1].eval(e)
		}
		return n.args[2].eval(e)
	case opAnd:
		return b2f(n.args[0].eval(e) != 0 && n.args[1].eval(e) != 0)
	case opOr:
		return b2f(n.args[0].eval(e) != 0 || n.args[1].eval(e) != 0)
	case opSmooth:
		if e.initial {
			if len(n.args) > 2 {
				return n.args[2].eval(e)
			}
			return n.args[0].eval(e)
		}
		return e.hidden[n.slot]
	case opDelay1:
		if e.initial {
			if len(n.args) > 2 {
				return n.args[2].eval(e)
			}
			return n.args[0].eval(e)
		}
		d := n.args[1].eval(e)
		if d <= 0 {
			return n.args[0].eval(e)
		}
		return e.hidden[n.slot] / d
	case opLookup:
		return e.tables[n.ref].At(n.args[0].eval(e))
	case opCall:
		return n.call(e)
	}
	a, b := n.args[0].eval(e), n.args[1].eval(e)
	switch n.op {
	case opAdd:
		return a + b
	case opSub:
		return a - b
	case opMul:
		return a * b
	case opDiv:
		if b == 0 {
			return 0 // as Stella and Vensim's ZIDZ: a division by zero yields 0, not a NaN that poisons the run
		}
		return a / b
	case opPow:
		return math.Pow(a, b)
	case opLT:
		return b2f(a < b)
	case opLE:
		return b2f(a <= b)
	case opGT:
		return b2f(a > b)
	case opGE:
		return b2f(a >= b)
	case opEQ:
		return b2f(a == b)
	case opNE:
		return b2f(a != b)
	}
	return math.NaN()
}

func (n *node) call(e *env) float64 {
	arg := func(i int) float64 { return n.args[i].eval(e) }
	switch n.name {
	case "MIN", "MAX":
		v := arg(0)
		for i := 1; i < len(n.args); i++ {
			if n.name == "MIN" {
				v = math.Min(v, arg(i))
			} else {
				v = math.Max(v, arg(i))
			}
		}
		return v
	case "ABS":
		return math.Abs(arg(0))
	case "SQRT":
		return math.Sqrt(arg(0))
	case "EXP":
		return math.Exp(arg(0))
	case "LN":
		return math.Log(arg(0))
	case "LOG10":
		return math.Log10(arg(0))
	case "FLOOR", "INT":
		return math.Floor(arg(0))
	case "CEIL":
		return math.Ceil(arg(0))
	case "ROUND":
		return math.Round(arg(0))
	case "STEP":
		if e.time >= arg(1)-e.dt/2 {
			return arg(0)
		}
		return 0
	case "PULSE":
		// height/DT during the one step at `at` (and every `every` after), so the
		// pulse moves `height` into a stock whatever DT is, as in Stella.
		at, h := arg(1), arg(0)
		dt := e.dt
		if dt <= 0 {
			dt = 1
		}
		if e.time < at-dt/2 {
			return 0
		}
		if len(n.args) > 2 {
			if every := arg(2); every > 0 {
				k := math.Round((e.time - at) / every)
				if math.Abs(e.time-at-k*every) < dt/2 {
					return h / dt
				}
				return 0
			}
		}
		if math.Abs(e.time-at) < dt/2 {
			return h / dt
		}
		return 0
	case "RAMP":
		from := arg(1)
		t := e.time
		if len(n.args) > 2 {
			t = math.Min(t, arg(2))
		}
		if t <= from {
			return 0
		}
		return arg(0) * (t - from)
	case "SAFEDIV":
		b := arg(1)
		if b == 0 {
			if len(n.args) > 2 {
				return arg(2)
			}
			return 0
		}
		return arg(0) / b
	}
	return math.NaN()
}

// Table is a graphical function (lookup): y as a piecewise-linear function of
// x through its points, held flat beyond the ends (XMILE's "continuous" type).
type Table struct {
	X, Y []float64
}

// At evaluates the table at x.
func (t *Table) At(x float64) float64 {
	n := len(t.X)
	if n == 0 {
		return 0
	}
	if x <= t.X[0] || math.IsNaN(x) {
		return t.Y[0]
	}
	if x >= t.X[n-1] {
		return t.Y[n-1]
	}
	lo, hi := 0, n-1
	for hi-lo > 1 {
		m := (lo + hi) / 2
		if t.X[m] <= x {
			lo = m
		} else {
			hi = m
		}
	}
	dx := t.X[hi] - t.X[lo]
	if dx == 0 {
		return t.Y[hi]
	}
	return t.Y[lo] + (t.Y[hi]-t.Y[lo])*(x-t.X[lo])/dx
}

// monotone reports +1 if the table never falls, -1 if it never rises, 0 otherwise.
func (t *Table) monotone() int {
	up, down := true, true
	for i := 1; i < len(t.Y); i++ {
		if t.Y[i] < t.Y[i-1] {
			up = false
		}
		if t.Y[i] > t.Y[i-1] {
			down = false
		}
	}
	switch {
	case up && !down:
		return 1
	case down && !up:
		return -1
	}
	return 0
}

// polarityOf infers the sign of d(expr)/d(variable v) from the expression's
// shape, assuming every variable is non-negative (true of most stocks and
// flows in these models). It returns Unknown when the shape does not tell.
func (n *node) polarityOf(v int, tables []*Table) Polarity {
	if !n.uses(v) {
		return 0
	}
	switch n.op {
	case opRef:
		return Positive
	case opNeg:
		return n.args[0].polarityOf(v, tables).flip()
	case opAdd:
		return combine(n.args[0].polarityOf(v, tables), n.args[1].polarityOf(v, tables))
	case opSub:
		return combine(n.args[0].polarityOf(v, tables), n.args[1].polarityOf(v, tables).flip())
	case opMul:
		// d(a*b) = b da + a db: the sign is known when each side that does
		// not depend on v is known to be non-negative.
		a, b := n.args[0], n.args[1]
		ua, ub := a.uses(v), b.uses(v)
		switch {
		case ua && ub:
			if !a.nonNegative(tables) || !b.nonNegative(tables) {
				return Unknown
			}
			return combine(a.polarityOf(v, tables), b.polarityOf(v, tables))
		case ua:
			if !b.nonNegative(tables) {
				return Unknown
			}
			return a.polarityOf(v, tables)
		default:
			if !a.nonNegative(tables) {
				return Unknown
			}
			return b.polarityOf(v, tables)
		}
	case opDiv:
		a, b := n.args[0], n.args[1]
		ua, ub := a.uses(v), b.uses(v)
		switch {
		case ua && ub:
			if !a.nonNegative(tables) || !b.nonNegative(tables) {
				return Unknown
			}
			return combine(a.polarityOf(v, tables), b.polarityOf(v, tables).flip())
		case ua:
			if !b.nonNegative(tables) {
				return Unknown
			}
			return a.polarityOf(v, tables)
		default:
			if !a.nonNegative(tables) {
				return Unknown
			}
			return b.polarityOf(v, tables).flip()
		}
	case opPow:
		base, exp := n.args[0], n.args[1]
		if exp.op == opNum && exp.num > 0 && base.uses(v) && !exp.uses(v) && base.nonNegative(tables) {
			return base.polarityOf(v, tables)
		}
		return Unknown
	case opGT, opGE:
		return combine(n.args[0].polarityOf(v, tables), n.args[1].polarityOf(v, tables).flip())
	case opLT, opLE:
		return combine(n.args[0].polarityOf(v, tables).flip(), n.args[1].polarityOf(v, tables))
	case opIf:
		if n.args[0].uses(v) {
			// a switch between two constants follows its condition
			a, b := n.args[1], n.args[2]
			if a.op == opNum && b.op == opNum && a.num != b.num {
				p := n.args[0].polarityOf(v, tables)
				if a.num < b.num {
					p = p.flip()
				}
				return p
			}
			return Unknown
		}
		return combine(n.args[1].polarityOf(v, tables), n.args[2].polarityOf(v, tables))
	case opSmooth, opDelay1:
		if n.args[0].uses(v) && (len(n.args) < 2 || !n.args[1].uses(v)) {
			return n.args[0].polarityOf(v, tables)
		}
		return Unknown
	case opCall:
		switch n.name {
		case "MIN", "MAX", "SQRT", "EXP", "LN", "LOG10", "FLOOR", "CEIL", "ROUND", "INT":
			p := Polarity(0)
			for _, a := range n.args {
				p = combine(p, a.polarityOf(v, tables))
			}
			return p
		}
		return Unknown
	case opLookup:
		if n.ref >= 0 && n.ref < len(tables) && tables[n.ref] != nil {
			inner := n.args[0].polarityOf(v, tables)
			switch tables[n.ref].monotone() {
			case 1:
				return inner
			case -1:
				return inner.flip()
			}
		}
		return Unknown
	}
	return Unknown
}

// nonNegative reports whether an operand is known not to go below zero under
// the all-variables-non-negative assumption.
func (n *node) nonNegative(tables []*Table) bool {
	switch n.op {
	case opNum:
		return n.num >= 0
	case opRef, opTime, opDT, opSmooth, opDelay1:
		return true
	case opPow:
		return n.args[0].nonNegative(tables)
	case opLookup:
		if n.ref < 0 || n.ref >= len(tables) || tables[n.ref] == nil {
			return false
		}
		for _, y := range tables[n.ref].Y {
			if y < 0 {
				return false
			}
		}
		return true
	case opGT, opGE, opLT, opLE, opEQ, opNE, opAnd, opOr, opNot:
		return true
	case opIf:
		return n.args[1].nonNegative(tables) && n.args[2].nonNegative(tables)
	case opAdd, opMul, opDiv:
		return n.args[0].nonNegative(tables) && n.args[1].nonNegative(tables)
	case opCall:
		switch n.name {
		case "MIN":
			for _, a := range n.args {
				if !a.nonNegative(tables) {
					return false
				}
			}
			return true
		case "MAX": // MAX(0, x) is never negative whatever x is
			for _, a := range n.args {
				if a.nonNegative(tables) {
					return true
				}
			}
			return false
		case "ABS", "SQRT", "EXP":
			return true
		}
	}
	return false
}

func (n *node) uses(v int) bool {
	found := false
	n.walk(func(x *node) {
		if x.op == opRef && x.ref == v {
			found = true
		}
	})
	return found
}

// combine merges the polarities of two terms that both carry a dependency.
func combine(a, b Polarity) Polarity {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case a == b:
		return a
	}
	return Unknown
}
