package collapse

import (
	"bytes"
	"io"
	"regexp"
	"strconv"

	"github.com/srekit/srekit/flame"
)

// DTraceStacks collapses the output of a DTrace aggregation keyed by
// ustack() or stack() (`dtrace -x ustackframes=100 -n 'profile-997
// /execname == "mysqld"/ { @[ustack()] = count(); }'`), as stackcollapse.pl
// does: the first three lines are DTrace's header, each stack is its frames
// (leaf first) then a line holding the count. Offsets ("+0x1c") and C++
// arguments are removed; "a->b" frames (inlined) are split.
func DTraceStacks(r io.Reader) (*flame.Profile, error) {
	counts := newCounter()
	var skipped flame.Skips
	lr := flame.NewLineReader(r, &skipped)
	var groups [][]byte // each line's frames, leaf first
	var key []byte
	for {
		line, ok := lr.Next()
		if !ok {
			break
		}
		if lr.Line() <= 3 {
			continue
		}
		t := bytes.TrimLeft(line, " \t\f\v\r")
		if len(t) > 0 && allDigits(t) {
			n, err := strconv.ParseInt(string(t), 10, 64)
			if err != nil {
				skipped.Add(lr.Line(), string(line), "count out of range")
				groups = groups[:0]
				continue
			}
			key = key[:0]
			for i := len(groups) - 1; i >= 0; i-- {
				if i < len(groups)-1 {
					key = append(key, ';')
				}
				key = append(key, groups[i]...)
			}
			counts.add(key, n)
			groups = groups[:0]
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		frame := t
		if i := bytes.LastIndexByte(frame, '+'); i >= 0 {
			frame = frame[:i]
		}
		frame = stripCxxArgs(frame)
		if len(frame) == 0 {
			frame = []byte("-")
		}
		var g []byte
		n := 0
		forEachArrow(frame, func(f []byte) {
			if n > 0 {
				g = append(g, ';')
			}
			start := len(g)
			g = append(g, f...)
			for i := start; i < len(g); i++ {
				if g[i] == ';' {
					g[i] = ':'
				}
			}
			if len(g) > start && g[start] == 'L' {
				g = append(g[:start], g[start+1:]...)
			}
			if n > 0 {
				g = append(g, "_[i]"...)
			}
			n++
		})
		if n > 0 {
			groups = append(groups, g)
		}
	}
	if err := lr.Err(); err != nil {
		return nil, err
	}
	return counts.profile(skipped), nil
}

// stripCxxArgs cuts a C++ name at its last '(' or '<' after the first "::"
// ("ns::f(int)" becomes "ns::f").
func stripCxxArgs(f []byte) []byte {
	i := bytes.Index(f, []byte("::"))
	if i < 0 {
		return f
	}
	j := bytes.LastIndexAny(f[i+2:], "(<")
	if j < 0 {
		return f
	}
	return f[:i+2+j]
}

// forEachArrow calls fn for each "->"-separated part, as Perl's split does
// (trailing empty parts dropped).
func forEachArrow(f []byte, fn func([]byte)) {
	for bytes.HasSuffix(f, arrow) {
		f = f[:len(f)-2]
	}
	if len(f) == 0 {
		return
	}
	for {
		i := bytes.Index(f, arrow)
		if i < 0 {
			fn(f)
			return
		}
		fn(f[:i])
		f = f[i+2:]
	}
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if !isDigit(c) {
			return false
		}
	}
	return len(b) > 0
}

// JstackOptions are stackcollapse-jstack.pl's options.
type JstackOptions struct {
	NoThreadName    bool // leave out thread names (by default each stack starts with its thread's name)
	ThreadID        bool // keep the "-NN" suffix of thread names
	ShortenPackages bool // "org.apache.catalina.Foo.run" becomes "o.a.c.Foo.run"
}

var (
	jstackBackground = regexp.MustCompile(`C. CompilerThread|Signal Dispatcher|Service Thread|Attach Listener`)
	jstackState      = regexp.MustCompile(`java.lang.Thread.State: (\S+)`)
	jstackTidSuffix  = regexp.MustCompile(`-\d+$`)
	jstackPkgWord    = regexp.MustCompile(`(\w)\w*`)
	jstackAccept     = regexp.MustCompile(`Socket.*accept0$`)
	jstackClassFunc  = regexp.MustCompile(`^(.*\.)([^.]+\.[^.]+)$`)
)

