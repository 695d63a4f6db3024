// Package caatest starts real DNS servers from Debian packages for the CAA
// integration tests, the web page test and the benchmark: Knot DNS (knotd)
// as the authoritative server of a few test zones, one of them signed with
// ldns-signzone and one signed with a broken signature, and unbound as a
// validating resolver with a local trust anchor. Everything listens on
// 127.0.0.1 on free ports and runs in a temporary directory as the current
// user.
package caatest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// Env is a running set of test DNS servers.
type Env struct {
	Dir string
	// Auth is the Knot authoritative server, 127.0.0.1:port. It serves the
	// zones test., signed. (NSEC), nsec3. (NSEC3), bogus. (and broken.test., which fails to load, so
	// it answers SERVFAIL); it answers REFUSED for names outside them.
	Auth string
	// Resolver is unbound, validating with the trust anchors of signed.,
	// nsec3. and bogus.; it sends slow. to a server that never answers.
	// Empty when StartIn was asked for no resolver.
	Resolver string
	// AnchorFile holds the DS records of signed., nsec3. and bogus., for
	// --trust-anchor.
	AnchorFile string

	procs   []proc
	closers []func()
}

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// Zone is one extra zone for the authoritative server: its origin and
// zone-file text (with SOA and NS).
type Zone struct {
	Origin string
	Text   string
}

// BigRRset is the number of CAA records at big.test., enough that the answer
// needs TCP.
const BigRRset = 1000

// testZone is the unsigned zone test.; see the names used in the tests.
func testZone() string {
	var b strings.Builder
	b.WriteString(`$TTL 300
test. IN SOA ns.test. host.test. 1 3600 600 86400 300
test. IN NS ns.test.
ns.test. IN A 127.0.0.1
; broken.test is delegated to this server, which fails to load it: SERVFAIL
broken.test. IN NS ns.test.
; the climb: deep.sub.caa.test has no records, caa.test has
caa.test. IN CAA 0 issue "ca.example"
caa.test. IN CAA 0 iodef "mailto:security@caa.test"
deep.sub.caa.test. IN A 127.0.0.1
; a CNAME whose target has records
alias.caa.test. IN CNAME target.other.test.
target.other.test. IN CAA 0 issue "alias.example"
; a CNAME whose target has none: the climb goes on from caa.test, not other.test
emptyalias.caa.test. IN CNAME empty.other.test.
empty.other.test. IN A 127.0.0.1
other.test. IN CAA 0 issue "other.example"
; a CNAME into the zone that fails to load
tobroken.caa.test. IN CNAME www.broken.test.
; a CNAME chain of two steps
chain.caa.test. IN CNAME alias.caa.test.
; DNAME: www.dn.test -> www.other.test
dn.test. IN DNAME other.test.
www.other.test. IN CAA 0 issue "dname.example"
; a delegation to a server that does not exist: Knot answers with a referral
deleg.test. IN NS ns.deleg.invalid.
; a critical unknown tag
crit.test. IN CAA 128 tbs "x"
crit.test. IN CAA 0 issue "ca.example"
; RFC 8657 parameters
acme.test. IN CAA 0 issue "ca.example; accounturi=https://ca.example/acct/1; validationmethods=dns-01"
; a CNAME loop
loop1.test. IN CNAME loop2.test.
loop2.test. IN CNAME loop1.test.
`)
	for i := 0; i < BigRRset; i++ {
		fmt.Fprintf(&b, "big.test. IN CAA 0 issue \"ca%04d.example\"\n", i)
	}
	return b.String()
}

func signedZone(origin string) string {
	return strings.ReplaceAll(`$TTL 300
ORIGIN IN SOA ns.ORIGIN host.ORIGIN 1 3600 600 86400 300
ORIGIN IN NS ns.ORIGIN
ns.ORIGIN IN A 127.0.0.1
www.ORIGIN IN CAA 0 issue "ca.example"
sub.www.ORIGIN IN A 127.0.0.1
nodata.ORIGIN IN A 127.0.0.1
*.wild.ORIGIN IN CAA 0 issue "wild.example"
`, "ORIGIN", origin)
}

