package sct_test

import (
	"testing"
	"time"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
	"github.com/srekit/srekit/certs/sct"
)

// FuzzAudit: whatever a server sends (certificates, SCT lists, OCSP
// responses), the audit returns a report or an error, never panics.
func FuzzAudit(f *testing.F) {
	l, _ := ctlogtest.NewLog("", false)
	ca, _ := ctlogtest.NewCA("Fuzz CA")
	tmpl := ca.Template([]string{"fuzz.test"}, 90)
	pre, _ := ca.IssuePrecert(tmpl)
	s, _ := l.AddPreChain([][]byte{pre, ca.DER})
	leaf, _ := ca.Issue(tmpl, ctlogtest.SCTList(s))
	ll, _ := ct.ParseLogList(l.LogListJSON("https://l/", "L"))
	f.Add(leaf, ca.DER, s.Serialize(), []byte{})
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01}, []byte{}, []byte{0, 1, 2}, []byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, leaf, issuer, tlsSCT, ocspResp []byte) {
		chain := [][]byte{leaf}
		if len(issuer) > 0 {
			chain = append(chain, issuer)
		}
		sct.Audit(chain, [][]byte{tlsSCT}, ocspResp, ll, time.Now())
	})
}

// FuzzSplitList: SCT lists never panic the splitter.
func FuzzSplitList(f *testing.F) {
	f.Add(ctlogtest.SCTList(&ctlogtest.SCT{Signature: []byte{4, 3, 0, 0}}))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		parts, err := sct.SplitList(b)
		if err == nil {
			for _, p := range parts {
				if len(p) == 0 {
					t.Fatal("empty SCT accepted")
				}
			}
		}
	})
}
