package caa

import (
	"fmt"
	"net/url"
	"strings"
)

// Profile selects how record values are read where implementations differ.
type Profile string

const (
	// ProfileRFC8659 reads records exactly as RFC 8659 and RFC 8657 say.
	ProfileRFC8659 Profile = "rfc8659"
	// ProfileLetsEncrypt reads records as Let's Encrypt's Boulder does: flag
	// 1 counts as critical, hyphenated parameter tags make a record
	// unusable, the issuer domain is compared byte for byte, and of duplicate
	// parameters the last one wins.
	ProfileLetsEncrypt Profile = "letsencrypt"
)

// ParseProfile accepts "rfc8659" (or "") and "letsencrypt".
func ParseProfile(s string) (Profile, error) {
	switch strings.ToLower(s) {
	case "", "rfc8659", "rfc":
		return ProfileRFC8659, nil
	case "letsencrypt", "boulder", "le":
		return ProfileLetsEncrypt, nil
	}
	return "", fmt.Errorf("unknown profile %q: want rfc8659 or letsencrypt", s)
}

func (p Profile) other() Profile {
	if p == ProfileLetsEncrypt {
		return ProfileRFC8659
	}
	return ProfileLetsEncrypt
}

// Record is one CAA resource record (RFC 8659 section 4.1).
type Record struct {
	Flag  uint8  `json:"flag"`
	Tag   string `json:"tag"`
	Value string `json:"value"`
}

// String is the record's presentation format: 0 issue "letsencrypt.org".
func (r Record) String() string {
	return fmt.Sprintf("%d %s %q", r.Flag, r.Tag, r.Value)
}

// Status is the DNSSEC status of one answer (RFC 4035 section 4.3).
type Status string

const (
	Secure   Status = "secure"   // validated to a trust anchor
	Insecure Status = "insecure" // provably unsigned (or no anchor covers it)
	Bogus    Status = "bogus"    // signed but failing validation
	Unknown  Status = "unknown"  // nobody validated it
)

// Alias is one CNAME or DNAME step followed within a lookup.
type Alias struct {
	Type   string `json:"type"` // CNAME or DNAME
	Owner  string `json:"owner"`
	Target string `json:"target"`
	DNSSEC Status `json:"dnssec,omitempty"`
}

// Lookup is the answer to the CAA query for one name on the climb.
type Lookup struct {
	// Name is the name queried (a name on the climb, not an alias target).
	Name string `json:"name"`
	// Aliases are the CNAME/DNAME steps followed to reach the records.
	Aliases []Alias `json:"aliases,omitempty"`
	// Rcode is the final response code ("NOERROR", "NXDOMAIN", "SERVFAIL", ...),
	// empty when no response arrived.
	Rcode string `json:"rcode,omitempty"`
	// Records are the CAA records found (at the end of the alias chain).
	Records []Record `json:"records"`
	// Err says why the lookup failed; a failed lookup decides nothing.
	Err string `json:"error,omitempty"`
	// DNSSEC is the status of the answer.
	DNSSEC Status `json:"dnssec"`
	// DNSSECDetail says how the status was established.
	DNSSECDetail string `json:"dnssec_detail,omitempty"`
	// TCP is true when the answer came over TCP (UDP answer truncated).
	TCP bool `json:"tcp,omitempty"`
	// Server is the address that answered.
	Server string `json:"server,omitempty"`
	// Millis is how long the lookup took, in milliseconds.
	Millis float64 `json:"ms"`
	// Cached is true when the answer came from the Resolver's Cache (or
	// was shared with a concurrent lookup of the same name).
	Cached bool `json:"cached,omitempty"`

	ttl uint32 // for the cache: the smallest TTL seen
}

// Failed reports whether this lookup cannot be relied on: it got no usable
// answer, or its DNSSEC status is bogus.
func (l Lookup) Failed() bool { return l.Err != "" || l.DNSSEC == Bogus }

// Request is what a CA asks: may ISSUER issue for Name?
type Request struct {
	// Name is the domain name in the certificate, without a "*." prefix.
	Name string `json:"name"`
	// Wildcard is true for a wildcard certificate (*.Name).
	Wildcard bool `json:"wildcard,omitempty"`
	// Issuer is the CA's issuer domain name, e.g. "letsencrypt.org".
	Issuer string `json:"issuer"`
	// AccountURI is the ACME account URI of the applicant (RFC 8657 section 3).
	AccountURI string `json:"account_uri,omitempty"`
	// Method is the validation method used (RFC 8657 section 4), e.g. "dns-01".
	Method string `json:"method,omitempty"`
	// Profile selects how records are read; ProfileRFC8659 when empty.
	Profile Profile `json:"profile"`
}

