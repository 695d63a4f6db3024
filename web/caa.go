package web

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/srekit/srekit/certs/caa"
)

// The CAA page lives at /certs/caa (nav slug "caa"; /caa redirects there).
// The server asks the resolver in SREKIT_CAA_RESOLVER (HOST:PORT), else the
// first nameserver of /etc/resolv.conf; SREKIT_CAA_TRUST_ANCHOR names a
// DS/DNSKEY file to validate DNSSEC with instead of trusting the AD bit.
// Visitors cannot pick the resolver: a public page must not become a tool
// to send DNS queries to arbitrary hosts.
func init() {
	Register(Part{
		Slug:    "caa",
		Title:   "CAA",
		Summary: "May this CA issue for this name? CAA per RFC 8659/8657, explained, with the DNSSEC status of every answer",
		Order:   60,
		Mount: func(s *Server) error {
			s.HandleFunc("GET /certs/caa", s.caaPage)
			s.HandleFunc("GET /caa", func(w http.ResponseWriter, r *http.Request) {
				u := "/certs/caa"
				if r.URL.RawQuery != "" {
					u += "?" + r.URL.RawQuery
				}
				http.Redirect(w, r, u, http.StatusFound)
			})
			s.HandleFunc("GET /api/v1/caa/check", s.caaAPICheck)
			return nil
		},
	})
}

// caaForm is the check form, as submitted (GET, so results can be linked).
type caaForm struct {
	Name, CA, Account, Method, Profile string
	Wildcard                           bool
	// Records, when given, are zone-file lines checked instead of DNS ("@"
	// is the name): a policy can be tried before it is published.
	Records string
}

// caaExample is a ready-made check over typed-in records: it needs no DNS,
// so a newcomer (or `serve --demo` without network) sees the checker work.
type caaExample struct {
	Title, URL string
}

var caaExamples = func() []caaExample {
	mk := func(title, name, ca, method, account, records string, wildcard bool) caaExample {
		q := url.Values{"name": {name}, "ca": {ca}, "records": {records}}
		if method != "" {
			q.Set("method", method)
		}
		if account != "" {
			q.Set("account", account)
		}
		if wildcard {
			q.Set("wildcard", "1")
		}
		return caaExample{title, "/certs/caa?" + q.Encode()}
	}
	return []caaExample{
		mk("the parent's policy decides for www", "www.example.com", "letsencrypt.org", "", "",
			`example.com. CAA 0 issue "letsencrypt.org"`+"\n"+`example.com. CAA 0 iodef "mailto:security@example.com"`, false),
		mk("issuewild forbids wildcards, issue still allows names", "example.com", "letsencrypt.org", "", "",
			`@ CAA 0 issue "letsencrypt.org"`+"\n"+`@ CAA 0 issuewild ";"`, true),
		mk("RFC 8657: only one account, only dns-01", "example.com", "letsencrypt.org", "http-01", "https://acme-v02.api.letsencrypt.org/acme/acct/1234",
			`@ CAA 0 issue "letsencrypt.org; accounturi=https://acme-v02.api.letsencrypt.org/acme/acct/1234; validationmethods=dns-01"`, false),
		mk("flag 1 on an unknown tag: the profiles disagree", "example.com", "letsencrypt.org", "", "",
			`@ CAA 1 tbs "unknown"`+"\n"+`@ CAA 0 issue "letsencrypt.org"`, false),
		mk("a CNAME to a name without CAA: the climb goes on at example.com, not at the target's parent", "shop.example.com", "pki.goog", "", "",
			`shop.example.com. CNAME shops.hoster.example.`+"\n"+`hoster.example. CAA 0 issue "letsencrypt.org"`+"\n"+`example.com. CAA 0 issue "pki.goog"`, false),
	}
}()

type caaView struct {
	Examples []caaExample
	Form     caaForm
	Methods  []string
	Error    string
	Decision *caa.Decision
	Climb    string // SVG
	Resolver string
	Anchors  bool
	APIURL   string
}