// JstackDump collapses Java thread dumps (jstack output, one dump or many
// taken in a row) as stackcollapse-jstack.pl does: each RUNNABLE thread's
// stack counts once, thread name first; threads waiting in epoll or on
// sockets, and the JVM's own background threads, are left out.
func JstackDump(r io.Reader, o JstackOptions) (*flame.Profile, error) {
	counts := newCounter()
	var skipped flame.Skips
	lr := flame.NewLineReader(r, &skipped)
	var stack []string // leaf first
	tname, haveName := "", false
	state := "?"
	flush := func() {
		if state == "RUNNABLE" {
			var key []byte
			if haveName {
				key = append(key, tname...)
			}
			for i := len(stack) - 1; i >= 0; i-- {
				if len(key) > 0 || haveName {
					key = append(key, ';')
				}
				key = append(key, stack[i]...)
			}
			if haveName || len(stack) > 0 {
				counts.add(key, 1)
			}
		}
		stack, tname, haveName, state = stack[:0], "", false, "?"
	}
	for {
		line, ok := lr.Next()
		if !ok {
			break
		}
		if len(line) > 0 && line[0] == '#' {
			continue
		}
		if len(line) == 0 {
			flush()
			continue
		}
		s := string(line)
		switch {
		case line[0] == '"':
			name := s[1:]
			if i := bytes.IndexByte(line[1:], '"'); i >= 0 {
				name = s[1 : 1+i]
			}
			if !o.NoThreadName {
				tname, haveName = name, true
				if !o.ThreadID {
					tname = jstackTidSuffix.ReplaceAllString(tname, "")
				}
			}
			if jstackBackground.MatchString(name) {
				state = "BACKGROUND"
			}
		case jstackState.MatchString(s):
			if state == "?" {
				state = jstackState.FindStringSubmatch(s)[1]
			}
		case isFrameLine(line):
			t := bytes.TrimLeft(line, " \t")[3:]
			if i := bytes.IndexByte(t, '('); i >= 0 {
				t = t[:i]
			}
			fn := string(bytes.ReplaceAll(t, []byte(";"), []byte(":")))
			if o.ShortenPackages {
				fn = shortenPackages(fn)
			}
			stack = append(stack, fn)
			switch {
			case bytes.Contains(t, []byte("epollWait")), bytes.Contains(t, []byte("EPoll.wait")):
				state = "WAITING"
			case bytes.HasSuffix(t, []byte("socketAccept")), bytes.HasSuffix(t, []byte("socketRead0")),
				jstackAccept.Match(t):
				state = "NETWORK"
			}
		case bytes.HasPrefix(bytes.TrimLeft(line, " \t"), []byte("-")), len(line) > 4 && line[0] == '2' && isDigit(line[1]) && isDigit(line[2]) && isDigit(line[3]) && line[4] == '-',
			bytes.HasPrefix(line, []byte("Full thread dump")), bytes.HasPrefix(line, []byte("JNI global references:")):
			// lock notes, timestamps and dump headers
		default:
			skipped.Add(lr.Line(), s, "not a jstack thread header, state or frame")
		}
	}
	if err := lr.Err(); err != nil {
		return nil, err
	}
	return counts.profile(skipped), nil
}

func isFrameLine(line []byte) bool {
	t := bytes.TrimLeft(line, " \t")
	return bytes.HasPrefix(t, []byte("at "))
}

// shortenPackages abbreviates each package to its first letter, keeping the
// class and method: "org.apache.Foo.run" becomes "o.a.Foo.run".
func shortenPackages(fn string) string {
	m := jstackClassFunc.FindStringSubmatch(fn)
	if m == nil {
		return fn
	}
	return jstackPkgWord.ReplaceAllString(m[1], "$1") + m[2]
}

var (
	bpfCountRE = regexp.MustCompile(`^,?\s?(.*)\]: (\d+)`)
	bpfCommRE  = regexp.MustCompile(`^@\[,\s(.*)\]: (\d+)`)
)

// BpftraceMaps collapses bpftrace map output keyed by a stack (`bpftrace -e
// 'profile:hz:99 { @[kstack] = count(); }'`), or by a stack and a name
// (`@[kstack, comm]`), as stackcollapse-bpftrace.pl does.
func BpftraceMaps(r io.Reader) (*flame.Profile, error) {
	counts := newCounter()
	var skipped flame.Skips
	lr := flame.NewLineReader(r, &skipped)
	var stack []string // leaf first
	in := false
	var key []byte
	for {
		line, ok := lr.Next()
		if !ok {
			break
		}
		s := string(line)
		if !in {
			if s == "@[" {
				in = true
			} else if m := bpfCommRE.FindStringSubmatch(s); m != nil {
				n, err := strconv.ParseInt(m[2], 10, 64)
				if err != nil {
					skipped.Add(lr.Line(), s, "count out of range")
					continue
				}
				counts.add([]byte(m[1]), n)
			}
			continue
		}
		if m := bpfCountRE.FindStringSubmatch(s); m != nil {
			if m[1] != "" {
				stack = append(stack, m[1])
			}
			n, err := strconv.ParseInt(m[2], 10, 64)
			if err != nil {
				skipped.Add(lr.Line(), s, "count out of range")
			} else {
				key = key[:0]
				for i := len(stack) - 1; i >= 0; i-- {
					if i < len(stack)-1 {
						key = append(key, ';')
					}
					key = append(key, stack[i]...)
				}
				counts.add(key, n)
			}
			in = false
			stack = stack[:0]
			continue
		}
		stack = append(stack, string(bytes.TrimLeft(line, " \t\f\v\r")))
	}
	if err := lr.Err(); err != nil {
		return nil, err
	}
	return counts.profile(skipped), nil
}
