package caa_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/srekit/srekit/certs/caa"
	"github.com/srekit/srekit/certs/caa/caatest"
)

// These tests run real servers: Knot DNS serving the zones of caatest and
// unbound validating with a local trust anchor. Every case runs against the
// authoritative server directly and through the resolver where both make
// sense.

func check(t *testing.T, r *caa.Resolver, name, issuer string) caa.Decision {
	t.Helper()
	n, wild, err := caa.Normalize(name)
	if err != nil {
		t.Fatal(err)
	}
	return r.Check(context.Background(), caa.Request{Name: n, Wildcard: wild, Issuer: issuer})
}

// replayProxy forwards queries to upstream, but answers a CAA query for
// target with the upstream's answer for replacement (question rewritten).
// With strip, it answers target itself but drops the authority section
// (where the NSEC/NSEC3 proofs travel).
func replayProxy(t *testing.T, upstream, target, replacement string, strip bool) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		fwd := q.Copy()
		if strings.EqualFold(q.Question[0].Name, target) && q.Question[0].Qtype == dns.TypeCAA {
			fwd.Question[0].Name = replacement
		}
		c := &dns.Client{Timeout: 2 * time.Second, UDPSize: 4096}
		resp, _, err := c.Exchange(fwd, upstream)
		if err != nil {
			return
		}
		resp.Id, resp.Question = q.Id, q.Question
		if strip && strings.EqualFold(q.Question[0].Name, target) {
			resp.Ns = nil
		}
		w.WriteMsg(resp)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func climbNames(d caa.Decision) string {
	var s []string
	for _, l := range d.Climb {
		s = append(s, l.Name)
	}
	return strings.Join(s, " ")
}

