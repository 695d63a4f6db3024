package caa

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Resolver fetches CAA record sets over DNS. The zero value is not usable:
// set Server. A Resolver is safe for concurrent use.
type Resolver struct {
	// Server is the resolver (or authoritative server) to ask, host:port.
	Server string
	// Cache, when set, shares lookups between checks (see Cache).
	Cache *Cache
	// Timeout is how long to wait for one answer; 2s when zero.
	Timeout time.Duration
	// Retries is how many times a query that timed out is sent again; the
	// Baseline Requirements want a failed lookup retried at least once. 1
	// when zero; negative means no retry.
	Retries int
	// Anchors, when set, makes the Resolver validate DNSSEC itself from these
	// trust anchors (queries go out with the CD bit, so a lying path cannot
	// hide bogus data behind a SERVFAIL); when nil the status comes from the
	// AD bit of the resolver's answers.
	Anchors *TrustAnchors
	// UDPSize is the EDNS0 buffer size advertised; 1232 (the DNS flag day
	// 2020 value) when zero. Larger answers come back truncated and are
	// fetched again over TCP.
	UDPSize uint16
}

// maxAliases bounds CNAME/DNAME chains within one lookup.
const maxAliases = 8

// SystemResolver returns the first nameserver of /etc/resolv.conf as host:port.
func SystemResolver() (string, error) {
	cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
	if err != nil {
		return "", fmt.Errorf("read /etc/resolv.conf: %w (use --resolver HOST:PORT)", err)
	}
	if len(cc.Servers) == 0 {
		return "", errors.New("no nameserver in /etc/resolv.conf (use --resolver HOST:PORT)")
	}
	return net.JoinHostPort(cc.Servers[0], cc.Port), nil
}

// Normalize turns user input into the name to check and whether it is a
// wildcard: "*.Example.COM." gives ("example.com", true). It rejects names
// that are not domain names.
func Normalize(name string) (string, bool, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	wild := false
	if strings.HasPrefix(n, "*.") {
		wild = true
		n = n[2:]
	}
	n = strings.TrimSuffix(n, ".")
	if n == "" {
		return "", false, fmt.Errorf("empty domain name %q", name)
	}
	if _, ok := dns.IsDomainName(n); !ok || strings.Contains(n, "..") || strings.HasPrefix(n, ".") || strings.HasSuffix(n, ".") {
		return "", false, fmt.Errorf("%q is not a domain name", name)
	}
	if net.ParseIP(n) != nil {
		return "", false, fmt.Errorf("%q is an IP address: CAA applies to domain names", name)
	}
	for _, l := range dns.SplitDomainName(n) {
		if strings.ContainsAny(l, " \t\\\"*") {
			return "", false, fmt.Errorf("%q is not a domain name (label %q)", name, l)
		}
	}
	return n, wild, nil
}

// ClimbNames lists the names RFC 8659 section 3 looks at for name: the name
// itself and each parent down to the top-level domain (the root is not
// queried).
func ClimbNames(name string) []string {
	name = dns.Fqdn(name)
	var out []string
	for i, end := 0, false; !end; i, end = dns.NextLabel(name, i) {
		if name[i:] == "." {
			break
		}
		out = append(out, name[i:])
	}
	return out
}

// Climb looks up CAA at the name and each parent in turn, stopping at the
// first non-empty set or the first failure (after which nothing higher can
// matter: RFC 8659 section 3 needs every lower answer).
func (r *Resolver) Climb(ctx context.Context, name string) []Lookup {
	var out []Lookup
	for _, n := range ClimbNames(name) {
		l := r.Lookup(ctx, n)
		out = append(out, l)
		if l.Failed() || len(l.Records) > 0 {
			break
		}
	}
	return out
}

// Check climbs and evaluates one request.
func (r *Resolver) Check(ctx context.Context, req Request) Decision {
	return Evaluate(req, r.Climb(ctx, req.Name))
}

// Lookup asks for the CAA records of one name, following CNAME and DNAME
// (RFC 8659 section 3: aliases are followed within a lookup). NXDOMAIN is an
// empty set; SERVFAIL, REFUSED, other errors and timeouts fail the lookup.
func (r *Resolver) Lookup(ctx context.Context, name string) Lookup {
	if r.Cache != nil {
		return r.Cache.lookup(ctx, r, name)
	}
	return r.lookup(ctx, name)
}

