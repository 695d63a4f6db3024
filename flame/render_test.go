package flame

import (
	"bytes"
	"encoding/xml"
	"io"
	"regexp"
	"strings"
	"testing"
)

func render(t *testing.T, folded string, o RenderOptions) string {
	t.Helper()
	p, err := ParseFolded(strings.NewReader(folded))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Render(&buf, p, o); err != nil {
		t.Fatal(err)
	}
	checkXML(t, buf.Bytes())
	return buf.String()
}

// checkXML fails unless doc is well-formed XML.
func checkXML(t *testing.T, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	for {
		_, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
	}
}

var rectRE = regexp.MustCompile(`<title>([^<]*)</title><rect x="([\d.]+)" y="([\d.]+)" width="([\d.]+)"[^>]* fill="([^"]+)"`)

type drawn struct{ title, x, y, w, fill string }

func frames(svg string) map[string]drawn {
	out := map[string]drawn{}
	for _, m := range rectRE.FindAllStringSubmatch(svg, -1) {
		name := m[1][:strings.LastIndex(m[1], " (")]
		out[name] = drawn{m[1], m[2], m[3], m[4], m[5]}
	}
	return out
}

func TestRenderLayout(t *testing.T) {
	svg := render(t, "main;work 90\nmain;idle 10\n", RenderOptions{Title: "T<1>"})
	if !strings.Contains(svg, `<text id="title" x="600.00" y="24">T&lt;1&gt;</text>`) {
		t.Error("title missing or not escaped")
	}
	f := frames(svg)
	if len(f) != 4 {
		t.Fatalf("drew %d frames, want 4 (all, main, idle, work): %v", len(f), f)
	}
	// 1180 px for 100 samples: idle sorts first and takes 118 px, work 1062 px
	if got := f["idle"]; got.x != "10.0" || got.w != "118.0" {
		t.Errorf("idle at x=%s w=%s, want 10.0 118.0", got.x, got.w)
	}
	if got := f["work"]; got.x != "128.0" || got.w != "1062.0" || got.title != "work (90 samples, 90.00%)" {
		t.Errorf("work = %+v", got)
	}
	// root at the bottom, children above it
	if f["all"].y <= f["main"].y {
		t.Errorf("root y %s not below main y %s", f["all"].y, f["main"].y)
	}
	inv := frames(render(t, "main;work 90\nmain;idle 10\n", RenderOptions{Inverted: true}))
	if inv["all"].y >= inv["main"].y {
		t.Errorf("inverted: root y %s not above main y %s", inv["all"].y, inv["main"].y)
	}
}

func TestRenderColors(t *testing.T) {
	in := "java;java/lang/Thread:.run_[j];os::sleep;schedule_[k] 5\njava;Interpreter_[i] 5\n"
	f := frames(render(t, in, RenderOptions{Colors: "java"}))
	green := regexp.MustCompile(`^rgb\(\d+,2\d\d,\d+\)$`)
	if !green.MatchString(f["java/lang/Thread:.run"].fill) {
		t.Errorf("JIT Java frame %s, want green", f["java/lang/Thread:.run"].fill)
	}
	if c := f["os::sleep"].fill; !regexp.MustCompile(`^rgb\((\d+),(\d+),\d+\)$`).MatchString(c) || c[4:7] != c[8:11] {
		t.Errorf("C++ frame %s, want yellow (r = g)", c)
	}
	if c := f["schedule"].fill; !strings.HasSuffix(c, ",0)") {
		t.Errorf("kernel frame %s, want orange", c)
	}
	// deterministic: the same name gets the same colour in another graph
	g := frames(render(t, "other;os::sleep 3\n", RenderOptions{Colors: "java"}))
	if g["os::sleep"].fill != f["os::sleep"].fill {
		t.Errorf("colour of os::sleep changed between graphs: %s, %s", f["os::sleep"].fill, g["os::sleep"].fill)
	}
	// consistent palette: a fixed colour is kept, new names are added
	pal := map[string]string{"main": "rgb(1,2,3)"}
	h := frames(render(t, "main;x 1\n", RenderOptions{Palette: pal}))
	if h["main"].fill != "rgb(1,2,3)" || pal["x"] == "" {
		t.Errorf("palette not used or not extended: %v, %v", h["main"], pal)
	}
}