func TestIntegration(t *testing.T) {
	env := caatest.Start(t)
	servers := map[string]string{"knot": env.Auth, "unbound": env.Resolver}
	for label, server := range servers {
		r := &caa.Resolver{Server: server, Timeout: 2 * time.Second}
		t.Run(label, func(t *testing.T) {
			t.Run("climb", func(t *testing.T) {
				d := check(t, r, "deep.sub.caa.test", "ca.example")
				if d.Verdict != caa.Allowed || d.RelevantName != "caa.test." {
					t.Fatalf("got %s at %q: %s", d.Verdict, d.RelevantName, d.Reason)
				}
				if got := climbNames(d); got != "deep.sub.caa.test. sub.caa.test. caa.test." {
					t.Errorf("climb %q", got)
				}
				if len(d.Iodef) != 1 || d.Iodef[0] != "mailto:security@caa.test" {
					t.Errorf("iodef %v", d.Iodef)
				}
				if d.DNSSEC != caa.Insecure {
					t.Errorf("dnssec %s, want insecure for the unsigned zone", d.DNSSEC)
				}
				if d := check(t, r, "deep.sub.caa.test", "other.example"); d.Verdict != caa.Forbidden {
					t.Errorf("other CA: %s: %s", d.Verdict, d.Reason)
				}
			})
			t.Run("nxdomain", func(t *testing.T) {
				d := check(t, r, "no.such.name.caa.test", "ca.example")
				if d.Verdict != caa.Allowed || d.RelevantName != "caa.test." || d.Climb[0].Rcode != "NXDOMAIN" {
					t.Fatalf("got %s at %q, first rcode %s", d.Verdict, d.RelevantName, d.Climb[0].Rcode)
				}
			})
			t.Run("cname", func(t *testing.T) {
				d := check(t, r, "alias.caa.test", "alias.example")
				if d.Verdict != caa.Allowed || d.RelevantName != "alias.caa.test." {
					t.Fatalf("got %s at %q: %s", d.Verdict, d.RelevantName, d.Reason)
				}
				if a := d.Climb[0].Aliases; len(a) != 1 || a[0].Type != "CNAME" || a[0].Target != "target.other.test." {
					t.Errorf("aliases %+v", a)
				}
				d = check(t, r, "chain.caa.test", "alias.example")
				if d.Verdict != caa.Allowed || len(d.Climb[0].Aliases) != 2 {
					t.Errorf("chain: %s, aliases %+v", d.Verdict, d.Climb[0].Aliases)
				}
			})
			t.Run("cname-to-empty-climbs-from-original-parent", func(t *testing.T) {
				d := check(t, r, "emptyalias.caa.test", "ca.example")
				if d.Verdict != caa.Allowed || d.RelevantName != "caa.test." {
					t.Fatalf("got %s at %q (climb %s): the climb must go on from caa.test, not other.test", d.Verdict, d.RelevantName, climbNames(d))
				}
				if d := check(t, r, "emptyalias.caa.test", "other.example"); d.Verdict != caa.Forbidden {
					t.Errorf("other.example: %s", d.Verdict)
				}
			})
			t.Run("dname", func(t *testing.T) {
				d := check(t, r, "www.dn.test", "dname.example")
				if d.Verdict != caa.Allowed || d.RelevantName != "www.dn.test." {
					t.Fatalf("got %s at %q: %s", d.Verdict, d.RelevantName, d.Reason)
				}
				found := false
				for _, a := range d.Climb[0].Aliases {
					found = found || a.Type == "DNAME" && a.Owner == "dn.test." && a.Target == "other.test."
				}
				if !found {
					t.Errorf("no DNAME step in %+v", d.Climb[0].Aliases)
				}
			})
			t.Run("cname-loop", func(t *testing.T) {
				d := check(t, r, "loop1.test", "ca.example")
				if d.Verdict != caa.CannotDecide && d.Verdict != caa.Allowed {
					t.Fatalf("got %s", d.Verdict)
				}
				if d.Verdict == caa.Allowed && d.RelevantName != "" {
					t.Fatalf("a loop produced records at %s", d.RelevantName)
				}
			})
			t.Run("servfail", func(t *testing.T) {
				d := check(t, r, "www.broken.test", "ca.example")
				if d.Verdict != caa.CannotDecide || !strings.Contains(d.Reason, "SERVFAIL") {
					t.Fatalf("got %s: %s", d.Verdict, d.Reason)
				}
				if !strings.Contains(strings.Join(d.Notes, " "), "3.2.2.8") {
					t.Errorf("no Baseline Requirements note")
				}
			})
			t.Run("alias-to-servfail", func(t *testing.T) {
				d := check(t, r, "tobroken.caa.test", "ca.example")
				if d.Verdict != caa.CannotDecide || !strings.Contains(d.Reason, "SERVFAIL") {
					t.Fatalf("got %s: %s (the parent's records must not be used when the alias target fails); climb %+v", d.Verdict, d.Reason, d.Climb)
				}
			})
			t.Run("tcp", func(t *testing.T) {
				d := check(t, r, "big.test", "ca0999.example")
				if d.Verdict != caa.Allowed || !d.Climb[0].TCP || len(d.Relevant) != caatest.BigRRset {
					t.Fatalf("got %s, tcp %v, %d records", d.Verdict, d.Climb[0].TCP, len(d.Relevant))
				}
			})
			t.Run("critical", func(t *testing.T) {
				if d := check(t, r, "crit.test", "ca.example"); d.Verdict != caa.Forbidden {
					t.Fatalf("got %s: %s", d.Verdict, d.Reason)
				}
			})
			t.Run("rfc8657", func(t *testing.T) {
				req := caa.Request{Name: "acme.test", Issuer: "ca.example", AccountURI: "https://ca.example/acct/1", Method: "dns-01"}
				if d := r.Check(context.Background(), req); d.Verdict != caa.Allowed {
					t.Errorf("right account and method: %s: %s", d.Verdict, d.Reason)
				}
				req.Method = "http-01"
				if d := r.Check(context.Background(), req); d.Verdict != caa.Forbidden {
					t.Errorf("wrong method: %s: %s", d.Verdict, d.Reason)
				}
			})
			t.Run("signed", func(t *testing.T) {
				d := check(t, r, "sub.www.signed", "ca.example")
				if d.Verdict != caa.Allowed || d.RelevantName != "www.signed." {
					t.Fatalf("got %s at %q: %s", d.Verdict, d.RelevantName, d.Reason)
				}
				want := caa.Secure
				if label == "knot" {
					want = caa.Unknown // signed, but nobody validated it
				}
				if d.DNSSEC != want {
					t.Errorf("dnssec %s, want %s (%+v)", d.DNSSEC, want, d.Climb)
				}
			})
			t.Run("chain-below-anchor", func(t *testing.T) {
				d := check(t, r, "sub.www.child.parent", "ca.example")
				want := caa.Secure
				if label == "knot" {
					want = caa.Unknown
				}
				if d.Verdict != caa.Allowed || d.DNSSEC != want {
					t.Errorf("child.parent: got %s/%s, want allowed/%s", d.Verdict, d.DNSSEC, want)
				}
				if d := check(t, r, "x.plain.parent", "ca.example"); d.Verdict != caa.Allowed || d.DNSSEC != caa.Insecure {
					t.Errorf("plain.parent: got %s/%s, want allowed/insecure", d.Verdict, d.DNSSEC)
				}
				if label == "unbound" {
					if d := check(t, r, "www.wrongds.parent", "ca.example"); d.Verdict != caa.CannotDecide || d.DNSSEC != caa.Bogus {
						t.Errorf("wrongds.parent through unbound: got %s/%s, want cannot decide/bogus", d.Verdict, d.DNSSEC)
					}
				}
			})
			t.Run("bogus", func(t *testing.T) {
				d := check(t, r, "www.bogus", "ca.example")
				if label == "knot" {
					// An authoritative server does not validate: the answer
					// is there, signed, status unknown.
					if d.Verdict != caa.Allowed || d.DNSSEC != caa.Unknown {
						t.Fatalf("got %s, dnssec %s", d.Verdict, d.DNSSEC)
					}
					return
				}
				if d.Verdict != caa.CannotDecide || d.DNSSEC != caa.Bogus {
					t.Fatalf("got %s, dnssec %s: %s", d.Verdict, d.DNSSEC, d.Reason)
				}
			})
		})
	}

	t.Run("refused", func(t *testing.T) {
		r := &caa.Resolver{Server: env.Auth}
		d := check(t, r, "www.not-served.example", "ca.example")
		if d.Verdict != caa.CannotDecide || !strings.Contains(d.Reason, "REFUSED") {
			t.Fatalf("got %s: %s", d.Verdict, d.Reason)
		}
	})

	t.Run("referral", func(t *testing.T) {
		r := &caa.Resolver{Server: env.Auth}
		d := check(t, r, "www.deleg.test", "ca.example")
		if d.Verdict != caa.CannotDecide || !strings.Contains(d.Reason, "referral") {
			t.Fatalf("got %s: %s", d.Verdict, d.Reason)
		}
	})

	t.Run("timeout-through-unbound", func(t *testing.T) {
		r := &caa.Resolver{Server: env.Resolver, Timeout: 300 * time.Millisecond, Retries: 1}
		d := check(t, r, "www.slow", "ca.example")
		if d.Verdict != caa.CannotDecide || !strings.Contains(d.Reason, "no answer") && !strings.Contains(d.Reason, "SERVFAIL") {
			t.Fatalf("got %s: %s", d.Verdict, d.Reason)
		}
		t.Logf("through unbound: %s", d.Reason)
	})

	t.Run("timeout", func(t *testing.T) {
		r := &caa.Resolver{Server: caatest.Blackhole(t), Timeout: 150 * time.Millisecond, Retries: 1}
		d := check(t, r, "caa.test", "ca.example")
		if d.Verdict != caa.CannotDecide || !strings.Contains(d.Reason, "no answer") || !strings.Contains(d.Reason, "2 tries") {
			t.Fatalf("got %s: %s", d.Verdict, d.Reason)
		}
	})

	// Our own validation from the trust anchors, against the authoritative
	// server (which does not validate) and through unbound with CD set.
	for label, server := range servers {
		t.Run("trust-anchor/"+label, func(t *testing.T) {
			ta, err := caa.LoadTrustAnchors(env.AnchorFile)
			if err != nil {
				t.Fatal(err)
			}
			r := &caa.Resolver{Server: server, Anchors: ta}
			cases := []struct {
				name    string
				verdict caa.Verdict
				status  caa.Status
			}{
				{"www.signed", caa.Allowed, caa.Secure},
				{"sub.www.signed", caa.Allowed, caa.Secure},
				{"nodata.signed", caa.Allowed, caa.Secure}, // NODATA at nodata.signed and signed., NSEC-proven
				{"missing.signed", caa.Allowed, caa.Secure},
				{"www.bogus", caa.CannotDecide, caa.Bogus},
				{"www.nsec3", caa.Allowed, caa.Secure},
				{"sub.www.nsec3", caa.Allowed, caa.Secure}, // NODATA proven by NSEC3
				{"missing.nsec3", caa.Allowed, caa.Secure}, // NXDOMAIN proven by NSEC3
				{"nodata.nsec3", caa.Allowed, caa.Secure},
				{"www.parent", caa.Allowed, caa.Secure},
				{"sub.www.child.parent", caa.Allowed, caa.Secure},   // DS in parent. -> child's keys
				{"x.plain.parent", caa.Allowed, caa.Insecure},       // parent. proves there is no DS
				{"www.wrongds.parent", caa.CannotDecide, caa.Bogus}, // its DS matches none of its keys
				{"x.wild.signed", caa.Forbidden, caa.Secure},        // from the wildcard: wild.example only
				{"x.wild.nsec3", caa.Forbidden, caa.Secure},
				{"caa.test", caa.Allowed, caa.Insecure},
			}
			for _, c := range cases {
				d := check(t, r, c.name, "ca.example")
				if d.Verdict != c.verdict || d.DNSSEC != c.status {
					t.Errorf("%s: got %s/%s, want %s/%s: %s; climb %+v", c.name, d.Verdict, d.DNSSEC, c.verdict, c.status, d.Reason, d.Climb)
				}
			}
		})
	}

	// A path attacker replays validly signed denials from elsewhere in the
	// zone to hide www.signed's CAA set: own validation must call it bogus.
	t.Run("trust-anchor/replayed-denial", func(t *testing.T) {
		for replacement, what := range map[string]string{"nodata.signed.": "NODATA", "missing.signed.": "NXDOMAIN", "nodata.nsec3.": "NSEC3 NODATA", "x.wild.signed.": "another name's answer", "missing.nsec3.": "NSEC3 NXDOMAIN"} {
			target := "www.signed."
			if strings.HasSuffix(replacement, "nsec3.") {
				target = "www.nsec3."
			}
			proxy := replayProxy(t, env.Auth, target, replacement, false)
			ta, err := caa.LoadTrustAnchors(env.AnchorFile)
			if err != nil {
				t.Fatal(err)
			}
			r := &caa.Resolver{Server: proxy, Anchors: ta}
			d := check(t, r, "sub."+target, "other.example")
			if d.Verdict != caa.CannotDecide || d.DNSSEC != caa.Bogus {
				t.Errorf("%s replayed for %s: got %s/%s: %s", what, target, d.Verdict, d.DNSSEC, d.Reason)
			}
			// Without our own validation the lie goes through: that is
			// what --trust-anchor is for.
			plain := &caa.Resolver{Server: proxy}
			if d := check(t, plain, "sub."+target, "other.example"); d.Verdict != caa.Allowed {
				t.Errorf("%s replay without anchors: got %s (the test's lie did not work)", what, d.Verdict)
			}
		}
	})

	// A wildcard answer without the proof that the name itself does not
	// exist could hide the name's own records: bogus.
	t.Run("trust-anchor/wildcard-without-proof", func(t *testing.T) {
		for _, name := range []string{"x.wild.signed.", "x.wild.nsec3."} {
			proxy := replayProxy(t, env.Auth, name, name, true)
			ta, err := caa.LoadTrustAnchors(env.AnchorFile)
			if err != nil {
				t.Fatal(err)
			}
			d := check(t, &caa.Resolver{Server: proxy, Anchors: ta}, name, "wild.example")
			if d.Verdict != caa.CannotDecide || d.DNSSEC != caa.Bogus {
				t.Errorf("%s without proof: got %s/%s: %s", name, d.Verdict, d.DNSSEC, d.Reason)
			}
		}
	})

	t.Run("batch", func(t *testing.T) {
		r := &caa.Resolver{Server: env.Auth}
		in := make(chan caa.Request)
		const n = 300
		go func() {
			for i := 0; i < n; i++ {
				in <- caa.Request{Name: fmt.Sprintf("n%d.sub.caa.test", i), Issuer: "ca.example"}
			}
			close(in)
		}()
		var got, allowed atomic.Int64
		r.Batch(context.Background(), in, caa.BatchOptions{Concurrency: 8}, func(d caa.Decision) {
			got.Add(1)
			if d.Verdict == caa.Allowed && d.RelevantName == "caa.test." {
				allowed.Add(1)
			}
		})
		if got.Load() != n || allowed.Load() != n {
			t.Fatalf("got %d decisions, %d allowed at caa.test, want %d", got.Load(), allowed.Load(), n)
		}

		// With a cache, the shared parents are asked for once (or once per
		// concurrent first wave), and the decisions do not change.
		r.Cache = caa.NewCache(time.Minute)
		in = make(chan caa.Request)
		go func() {
			for i := 0; i < n; i++ {
				in <- caa.Request{Name: fmt.Sprintf("n%d.sub.caa.test", i), Issuer: "ca.example"}
			}
			close(in)
		}()
		var cachedParent, allowed2 atomic.Int64
		r.Batch(context.Background(), in, caa.BatchOptions{Concurrency: 8}, func(d caa.Decision) {
			if d.Verdict == caa.Allowed && d.RelevantName == "caa.test." {
				allowed2.Add(1)
			}
			if len(d.Climb) == 3 && d.Climb[2].Cached && d.Climb[1].Cached && !d.Climb[0].Cached {
				cachedParent.Add(1)
			}
		})
		if allowed2.Load() != n || cachedParent.Load() < n-8 {
			t.Fatalf("cached batch: %d allowed, %d with cached parents, want %d and >= %d", allowed2.Load(), cachedParent.Load(), n, n-8)
		}
	})
}