// Verdict is the answer to a Request.
type Verdict string

const (
	Allowed      Verdict = "allowed"
	Forbidden    Verdict = "forbidden"
	CannotDecide Verdict = "cannot decide"
)

// RecordVerdict says what one record of the relevant set meant for the request.
type RecordVerdict struct {
	Record Record `json:"record"`
	// Role: "used" (it decided), "ignored" (issuewild on a non-wildcard
	// request, or issue when issuewild is present), "critical" (an unknown
	// critical tag), "iodef", "unknown" (an unknown non-critical tag).
	Role string `json:"role"`
	// Authorizes is true when the record allows the request.
	Authorizes bool `json:"authorizes"`
	// Why explains the verdict in one sentence.
	Why string `json:"why"`
	// Parsed is the parsed value of an issue or issuewild record, when it parses.
	Parsed *IssueValue `json:"parsed,omitempty"`
}

// Decision is the result of Evaluate.
type Decision struct {
	Request Request `json:"request"`
	Verdict Verdict `json:"decision"`
	Reason  string  `json:"reason"`
	// RelevantName is the name on the climb whose CAA set decides (empty when
	// no set was found or a lookup failed first).
	RelevantName string `json:"relevant_name,omitempty"`
	// Relevant is the relevant record set (RFC 8659 section 3).
	Relevant []Record `json:"relevant,omitempty"`
	// Records is a verdict for each record of the relevant set.
	Records []RecordVerdict `json:"records,omitempty"`
	// Iodef lists the iodef URLs of the relevant set (RFC 8659 section 4.4).
	Iodef []string `json:"iodef,omitempty"`
	// Climb is every lookup made, from the name toward the root.
	Climb []Lookup `json:"climb"`
	// DNSSEC summarises the DNSSEC status of the lookups that mattered.
	DNSSEC Status `json:"dnssec"`
	// Notes explain things worth knowing: the Baseline Requirements rule on
	// lookup failures, where the other profile decides differently, and
	// records that only one profile accepts.
	Notes []string `json:"notes,omitempty"`
}

// brNote is CA/Browser Forum Baseline Requirements section 3.2.2.8 on lookup
// failures, which a "cannot decide" must explain.
const brNote = "CA/Browser Forum Baseline Requirements 3.2.2.8: a CA may treat a CAA lookup failure as permission to issue only if the failure is outside its own infrastructure, the lookup was retried at least once, and the domain's zone has no DNSSEC validation chain to the ICANN root; otherwise it must not issue. srekit cannot know all three, so a failed lookup means: do not issue."

// Evaluate decides a request over the lookups of the climb (in order: the
// name, its parent, ... up to the top-level domain). It does no I/O.
//
// RFC 8659 section 3: the relevant set is the first non-empty CAA set on the
// climb; the climb of a name continues from its parent, not from an alias
// target. A failed lookup met before the relevant set means no decision.
func Evaluate(req Request, climb []Lookup) Decision {
	if req.Profile == "" {
		req.Profile = ProfileRFC8659
	}
	d := decide(req, climb)
	// Where the other profile decides differently, say why (issue item 6).
	if d.RelevantName != "" {
		oreq := req
		oreq.Profile = req.Profile.other()
		od := decide(oreq, climb)
		if od.Verdict != d.Verdict {
			d.Notes = append(d.Notes, fmt.Sprintf("the %s profile decides %q here: %s", oreq.Profile, od.Verdict, od.Reason))
		}
		d.Notes = append(d.Notes, profileDifferences(req, d.Relevant)...)
	}
	return d
}

