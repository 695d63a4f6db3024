package flame

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strings"
)

// Palettes are the colour schemes flamegraph.pl offers (--colors).
var Palettes = []string{"hot", "mem", "io", "wakeup", "chain", "java", "js", "perl",
	"red", "green", "blue", "aqua", "yellow", "purple", "orange"}

// ValidPalette reports whether name is one of Palettes.
func ValidPalette(name string) bool {
	for _, p := range Palettes {
		if p == name {
			return true
		}
	}
	return false
}

// SearchColor paints the frames a search matches.
const SearchColor = "rgb(230,0,230)"

// colorer picks frame colours as flamegraph.pl does: by default each name's
// colour comes from a pseudo-random number seeded by the sum of its
// characters, so one function has one colour in every graph; Hash weights
// the first characters instead; Random is random.
type colorer struct {
	palette string
	hash    bool
	random  *rand.Rand
	fixed   map[string]string // consistent palette (--cp): names already coloured
}

// color returns the fill of a frame named name.
func (c *colorer) color(name string) string {
	if c.fixed != nil {
		if col, ok := c.fixed[name]; ok {
			return col
		}
		col := c.compute(name)
		c.fixed[name] = col
		return col
	}
	return c.compute(name)
}

func (c *colorer) compute(name string) string {
	var v1, v2, v3 float64
	switch {
	case c.hash:
		v1 = nameHash(name)
		v2 = nameHash(reverseString(name))
		v3 = v2
	case c.random != nil:
		v1, v2, v3 = c.random.Float64(), c.random.Float64(), c.random.Float64()
	default:
		v1 = seededHash(name)
		v2, v3 = v1, v1
	}
	kind := c.palette
	switch kind {
	case "", "hot":
		return rgb(205+int(50*v3), int(230*v1), int(55*v2))
	case "mem":
		return rgb(0, 190+int(50*v2), int(210*v1))
	case "io":
		r := 80 + int(60*v1)
		return rgb(r, r, 190+int(55*v2))
	case "java":
		kind = javaKind(name)
	case "perl":
		kind = perlKind(name)
	case "js":
		kind = jsKind(name)
	case "wakeup":
		kind = "aqua"
	case "chain":
		if strings.Contains(name, "_[w]") {
			kind = "aqua"
		} else {
			kind = "blue"
		}
	}
	return flatColor(kind, v1)
}

// javaKind names the colour of a frame in a Java profile: green Java
// (JIT-compiled or by package name), aqua inlined, yellow C++, orange kernel,
// red the rest.
func javaKind(name string) string {
	switch {
	case strings.HasSuffix(name, "_[j]"):
		return "green"
	case strings.HasSuffix(name, "_[i]"):
		return "aqua"
	case isJavaPackage(name):
		return "green"
	case strings.Contains(name, ":::"):
		return "green"
	case strings.Contains(name, "::"):
		return "yellow"
	case strings.HasSuffix(name, "_[k]"):
		return "orange"
	}
	return "red"
}

