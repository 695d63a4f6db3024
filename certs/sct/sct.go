// Package sct audits the Signed Certificate Timestamps a TLS server presents:
// it collects them from the certificate's extension, the TLS extension and a
// stapled OCSP response, verifies each against its log's key from a log
// list, and evaluates the set against the Chrome and Apple CT policies.
//
// This is an audit, not enforcement: the log lists and policies are written
// for browsers that update them every few weeks; a client outside a browser
// that enforced CT from a stale list would break when logs are retired or
// added, which is why srekit reports rather than refuses.
package sct

import (
	"context"
	"crypto/tls"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	ct "github.com/google/certificate-transparency-go"
	"github.com/google/certificate-transparency-go/ctutil"
	cttls "github.com/google/certificate-transparency-go/tls"
	ctx509 "github.com/google/certificate-transparency-go/x509"
	"golang.org/x/crypto/ocsp"

	srekitct "github.com/srekit/srekit/certs/ct"
)

// Source says how an SCT reached the client.
type Source string

const (
	Embedded Source = "embedded" // X.509v3 extension of the certificate
	TLSExt   Source = "tls"      // signed_certificate_timestamp TLS extension
	OCSP     Source = "ocsp"     // stapled OCSP response extension
)

var oidOCSPSCT = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 5}

// SCT is one audited timestamp.
type SCT struct {
	Source    Source    `json:"source"`
	LogID     string    `json:"log_id"` // base64
	Log       string    `json:"log,omitempty"`
	Operator  string    `json:"operator,omitempty"`
	LogState  string    `json:"log_state,omitempty"`
	LogAPI    string    `json:"log_api,omitempty"`
	Timestamp time.Time `json:"timestamp"`
	Valid     bool      `json:"valid"`
	Error     string    `json:"error,omitempty"`

	info *srekitct.LogInfo
}

// Policy is the verdict of one CT policy.
type Policy struct {
	Name      string   `json:"name"`
	Compliant bool     `json:"compliant"`
	Reasons   []string `json:"reasons"`
}

// Report is the audit of one endpoint.
type Report struct {
	Host       string    `json:"host"`
	Subject    string    `json:"subject"`
	Issuer     string    `json:"issuer"`
	DNSNames   []string  `json:"dns_names"`
	NotBefore  time.Time `json:"not_before"`
	NotAfter   time.Time `json:"not_after"`
	SCTs       []SCT     `json:"scts"`
	Chrome     Policy    `json:"chrome"`
	Apple      Policy    `json:"apple"`
	CheckedAt  time.Time `json:"checked_at"`
	LogListAge string    `json:"log_list_age,omitempty"`
}

// Check connects to addr (host:port) with TLS, asking for SCTs and a stapled
// OCSP response, and audits what the server presents. cfg may be nil; its
// ServerName defaults to the host.
func Check(ctx context.Context, addr string, cfg *tls.Config, ll *srekitct.LogList) (*Report, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	cfg = cfg.Clone()
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	d := &tls.Dialer{Config: cfg, NetDialer: &net.Dialer{Timeout: 15 * time.Second}}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("TLS connect to %s: %w", addr, err)
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	var chain [][]byte
	for _, c := range cs.PeerCertificates {
		chain = append(chain, c.Raw)
	}
	r, err := Audit(chain, cs.SignedCertificateTimestamps, cs.OCSPResponse, ll, time.Now())
	if err != nil {
		return nil, err
	}
	r.Host = addr
	return r, nil
}

