package sct_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
	"github.com/srekit/srekit/certs/sct"
)

type fixture struct {
	a, b, c *ctlogtest.Log
	ca      *ctlogtest.CA
	addr    string
	roots   *x509.CertPool
}

// newFixture starts a TLS server whose certificate embeds SCTs from logs A
// and B (two operators), with an SCT from static log C in the TLS extension
// and one from B in a stapled OCSP response.
func newFixture(t *testing.T, corruptTLSSCT bool) *fixture {
	t.Helper()
	f := &fixture{}
	var err error
	if f.a, err = ctlogtest.NewLog("", false); err != nil {
		t.Fatal(err)
	}
	f.b, _ = ctlogtest.NewLog("", false)
	f.c, _ = ctlogtest.NewLog("", true)
	if f.ca, err = ctlogtest.NewCA("Test CA"); err != nil {
		t.Fatal(err)
	}
	tmpl := f.ca.Template([]string{"localhost"}, 90)
	pre, err := f.ca.IssuePrecert(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := f.a.AddPreChain([][]byte{pre, f.ca.DER})
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := f.b.AddPreChain([][]byte{pre, f.ca.DER})
	final, err := f.ca.Issue(tmpl, ctlogtest.SCTList(sa, sb))
	if err != nil {
		t.Fatal(err)
	}
	sc := f.c.AddChain([][]byte{final, f.ca.DER})
	sb2 := f.b.AddChain([][]byte{final, f.ca.DER})
	tlsSCT := sc.Serialize()
	if corruptTLSSCT {
		tlsSCT[len(tlsSCT)-1] ^= 1
	}
	ext, _ := asn1.Marshal(ctlogtest.SCTList(sb2))
	staple, err := ocsp.CreateResponse(f.ca.Cert, f.ca.Cert, ocsp.Response{Status: ocsp.Good, SerialNumber: tmpl.SerialNumber,
		ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 4, 5}, Value: ext}}}, f.ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert := tls.Certificate{Certificate: [][]byte{final, f.ca.DER}, PrivateKey: f.ca.LeafKey(),
		SignedCertificateTimestamps: [][]byte{tlsSCT}, OCSPStaple: staple}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	f.addr = ln.Addr().String()
	f.roots = x509.NewCertPool()
	f.roots.AddCert(f.ca.Cert)
	return f
}

func (f *fixture) list(t *testing.T, withB bool) *ct.LogList {
	entries := []ctlogtest.LogListEntry{
		{Log: f.a, URL: "https://a.example/", Description: "Log A", Operator: "Operator A"},
		{Log: f.c, URL: "https://c.example/", Description: "Log C", Operator: "Operator C"},
	}
	if withB {
		entries = append(entries, ctlogtest.LogListEntry{Log: f.b, URL: "https://b.example/", Description: "Log B", Operator: "Operator B"})
	}
	ll, err := ct.ParseLogList(ctlogtest.LogList(entries...))
	if err != nil {
		t.Fatal(err)
	}
	return ll
}

func check(t *testing.T, f *fixture, ll *ct.LogList) *sct.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := sct.Check(ctx, f.addr, &tls.Config{RootCAs: f.roots, ServerName: "localhost"}, ll)
	if err != nil {
		t.Fatal(err)
	}
	r.Sort()
	for _, s := range r.SCTs {
		t.Log(s.Summary())
	}
	return r
}

func count(r *sct.Report, src sct.Source, valid bool) int {
	n := 0
	for _, s := range r.SCTs {
		if s.Source == src && s.Valid == valid {
			n++
		}
	}
	return n
}

func TestCheckAllThreeSources(t *testing.T) {
	f := newFixture(t, false)
	r := check(t, f, f.list(t, true))
	if count(r, sct.Embedded, true) != 2 || count(r, sct.TLSExt, true) != 1 || count(r, sct.OCSP, true) != 1 {
		t.Fatalf("SCTs: %+v", r.SCTs)
	}
	if !r.Chrome.Compliant || !r.Apple.Compliant {
		t.Fatalf("policies: chrome %+v apple %+v", r.Chrome, r.Apple)
	}
	for _, s := range r.SCTs {
		if s.Log == "" || s.Timestamp.IsZero() {
			t.Fatalf("SCT without log or time: %+v", s)
		}
	}
}

func TestCheckUnknownLogAndBadSignature(t *testing.T) {
	f := newFixture(t, true)
	r := check(t, f, f.list(t, false)) // log B is not in the list
	if count(r, sct.Embedded, true) != 1 || count(r, sct.Embedded, false) != 1 {
		t.Fatalf("embedded: %+v", r.SCTs)
	}
	if count(r, sct.TLSExt, false) != 1 || count(r, sct.OCSP, false) != 1 {
		t.Fatalf("tls/ocsp: %+v", r.SCTs)
	}
	var unknown, badSig bool
	for _, s := range r.SCTs {
		unknown = unknown || strings.Contains(s.Error, "not in the log list")
		badSig = badSig || strings.Contains(s.Error, "does not verify")
	}
	if !unknown || !badSig {
		t.Fatalf("want an unknown-log and a bad-signature SCT: %+v", r.SCTs)
	}
	if r.Chrome.Compliant || r.Apple.Compliant {
		t.Fatalf("policies should fail: chrome %+v apple %+v", r.Chrome, r.Apple)
	}
}

func TestCheckRefusesPlainTCP(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("HTTP/1.0 400 no tls\r\n\r\n"))
			c.Close()
		}
	}()
	_, err := sct.Check(context.Background(), ln.Addr().String(), nil, &ct.LogList{})
	if err == nil {
		t.Fatal("want a TLS error")
	}
}
