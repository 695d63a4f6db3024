package collapse

import (
	"bytes"
	"io"
	"strconv"

	"github.com/srekit/srekit/flame"
)

// PerfOptions are stackcollapse-perf.pl's options.
type PerfOptions struct {
	PID    bool // append the process ID to the process name: "java-1234"
	TID    bool // append process and thread IDs: "java-1234/1240"
	Kernel bool // annotate kernel frames with "_[k]"
	JIT    bool // annotate JIT frames (from /tmp/perf-PID.map) with "_[j]"
	All    bool // Kernel and JIT
	Addrs  bool // keep raw addresses of unknown symbols: "[unknown <addr>]"
	// EventFilter keeps only samples of this event; empty means the first
	// event type seen, as merging cycles with instructions would mislead.
	EventFilter string
}

// PerfScript collapses `perf script` output into a profile. The result is the
// same, stack for stack and count for count, as stackcollapse-perf.pl's with
// the same options (its --inline, --context and --srcline are not supported:
// they run addr2line or need extra input). Lines that are neither a sample
// header nor a frame are reported in Profile.Skipped. warn, if not nil,
// receives notes such as the event type being filtered for.
func PerfScript(r io.Reader, o PerfOptions, warn func(string)) (*flame.Profile, error) {
	c := newPerfCollapser(o, warn)
	lr := flame.NewLineReader(r, &c.skipped)
	for {
		line, ok := lr.Next()
		if !ok {
			break
		}
		c.line(line, lr.Line())
	}
	if err := lr.Err(); err != nil {
		return nil, err
	}
	return c.profile(), nil
}

// perfCollapser is the state machine of one perf script stream.
type perfCollapser struct {
	o       PerfOptions
	warn    func(string)
	counts  *counter
	skipped flame.Skips

	event         string // the event kept, once known
	eventDefault  bool   // event was taken from the first sample
	eventWarned   bool
	havePname     bool
	pname         []byte
	period        int64
	groups        []int  // end offsets in frames of each stack line's frames, leaf first
	frames        []byte // the frames of the current sample, each line's group joined by ';'
	key           []byte
	scratch       []byte
	isJavaProcess bool
}

func newPerfCollapser(o PerfOptions, warn func(string)) *perfCollapser {
	if o.All {
		o.Kernel, o.JIT = true, true
	}
	return &perfCollapser{o: o, warn: warn, counts: newCounter(), event: o.EventFilter}
}

func (c *perfCollapser) profile() *flame.Profile {
	return c.counts.profile(c.skipped)
}

