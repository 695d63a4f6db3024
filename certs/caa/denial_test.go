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

func TestMinTTL(t *testing.T) {
	pos := new(dns.Msg)
	pos.Answer = []dns.RR{
		&dns.CAA{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeCAA, Ttl: 300}},
		&dns.CNAME{Hdr: dns.RR_Header{Name: "b.", Rrtype: dns.TypeCNAME, Ttl: 60}},
	}
	if got := minTTL(0, true, pos); got != 60 {
		t.Errorf("positive: %d, want 60", got)
	}
	neg := new(dns.Msg)
	neg.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "a.", Rrtype: dns.TypeSOA, Ttl: 3600}, Minttl: 120}}
	if got := minTTL(0, true, neg); got != 120 {
		t.Errorf("negative: %d, want the SOA minimum 120", got)
	}
	if got := minTTL(30, false, neg); got != 30 {
		t.Errorf("second hop: %d, want the earlier, smaller 30", got)
	}
	if got := minTTL(0, true, new(dns.Msg)); got != 0 {
		t.Errorf("nothing: %d, want 0 (not cached)", got)
	}
}
