package caa

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
)

// Proof of non-existence (RFC 4035 section 5.4, RFC 5155 section 8): a
// validated NSEC or NSEC3 record is not enough, it must speak about the name
// asked for. Without this check, a path attacker could replay a signed denial
// from elsewhere in the zone and hide a CAA record set.

// canonicalCompare orders names as RFC 4034 section 6.1 does: label by label
// from the right, each compared as lowercase bytes.
func canonicalCompare(a, b string) int {
	la := dns.SplitDomainName(strings.ToLower(a))
	lb := dns.SplitDomainName(strings.ToLower(b))
	for i, j := len(la)-1, len(lb)-1; i >= 0 && j >= 0; i, j = i-1, j-1 {
		if c := strings.Compare(unescape(la[i]), unescape(lb[j])); c != 0 {
			return c
		}
	}
	return len(la) - len(lb)
}

// unescape turns presentation escapes (\DDD, \X) into bytes for comparison.
func unescape(l string) string {
	if !strings.Contains(l, `\`) {
		return l
	}
	var b strings.Builder
	for i := 0; i < len(l); i++ {
		if l[i] == '\\' && i+3 < len(l) && isDigits(l[i+1:i+4]) {
			b.WriteByte(byte((int(l[i+1]-'0')*100 + int(l[i+2]-'0')*10 + int(l[i+3]-'0')) & 0xff))
			i += 3
			continue
		}
		if l[i] == '\\' && i+1 < len(l) {
			i++
		}
		b.WriteByte(l[i])
	}
	return b.String()
}

func isDigits(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// nsecCovers reports whether name falls strictly between an NSEC's owner
// and next name, the last NSEC of a zone wrapping around to the apex.
func nsecCovers(n *dns.NSEC, name string) bool {
	owner, next := n.Hdr.Name, n.NextDomain
	if canonicalCompare(owner, next) < 0 {
		return canonicalCompare(owner, name) < 0 && canonicalCompare(name, next) < 0
	}
	// The last NSEC: covers everything after its owner within the zone.
	return canonicalCompare(owner, name) < 0 || canonicalCompare(name, next) < 0
}

func hasBit(types []uint16, t uint16) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}

func nsecsOf(sets map[rrsetKey][]dns.RR) ([]*dns.NSEC, []*dns.NSEC3) {
	var ns []*dns.NSEC
	var n3 []*dns.NSEC3
	for k, set := range sets {
		for _, rr := range set {
			switch k.rtype {
			case dns.TypeNSEC:
				ns = append(ns, rr.(*dns.NSEC))
			case dns.TypeNSEC3:
				n3 = append(n3, rr.(*dns.NSEC3))
			}
		}
	}
	return ns, n3
}

// proveNoData checks that the (verified) NSEC/NSEC3 records prove that name
// exists without qtype (nor a CNAME). optOut accepts an NSEC3 opt-out span
// covering name, which is proof enough of an unsigned delegation (no DS).
func proveNoData(sets map[rrsetKey][]dns.RR, name string, qtype uint16, optOut bool) error {
	ns, n3 := nsecsOf(sets)
	for _, n := range ns {
		if strings.EqualFold(n.Hdr.Name, name) {
			if hasBit(n.TypeBitMap, qtype) || hasBit(n.TypeBitMap, dns.TypeCNAME) {
				return fmt.Errorf("the NSEC at %s lists %s: the denial contradicts itself", name, dns.TypeToString[qtype])
			}
			return nil
		}
	}
	for _, n := range n3 {
		if n.Match(name) {
			if hasBit(n.TypeBitMap, qtype) || hasBit(n.TypeBitMap, dns.TypeCNAME) {
				return fmt.Errorf("the NSEC3 for %s lists %s: the denial contradicts itself", name, dns.TypeToString[qtype])
			}
			return nil
		}
		if optOut && n.Flags&1 == 1 && n.Cover(name) {
			return nil
		}
	}
	// A wildcard NODATA: name does not exist but a wildcard does, without qtype.
	if err := proveNXDomain(sets, name); err == nil {
		return nil
	}
	return fmt.Errorf("no NSEC or NSEC3 record proves that %s has no %s", name, dns.TypeToString[qtype])
}

// proveNXDomain checks that the NSEC/NSEC3 records prove name does not
// exist and no wildcard could have answered for it.
func proveNXDomain(sets map[rrsetKey][]dns.RR, name string) error {
	ns, n3 := nsecsOf(sets)
	if len(ns) > 0 {
		var cover *dns.NSEC
		for _, n := range ns {
			if nsecCovers(n, name) {
				cover = n
			}
		}
		if cover == nil {
			return fmt.Errorf("no NSEC record covers %s", name)
		}
		// The closest encloser is the longest ancestor shared with the
		// covering NSEC's owner or next name; its wildcard must be denied too.
		ce := closestEncloser(name, cover.Hdr.Name, cover.NextDomain)
		wild := "*." + ce
		if ce == "." {
			wild = "*."
		}
		for _, n := range ns {
			if nsecCovers(n, wild) {
				return nil
			}
			if strings.EqualFold(n.Hdr.Name, wild) {
				return fmt.Errorf("a wildcard %s exists, so %s is not NXDOMAIN", wild, name)
			}
		}
		return fmt.Errorf("no NSEC record denies the wildcard %s", wild)
	}
	if len(n3) > 0 {
		// RFC 5155 section 8.4: closest encloser proof plus wildcard denial.
		labels := dns.SplitDomainName(name)
		for i := 1; i <= len(labels); i++ {
			ce := dns.Fqdn(strings.Join(labels[i:], "."))
			if i == len(labels) {
				ce = "."
			}
			matched := false
			for _, n := range n3 {
				if n.Match(ce) {
					matched = true
				}
			}
			if !matched {
				continue
			}
			next := dns.Fqdn(strings.Join(labels[i-1:], "."))
			wild := "*." + strings.TrimPrefix(ce, ".")
			var nextCovered, wildCovered bool
			for _, n := range n3 {
				if n.Cover(next) {
					nextCovered = true
				}
				if n.Cover(wild) {
					wildCovered = true
				}
			}
			if !nextCovered {
				return fmt.Errorf("no NSEC3 record covers %s", next)
			}
			if !wildCovered {
				return fmt.Errorf("no NSEC3 record denies the wildcard %s", wild)
			}
			return nil
		}
		return fmt.Errorf("no NSEC3 record proves a closest encloser of %s", name)
	}
	return fmt.Errorf("no NSEC or NSEC3 record denies %s", name)
}

// closestEncloser is the longest ancestor of name that is also an ancestor
// (or self) of a or b.
func closestEncloser(name, a, b string) string {
	best := "."
	labels := dns.SplitDomainName(strings.ToLower(name))
	for i := 1; i < len(labels); i++ {
		anc := dns.Fqdn(strings.Join(labels[i:], "."))
		if dns.IsSubDomain(anc, strings.ToLower(a)) || dns.IsSubDomain(anc, strings.ToLower(b)) {
			best = anc
			break
		}
	}
	return best
}

// proveExpansion checks, for an answer RRset at name synthesized from a
// wildcard (its RRSIG has fewer labels than name), that the NSEC/NSEC3
// records prove name itself does not exist (RFC 4035 section 5.3.4, RFC
// 5155 section 8.8): otherwise a wildcard answer could be replayed over a
// name that has records of its own.
func proveExpansion(sets map[rrsetKey][]dns.RR, name string, sigLabels int) error {
	ns, n3 := nsecsOf(sets)
	for _, n := range ns {
		if nsecCovers(n, name) {
			return nil
		}
	}
	labels := dns.SplitDomainName(name)
	if sigLabels+1 <= len(labels) {
		next := dns.Fqdn(strings.Join(labels[len(labels)-sigLabels-1:], "."))
		for _, n := range n3 {
			if n.Cover(next) {
				return nil
			}
		}
	}
	return fmt.Errorf("%s was answered from a wildcard without proof that %s does not exist", name, name)
}
