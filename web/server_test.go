package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/srekit/srekit/store/storetest"
	"github.com/srekit/srekit/web"
	"github.com/srekit/srekit/web/webtest"
)

func TestHealthzMetricsAndHome(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	for _, tc := range []struct {
		path, want string
	}{
		{"/healthz", `"ok"`},
		{"/metrics", "srekit_http_request_duration_seconds"},
		{"/", "srekit"},
		{"/api/v1/parts", "["},
	} {
		resp, err := http.Get(base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s = %d", tc.path, resp.StatusCode)
		}
		if !strings.Contains(body, tc.want) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.want)
		}
	}
}

func TestUnknownPathIs404(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	resp, err := http.Get(base + "/no-such-page")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET /no-such-page = %d, want 404", resp.StatusCode)
	}
}

func TestAuthReadsAndWriteToken(t *testing.T) {
	st := storetest.SQLite(t)
	s, err := web.New(st, web.Config{Token: "tok", AuthReads: true})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	get := func(token string) int {
		req, _ := http.NewRequest("GET", ts.URL+"/api/v1/parts", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != 401 {
		t.Fatalf("read without token under --auth-reads: %d", code)
	}
	if code := get("tok"); code != 200 {
		t.Fatalf("read with token: %d", code)
	}
	// Without any token configured, writes are refused outright.
	ro, _ := web.New(st, web.Config{})
	ts2 := httptest.NewServer(ro.Handler())
	defer ts2.Close()
	req, _ := http.NewRequest("PUT", ts2.URL+"/api/v1/cost/scenarios/x", strings.NewReader("units_per_month: 1\nmeasures: [{name: a}]"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("write on a read-only server: %d, want 403", resp.StatusCode)
	}
}
