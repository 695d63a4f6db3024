package caa

import (
	"testing"

	"github.com/miekg/dns"
)

func TestCanonicalOrder(t *testing.T) {
	// RFC 4034 section 6.1's example order.
	names := []string{"example.", "a.example.", "yljkjljk.a.example.", "Z.a.example.", "zABC.a.EXAMPLE.", "z.example.", `\001.z.example.`, "*.z.example.", `\200.z.example.`}
	for i := 0; i+1 < len(names); i++ {
		if canonicalCompare(names[i], names[i+1]) >= 0 {
			t.Errorf("%s should sort before %s", names[i], names[i+1])
		}
		if canonicalCompare(names[i+1], names[i]) <= 0 {
			t.Errorf("%s should sort after %s", names[i+1], names[i])
		}
	}
	if canonicalCompare("A.Example.", "a.example.") != 0 {
		t.Error("case should not matter")
	}
}

func TestNSECCovers(t *testing.T) {
	n := &dns.NSEC{Hdr: dns.RR_Header{Name: "b.example."}, NextDomain: "d.example."}
	for name, want := range map[string]bool{"c.example.": true, "b.example.": false, "d.example.": false, "a.example.": false, "x.b.example.": true, "e.example.": false} {
		if got := nsecCovers(n, name); got != want {
			t.Errorf("b..d covers %s: %v, want %v", name, got, want)
		}
	}
	last := &dns.NSEC{Hdr: dns.RR_Header{Name: "y.example."}, NextDomain: "example."}
	for name, want := range map[string]bool{"z.example.": true, "a.example.": false, "y.example.": false} {
		if got := nsecCovers(last, name); got != want {
			t.Errorf("last NSEC covers %s: %v, want %v", name, got, want)
		}
	}
}
