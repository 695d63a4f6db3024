package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/web/webtest"
)

// TestLoopsPageInBrowser opens the replica checker model: the diagram has R
// and B labels, the table names the storm as reinforcing, hovering a loop
// picks out its links, the simulation charts are there; then a broken model
// is submitted and the error names the line.
func TestLoopsPageInBrowser(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)
	var labels []string
	var storm, summary string
	var onLinks, allLinks, series int
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/loops"),
		chromedp.WaitVisible("svg#cld", chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("svg#cld .loop-label")].map(g => g.dataset.loop)`, &labels),
		chromedp.Evaluate(`[...document.querySelectorAll("#loops-table tr")].filter(r => r.textContent.includes("re-replication storm")).map(r => r.className).join()`, &storm),
		chromedp.Text("#loops-summary", &summary, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("svg#cld .link").length`, &allLinks),
		chromedp.Evaluate(`(() => { const row = document.querySelector('#loops-table tr.reinforcing');
			row.dispatchEvent(new MouseEvent('mouseenter'));
			return document.querySelectorAll('svg#cld.focus .link.on').length })()`, &onLinks),
		chromedp.Evaluate(`document.querySelectorAll("#loops-dominance polyline.series").length`, &series),
	)
	if err != nil {
		t.Fatal(err)
	}
	hasR, hasB := false, false
	for _, l := range labels {
		hasR = hasR || strings.HasPrefix(l, "R")
		hasB = hasB || strings.HasPrefix(l, "B")
	}
	if !hasR || !hasB {
		t.Errorf("loop labels in the diagram: %v", labels)
	}
	if storm != "reinforcing" {
		t.Errorf("storm row class %q", storm)
	}
	if !strings.Contains(summary, "reinforcing") || !strings.Contains(summary, "balancing") {
		t.Errorf("summary %q", summary)
	}
	if onLinks < 2 || onLinks >= allLinks {
		t.Errorf("hovering a loop lit %d of %d links", onLinks, allLinks)
	}
	if series == 0 {
		t.Error("no loop dominance series")
	}

	var errText string
	err = chromedp.Run(ctx,
		chromedp.SetValue("#loops-source", "name: broken\nvariables: [a, b]\nlinks:\n  - {from: a, to: nowhere, polarity: '+'}\n", chromedp.ByQuery),
		webtest.ClickAndLoad("#loops-run"),
		chromedp.WaitVisible("#loops-error", chromedp.ByQuery),
		chromedp.Text("#loops-error", &errText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, "line 4") || !strings.Contains(errText, `undefined variable "nowhere"`) {
		t.Errorf("error %q", errText)
	}
}

func TestLoopsAPI(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	res, err := http.Post(base+"/api/v1/loops/analyze", "application/yaml", strings.NewReader(
		"variables: [a, b]\nlinks:\n  - {from: a, to: b, polarity: '+'}\n  - {from: b, to: a, polarity: '-'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"id": "B1"`) {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	res, err = http.Post(base+"/api/v1/loops/analyze", "application/yaml", strings.NewReader("variables: [a\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "not valid YAML") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}

// TestLoopsSaveInBrowser saves an edited model with the token and opens it
// again from the saved list; without the token the save is refused.
func TestLoopsSaveInBrowser(t *testing.T) {
	_, base := webtest.StartServer(t, true)
	ctx := webtest.Browser(t)
	var status string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/loops?example=capacity-overload"),
		chromedp.WaitVisible("#loops-save", chromedp.ByQuery),
		chromedp.SetValue("#loops-save-name", "mine", chromedp.ByQuery),
		chromedp.Click("#loops-save", chromedp.ByQuery),
		chromedp.WaitVisible("#loops-status.error", chromedp.ByQuery),
		chromedp.Text("#loops-status", &status, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, "token") {
		t.Errorf("save without a token: %q", status)
	}
	var saved []string
	var name string
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`localStorage.setItem("srekit-token", "`+webtest.Token+`")`, nil),
		chromedp.SetValue("#loops-source", "name: Mine\nvariables: [x, y]\nlinks:\n  - {from: x, to: y, polarity: '+'}\n  - {from: y, to: x, polarity: '+'}\n", chromedp.ByQuery),
		chromedp.Click("#loops-save", chromedp.ByQuery),
		chromedp.WaitVisible("#loops-status.ok", chromedp.ByQuery),
		chromedp.Navigate(base+"/loops?model=mine"),
		chromedp.WaitVisible("svg#cld", chromedp.ByQuery),
		chromedp.Text("#loops-name", &name, chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("#loops-saved option")].map(o => o.value)`, &saved),
	)
	if err != nil {
		t.Fatal(err)
	}
	if name != "Mine" || strings.Join(saved, ",") != ",my retry storm,mine" {
		t.Errorf("opened %q; saved list %v", name, saved)
	}
}
