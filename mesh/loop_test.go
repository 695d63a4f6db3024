package mesh

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests here run on both fast-path engines: the event loops
// (event_loops: 0, the default on Linux), the same with busy polling, and a
// goroutine per connection (event_loops: -1).
var engines = []string{"0", "0, busy_poll: 300us", "-1"}

const engineYAML = `
admin: "off"
listeners: [{addr: "127.0.0.1:0", event_loops: {{loops}}}]
routes: [{cluster: app}]
clusters:
  - {name: app, endpoints: [{address: "{{app}}"}]}
`

// bodyBackend answers /cl/N, /chunked/N and /close/N with N pseudo-random
// bytes framed by Content-Length, chunks of random sizes, or the end of the
// connection; /slow waits 300 ms; anything else answers "ok". With
// idleClose set it closes every connection soon after answering, as a
// backend with a short keep-alive timeout does.
type bodyBackend struct {
	ln        net.Listener
	idleClose time.Duration
	mu        sync.Mutex
	conns     int
	dropped   int // /race requests read and then dropped with the connection
}

func newBodyBackend(t *testing.T, idleClose time.Duration) *bodyBackend {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &bodyBackend{ln: ln, idleClose: idleClose}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			b.mu.Unlock()
			go b.serve(c)
		}
	}()
	return b
}

func testBody(n int) []byte {
	var seed [32]byte
	seed[0], seed[1], seed[2] = byte(n), byte(n>>8), byte(n>>16)
	p := make([]byte, n)
	rand.NewChaCha8(seed).Read(p)
	return p
}

