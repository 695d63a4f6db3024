package mesh

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const oneYAML = `
admin: 127.0.0.1:0
timings_interval: 50ms
listeners:
  - addr: 127.0.0.1:0
    max_header_bytes: 4096
    max_body_bytes: 1000
routes:
  - host: api.example
    path_prefix: /v1
    cluster: api
    strip_prefix: true
  - host: api.example
    path_prefix: /v1/special
    cluster: special
clusters:
  - name: api
    endpoints: [{address: "{{a}}", region: eu}]
  - name: special
    endpoints: [{address: "{{b}}", region: us}]
`

func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, req)
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line)
}

func TestRoutingHeadersAndBadInput(t *testing.T) {
	a := newBackend(t, "a", "127.0.0.2", 0)
	b := newBackend(t, "b", "127.0.0.3", 0)
	m, url := startMesh(t, oneYAML, map[string]string{"a": a.addr, "b": b.addr})
	addr := m.Addrs()[0].String()
	client := newClient()

	// Routing: host and longest prefix, prefix stripped where asked.
	req, _ := http.NewRequest("GET", url+"/v1/users?x=1", nil)
	req.Host = "api.example:8080"
	req.Header.Set("Connection", "keep-alive, X-Drop")
	req.Header.Set("X-Drop", "secret")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	req.Header.Set("X-Keep", "yes")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("X-Backend") != "a" {
		t.Fatalf("status %d from %q, want 200 from a", res.StatusCode, res.Header.Get("X-Backend"))
	}
	if res.Header.Get("X-Secret") != "" {
		t.Errorf("a response header named in Connection was forwarded")
	}
	h := a.header()
	for _, k := range []string{"X-Drop", "Keep-Alive", "Proxy-Authorization", "Connection"} {
		if h.Get(k) != "" {
			t.Errorf("hop-by-hop header %s was forwarded: %q", k, h.Get(k))
		}
	}
	if h.Get("X-Keep") != "yes" {
		t.Errorf("end-to-end header lost")
	}
	if got := h.Get("X-Forwarded-For"); got != "127.0.0.1" {
		t.Errorf("X-Forwarded-For %q: an untrusted listener replaces the client's value with the peer address", got)
	}
	if h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") != "api.example:8080" {
		t.Errorf("X-Forwarded-Proto %q, -Host %q", h.Get("X-Forwarded-Proto"), h.Get("X-Forwarded-Host"))
	}
	if a.lastPath != "/users" {
		t.Errorf("strip_prefix: backend saw %q, want /users", a.lastPath)
	}
	req, _ = http.NewRequest("GET", url+"/v1/special/x", nil)
	req.Host = "API.example"
	res, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("X-Backend") != "b" {
		t.Errorf("longest prefix /v1/special should win, got %q", res.Header.Get("X-Backend"))
	}

	cases := []struct {
		name, req, want string
	}{
		{"unknown host: never an open proxy", "GET /v1/x HTTP/1.1\r\nHost: evil.example\r\n\r\n", "404"},
		{"absolute-form to another host", "GET http://evil.example/v1/x HTTP/1.1\r\nHost: api.example\r\n\r\n", "404"},
		{"no route for the path", "GET /v2 HTTP/1.1\r\nHost: api.example\r\n\r\n", "404"},
		{"prefix matches whole segments", "GET /v1x HTTP/1.1\r\nHost: api.example\r\n\r\n", "404"},
		{"CONNECT", "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n", "405"},
		{"malformed request line", "GARBAGE\r\n\r\n", "400"},
		{"missing Host", "GET /v1 HTTP/1.1\r\n\r\n", "400"},
		{"bad header", "GET /v1 HTTP/1.1\r\nHost: api.example\r\nBad Header: x\r\n\r\n", "400"},
		{"oversized headers", "GET /v1 HTTP/1.1\r\nHost: api.example\r\nX-Big: " + strings.Repeat("a", 10000) + "\r\n\r\n", "431"},
		{"body over the limit", "POST /v1 HTTP/1.1\r\nHost: api.example\r\nContent-Length: 5000\r\n\r\n", "413"},
		// net/http answers the server-wide OPTIONS itself; it is not forwarded.
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: api.example\r\n\r\n", "200"},
	}
	for _, tc := range cases {
		got := rawRequest(t, addr, tc.req)
		if !strings.Contains(got, " "+tc.want+" ") {
			t.Errorf("%s: got %q, want %s", tc.name, got, tc.want)
		}
	}

	// Timings and metrics on the admin listener.
	time.Sleep(120 * time.Millisecond)
	admin := "http://" + m.AdminAddr().String()
	res, err = client.Get(admin + "/api/v1/mesh/timings")
	if err != nil {
		t.Fatal(err)
	}
	var rep TimingsReport
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	regions := map[string]uint64{}
	for _, r := range rep.Regions {
		for _, p := range r.Points {
			regions[r.Region] += p.Count
		}
	}
	if regions["eu"] != 1 || regions["us"] != 1 || regions["all"] != 2 {
		t.Errorf("timings by region %v, want eu 1, us 1, all 2", regions)
	}
	res, err = client.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`srekit_mesh_upstream_duration_seconds_count{cluster="api",endpoint="` + a.addr + `",outcome="ok",region="eu"} 1`,
		`srekit_mesh_upstream_connections_total`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestWarmPoolReusesConnections(t *testing.T) {
	a := newBackend(t, "a", "127.0.0.2", 0)
	b := newBackend(t, "b", "127.0.0.3", 0)
	m, url := startMesh(t, oneYAML, map[string]string{"a": a.addr, "b": b.addr})
	client := newClient()
	for range 50 {
		req, _ := http.NewRequest("GET", url+"/v1/", nil)
		req.Host = "api.example"
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	reused := testCounter(t, m, "srekit_mesh_upstream_connections_total", `reused="true"`)
	fresh := testCounter(t, m, "srekit_mesh_upstream_connections_total", `reused="false"`)
	if fresh != 1 || reused != 49 {
		t.Errorf("50 sequential requests: %v new connections, %v reused; want 1 and 49", fresh, reused)
	}
}

func testCounter(t *testing.T, m *Mesh, name, label string) float64 {
	t.Helper()
	mfs, err := m.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			s := ""
			for _, lp := range mt.GetLabel() {
				s += lp.GetName() + `="` + lp.GetValue() + `",`
			}
			if strings.Contains(s, label) {
				sum += mt.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func writeCert(t *testing.T, dir string) (string, string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "api.example"},
		DNSNames: []string{"api.example"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalECPrivateKey(key)
	cert, kf := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600)
	return cert, kf
}

func TestTLSListenerSpeaksHTTP2AndH2CToBackends(t *testing.T) {
	be := &backend{t: t, name: "h2c", h2c: true}
	be.health.Store(true)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	be.addr = ln.Addr().String()
	be.serve(ln)
	t.Cleanup(be.kill)
	cert, key := writeCert(t, t.TempDir())
	y := `
admin: "off"
listeners:
  - {addr: "127.0.0.1:0", cert: "` + cert + `", key: "` + key + `"}
routes: [{cluster: api}]
clusters:
  - name: api
    protocol: h2
    endpoints: [{address: "{{a}}"}]
`
	m, _ := startMesh(t, y, map[string]string{"a": be.addr})
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true}
	client := &http.Client{Transport: tr}
	res, err := client.Get("https://" + m.Addrs()[0].String() + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Errorf("client spoke %s to a TLS listener, want HTTP/2", res.Proto)
	}
	if be.lastProto != 2 {
		t.Errorf("backend saw HTTP/%d, want h2c (HTTP/2)", be.lastProto)
	}
	if be.header().Get("X-Forwarded-Proto") != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", be.header().Get("X-Forwarded-Proto"))
	}
}

