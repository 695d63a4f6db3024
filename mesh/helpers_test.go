package mesh

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// backend is a test backend on its own loopback address with injected
// latency: a "region" for the tests. It can be killed and revived on the
// same address.
type backend struct {
	t      testing.TB
	name   string
	addr   string
	delay  atomic.Int64 // nanoseconds
	status atomic.Int64 // 0 means 200
	hits   atomic.Int64
	health atomic.Bool // /healthz answers 200 when true

	mu  sync.Mutex
	srv *http.Server
	h2c bool
	// lastReq keeps the last request's headers for header tests.
	lastReq   http.Header
	lastPath  string
	lastProto int
}

// newBackend listens on ip:0 (127.0.0.2 and friends are loopback on Linux).
func newBackend(t testing.TB, name, ip string, delay time.Duration) *backend {
	t.Helper()
	b := &backend{t: t, name: name}
	b.delay.Store(int64(delay))
	b.health.Store(true)
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v (is %s a loopback address here?)", ip, err, ip)
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	t.Cleanup(b.kill)
	return b
}

func (b *backend) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(b.handle), ErrorLog: nil}
	if b.h2c {
		var p http.Protocols
		p.SetHTTP1(true)
		p.SetUnencryptedHTTP2(true)
		srv.Protocols = &p
	}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln)
}

func (b *backend) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		// The injected delay stands for network distance: checks see it too.
		time.Sleep(time.Duration(b.delay.Load()))
		if b.health.Load() {
			w.WriteHeader(200)
		} else {
			w.WriteHeader(503)
		}
		return
	}
	b.hits.Add(1)
	b.mu.Lock()
	b.lastReq = r.Header.Clone()
	b.lastPath = r.URL.Path
	b.lastProto = r.ProtoMajor
	b.mu.Unlock()
	io.Copy(io.Discard, r.Body)
	if d := time.Duration(b.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("X-Backend", b.name)
	w.Header().Set("Connection", "X-Secret")
	w.Header().Set("X-Secret", "hop")
	if s := b.status.Load(); s != 0 {
		w.WriteHeader(int(s))
	}
	fmt.Fprintf(w, "hello from %s\n", b.name)
}

// kill closes the listener and every connection: new connections are refused.
func (b *backend) kill() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// revive listens again on the same address.
func (b *backend) revive() {
	b.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("revive %s: %v", b.addr, err)
	}
	b.serve(ln)
}

func (b *backend) header() http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastReq
}

// startMesh parses yaml (with {{a}}-style placeholders replaced by backend
// addresses) and starts a mesh on 127.0.0.1:0.
func startMesh(t testing.TB, yaml string, repl map[string]string) (*Mesh, string) {
	t.Helper()
	for k, v := range repl {
		yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", v)
	}
	cfg, err := ParseConfig("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m, "http://" + m.Addrs()[0].String()
}

// load sends GETs from n workers until stop is closed, counting who answered.
type load struct {
	mu      sync.Mutex
	by      map[string]int
	fails   []string
	total   int
	samples []sample
}

type sample struct {
	t       time.Time
	backend string
}

func (l *load) run(client *http.Client, url string, n int, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				l.one(client, "GET", url)
			}
		}()
	}
	return &wg
}

func (l *load) one(client *http.Client, method, url string) (string, int) {
	req, _ := http.NewRequest(method, url, nil)
	res, err := client.Do(req)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.by == nil {
		l.by = map[string]int{}
	}
	l.total++
	if err != nil {
		l.fails = append(l.fails, err.Error())
		return "", 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	be := res.Header.Get("X-Backend")
	if res.StatusCode != 200 {
		l.fails = append(l.fails, fmt.Sprintf("status %d from %q", res.StatusCode, be))
	}
	l.by[be]++
	l.samples = append(l.samples, sample{time.Now(), be})
	return be, res.StatusCode
}

// between counts answers by backend in [from, to).
func (l *load) between(from, to time.Time) map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, s := range l.samples {
		if !s.t.Before(from) && s.t.Before(to) {
			out[s.backend]++
		}
	}
	return out
}

func (l *load) failures() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.fails...)
}

func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
}