func (b *bodyBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for served := 0; ; served++ {
		if b.idleClose > 0 {
			c.SetReadDeadline(time.Now().Add(b.idleClose))
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		kind, size, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
		n, _ := strconv.Atoi(size)
		body := testBody(n)
		bw := bufio.NewWriter(c)
		switch kind {
		case "cl":
			fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", n)
			bw.Write(body)
		case "chunked":
			bw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
			r := rand.New(rand.NewPCG(uint64(n), 9))
			for len(body) > 0 {
				k := min(len(body), 1+r.IntN(40000))
				fmt.Fprintf(bw, "%x;ext=%d\r\n", k, k)
				bw.Write(body[:k])
				bw.WriteString("\r\n")
				body = body[k:]
				if r.IntN(4) == 0 {
					bw.Flush() // chunk boundaries fall anywhere in the proxy's reads
				}
			}
			bw.WriteString("0\r\nX-Done: yes\r\n\r\n")
		case "close":
			bw.WriteString("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
			bw.Write(body)
			bw.Flush()
			return
		case "race":
			// A keep-alive close that crosses the next request: the
			// request was read, and the connection closes unanswered.
			if served > 0 {
				b.mu.Lock()
				b.dropped++
				b.mu.Unlock()
				return
			}
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		case "slow":
			time.Sleep(300 * time.Millisecond)
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
		default:
			bw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		if bw.Flush() != nil {
			return
		}
	}
}

// TestLargeBodiesToASlowClient relays big bodies in every framing to a
// client that reads slowly (so the proxy must hold back and resume), and
// checks every byte and that the connection then serves another request.
func TestLargeBodiesToASlowClient(t *testing.T) {
	for _, loops := range engines {
		t.Run("event_loops="+loops, func(t *testing.T) {
			t.Parallel()
			b := newBodyBackend(t, 0)
			m, _ := startMesh(t, engineYAML, map[string]string{"app": b.ln.Addr().String(), "loops": loops})
			c, err := net.Dial("tcp", m.Addrs()[0].String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A small receive buffer and slow reads keep the proxy's
			// writes to this client blocked for a while.
			c.(*net.TCPConn).SetReadBuffer(128 << 10)
			br := bufio.NewReaderSize(&slowReader{r: c}, 4096)
			for _, path := range []string{"/cl/6000000", "/chunked/5000000", "/cl/10", "/close/5000000"} {
				c.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: big.example\r\n\r\n", path)
				res, err := http.ReadResponse(br, nil)
				if err != nil {
					t.Fatalf("%s: %v", path, err)
				}
				got, err := io.ReadAll(res.Body)
				if err != nil {
					t.Fatalf("%s: body: %v", path, err)
				}
				n, _ := strconv.Atoi(path[strings.LastIndexByte(path, '/')+1:])
				if want := testBody(n); !bytes.Equal(got, want) {
					t.Fatalf("%s: body differs: %d bytes, sha256 %x, want %d bytes, sha256 %x",
						path, len(got), sha256.Sum256(got), len(want), sha256.Sum256(want))
				}
				if strings.HasPrefix(path, "/chunked") && res.Trailer.Get("X-Done") != "yes" {
					t.Errorf("%s: trailer lost: %v", path, res.Trailer)
				}
				if res.StatusCode != 200 {
					t.Fatalf("%s: status %d", path, res.StatusCode)
				}
			}
		})
	}
}

// slowReader reads at most 8 KiB at a time, pausing now and then, and
// for 150 ms every 2 MiB or so: long enough for the proxy to fill every
// socket buffer on the way and have to wait for the client.
type slowReader struct {
	r io.Reader
	n int
}

func (s *slowReader) Read(p []byte) (int, error) {
	s.n++
	switch {
	case s.n%256 == 1:
		time.Sleep(150 * time.Millisecond)
	case s.n%8 == 0:
		time.Sleep(time.Millisecond)
	}
	return s.r.Read(p[:min(len(p), 8<<10)])
}

// TestStalePooledConnections checks that requests over pooled connections
// the backend has closed meanwhile are sent again on new ones: none fails.
func TestStalePooledConnections(t *testing.T) {
	for _, loops := range engines {
		t.Run("event_loops="+loops, func(t *testing.T) {
			t.Parallel()
			b := newBodyBackend(t, 30*time.Millisecond)
			_, url := startMesh(t, engineYAML, map[string]string{"app": b.ln.Addr().String(), "loops": loops})
			client := newClient()
			for i := range 12 {
				if i%3 == 0 {
					time.Sleep(80 * time.Millisecond) // the pooled connections are closed by now
				}
				getOK(t, client, url+"/x", i)
			}
			b.mu.Lock()
			conns := b.conns
			b.mu.Unlock()
			if conns < 4 {
				t.Errorf("the backend saw %d connections; the idle closes should have forced at least 4", conns)
			}
		})
	}
}

// TestStaleConnectionRace has the backend close each kept-alive connection
// right after reading its second request, unanswered, as when its idle
// timeout crosses a new request: the proxy cannot tell that from a close
// while idle, so an idempotent request goes once more on a new connection
// and the client never sees the race.
func TestStaleConnectionRace(t *testing.T) {
	for _, loops := range engines {
		t.Run("event_loops="+loops, func(t *testing.T) {
			t.Parallel()
			b := newBodyBackend(t, 0)
			_, url := startMesh(t, engineYAML, map[string]string{"app": b.ln.Addr().String(), "loops": loops})
			client := newClient()
			const n = 10
			for i := range n {
				getOK(t, client, url+"/race", i)
			}
			b.mu.Lock()
			conns, dropped := b.conns, b.dropped
			b.mu.Unlock()
			// Every request after the first met a dropped connection first.
			if dropped != n-1 || conns != n {
				t.Errorf("backend: %d connections, %d dropped requests; want %d and %d", conns, dropped, n, n-1)
			}
		})
	}
}

// TestShutdownLetsRequestsFinish closes the mesh while a slow request is
// in flight: it is answered in full, idle connections are closed, and new
// connections are refused.
func TestShutdownLetsRequestsFinish(t *testing.T) {
	for _, loops := range engines {
		t.Run("event_loops="+loops, func(t *testing.T) {
			t.Parallel()
			b := newBodyBackend(t, 0)
			m, _ := startMesh(t, engineYAML, map[string]string{"app": b.ln.Addr().String(), "loops": loops})
			addr := m.Addrs()[0].String()
			idle, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer idle.Close()
			fmt.Fprintf(idle, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n")
			ibr := bufio.NewReader(idle)
			if res, err := http.ReadResponse(ibr, nil); err != nil || res.StatusCode != 200 {
				t.Fatalf("idle connection's first request: %v", err)
			}
			io.Copy(io.Discard, io.LimitReader(ibr, 2))

			busy, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			busy.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
			time.Sleep(100 * time.Millisecond) // the request is with the backend
			closed := make(chan error, 1)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				closed <- m.Close(ctx)
			}()
			res, err := http.ReadResponse(bufio.NewReader(busy), nil)
			if err != nil {
				t.Fatalf("the request in flight during shutdown: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != 200 || string(body) != "slow" {
				t.Fatalf("the request in flight during shutdown: %d %q", res.StatusCode, body)
			}
			if err := <-closed; err != nil {
				t.Fatalf("Close: %v", err)
			}
			idle.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := ibr.ReadByte(); err == nil {
				t.Error("the idle connection was not closed")
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Error("a new connection was accepted after Close")
			}
		})
	}
}

// TestHostNameEndpoint checks an endpoint given by host name, which the
// event loops do not resolve: its requests are handed to the goroutine
// path, which does.
func TestHostNameEndpoint(t *testing.T) {
	for _, loops := range engines {
		t.Run("event_loops="+loops, func(t *testing.T) {
			t.Parallel()
			b := newBodyBackend(t, 0)
			_, port, _ := net.SplitHostPort(b.ln.Addr().String())
			_, url := startMesh(t, engineYAML, map[string]string{"app": "localhost:" + port, "loops": loops})
			client := newClient()
			for i := range 3 {
				getOK(t, client, url+"/x", i)
			}
		})
	}
}

// getOK fetches url (request number i) and fails unless bodyBackend's "ok"
// comes back.
func getOK(t *testing.T, client *http.Client, url string, i int) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("request %d: %v", i, err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != "ok" {
		t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
	}
}

// TestBusyPoll checks busy polling: requests that come while a loop spins
// are found by the spin (counted how="spin"), none without busy_poll, and a
// loop that spins still keeps a per-try timeout to its 5 ms tick.
func TestBusyPoll(t *testing.T) {
	const y = `
admin: "off"
listeners: [{addr: "127.0.0.1:0", busy_poll: {{busy}}}]
routes: [{cluster: app}]
clusters:
  - {name: app, endpoints: [{address: "{{app}}"}], retry: {attempts: 1, per_try_timeout: 100ms}}
`
	for _, busy := range []string{"1s", "0s"} {
		t.Run("busy_poll="+busy, func(t *testing.T) {
			b := newBodyBackend(t, 0)
			m, url := startMesh(t, y, map[string]string{"app": b.ln.Addr().String(), "busy": busy})
			client := newClient()
			// Gaps longer than the loop's 5 ms deadline tick: spinning
			// goes on across the tick.
			for i := range 20 {
				getOK(t, client, url+"/", i)
				time.Sleep(10 * time.Millisecond)
			}
			// A loop that spun past the timeout would relay the backend's
			// 200 after 300 ms.
			resp, err := client.Get(url + "/slow")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("/slow with a 100ms per-try timeout: %d, want 504 before the backend's answer at 300ms", resp.StatusCode)
			}
			// New connections while the loop spins: it accepts them itself.
			for i := range 5 {
				getOK(t, newClient(), url+"/", i)
			}
			if accepted := m.servers[0].(*fastServer).loopAccepted.Load(); runtime.GOOS == "linux" && (busy == "1s") != (accepted > 0) {
				t.Errorf("busy_poll %s: the loops accepted %d connections themselves", busy, accepted)
			}
			spun := testCounter(t, m, "srekit_mesh_loop_polls_total", `how="spin"`)
			waited := testCounter(t, m, "srekit_mesh_loop_polls_total", `how="wait"`)
			switch {
			case runtime.GOOS != "linux":
				// No event loops: busy_poll has nothing to do.
			case busy == "0s" && spun != 0:
				t.Errorf("without busy_poll %v polls were counted as spins", spun)
			case busy == "1s" && (spun < 30 || waited > 3):
				// Everything after the first connection comes within the
				// second of spinning that the last work started.
				t.Errorf("busy_poll: 1s: %v polls found work spinning, %v waiting; want all but the first few by spinning", spun, waited)
			}
		})
	}
}
