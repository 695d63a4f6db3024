package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/mesh"
	"github.com/srekit/srekit/web/webtest"
)

// TestBrowserMeshPageShowsRegionTimings runs the demo (three regions on
// 127.0.0.2-4 behind a real mesh with steady load) and checks the /mesh
// page draws its per-region chart and endpoint table from the admin API.
func TestBrowserMeshPageShowsRegionTimings(t *testing.T) {
	regions := []mesh.DemoRegion{{Name: "eu", IP: "127.0.0.2", Delay: time.Millisecond},
		{Name: "us", IP: "127.0.0.3", Delay: 5 * time.Millisecond}, {Name: "ap", IP: "127.0.0.4", Delay: 10 * time.Millisecond}}
	d, err := mesh.StartDemo(regions, "p2c_ewma", "127.0.0.1:0", 200*time.Millisecond, 100, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	t.Setenv("SREKIT_MESH_ADMIN", d.Admin)
	time.Sleep(time.Second) // a few timings points
	_, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)
	var svg, endpoints, regionsText string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/mesh"),
		chromedp.WaitVisible("#mesh-p50", chromedp.ByQuery),
		chromedp.OuterHTML("#mesh-p50", &svg, chromedp.ByQuery),
		chromedp.Text("#mesh-endpoints", &endpoints, chromedp.ByQuery),
		chromedp.Text("#mesh-regions", &regionsText, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{"eu", "all"} {
		if !strings.Contains(svg, r) || !strings.Contains(regionsText, r) {
			t.Errorf("region %s missing from the chart or the table", r)
		}
	}
	if !strings.Contains(svg, "<path") && !strings.Contains(svg, "<polyline") {
		t.Errorf("the chart has no lines: %.300s", svg)
	}
	if !strings.Contains(endpoints, "127.0.0.2") || !strings.Contains(endpoints, "healthy") {
		t.Errorf("endpoint table: %q", endpoints)
	}

	// The server's own API relays the mesh's timings.
	res, err := http.Get(base + "/api/v1/mesh/timings")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var rep mesh.TimingsReport
	if err := json.NewDecoder(res.Body).Decode(&rep); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /api/v1/mesh/timings: %d %v", res.StatusCode, err)
	}
	if len(rep.Regions) == 0 || len(rep.Endpoints) != 3 {
		t.Errorf("timings API: %d regions, %d endpoints", len(rep.Regions), len(rep.Endpoints))
	}
}

func TestBrowserMeshPageWithoutMesh(t *testing.T) {
	t.Setenv("SREKIT_MESH_ADMIN", "http://127.0.0.1:1")
	_, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)
	var msg string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/mesh"),
		chromedp.Text("#mesh-error", &msg, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg, "No mesh to show") {
		t.Errorf("error text %q", msg)
	}
}
