package mesh

import (
	"bufio"
	"bytes"
	"net/http"
	"net/textproto"
	"slices"
	"testing"
)

// FuzzParseRequestHead checks the fast path's head parser against
// net/http's: it must never panic, and whatever it accepts, net/http must
// read the same way (method, target, Host, header values, no body). What it
// refuses goes to net/http, so refusing too much is safe; accepting wrongly
// is not.
func FuzzParseRequestHead(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /x/y?z=1&w HTTP/1.1\r\nHost: a.example:80\r\nUser-Agent: u\r\nAccept: */*\r\n\r\n",
		"HEAD /x HTTP/1.1\r\nhost: [::1]:8080\r\nConnection: close, X-A\r\nX-A: 1\r\nTe: trailers\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nX-Forwarded-For: 1.2.3.4\r\nX-Forwarded-Proto: https\r\n\r\n",
		"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /%41 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
		"GET / HTTP/1.1\nHost: a\n\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"G\x00T / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, clean := headEnd(b)
		if n == 0 || !clean {
			return
		}
		var h reqHead
		if parseRequestHead(b[:n], &h) != nil {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:n])))
		if err != nil {
			t.Fatalf("fast path accepted what net/http refuses (%v): %q", err, b[:n])
		}
		if r.Method != string(h.method) || r.RequestURI != string(h.target) || r.Host != string(h.host) || r.ProtoMinor != 1 {
			t.Fatalf("read differently: %q %q %q vs %q %q %q", r.Method, r.RequestURI, r.Host, h.method, h.target, h.host)
		}
		if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
			t.Fatalf("a request with a body was accepted: %q", b[:n])
		}
		if r.URL.Path != string(h.path) || r.URL.RawQuery != string(h.query) {
			t.Fatalf("path %q query %q, net/http %q %q", h.path, h.query, r.URL.Path, r.URL.RawQuery)
		}
		got := map[string][]string{}
		for _, f := range h.headers {
			k := textproto.CanonicalMIMEHeaderKey(string(f.name))
			got[k] = append(got[k], string(f.value))
		}
		for k, v := range r.Header {
			switch k {
			case "Connection", "Te", "Content-Length":
				continue // consumed by the parser
			}
			if !slices.Equal(got[k], v) {
				t.Fatalf("header %s: %q, net/http %q", k, got[k], v)
			}
		}
		if len(got) > len(r.Header) {
			t.Fatalf("headers %v, net/http %v", got, r.Header)
		}
	})
}

// FuzzParseResponseHead checks the fast path's response-head parser
// against net/http's client: no panic, and what it accepts, net/http reads
// with the same status and framing.
func FuzzParseResponseHead(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n",
		"HTTP/1.0 404 Not Found\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 204\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"HTTP/1.1 2x0 OK\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, clean := headEnd(b)
		if n == 0 || !clean {
			return
		}
		var r resHead
		if parseResponseHead(b[:n], &r) != nil {
			return
		}
		res, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b[:n])), &http.Request{Method: "GET"})
		if err != nil {
			t.Fatalf("fast path accepted what net/http refuses (%v): %q", err, b[:n])
		}
		if res.StatusCode != r.status {
			t.Fatalf("status %d, net/http %d: %q", r.status, res.StatusCode, b[:n])
		}
		if r.status < 200 || r.status == 204 || r.status == 304 {
			return // no body whatever the headers say; the relay knows
		}
		chunked := len(res.TransferEncoding) > 0
		if chunked != r.chunked || !chunked && res.ContentLength != r.length {
			t.Fatalf("framing chunked=%v length=%d, net/http %v %d: %q", r.chunked, r.length, chunked, res.ContentLength, b[:n])
		}
	})
}
