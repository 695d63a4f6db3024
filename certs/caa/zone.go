package caa

import (
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"
)

// Zone is a static set of CAA, CNAME and DNAME records read from zone-file
// text, for checking a policy before it is published: Climb walks it the way
// Resolver.Climb walks DNS, with no network.
type Zone struct {
	caa   map[string][]Record
	cname map[string]string
	dname map[string]string
	// Source names the zone in lookups (Lookup.Server).
	Source string
}

// ParseZone reads zone-file text (relative names are relative to origin;
// "." when empty). Records other than CAA, CNAME and DNAME are skipped.
func ParseZone(r io.Reader, origin, file string) (*Zone, error) {
	if origin == "" {
		origin = "."
	}
	z := &Zone{caa: map[string][]Record{}, cname: map[string]string{}, dname: map[string]string{}, Source: "zone file " + file}
	zp := dns.NewZoneParser(r, dns.Fqdn(origin), file)
	zp.SetDefaultTTL(3600)
	n := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		switch a := rr.(type) {
		case *dns.CAA:
			z.caa[name] = append(z.caa[name], Record{Flag: a.Flag, Tag: a.Tag, Value: a.Value})
			n++
		case *dns.CNAME:
			z.cname[name] = strings.ToLower(a.Target)
			n++
		case *dns.DNAME:
			z.dname[name] = strings.ToLower(a.Target)
			n++
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("zone %s: %w", file, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("zone %s: no CAA, CNAME or DNAME records", file)
	}
	return z, nil
}

// Lookup answers for one name from the zone, following CNAME and DNAME.
func (z *Zone) Lookup(name string) Lookup {
	l := Lookup{Name: dns.Fqdn(name), Server: z.Source, Records: []Record{}, DNSSEC: Unknown, Rcode: "NOERROR",
		DNSSECDetail: "records from a file: no DNSSEC status"}
	cur := strings.ToLower(l.Name)
	seen := map[string]bool{}
	for hop := 0; ; hop++ {
		if seen[cur] || hop > maxAliases {
			l.Err = "alias loop or chain longer than 8 steps in the zone"
			return l
		}
		seen[cur] = true
		if recs := z.caa[cur]; len(recs) > 0 {
			l.Records = append(l.Records, recs...)
			return l
		}
		if t, ok := z.cname[cur]; ok {
			l.Aliases = append(l.Aliases, Alias{Type: "CNAME", Owner: cur, Target: t, DNSSEC: Unknown})
			cur = t
			continue
		}
		moved := false
		for i, end := 0, false; !end; i, end = dns.NextLabel(cur, i) {
			anc := cur[i:]
			if i == 0 || anc == "" {
				continue
			}
			if t, ok := z.dname[anc]; ok {
				next := cur[:i] + t
				if t == "." {
					next = cur[:i]
				}
				l.Aliases = append(l.Aliases, Alias{Type: "DNAME", Owner: anc, Target: t, DNSSEC: Unknown})
				cur, moved = next, true
				break
			}
		}
		if !moved {
			return l
		}
	}
}

// Climb is the RFC 8659 climb over the zone.
func (z *Zone) Climb(name string) []Lookup {
	var out []Lookup
	for _, n := range ClimbNames(name) {
		l := z.Lookup(n)
		out = append(out, l)
		if l.Failed() || len(l.Records) > 0 {
			break
		}
	}
	return out
}
