package ct_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
)

func TestParseCertificateAgreesWithCryptoX509(t *testing.T) {
	ca, err := ctlogtest.NewCA("Agree CA")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := ca.Template([]string{"A.Example.com", "*.example.com", "xn--bcher-kva.example"}, 400)
	der, err := ca.Issue(tmpl, nil)
	if err != nil {
		t.Fatal(err)
	}
	std, _ := x509.ParseCertificate(der)
	got, err := ct.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a.example.com", "*.example.com", "xn--bcher-kva.example"}
	if !reflect.DeepEqual(got.DNSNames, want) {
		t.Errorf("names %v, want %v", got.DNSNames, want)
	}
	if h := sha256.Sum256(std.RawTBSCertificate); got.TBSHash != h {
		t.Errorf("TBS hash of a certificate without CT extensions must be SHA-256 of its TBS")
	}
	if got.Serial != hex.EncodeToString(std.SerialNumber.Bytes()) || !got.NotAfter.Equal(std.NotAfter) || !got.NotBefore.Equal(std.NotBefore) {
		t.Errorf("serial/validity: %+v vs %v %v %v", got, std.SerialNumber, std.NotBefore, std.NotAfter)
	}
	if got.Issuer.O != "Agree CA" || got.Issuer.CN != "Agree CA Test Root" || got.Precert {
		t.Errorf("issuer %+v precert %v", got.Issuer, got.Precert)
	}
	// The precertificate and the final certificate with SCTs hash alike.
	pre, _ := ca.IssuePrecert(tmpl)
	final, _ := ca.Issue(tmpl, []byte{0, 0})
	p, err := ct.ParseCertificate(pre)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ct.ParseCertificate(final)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Precert || f.Precert || p.TBSHash != got.TBSHash || f.TBSHash != got.TBSHash {
		t.Errorf("precert/final TBS hashes differ: %x %x %x", p.TBSHash, f.TBSHash, got.TBSHash)
	}
	tbs, err := ct.PrecertTBS(pre)
	if err != nil || !bytes.Equal(tbs, std.RawTBSCertificate) {
		t.Errorf("PrecertTBS must give the TBS without the poison (err %v)", err)
	}
}

func TestMatcher(t *testing.T) {
	rules := []ct.Rule{{Pattern: "www.example.com"}, {Pattern: ".corp.example"}, {Pattern: "example.org"}}
	m := ct.NewMatcher(rules)
	for _, tc := range []struct {
		names []string
		want  []string
	}{
		{[]string{"www.example.com"}, []string{"www.example.com"}},
		{[]string{"WWW.Example.COM."}, []string{"www.example.com"}},
		{[]string{"*.example.com"}, []string{"www.example.com"}},
		{[]string{"?.example.com"}, []string{"www.example.com"}},
		{[]string{"a.www.example.com", "example.com", "*.www.example.com"}, nil},
		{[]string{"corp.example"}, []string{".corp.example"}},
		{[]string{"deep.a.corp.example", "x.corp.example"}, []string{".corp.example"}},
		{[]string{"*.corp.example"}, []string{".corp.example"}},
		{[]string{"*.example"}, []string{".corp.example"}}, // covers corp.example, the subtree's apex
		{[]string{"notcorp.example", "corp.example.net"}, nil},
		{[]string{"example.org", "www.example.com"}, []string{"example.org", "www.example.com"}},
		{[]string{"*.org"}, []string{"example.org"}},
	} {
		var got []string
		m.Match(tc.names, func(i int) { got = append(got, rules[i].Pattern) })
		sort.Strings(got)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: matched %v, want %v", tc.names, got, tc.want)
		}
	}
}

