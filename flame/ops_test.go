package flame

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

func folded(t *testing.T, p *Profile) string {
	t.Helper()
	var b bytes.Buffer
	if err := p.WriteFolded(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestFocus(t *testing.T) {
	p, _ := ParseFolded(strings.NewReader("m;a;x 1\nm;b;x 2\nm;b;y 4\nm;c 8\n"))
	if got, want := folded(t, p.Focus(regexp.MustCompile("^b$"), nil)), "m;b;x 2\nm;b;y 4\n"; got != want {
		t.Errorf("focus b: %q, want %q", got, want)
	}
	if got, want := folded(t, p.Focus(nil, regexp.MustCompile("^x$"))), "m;b;y 4\nm;c 8\n"; got != want {
		t.Errorf("ignore x: %q, want %q", got, want)
	}
}

func TestTrim(t *testing.T) {
	p, _ := ParseFolded(strings.NewReader("m;big;deep;deeper 90\nm;s1;x 3\nm;s2 4\nm;s3;y;z 3\n"))
	got := folded(t, p.Trim(0.05, 0))
	// s1 (3%) and s3 (3%) are below 5%: each becomes [trimmed] under m; s2 (4%) too
	want := "m;[trimmed] 10\nm;big;deep;deeper 90\n"
	if got != want {
		t.Errorf("Trim(0.05) = %q, want %q", got, want)
	}
	if q := p.Trim(0.05, 0); q.Total() != p.Total() {
		t.Errorf("Trim lost counts: %d of %d", q.Total(), p.Total())
	}
	if got, want := folded(t, p.Trim(0, 2)), "m;big 90\nm;s1 3\nm;s2 4\nm;s3 3\n"; got != want {
		t.Errorf("Trim(depth 2) = %q, want %q", got, want)
	}
}
