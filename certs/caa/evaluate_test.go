package caa

import (
	"strings"
	"testing"
)

func rec(flag uint8, tag, value string) Record { return Record{Flag: flag, Tag: tag, Value: value} }

// at builds a climb where name has the given records and the parents are empty.
func at(recs ...Record) []Lookup {
	return []Lookup{{Name: "www.example.com.", Records: recs, DNSSEC: Insecure, Rcode: "NOERROR"}}
}

const le = "letsencrypt.org"
const acct = "https://acme-v02.api.letsencrypt.org/acme/acct/1234"

func TestEvaluate(t *testing.T) {
	R, L := ProfileRFC8659, ProfileLetsEncrypt
	type tc struct {
		name   string
		req    Request
		climb  []Lookup
		want   Verdict
		reason string // substring of the reason, if set
	}
	req := func(p Profile) Request { return Request{Name: "www.example.com", Issuer: le, Profile: p} }
	wild := func(p Profile) Request { r := req(p); r.Wildcard = true; return r }
	withAcct := func(p Profile, a, m string) Request { r := req(p); r.AccountURI = a; r.Method = m; return r }
	cases := []tc{
		// Record selection and the climb (RFC 8659 section 3).
		{"no records anywhere", req(R), []Lookup{{Name: "www.example.com.", Rcode: "NOERROR"}, {Name: "example.com.", Rcode: "NOERROR"}, {Name: "com.", Rcode: "NOERROR"}}, Allowed, "no CAA records"},
		{"nxdomain is empty", req(R), []Lookup{{Name: "www.example.com.", Rcode: "NXDOMAIN"}, {Name: "example.com.", Rcode: "NOERROR"}}, Allowed, ""},
		{"parent set decides", req(R), []Lookup{{Name: "www.example.com."}, {Name: "example.com.", Records: []Record{rec(0, "issue", "other.ca")}}}, Forbidden, "example.com."},
		{"child set wins over parent", req(R), []Lookup{{Name: "www.example.com.", Records: []Record{rec(0, "issue", le)}}, {Name: "example.com.", Records: []Record{rec(0, "issue", "other.ca")}}}, Allowed, ""},
		{"failure before the set", req(R), []Lookup{{Name: "www.example.com.", Err: "SERVFAIL"}, {Name: "example.com.", Records: []Record{rec(0, "issue", le)}}}, CannotDecide, "www.example.com."},
		{"failure at the name", req(R), []Lookup{{Name: "www.example.com.", Err: "timeout"}}, CannotDecide, "timeout"},
		{"failure above the set is irrelevant", req(R), []Lookup{{Name: "www.example.com.", Records: []Record{rec(0, "issue", le)}}, {Name: "example.com.", Err: "SERVFAIL"}}, Allowed, ""},
		{"bogus answer cannot decide", req(R), []Lookup{{Name: "www.example.com.", Records: []Record{rec(0, "issue", le)}, DNSSEC: Bogus}}, CannotDecide, "bogus"},
		{"empty climb cannot decide", req(R), nil, CannotDecide, ""},
		{"records reached through CNAME", req(R), []Lookup{{Name: "www.example.com.", Aliases: []Alias{{Type: "CNAME", Owner: "www.example.com.", Target: "cdn.example.net."}}, Records: []Record{rec(0, "issue", "other.ca")}}}, Forbidden, ""},
		// Tags (RFC 8659 section 4.1).
		{"issue matches", req(R), at(rec(0, "issue", le)), Allowed, "authorizes"},
		{"issue other CA", req(R), at(rec(0, "issue", "pki.goog")), Forbidden, "no issue record"},
		{"one of several matches", req(R), at(rec(0, "issue", "pki.goog"), rec(0, "issue", le)), Allowed, ""},
		{"tag case-insensitive ISSUE", req(R), at(rec(0, "ISSUE", "pki.goog")), Forbidden, ""},
		{"tag case-insensitive Issue allows", req(R), at(rec(0, "Issue", le)), Allowed, ""},
		{"tag case-insensitive LE profile", req(L), at(rec(0, "IsSuE", "pki.goog")), Forbidden, ""},
		{"only iodef", req(R), at(rec(0, "iodef", "mailto:sec@example.com")), Allowed, "no issue property"},
		{"only issuewild, non-wildcard request", req(R), at(rec(0, "issuewild", "pki.goog")), Allowed, "no issue property"},
		{"unknown non-critical tag ignored", req(R), at(rec(0, "tbs", "x"), rec(0, "issue", le)), Allowed, ""},
		{"unknown non-critical tag alone", req(R), at(rec(0, "tbs", "x")), Allowed, ""},
		{"unknown critical tag forbids", req(R), at(rec(128, "tbs", "x"), rec(0, "issue", le)), Forbidden, "critical"},
		{"unknown critical tag LE", req(L), at(rec(128, "tbs", "x"), rec(0, "issue", le)), Forbidden, "critical"},
		{"flag 1 not critical under RFC", req(R), at(rec(1, "tbs", "x"), rec(0, "issue", le)), Allowed, ""},
		{"flag 1 critical under LE", req(L), at(rec(1, "tbs", "x"), rec(0, "issue", le)), Forbidden, "critical"},
		{"critical flag on known tag is fine", req(R), at(rec(128, "issue", le)), Allowed, ""},
		{"critical iodef is known", req(R), at(rec(128, "iodef", "mailto:a@b.c"), rec(0, "issue", le)), Allowed, ""},
		{"other flag bits ignored", req(R), at(rec(64, "tbs", "x"), rec(0, "issue", le)), Allowed, ""},
		{"critical with only unknown", req(R), at(rec(255, "future", "")), Forbidden, ""},
		// Values (RFC 8659 section 4.2).
		{"empty value forbids", req(R), at(rec(0, "issue", "")), Forbidden, ""},
		{"semicolon forbids", req(R), at(rec(0, "issue", ";")), Forbidden, ""},
		{"semicolon forbids LE", req(L), at(rec(0, "issue", ";")), Forbidden, ""},
		{"semicolon plus CA is additive", req(R), at(rec(0, "issue", ";"), rec(0, "issue", le)), Allowed, ""},
		{"malformed value forbids", req(R), at(rec(0, "issue", "%%%%%")), Forbidden, "malformed"},
		{"malformed does not block a good one", req(R), at(rec(0, "issue", "%%%%%"), rec(0, "issue", le)), Allowed, ""},
		{"leading and trailing spaces", req(R), at(rec(0, "issue", "  letsencrypt.org  ")), Allowed, ""},
		{"tab whitespace", req(R), at(rec(0, "issue", "\tletsencrypt.org\t;\taccounturi=x")), Forbidden, "account"},
		{"trailing semicolon ok", req(R), at(rec(0, "issue", "letsencrypt.org;")), Allowed, ""},
		{"trailing semicolon ok LE", req(L), at(rec(0, "issue", "letsencrypt.org; ")), Allowed, ""},
		{"trailing dot malformed", req(R), at(rec(0, "issue", "letsencrypt.org.")), Forbidden, ""},
		{"trailing dot LE", req(L), at(rec(0, "issue", "letsencrypt.org.")), Forbidden, ""},
		{"issuer case RFC", req(R), at(rec(0, "issue", "LetsEncrypt.org")), Allowed, ""},
		{"issuer case LE", req(L), at(rec(0, "issue", "LetsEncrypt.org")), Forbidden, ""},
		{"unknown parameter ignored", req(R), at(rec(0, "issue", "letsencrypt.org; policy=ev")), Allowed, ""},
		{"parameter without value malformed", req(R), at(rec(0, "issue", "letsencrypt.org; policy")), Forbidden, ""},
		{"parameter without value LE", req(L), at(rec(0, "issue", "letsencrypt.org; policy")), Forbidden, ""},
		{"hyphenated parameter RFC", req(R), at(rec(0, "issue", "letsencrypt.org; some-thing=1")), Allowed, ""},
		{"hyphenated parameter LE", req(L), at(rec(0, "issue", "letsencrypt.org; some-thing=1")), Forbidden, ""},
		{"space inside parameter value", req(R), at(rec(0, "issue", "letsencrypt.org; a=b c")), Forbidden, ""},
		{"double semicolon malformed", req(R), at(rec(0, "issue", "letsencrypt.org;; a=b")), Forbidden, ""},
		{"domain with underscore malformed", req(R), at(rec(0, "issue", "lets_encrypt.org")), Forbidden, ""},
		{"non-ASCII value", req(R), at(rec(0, "issue", "letsencrypt.org; a=é")), Forbidden, ""},
		{"equals in value allowed", req(R), at(rec(0, "issue", "letsencrypt.org; a=b=c")), Allowed, ""},
		// Wildcards (RFC 8659 section 4.3).
		{"wildcard uses issue without issuewild", wild(R), at(rec(0, "issue", le)), Allowed, ""},
		{"wildcard forbidden by issue", wild(R), at(rec(0, "issue", "pki.goog")), Forbidden, ""},
		{"issuewild allows", wild(R), at(rec(0, "issue", "pki.goog"), rec(0, "issuewild", le)), Allowed, "issuewild"},
		{"issuewild forbids despite issue", wild(R), at(rec(0, "issue", le), rec(0, "issuewild", "pki.goog")), Forbidden, "issuewild"},
		{"issuewild semicolon forbids wildcards", wild(R), at(rec(0, "issue", le), rec(0, "issuewild", ";")), Forbidden, ""},
		{"issuewild semicolon leaves names", req(R), at(rec(0, "issue", le), rec(0, "issuewild", ";")), Allowed, ""},
		{"issuewild only, wildcard", wild(R), at(rec(0, "issuewild", le)), Allowed, ""},
		{"issuewild case-insensitive tag", wild(R), at(rec(0, "IssueWild", "pki.goog"), rec(0, "issue", le)), Forbidden, ""},
		{"wildcard only iodef", wild(R), at(rec(0, "iodef", "mailto:x@y.z")), Allowed, ""},
		{"wildcard only iodef LE", wild(L), at(rec(0, "iodef", "mailto:x@y.z")), Forbidden, "Boulder refuses wildcards"},
		{"non-wildcard only iodef LE", req(L), at(rec(0, "iodef", "mailto:x@y.z")), Allowed, ""},
		{"wildcard LE issuewild", wild(L), at(rec(0, "issue", "pki.goog"), rec(0, "issuewild", le)), Allowed, ""},
		// accounturi (RFC 8657 section 3).
		{"accounturi matches", withAcct(R, acct, ""), at(rec(0, "issue", le+"; accounturi="+acct)), Allowed, ""},
		{"accounturi differs", withAcct(R, acct+"9", ""), at(rec(0, "issue", le+"; accounturi="+acct)), Forbidden, "account"},
		{"accounturi no account in request", req(R), at(rec(0, "issue", le+"; accounturi="+acct)), Forbidden, "names no account"},
		{"absent accounturi means any", withAcct(R, acct, ""), at(rec(0, "issue", le)), Allowed, ""},
		{"two accounturi never match", withAcct(R, acct, ""), at(rec(0, "issue", le+"; accounturi="+acct+"; accounturi="+acct)), Forbidden, "more than one"},
		{"two accounturi LE last wins", withAcct(L, acct, ""), at(rec(0, "issue", le+"; accounturi=https://x/1; accounturi="+acct)), Allowed, ""},
		{"accounturi one of two records", withAcct(R, acct, ""), at(rec(0, "issue", le+"; accounturi=https://x/1"), rec(0, "issue", le+"; accounturi="+acct)), Allowed, ""},
		{"accounturi case sensitive", withAcct(R, strings.ToUpper(acct), ""), at(rec(0, "issue", le+"; accounturi="+acct)), Forbidden, ""},
		{"accounturi tag case matters", withAcct(R, "https://other/2", ""), at(rec(0, "issue", le+"; AccountURI="+acct)), Allowed, ""},
		{"accounturi LE matches", withAcct(L, acct, ""), at(rec(0, "issue", le+"; accounturi="+acct)), Allowed, ""},
		{"accounturi LE differs", withAcct(L, "https://x/2", ""), at(rec(0, "issue", le+"; accounturi="+acct)), Forbidden, ""},
		// validationmethods (RFC 8657 section 4).
		{"method allowed", withAcct(R, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=dns-01")), Allowed, ""},
		{"method in list", withAcct(R, "", "http-01"), at(rec(0, "issue", le+"; validationmethods=dns-01,http-01")), Allowed, ""},
		{"method not in list", withAcct(R, "", "http-01"), at(rec(0, "issue", le+"; validationmethods=dns-01")), Forbidden, "not http-01"},
		{"method missing in request", req(R), at(rec(0, "issue", le+"; validationmethods=dns-01")), Forbidden, "names none"},
		{"methods malformed", withAcct(R, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=dns-01,,http-01")), Forbidden, "malformed"},
		{"methods LE: match before an empty item", withAcct(L, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=dns-01,,http-01")), Allowed, ""},
		{"methods LE: empty item before the match", withAcct(L, "", "http-01"), at(rec(0, "issue", le+"; validationmethods=dns-01,,http-01")), Forbidden, "Boulder rejects"},
		{"methods LE rejects odd item", withAcct(L, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=http_01,dns-01")), Forbidden, "Boulder rejects"},
		{"methods LE skips unknown names", withAcct(L, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=email-01,dns-01")), Allowed, ""},
		{"methods empty value", withAcct(R, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=")), Forbidden, ""},
		{"unknown method name RFC", withAcct(R, "", "email-01"), at(rec(0, "issue", le+"; validationmethods=email-01")), Allowed, ""},
		{"unknown method name LE", withAcct(L, "", "email-01"), at(rec(0, "issue", le+"; validationmethods=email-01")), Forbidden, ""},
		{"account and method both", withAcct(R, acct, "dns-01"), at(rec(0, "issue", le+"; accounturi="+acct+"; validationmethods=dns-01")), Allowed, ""},
		{"account right method wrong", withAcct(R, acct, "tls-alpn-01"), at(rec(0, "issue", le+"; accounturi="+acct+"; validationmethods=dns-01")), Forbidden, ""},
		{"duplicate validationmethods RFC", withAcct(R, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=http-01; validationmethods=dns-01")), Forbidden, ""},
		{"duplicate validationmethods LE last wins", withAcct(L, "", "dns-01"), at(rec(0, "issue", le+"; validationmethods=http-01; validationmethods=dns-01")), Allowed, ""},
		{"parameters on other CA irrelevant", withAcct(R, acct, "dns-01"), at(rec(0, "issue", "pki.goog; accounturi="+acct)), Forbidden, ""},
		{"wildcard with methods in issuewild", Request{Name: "example.com", Wildcard: true, Issuer: le, Method: "dns-01", Profile: R}, at(rec(0, "issuewild", le+"; validationmethods=dns-01")), Allowed, ""},
	}
	if len(cases) < 60 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Evaluate(c.req, c.climb)
			if d.Verdict != c.want {
				t.Fatalf("verdict %q, want %q; reason: %s; records: %+v", d.Verdict, c.want, d.Reason, d.Records)
			}
			if c.reason != "" && !strings.Contains(d.Reason, c.reason) && !strings.Contains(recordWhys(d), c.reason) {
				t.Errorf("reason %q (records: %s) does not mention %q", d.Reason, recordWhys(d), c.reason)
			}
			if d.Verdict == CannotDecide && len(c.climb) > 0 && !strings.Contains(strings.Join(d.Notes, " "), "3.2.2.8") {
				t.Errorf("cannot decide without the Baseline Requirements note: %v", d.Notes)
			}
		})
	}
}

func recordWhys(d Decision) string {
	var s []string
	for _, r := range d.Records {
		s = append(s, r.Why)
	}
	return strings.Join(s, " | ")
}

func TestEvaluateProfileNotes(t *testing.T) {
	cases := []struct {
		recs []Record
		req  Request
		want string
	}{
		{[]Record{rec(0, "issue", "LetsEncrypt.org")}, Request{Issuer: le}, "case-insensitively"},
		{[]Record{rec(0, "issue", le+"; a-b=1")}, Request{Issuer: le}, "Boulder skips"},
		{[]Record{rec(0, "issue", le+"; accounturi=a; accounturi=b")}, Request{Issuer: le, AccountURI: "b"}, "2 accounturi"},
		{[]Record{rec(1, "tbs", "x"), rec(0, "issue", le)}, Request{Issuer: le}, "flags 1"},
	}
	for _, c := range cases {
		d := Evaluate(c.req, at(c.recs...))
		all := strings.Join(d.Notes, "\n")
		if !strings.Contains(all, c.want) {
			t.Errorf("%v: notes %q lack %q", c.recs, all, c.want)
		}
		if !strings.Contains(all, "profile decides") {
			t.Errorf("%v: notes %q do not say the other profile decides differently", c.recs, all)
		}
	}
	// Same decision under both: no "profile decides" note.
	d := Evaluate(Request{Issuer: le}, at(rec(0, "issue", le)))
	if strings.Contains(strings.Join(d.Notes, " "), "profile decides") {
		t.Errorf("unexpected profile note: %v", d.Notes)
	}
}

func TestEvaluateIodefAndStatus(t *testing.T) {
	climb := []Lookup{
		{Name: "a.example.com.", DNSSEC: Secure},
		{Name: "example.com.", DNSSEC: Insecure, Records: []Record{rec(0, "issue", le), rec(0, "iodef", "mailto:security@example.com")}},
	}
	d := Evaluate(Request{Name: "a.example.com", Issuer: le}, climb)
	if len(d.Iodef) != 1 || d.Iodef[0] != "mailto:security@example.com" {
		t.Errorf("iodef %v", d.Iodef)
	}
	if d.DNSSEC != Insecure {
		t.Errorf("dnssec %q, want the weakest, insecure", d.DNSSEC)
	}
	if d.RelevantName != "example.com." || len(d.Relevant) != 2 {
		t.Errorf("relevant %q %v", d.RelevantName, d.Relevant)
	}
}

func TestParseIssueValue(t *testing.T) {
	good := map[string]IssueValue{
		"ca.example":                  {Domain: "ca.example"},
		" ca.example ; a=1; b-c=x=y ": {Domain: "ca.example", Params: []Param{{"a", "1"}, {"b-c", "x=y"}}},
		";":                           {},
		"":                            {},
		"ca.example;":                 {Domain: "ca.example"},
		"; a=1":                       {Params: []Param{{"a", "1"}}},
		"ca.example; a =  b":          {Domain: "ca.example", Params: []Param{{"a", "b"}}},
	}
	for in, want := range good {
		got, err := ParseIssueValue(in)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got.Domain != want.Domain || len(got.Params) != len(want.Params) {
			t.Errorf("%q: got %+v want %+v", in, got, want)
			continue
		}
		for i := range got.Params {
			if got.Params[i] != want.Params[i] {
				t.Errorf("%q: param %d got %+v want %+v", in, i, got.Params[i], want.Params[i])
			}
		}
	}
	for _, in := range []string{"ca..example", "-ca.example", "ca.example.", "ca example", "ca.example; a", "ca.example; a=1;", "ca.example; -a=1", "ca.example; a=b c", "ca.example;; a=1", "ca.example; a=\x7f", "\"ca.example\""} {
		if v, err := ParseIssueValue(in); err == nil {
			t.Errorf("%q: parsed as %+v, want an error", in, v)
		}
	}
}

func TestNormalize(t *testing.T) {
	good := map[string]struct {
		name string
		wild bool
	}{
		"Example.COM.":      {"example.com", false},
		"*.example.com":     {"example.com", true},
		" www.example.com ": {"www.example.com", false},
		"_acme.example.com": {"_acme.example.com", false},
	}
	for in, want := range good {
		n, w, err := Normalize(in)
		if err != nil || n != want.name || w != want.wild {
			t.Errorf("%q: got %q %v %v, want %q %v", in, n, w, err, want.name, want.wild)
		}
	}
	for _, in := range []string{"", ".", "a..b", "*.", "192.0.2.1", "2001:db8::1", "a b.com", "*.*.example.com", "x.*.example.com", ".example.com"} {
		if n, _, err := Normalize(in); err == nil {
			t.Errorf("%q: accepted as %q", in, n)
		}
	}
	if got := strings.Join(ClimbNames("a.b.example.com"), " "); got != "a.b.example.com. b.example.com. example.com. com." {
		t.Errorf("climb names %q", got)
	}
}