func TestH2CListener(t *testing.T) {
	a := newBackend(t, "a", "127.0.0.2", 0)
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0", h2c: true}]
routes: [{cluster: api}]
clusters: [{name: api, endpoints: [{address: "{{a}}"}]}]
`
	m, _ := startMesh(t, y, map[string]string{"a": a.addr})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &p}}
	res, err := client.Get("http://" + m.Addrs()[0].String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != 200 {
		t.Errorf("h2c listener answered %s %d", res.Proto, res.StatusCode)
	}
}

func TestReloadFromFileKeepsEndpointState(t *testing.T) {
	a := newBackend(t, "a", "127.0.0.2", 0)
	b := newBackend(t, "b", "127.0.0.3", 0)
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.yaml")
	y := strings.ReplaceAll(strings.ReplaceAll(oneYAML, "{{a}}", a.addr), "{{b}}", b.addr)
	os.WriteFile(path, []byte(y), 0o600)
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Close(t.Context())
	before := m.state.Load().clusters["api"].endpoints()[0]
	os.WriteFile(path, []byte(y+"\n    balancer: round_robin\n"), 0o600)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	after := m.state.Load().clusters["api"].endpoints()[0]
	if before != after {
		t.Errorf("an endpoint kept across a reload lost its state")
	}
	os.WriteFile(path, []byte("listeners: [}"), 0o600)
	if err := m.Reload(); err == nil || !strings.Contains(err.Error(), "mesh.yaml") {
		t.Errorf("a broken file should be refused naming it, got %v", err)
	}
	if m.state.Load().clusters["api"] == nil {
		t.Errorf("a failed reload changed the running config")
	}
}

func TestAccessLog(t *testing.T) {
	a := newBackend(t, "a", "127.0.0.2", 0)
	logf := filepath.Join(t.TempDir(), "access.log")
	y := `
admin: "off"
access_log: "` + logf + `"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters: [{name: api, endpoints: [{address: "{{a}}", region: eu}]}]
`
	m, url := startMesh(t, y, map[string]string{"a": a.addr})
	res, err := newClient().Get(url + "/logged?q=1")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	m.Close(t.Context())
	var line struct {
		Path, Cluster, Region string
		Code                  int
	}
	b, _ := os.ReadFile(logf)
	if err := json.Unmarshal(b, &line); err != nil {
		t.Fatalf("access log %q: %v", b, err)
	}
	if line.Path != "/logged" || line.Cluster != "api" || line.Region != "eu" || line.Code != 200 {
		t.Errorf("access log line %+v", line)
	}
}
