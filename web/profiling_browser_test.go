package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/internal/sharedtest"
	"github.com/srekit/srekit/profiling"
	"github.com/srekit/srekit/web"
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
	// The merged graph is of the selection shown (the demo's perf snapshot,
	// counted in samples, is offered apart).
	var mergedTitle, otherUnits string
	err = chromedp.Run(bctx,
		chromedp.Poll(`(() => { const d = document.getElementById("merged-graph").contentDocument;
			const t = d && d.getElementById("title"); return t ? t.textContent : ""; })()`, &mergedTitle),
		chromedp.Text("#other-units", &otherUnits, chromedp.ByID),
	)
	if err != nil {
		t.Fatal(err)
	}
	if mergedTitle != "cpu: 144 snapshots merged" || !strings.Contains(otherUnits, "1 in samples") {
		t.Fatalf("merged graph %q, other units %q", mergedTitle, otherUnits)
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

// TestProfilingSubsecondHeatMap uploads a real perf script (1,315 samples
// over 10 s), opens its sub-second heat map from the snapshot table, selects
// [2 s, 5 s) by clicking a start and an end cell, and checks that the flame
// graph shown is of just those samples; then merges two selections.
func TestProfilingSubsecondHeatMap(t *testing.T) {
	raw := sharedtest.Read(t, "sub-second heat map browser test", "flamegraph", "example-perf-stacks.txt.gz")
	offs := web.PerfSampleOffsetsForTest(t, raw)
	_, base := webtest.StartServer(t, false)
	req, _ := http.NewRequest("POST", base+"/api/v1/profiling/ingest?format=perf&name=demo", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+webtest.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("ingest: %s", resp.Status)
	}
	first := web.CountInForTest(offs, 2_000_000, 5_000_000)
	second := web.CountInForTest(offs, 7_000_000, 8_020_000)
	graphTitle := func(id string) string {
		return `(() => { const o = document.getElementById("` + id + `"); const d = o && o.contentDocument;
			return d ? ([...d.querySelectorAll("title")].map((t) => t.textContent).find((s) => s.startsWith("all (")) || "") : ""; })()`
	}

	ctx := webtest.Browser(t)
	var which, sub, info, graph, merged, mergedGraph string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/profiling?from=now-1h"),
		chromedp.Text("#snapshot-heatmap-kind", &which, chromedp.ByID),
		chromedp.Click("a.subsecond-link", chromedp.ByQuery),
		chromedp.WaitVisible("#subsecond-svg", chromedp.ByID),
		chromedp.Text("#heatmap-kind", &sub, chromedp.ByID),
		chromedp.Click(`#subsecond-svg rect[data-c="2"][data-r="0"]`, chromedp.ByQuery),
		chromedp.Click(`#subsecond-svg rect[data-c="4"][data-r="49"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#range-graph", chromedp.ByID),
		chromedp.Text("#range-info", &info, chromedp.ByID),
		chromedp.Poll(graphTitle("range-graph"), &graph),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(which, "snapshot granularity") || !strings.Contains(sub, "sub-second") {
		t.Fatalf("the page does not say which heat map it shows: %q / %q", which, sub)
	}
	if want := fmt.Sprintf("2 s to 5 s: %d samples, total %d samples", first, first); !strings.Contains(info, want) {
		t.Fatalf("range info %q, want %q", info, want)
	}
	if want := fmt.Sprintf("all (%d samples, 100%%)", first); graph != want {
		t.Fatalf("range flame graph says %q, want %q (the whole snapshot has %d)", graph, want, len(offs))
	}
	// Add it, select [7 s, 8.02 s) by dragging, add that too: the merge
	// shows both.
	err = chromedp.Run(ctx,
		chromedp.Click("#range-add", chromedp.ByID),
		chromedp.WaitVisible("#merge-graph", chromedp.ByID),
		chromedp.ScrollIntoView(`#subsecond-svg rect[data-c="7"][data-r="0"]`, chromedp.ByQuery),
		dragCells(`#subsecond-svg rect[data-c="7"][data-r="0"]`, `#subsecond-svg rect[data-c="8"][data-r="0"]`),
		chromedp.Poll(`document.getElementById("range-info").textContent.startsWith("7 s to 8.02 s")`, nil),
		chromedp.Click("#range-add", chromedp.ByID),
		chromedp.Poll(`document.getElementById("merge-info").textContent.startsWith("2 selections")`, nil),
		chromedp.Text("#merge-info", &merged, chromedp.ByID),
		chromedp.Poll(`(() => { const t = `+graphTitle("merge-graph")+`; return t.includes("`+fmt.Sprint(first+second)+` ") ? t : ""; })()`, &mergedGraph),
	)
	if err != nil {
		var state string
		chromedp.Run(ctx, chromedp.Evaluate(`document.getElementById("range-info").textContent + " | " + document.getElementById("merge-info").textContent`, &state))
		t.Fatalf("merge selections: %v (page says %q)", err, state)
	}
	if want := fmt.Sprintf("2 selections merged: %d samples, total %d samples", first+second, first+second); !strings.Contains(merged, want) {
		t.Fatalf("merge info %q, want %q", merged, want)
	}
	if dir := os.Getenv("SREKIT_SCREENSHOT_DIR"); dir != "" {
		webtest.Screenshot(ctx, filepath.Join(dir, "profiling-subsecond.png"))
	}
}

// dragCells presses the mouse on one heat map cell and releases it on another.
func dragCells(from, to string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var a, b []float64
		box := func(sel string) string {
			return `(() => { const r = document.querySelector('` + sel + `').getBoundingClientRect(); return [r.x + r.width/2, r.y + r.height/2]; })()`
		}
		if err := chromedp.Evaluate(box(from), &a).Do(ctx); err != nil {
			return err
		}
		if err := chromedp.Evaluate(box(to), &b).Do(ctx); err != nil {
			return err
		}
		for _, ev := range []struct {
			typ  input.MouseType
			x, y float64
		}{{input.MousePressed, a[0], a[1]}, {input.MouseMoved, b[0], b[1]}, {input.MouseReleased, b[0], b[1]}} {
			p := input.DispatchMouseEvent(ev.typ, ev.x, ev.y).WithButton(input.Left).WithClickCount(1)
			if ev.typ == input.MouseMoved {
				p = p.WithButtons(1)
			}
			if err := p.Do(ctx); err != nil {
				return err
			}
		}
		return nil
	})
}
