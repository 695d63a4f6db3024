package web_test

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/web/webtest"
)

// TestCostPageInBrowser loads /cost on a demo server and checks the step table,
// the break-even chart, editing without a reload, and saving with the token.
func TestCostPageInBrowser(t *testing.T) {
	_, base := webtest.StartServer(t, true)
	ctx := webtest.Browser(t)

	var breakEvens []string
	var bars, refs int
	var refLabel string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/cost"),
		chromedp.WaitVisible("#cost-table", chromedp.ByQuery),
		chromedp.Evaluate(`[...document.querySelectorAll("#cost-table td.breakeven")].map(td => td.textContent.trim())`, &breakEvens),
		chromedp.Evaluate(`document.querySelectorAll("#cost-breakeven-chart rect.bar").length`, &bars),
		chromedp.Evaluate(`document.querySelectorAll("#cost-breakeven-chart line.ref").length`, &refs),
		chromedp.Evaluate(`document.querySelector("#cost-breakeven-chart").textContent`, &refLabel),
	)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"1.13", "8.33", "5.33", "1.12", "2.08", "2.09", "2.22", "2.43", "2.51", "2.45", "4.98"}
	if strings.Join(breakEvens, " ") != strings.Join(want, " ") {
		t.Fatalf("break-even column %v, want %v", breakEvens, want)
	}
	if bars != len(want) || refs != 1 || !strings.Contains(refLabel, "sale price 2.50") {
		t.Fatalf("chart: %d bars, %d reference lines, text %q", bars, refs, refLabel)
	}

	// Edit the sale price and run: the table and chart update in place.
	var navCount int
	var newRef, status string
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`window.__marker = 1; const ta = document.getElementById("cost-yaml"); ta.value = ta.value.replace("price: 2.50 ", "price: 9.00 "); 0`, nil),
		chromedp.Click("#cost-run", chromedp.ByQuery),
		chromedp.WaitVisible(`//span[@id="cost-status"][text()="updated"]`, chromedp.BySearch),
		chromedp.Evaluate(`document.querySelector("#cost-breakeven-chart").textContent`, &newRef),
		chromedp.Evaluate(`window.__marker || 0`, &navCount),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(newRef, "sale price 9.00") {
		t.Fatalf("after edit the chart says %q, want sale price 9.00", newRef)
	}
	if navCount != 1 {
		t.Fatal("the page reloaded on Run")
	}

	// A broken scenario shows its one-line error in place.
	var errText string
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`document.getElementById("cost-yaml").value = "units_per_month: 0\nmeasures: [{name: a}]"; 0`, nil),
		chromedp.Click("#cost-run", chromedp.ByQuery),
		chromedp.WaitVisible("#cost-error", chromedp.ByQuery),
		chromedp.Text("#cost-error", &errText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errText, "units_per_month: must be positive") {
		t.Fatalf("error shown: %q", errText)
	}

	// Saving needs the token: without it the page says so; with it, it saves.
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/cost"),
		chromedp.WaitVisible("#cost-save", chromedp.ByQuery),
		chromedp.Evaluate(`localStorage.removeItem("srekit-token"); document.getElementById("cost-name").value = "mine"; 0`, nil),
		chromedp.Click("#cost-save", chromedp.ByQuery),
		chromedp.WaitVisible(`//span[@id="cost-status"][starts-with(text(),"not saved")]`, chromedp.BySearch),
		chromedp.Evaluate(`localStorage.setItem("srekit-token", "`+webtest.Token+`"); 0`, nil),
		chromedp.Click("#cost-save", chromedp.ByQuery),
		chromedp.WaitVisible(`//span[@id="cost-status"][text()="saved as mine"]`, chromedp.BySearch),
		chromedp.Text("#cost-status", &status, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(base + "/api/v1/cost/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"mine"`) {
		t.Fatalf("saved scenario not listed: %s", body)
	}
	if dir := os.Getenv("SREKIT_SCREENSHOT_DIR"); dir != "" {
		chromedp.Run(ctx, chromedp.Navigate(base+"/cost"), chromedp.WaitVisible("#cost-table", chromedp.ByQuery))
		webtest.Screenshot(ctx, dir+"/cost.png")
	}
}

func TestCostAPI(t *testing.T) {
	_, base := webtest.StartServer(t, true)
	do := func(method, path, body, token string) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	scenario := "units_per_month: 100\nprice: 3\nmeasures:\n  - name: rent\n    monthly: [{name: rent, cost: 100}]\n"
	if code, body := do("POST", "/api/v1/cost/run", scenario, ""); code != 200 || !strings.Contains(body, `"break_even": 1`) {
		t.Fatalf("run: %d %s", code, body)
	}
	if code, body := do("POST", "/api/v1/cost/run", "units_per_month: x", ""); code != 400 || !strings.Contains(body, "cannot unmarshal") {
		t.Fatalf("bad run: %d %s", code, body)
	}
	if code, _ := do("PUT", "/api/v1/cost/scenarios/rent", scenario, ""); code != 401 {
		t.Fatalf("PUT without token: %d, want 401", code)
	}
	if code, _ := do("PUT", "/api/v1/cost/scenarios/rent", scenario, "wrong"); code != 401 {
		t.Fatalf("PUT with a wrong token: %d, want 401", code)
	}
	if code, body := do("PUT", "/api/v1/cost/scenarios/rent", scenario, webtest.Token); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if code, body := do("GET", "/api/v1/cost/scenarios/rent", "", ""); code != 200 || !strings.Contains(body, `"rent"`) {
		t.Fatalf("GET: %d %s", code, body)
	}
	if code, _ := do("GET", "/api/v1/cost/scenarios/nope", "", ""); code != 404 {
		t.Fatalf("GET missing: %d", code)
	}
	if code, _ := do("POST", "/api/v1/cost/run", strings.Repeat("#", 2<<20), ""); code != 413 {
		t.Fatalf("oversized body: %d, want 413", code)
	}
	if code, _ := do("DELETE", "/api/v1/cost/scenarios/rent", "", webtest.Token); code != 200 {
		t.Fatalf("DELETE: %d", code)
	}
}
