package caa

import (
	"fmt"
	"strings"
)

// RecordSpec describes the CAA policy a domain owner wants (srekit caa record).
type RecordSpec struct {
	Name       string   // the domain the records go at
	Issuers    []string // CAs allowed to issue; none means no CA may issue
	Wild       []string // CAs allowed to issue wildcards; nil means same as Issuers
	NoWild     bool     // forbid wildcard certificates altogether
	AccountURI string   // RFC 8657 accounturi, applied to every issuer
	Methods    []string // RFC 8657 validationmethods, applied to every issuer
	Iodef      string   // where to report (mailto:, http:, https:)
}

// Records builds the record set for spec, checking every value against the
// RFC 8659/8657 grammar so what it prints parses.
func (s RecordSpec) Records() ([]Record, error) {
	var out []Record
	params := ""
	if s.AccountURI != "" {
		if !validParamValue(s.AccountURI) {
			return nil, fmt.Errorf("account URI %q has spaces, ';' or non-ASCII characters", s.AccountURI)
		}
		params += "; accounturi=" + s.AccountURI
	}
	if len(s.Methods) > 0 {
		v := strings.Join(s.Methods, ",")
		if _, err := ParseValidationMethods(v); err != nil {
			return nil, err
		}
		params += "; validationmethods=" + v
	}
	value := func(ca string) (string, error) {
		ca = strings.TrimSuffix(strings.TrimSpace(ca), ".")
		if !validIssuerDomain(ca) {
			return "", fmt.Errorf("CA %q is not an issuer domain name (like letsencrypt.org)", ca)
		}
		return ca + params, nil
	}
	if len(s.Issuers) == 0 {
		out = append(out, Record{Tag: "issue", Value: ";"})
	}
	for _, ca := range s.Issuers {
		v, err := value(ca)
		if err != nil {
			return nil, err
		}
		out = append(out, Record{Tag: "issue", Value: v})
	}
	switch {
	case s.NoWild:
		out = append(out, Record{Tag: "issuewild", Value: ";"})
	case s.Wild != nil:
		for _, ca := range s.Wild {
			v, err := value(ca)
			if err != nil {
				return nil, err
			}
			out = append(out, Record{Tag: "issuewild", Value: v})
		}
	}
	if s.Iodef != "" {
		if _, err := ParseIodef(s.Iodef); err != nil {
			return nil, err
		}
		out = append(out, Record{Tag: "iodef", Value: s.Iodef})
	}
	return out, nil
}

// ZoneFile prints records in zone-file syntax at name.
func ZoneFile(name string, recs []Record) string {
	var b strings.Builder
	owner := strings.TrimSuffix(name, ".") + "."
	for _, r := range recs {
		fmt.Fprintf(&b, "%s\t3600\tIN\tCAA\t%d %s %q\n", owner, r.Flag, r.Tag, r.Value)
	}
	return b.String()
}