func (r *Resolver) lookup(ctx context.Context, name string) (l Lookup) {
	start := time.Now()
	l = Lookup{Name: dns.Fqdn(name), Server: r.Server, Records: []Record{}}
	defer func() { l.Millis = float64(time.Since(start).Microseconds()) / 1000 }()
	cur := l.Name
	seen := map[string]bool{}
	var statuses []Status
	var details []string
	for hop := 0; ; hop++ {
		if hop > maxAliases {
			l.Err = fmt.Sprintf("alias chain longer than %d steps", maxAliases)
			return l
		}
		seen[strings.ToLower(cur)] = true
		resp, tcp, err := r.exchange(ctx, cur, dns.TypeCAA, r.Anchors != nil)
		l.TCP = l.TCP || tcp
		if err != nil {
			l.Err = err.Error()
			l.DNSSEC = Unknown
			return l
		}
		l.Rcode = dns.RcodeToString[resp.Rcode]
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			l.Err = fmt.Sprintf("%s answered %s", r.Server, l.Rcode)
			l.DNSSEC = Unknown
			if resp.Rcode == dns.RcodeServerFailure && r.Anchors == nil {
				// A validating resolver answers SERVFAIL for bogus data; asking
				// again with checking disabled tells the two apart.
				if cd, _, err := r.exchange(ctx, cur, dns.TypeCAA, true); err == nil && (cd.Rcode == dns.RcodeSuccess || cd.Rcode == dns.RcodeNameError) {
					l.DNSSEC = Bogus
					l.DNSSECDetail = "the resolver answers SERVFAIL but answers with checking disabled (CD): DNSSEC validation failed"
					l.Err += " (DNSSEC validation failed: bogus)"
				}
			}
			return l
		}
		if ref := referral(resp); ref != "" {
			// An authoritative server asked about a name it delegated answers
			// with a referral: that says nothing about the CAA records.
			l.Err = fmt.Sprintf("%s answered with a referral to %s, not an answer: ask a recursive resolver", r.Server, ref)
			l.DNSSEC = Unknown
			return l
		}
		l.ttl = minTTL(l.ttl, hop == 0, resp)
		st, detail := r.status(ctx, resp)
		statuses = append(statuses, st)
		if detail != "" {
			details = append(details, detail)
		}
		target, aliases := followAliases(cur, resp.Answer)
		for i := range aliases {
			aliases[i].DNSSEC = st
		}
		l.Aliases = append(l.Aliases, aliases...)
		for _, rr := range resp.Answer {
			if c, ok := rr.(*dns.CAA); ok && strings.EqualFold(c.Hdr.Name, target) {
				l.Records = append(l.Records, Record{Flag: c.Flag, Tag: c.Tag, Value: c.Value})
			}
		}
		// A server that is authoritative for the alias but not for its target
		// (or a resolver that stopped short) leaves the chain unfinished:
		// ask for the target ourselves.
		if len(l.Records) > 0 || resp.Rcode == dns.RcodeNameError || len(aliases) == 0 || seen[strings.ToLower(target)] || !needsChase(resp, target) {
			break
		}
		cur = target
	}
	l.DNSSEC = worst(statuses)
	l.DNSSECDetail = strings.Join(dedup(details), "; ")
	return l
}

// minTTL folds the TTLs of a response into ttl: the smallest TTL of its
// answer records, or for a negative answer the SOA's (RFC 2308 section 5).
func minTTL(ttl uint32, first bool, resp *dns.Msg) uint32 {
	m := uint32(0)
	set := false
	take := func(t uint32) {
		if !set || t < m {
			m, set = t, true
		}
	}
	for _, rr := range resp.Answer {
		take(rr.Header().Ttl)
	}
	if len(resp.Answer) == 0 || resp.Rcode == dns.RcodeNameError {
		for _, rr := range resp.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				take(min(soa.Hdr.Ttl, soa.Minttl))
			}
		}
	}
	if !first && ttl < m {
		return ttl
	}
	return m
}

// referral returns the delegated zone when resp is a referral (no answer,
// NS records and no SOA in the authority section), else "".
func referral(resp *dns.Msg) string {
	if resp.Rcode != dns.RcodeSuccess || len(resp.Answer) > 0 {
		return ""
	}
	zone := ""
	for _, rr := range resp.Ns {
		switch rr.(type) {
		case *dns.SOA:
			return ""
		case *dns.NS:
			zone = rr.Header().Name
		}
	}
	return zone
}

