package mesh

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLeanClientEdgeCases drives the bodiless HTTP/1.1 path through a real
// backend: a pooled connection the backend closed while idle, chunked and
// large bodies, HEAD and 204 answers; each must arrive intact.
func TestLeanClientEdgeCases(t *testing.T) {
	big := strings.Repeat("x", 300<<10)
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{IdleTimeout: 50 * time.Millisecond, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			for i := range 5 {
				fmt.Fprintf(w, "part %d\n", i)
				w.(http.Flusher).Flush()
			}
		case "/big":
			io.WriteString(w, big)
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	y := `
admin: "off"
listeners: [{addr: "127.0.0.1:0"}]
routes: [{cluster: api}]
clusters: [{name: api, endpoints: [{address: "{{a}}"}]}]
`
	m, url := startMesh(t, y, map[string]string{"a": ln.Addr().String()})
	if m.state.Load().clusters["api"].h1 == nil {
		t.Fatal("the lean client is not in use for a plain HTTP/1.1 cluster")
	}
	client := newClient()
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url+path, nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		return res.StatusCode, string(b)
	}
	if c, b := get("GET", "/"); c != 200 || b != "hello" {
		t.Fatalf("GET /: %d %q", c, b)
	}
	time.Sleep(200 * time.Millisecond) // the backend closes the idle pooled connection
	if c, b := get("GET", "/"); c != 200 || b != "hello" {
		t.Fatalf("after the backend closed the pooled connection: %d %q", c, b)
	}
	if c, b := get("GET", "/chunked"); c != 200 || b != "part 0\npart 1\npart 2\npart 3\npart 4\n" {
		t.Errorf("chunked: %d %q", c, b)
	}
	if c, b := get("GET", "/big"); c != 200 || b != big {
		t.Errorf("big body: %d, %d bytes", c, len(b))
	}
	if c, b := get("HEAD", "/"); c != 200 || b != "" {
		t.Errorf("HEAD: %d %q", c, b)
	}
	if c, _ := get("GET", "/empty"); c != 204 {
		t.Errorf("204: %d", c)
	}
	for range 20 {
		if c, b := get("GET", "/"); c != 200 || b != "hello" {
			t.Fatalf("GET / after the others: %d %q", c, b)
		}
	}
	if n := testCounter(t, m, "srekit_mesh_upstream_connections_total", `reused="true"`); n < 20 {
		t.Errorf("only %v attempts reused a pooled connection", n)
	}
}