// parentZone is the signed zone parent. with secure delegations (carrying
// the children's DS records) and an insecure one.
func parentZone(ds string) string {
	return `$TTL 300
parent. IN SOA ns.parent. host.parent. 1 3600 600 86400 300
parent. IN NS ns.parent.
ns.parent. IN A 127.0.0.1
www.parent. IN CAA 0 issue "ca.example"
child.parent. IN NS ns.parent.
plain.parent. IN NS ns.parent.
wrongds.parent. IN NS ns.parent.
` + ds
}

// plainZone is the unsigned zone below parent.
const plainZone = `$TTL 300
plain.parent. IN SOA ns.parent. host.parent. 1 3600 600 86400 300
plain.parent. IN NS ns.parent.
plain.parent. IN CAA 0 issue "ca.example"
`

// Require fails (under CI) or skips the test loudly when a tool is missing.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := lookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not found (Debian packages knot, unbound, ldnsutils; scripts/test.sh installs them)", tool)
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip("SKIPPED: DNS integration test NOT RUN: " + msg)
		}
	}
}

func lookPath(tool string) (string, error) {
	if p, err := exec.LookPath(tool); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(d, tool)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found", tool)
}

// Start starts knot and unbound for a test and stops them when it ends.
func Start(t testing.TB) *Env {
	t.Helper()
	Require(t, "knotd", "unbound", "ldns-keygen", "ldns-signzone")
	e, err := StartIn(t.TempDir(), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)
	return e
}