// Audit verifies the SCTs of a served chain (leaf first) and evaluates the policies at now.
func Audit(chainDER [][]byte, tlsSCTs [][]byte, ocspResp []byte, ll *srekitct.LogList, now time.Time) (*Report, error) {
	if len(chainDER) == 0 {
		return nil, errors.New("no certificate presented")
	}
	var chain []*ctx509.Certificate
	for i, der := range chainDER {
		c, err := ctx509.ParseCertificate(der)
		if ctx509.IsFatal(err) {
			return nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		chain = append(chain, c)
	}
	leaf := chain[0]
	r := &Report{Subject: leaf.Subject.String(), Issuer: leaf.Issuer.String(), DNSNames: leaf.DNSNames,
		NotBefore: leaf.NotBefore.UTC(), NotAfter: leaf.NotAfter.UTC(), CheckedAt: now.UTC()}
	if !ll.Timestamp.IsZero() {
		r.LogListAge = now.Sub(ll.Timestamp).Round(time.Hour).String()
	}
	for _, s := range leaf.SCTList.SCTList {
		r.SCTs = append(r.SCTs, verify(Embedded, s.Val, chain, ll))
	}
	for _, s := range tlsSCTs {
		r.SCTs = append(r.SCTs, verify(TLSExt, s, chain, ll))
	}
	if len(ocspResp) > 0 {
		var issuer *ctx509.Certificate
		if len(chain) > 1 {
			issuer = chain[1]
		}
		scts, err := ocspSCTs(ocspResp, chainDER, issuer != nil)
		if err != nil {
			r.SCTs = append(r.SCTs, SCT{Source: OCSP, Error: err.Error()})
		}
		for _, s := range scts {
			r.SCTs = append(r.SCTs, verify(OCSP, s, chain, ll))
		}
	}
	r.Chrome = chromePolicy(r, now)
	r.Apple = applePolicy(r, now)
	return r, nil
}

// ocspSCTs extracts the SCT list from a stapled OCSP response.
func ocspSCTs(resp []byte, chain [][]byte, haveIssuer bool) ([][]byte, error) {
	var parsed *ocsp.Response
	var err error
	if haveIssuer {
		iss, perr := parseStd(chain[1])
		if perr == nil {
			parsed, err = ocsp.ParseResponse(resp, iss)
		} else {
			parsed, err = ocsp.ParseResponse(resp, nil)
		}
	} else {
		parsed, err = ocsp.ParseResponse(resp, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("stapled OCSP response: %w", err)
	}
	for _, e := range parsed.Extensions {
		if e.Id.Equal(oidOCSPSCT) {
			var list []byte
			if _, err := asn1.Unmarshal(e.Value, &list); err != nil {
				return nil, fmt.Errorf("OCSP SCT extension: %w", err)
			}
			return SplitList(list)
		}
	}
	return nil, nil
}

// SplitList splits a TLS SignedCertificateTimestampList into serialized SCTs.
func SplitList(b []byte) ([][]byte, error) {
	if len(b) < 2 || int(binary.BigEndian.Uint16(b)) != len(b)-2 {
		return nil, errors.New("SCT list: bad length")
	}
	b = b[2:]
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 2 {
			return out, errors.New("SCT list: truncated")
		}
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n || n == 0 {
			return out, errors.New("SCT list: truncated SCT")
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out, nil
}

func verify(src Source, raw []byte, chain []*ctx509.Certificate, ll *srekitct.LogList) SCT {
	out := SCT{Source: src}
	var s ct.SignedCertificateTimestamp
	rest, err := cttls.Unmarshal(raw, &s)
	if err != nil || len(rest) != 0 {
		out.Error = "undecodable SCT"
		return out
	}
	out.LogID = b64(s.LogID.KeyID[:])
	out.Timestamp = time.UnixMilli(int64(s.Timestamp)).UTC()
	l := ll.Find(s.LogID.KeyID)
	if l == nil {
		out.Error = "log not in the log list"
		return out
	}
	out.info = l
	out.Log, out.Operator, out.LogState, out.LogAPI = l.Description, l.Operator, l.State, string(l.Kind)
	if src == Embedded && len(chain) < 2 {
		out.Error = "embedded SCT needs the issuer certificate, which the server did not send"
		return out
	}
	if err := ctutil.VerifySCT(l.PublicKey, chain, &s, src == Embedded); err != nil {
		out.Error = "signature does not verify: " + err.Error()
		return out
	}
	if out.Timestamp.After(time.Now().Add(time.Minute)) {
		out.Error = "timestamp in the future"
		return out
	}
	out.Valid = true
	return out
}

// acceptable reports whether an SCT's log counts for a policy at now:
// qualified, usable or read-only logs count; retired logs count only for
// embedded SCTs issued before the retirement.
func acceptable(s SCT, retiredOK bool) bool {
	if !s.Valid || s.info == nil {
		return false
	}
	switch s.info.State {
	case "qualified", "usable", "readonly":
		return true
	case "retired":
		return retiredOK && s.Timestamp.Before(s.info.StateTime)
	}
	return false
}

func lifetimeDays(r *Report) float64 { return r.NotAfter.Sub(r.NotBefore).Hours() / 24 }

// evaluate applies "need n acceptable SCTs from at least two operators".
func evaluate(scts []SCT, need int, retiredOK bool, what string) (bool, []string) {
	ops := map[string]bool{}
	n := 0
	for _, s := range scts {
		if acceptable(s, retiredOK) {
			n++
			ops[s.Operator] = true
		}
	}
	var reasons []string
	ok := true
	if n < need {
		ok = false
		reasons = append(reasons, fmt.Sprintf("%s: %d acceptable SCTs, needs %d", what, n, need))
	}
	if len(ops) < 2 {
		ok = false
		reasons = append(reasons, fmt.Sprintf("%s: SCTs from %d log operator(s), needs 2", what, len(ops)))
	}
	if ok {
		reasons = append(reasons, fmt.Sprintf("%s: %d acceptable SCTs from %d operators", what, n, len(ops)))
	}
	return ok, reasons
}

func bySource(r *Report, src ...Source) []SCT {
	var out []SCT
	for _, s := range r.SCTs {
		for _, x := range src {
			if s.Source == x {
				out = append(out, s)
			}
		}
	}
	return out
}

// chromePolicy is Chrome's CT policy: embedded SCTs, 2 for certificates of
// at most 180 days and 3 beyond, from logs qualified, usable, read-only or
// retired after the SCT, from at least 2 operators, at least one of them an
// RFC 6962 log; or SCTs delivered over TLS or OCSP, 2 from logs qualified,
// usable or read-only at check time, from 2 operators.
func chromePolicy(r *Report, now time.Time) Policy {
	p := Policy{Name: "Chrome"}
	need := 2
	if lifetimeDays(r) > 180 {
		need = 3
	}
	ok1, reasons1 := evaluate(bySource(r, Embedded), need, true, "embedded")
	if ok1 && !hasRFC6962(bySource(r, Embedded)) {
		ok1 = false
		reasons1 = append(reasons1, "embedded: no SCT from an RFC 6962 log (Chrome requires one while static-ct-api logs are phased in)")
	}
	ok2, reasons2 := evaluate(bySource(r, TLSExt, OCSP), 2, false, "TLS/OCSP")
	if ok2 && !hasRFC6962(bySource(r, TLSExt, OCSP)) {
		ok2 = false
		reasons2 = append(reasons2, "TLS/OCSP: no SCT from an RFC 6962 log")
	}
	p.Compliant = ok1 || ok2
	p.Reasons = append(reasons1, reasons2...)
	return p
}

func hasRFC6962(scts []SCT) bool {
	for _, s := range scts {
		if acceptable(s, true) && s.info.Kind == srekitct.RFC6962 {
			return true
		}
	}
	return false
}

// applePolicy is Apple's CT policy: embedded SCTs, 2 for certificates of at
// most 180 days and 3 beyond, from logs approved at check time or (retired)
// at issuance, from 2 operators; or 2 SCTs over TLS or OCSP from logs
// approved at check time, from 2 operators.
func applePolicy(r *Report, now time.Time) Policy {
	p := Policy{Name: "Apple"}
	need := 2
	if lifetimeDays(r) > 180 {
		need = 3
	}
	ok1, reasons1 := evaluate(bySource(r, Embedded), need, true, "embedded")
	ok2, reasons2 := evaluate(bySource(r, TLSExt, OCSP), 2, false, "TLS/OCSP")
	p.Compliant = ok1 || ok2
	p.Reasons = append(reasons1, reasons2...)
	return p
}

// Sort orders SCTs by source then timestamp, for stable output.
func (r *Report) Sort() {
	sort.SliceStable(r.SCTs, func(i, j int) bool {
		if r.SCTs[i].Source != r.SCTs[j].Source {
			return r.SCTs[i].Source < r.SCTs[j].Source
		}
		return r.SCTs[i].Timestamp.Before(r.SCTs[j].Timestamp)
	})
}

// Summary is one line per SCT for humans.
func (s SCT) Summary() string {
	status := "valid"
	if !s.Valid {
		status = "INVALID: " + s.Error
	}
	name := s.Log
	if name == "" {
		name = "unknown log " + s.LogID
	}
	return strings.TrimSpace(fmt.Sprintf("%-8s %s  %s (%s, %s)  %s", s.Source, s.Timestamp.Format(time.RFC3339), name, s.Operator, s.LogState, status))
}
