package web_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/drills"
	"github.com/srekit/srekit/web/webtest"
)

func TestDrillsPageInBrowser(t *testing.T) {
	s, base := webtest.StartServer(t, true)
	ctx := webtest.Browser(t)
	var rows, bars int
	var mode, danaOptIn string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/drills"),
		chromedp.WaitVisible("#drills-roster", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#drills-roster tbody tr").length`, &rows),
		chromedp.Evaluate(`document.querySelectorAll("#drills-underload-chart rect.bar").length`, &bars),
		chromedp.Text("#drills-mode", &mode, chromedp.ByQuery),
		chromedp.Text(`tr[data-person="Dana"] td.optin`, &danaOptIn, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 6 || bars != 6 || mode != "dry run" || !strings.Contains(danaOptIn, "not opted in") {
		t.Fatalf("roster rows %d, chart bars %d, mode %q, Dana %q", rows, bars, mode, danaOptIn)
	}
	var history, ackLines int
	chromedp.Run(ctx,
		chromedp.Evaluate(`document.querySelectorAll("#drills-history tbody tr").length`, &history),
		chromedp.Evaluate(`document.querySelectorAll("#drills-ack-chart polyline.series").length`, &ackLines))
	if history == 0 || ackLines != 3 {
		t.Fatalf("history rows %d, ack trend lines %d (want one per team: 3)", history, ackLines)
	}

	// Opting Dana in needs the token; with it, the roster shows her opted in.
	var msg string
	err = chromedp.Run(ctx,
		chromedp.Click(`button.optin[data-person="Dana"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#drills-msg.error`, chromedp.ByQuery),
		chromedp.Text("#drills-msg", &msg, chromedp.ByQuery),
	)
	if err != nil || !strings.Contains(msg, "token") {
		t.Fatalf("opt-in without token: %v, message %q", err, msg)
	}
	err = chromedp.Run(ctx,
		chromedp.Evaluate(`localStorage.setItem("srekit-token", "`+webtest.Token+`"); 0`, nil),
		chromedp.Click(`button.optin[data-person="Dana"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`button.optout[data-person="Dana"]`, chromedp.ByQuery),
		chromedp.Text(`tr[data-person="Dana"] td.optin`, &danaOptIn, chromedp.ByQuery),
	)
	if err != nil || !strings.Contains(danaOptIn, "until") {
		t.Fatalf("opt-in with token: %v, Dana %q", err, danaOptIn)
	}
	// The pause switch.
	var paused string
	err = chromedp.Run(ctx,
		chromedp.Click("#drills-pause-toggle", chromedp.ByQuery),
		chromedp.WaitVisible(`//b[@id="drills-paused"][text()="paused"]`, chromedp.BySearch),
		chromedp.Text("#drills-paused", &paused, chromedp.ByQuery),
	)
	if err != nil || paused != "paused" {
		t.Fatalf("pause: %v %q", err, paused)
	}
	if p, _ := drills.Paused(context.Background(), s.Store, &drills.Config{}); !p {
		t.Fatal("the pause switch is not stored")
	}

	// The signed one-click link acknowledges a drill and takes a finding.
	bg := context.Background()
	pl := drills.Planned{Page: drills.Page{Person: "Aoife", Team: "platform", At: time.Now().UTC().Truncate(time.Minute)}, DrillID: "ipv6-path"}
	if _, err := drills.SavePlan(bg, s.Store, []drills.Planned{pl}, true); err != nil {
		t.Fatal(err)
	}
	rec, _ := drills.RecordByKey(bg, s.Store, drills.DedupKey(pl))
	s.Store.Exec(bg, "UPDATE drills_pages SET status = ?, paged_ms = ? WHERE id = ?", drills.StatusDryRun, pl.At.UnixMilli(), rec.ID)
	secret, _ := drills.AckSecret(bg, s.Store)
	link := drills.AckURL(base, secret, rec.ID)
	var ackMsg, findingMsg string
	err = chromedp.Run(ctx,
		chromedp.Navigate(link),
		chromedp.WaitVisible("#ack-button", chromedp.ByQuery),
		chromedp.Click("#ack-button", chromedp.ByQuery),
		chromedp.WaitVisible("#ack-message", chromedp.ByQuery),
		chromedp.Text("#ack-message", &ackMsg, chromedp.ByQuery),
		chromedp.SendKeys("#finding-text", "edge firewall drops IPv6 health checks", chromedp.ByQuery),
		chromedp.SendKeys("#finding-tags", "ipv6, firewall", chromedp.ByQuery),
		chromedp.Click("#finding-button", chromedp.ByQuery),
		chromedp.WaitVisible(`//p[@id="ack-message"][text()="Finding recorded."]`, chromedp.BySearch),
		chromedp.Text("#ack-message", &findingMsg, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := drills.RecordByID(bg, s.Store, rec.ID)
	if got.AckedAt == nil || got.AckSource != "link" || !strings.HasPrefix(ackMsg, "Acknowledged") {
		t.Fatalf("ack: %+v, message %q", got, ackMsg)
	}
	fs, _ := drills.Findings(bg, s.Store)
	if len(fs) == 0 || fs[0].Text != "edge firewall drops IPv6 health checks" || strings.Join(fs[0].Tags, ",") != "ipv6,firewall" {
		t.Fatalf("finding not stored: %+v", fs[:1])
	}
	// A forged link is refused.
	resp, err := http.Get(fmt.Sprintf("%s/drills/ack/%d?sig=%s", base, rec.ID, strings.Repeat("0", 32)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("forged ack link: %d, want 403", resp.StatusCode)
	}
}

func TestDrillsAPI(t *testing.T) {
	_, base := webtest.StartServer(t, true)
	do := func(method, path, body string, token bool) (int, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token {
			req.Header.Set("Authorization", "Bearer "+webtest.Token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/api/v1/drills/report", "", false); code != 200 || !strings.Contains(body, `"ack_p50_seconds"`) {
		t.Fatalf("report: %d %s", code, body)
	}
	if code, _ := do("PUT", "/api/v1/drills/config", drills.DemoConfig, false); code != 401 {
		t.Fatalf("config without token: %d", code)
	}
	bad := strings.Replace(drills.DemoConfig, "Europe/Dublin", "Europe/Atlantis", 1)
	if code, body := do("PUT", "/api/v1/drills/config", bad, true); code != 400 || !strings.Contains(body, "Europe/Atlantis") {
		t.Fatalf("bad config: %d %s", code, body)
	}
	if code, body := do("POST", "/api/v1/drills/optin", `{"person":"Nobody","until":"2030-01-01"}`, true); code != 404 {
		t.Fatalf("opt-in of an unknown person: %d %s", code, body)
	}
	if code, body := do("POST", "/api/v1/drills/optin", `{"person":"Dana","until":"someday"}`, true); code != 400 {
		t.Fatalf("bad opt-in date: %d %s", code, body)
	}
	if code, body := do("POST", "/api/v1/drills/pagerduty", `{"event":{}}`, false); code != 401 || !strings.Contains(body, "pagerduty_webhook_secret") {
		t.Fatalf("PagerDuty webhook without a secret configured: %d %s", code, body)
	}
}