func TestParseRule(t *testing.T) {
	r, err := ct.ParseRule("*.Example.com issuers=letsencrypt.org, Good CA")
	if err != nil || r.Pattern != ".example.com" || !reflect.DeepEqual(r.Issuers, []string{"letsencrypt.org", "Good CA"}) {
		t.Fatalf("%+v %v", r, err)
	}
	if r, err := ct.ParseRule(".Bücher.example"); err != nil || r.Pattern != ".xn--bcher-kva.example" {
		t.Fatalf("IDN rule: %+v %v", r, err)
	}
	for _, bad := range []string{"", "exa mple/com", "..com", "a..b", "http://x"} {
		if _, err := ct.ParseRule(bad); err == nil {
			t.Errorf("ParseRule(%q) accepted", bad)
		}
	}
	rules, err := ct.ParseWatchList(strings.NewReader("# mine\nexample.com\n\n.example.org issuers=digicert.com # corp\n"))
	if err != nil || len(rules) != 2 || rules[1].Issuers[0] != "digicert.com" {
		t.Fatalf("%+v %v", rules, err)
	}
	if _, err := ct.ParseWatchList(strings.NewReader("ok.com\nbad name/x\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("want a line 2 error, got %v", err)
	}
}

func TestTreeHeadFormatsAndSignatures(t *testing.T) {
	l, _ := ctlogtest.NewLog("example.org/log", true)
	ca, _ := ctlogtest.NewCA("TH CA")
	der, _ := ca.Issue(ca.Template([]string{"a.test"}, 10), nil)
	l.AddChain([][]byte{der, ca.DER})
	th := l.Publish()
	pub := mustList(t, l.LogListJSON("https://example.org/log/", "x")).Logs[0].PublicKey
	cp := ct.MarshalCheckpoint(&th, "example.org/log", l.ID)
	got, err := ct.ParseCheckpoint(cp, "example.org/log", l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := got.Verify(pub); err != nil || got.Size != 1 || got.Root != th.Root {
		t.Fatalf("checkpoint round trip: %+v %v", got, err)
	}
	if _, err := ct.ParseCheckpoint(cp, "other.org/log", l.ID); err == nil {
		t.Error("a checkpoint with another origin was accepted")
	}
	sth, err := ct.ParseSTH(ct.MarshalSTH(&th))
	if err != nil || sth.Verify(pub) != nil {
		t.Fatalf("get-sth round trip: %v", err)
	}
	sth.Size++
	if err := sth.Verify(pub); err == nil {
		t.Error("a tree head with a changed size verified")
	}
}

func TestParseLogListChecksIDs(t *testing.T) {
	l, _ := ctlogtest.NewLog("", false)
	good := l.LogListJSON("https://ct.example/", "Example log")
	ll, err := ct.ParseLogList(good)
	if err != nil || len(ll.Logs) != 1 || ll.Logs[0].Kind != ct.RFC6962 || ll.Logs[0].State != "usable" {
		t.Fatalf("%+v %v", ll, err)
	}
	var doc map[string]any
	json.Unmarshal(good, &doc)
	doc["operators"].([]any)[0].(map[string]any)["logs"].([]any)[0].(map[string]any)["log_id"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	bad, _ := json.Marshal(doc)
	if _, err := ct.ParseLogList(bad); err == nil || !strings.Contains(err.Error(), "log_id") {
		t.Fatalf("a log_id not matching the key was accepted: %v", err)
	}
	if _, err := ct.ParseLogList([]byte(`{"logs":[]}`)); err == nil {
		t.Fatal("a v2-style list was accepted")
	}
}

func TestGetEntriesFastPathAgreesWithJSON(t *testing.T) {
	l, _ := ctlogtest.NewLog("", false)
	sc, _ := ctlogtest.NewScenario()
	sc.Fill(l, 50, 5, 0)
	l.Publish()
	tl := &testLog{log: l}
	_ = tl
	var entries []map[string][]byte
	for i := 0; i < 3; i++ {
		entries = append(entries, map[string][]byte{"leaf_input": []byte(fmt.Sprint("leaf", i)), "extra_data": {1, 2}})
	}
	body, _ := json.MarshalIndent(map[string]any{"entries": entries}, "", "  ")
	es, err := ct.ParseGetEntries(body, 10, 20)
	if err != nil || len(es) != 3 || es[2].Index != 12 {
		t.Fatalf("%v %v", es, err)
	}
	// Unparseable leaves keep their leaf hash so the tree still verifies.
	if es[0].LeafHash != ct.LeafHash([]byte("leaf0")) {
		t.Error("leaf hash of an unparseable entry is wrong")
	}
	// An escaped slash is valid JSON that the fast path leaves to encoding/json.
	esc := bytes.Replace(body, []byte(`"bGVhZjA="`), []byte(`"bGVhZjA\u003d"`), 1)
	es2, err := ct.ParseGetEntries(esc, 10, 20)
	if err != nil || len(es2) != 3 || es2[0].LeafHash != es[0].LeafHash {
		t.Fatalf("escaped body: %v", err)
	}
}

func TestTilePath(t *testing.T) {
	for n, want := range map[uint64]string{0: "000", 7: "007", 1234: "x001/234", 1234067: "x001/x234/067"} {
		if got := ct.TilePath(n); got != want {
			t.Errorf("TilePath(%d) = %s, want %s", n, got, want)
		}
	}
}