func caaFormFrom(r *http.Request) caaForm {
	q := r.URL.Query()
	f := caaForm{
		Name: strings.TrimSpace(q.Get("name")), CA: strings.TrimSpace(q.Get("ca")),
		Account: strings.TrimSpace(q.Get("account")), Method: q.Get("method"), Profile: q.Get("profile"),
		Wildcard: q.Get("wildcard") != "", Records: q.Get("records"),
	}
	if f.Profile == "" {
		f.Profile = string(caa.ProfileRFC8659)
	}
	return f
}

func caaResolver() (*caa.Resolver, error) {
	server := os.Getenv("SREKIT_CAA_RESOLVER")
	if server == "" {
		s, err := caa.SystemResolver()
		if err != nil {
			return nil, err
		}
		server = s
	}
	r := &caa.Resolver{Server: server, Timeout: 2 * time.Second}
	if p := os.Getenv("SREKIT_CAA_TRUST_ANCHOR"); p != "" {
		ta, err := caa.LoadTrustAnchors(p)
		if err != nil {
			return nil, fmt.Errorf("SREKIT_CAA_TRUST_ANCHOR: %w", err)
		}
		r.Anchors = ta
	}
	return r, nil
}

// caaCheck validates the form and runs the check.
func caaCheck(ctx context.Context, f caaForm) (*caa.Decision, *caa.Resolver, error) {
	if f.CA == "" {
		return nil, nil, fmt.Errorf("give the CA's issuer domain name (e.g. letsencrypt.org)")
	}
	name, wild, err := caa.Normalize(f.Name)
	if err != nil {
		return nil, nil, err
	}
	profile, err := caa.ParseProfile(f.Profile)
	if err != nil {
		return nil, nil, err
	}
	req := caa.Request{Name: name, Wildcard: wild || f.Wildcard, Issuer: strings.TrimSuffix(f.CA, "."),
		AccountURI: f.Account, Method: f.Method, Profile: profile}
	if strings.TrimSpace(f.Records) != "" {
		z, err := caa.ParseZone(strings.NewReader(f.Records), name, "the form")
		if err != nil {
			return nil, nil, err
		}
		d := caa.Evaluate(req, z.Climb(name))
		return &d, &caa.Resolver{Server: z.Source}, nil
	}
	res, err := caaResolver()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	d := res.Check(ctx, req)
	return &d, res, nil
}

func (s *Server) caaPage(w http.ResponseWriter, r *http.Request) {
	v := caaView{Examples: caaExamples, Form: caaFormFrom(r), Methods: []string{"", "dns-01", "http-01", "tls-alpn-01", "dns-account-01"}}
	if res, err := caaResolver(); err == nil {
		v.Resolver, v.Anchors = res.Server, res.Anchors != nil
	}
	if v.Form.Name != "" || v.Form.CA != "" {
		d, res, err := caaCheck(r.Context(), v.Form)
		if err != nil {
			v.Error = err.Error()
		} else {
			v.Decision = d
			v.Resolver = res.Server
			v.Climb = caaClimbSVG(*d)
			v.APIURL = "/api/v1/caa/check?" + r.URL.RawQuery
		}
	}
	s.Render(w, "caa.html", Page{Title: "CAA check", Active: "caa", Data: v})
}

func (s *Server) caaAPICheck(w http.ResponseWriter, r *http.Request) {
	d, _, err := caaCheck(r.Context(), caaFormFrom(r))
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, d)
}

