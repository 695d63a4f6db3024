package ct

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"golang.org/x/net/idna"
)

// Rule is one watch rule: a DNS name, exact or a whole subtree, and the
// issuers expected for it.
type Rule struct {
	// Pattern is "example.com" (that name exactly, and wildcard certificates
	// covering it) or ".example.com" (example.com and every name below it).
	Pattern string `json:"pattern"`
	// Issuers lists the expected issuers: CAA issuer domains such as
	// "letsencrypt.org" (mapped to CA names, see IssuerNames) or any text
	// matched against the issuer's O or CN. Empty means any issuer is expected.
	Issuers []string `json:"issuers,omitempty"`
}

// Domain is the pattern without its leading dot.
func (r Rule) Domain() string { return strings.TrimPrefix(r.Pattern, ".") }

// Subtree reports whether the rule covers names below its domain.
func (r Rule) Subtree() bool { return strings.HasPrefix(r.Pattern, ".") }

// ParseRule parses "example.com", ".example.com" or "*.example.com" (the
// same as ".example.com"), with optional expected issuers after spaces or
// as "issuers=a,b".
func ParseRule(s string) (Rule, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Rule{}, fmt.Errorf("empty rule")
	}
	p := normalizeName(f[0])
	// Certificates carry A-labels (punycode): a rule in Unicode is converted.
	base := strings.TrimLeft(p, "*.")
	if a, err := idna.Lookup.ToASCII(base); err == nil {
		p = p[:len(p)-len(base)] + a
	}
	if strings.HasPrefix(p, "*.") {
		p = p[1:]
	}
	d := strings.TrimPrefix(p, ".")
	if d == "" || strings.ContainsAny(d, " */?\\:@") || strings.Contains(d, "..") || strings.HasPrefix(d, ".") {
		return Rule{}, fmt.Errorf("watch rule %q: want a DNS name such as example.com or .example.com", f[0])
	}
	r := Rule{Pattern: p}
	rest := strings.TrimSpace(strings.TrimSpace(s)[len(f[0]):])
	if rest != "" && !strings.HasPrefix(rest, "issuers=") {
		return Rule{}, fmt.Errorf("watch rule %q: after the name only issuers=a,b may follow", s)
	}
	rest = strings.TrimPrefix(rest, "issuers=")
	for _, i := range strings.Split(rest, ",") {
		if i = strings.TrimSpace(i); i != "" {
			r.Issuers = append(r.Issuers, i)
		}
	}
	return r, nil
}

// ParseWatchList reads rules one per line; blank lines and # comments are skipped.
func ParseWatchList(rd io.Reader) ([]Rule, error) {
	var rules []Rule
	sc := bufio.NewScanner(rd)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		r, err := ParseRule(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		rules = append(rules, r)
	}
	return rules, sc.Err()
}

// IssuerNames maps CAA issuer domains to the organisation names their
// certificates carry, so expected issuers can come from CAA records.
var IssuerNames = map[string][]string{
	"letsencrypt.org":    {"Let's Encrypt", "ISRG"},
	"pki.goog":           {"Google Trust Services"},
	"digicert.com":       {"DigiCert"},
	"sectigo.com":        {"Sectigo", "COMODO"},
	"comodoca.com":       {"Sectigo", "COMODO"},
	"amazon.com":         {"Amazon"},
	"amazontrust.com":    {"Amazon"},
	"globalsign.com":     {"GlobalSign"},
	"zerossl.com":        {"ZeroSSL"},
	"buypass.com":        {"Buypass"},
	"entrust.net":        {"Entrust"},
	"godaddy.com":        {"GoDaddy"},
	"ssl.com":            {"SSL.com", "SSL Corporation"},
	"identrust.com":      {"IdenTrust"},
	"microsoft.com":      {"Microsoft"},
	"certum.pl":          {"Certum", "Asseco"},
	"harica.gr":          {"HARICA", "Hellenic Academic"},
	"actalis.it":         {"Actalis"},
	"telesec.de":         {"T-Systems", "Deutsche Telekom"},
	"trust-provider.com": {"Sectigo"},
}

// issuerExpected reports whether the issuer name matches one of want.
func issuerExpected(issuer Name, want []string) bool {
	if len(want) == 0 {
		return true
	}
	o, cn := strings.ToLower(issuer.O), strings.ToLower(issuer.CN)
	for _, w := range want {
		names := IssuerNames[strings.ToLower(w)]
		if names == nil {
			names = []string{w}
		}
		for _, n := range names {
			n = strings.ToLower(n)
			if strings.Contains(o, n) || strings.Contains(cn, n) {
				return true
			}
		}
	}
	return false
}

// Matcher finds the rules a certificate's names fall under.
type Matcher struct {
	Rules    []Rule
	exact    map[string][]int // domain -> exact rules
	subtree  map[string][]int // domain -> subtree rules
	byParent map[string][]int // parent domain -> rules (exact or subtree) one label below
}

// NewMatcher indexes rules for matching.
func NewMatcher(rules []Rule) *Matcher {
	m := &Matcher{Rules: rules, exact: map[string][]int{}, subtree: map[string][]int{}, byParent: map[string][]int{}}
	for i, r := range rules {
		d := r.Domain()
		if r.Subtree() {
			m.subtree[d] = append(m.subtree[d], i)
		} else {
			m.exact[d] = append(m.exact[d], i)
		}
		if dot := strings.IndexByte(d, '.'); dot > 0 {
			m.byParent[d[dot+1:]] = append(m.byParent[d[dot+1:]], i)
		}
	}
	return m
}

// Match calls hit once for each rule any of names falls under, in no
// particular order. A wildcard name "*.example.com" matches the rules whose
// name it covers (one label below example.com: exact rules, and subtree
// rules through their apex) and subtree rules at or above example.com. A name with a redacted label ("?.example.com") is
// matched like a wildcard, fail-safe.
func (m *Matcher) Match(names []string, hit func(rule int)) {
	var seen []int
	mark := func(idx []int) {
	next:
		for _, i := range idx {
			for _, s := range seen {
				if s == i {
					continue next
				}
			}
			seen = append(seen, i)
			hit(i)
		}
	}
	for _, n := range names {
		n = normalizeName(n)
		wild := false
		if strings.HasPrefix(n, "*.") || strings.HasPrefix(n, "?.") {
			wild = true
			n = n[2:]
		}
		if wild {
			mark(m.byParent[n])
		} else {
			mark(m.exact[n])
		}
		// Subtree rules: the name itself and every parent domain.
		for d := n; ; {
			mark(m.subtree[d])
			dot := strings.IndexByte(d, '.')
			if dot < 0 {
				break
			}
			d = d[dot+1:]
		}
	}
}

// Redacted reports whether a name hides labels (the "?" redaction of
// draft-strad-trans-redaction), which the monitor reports fail-safe.
func Redacted(name string) bool { return strings.Contains(name, "?") }
