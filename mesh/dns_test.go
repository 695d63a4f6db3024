package mesh

import (
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeDNS is a real DNS server on loopback (miekg/dns) whose A and SRV
// answers the test can change.
type fakeDNS struct {
	mu   sync.Mutex
	a    map[string][]string // name -> IPv4 addresses
	srv  map[string][]dns.SRV
	addr string
}

func startDNS(t *testing.T) *fakeDNS {
	f := &fakeDNS{a: map[string][]string{}, srv: map[string][]dns.SRV{}}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().String()
	s := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		f.mu.Lock()
		for _, qq := range q.Question {
			switch qq.Qtype {
			case dns.TypeA:
				for _, ip := range f.a[qq.Name] {
					m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 1}, A: net.ParseIP(ip)})
				}
			case dns.TypeSRV:
				for _, r := range f.srv[qq.Name] {
					r.Hdr = dns.RR_Header{Name: qq.Name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: 1}
					m.Answer = append(m.Answer, &r)
				}
			}
		}
		f.mu.Unlock()
		w.WriteMsg(m)
	})}
	go s.ActivateAndServe()
	t.Cleanup(func() { s.Shutdown() })
	return f
}

func (f *fakeDNS) setA(name string, ips ...string) {
	f.mu.Lock()
	f.a[name] = ips
	f.mu.Unlock()
}

func TestDNSDiscoveryReResolves(t *testing.T) {
	one := newBackend(t, "one", "127.0.0.2", 0)
	two := newBackend(t, "two", "127.0.0.3", 0)
	_, p1, _ := net.SplitHostPort(one.addr)
	d := startDNS(t)
	d.setA("api.test.", "127.0.0.2")
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters:
  - name: api
    dns: [{name: "api.test.", type: A, port: ` + p1 + `, server: "` + d.addr + `", refresh: 100ms, region: eu}]
`
	_, url := startMesh(t, y, nil)
	client := newClient()
	var l load
	deadline := time.Now().Add(5 * time.Second)
	for l.by["one"] == 0 && time.Now().Before(deadline) {
		l.one(client, "GET", url+"/")
		time.Sleep(20 * time.Millisecond)
	}
	if l.by["one"] == 0 {
		t.Fatalf("A discovery never reached the backend: %v %v", l.by, l.failures())
	}

	// SRV answers carry their own port.
	_, p2s, _ := net.SplitHostPort(two.addr)
	p2, _ := strconv.Atoi(p2s)
	d.setA("two.test.", "127.0.0.3")
	d.mu.Lock()
	d.srv["_api._tcp.test."] = []dns.SRV{{Priority: 1, Weight: 1, Port: uint16(p2), Target: "two.test."}}
	d.mu.Unlock()
	addrs, err := Resolve(t.Context(), resolverFor(d.addr), DNSConfig{Name: "_api._tcp.test.", Type: "SRV"})
	if err != nil || len(addrs) != 1 || addrs[0] != two.addr {
		t.Fatalf("SRV resolve: %v %v, want [%s]", addrs, err, two.addr)
	}

	// Re-resolution: a backend on 127.0.0.4 with the first one's port, then
	// the A record changes to it and traffic must follow.
	three := &backend{t: t, name: "three"}
	three.health.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.4:"+p1)
	if err != nil {
		t.Skipf("SKIPPED re-resolution part: port %s busy on 127.0.0.4: %v", p1, err)
	}
	three.addr = ln.Addr().String()
	three.serve(ln)
	t.Cleanup(three.kill)
	d.setA("api.test.", "127.0.0.4")
	deadline = time.Now().Add(5 * time.Second)
	for l.by["three"] == 0 && time.Now().Before(deadline) {
		l.one(client, "GET", url+"/")
		time.Sleep(20 * time.Millisecond)
	}
	if l.by["three"] == 0 {
		t.Fatalf("the cluster did not follow the new A record: %v", l.by)
	}
}
