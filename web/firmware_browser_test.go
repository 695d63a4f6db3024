package web_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/firmware"
	"github.com/srekit/srekit/web/webtest"
)

// TestFirmwarePage drives /firmware in Chromium over the demo fleet: the
// matrix with counts and highlights, releases with CVEs, the halted and
// completed rollouts, the per-host view, and a rollout that a controller
// runs while the page is open, whose bars fill without a reload.
func TestFirmwarePage(t *testing.T) {
	srv, base := webtest.StartServer(t, true)
	ctx := webtest.Browser(t)
	var rows, badCells, behindCells int
	var matrix, releases, rollouts string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/firmware"),
		chromedp.WaitVisible("#fw-matrix", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll("#fw-matrix tbody tr").length`, &rows),
		chromedp.Evaluate(`document.querySelectorAll("#fw-matrix .fw-chip.bad").length`, &badCells),
		chromedp.Evaluate(`document.querySelectorAll("#fw-matrix svg.fw-bar rect.seg.behind").length`, &behindCells),
		chromedp.Text("#fw-matrix", &matrix, chromedp.ByQuery),
		chromedp.Text("#fw-releases", &releases, chromedp.ByQuery),
		chromedp.Text("#fw-rollouts", &rollouts, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if rows != 6 {
		t.Errorf("matrix has %d rows, want 6 (model x component)", rows)
	}
	if badCells != 1 || behindCells < 3 {
		t.Errorf("matrix highlights: %d known-bad cells, %d behind bar segments", badCells, behindCells)
	}
	for _, want := range []string{"1.45.0 8", "1.46.0 23", "1.47.0 1", "GDC5302Q 11"} {
		if !strings.Contains(matrix, want) {
			t.Errorf("matrix lacks %q:\n%s", want, matrix)
		}
	}
	if !strings.Contains(releases, "CVE-2023-34329") || !strings.Contains(releases, "rollout 2 halted") {
		t.Errorf("releases:\n%s", releases)
	}
	if !strings.Contains(rollouts, "halted: 1 failure(s) in the canary phase") || !strings.Contains(rollouts, "completed") {
		t.Errorf("rollouts:\n%s", rollouts)
	}

	// The per-host view of the host on the known-bad release.
	var hostText string
	err = chromedp.Run(ctx,
		webtest.ClickAndLoad(`a[href="/firmware/hosts/web05"]`),
		chromedp.WaitVisible("#fw-host-components", chromedp.ByQuery),
		chromedp.Text("#fw-host-components", &hostText, chromedp.ByQuery),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(hostText, "1.47.0") || !strings.Contains(hostText, "bad") || !strings.Contains(hostText, "GDC5602Q") {
		t.Errorf("host view:\n%s", hostText)
	}

	// Live: open the page, then run the waiting rollout (#3) with a
	// controller; the page must show it completed without reloading.
	db := firmware.NewDB(srv.Store)
	ros, err := db.Rollouts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var waiting firmware.Rollout
	for _, ro := range ros {
		if ro.State == firmware.RolloutRunning {
			waiting = ro
		}
	}
	if waiting.ID == 0 {
		t.Fatal("the demo has no rollout waiting to run")
	}
	sel := "#fw-rollout-" + strconv.FormatInt(waiting.ID, 10)
	var before string
	err = chromedp.Run(ctx,
		chromedp.Navigate(base+"/firmware"),
		chromedp.WaitVisible(sel, chromedp.ByQuery),
		chromedp.Evaluate(`window.__notReloaded = true`, nil),
		chromedp.Text(sel+" .fw-state", &before, chromedp.ByQuery),
	)
	if err != nil || before != "running" {
		t.Fatalf("before: %q, %v", before, err)
	}
	c := &firmware.Controller{DB: db, Installer: instantInstaller{version: "2.19.1"},
		Sleep: func(ctx context.Context, d time.Duration) error { return nil }}
	if err := c.Run(context.Background(), waiting.ID); err != nil {
		t.Fatal(err)
	}
	var after, done string
	var same bool
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = chromedp.Run(tctx,
		chromedp.WaitVisible(sel+` .fw-state.completed`, chromedp.ByQuery),
		chromedp.Text(sel+" .fw-state", &after, chromedp.ByQuery),
		chromedp.Text(sel+" .fw-done", &done, chromedp.ByQuery),
		chromedp.Evaluate(`window.__notReloaded === true`, &same),
	)
	if err != nil {
		t.Fatalf("the page did not show the rollout completing: %v", err)
	}
	if after != "completed" || done != strconv.FormatInt(int64(waiting.Record.Total), 10) || !same {
		t.Errorf("after: state %q, done %q of %d, same page %v", after, done, waiting.Record.Total, same)
	}
}

// instantInstaller stands in for BMCs: every install succeeds at once.
type instantInstaller struct{ version string }

func (i instantInstaller) Install(ctx context.Context, h firmware.RolloutHost, started func(string) error) error {
	return started("test")
}

func (i instantInstaller) Follow(ctx context.Context, h firmware.RolloutHost, handle string) error {
	return nil
}

func (i instantInstaller) Probe(ctx context.Context, h firmware.RolloutHost) (string, error) {
	return "", nil
}

func (i instantInstaller) Version(ctx context.Context, h firmware.RolloutHost) (string, error) {
	return i.version, nil
}