func decide(req Request, climb []Lookup) Decision {
	d := Decision{Request: req, Climb: climb, DNSSEC: Unknown}
	var statuses []Status
	for _, l := range climb {
		statuses = append(statuses, l.DNSSEC)
		for _, a := range l.Aliases {
			if a.DNSSEC != "" {
				statuses = append(statuses, a.DNSSEC)
			}
		}
		if l.Failed() {
			d.DNSSEC = worst(statuses)
			d.Verdict = CannotDecide
			why := l.Err
			if why == "" {
				why = "the answer failed DNSSEC validation (bogus)"
				if l.DNSSECDetail != "" {
					why += ": " + l.DNSSECDetail
				}
			}
			d.Reason = fmt.Sprintf("the CAA lookup for %s failed (%s), so the relevant record set is unknown and a CA must not issue", l.Name, why)
			d.Notes = append(d.Notes, brNote)
			return d
		}
		if len(l.Records) > 0 {
			d.DNSSEC = worst(statuses)
			d.RelevantName = l.Name
			d.Relevant = l.Records
			evaluateSet(&d, req)
			return d
		}
	}
	d.DNSSEC = worst(statuses)
	d.Verdict = Allowed
	if len(climb) == 0 {
		d.Verdict = CannotDecide
		d.Reason = "no lookups were made"
		return d
	}
	d.Reason = fmt.Sprintf("no CAA records at %s or any parent: any CA may issue (RFC 8659 section 3)", climb[0].Name)
	return d
}

// worst orders statuses bogus < unknown < insecure < secure and returns the
// weakest: a chain is only as secure as its weakest answer.
func worst(ss []Status) Status {
	rank := map[Status]int{Bogus: 0, Unknown: 1, Insecure: 2, Secure: 3}
	w := Secure
	if len(ss) == 0 {
		return Unknown
	}
	for _, s := range ss {
		if _, ok := rank[s]; !ok {
			s = Unknown
		}
		if rank[s] < rank[w] {
			w = s
		}
	}
	return w
}

// critical reports whether a record's flags mark it critical: bit 128 per
// RFC 8659 section 4.1; Boulder also treats bit 1 as critical, because RFC
// 6844 was widely misread as putting the critical flag there.
func critical(p Profile, flag uint8) bool {
	if p == ProfileLetsEncrypt {
		return flag&(128|1) != 0
	}
	return flag&128 != 0
}

func evaluateSet(d *Decision, req Request) {
	p := req.Profile
	var issue, wild []int
	var crit []string
	d.Records = make([]RecordVerdict, len(d.Relevant))
	for i, r := range d.Relevant {
		rv := RecordVerdict{Record: r}
		// RFC 8659 section 4.1: matching of tags is case-insensitive.
		switch strings.ToLower(r.Tag) {
		case "issue":
			issue = append(issue, i)
		case "issuewild":
			wild = append(wild, i)
		case "iodef":
			rv.Role = "iodef"
			d.Iodef = append(d.Iodef, r.Value)
			if _, err := ParseIodef(r.Value); err != nil {
				rv.Why = "incident reports would go here, but " + err.Error()
			} else {
				rv.Why = "where a CA may report requests that break this policy (RFC 8659 section 4.4)"
			}
		default:
			if critical(p, r.Flag) {
				rv.Role = "critical"
				rv.Why = fmt.Sprintf("unknown tag %q with the critical flag set (flags %d): a CA must not issue (RFC 8659 section 4.1)", r.Tag, r.Flag)
				if r.Flag&128 == 0 {
					rv.Why = fmt.Sprintf("unknown tag %q with flags %d: Boulder treats bit 1 as the critical flag too", r.Tag, r.Flag)
				}
				crit = append(crit, r.Tag)
			} else {
				rv.Role = "unknown"
				rv.Why = fmt.Sprintf("unknown tag %q without the critical flag: ignored (RFC 8659 section 4.1)", r.Tag)
			}
		}
		d.Records[i] = rv
	}
	if len(crit) > 0 {
		d.Verdict = Forbidden
		d.Reason = fmt.Sprintf("the relevant set at %s has an unknown critical property (%s): no CA may issue (RFC 8659 section 4.1)", d.RelevantName, strings.Join(crit, ", "))
		// Still explain the issue records below.
	}
	// RFC 8659 section 4.3: for a wildcard, any issuewild decides and issue is
	// ignored; for a non-wildcard, issuewild is ignored.
	use, ignore := issue, wild
	kind := "issue"
	if req.Wildcard && len(wild) > 0 {
		use, ignore = wild, issue
		kind = "issuewild"
	}
	for _, i := range ignore {
		rv := &d.Records[i]
		rv.Role = "ignored"
		if req.Wildcard {
			rv.Why = "issue properties are ignored for a wildcard when the set has issuewild (RFC 8659 section 4.3)"
		} else {
			rv.Why = "issuewild applies to wildcard certificates only (RFC 8659 section 4.3)"
		}
	}
	authorized := false
	for _, i := range use {
		rv := &d.Records[i]
		rv.Role = "used"
		rv.Authorizes, rv.Why, rv.Parsed = authorizes(req, d.Relevant[i])
		if rv.Authorizes {
			authorized = true
		}
	}
	if len(crit) > 0 {
		return
	}
	switch {
	case len(use) == 0 && req.Wildcard && p == ProfileLetsEncrypt:
		// Boulder (va/caa.go, validateCAA) returns early with "allowed" for
		// a set without issue records only when the name is not a
		// wildcard; for a wildcard it searches the empty issue list, finds
		// nothing and refuses.
		d.Verdict = Forbidden
		d.Reason = fmt.Sprintf("the relevant set at %s has neither issue nor issuewild properties; RFC 8659 lets any CA issue, but Boulder refuses wildcards in this case", d.RelevantName)
	case len(use) == 0:
		d.Verdict = Allowed
		d.Reason = fmt.Sprintf("the relevant set at %s has no %s property, so it does not restrict issuance (RFC 8659 section 3)", d.RelevantName, kind)
	case authorized:
		d.Verdict = Allowed
		d.Reason = fmt.Sprintf("an %s record at %s authorizes %s", kind, d.RelevantName, req.Issuer)
	default:
		d.Verdict = Forbidden
		d.Reason = fmt.Sprintf("no %s record at %s authorizes %s", kind, d.RelevantName, describeRequest(req))
	}
}