// StartIn starts the servers in dir (knot always; unbound if withResolver)
// with extra zones; the caller must call Stop. Used by the benchmark.
func StartIn(dir string, withResolver bool, extra []Zone) (*Env, error) {
	e := &Env{Dir: dir}
	ok := false
	defer func() {
		if !ok {
			e.Stop()
		}
	}()
	if err := os.WriteFile(filepath.Join(dir, "test.zone"), []byte(testZone()), 0o644); err != nil {
		return nil, err
	}
	var anchors []string
	for _, z := range []string{"signed.", "bogus.", "nsec3."} {
		ds, err := e.sign(z, signedZone(z))
		if err != nil {
			return nil, err
		}
		anchors = append(anchors, ds)
	}
	// A chain of trust below an anchor: parent. is the anchor; it delegates
	// child.parent. (signed, with a DS in parent.) and plain.parent.
	// (unsigned, no DS: an insecure delegation).
	childDS, err := e.sign("child.parent.", signedZone("child.parent."))
	if err != nil {
		return nil, err
	}
	// wrongds.parent. is signed, but parent. carries a DS that matches none
	// of its keys (child.parent.'s, under another owner name): bogus.
	if _, err := e.sign("wrongds.parent.", signedZone("wrongds.parent.")); err != nil {
		return nil, err
	}
	wrongDS := strings.Replace(childDS, "child.parent.", "wrongds.parent.", 1)
	parentDS, err := e.sign("parent.", parentZone(childDS+wrongDS))
	if err != nil {
		return nil, err
	}
	anchors = append(anchors, parentDS)
	if err := os.WriteFile(filepath.Join(dir, "plain.parent.zone"), []byte(plainZone), 0o644); err != nil {
		return nil, err
	}
	if err := breakSignature(filepath.Join(dir, "bogus.zone.signed"), "www.bogus."); err != nil {
		return nil, err
	}
	e.AnchorFile = filepath.Join(dir, "anchors.ds")
	if err := os.WriteFile(e.AnchorFile, []byte(strings.Join(anchors, "")), 0o644); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	e.Auth = fmt.Sprintf("127.0.0.1:%d", port)
	conf := fmt.Sprintf(`server:
    listen: 127.0.0.1@%d
    rundir: %s
    udp-max-payload: 1232
database:
    storage: %s/db
log:
  - target: stderr
    any: notice
template:
  - id: default
    storage: %s
    semantic-checks: off
    journal-content: none
zone:
  - domain: test.
    file: test.zone
  - domain: signed.
    file: signed.zone.signed
  - domain: bogus.
    file: bogus.zone.signed
  - domain: nsec3.
    file: nsec3.zone.signed
  - domain: parent.
    file: parent.zone.signed
  - domain: child.parent.
    file: child.parent.zone.signed
  - domain: plain.parent.
    file: plain.parent.zone
  - domain: wrongds.parent.
    file: wrongds.parent.zone.signed
  - domain: broken.test.
    file: missing-on-purpose.zone
`, port, dir, dir, dir)
	for i, z := range extra {
		f := fmt.Sprintf("extra%d.zone", i)
		if err := os.WriteFile(filepath.Join(dir, f), []byte(z.Text), 0o644); err != nil {
			return nil, err
		}
		conf += fmt.Sprintf("  - domain: %s\n    file: %s\n", z.Origin, f)
	}
	if err := os.WriteFile(filepath.Join(dir, "knot.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	knotd, _ := lookPath("knotd")
	if err := e.start("knot", knotd, "-c", filepath.Join(dir, "knot.conf")); err != nil {
		return nil, err
	}
	if err := waitFor(e.Auth, "test.", dns.TypeSOA, false); err != nil {
		return nil, fmt.Errorf("knotd did not come up: %w (log: %s)", err, tail(filepath.Join(dir, "knot.log")))
	}
	if withResolver {
		if err := e.startUnbound(); err != nil {
			return nil, err
		}
	}
	ok = true
	return e, nil
}

func (e *Env) startUnbound() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	e.Resolver = fmt.Sprintf("127.0.0.1:%d", port)
	authPort := strings.TrimPrefix(e.Auth, "127.0.0.1:")
	var stubs strings.Builder
	for _, z := range []string{"test.", "signed.", "bogus.", "nsec3.", "parent.", "child.parent.", "plain.parent.", "wrongds.parent."} {
		fmt.Fprintf(&stubs, "stub-zone:\n    name: %q\n    stub-addr: 127.0.0.1@%s\n", z, authPort)
	}
	// slow. is delegated to a server that never answers: the resolver
	// keeps waiting and the client times out.
	hole, err := e.blackhole()
	if err != nil {
		return err
	}
	fmt.Fprintf(&stubs, "stub-zone:\n    name: \"slow.\"\n    stub-addr: 127.0.0.1@%d\n", hole)
	conf := fmt.Sprintf(`server:
    interface: 127.0.0.1@%d
    port: %d
    do-ip6: no
    access-control: 127.0.0.0/8 allow
    do-not-query-localhost: no
    username: ""
    chroot: ""
    directory: %q
    pidfile: %q
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "validator iterator"
    trust-anchor-file: %q
    val-log-level: 1
    num-threads: 1
    cache-max-negative-ttl: 1
    serve-expired: no
    harden-dnssec-stripped: yes
    edns-buffer-size: 1232
    max-udp-size: 1232
    qname-minimisation: no
    local-zone: "test." nodefault
    domain-insecure: "slow."
remote-control:
    control-enable: no
%s`, port, port, e.Dir, filepath.Join(e.Dir, "unbound.pid"), e.AnchorFile, stubs.String())
	cf := filepath.Join(e.Dir, "unbound.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		return err
	}
	unbound, _ := lookPath("unbound")
	if err := e.start("unbound", unbound, "-d", "-c", cf); err != nil {
		return err
	}
	if err := waitFor(e.Resolver, "www.signed.", dns.TypeCAA, true); err != nil {
		return fmt.Errorf("unbound did not come up: %w (log: %s)", err, tail(filepath.Join(e.Dir, "unbound.log")))
	}
	return nil
}

// sign writes ORIGIN.zone.signed signed with a fresh KSK and ZSK
// (ldns-keygen, ldns-signzone) and returns the KSK's DS record.
func (e *Env) sign(origin, text string) (string, error) {
	name := strings.TrimSuffix(origin, ".")
	if err := os.WriteFile(filepath.Join(e.Dir, name+".zone"), []byte(text), 0o644); err != nil {
		return "", err
	}
	keygen, _ := lookPath("ldns-keygen")
	signzone, _ := lookPath("ldns-signzone")
	run := func(path string, args ...string) (string, error) {
		cmd := exec.Command(path, args...)
		cmd.Dir = e.Dir
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("%s %s: %v: %s", filepath.Base(path), strings.Join(args, " "), err, ee.Stderr)
			}
			return "", err
		}
		return strings.TrimSpace(string(out)), nil
	}
	ksk, err := run(keygen, "-a", "ECDSAP256SHA256", "-k", origin)
	if err != nil {
		return "", err
	}
	zsk, err := run(keygen, "-a", "ECDSAP256SHA256", origin)
	if err != nil {
		return "", err
	}
	args := []string{"-f", name + ".zone.signed"}
	if origin == "nsec3." {
		args = append(args, "-n", "-s", "abcd", "-t", "0")
	}
	args = append(args, name+".zone", ksk, zsk)
	if _, err := run(signzone, args...); err != nil {
		return "", err
	}
	ds, err := os.ReadFile(filepath.Join(e.Dir, ksk+".ds"))
	return string(ds), err
}

