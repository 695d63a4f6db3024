package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

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