func TestRenderDiff(t *testing.T) {
	before, _ := ParseFolded(strings.NewReader("main;a 50\nmain;b 50\nmain;gone 10\n"))
	after, _ := ParseFolded(strings.NewReader("main;a 80\nmain;b 20\nmain;new 10\n"))
	d := Diff(before, after)
	var buf bytes.Buffer
	if err := Render(&buf, d, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	checkXML(t, buf.Bytes())
	f := frames(svg)
	if !strings.HasPrefix(f["a"].fill, "rgb(255,") {
		t.Errorf("grown frame a is %s, want red", f["a"].fill)
	}
	if !strings.HasSuffix(f["b"].fill, ",255)") || strings.HasPrefix(f["b"].fill, "rgb(255,") {
		t.Errorf("shrunk frame b is %s, want blue", f["b"].fill)
	}
	if !strings.Contains(f["new"].title, "; new") || !strings.Contains(svg, `<g class="new"><title>new`) {
		t.Errorf("frame only in after not marked: %+v", f["new"])
	}
	if _, ok := f["gone"]; ok {
		t.Error("frame only in before drawn in the after view")
	}
	buf.Reset()
	if err := Render(&buf, d, RenderOptions{Elided: true}); err != nil {
		t.Fatal(err)
	}
	if e := frames(buf.String()); !strings.Contains(e["gone"].title, "; gone") {
		t.Errorf("elided view lacks the vanished frame: %+v", e["gone"])
	}
}

func TestRenderTrim(t *testing.T) {
	var in strings.Builder
	in.WriteString("main;big 1000000\n")
	for i := 0; i < 5000; i++ {
		in.WriteString("main;small;f" + strings.Repeat("x", i%7) + itoa(i) + " 1\n")
	}
	p, _ := ParseFolded(strings.NewReader(in.String()))
	var buf bytes.Buffer
	if err := Render(&buf, p, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	if strings.Contains(svg, ">f1 (") {
		t.Error("a frame narrower than minwidth was drawn")
	}
	if !strings.Contains(svg, `<g class="trim"><title>[trimmed: 5000 narrow frames] (5,000 samples`) {
		t.Error("trimmed frames not shown as a placeholder")
	}
	if !strings.Contains(svg, "5000 frames too narrow to draw") {
		t.Error("trim note missing")
	}
	buf.Reset()
	if err := Render(&buf, p, RenderOptions{MinWidth: 0.000001, MaxNodes: 10}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "<title>"); n > 10 {
		t.Errorf("MaxNodes 10 drew %d frames", n)
	}
	if !strings.Contains(buf.String(), "big (") {
		t.Error("MaxNodes dropped the widest frame")
	}
}

func TestRenderOptions(t *testing.T) {
	p, _ := ParseFolded(strings.NewReader("a;b 3\nc;d 4\n"))
	var buf bytes.Buffer
	for _, bad := range []RenderOptions{{Colors: "nope"}, {Notes: "<x>"}, {Search: "("}, {BgColors: "pink"}} {
		if err := Render(&buf, p, bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if err := Render(&buf, &Profile{}, RenderOptions{}); err != ErrNoSamples {
		t.Errorf("empty profile: %v, want ErrNoSamples", err)
	}
	rev := frames(render(t, "a;b 3\nc;b 4\n", RenderOptions{Reverse: true}))
	if !strings.HasPrefix(rev["b"].title, "b (7 samples") {
		t.Errorf("reverse: b = %+v, want merged root with 7", rev["b"])
	}
	fc, _ := ParseFoldedOrdered(strings.NewReader("z 1\na 1\nz 1\n"))
	buf.Reset()
	if err := Render(&buf, fc, RenderOptions{Flamechart: true}); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(buf.String(), "<title>z ("); n != 2 {
		t.Errorf("flame chart drew z %d times, want 2 (not merged)", n)
	}
	if !strings.Contains(buf.String(), ">Flame Chart<") {
		t.Error("flame chart title")
	}
	s := render(t, "a;b 3\n", RenderOptions{Factor: 1000, CountName: "bytes", Search: "^b$", Subtitle: "sub"})
	if !strings.Contains(s, "<title>b (3,000 bytes, 100.00%)</title>") || !strings.Contains(s, `"search":"^b$"`) || !strings.Contains(s, ">sub</text>") {
		t.Error("factor, countname, search or subtitle not applied")
	}
}

func TestRenderHTML(t *testing.T) {
	p, _ := ParseFolded(strings.NewReader("main;work;leaf 90\nmain;idle 10\n"))
	var buf bytes.Buffer
	if err := RenderHTML(&buf, p, RenderOptions{Title: "HTML view"}); err != nil {
		t.Fatal(err)
	}
	h := buf.String()
	for _, want := range []string{"<!DOCTYPE html>", "<svg ", `id="funcs"`, `<td class="name" title="leaf">leaf</td><td>90</td><td>90.00</td><td>90</td><td>90.00</td>`, "var flameData = ", `id="callers"`} {
		if !strings.Contains(h, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
}

func TestEscapes(t *testing.T) {
	s := render(t, "a\x01b;\xff\xfe&\"x\" 3\n", RenderOptions{})
	if !strings.Contains(s, "&amp;&quot;x&quot;") {
		t.Error("quote and ampersand not escaped")
	}
}

func itoa(i int) string {
	return strings.TrimLeft(string(appendNum(nil, float64(i))), " ")
}
