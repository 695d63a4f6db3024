package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/sampling/eval"
	"github.com/srekit/srekit/web/webtest"
)

func TestBrowserSamplingPage(t *testing.T) {
	srv, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)
	var empty string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/sampling"),
		chromedp.Text("#sampling-empty", &empty, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(empty, "sampler eval --save") {
		t.Fatalf("empty page says %q", empty)
	}

	// A real (small) evaluation, stored as `srekit sampler eval --save` does.
	res, err := eval.Run(context.Background(), eval.Options{
		Workload: eval.WorkloadConfig{Seed: 1, Traces: 1500, Duration: 10 * time.Second, HugeTraces: -1},
		Speedup:  20,
		SamplerConfig: `
buffer: {decision_wait: 100ms, trace_timeout: 1s}
policies:
  - {name: errors, errors: {}}
  - {name: dynamic, dynamic: {goal_rate: 10, interval: 200ms}}
`,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eval.Save(context.Background(), srv.Store, res); err != nil {
		t.Fatal(err)
	}
	var workload, errorRow, bars, headErrClass string
	var nodes int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/sampling"),
		chromedp.Text("#sampling-workload", &workload, chromedp.ByQuery),
		chromedp.Text("#sampling-scorecard tbody", &errorRow, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#sampling-recall rect.bar").length`, &nodes),
		chromedp.Evaluate(`document.querySelector("#sampling-rates polyline.series") ? "yes" : "no"`, &bars),
		chromedp.Evaluate(`[...document.querySelectorAll("#sampling-scorecard tbody tr")].find(r => r.textContent.includes("error-trace recall")).cells[3].className`, &headErrClass),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(workload, "1500 traces") {
		t.Fatalf("workload line %q", workload)
	}
	if !strings.Contains(errorRow, "error-trace recall") || !strings.Contains(errorRow, "1.0000") {
		t.Fatalf("scorecard %q", errorRow)
	}
	if res.Head.ErrorRecall < 1 && headErrClass != "bad" {
		t.Fatalf("head error recall %.3f is below the bar but its cell is %q", res.Head.ErrorRecall, headErrClass)
	}
	if nodes != 10 || bars != "yes" {
		t.Fatalf("recall chart bars %d, rate chart %s", nodes, bars)
	}
	resp, err := http.Get(base + "/api/v1/sampling/scorecard")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got eval.Result
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || got.Tail.ErrorRecall != 1 {
		t.Fatalf("API scorecard: %v %+v", err, got.Tail)
	}
}
