package caa

import (
	"fmt"
	"net/url"
	"strings"
)

// Param is one "tag=value" parameter of an issue or issuewild property
// (RFC 8659 section 4.2).
type Param struct {
	Tag   string `json:"tag"`
	Value string `json:"value"`
}

// IssueValue is a parsed issue or issuewild property value.
type IssueValue struct {
	// Domain is the issuer-domain-name; empty when the value names no issuer
	// (for example `;`), which authorizes nobody.
	Domain string  `json:"domain"`
	Params []Param `json:"params,omitempty"`
}

// Param returns the values of every parameter whose tag is exactly tag, in
// order (duplicates are kept: the profiles treat them differently).
func (v IssueValue) Param(tag string) []string {
	var out []string
	for _, p := range v.Params {
		if p.Tag == tag {
			out = append(out, p.Value)
		}
	}
	return out
}

func isWSP(c byte) bool { return c == ' ' || c == '\t' }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// validLabel reports whether s matches the RFC 8659 section 4.2 production
//
//	label = (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
//
// which is also the production of a parameter tag and, in RFC 8657 section
// 4, of a validation method name.
func validLabel(s string) bool {
	if s == "" || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '-' {
			return false
		}
	}
	return true
}

// validIssuerDomain matches issuer-domain-name = label *("." label).
func validIssuerDomain(s string) bool {
	for _, l := range strings.Split(s, ".") {
		if !validLabel(l) {
			return false
		}
	}
	return true
}

// validParamValue matches value = *(%x21-3A / %x3C-7E): printable ASCII
// without space and without ';'.
func validParamValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == ';' {
			return false
		}
	}
	return true
}

func trimWSP(s string) string {
	for len(s) > 0 && isWSP(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isWSP(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// ParseIssueValue parses an issue or issuewild property value strictly by
// the RFC 8659 section 4.2 grammar:
//
//	issue-value = *WSP [issuer-domain-name *WSP]
//	   [";" *WSP [parameters *WSP]]
//	parameters = (parameter *WSP ";" *WSP parameters) / parameter
//	parameter = tag *WSP "=" *WSP value
//
// A value that does not match is an error; RFC 8659 section 4.2 says such a
// property must be treated as if it named no issuer (it forbids).
func ParseIssueValue(s string) (IssueValue, error) {
	var v IssueValue
	domain, rest, hasParams := strings.Cut(s, ";")
	domain = trimWSP(domain)
	if domain != "" && !validIssuerDomain(domain) {
		return IssueValue{}, fmt.Errorf("issuer domain %q does not match the RFC 8659 grammar (letters, digits, inner hyphens, dot-separated labels, no trailing dot)", domain)
	}
	v.Domain = domain
	if !hasParams {
		return v, nil
	}
	rest = trimWSP(rest)
	if rest == "" {
		return v, nil // "letsencrypt.org;" and ";" are valid
	}
	for _, p := range strings.Split(rest, ";") {
		p = trimWSP(p)
		tag, val, ok := strings.Cut(p, "=")
		if !ok {
			return IssueValue{}, fmt.Errorf("parameter %q is not tag=value", p)
		}
		tag, val = trimWSP(tag), trimWSP(val)
		if !validLabel(tag) {
			return IssueValue{}, fmt.Errorf("parameter tag %q does not match the RFC 8659 grammar", tag)
		}
		if !validParamValue(val) {
			return IssueValue{}, fmt.Errorf("parameter %s value %q has spaces or characters outside printable ASCII", tag, val)
		}
		v.Params = append(v.Params, Param{Tag: tag, Value: val})
	}
	return v, nil
}

// ParseIssueValueBoulder parses an issue value the way Let's Encrypt's
// Boulder does (va/caa.go, parseCAARecord): the issuer domain is whatever
// precedes the first ';', trimmed of spaces and tabs and not checked; each
// parameter must be tag=value with a tag of ASCII letters and digits only (so
// a hyphenated tag, which RFC 8659 allows, is an error), and a value of
// printable ASCII without ';'. A trailing lone ';' is allowed. Duplicate
// parameters are kept here; Boulder keeps the last one.
func ParseIssueValueBoulder(s string) (IssueValue, error) {
	parts := strings.Split(s, ";")
	v := IssueValue{Domain: trimWSP(parts[0])}
	params := parts[1:]
	if len(params) == 1 && trimWSP(params[0]) == "" {
		return v, nil
	}
	for _, p := range params {
		tag, val, ok := strings.Cut(p, "=")
		if !ok {
			return IssueValue{}, fmt.Errorf("parameter %q is not tag=value", p)
		}
		tag, val = trimWSP(tag), trimWSP(val)
		for i := 0; i < len(tag); i++ {
			if !isAlnum(tag[i]) {
				return IssueValue{}, fmt.Errorf("parameter tag %q has a character other than a letter or digit", tag)
			}
		}
		if !validParamValue(val) {
			return IssueValue{}, fmt.Errorf("parameter %s value %q has spaces or characters outside printable ASCII", tag, val)
		}
		v.Params = append(v.Params, Param{Tag: tag, Value: val})
	}
	return v, nil
}

// ParseValidationMethods parses a validationmethods parameter value by RFC
// 8657 section 4: value = [*(label ",") label].
func ParseValidationMethods(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	ms := strings.Split(s, ",")
	for _, m := range ms {
		if !validLabel(m) {
			return nil, fmt.Errorf("validation method %q does not match the RFC 8657 grammar", m)
		}
	}
	return ms, nil
}

// ParseIodef checks an iodef property value (RFC 8659 section 4.4): a URL
// with the mailto:, http: or https: scheme.
func ParseIodef(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("iodef %q is not a URL: %w", s, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "mailto", "http", "https":
		return u, nil
	}
	return nil, fmt.Errorf("iodef %q has scheme %q; RFC 8659 allows mailto:, http: and https:", s, u.Scheme)
}

// boulderChallenges are the ACME challenge types Boulder knows
// (core.AcmeChallenge.IsValid); other method names in validationmethods are
// skipped by Boulder.
var boulderChallenges = map[string]bool{"http-01": true, "dns-01": true, "tls-alpn-01": true, "dns-account-01": true}