// caaClimbSVG draws the climb: one box per name from the name up toward the
// TLD, coloured by what the lookup found, with alias steps beside it and the
// DNSSEC status of each answer. Where the climb stopped is plain to see.
func caaClimbSVG(d caa.Decision) string {
	const boxH, gap, left = 44, 22, 10
	rows := len(d.Climb)
	if rows == 0 {
		return ""
	}
	// The names above where the climb stopped, drawn faded: they were not
	// asked because a set (or a failure) below them already decided.
	var skipped []string
	if all := caa.ClimbNames(d.Request.Name); len(all) > rows {
		skipped = all[rows:]
	}
	skippedWhy := "not asked: the set below decides"
	if d.Climb[rows-1].Failed() {
		skippedWhy = "not asked: the failure below already means cannot decide"
	}
	// Boxes wide enough for the longest name (about 7.5 px a character at
	// 12 px) and the DNSSEC label; aliases to the right.
	boxW, aliasW := 330, 0
	for _, l := range d.Climb {
		boxW = max(boxW, len(l.Name)*15/2+130)
		for _, a := range l.Aliases {
			aliasW = max(aliasW, (len(a.Type)+len(a.Target)+3)*7)
		}
	}
	width := left + boxW + 30 + aliasW
	height := (rows+len(skipped))*(boxH+gap) + 10
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="caa-climb" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="the CAA climb">`, width, height, width, height)
	for i, l := range d.Climb {
		y := 5 + i*(boxH+gap)
		fill, what := "#f1f3f6", "no CAA records: go on to the parent"
		switch {
		case l.Failed():
			fill, what = "#fde7d9", "lookup failed: cannot decide"
		case len(l.Records) > 0 && d.Verdict == caa.Allowed:
			fill, what = "#e3f4e6", fmt.Sprintf("%d records: the relevant set (allows)", len(l.Records))
		case len(l.Records) > 0:
			fill, what = "#fbe3e1", fmt.Sprintf("%d records: the relevant set (forbids)", len(l.Records))
		case l.Rcode == "NXDOMAIN":
			what = "NXDOMAIN: no such name, an empty set"
		}
		fmt.Fprintf(&b, `<g class="caa-step" data-name="%s"><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="%s" stroke="#9aa3b2"/>`,
			html.EscapeString(l.Name), left, y, boxW, boxH, fill)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="600">%s</text>`, left+10, y+18, html.EscapeString(l.Name))
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">%s</text>`, left+10, y+34, html.EscapeString(what))
		lock := map[caa.Status]string{caa.Secure: "#137333", caa.Insecure: "#5b6475", caa.Bogus: "#b3261e", caa.Unknown: "#a15c00"}[l.DNSSEC]
		if lock == "" {
			lock = "#a15c00"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="%s">DNSSEC %s</text>`, left+boxW-105, y+18, lock, html.EscapeString(string(l.DNSSEC)))
		ax := left + boxW + 20
		for j, a := range l.Aliases {
			if j > 2 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">… %d more</text>`, ax, y+14+j*13, len(l.Aliases)-j)
				break
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">%s → %s</text>`, ax, y+14+j*13, a.Type, html.EscapeString(a.Target))
		}
		if i < rows-1 || len(skipped) > 0 {
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#9aa3b2" stroke-width="2" marker-end="url(#caa-arrow)"/>`,
				left+40, y+boxH, left+40, y+boxH+gap-2)
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#5b6475">parent</text>`, left+48, y+boxH+14)
		}
		b.WriteString(`</g>`)
	}
	for j, name := range skipped {
		y := 5 + (rows+j)*(boxH+gap)
		fmt.Fprintf(&b, `<g class="caa-skipped" opacity="0.45"><rect x="%d" y="%d" width="%d" height="%d" rx="6" fill="#fff" stroke="#9aa3b2" stroke-dasharray="4 3"/>`, left, y, boxW, boxH)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text><text x="%d" y="%d" font-size="11">%s</text></g>`, left+10, y+18, html.EscapeString(name), left+10, y+34, skippedWhy)
	}
	b.WriteString(`<defs><marker id="caa-arrow" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#9aa3b2"/></marker></defs></svg>`)
	return b.String()
}
