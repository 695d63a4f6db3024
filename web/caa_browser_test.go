package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/certs/caa"
	"github.com/srekit/srekit/certs/caa/caatest"
	"github.com/srekit/srekit/web/webtest"
)

// TestBrowserCAA fills the check form in Chromium against a real unbound
// resolver over Knot (caatest) and reads the explained result.
func TestBrowserCAA(t *testing.T) {
	env := caatest.Start(t)
	t.Setenv("SREKIT_CAA_RESOLVER", env.Resolver)
	_, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)

	var url, verdict, reason, records string
	var steps int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/caa"), // the nav slug redirects to /certs/caa
		chromedp.WaitVisible("#caa-form", chromedp.ByQuery),
		chromedp.Location(&url),
		chromedp.SetValue("#caa-name", "deep.sub.caa.test", chromedp.ByQuery),
		chromedp.SetValue("#caa-ca", "ca.example", chromedp.ByQuery),
		webtest.ClickAndLoad("#caa-submit"),
		chromedp.WaitVisible("#caa-result", chromedp.ByQuery),
		chromedp.Text("#caa-verdict", &verdict, chromedp.ByQuery),
		chromedp.Text("#caa-reason", &reason, chromedp.ByQuery),
		chromedp.Text("#caa-records", &records, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#caa-climb svg g.caa-step").length`, &steps),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(url, "/certs/caa") {
		t.Errorf("/caa landed on %s, want /certs/caa", url)
	}
	if !strings.EqualFold(verdict, "allowed") || !strings.Contains(reason, "caa.test.") {
		t.Errorf("verdict %q, reason %q", verdict, reason)
	}
	if steps != 3 {
		t.Errorf("the climb picture has %d steps, want 3 (deep.sub.caa.test, sub.caa.test, caa.test)", steps)
	}
	if !strings.Contains(records, `issue "ca.example"`) || !strings.Contains(records, "iodef") {
		t.Errorf("records table: %q", records)
	}

	// A wildcard under the Boulder profile at a bogus name: cannot decide.
	var dnssec, notes string
	if err := chromedp.Run(ctx,
		chromedp.SetValue("#caa-name", "www.bogus", chromedp.ByQuery),
		chromedp.SetValue("#caa-profile", "letsencrypt", chromedp.ByQuery),
		chromedp.Click("#caa-wildcard", chromedp.ByQuery),
		webtest.ClickAndLoad("#caa-submit"),
		chromedp.WaitVisible("#caa-notes", chromedp.ByQuery),
		chromedp.Text("#caa-verdict", &verdict, chromedp.ByQuery),
		chromedp.Text("#caa-dnssec", &dnssec, chromedp.ByQuery),
		chromedp.Text("#caa-notes", &notes, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(verdict, "cannot decide") || dnssec != "bogus" || !strings.Contains(notes, "3.2.2.8") {
		t.Errorf("bogus: verdict %q, dnssec %q, notes %q", verdict, dnssec, notes)
	}

	// Records typed into the form are checked without DNS.
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/certs/caa"),
		chromedp.WaitVisible("#caa-form", chromedp.ByQuery),
		chromedp.SetValue("#caa-name", "www.draft.example", chromedp.ByQuery),
		chromedp.SetValue("#caa-ca", "ca.example", chromedp.ByQuery),
		chromedp.SetValue("#caa-method", "http-01", chromedp.ByQuery),
		chromedp.SetValue("#caa-records-input", "draft.example. CAA 0 issue \"ca.example; validationmethods=dns-01\"", chromedp.ByQuery),
		webtest.ClickAndLoad("#caa-submit"),
		chromedp.WaitVisible("#caa-result", chromedp.ByQuery),
		chromedp.Text("#caa-verdict", &verdict, chromedp.ByQuery),
		chromedp.Text("#caa-records", &records, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.EqualFold(verdict, "forbidden") || !strings.Contains(records, "not http-01") {
		t.Errorf("records from the form: verdict %q, records %q", verdict, records)
	}

	// The examples on the empty page work without DNS.
	var exampleCount int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/certs/caa"),
		chromedp.WaitVisible("#caa-examples", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#caa-examples a").length`, &exampleCount),
		webtest.ClickAndLoad("#caa-examples li:nth-child(5) a"),
		chromedp.WaitVisible("#caa-result", chromedp.ByQuery),
		chromedp.Text("#caa-verdict", &verdict, chromedp.ByQuery),
		chromedp.Text("#caa-reason", &reason, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if exampleCount != 5 || !strings.EqualFold(verdict, "allowed") || !strings.Contains(reason, "at example.com.") {
		t.Errorf("example: %d examples, verdict %q, reason %q", exampleCount, verdict, reason)
	}

	// Bad input: one clear error line, no result.
	var errText string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/certs/caa?name=bad..name&ca=ca.example"),
		chromedp.WaitVisible("#caa-error", chromedp.ByQuery),
		chromedp.Text("#caa-error", &errText, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, "not a domain name") {
		t.Errorf("error %q", errText)
	}

	// The JSON API gives the same decision.
	resp, err := http.Get(base + "/api/v1/caa/check?name=alias.caa.test&ca=alias.example")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var d caa.Decision
	if err := json.Unmarshal(body, &d); err != nil || d.Verdict != caa.Allowed || len(d.Climb) == 0 || len(d.Climb[0].Aliases) != 1 {
		t.Errorf("api: %v %s", err, body)
	}
	resp2, err := http.Get(base + "/api/v1/caa/check?name=x.test")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusBadRequest {
		t.Errorf("api without ca: %d", resp2.StatusCode)
	}
}
