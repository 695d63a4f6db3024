package caa

import "testing"

// TestBoulderParity replays the scenarios of Boulder's own CAA tests
// (va/caa_test.go, TestCAAChecking: record sets, request, expected outcome)
// under the letsencrypt profile: issuer letsencrypt.org, account
// https://letsencrypt.org/acct/reg/123, method http-01. The same scenarios
// decide the same way under rfc8659, except where noted.
func TestBoulderParity(t *testing.T) {
	const acct = "https://letsencrypt.org/acct/reg/123"
	r := func(flag uint8, tag, value string) Record { return Record{Flag: flag, Tag: tag, Value: value} }
	sets := map[string][]Record{
		"reserved.com":                               {r(0, "issue", "ca.com")},
		"mixedcase.com":                              {r(0, "iSsUe", "ca.com")},
		"critical.com":                               {r(1, "issue", "ca.com")},
		"present.com":                                {r(0, "issue", "letsencrypt.org")},
		"present.servfail.com":                       {r(0, "issue", "letsencrypt.org")},
		"multi-crit-present.com":                     {r(1, "issue", "ca.com"), r(1, "issue", "letsencrypt.org")},
		"unknown-critical.com":                       {r(128, "foo", "bar")},
		"unknown-critical2.com":                      {r(1, "foo", "bar")},
		"unknown-noncritical.com":                    {r(0x7e, "foo", "bar")},
		"present-with-parameter.com":                 {r(0, "issue", "  letsencrypt.org  ;foo=bar;baz=bar")},
		"present-with-invalid-tag.com":               {r(0, "issue", "letsencrypt.org; a_b=123")},
		"present-with-invalid-value.com":             {r(0, "issue", "letsencrypt.org; ab=1 2 3")},
		"present-dns-only.com":                       {r(0, "issue", "letsencrypt.org; validationmethods=dns-01")},
		"present-http-only.com":                      {r(0, "issue", "letsencrypt.org; validationmethods=http-01")},
		"present-http-or-dns.com":                    {r(0, "issue", "letsencrypt.org; validationmethods=http-01,dns-01")},
		"present-correct-accounturi.com":             {r(0, "issue", "letsencrypt.org; accounturi="+acct)},
		"present-http-only-correct-accounturi.com":   {r(0, "issue", "letsencrypt.org; accounturi="+acct+"; validationmethods=http-01")},
		"present-dns-only-correct-accounturi.com":    {r(0, "issue", "letsencrypt.org; accounturi="+acct+"; validationmethods=dns-01")},
		"present-http-only-incorrect-accounturi.com": {r(0, "issue", "letsencrypt.org; accounturi=https://letsencrypt.org/acct/reg/321; validationmethods=http-01")},
		"present-incorrect-accounturi.com":           {r(0, "issue", "letsencrypt.org; accounturi=https://letsencrypt.org/acct/reg/321")},
		"present-multiple-accounturi.com":            {r(0, "issue", "letsencrypt.org; accounturi=https://letsencrypt.org/acct/reg/321"), r(0, "issue", "letsencrypt.org; accounturi="+acct)},
		"unsatisfiable.com":                          {r(0, "issue", ";")},
		"unsatisfiable-wildcard.com":                 {r(0, "issuewild", ";")},
		"unsatisfiable-wildcard-override.com":        {r(0, "issue", "letsencrypt.org"), r(0, "issuewild", "ca.com")},
		"satisfiable-wildcard-override.com":          {r(0, "issue", "ca.com"), r(0, "issuewild", "letsencrypt.org")},
		"satisfiable-multi-wildcard.com":             {r(0, "issuewild", "ca.com"), r(0, "issuewild", "letsencrypt.org")},
		"satisfiable-wildcard.com":                   {r(0, "issuewild", "letsencrypt.org")},
	}
	fail := map[string]bool{"servfail.com": true, "servfail.present.com": true, "caa-timeout.com": true}
	climb := func(name string) []Lookup {
		var out []Lookup
		for _, n := range ClimbNames(name) {
			key := n[:len(n)-1]
			l := Lookup{Name: n, Records: sets[key], Rcode: "NOERROR"}
			if fail[key] {
				l.Err = "SERVFAIL"
			}
			out = append(out, l)
			if l.Failed() || len(l.Records) > 0 {
				break
			}
		}
		return out
	}
	cases := []struct {
		domain, foundAt string
		want            Verdict
		rfc             Verdict // when rfc8659 decides differently; "" means the same
	}{
		{"reserved.com", "reserved.com.", Forbidden, ""},
		{"mixedcase.com", "mixedcase.com.", Forbidden, ""},
		{"critical.com", "critical.com.", Forbidden, ""},
		{"nx.critical.com", "critical.com.", Forbidden, ""},
		{"absent.com", "", Allowed, ""},
		{"example.co.uk", "", Allowed, ""},
		{"present.com", "present.com.", Allowed, ""},
		{"child.present.com", "present.com.", Allowed, ""},
		{"present.servfail.com", "present.servfail.com.", Allowed, ""},
		{"multi-crit-present.com", "multi-crit-present.com.", Allowed, ""},
		{"unknown-critical.com", "unknown-critical.com.", Forbidden, ""},
		{"unknown-critical2.com", "unknown-critical2.com.", Forbidden, Allowed}, // flag 1: critical for Boulder only
		{"unknown-noncritical.com", "unknown-noncritical.com.", Allowed, ""},
		{"present-with-parameter.com", "present-with-parameter.com.", Allowed, ""},
		{"present-with-invalid-tag.com", "present-with-invalid-tag.com.", Forbidden, ""},
		{"present-with-invalid-value.com", "present-with-invalid-value.com.", Forbidden, ""},
		{"present-dns-only.com", "present-dns-only.com.", Forbidden, ""},
		{"present-http-only.com", "present-http-only.com.", Allowed, ""},
		{"present-http-or-dns.com", "present-http-or-dns.com.", Allowed, ""},
		{"present-correct-accounturi.com", "present-correct-accounturi.com.", Allowed, ""},
		{"present-http-only-correct-accounturi.com", "present-http-only-correct-accounturi.com.", Allowed, ""},
		{"present-dns-only-correct-accounturi.com", "present-dns-only-correct-accounturi.com.", Forbidden, ""},
		{"present-http-only-incorrect-accounturi.com", "present-http-only-incorrect-accounturi.com.", Forbidden, ""},
		{"present-incorrect-accounturi.com", "present-incorrect-accounturi.com.", Forbidden, ""},
		{"present-multiple-accounturi.com", "present-multiple-accounturi.com.", Allowed, ""},
		{"unsatisfiable.com", "unsatisfiable.com.", Forbidden, ""},
		{"*.unsatisfiable.com", "unsatisfiable.com.", Forbidden, ""},
		{"*.unsatisfiable-wildcard.com", "unsatisfiable-wildcard.com.", Forbidden, ""},
		{"*.unsatisfiable-wildcard-override.com", "unsatisfiable-wildcard-override.com.", Forbidden, ""},
		{"*.satisfiable-wildcard.com", "satisfiable-wildcard.com.", Allowed, ""},
		{"*.satisfiable-multi-wildcard.com", "satisfiable-multi-wildcard.com.", Allowed, ""},
		{"*.satisfiable-wildcard-override.com", "satisfiable-wildcard-override.com.", Allowed, ""},
		{"caa-timeout.com", "", CannotDecide, ""},
		{"servfail.present.com", "", CannotDecide, ""},
	}
	for _, c := range cases {
		name, wild, err := Normalize(c.domain)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []Profile{ProfileLetsEncrypt, ProfileRFC8659} {
			want := c.want
			if p == ProfileRFC8659 && c.rfc != "" {
				want = c.rfc
			}
			d := Evaluate(Request{Name: name, Wildcard: wild, Issuer: "letsencrypt.org", AccountURI: acct, Method: "http-01", Profile: p}, climb(name))
			if d.Verdict != want || d.RelevantName != c.foundAt {
				t.Errorf("%s (%s): got %s at %q, want %s at %q: %s", c.domain, p, d.Verdict, d.RelevantName, want, c.foundAt, d.Reason)
			}
		}
	}
}
