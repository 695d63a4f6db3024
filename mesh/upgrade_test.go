package mesh

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestUpgradeRelaysBothWays switches a connection to a made-up "echo"
// protocol (as WebSocket does) through the mesh and talks over it.
func TestUpgradeRelaysBothWays(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "echo" {
			http.Error(w, "upgrade please", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		brw.Flush()
		io.Copy(conn, brw)
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
	c, err := net.Dial("tcp", m.Addrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 101 || res.Header.Get("Upgrade") != "echo" {
		t.Fatalf("got %s %v", res.Status, res.Header)
	}
	for _, msg := range []string{"ping\n", "pong\n"} {
		io.WriteString(c, msg)
		got, err := br.ReadString('\n')
		if err != nil || got != msg {
			t.Fatalf("echo: %q %v, want %q", got, err, msg)
		}
	}
	// A plain request to the same backend still works, and gets its 426.
	r2, err := http.Get(url + "/chat")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if r2.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(b), "upgrade please") {
		t.Errorf("plain request: %d %q", r2.StatusCode, b)
	}
}