var sigLine = regexp.MustCompile(`(?m)^(\S+)\s+\d+\s+IN\s+RRSIG\s+CAA\s.*\s(\S+)$`)

// breakSignature flips a byte of the signature over owner's CAA RRset.
func breakSignature(path, owner string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	done := false
	s = sigLine.ReplaceAllStringFunc(s, func(line string) string {
		m := sigLine.FindStringSubmatch(line)
		if m[1] != owner || done {
			return line
		}
		done = true
		sig := []byte(m[2])
		if sig[0] == 'A' {
			sig[0] = 'B'
		} else {
			sig[0] = 'A'
		}
		return strings.TrimSuffix(line, m[2]) + string(sig)
	})
	if !done {
		return fmt.Errorf("no RRSIG over CAA at %s in %s", owner, path)
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func (e *Env) start(name, path string, args ...string) error {
	logf, err := os.Create(filepath.Join(e.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Dir = e.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := proc{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(p.done) }()
	e.procs = append(e.procs, p)
	return nil
}

// blackhole listens on a free port for UDP and TCP and never answers.
func (e *Env) blackhole() (int, error) {
	port, err := freePort()
	if err != nil {
		return 0, err
	}
	pc, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return 0, err
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		pc.Close()
		return 0, err
	}
	e.closers = append(e.closers, func() { pc.Close(); ln.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return port, nil
}

// Stop ends the servers this Env started.
func (e *Env) Stop() {
	for _, c := range e.closers {
		c()
	}
	e.closers = nil
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(3 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	e.procs = nil
}

// freePort finds a port free for both UDP and TCP on 127.0.0.1.
func freePort() (int, error) {
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return port, nil
	}
	return 0, errors.New("no free port for UDP and TCP")
}

func waitFor(addr, name string, qtype uint16, wantAnswer bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var lastErr error
	for ctx.Err() == nil {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		c := &dns.Client{Timeout: 300 * time.Millisecond}
		r, _, err := c.ExchangeContext(ctx, m, addr)
		if err == nil && (!wantAnswer || len(r.Answer) > 0) {
			return nil
		}
		lastErr = err
		if err == nil {
			lastErr = fmt.Errorf("%s answered %s with no records", addr, dns.RcodeToString[r.Rcode])
		}
		time.Sleep(50 * time.Millisecond)
	}
	return lastErr
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

// Blackhole is a UDP and TCP listener on 127.0.0.1 that never answers, for
// timeout tests. It closes when the test ends.
func Blackhole(t testing.TB) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	return pc.LocalAddr().String()
}