func describeRequest(req Request) string {
	s := req.Issuer
	if req.AccountURI != "" {
		s += " for account " + req.AccountURI
	}
	if req.Method != "" {
		s += " with " + req.Method
	}
	return s
}

// authorizes decides one issue/issuewild record for the request.
func authorizes(req Request, r Record) (bool, string, *IssueValue) {
	if req.Profile == ProfileLetsEncrypt {
		return authorizesBoulder(req, r)
	}
	v, err := ParseIssueValue(r.Value)
	if err != nil {
		// RFC 8659 section 4.2: a malformed value is treated like an empty
		// issuer-domain-name: it authorizes no CA.
		return false, "malformed value authorizes nobody (RFC 8659 section 4.2): " + err.Error(), nil
	}
	if v.Domain == "" {
		return false, "no issuer domain: this record authorizes nobody (RFC 8659 section 4.2)", &v
	}
	// Domain names compare case-insensitively (RFC 4343).
	if !strings.EqualFold(v.Domain, req.Issuer) {
		return false, fmt.Sprintf("names issuer %s, not %s", v.Domain, req.Issuer), &v
	}
	// RFC 8657 section 3: accounturi.
	acc := v.Param("accounturi")
	switch {
	case len(acc) > 1:
		return false, "has more than one accounturi parameter, so it can match no account (RFC 8657 section 3)", &v
	case len(acc) == 1 && req.AccountURI == "":
		return false, fmt.Sprintf("is limited to account %s and the request names no account (RFC 8657 section 3)", acc[0]), &v
	case len(acc) == 1 && acc[0] != req.AccountURI:
		return false, fmt.Sprintf("is limited to account %s, not %s (RFC 8657 section 3)", acc[0], req.AccountURI), &v
	}
	// RFC 8657 section 4: validationmethods, an allow-list.
	vm := v.Param("validationmethods")
	switch {
	case len(vm) > 1:
		return false, "has more than one validationmethods parameter; srekit treats that like a duplicate accounturi: it matches nothing (RFC 8657 does not say)", &v
	case len(vm) == 1:
		ms, err := ParseValidationMethods(vm[0])
		if err != nil {
			return false, "validationmethods is malformed, so it allows no method (RFC 8657 section 4): " + err.Error(), &v
		}
		if req.Method == "" {
			return false, fmt.Sprintf("allows only validation methods %s and the request names none (RFC 8657 section 4)", vm[0]), &v
		}
		if !contains(ms, req.Method) {
			return false, fmt.Sprintf("allows validation methods %s, not %s (RFC 8657 section 4)", vm[0], req.Method), &v
		}
	}
	return true, "authorizes " + describeRequest(req), &v
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// authorizesBoulder follows Boulder's va/caa.go: parseCAARecord, then
// caaDomainMatches (exact string equality), caaAccountURIMatches and
// caaValidationMethodMatches over a map of parameters (the last duplicate
// wins).
func authorizesBoulder(req Request, r Record) (bool, string, *IssueValue) {
	v, err := ParseIssueValueBoulder(r.Value)
	if err != nil {
		return false, "Boulder skips a record it cannot parse: " + err.Error(), nil
	}
	if v.Domain != req.Issuer {
		if strings.EqualFold(v.Domain, req.Issuer) {
			return false, fmt.Sprintf("names issuer %s; Boulder compares issuer domains byte for byte, so %s does not match", v.Domain, req.Issuer), &v
		}
		if v.Domain == "" {
			return false, "no issuer domain: this record authorizes nobody", &v
		}
		return false, fmt.Sprintf("names issuer %s, not %s", v.Domain, req.Issuer), &v
	}
	last := func(tag string) (string, bool) {
		vs := v.Param(tag)
		if len(vs) == 0 {
			return "", false
		}
		return vs[len(vs)-1], true
	}
	if acc, ok := last("accounturi"); ok {
		if _, err := url.Parse(acc); err != nil {
			return false, fmt.Sprintf("accounturi %q is not a URL", acc), &v
		}
		if acc != req.AccountURI {
			return false, fmt.Sprintf("is limited to account %s, not %q", acc, req.AccountURI), &v
		}
	}
	if vm, ok := last("validationmethods"); ok {
		// Boulder walks the list in order: an item that is not
		// 1*(ALPHA / DIGIT / "-") rejects the record, the request's method
		// accepts it, and method names it does not know are skipped.
		match, rejected, bad := false, false, ""
		for _, m := range strings.Split(vm, ",") {
			if !isMethodName(m) {
				rejected, bad = true, m
				break
			}
			if boulderChallenges[m] && m == req.Method {
				match = true
				break
			}
		}
		if rejected {
			return false, fmt.Sprintf("validationmethods %q has an item %q that is not letters, digits and hyphens before the method %q: Boulder rejects the record", vm, bad, req.Method), &v
		}
		if !match {
			return false, fmt.Sprintf("allows validation methods %s, not %q", vm, req.Method), &v
		}
	}
	return true, "authorizes " + describeRequest(req), &v
}

func isMethodName(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		if !isAlnum(m[i]) && m[i] != '-' {
			return false
		}
	}
	return true
}

