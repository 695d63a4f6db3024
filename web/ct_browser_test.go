package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/web/webtest"
)

// TestBrowserCT loads the demo (the real monitor run over two in-process
// logs) and reads the page: rules, findings with an unexpected issuer, the
// chart and verified logs.
func TestBrowserCT(t *testing.T) {
	_, base := webtest.StartServer(t, true)
	ctx := webtest.Browser(t)
	var url, rules, logs, unexpected, list string
	var findings, bars, unexpectedRows int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/ct"),
		chromedp.WaitVisible("#ct-findings", chromedp.ByQuery),
		chromedp.Location(&url),
		chromedp.Text("#ct-rules", &rules, chromedp.ByQuery),
		chromedp.Text("#ct-logs", &logs, chromedp.ByQuery),
		chromedp.Text("#ct-unexpected", &unexpected, chromedp.ByQuery),
		chromedp.Text("#ct-loglist", &list, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#ct-findings tr.ct-finding").length`, &findings),
		chromedp.Evaluate(`document.querySelectorAll("#ct-findings .ct-unexpected").length`, &unexpectedRows),
		chromedp.Evaluate(`document.querySelectorAll("#ct-chart rect").length`, &bars),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(url, "/certs/ct") {
		t.Errorf("/ct landed on %s, want /certs/ct", url)
	}
	for _, want := range []string{"watched.example", ".sub.example", "Good CA"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules table lacks %q: %s", want, rules)
		}
	}
	if strings.Count(logs, "ok") < 2 || !strings.Contains(logs, "static") || !strings.Contains(logs, "rfc6962") {
		t.Errorf("logs table: %s", logs)
	}
	if findings < 50 || unexpectedRows == 0 || unexpected == "0" {
		t.Errorf("%d findings, %d unexpected rows, unexpected card %q", findings, unexpectedRows, unexpected)
	}
	if !strings.Contains(list, "2 logs") || !strings.Contains(list, "ago") {
		t.Errorf("log list line: %q", list)
	}
	if bars == 0 {
		t.Error("no bars in the findings chart")
	}
}
