package web_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/web/webtest"
)

// TestReplicationPageInBrowser runs the brown-out with every mitigation, then
// with only the grace period on a node death: verdicts and charts for both.
func TestReplicationPageInBrowser(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)
	var naive, mitigated string
	var charts, lines int
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/replication?scenario=brownout&m=grace&m=copy-limit&m=breaker&m=backoff&m=priority&nodes=200&blocks=100000&minutes=75&seed=1"),
		chromedp.WaitVisible("#repl-verdicts", chromedp.ByQuery),
		chromedp.Text("#repl-row-0", &naive, chromedp.ByQuery),
		chromedp.Text("#repl-row-1", &mitigated, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#repl-charts svg.chart").length`, &charts),
		chromedp.Evaluate(`document.querySelectorAll("#chart-under_replicated polyline.series").length`, &lines),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(naive, "naive") || !strings.Contains(naive, "metastable") {
		t.Errorf("naive row %q", naive)
	}
	if !strings.Contains(mitigated, "recovered") {
		t.Errorf("mitigated row %q", mitigated)
	}
	if charts < 6 || lines != 2 {
		t.Errorf("%d charts, %d lines in the under-replicated chart", charts, lines)
	}

	// The form: pick a node death and only the grace period.
	err = chromedp.Run(ctx,
		chromedp.SetValue("#repl-scenario", "node-dies", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#repl-mitigations input').forEach(i => i.checked = (i.value === 'grace'))`, nil),
		chromedp.SetValue("#repl-minutes", "40", chromedp.ByQuery),
		webtest.ClickAndLoad("#repl-run"),
		chromedp.WaitVisible("#repl-verdicts", chromedp.ByQuery),
		chromedp.Text("#repl-row-1", &mitigated, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(mitigated, "grace 10m0s") || !strings.Contains(mitigated, "recovered") {
		t.Errorf("grace only, node death: %q", mitigated)
	}

	var errText string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/replication?scenario=brownout&nodes=999999"),
		chromedp.WaitVisible("#repl-error", chromedp.ByQuery),
		chromedp.Text("#repl-error", &errText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, "at most") {
		t.Errorf("error %q", errText)
	}
}

func TestReplicationAPI(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	res, err := http.Post(base+"/api/v1/replication/run", "application/yaml", strings.NewReader(
		"cluster: {nodes: 20, racks: 2, blocks: 2000}\nscenario: node-dies\nduration: 30m\nmitigations: {grace_period: 1m}\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"verdict"`) {
		t.Fatalf("%d %.300s", res.StatusCode, body)
	}
	res, err = http.Post(base+"/api/v1/replication/run", "application/yaml", strings.NewReader("cluster: {nodes: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), "cluster.nodes") {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
}
