package ctlogtest

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"

	"github.com/srekit/srekit/certs/ct"
)

// ScenarioRules is the watch list the scenario's expectations are computed for.
var ScenarioRules = []string{
	"watched.example",
	"exact.example",
	".sub.example issuers=Good CA",
}

// Expected is one finding a monitor must report for a scenario.
type Expected struct {
	Rule           string
	CertKey        string // hex SHA-256 of the TBS without CT extensions
	IssuerExpected bool
	Kind           string
}

// Scenario fills a log with n entries: mostly unrelated certificates, and
// every `every` entries one of several cases a monitor must get right
// (precert/final pairs, wildcards, subtrees, an unexpected issuer, a
// redacted name, an unparseable entry, near misses). It returns the findings
// expected with ScenarioRules, computed from the certificates themselves
// (Go's x509 RawTBSCertificate), not from the monitor's parser.
type Scenario struct {
	Good, Rogue *CA
	Expected    map[string]Expected // key: rule + " " + cert key
	noise       [][]byte
}

// NewScenario creates the CAs ("Good CA" is expected for .sub.example, "Rogue CA" is not).
func NewScenario() (*Scenario, error) {
	good, err := NewCA("Good CA")
	if err != nil {
		return nil, err
	}
	rogue, err := NewCA("Rogue CA")
	if err != nil {
		return nil, err
	}
	return &Scenario{Good: good, Rogue: rogue, Expected: map[string]Expected{}}, nil
}

func tbsKey(der []byte) (string, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(c.RawTBSCertificate)
	return hex.EncodeToString(h[:]), nil
}

func (s *Scenario) expect(rule string, der []byte, issuerOK bool, kind string) error {
	k, err := tbsKey(der)
	if err != nil {
		return err
	}
	s.Expected[rule+" "+k] = Expected{Rule: rule, CertKey: k, IssuerExpected: issuerOK, Kind: kind}
	return nil
}

// Fill appends n entries to l (unique noise certificates are reused after
// `uniqueNoise` of them, as real logs also hold repeats).
func (s *Scenario) Fill(l *Log, n, every, uniqueNoise int) error {
	g := s.Good
	for i := 0; i < n; {
		if every > 0 && i%every == every-1 {
			added, err := s.special(l, i, (i/every)%8)
			if err != nil {
				return err
			}
			i += added
			continue
		}
		var der []byte
		if len(s.noise) < uniqueNoise || uniqueNoise <= 0 {
			var err error
			der, err = g.Issue(g.Template([]string{fmt.Sprintf("n%d.noise.test", i), fmt.Sprintf("www.n%d.noise.test", i)}, 90), nil)
			if err != nil {
				return err
			}
			if uniqueNoise > 0 {
				s.noise = append(s.noise, der)
			}
		} else {
			der = s.noise[i%len(s.noise)]
		}
		l.Append([][]byte{der, g.DER})
		i++
	}
	return nil
}

// special adds case c at position i and returns how many entries it added.
func (s *Scenario) special(l *Log, i, c int) (int, error) {
	g, r := s.Good, s.Rogue
	switch c {
	case 0: // precertificate and final certificate: one finding
		t := g.Template([]string{fmt.Sprintf("www%d.sub.example", i)}, 90)
		pre, err := g.IssuePrecert(t)
		if err != nil {
			return 0, err
		}
		sct, err := l.AddPreChain([][]byte{pre, g.DER})
		if err != nil {
			return 0, err
		}
		final, err := g.Issue(t, SCTList(sct))
		if err != nil {
			return 0, err
		}
		l.AddChain([][]byte{final, g.DER})
		plain, err := g.Issue(t, nil) // same TBS without the SCT list
		if err != nil {
			return 0, err
		}
		return 2, s.expect(".sub.example", plain, true, "match")
	case 1: // a wildcard covers both exact names, and sub.example, the subtree's apex
		der, err := g.Issue(g.Template([]string{"*.example"}, 90), nil)
		if err != nil {
			return 0, err
		}
		l.AddChain([][]byte{der, g.DER})
		if err := s.expect("watched.example", der, true, "match"); err != nil {
			return 0, err
		}
		if err := s.expect(".sub.example", der, true, "match"); err != nil {
			return 0, err
		}
		return 1, s.expect("exact.example", der, true, "match")
	case 2: // a wildcard in the subtree, beside an unrelated name
		der, err := g.Issue(g.Template([]string{fmt.Sprintf("api%d.other.test", i), "*.sub.example"}, 90), nil)
		if err != nil {
			return 0, err
		}
		l.AddChain([][]byte{der, g.DER})
		return 1, s.expect(".sub.example", der, true, "match")
	case 3: // the wrong issuer
		der, err := r.Issue(r.Template([]string{fmt.Sprintf("x%d.deep.sub.example", i)}, 90), nil)
		if err != nil {
			return 0, err
		}
		l.AddChain([][]byte{der, r.DER})
		return 1, s.expect(".sub.example", der, false, "match")
	case 4: // a precertificate alone
		t := g.Template([]string{"watched.example"}, 90)
		pre, err := g.IssuePrecert(t)
		if err != nil {
			return 0, err
		}
		if _, err := l.AddPreChain([][]byte{pre, g.DER}); err != nil {
			return 0, err
		}
		plain, err := g.Issue(t, nil)
		if err != nil {
			return 0, err
		}
		return 1, s.expect("watched.example", plain, true, "match")
	case 5: // an entry whose certificate cannot be parsed: reported fail-safe
		garbage := []byte(fmt.Sprintf("not a certificate %d", i))
		l.AddChain([][]byte{garbage, g.DER})
		l.mu.RLock()
		e := l.entries[len(l.entries)-1]
		l.mu.RUnlock()
		s.Expected[ct.UnparseableRule+" "+hex.EncodeToString(e.LeafHash[:])] = Expected{Rule: ct.UnparseableRule, CertKey: hex.EncodeToString(e.LeafHash[:]), Kind: "unparseable"}
		return 1, nil
	case 6: // near misses: no finding
		der, err := g.Issue(g.Template([]string{"exact.example.evil.test", "notexact.example", "sub.example.net", "xsub.example"}, 90), nil)
		if err != nil {
			return 0, err
		}
		l.AddChain([][]byte{der, g.DER})
		return 1, nil
	default: // a redacted label
		der, err := g.Issue(g.Template([]string{"?.sub.example"}, 90), nil)
		if err != nil {
			return 0, err
		}
		l.AddChain([][]byte{der, g.DER})
		return 1, s.expect(".sub.example", der, true, "redacted")
	}
}
