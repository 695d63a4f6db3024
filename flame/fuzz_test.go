package flame

import (
	"bytes"
	"testing"
)

// FuzzParseFolded checks that any input parses without panicking, that the
// result writes back to folded text that reads back the same, and that it
// renders to well-formed SVG.
func FuzzParseFolded(f *testing.F) {
	f.Add([]byte("a;b;c 12\na;b 3\n"))
	f.Add([]byte("a;b 1 2\nx 0 5\n"))
	f.Add([]byte("f 1.5\n;; 3\n\xff\xfe 2\n-1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := ParseFolded(bytes.NewReader(in))
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if err := p.WriteFolded(&out); err != nil {
			t.Fatal(err)
		}
		q, err := ParseFolded(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		var again bytes.Buffer
		q.WriteFolded(&again)
		if !bytes.Equal(out.Bytes(), again.Bytes()) {
			t.Fatalf("not stable:\n%q\n%q", out.Bytes(), again.Bytes())
		}
		var svg bytes.Buffer
		if err := Render(&svg, p, RenderOptions{MaxNodes: 50}); err != nil {
			if err == ErrNoSamples {
				return
			}
			t.Fatal(err)
		}
		checkXML(t, svg.Bytes())
	})
}
