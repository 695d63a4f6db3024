package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/profiling"
	"github.com/srekit/srekit/web/webtest"
)

// TestProfilingBrowseAndCapture drives the /profiling page in Chromium:
// browse the stored snapshots (heat map, merged graph, search), then capture
// a CPU profile from a live agent with the Capture button and watch it arrive.
func TestProfilingBrowseAndCapture(t *testing.T) {
	s, base := webtest.StartServer(t, false)
	if err := profiling.Demo(context.Background(), s.Store, time.Now()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	svc := httptest.NewServer(mux)
	defer svc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- profiling.RunAgent(ctx, profiling.AgentConfig{Server: base, Token: webtest.Token, Name: "ui-host", Host: "ui-host",
			Pprof: []profiling.PprofTarget{{Name: "api", URL: svc.URL}}, PollWait: 2 * time.Second})
	}()
	defer func() { cancel(); <-done }()
	for i := 0; i < 100; i++ { // wait for the agent to register
		resp, err := http.Get(base + "/api/v1/profiling/agents")
		if err == nil {
			var b strings.Builder
			buf := make([]byte, 4096)
			n, _ := resp.Body.Read(buf)
			b.Write(buf[:n])
			resp.Body.Close()
			if strings.Contains(b.String(), "ui-host") {
				break
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	bctx := webtest.Browser(t)
	var heat, selected, results, status string
	var graphs int
	err := chromedp.Run(bctx,
		chromedp.Navigate(base+"/profiling"),
		chromedp.Evaluate(`localStorage.setItem("srekit-token", "`+webtest.Token+`")`, nil),
		chromedp.Navigate(base+"/profiling?from=now-3h"),
		chromedp.WaitVisible("#heatmap", chromedp.ByID),
		chromedp.OuterHTML("#heatmap", &heat, chromedp.ByID),
		chromedp.Text("main", &selected, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("object#merged-graph").length`, &graphs),
		// Search across snapshots.
		chromedp.SetValue("#search-pattern", `encoding/json`, chromedp.ByID),
		chromedp.Click(`#search-form button`, chromedp.ByQuery),
		chromedp.WaitVisible("#search-results tbody tr", chromedp.ByQuery),
		chromedp.Text("#search-results", &results, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(heat, "<rect") < 10 || !strings.Contains(selected, "144 snapshots selected") || graphs != 1 {
		t.Fatalf("browse view: %d heat cells, graphs %d, text %.500s", strings.Count(heat, "<rect"), graphs, selected)
	}
	if !strings.Contains(results, "checkout") || !strings.Contains(results, "%") {
		t.Fatalf("search results: %q", results)
	}

	// Compare two versions of the demo's checkout service.
	var diffText string
	err = chromedp.Run(bctx,
		chromedp.SetValue("#diff-before-query", `checkout{version="v1.4.0"}`, chromedp.ByID),
		chromedp.SetValue("#diff-after-query", `checkout{version="v1.5.0"}`, chromedp.ByID),
		chromedp.Click(`#diff-form button`, chromedp.ByQuery),
		chromedp.WaitVisible("#diff-graph", chromedp.ByID),
		chromedp.Text("#diff-result", &diffText, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(diffText, "24 snapshots before, 24 after") {
		t.Fatalf("diff: %q", diffText)
	}

	// Capture from the agent, with the progress shown until the graph arrives.
	var graph string
	err = chromedp.Run(bctx,
		chromedp.SetValue("#cap-seconds", "1", chromedp.ByID),
		chromedp.Click("#capture-button", chromedp.ByID),
		chromedp.WaitVisible("#capture-progress", chromedp.ByID),
		chromedp.WaitVisible("#capture-graph", chromedp.ByID),
		chromedp.Text("#capture-status", &status, chromedp.ByID),
		chromedp.AttributeValue("#capture-graph", "data", &graph, nil, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, "done") || !strings.Contains(graph, "/api/v1/profiling/snapshots/") {
		t.Fatalf("capture: status %q, graph %q", status, graph)
	}
	// An alert rule added from the page is listed after the reload.
	var rules string
	err = chromedp.Run(bctx,
		chromedp.SetValue("#rule-name", "latency", chromedp.ByID),
		chromedp.SetValue("#rule-matchers", "alertname=HighLatency,team=shop", chromedp.ByID),
		chromedp.SetValue("#rule-target", "api", chromedp.ByID),
		chromedp.Click(`#rule-form button`, chromedp.ByQuery),
		chromedp.WaitVisible(`#alert-rules .rule-delete`, chromedp.ByQuery),
		chromedp.Text("#alert-rules", &rules, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rules, "latency") || !strings.Contains(rules, `alertname="HighLatency"`) || !strings.Contains(rules, "label instance") {
		t.Fatalf("alert rules: %q", rules)
	}
	if dir := os.Getenv("SREKIT_SCREENSHOT_DIR"); dir != "" {
		webtest.Screenshot(bctx, filepath.Join(dir, "profiling.png"))
	}
}
