package mesh

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawBackend answers with hand-written responses chosen by path, so that
// the tests control framing exactly (chunked, close-delimited, trailers),
// and records the last request as the backend parsed it.
type rawBackend struct {
	addr string
	mu   sync.Mutex
	last *http.Request
	hits int
}

func newRawBackend(t *testing.T) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{addr: ln.Addr().String()}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

func (b *rawBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		b.mu.Lock()
		b.last, b.hits = req, b.hits+1
		b.mu.Unlock()
		path := req.URL.Path
		if strings.HasPrefix(path, "/slow") {
			time.Sleep(300 * time.Millisecond)
		}
		resp := ""
		keep := true
		switch {
		case strings.HasSuffix(path, "/chunked"):
			resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n"
		case strings.HasSuffix(path, "/until-close"):
			resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nall of this until the end"
			keep = false
		case strings.HasSuffix(path, "/http10"):
			resp = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nold"
			keep = false
		case strings.HasSuffix(path, "/204"):
			resp = "HTTP/1.1 204 No Content\r\nX-Kind: none\r\n\r\n"
		case strings.HasSuffix(path, "/304"):
			resp = "HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\n\r\n"
		case strings.HasSuffix(path, "/interim"):
			resp = "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
		case strings.HasSuffix(path, "/503"):
			resp = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nbusy\n"
		case strings.HasSuffix(path, "/big"):
			body := strings.Repeat("0123456789", 30000)
			resp = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		case strings.HasSuffix(path, "/head-with-body"):
			// A broken backend: a body even for HEAD, in the same write.
			resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
		case strings.HasSuffix(path, "/bad"):
			resp = "HTTP/1.1 2x0 Nope\r\n\r\n"
			keep = false
		default:
			body := "hello " + path + "\n"
			resp = fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: X-Secret, Keep-Alive\r\nKeep-Alive: timeout=5\r\nX-Secret: hop\r\nX-Backend: raw\r\nContent-Length: %d\r\n\r\n", len(body))
			if req.Method != "HEAD" {
				resp += body
			}
		}
		if _, err := io.WriteString(c, resp); err != nil || !keep {
			return
		}
	}
}

func (b *rawBackend) lastRequest() *http.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.last
	b.last = nil
	return r
}

const parityYAML = `
admin: "off"
listeners:
  - {addr: "127.0.0.1:0", max_header_bytes: 4096, disable_fast_path: {{slow}}, event_loops: {{loops}}}
  - {addr: "127.0.0.1:0", trust_forwarded: true, disable_fast_path: {{slow}}, event_loops: {{loops}}}
routes:
  - {path_prefix: /api, cluster: raw, strip_prefix: true}
  - {host: raw.example, cluster: raw}
  - {host: down.example, cluster: down}
clusters:
  - {name: raw, endpoints: [{address: "{{raw}}"}]}
  - {name: down, endpoints: [{address: "127.0.0.1:1"}], retry: {attempts: 1}}
`

// exchange is what one client request produced, as the client and the
// backend saw it.
type exchange struct {
	responses []string // status, headers (Date dropped) and body of each response, as parsed by a client
	closed    bool     // the proxy closed the connection after the responses
	upstream  string   // the request the backend parsed (method, URI, Host, headers); "" if none
}

// sendRaw writes raw to addr, reads n responses (HEAD-aware via method) and
// reports whether the connection was then closed.
func sendRaw(t *testing.T, addr, raw string, methods []string, b *rawBackend) exchange {
	t.Helper()
	b.lastRequest()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var ex exchange
	br := bufio.NewReader(c)
	for _, m := range methods {
		res, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			ex.responses = append(ex.responses, "read error")
			break
		}
		body, _ := io.ReadAll(res.Body) // a reset after a refusal is timing, not behaviour
		res.Header.Del("Date")
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s close=%v te=%v len=%d\n", res.Status, res.Close, res.TransferEncoding, res.ContentLength)
		res.Header.Write(&sb)
		fmt.Fprintf(&sb, "\n%q trailer=%v", body, res.Trailer)
		ex.responses = append(ex.responses, sb.String())
	}
	if r := b.lastRequest(); r != nil {
		var sb strings.Builder
		fmt.Fprintf(&sb, "%s %s host=%s cl=%d\n", r.Method, r.RequestURI, r.Host, r.ContentLength)
		r.Header.Write(&sb)
		ex.upstream = sb.String()
	}
	// Kept open: a follow-up request on the same connection is answered.
	io.WriteString(c, "GET /ping HTTP/1.1\r\nHost: raw.example\r\n\r\n")
	if res, err := http.ReadResponse(br, nil); err != nil {
		ex.closed = true
	} else {
		res.Body.Close()
	}
	return ex
}