// profileDifferences lists the records of the relevant set that the two
// profiles read differently (issue item 6): hyphenated parameter tags, issuer
// domain case, duplicate parameters and flag 1.
func profileDifferences(req Request, set []Record) []string {
	var notes []string
	for _, r := range set {
		tag := strings.ToLower(r.Tag)
		if tag != "issue" && tag != "issuewild" {
			if tag != "iodef" && r.Flag&1 != 0 && r.Flag&128 == 0 {
				notes = append(notes, fmt.Sprintf("profiles differ on %s: flags %d make the unknown tag critical for Boulder (letsencrypt) but not for RFC 8659", r, r.Flag))
			}
			continue
		}
		rv, rerr := ParseIssueValue(r.Value)
		bv, berr := ParseIssueValueBoulder(r.Value)
		if berr == nil && rerr != nil {
			notes = append(notes, fmt.Sprintf("profiles differ on %s: RFC 8659 finds it malformed (%v) but Boulder accepts it", r, rerr))
		}
		if rerr == nil && berr != nil {
			notes = append(notes, fmt.Sprintf("profiles differ on %s: RFC 8659 accepts it but Boulder skips it (%v)", r, berr))
		}
		if berr == nil && req.Issuer != "" && bv.Domain != req.Issuer && strings.EqualFold(bv.Domain, req.Issuer) {
			notes = append(notes, fmt.Sprintf("profiles differ on %s: issuer %s matches %s case-insensitively under RFC 8659 but not under Boulder's exact comparison", r, bv.Domain, req.Issuer))
		}
		if rerr == nil {
			seen := map[string]int{}
			for _, p := range rv.Params {
				seen[p.Tag]++
			}
			for _, t := range []string{"accounturi", "validationmethods"} {
				if seen[t] > 1 {
					notes = append(notes, fmt.Sprintf("profiles differ on %s: %d %s parameters; RFC 8659/8657 match nothing, Boulder uses the last one", r, seen[t], t))
				}
			}
		}
	}
	return notes
}
