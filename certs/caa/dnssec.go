package caa

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// TrustAnchors are the DNSSEC trust anchors the Resolver validates from
// (RFC 4035 section 5): DS or DNSKEY records, as in unbound's
// trust-anchor-file or the root's root.key. It also caches the keys of the
// zones validated so far, so create one per run, not per lookup.
type TrustAnchors struct {
	ds   map[string][]*dns.DS
	keys map[string][]*dns.DNSKEY
	// Now is the validation time; time.Now when nil (tests set it).
	Now func() time.Time

	mu    sync.Mutex
	zones map[string]*zoneState
}

type zoneState struct {
	once   sync.Once
	keys   []*dns.DNSKEY
	status Status
	detail string
}

// ParseTrustAnchors reads DS and DNSKEY records in zone-file syntax.
func ParseTrustAnchors(r io.Reader, file string) (*TrustAnchors, error) {
	ta := &TrustAnchors{ds: map[string][]*dns.DS{}, keys: map[string][]*dns.DNSKEY{}, zones: map[string]*zoneState{}}
	zp := dns.NewZoneParser(r, ".", file)
	n := 0
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		name := strings.ToLower(rr.Header().Name)
		switch a := rr.(type) {
		case *dns.DS:
			ta.ds[name] = append(ta.ds[name], a)
			n++
		case *dns.DNSKEY:
			ta.keys[name] = append(ta.keys[name], a)
			n++
		}
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("trust anchors %s: %w", file, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("trust anchors %s: no DS or DNSKEY records", file)
	}
	return ta, nil
}

// LoadTrustAnchors reads a trust anchor file.
func LoadTrustAnchors(path string) (*TrustAnchors, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseTrustAnchors(f, path)
}

func (ta *TrustAnchors) now() time.Time {
	if ta.Now != nil {
		return ta.Now()
	}
	return time.Now()
}

// covering returns the closest anchored zone at or above name, or "".
func (ta *TrustAnchors) covering(name string) string {
	name = strings.ToLower(dns.Fqdn(name))
	for i, end := 0, false; !end; i, end = dns.NextLabel(name, i) {
		z := name[i:]
		if len(ta.ds[z]) > 0 || len(ta.keys[z]) > 0 {
			return z
		}
		if z == "." {
			break
		}
	}
	if len(ta.ds["."]) > 0 || len(ta.keys["."]) > 0 {
		return "."
	}
	return ""
}

type rrsetKey struct {
	name  string
	rtype uint16
}

// rrsets groups records into RRsets and their signatures.
func rrsets(rrs []dns.RR) (map[rrsetKey][]dns.RR, map[rrsetKey][]*dns.RRSIG, []rrsetKey) {
	sets := map[rrsetKey][]dns.RR{}
	sigs := map[rrsetKey][]*dns.RRSIG{}
	var order []rrsetKey
	for _, rr := range rrs {
		h := rr.Header()
		if s, ok := rr.(*dns.RRSIG); ok {
			k := rrsetKey{strings.ToLower(h.Name), s.TypeCovered}
			sigs[k] = append(sigs[k], s)
			continue
		}
		if h.Rrtype == dns.TypeOPT {
			continue
		}
		k := rrsetKey{strings.ToLower(h.Name), h.Rrtype}
		if _, ok := sets[k]; !ok {
			order = append(order, k)
		}
		sets[k] = append(sets[k], rr)
	}
	return sets, sigs, order
}

// verifySet checks that one signature over set verifies with one of keys
// and is within its validity period.
func (ta *TrustAnchors) verifySet(set []dns.RR, sigs []*dns.RRSIG, keys []*dns.DNSKEY) error {
	if len(sigs) == 0 {
		return fmt.Errorf("%s %s is not signed", set[0].Header().Name, dns.TypeToString[set[0].Header().Rrtype])
	}
	var lastErr error
	for _, s := range sigs {
		if !s.ValidityPeriod(ta.now()) {
			lastErr = fmt.Errorf("signature over %s %s by key %d is outside its validity period", s.Hdr.Name, dns.TypeToString[s.TypeCovered], s.KeyTag)
			continue
		}
		for _, k := range keys {
			if k.KeyTag() != s.KeyTag || k.Algorithm != s.Algorithm || !strings.EqualFold(k.Hdr.Name, s.SignerName) {
				continue
			}
			if err := s.Verify(k, set); err != nil {
				lastErr = fmt.Errorf("signature over %s %s by key %d does not verify: %v", s.Hdr.Name, dns.TypeToString[s.TypeCovered], s.KeyTag, err)
				continue
			}
			return nil
		}
		if lastErr == nil {
			lastErr = fmt.Errorf("no key of %s with tag %d signs %s %s", s.SignerName, s.KeyTag, s.Hdr.Name, dns.TypeToString[s.TypeCovered])
		}
	}
	return lastErr
}

