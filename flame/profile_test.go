package flame

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestFoldedRoundTrip(t *testing.T) {
	in := "b;c 2\na;b 3\na;b 4\nnot a stack\na 1\n"
	p, err := ParseFolded(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if p.Skipped.Count != 1 || p.Skipped.First[0].Line != 4 {
		t.Errorf("skipped = %+v, want line 4", p.Skipped)
	}
	if got := p.Total(); got != 10 {
		t.Errorf("Total = %d, want 10", got)
	}
	var buf bytes.Buffer
	if err := p.WriteFolded(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "a 1\na;b 7\nb;c 2\n"; buf.String() != want {
		t.Errorf("WriteFolded = %q, want %q", buf.String(), want)
	}
}

func TestMergeDiff(t *testing.T) {
	a, _ := ParseFolded(strings.NewReader("x;y 1\nx 2\n"))
	b, _ := ParseFolded(strings.NewReader("x;y 5\nz 1\n"))
	m := Merge(a, b)
	var buf bytes.Buffer
	m.WriteFolded(&buf)
	if want := "x 2\nx;y 6\nz 1\n"; buf.String() != want {
		t.Errorf("Merge = %q, want %q", buf.String(), want)
	}
	d := Diff(a, b)
	buf.Reset()
	d.WriteFolded(&buf)
	if want := "x 2 0\nx;y 1 5\nz 0 1\n"; buf.String() != want {
		t.Errorf("Diff = %q, want %q", buf.String(), want)
	}
}

// TestCompareStacks checks that stacks sort as their joined text does.
func TestCompareStacks(t *testing.T) {
	alphabet := []string{"a", "ab", "a b", "a:", "a<", "b", "", "a\t", "zz"}
	r := rand.New(rand.NewPCG(1, 2))
	for n := 0; n < 20000; n++ {
		mk := func() []string {
			s := make([]string, 1+r.IntN(4))
			for i := range s {
				s[i] = alphabet[r.IntN(len(alphabet))]
			}
			return s
		}
		a, b := mk(), mk()
		want := strings.Compare(strings.Join(a, ";"), strings.Join(b, ";"))
		if got := compareStacks(a, b); got != want {
			t.Fatalf("compareStacks(%q, %q) = %d, want %d", a, b, got, want)
		}
	}
}

func TestHugeCountsSaturate(t *testing.T) {
	p, err := ParseFolded(strings.NewReader("a 9223372036854775807\na 5\nb 9223372036854775807\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Samples[0].Value != math.MaxInt64 || p.Total() != math.MaxInt64 {
		t.Errorf("counts wrapped: %v, total %d", p.Samples, p.Total())
	}
	var buf bytes.Buffer
	if err := Render(&buf, p, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := Render(&buf, p, RenderOptions{Width: 5}); err == nil {
		t.Error("width 5 accepted")
	}
}
