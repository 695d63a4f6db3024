package ct_test

import (
	"bytes"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
)

// fuzzSeeds returns real entries from a test log: a certificate, a
// precertificate entry and a data tile.
func fuzzSeeds(f *testing.F) (leaves [][]byte, tile []byte, certs [][]byte) {
	l, err := ctlogtest.NewLog("", true)
	if err != nil {
		f.Fatal(err)
	}
	sc, err := ctlogtest.NewScenario()
	if err != nil {
		f.Fatal(err)
	}
	if err := sc.Fill(l, 16, 2, 0); err != nil {
		f.Fatal(err)
	}
	for i := uint64(0); i < l.Size(); i++ {
		e := l.Entry(i)
		leaves = append(leaves, ct.LeafInput(&e))
		tile = ct.AppendTileLeaf(tile, &e)
		certs = append(certs, e.Cert)
	}
	return leaves, tile, certs
}

// FuzzParseLeafInput: never panics; what parses re-encodes to the same bytes.
func FuzzParseLeafInput(f *testing.F) {
	leaves, _, _ := fuzzSeeds(f)
	for _, l := range leaves {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var e ct.Entry
		if err := ct.ParseLeafInput(b, &e); err != nil {
			return
		}
		if got := ct.LeafInput(&e); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded leaf differs")
		}
		var x ct.Entry
		x.Type = e.Type
		ct.ParseExtraData(b, &x)
	})
}

// FuzzParseDataTile: never panics; every parsed entry re-encodes to the tile.
func FuzzParseDataTile(f *testing.F) {
	_, tile, _ := fuzzSeeds(f)
	es, _ := ct.ParseDataTile(tile, 0)
	small := ct.AppendTileLeaf(nil, &es[0])
	f.Add(ct.AppendTileLeaf(small, &es[1]), uint64(0))
	f.Add(small[:len(small)/2], uint64(7))
	f.Fuzz(func(t *testing.T, b []byte, first uint64) {
		es, err := ct.ParseDataTile(b, first)
		if err != nil {
			return
		}
		var out []byte
		for i := range es {
			out = ct.AppendTileLeaf(out, &es[i])
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoded tile differs")
		}
	})
}

// FuzzParseCertificate: never panics; whatever crypto/x509 accepts, the
// monitor's parser accepts too, with the same DNS names (so a certificate
// browsers would accept is never missed).
func FuzzParseCertificate(f *testing.F) {
	_, _, certs := fuzzSeeds(f)
	for _, c := range certs {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		got, err := ct.ParseCertificate(der)
		std, stdErr := x509.ParseCertificate(der)
		if stdErr != nil {
			ct.ParseTBS(der)
			return
		}
		if err != nil {
			t.Fatalf("crypto/x509 parses it, the monitor does not: %v", err)
		}
		if len(got.DNSNames) != len(std.DNSNames) {
			t.Fatalf("names %v vs %v", got.DNSNames, std.DNSNames)
		}
		for i := range got.DNSNames {
			if got.DNSNames[i] != strings.ToLower(strings.TrimSuffix(std.DNSNames[i], ".")) {
				t.Fatalf("names %v vs %v", got.DNSNames, std.DNSNames)
			}
		}
	})
}

// FuzzParseGetEntries: the fast path never panics and agrees with itself.
func FuzzParseGetEntries(f *testing.F) {
	f.Add([]byte(`{"entries":[{"leaf_input":"AAA=","extra_data":""}]}`))
	f.Add([]byte(`{"entries":[{"leaf_input":"AA\u0041","extra_data":""}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ct.ParseGetEntries(b, 5, 1005)
		if err == nil && (len(es) == 0 || es[0].Index != 5) {
			t.Fatalf("bad entries %v", es)
		}
	})
}

// FuzzParseCheckpoint and FuzzParseSTH: tree head formats never panic.
func FuzzParseCheckpoint(f *testing.F) {
	l, _ := ctlogtest.NewLog("example.org/log", true)
	th := l.Publish()
	f.Add(ct.MarshalCheckpoint(&th, "example.org/log", l.ID))
	f.Add([]byte("example.org/log\n1\nAAAA\n\n\u2014 example.org/log AAAA\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if th, err := ct.ParseCheckpoint(b, "", l.ID); err == nil {
			th.Verify(l.Key.Public())
		}
	})
}

func FuzzParseSTH(f *testing.F) {
	l, _ := ctlogtest.NewLog("", false)
	th := l.Publish()
	f.Add(ct.MarshalSTH(&th))
	f.Fuzz(func(t *testing.T, b []byte) {
		if th, err := ct.ParseSTH(b); err == nil {
			th.Verify(l.Key.Public())
		}
	})
}

// FuzzParseLogList: log lists never panic the parser.
func FuzzParseLogList(f *testing.F) {
	l, _ := ctlogtest.NewLog("", false)
	s, _ := ctlogtest.NewLog("", true)
	f.Add(ctlogtest.LogList(ctlogtest.LogListEntry{Log: l, URL: "https://a/"}, ctlogtest.LogListEntry{Log: s, URL: "https://b/"}))
	f.Add([]byte(`{"operators":[{"logs":[{"key":"AAAA","url":"x"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ct.ParseLogList(b)
	})
}

// FuzzParseWatchList: watch lists never panic, and rules parsed match safely.
func FuzzParseWatchList(f *testing.F) {
	f.Add("example.com\n.example.org issuers=letsencrypt.org\n# c\n*.x.test\n")
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ct.ParseWatchList(strings.NewReader(s))
		if err != nil {
			return
		}
		ct.NewMatcher(rules).Match([]string{"a.example.com", "*.example.org", "?.x.test", s}, func(int) {})
	})
}