// zone returns the validated DNSKEYs of zone, or why there are none:
// Insecure when a validated parent proves there is no DS, Bogus when the
// chain is broken. Results are cached for the life of the anchors.
func (r *Resolver) zone(ctx context.Context, zone string, depth int) *zoneState {
	ta := r.Anchors
	zone = strings.ToLower(dns.Fqdn(zone))
	ta.mu.Lock()
	zs, ok := ta.zones[zone]
	if !ok {
		zs = &zoneState{}
		ta.zones[zone] = zs
	}
	ta.mu.Unlock()
	zs.once.Do(func() { r.loadZone(ctx, zs, zone, depth) })
	return zs
}

func (r *Resolver) loadZone(ctx context.Context, zs *zoneState, zone string, depth int) {
	ta := r.Anchors
	fail := func(format string, args ...any) {
		zs.status, zs.detail = Bogus, fmt.Sprintf(format, args...)
	}
	if depth > 16 {
		fail("chain of trust deeper than 16 zones")
		return
	}
	// Find the DS set that vouches for this zone's keys.
	var ds []*dns.DS
	if len(ta.ds[zone]) > 0 || len(ta.keys[zone]) > 0 {
		ds = ta.ds[zone]
	} else {
		if zone == "." || ta.covering(zone) == "" {
			zs.status, zs.detail = Insecure, "no trust anchor covers "+zone
			return
		}
		resp, _, err := r.exchange(ctx, zone, dns.TypeDS, true)
		if err != nil {
			fail("DS %s: %v", zone, err)
			return
		}
		sets, sigs, _ := rrsets(append(append([]dns.RR{}, resp.Answer...), resp.Ns...))
		signer := signerOf(sigs)
		if signer == "" {
			fail("the DS answer for %s is not signed", zone)
			return
		}
		if signer == zone || !dns.IsSubDomain(signer, zone) {
			fail("the DS answer for %s is signed by %s, which is not a parent zone", zone, signer)
			return
		}
		parent := r.zone(ctx, signer, depth+1)
		if parent.status != Secure {
			zs.status, zs.detail = parent.status, parent.detail
			return
		}
		if dsSet, ok := sets[rrsetKey{zone, dns.TypeDS}]; ok {
			if err := ta.verifySet(dsSet, sigs[rrsetKey{zone, dns.TypeDS}], parent.keys); err != nil {
				fail("DS %s: %v", zone, err)
				return
			}
			for _, rr := range dsSet {
				ds = append(ds, rr.(*dns.DS))
			}
		} else {
			// No DS: insecure if the parent's signed denial verifies.
			if err := verifyAll(ta, sets, sigs, parent.keys, dns.TypeNS); err != nil {
				fail("no DS for %s and its denial does not verify: %v", zone, err)
				return
			}
			if err := proveNoData(sets, zone, dns.TypeDS, true); err != nil {
				fail("no DS for %s, but %v", zone, err)
				return
			}
			zs.status, zs.detail = Insecure, fmt.Sprintf("%s proves there is no DS for %s: an unsigned delegation", signer, zone)
			return
		}
	}
	resp, _, err := r.exchange(ctx, zone, dns.TypeDNSKEY, true)
	if err != nil {
		fail("DNSKEY %s: %v", zone, err)
		return
	}
	sets, sigs, _ := rrsets(resp.Answer)
	keySet := sets[rrsetKey{zone, dns.TypeDNSKEY}]
	if len(keySet) == 0 {
		fail("no DNSKEY for %s", zone)
		return
	}
	var trusted []*dns.DNSKEY
	for _, rr := range keySet {
		k := rr.(*dns.DNSKEY)
		for _, d := range ds {
			if kd := k.ToDS(d.DigestType); kd != nil && k.KeyTag() == d.KeyTag && strings.EqualFold(kd.Digest, d.Digest) {
				trusted = append(trusted, k)
			}
		}
		for _, a := range ta.keys[zone] {
			if a.PublicKey == k.PublicKey && a.Algorithm == k.Algorithm {
				trusted = append(trusted, k)
			}
		}
	}
	if len(trusted) == 0 {
		fail("no DNSKEY of %s matches its DS or trust anchor", zone)
		return
	}
	if err := ta.verifySet(keySet, sigs[rrsetKey{zone, dns.TypeDNSKEY}], trusted); err != nil {
		fail("DNSKEY %s: %v", zone, err)
		return
	}
	for _, rr := range keySet {
		zs.keys = append(zs.keys, rr.(*dns.DNSKEY))
	}
	zs.status, zs.detail = Secure, ""
}

func signerOf(sigs map[rrsetKey][]*dns.RRSIG) string {
	for _, ss := range sigs {
		for _, s := range ss {
			return strings.ToLower(s.SignerName)
		}
	}
	return ""
}