// TestFastPathParity sends the same requests (well-formed, malformed,
// pipelined, with hop-by-hop headers, to backends answering in every
// framing) through the fast path and through net/http alone, and checks
// that clients and backends see the same.
func TestFastPathParity(t *testing.T) {
	huge := strings.Repeat("a", 9000)
	cases := []struct {
		name, raw string
		methods   []string
		listener  int
	}{
		{"plain GET", "GET /api/v1/x?q=1&r=%20 HTTP/1.1\r\nHost: h.example\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n", []string{"GET"}, 0},
		{"no user agent, lower-case names", "GET /api HTTP/1.1\r\nhost: h.example\r\naccept: text/plain\r\nx-multi: 1\r\nX-Multi: 2\r\n\r\n", []string{"GET"}, 0},
		{"hop-by-hop", "GET /x HTTP/1.1\r\nHost: raw.example\r\nConnection: X-Private, keep-alive\r\nX-Private: secret\r\nKeep-Alive: 300\r\nProxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nTe: trailers, deflate\r\nTrailer: X-T\r\nX-Kept: yes\r\n\r\n", []string{"GET"}, 0},
		{"forwarded, untrusted", "GET /x HTTP/1.1\r\nHost: raw.example:8080\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n\r\n", []string{"GET"}, 0},
		{"forwarded, trusted", "GET /x HTTP/1.1\r\nHost: raw.example\r\nX-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 2.2.2.2, 3.3.3.3\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: front.example\r\n\r\n", []string{"GET"}, 1},
		{"trusted without prior", "GET /x HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 1},
		{"HEAD", "HEAD /x HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"HEAD"}, 0},
		{"HEAD answered with a body", "HEAD /head-with-body HTTP/1.1\r\nHost: raw.example\r\n\r\nGET /x HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"HEAD", "GET"}, 0},
		{"204", "GET /204 HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"304", "GET /304 HTTP/1.1\r\nHost: raw.example\r\nIf-None-Match: \"x\"\r\n\r\n", []string{"GET"}, 0},
		{"chunked with trailer", "GET /chunked HTTP/1.1\r\nHost: raw.example\r\nTE: trailers\r\n\r\n", []string{"GET"}, 0},
		{"until close", "GET /until-close HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"HTTP/1.0 backend", "GET /http10 HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"interim 103 dropped", "GET /interim HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"big body", "GET /big HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"503 retried then relayed", "GET /503 HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"bad backend response", "GET /bad HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"backend down", "GET / HTTP/1.1\r\nHost: down.example\r\n\r\n", []string{"GET"}, 0},
		{"Connection: close", "GET /x HTTP/1.1\r\nHost: raw.example\r\nConnection: close\r\n\r\n", []string{"GET"}, 0},
		{"pipelined", "GET /a HTTP/1.1\r\nHost: raw.example\r\n\r\nHEAD /b HTTP/1.1\r\nHost: raw.example\r\n\r\nGET /chunked HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET", "HEAD", "GET"}, 0},
		{"pipelined, then one for net/http", "GET /a HTTP/1.1\r\nHost: raw.example\r\n\r\nPOST /b HTTP/1.1\r\nHost: raw.example\r\nContent-Length: 4\r\n\r\nbodyGET /c HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET", "POST", "GET"}, 0},
		{"POST without body", "POST /p HTTP/1.1\r\nHost: raw.example\r\nContent-Length: 0\r\n\r\n", []string{"POST"}, 0},
		{"GET with Content-Length 0", "GET /p HTTP/1.1\r\nHost: raw.example\r\nContent-Length: 0\r\n\r\n", []string{"GET"}, 0},
		{"DELETE", "DELETE /p HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"DELETE"}, 0},
		{"strip prefix with query", "GET /api/v1/items?x=1 HTTP/1.1\r\nHost: any\r\n\r\n", []string{"GET"}, 0},
		{"strip prefix exactly", "GET /api?x HTTP/1.1\r\nHost: any\r\n\r\n", []string{"GET"}, 0},
		{"escaped path", "GET /api/a%20b/%2F HTTP/1.1\r\nHost: any\r\n\r\n", []string{"GET"}, 0},
		{"path with !*()", "GET /x!(y)* HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"unrouted host", "GET /x HTTP/1.1\r\nHost: nowhere.example\r\n\r\n", []string{"GET"}, 0},
		{"missing Host", "GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n", []string{"GET"}, 0},
		{"two Hosts", "GET /x HTTP/1.1\r\nHost: raw.example\r\nHost: other\r\n\r\n", []string{"GET"}, 0},
		{"bad header line", "GET /x HTTP/1.1\r\nHost: raw.example\r\nNo colon here\r\n\r\n", []string{"GET"}, 0},
		{"space in header name", "GET /x HTTP/1.1\r\nHost: raw.example\r\nBad Name: x\r\n\r\n", []string{"GET"}, 0},
		{"control byte in value", "GET /x HTTP/1.1\r\nHost: raw.example\r\nX-A: a\x01b\r\n\r\n", []string{"GET"}, 0},
		{"bad request line", "GET /x\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"bare LF", "GET /x HTTP/1.1\nHost: raw.example\n\n", []string{"GET"}, 0},
		{"folded header", "GET /x HTTP/1.1\r\nHost: raw.example\r\nX-A: a\r\n b\r\n\r\n", []string{"GET"}, 0},
		{"huge header", "GET /x HTTP/1.1\r\nHost: raw.example\r\nX-Huge: " + huge + "\r\n\r\n", []string{"GET"}, 0},
		{"huge header, trusted listener", "GET /x HTTP/1.1\r\nHost: raw.example\r\nX-Huge: " + huge + huge + "\r\n\r\n", []string{"GET"}, 1},
		{"HTTP/1.0 client", "GET /x HTTP/1.0\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"absolute form", "GET http://raw.example/x HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"absolute form, other host", "GET http://other.example/x HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"GET"}, 0},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: raw.example\r\n\r\n", []string{"OPTIONS"}, 0},
		{"CONNECT", "CONNECT raw.example:443 HTTP/1.1\r\nHost: raw.example:443\r\n\r\n", []string{"CONNECT"}, 0},
		{"Expect", "PUT /e HTTP/1.1\r\nHost: raw.example\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok", []string{"PUT", "PUT"}, 0},
		{"chunked request body", "POST /c HTTP/1.1\r\nHost: raw.example\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", []string{"POST"}, 0},
		{"Upgrade without Connection", "GET /u HTTP/1.1\r\nHost: raw.example\r\nUpgrade: websocket\r\n\r\n", []string{"GET"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := newRawBackend(t)
			loopM, _ := startMesh(t, parityYAML, map[string]string{"raw": b.addr, "slow": "false", "loops": "0"})
			goM, _ := startMesh(t, parityYAML, map[string]string{"raw": b.addr, "slow": "false", "loops": "-1"})
			slowM, _ := startMesh(t, parityYAML, map[string]string{"raw": b.addr, "slow": "true", "loops": "0"})
			for _, m := range []*Mesh{loopM, goM} {
				if _, ok := m.servers[0].(*fastServer); !ok {
					t.Fatal("the plain listener does not use the fast path")
				}
			}
			if _, ok := slowM.servers[0].(*http.Server); !ok {
				t.Fatal("disable_fast_path did not give a net/http listener")
			}
			want := sendRaw(t, slowM.Addrs()[tc.listener].String(), tc.raw, tc.methods, b)
			got := sendRaw(t, goM.Addrs()[tc.listener].String(), tc.raw, tc.methods, b)
			if !slices.Equal(got.responses, want.responses) || got.closed != want.closed || got.upstream != want.upstream {
				t.Errorf("goroutine fast path and net/http differ\nfast:     %q closed=%v\nupstream: %q\nnet/http: %q closed=%v\nupstream: %q",
					got.responses, got.closed, got.upstream, want.responses, want.closed, want.upstream)
			}
			got = sendRaw(t, loopM.Addrs()[tc.listener].String(), tc.raw, tc.methods, b)
			if !slices.Equal(got.responses, want.responses) || got.closed != want.closed || got.upstream != want.upstream {
				t.Errorf("event loop and net/http differ\nloop:     %q closed=%v\nupstream: %q\nnet/http: %q closed=%v\nupstream: %q",
					got.responses, got.closed, got.upstream, want.responses, want.closed, want.upstream)
			}
			if runtime.GOOS == "linux" && loopM.servers[tc.listener].(*fastServer).adopted.Load() == 0 {
				t.Error("no connection was served by an event loop")
			}
			if len(got.responses) != len(tc.methods) {
				t.Errorf("%d responses, want %d", len(got.responses), len(tc.methods))
			}
			// Spot checks that the parity is about the right behaviour.
			switch tc.name {
			case "hop-by-hop":
				for _, bad := range []string{"X-Private", "Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Trailer", "Connection"} {
					if strings.Contains(got.upstream, bad+":") {
						t.Errorf("hop-by-hop %s reached the backend:\n%s", bad, got.upstream)
					}
				}
				if !strings.Contains(got.upstream, "Te: trailers\r\n") || !strings.Contains(got.upstream, "X-Kept: yes") {
					t.Errorf("Te: trailers or an ordinary header was lost:\n%s", got.upstream)
				}
				if strings.Contains(got.responses[0], "X-Secret") || strings.Contains(got.responses[0], "Keep-Alive") {
					t.Errorf("hop-by-hop response headers reached the client:\n%s", got.responses[0])
				}
			case "forwarded, trusted":
				if !strings.Contains(got.upstream, "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1\r\n") ||
					!strings.Contains(got.upstream, "X-Forwarded-Proto: https\r\n") || !strings.Contains(got.upstream, "X-Forwarded-Host: front.example\r\n") {
					t.Errorf("trusted X-Forwarded-* wrong:\n%s", got.upstream)
				}
			case "forwarded, untrusted":
				if !strings.Contains(got.upstream, "X-Forwarded-For: 127.0.0.1\r\n") ||
					!strings.Contains(got.upstream, "X-Forwarded-Proto: http\r\n") || !strings.Contains(got.upstream, "X-Forwarded-Host: raw.example:8080\r\n") {
					t.Errorf("untrusted X-Forwarded-* wrong:\n%s", got.upstream)
				}
			case "huge header":
				if !strings.HasPrefix(got.responses[0], "431 ") {
					t.Errorf("huge header: %q", got.responses[0])
				}
			case "chunked with trailer":
				if !strings.Contains(got.responses[0], `"hello, world" trailer=map[X-Sum:[12]]`) {
					t.Errorf("chunked: %q", got.responses[0])
				}
			case "pipelined":
				if !strings.HasPrefix(got.responses[2], "200 ") {
					t.Errorf("pipelined: %q", got.responses)
				}
			}
		})
	}
}

// TestFastPathClientHangUpWhileStreaming checks that a client leaving in
// the middle of a response leaves the proxy serving others.
func TestFastPathKeepsServingAfterHangUps(t *testing.T) {
	for _, loops := range engines {
		t.Run("event_loops="+loops, func(t *testing.T) {
			b := newRawBackend(t)
			m, url := startMesh(t, parityYAML, map[string]string{"raw": b.addr, "slow": "false", "loops": loops})
			addr := m.Addrs()[0].String()
			for range 5 {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "GET /big HTTP/1.1\r\nHost: raw.example\r\n\r\n")
				c.Read(make([]byte, 100))
				c.Close()
				c, err = net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: raw.example\r\n\r\n")
				time.Sleep(100 * time.Millisecond) // the hang-up watch has started
				c.Close()
			}
			req, _ := http.NewRequest("GET", url+"/x", nil)
			req.Host = "raw.example"
			res, err := newClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !bytes.Contains(body, []byte("hello /x")) {
				t.Fatalf("after hang-ups: %d %q", res.StatusCode, body)
			}
			deadline := time.Now().Add(3 * time.Second)
			for testHistogramCount(t, m, "srekit_mesh_request_duration_seconds", `code="client_closed"`) < 5 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if n := testHistogramCount(t, m, "srekit_mesh_request_duration_seconds", `code="client_closed"`); n < 5 {
				t.Errorf("client_closed requests: %d, want 5 (the slow ones)", n)
			}
		})
	}
}

// TestFastPathHeadInPiecesAndSlowClients checks a head that arrives in
// pieces is served, and one that never completes is cut off after
// read_header_timeout.
func TestFastPathHeadInPiecesAndSlowClients(t *testing.T) {
	for _, loops := range engines {
		t.Run("event_loops="+loops, func(t *testing.T) {
			b := newRawBackend(t)
			y := strings.Replace(parityYAML, "max_header_bytes: 4096,", "max_header_bytes: 4096, read_header_timeout: 300ms,", 1)
			m, _ := startMesh(t, y, map[string]string{"raw": b.addr, "slow": "false", "loops": loops})
			c, err := net.Dial("tcp", m.Addrs()[0].String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			for _, part := range []string{"GET /pie", "ces HTTP/1.1\r\nHo", "st: raw.example\r\n", "\r\n"} {
				io.WriteString(c, part)
				time.Sleep(30 * time.Millisecond)
			}
			br := bufio.NewReader(c)
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 || string(body) != "hello /pieces\n" {
				t.Fatalf("head in pieces: %d %q", res.StatusCode, body)
			}
			// Now a slow client: half a head, then nothing.
			io.WriteString(c, "GET /x HTTP/1.1\r\nHost: raw")
			startWait := time.Now()
			if _, err := br.ReadByte(); err == nil {
				t.Fatal("an incomplete head got an answer")
			}
			if waited := time.Since(startWait); waited > 4*time.Second {
				t.Fatalf("an incomplete head held the connection for %v", waited)
			}
		})
	}
}