// isSpace is Perl's \s on bytes.
func isSpace(b byte) bool {
	return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == '\f' || b == '\v'
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// isWord is Perl's \w on bytes.
func isWord(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_'
}

func (c *perfCollapser) line(line []byte, n int64) {
	if len(line) > 0 && line[0] == '#' {
		return
	}
	if len(line) == 0 {
		c.endSample()
		return
	}
	if c.header(line) {
		return
	}
	if c.frame(line) {
		return
	}
	c.skipped.Add(n, string(line), "not a perf script sample header or frame")
}

// endSample records the current stack (process name first) at a blank line.
func (c *perfCollapser) endSample() {
	if !c.havePname {
		return
	}
	c.key = append(c.key[:0], c.pname...)
	for i := len(c.groups) - 1; i >= 0; i-- {
		start := 0
		if i > 0 {
			start = c.groups[i-1]
		}
		c.key = append(c.key, ';')
		c.key = append(c.key, c.frames[start:c.groups[i]]...)
	}
	c.counts.add(c.key, c.period)
	c.groups = c.groups[:0]
	c.frames = c.frames[:0]
	c.havePname = false
}

// header parses a sample header line such as
//
//	java 12688/12764 [002] 6544038.708352: 10309278 cpu-clock:
//
// matching what stackcollapse-perf.pl matches: a command name (which may hold
// spaces), whitespace, a PID and optional "/TID", whitespace. The period and
// event come from the ": [period] event:" at the end of the line.
func (c *perfCollapser) header(line []byte) bool {
	if isSpace(line[0]) {
		return false
	}
	commEnd, pid, tid := -1, []byte(nil), []byte(nil)
	for e := 2; e < len(line); e++ {
		if !isSpace(line[e]) || (e > 2 && isSpace(line[e-1])) {
			continue // only the start of a whitespace run can match where an earlier position did not
		}
		j := e
		for j < len(line) && isSpace(line[j]) {
			j++
		}
		d := j
		for j < len(line) && isDigit(line[j]) {
			j++
		}
		if j == d {
			continue
		}
		p := line[d:j]
		for j < len(line) && line[j] == '/' {
			j++
		}
		t0 := j
		for j < len(line) && isDigit(line[j]) {
			j++
		}
		if j >= len(line) || !isSpace(line[j]) {
			continue
		}
		commEnd, pid, tid = e, p, line[t0:j]
		break
	}
	if commEnd < 0 {
		return false
	}
	comm := line[:commEnd]
	if len(tid) == 0 || (len(tid) == 1 && tid[0] == '0') { // Perl's "not $tid"
		tid, pid = pid, []byte("?")
	}
	period, event, ok := perfEvent(line)
	if ok {
		switch {
		case c.event == "":
			c.event = string(event)
			c.eventDefault = true
		case string(event) != c.event:
			if c.eventDefault && !c.eventWarned {
				if c.warn != nil {
					c.warn("Filtering for events of type: " + string(event))
				}
				c.eventWarned = true
			}
			return true
		}
	}
	c.period = 1
	if len(period) > 0 && !(len(period) == 1 && period[0] == '0') {
		v, err := strconv.ParseInt(string(period), 10, 64)
		if err != nil {
			v = 1<<63 - 1
		}
		c.period = v
	}
	c.pname = append(c.pname[:0], comm...)
	if c.o.TID {
		c.pname = append(c.pname, '-')
		c.pname = append(c.pname, pid...)
		c.pname = append(c.pname, '/')
		c.pname = append(c.pname, tid...)
	} else if c.o.PID {
		c.pname = append(c.pname, '-')
		c.pname = append(c.pname, pid...)
	}
	for i, b := range c.pname {
		if b == ' ' {
			c.pname[i] = '_'
		}
	}
	c.havePname = true
	c.isJavaProcess = bytes.HasPrefix(c.pname, []byte("java"))
	return true
}

// perfEvent finds ": [period] event:" at the end of a header line, the
// event being the last word less its final colon.
func perfEvent(line []byte) (period, event []byte, ok bool) {
	t := len(line)
	for t > 0 && isSpace(line[t-1]) {
		t--
	}
	if t == 0 || line[t-1] != ':' {
		return nil, nil, false
	}
	ws := t - 1
	for ws > 0 && !isSpace(line[ws-1]) {
		ws--
	}
	if ws == 0 || t-1-ws < 1 {
		return nil, nil, false
	}
	event = line[ws : t-1]
	i := ws
	for i > 0 && isSpace(line[i-1]) {
		i--
	}
	de := i
	for i > 0 && isDigit(line[i-1]) {
		i--
	}
	if i < de {
		period = line[i:de]
		for i > 0 && isSpace(line[i-1]) {
			i--
		}
	}
	if i == 0 || line[i-1] != ':' {
		return nil, nil, false
	}
	return period, event, true
}

// frame parses a stack frame line such as
//
//	ffffffff8103ce3b native_safe_halt+0x1b ([kernel.kallsyms])
//
// into an address, a symbol and a module, splitting the symbol on "->" (perf's
// inlined frames), tidying and annotating each name as stackcollapse-perf.pl does.
func (c *perfCollapser) frame(line []byte) bool {
	a := 0
	for a < len(line) && isSpace(line[a]) {
		a++
	}
	wEnd := a
	for wEnd < len(line) && isWord(line[wEnd]) {
		wEnd++
	}
	if wEnd == a {
		return false
	}
	lastParen := bytes.LastIndexByte(line, ')')
	if lastParen < 0 {
		return false
	}
	// the last " (" with a ")" after it
	P := -1
	for i := lastParen - 1; i > 0; i-- {
		if line[i] == '(' && line[i-1] == ' ' {
			P = i - 1
			break
		}
	}
	if P < a+2 {
		return false
	}
	sFull := wEnd
	for sFull < len(line) && isSpace(line[sFull]) {
		sFull++
	}
	pc := line[a:wEnd]
	var s int
	if P-1 >= wEnd {
		s = min(sFull, P-1)
	} else {
		s = P - 1
		pc = line[a : P-1]
	}
	if !c.havePname {
		return true // a frame of a filtered sample
	}
	rawfunc := line[s:P]
	mod := line[P+2 : lastParen]

	rawfunc = stripOffset(rawfunc)
	if len(rawfunc) > 0 && rawfunc[0] == '(' {
		return true // a process name, not a frame
	}
	if bytes.IndexByte(rawfunc, '>') < 0 { // the usual case: no inlined frames
		c.frames = c.appendFunc(c.frames, rawfunc, pc, mod, false)
		c.groups = append(c.groups, len(c.frames))
		return true
	}
	// split on "->" as Perl's split does, dropping trailing empty fields
	for bytes.HasSuffix(rawfunc, arrow) {
		rawfunc = rawfunc[:len(rawfunc)-2]
	}
	if len(rawfunc) == 0 {
		return true
	}
	for n := 0; ; n++ {
		f := rawfunc
		i := bytes.Index(rawfunc, arrow)
		if i >= 0 {
			f = rawfunc[:i]
		}
		if n > 0 {
			c.frames = append(c.frames, ';')
		}
		c.frames = c.appendFunc(c.frames, f, pc, mod, n > 0)
		if i < 0 {
			break
		}
		rawfunc = rawfunc[i+2:]
	}
	c.groups = append(c.groups, len(c.frames))
	return true
}

// stripOffset removes a trailing "+0x<hex>" (Linux 4.8+ prints symbol offsets).
func stripOffset(f []byte) []byte {
	i := len(f)
	for i > 0 && (isDigit(f[i-1]) || f[i-1] >= 'a' && f[i-1] <= 'f') {
		i--
	}
	if i < len(f) && i >= 3 && f[i-1] == 'x' && f[i-2] == '0' && f[i-3] == '+' {
		return f[:i-3]
	}
	return f
}

var (
	unknownSym = []byte("[unknown]")
	anonNS     = []byte("anonymous namespace)")
	perfMap    = []byte("/tmp/perf-")
	arrow      = []byte("->")
)

// appendFunc appends one tidied, annotated function name.
func (c *perfCollapser) appendFunc(dst, f, pc, mod []byte, inlined bool) []byte {
	start := len(dst)
	if bytes.Equal(f, unknownSym) {
		dst = append(dst, '[')
		if !bytes.Equal(mod, unknownSym) {
			m := mod
			if i := bytes.LastIndexByte(m, '/'); i >= 0 {
				m = m[i+1:]
			}
			dst = append(dst, m...)
		} else {
			dst = append(dst, "unknown"...)
		}
		if c.o.Addrs {
			dst = append(dst, " <"...)
			dst = append(dst, pc...)
			dst = append(dst, '>')
		}
		dst = append(dst, ']')
	} else {
		dst = append(dst, f...)
	}
	// tidy: ';' would split the frame, so it becomes ':'
	name := dst[start:]
	if bytes.IndexByte(name, ';') >= 0 {
		for i, b := range name {
			if b == ';' {
				name[i] = ':'
			}
		}
	}
	paren := bytes.IndexByte(name, '(') >= 0
	quote := bytes.IndexByte(name, '"') >= 0 || bytes.IndexByte(name, '\'') >= 0
	// everything from the first '(' on is argument noise, unless the name
	// looks like a Go method ("net/http.(*Client).Do") or the '(' opens
	// "(anonymous namespace)"
	if paren && !isGoMethod(name) {
		for i := 0; i < len(name); i++ {
			if name[i] == '(' && !bytes.HasPrefix(name[i+1:], anonNS) {
				dst = dst[:start+i]
				break
			}
		}
	}
	// drop quotes
	if quote {
		w := start
		for r := start; r < len(dst); r++ {
			if dst[r] != '"' && dst[r] != '\'' {
				dst[w] = dst[r]
				w++
			}
		}
		dst = dst[:w]
	}
	if c.isJavaProcess && len(dst) > start && dst[start] == 'L' && bytes.IndexByte(dst[start:], '/') >= 0 {
		copy(dst[start:], dst[start+1:])
		dst = dst[:len(dst)-1]
	}
	switch {
	case inlined:
		if !bytes.Contains(dst[start:], []byte("_[i]")) {
			dst = append(dst, "_[i]"...)
		}
	case c.o.Kernel && (len(mod) > 0 && mod[0] == '[' || bytes.HasSuffix(mod, []byte("vmlinux"))) && !bytes.Contains(mod, []byte("unknown")):
		dst = append(dst, "_[k]"...)
	case c.o.JIT && isPerfMap(mod):
		if !bytes.Contains(dst[start:], []byte("_[j]")) {
			dst = append(dst, "_[j]"...)
		}
	}
	return dst
}

// isGoMethod reports whether name holds ".(" followed later by ")."
func isGoMethod(name []byte) bool {
	i := bytes.Index(name, []byte(".("))
	if i < 0 {
		return false
	}
	j := bytes.LastIndex(name, []byte(")."))
	return j >= i+2
}

// isPerfMap reports whether mod contains "/tmp/perf-<digits>.map".
func isPerfMap(mod []byte) bool {
	for {
		i := bytes.Index(mod, perfMap)
		if i < 0 {
			return false
		}
		rest := mod[i+len(perfMap):]
		d := 0
		for d < len(rest) && isDigit(rest[d]) {
			d++
		}
		if d > 0 && len(rest) >= d+4 && rest[d] == '.' && string(rest[d+1:d+4]) == "map" {
			return true
		}
		mod = mod[i+1:]
	}
}