// verifyAll verifies every RRset except those of the skipped type (NS in an
// authority section is not signed by the parent).
func verifyAll(ta *TrustAnchors, sets map[rrsetKey][]dns.RR, sigs map[rrsetKey][]*dns.RRSIG, keys []*dns.DNSKEY, skip uint16) error {
	for k, set := range sets {
		if k.rtype == skip {
			continue
		}
		if err := ta.verifySet(set, sigs[k], keys); err != nil {
			return err
		}
	}
	return nil
}

// validate gives the DNSSEC status of one response by our own validation
// from the trust anchors. Every RRset of the answer and authority sections
// must verify with validated keys of its signer; a negative answer must carry
// a verified NSEC or NSEC3 record. (The NSEC/NSEC3 records are verified but
// their coverage of the name is not checked: see docs/caa.md.)
func (r *Resolver) validate(ctx context.Context, resp *dns.Msg) (Status, string) {
	ta := r.Anchors
	qname := strings.ToLower(resp.Question[0].Name)
	all := append(append([]dns.RR{}, resp.Answer...), resp.Ns...)
	sets, sigs, order := rrsets(all)
	signed := false
	for _, ss := range sigs {
		if len(ss) > 0 {
			signed = true
		}
	}
	if !signed {
		if ta.covering(qname) == "" {
			return Insecure, "no trust anchor covers " + qname
		}
		zone := ""
		for k := range sets {
			if k.rtype == dns.TypeSOA {
				zone = k.name
			}
		}
		if zone == "" {
			z, err := r.findZone(ctx, qname)
			if err != nil {
				return Bogus, "unsigned answer, and its zone could not be found: " + err.Error()
			}
			zone = z
		}
		zs := r.zone(ctx, zone, 0)
		switch zs.status {
		case Insecure:
			return Insecure, zs.detail
		case Secure:
			return Bogus, fmt.Sprintf("unsigned answer from %s, a zone that is signed: signatures were stripped or are missing", zone)
		}
		return Bogus, zs.detail
	}
	var statuses []Status
	var details []string
	for _, k := range order {
		if k.rtype == dns.TypeNS && len(resp.Answer) > 0 {
			continue
		}
		ss := sigs[k]
		if len(ss) == 0 {
			if k.rtype == dns.TypeNS {
				continue // a referral's NS set is not signed
			}
			return Bogus, fmt.Sprintf("%s %s is not signed", k.name, dns.TypeToString[k.rtype])
		}
		zs := r.zone(ctx, ss[0].SignerName, 0)
		if zs.status != Secure {
			statuses = append(statuses, zs.status)
			details = append(details, zs.detail)
			continue
		}
		if err := ta.verifySet(sets[k], ss, zs.keys); err != nil {
			return Bogus, err.Error()
		}
		if n := int(ss[0].Labels); n < dns.CountLabel(k.name) && k.rtype != dns.TypeNSEC && k.rtype != dns.TypeNSEC3 {
			if err := proveExpansion(sets, k.name, n); err != nil {
				return Bogus, err.Error()
			}
		}
		statuses = append(statuses, Secure)
	}
	st := worst(statuses)
	if st == Secure {
		qtype := resp.Question[0].Qtype
		target, _ := followAliases(qname, resp.Answer)
		target = strings.ToLower(target)
		if resp.Rcode == dns.RcodeNameError {
			if err := proveNXDomain(sets, target); err != nil {
				return Bogus, "NXDOMAIN without a valid proof: " + err.Error()
			}
		} else if !hasTypeAt(resp.Answer, qtype, target) {
			if err := proveNoData(sets, target, qtype, false); err != nil {
				return Bogus, "an empty answer without a valid proof: " + err.Error()
			}
		}
		return Secure, "validated here from the trust anchors"
	}
	return st, strings.Join(dedup(details), "; ")
}

// hasTypeAt reports whether rrs hold a record of type t owned by name:
// records of the right type at another name answer nothing.
func hasTypeAt(rrs []dns.RR, t uint16, name string) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t && strings.EqualFold(rr.Header().Name, name) {
			return true
		}
	}
	return false
}

// findZone finds the zone that holds name by asking for its SOA.
func (r *Resolver) findZone(ctx context.Context, name string) (string, error) {
	resp, _, err := r.exchange(ctx, name, dns.TypeSOA, true)
	if err != nil {
		return "", err
	}
	for _, rr := range append(append([]dns.RR{}, resp.Answer...), resp.Ns...) {
		if soa, ok := rr.(*dns.SOA); ok {
			return strings.ToLower(soa.Hdr.Name), nil
		}
	}
	return "", fmt.Errorf("no SOA for %s", name)
}
