package caa

import (
	"strings"
	"testing"
)

// FuzzParseIssueValue checks that the two value parsers never panic, that
// what the strict parser accepts is well formed, and that the record builder
// produces values the strict parser accepts.
func FuzzParseIssueValue(f *testing.F) {
	for _, s := range []string{
		"letsencrypt.org", ";", "", " ca.example ; accounturi=https://a/b/1; validationmethods=dns-01,http-01",
		"ca.example; a-b=1", "ca.example;; x", "%%%%%", "ca.example.", "ca.example; a=b=c", "\tca\t;\t", "ca.example; a=é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseIssueValue(s)
		if err == nil {
			if v.Domain != "" && !validIssuerDomain(v.Domain) {
				t.Fatalf("%q: accepted bad domain %q", s, v.Domain)
			}
			for _, p := range v.Params {
				if !validLabel(p.Tag) || !validParamValue(p.Value) || strings.ContainsAny(p.Value, "; \t") {
					t.Fatalf("%q: accepted bad parameter %+v", s, p)
				}
			}
			// Rebuilding the value from its parts parses to the same thing.
			re := v.Domain
			for _, p := range v.Params {
				re += "; " + p.Tag + "=" + p.Value
			}
			v2, err := ParseIssueValue(re)
			if err != nil || v2.Domain != v.Domain || len(v2.Params) != len(v.Params) {
				t.Fatalf("%q: rebuilt %q parses as %+v, %v", s, re, v2, err)
			}
		}
		if b, err := ParseIssueValueBoulder(s); err == nil {
			for _, p := range b.Params {
				if !validParamValue(p.Value) {
					t.Fatalf("%q: boulder parser accepted value %q", s, p.Value)
				}
			}
		}
		ParseValidationMethods(s)
		ParseIodef(s)
		// Evaluate over a record with this value must not panic under either profile.
		for _, p := range []Profile{ProfileRFC8659, ProfileLetsEncrypt} {
			Evaluate(Request{Name: "example.com", Issuer: "ca.example", AccountURI: "https://a/b/1", Method: "dns-01", Profile: p},
				[]Lookup{{Name: "example.com.", Records: []Record{{Tag: "issue", Value: s}, {Flag: 1, Tag: s, Value: s}}}})
		}
	})
}

// FuzzParseTrustAnchors feeds arbitrary text to the trust anchor reader and
// the name normalizer: errors are fine, panics are not.
func FuzzParseTrustAnchors(f *testing.F) {
	f.Add("signed. IN DS 23758 13 2 5ea444afff441284b6640ffe60c5fa8625d7c92cc76b4657713ebbc3cdc5a42d\n")
	f.Add(". IN DNSKEY 257 3 8 AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3\n")
	f.Add("$ORIGIN example.\n@ 3600 IN DS 1 8 2 00\n")
	f.Add("*.Example.COM.")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		ta, err := ParseTrustAnchors(strings.NewReader(s), "fuzz")
		if err == nil && len(ta.ds)+len(ta.keys) == 0 {
			t.Fatalf("%q: no anchors and no error", s)
		}
		if err == nil {
			ta.covering("www.example.com.")
		}
		if n, _, err := Normalize(s); err == nil {
			if n == "" || strings.HasSuffix(n, ".") || strings.ContainsAny(n, " *") {
				t.Fatalf("%q normalized to %q", s, n)
			}
			ClimbNames(n)
		}
	})
}
