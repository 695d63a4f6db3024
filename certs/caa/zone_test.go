package caa

import (
	"strings"
	"testing"
)

const testZoneText = `$ORIGIN example.com.
@        CAA 0 issue "ca.example"
@        CAA 0 iodef "mailto:sec@example.com"
www      CNAME cdn.example.net.
cdn.example.net. CAA 0 issue "cdn.example"
old      DNAME example.org.
www.example.org. CAA 0 issuewild "wild.example"
loop     CNAME loop2
loop2    CNAME loop
shop     A 192.0.2.1
`

func TestZoneClimb(t *testing.T) {
	z, err := ParseZone(strings.NewReader(testZoneText), "", "test.zone")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, issuer string
		wild         bool
		want         Verdict
		at           string
	}{
		{"shop.example.com", "ca.example", false, Allowed, "example.com."},
		{"a.b.example.com", "other.example", false, Forbidden, "example.com."},
		{"www.example.com", "cdn.example", false, Allowed, "www.example.com."},
		{"www.example.com", "ca.example", false, Forbidden, "www.example.com."},
		{"www.old.example.com", "wild.example", true, Allowed, "www.old.example.com."},
		{"www.old.example.com", "ca.example", false, Allowed, "www.old.example.com."}, // only issuewild: no restriction
		{"loop.example.com", "ca.example", false, CannotDecide, ""},
		{"example.net", "ca.example", false, Allowed, ""},
	}
	for _, c := range cases {
		d := Evaluate(Request{Name: c.name, Issuer: c.issuer, Wildcard: c.wild}, z.Climb(c.name))
		if d.Verdict != c.want || d.RelevantName != c.at {
			t.Errorf("%s for %s: got %s at %q, want %s at %q: %s", c.name, c.issuer, d.Verdict, d.RelevantName, c.want, c.at, d.Reason)
		}
	}
	if _, err := ParseZone(strings.NewReader("www A 192.0.2.1\n"), "example.com", "x"); err == nil {
		t.Error("a zone without CAA records should be an error")
	}
	if _, err := ParseZone(strings.NewReader("www CAA 0 issue\n"), "example.com", "x"); err == nil {
		t.Error("a bad record should be an error")
	}
}

// FuzzParseZone: zone text never panics the reader or the climb.
func FuzzParseZone(f *testing.F) {
	f.Add(testZoneText)
	f.Add("@ CAA 128 tbs \"x\"\n")
	f.Add("a CNAME b\nb DNAME a\n")
	f.Fuzz(func(t *testing.T, s string) {
		z, err := ParseZone(strings.NewReader(s), "example.com", "fuzz")
		if err != nil {
			return
		}
		for _, n := range []string{"example.com", "www.example.com", "a.example.com", "x.b.example.com"} {
			Evaluate(Request{Name: n, Issuer: "ca.example"}, z.Climb(n))
		}
	})
}