// needsChase reports whether an answer whose alias chain ends at target
// says nothing final about target: no SOA for a NODATA in the authority
// section whose zone encloses target.
func needsChase(resp *dns.Msg, target string) bool {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok && dns.IsSubDomain(soa.Hdr.Name, target) {
			return false
		}
	}
	return true
}

func dedup(ss []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// followAliases walks the CNAME and DNAME records of an answer from qname
// and returns the final target and the steps taken.
func followAliases(qname string, answer []dns.RR) (string, []Alias) {
	cur := qname
	var steps []Alias
	for i := 0; i <= maxAliases; i++ {
		next := ""
		for _, rr := range answer {
			switch a := rr.(type) {
			case *dns.CNAME:
				if strings.EqualFold(a.Hdr.Name, cur) {
					steps = append(steps, Alias{Type: "CNAME", Owner: cur, Target: a.Target})
					next = a.Target
				}
			case *dns.DNAME:
				// RFC 6672: a DNAME at an ancestor of cur rewrites its suffix.
				if !strings.EqualFold(a.Hdr.Name, cur) && dns.IsSubDomain(a.Hdr.Name, cur) {
					prefix := cur[:len(cur)-len(a.Hdr.Name)]
					next = prefix + a.Target
					if a.Target == "." {
						next = prefix
					}
					steps = append(steps, Alias{Type: "DNAME", Owner: a.Hdr.Name, Target: a.Target})
				}
			}
			if next != "" {
				break
			}
		}
		if next == "" {
			break
		}
		cur = next
	}
	return cur, steps
}

// exchange sends one query, over UDP and again over TCP if the answer is
// truncated, retrying on timeouts.
func (r *Resolver) exchange(ctx context.Context, qname string, qtype uint16, cd bool) (*dns.Msg, bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(qname), qtype)
	m.RecursionDesired = true
	m.AuthenticatedData = true // RFC 6840 section 5.7: ask for the AD bit
	m.CheckingDisabled = cd
	size := r.UDPSize
	if size == 0 {
		size = 1232
	}
	m.SetEdns0(size, true) // DO: we want signatures and the AD bit
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	retries := r.Retries
	if retries == 0 {
		retries = 1
	}
	if retries < 0 {
		retries = 0
	}
	var lastErr error
	for attempt := 0; attempt <= retries; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, false, err
		}
		c := &dns.Client{Net: "udp", Timeout: timeout, UDPSize: size}
		resp, _, err := c.ExchangeContext(ctx, m, r.Server)
		if err == nil && resp.Truncated {
			tc := &dns.Client{Net: "tcp", Timeout: timeout}
			resp, _, err = tc.ExchangeContext(ctx, m, r.Server)
			if err == nil {
				return resp, true, nil
			}
			lastErr = fmt.Errorf("truncated UDP answer, and over TCP: %w", err)
			continue
		}
		if err == nil {
			if resp.Id != m.Id {
				lastErr = errors.New("answer with the wrong ID")
				continue
			}
			if len(resp.Question) != 1 || !strings.EqualFold(resp.Question[0].Name, m.Question[0].Name) || resp.Question[0].Qtype != qtype {
				lastErr = errors.New("answer to a different question")
				continue
			}
			return resp, false, nil
		}
		lastErr = err
		if !isTimeout(err) {
			break
		}
	}
	if isTimeout(lastErr) {
		return nil, false, fmt.Errorf("no answer from %s for %s within %v (%d tries)", r.Server, strings.TrimSuffix(qname, "."), timeout, retries+1)
	}
	return nil, false, fmt.Errorf("query %s at %s: %w", strings.TrimSuffix(qname, "."), r.Server, lastErr)
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded))
}

// status gives the DNSSEC status of one response: from our own validation
// when trust anchors are set, else from the resolver's AD bit.
func (r *Resolver) status(ctx context.Context, resp *dns.Msg) (Status, string) {
	if r.Anchors != nil {
		return r.validate(ctx, resp)
	}
	if resp.AuthenticatedData {
		return Secure, "the resolver set the AD bit (it validated the answer; trust it as far as the path to it)"
	}
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns} {
		for _, rr := range sec {
			if _, ok := rr.(*dns.RRSIG); ok {
				return Unknown, "the answer is signed but the resolver did not set the AD bit: it does not validate"
			}
		}
	}
	return Insecure, "no signatures and no AD bit: an unsigned zone, as far as the resolver's word goes (use --trust-anchor to check)"
}
