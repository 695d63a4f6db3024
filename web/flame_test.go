package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"

	"github.com/srekit/srekit/web/webtest"
)

func TestFlameRenderAPI(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	post := func(query, ctype string, body io.Reader) (*http.Response, string) {
		t.Helper()
		resp, err := http.Post(base+"/api/v1/flame/render"+query, ctype, body)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := post("?colors=java&title=API", "text/plain", strings.NewReader("main;work 3\nmain;idle 1\njunk\n"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(body, ">API</text>") {
		t.Fatalf("svg: %d %s %.200s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp.Header.Get("X-Srekit-Skipped-Lines") != "1" || !strings.Contains(resp.Header.Get("X-Srekit-Skipped"), "line 3") {
		t.Errorf("skipped line not reported: %q", resp.Header.Get("X-Srekit-Skipped"))
	}
	resp, body = post("?as=folded", "text/plain", strings.NewReader("b 1\na 2\nb 3\n"))
	if resp.StatusCode != 200 || body != "a 2\nb 4\n" {
		t.Errorf("folded: %d %q", resp.StatusCode, body)
	}
	resp, body = post("?as=html", "text/plain", strings.NewReader("a;b 1\n"))
	if resp.StatusCode != 200 || !strings.Contains(body, `id="funcs"`) {
		t.Errorf("html: %d", resp.StatusCode)
	}
	// a multipart upload, as the page's form sends without JavaScript
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	fw, _ := mw.CreateFormFile("profile", "p.folded")
	fw.Write([]byte("x;y 5\n"))
	mw.WriteField("as", "folded")
	mw.Close()
	resp, body = post("", mw.FormDataContentType(), &mp)
	if resp.StatusCode != 200 || body != "x;y 5\n" {
		t.Errorf("multipart: %d %q", resp.StatusCode, body)
	}
	// a differential graph from two pasted profiles
	mp.Reset()
	mw = multipart.NewWriter(&mp)
	mw.WriteField("text", "m;x 30\nm;z 10\n")
	mw.WriteField("beforetext", "m;x 10\nm;y 10\n")
	mw.Close()
	resp, body = post("?as=folded&nonormalize=1", mw.FormDataContentType(), &mp)
	if resp.StatusCode != 200 || body != "m;x 10 30\nm;y 10 0\nm;z 0 10\n" {
		t.Errorf("diff: %d %q", resp.StatusCode, body)
	}
	mp.Reset()
	mw = multipart.NewWriter(&mp)
	mw.WriteField("text", "m;x 30\nm;z 10\n")
	mw.WriteField("beforetext", "m;x 10\nm;y 10\n")
	mw.Close()
	resp, body = post("", mw.FormDataContentType(), &mp)
	if resp.StatusCode != 200 || !strings.Contains(body, `<g class="new"><title>z (`) {
		t.Errorf("diff svg: %d, new frame not marked", resp.StatusCode)
	}
	for _, c := range []struct{ query, body, want string }{
		{"?format=nope", "a 1\n", "unknown format"},
		{"?colors=nope", "a 1\n", "unknown palette"},
		{"?format=perf", "nothing\n", "no stack counts"},
		{"?format=pprof", "not a profile", "pprof"},
		{"?minwidth=x", "a 1\n", "minwidth"},
	} {
		resp, body := post(c.query, "text/plain", strings.NewReader(c.body))
		var e struct{ Error string }
		json.Unmarshal([]byte(body), &e)
		if resp.StatusCode != 400 || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %q, want 400 with %q", c.query, resp.StatusCode, body, c.want)
		}
	}
	// an oversized body: refused with 413 from its Content-Length, before it
	// is read (the server may close the connection while the client is still
	// writing, which the client may see as a write error instead)
	big, err := http.Post(base+"/api/v1/flame/render", "text/plain", bytes.NewReader(make([]byte, 65<<20)))
	if err == nil {
		big.Body.Close()
		if big.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body: %d", big.StatusCode)
		}
	} else if !strings.Contains(err.Error(), "reset") && !strings.Contains(err.Error(), "broken pipe") && !strings.Contains(err.Error(), "EOF") {
		t.Errorf("oversized body: %v", err)
	}
}