// isJavaPackage matches names that start with a usual Java package root
// ("java/", "org/", "Lcom/"...).
func isJavaPackage(name string) bool {
	name = strings.TrimPrefix(name, "L")
	for _, p := range []string{"java/", "javax/", "jdk/", "net/", "org/", "com/", "io/", "sun/"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func perlKind(name string) string {
	switch {
	case strings.Contains(name, "::"):
		return "yellow"
	case strings.Contains(name, "Perl") || strings.Contains(name, ".pl"):
		return "green"
	case strings.HasSuffix(name, "_[k]"):
		return "orange"
	}
	return "red"
}

func jsKind(name string) string {
	switch {
	case strings.HasSuffix(name, "_[j]"):
		if strings.Contains(name, "/") {
			return "green"
		}
		return "aqua"
	case strings.Contains(name, "::"):
		return "yellow"
	case jsPath(name):
		return "green"
	case strings.Contains(name, ":"):
		return "aqua"
	case name == " ":
		return "green"
	case strings.Contains(name, "_[k]"):
		return "orange"
	}
	return "red"
}

// jsPath matches a "/" followed later by ".js".
func jsPath(name string) bool {
	i := strings.IndexByte(name, '/')
	return i >= 0 && strings.Contains(name[i+1:], ".js")
}

func flatColor(kind string, v1 float64) string {
	switch kind {
	case "red":
		x := 50 + int(80*v1)
		return rgb(200+int(55*v1), x, x)
	case "green":
		x := 50 + int(60*v1)
		return rgb(x, 200+int(55*v1), x)
	case "blue":
		x := 80 + int(60*v1)
		return rgb(x, x, 205+int(50*v1))
	case "yellow":
		x := 175 + int(55*v1)
		return rgb(x, x, 50+int(20*v1))
	case "purple":
		x := 190 + int(65*v1)
		return rgb(x, 80+int(60*v1), x)
	case "aqua":
		return rgb(50+int(60*v1), 165+int(55*v1), 165+int(55*v1))
	case "orange":
		return rgb(190+int(65*v1), 90+int(65*v1), 0)
	}
	return "rgb(0,0,0)"
}

func rgb(r, g, b int) string { return fmt.Sprintf("rgb(%d,%d,%d)", r, g, b) }

// seededHash is the first drand48 number after seeding with the sum of the
// name's characters (the same generator Perl's srand and rand use), so a
// name gets the colour flamegraph.pl gives it.
func seededHash(name string) float64 {
	var sum uint32
	for _, r := range name {
		sum += uint32(r)
	}
	state := uint64(sum)<<16 | 0x330e
	state = (state*0x5deece66d + 0xb) & (1<<48 - 1)
	return float64(state) / (1 << 48)
}

// nameHash weights the first three characters (after any "module`" prefix)
// so that similar names get similar colours (flamegraph.pl --hash).
func nameHash(name string) float64 {
	if len(name) > 1 {
		if i := strings.IndexByte(name[1:], '`'); i >= 0 {
			name = name[i+2:] // drop "module`"
		}
	}
	vector, weight, maxv := 0.0, 1.0, 1.0
	mod := 10
	for _, r := range name {
		i := int(r) % mod
		vector += float64(i) / float64(mod-1) * weight
		mod++
		maxv += weight
		weight *= 0.70
		if mod > 12 {
			break
		}
	}
	return 1 - vector/maxv
}

func reverseString(s string) string {
	r := []rune(s)
	for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
		r[i], r[j] = r[j], r[i]
	}
	return string(r)
}

// diffColor colours a frame of a differential graph by its change: red
// grew, blue shrank, white unchanged, stronger with the size of the change.
func diffColor(delta, maxDelta int64, negate bool) string {
	if negate {
		delta = -delta
	}
	r, g, b := 255, 255, 255
	if maxDelta <= 0 {
		maxDelta = 1
	}
	if delta > 0 {
		g = int(210 * float64(maxDelta-delta) / float64(maxDelta))
		b = g
	} else if delta < 0 {
		r = int(210 * float64(maxDelta+delta) / float64(maxDelta))
		g = r
	}
	return rgb(r, g, b)
}

// ReadPalette reads a consistent palette file ("name->rgb(r,g,b)" lines, as
// flamegraph.pl --cp writes palette.map).
func ReadPalette(r io.Reader) (map[string]string, error) {
	m := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		k, v, ok := strings.Cut(sc.Text(), "->")
		if !ok {
			return nil, fmt.Errorf("palette line %d: want NAME->rgb(R,G,B)", n)
		}
		m[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("palette line %d: %w", n+1, err)
	}
	return m, nil
}

// WritePalette writes a consistent palette file, sorted by name.
func WritePalette(w io.Writer, m map[string]string) error {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	bw := bufio.NewWriter(w)
	for _, k := range keys {
		fmt.Fprintf(bw, "%s->%s\n", k, m[k])
	}
	return bw.Flush()
}
