// Package webtest is the browser test harness every part's page tests use: it
// starts a srekit server on a random loopback port and drives Debian's
// Chromium, headless, through chromedp. When a test fails, a screenshot of the
// page is saved (the path is logged) so the failure can be seen.
package webtest

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/store/storetest"
	"github.com/srekit/srekit/web"
)

// Token is the write token of servers started by StartServer.
const Token = "test-token"

// StartServer starts a server over a fresh SQLite store on a random loopback
// port and returns it with its base URL. If demo is true the demo data is loaded.
func StartServer(t testing.TB, demo bool) (*web.Server, string) {
	t.Helper()
	st := storetest.SQLite(t)
	if demo {
		if err := web.LoadDemo(context.Background(), st); err != nil {
			t.Fatalf("load demo: %v", err)
		}
	}
	s, err := web.New(st, web.Config{Token: Token})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

// ChromiumPath finds Debian's chromium (or a Chrome on PATH).
func ChromiumPath() string {
	if p := os.Getenv("SREKIT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser returns a chromedp context for a fresh headless Chromium, closed
// when the test ends. Without Chromium the test is skipped loudly, or fails
// under CI, where `make test` must have installed it.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path := ChromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium not found: `make test` installs it (apt-get install chromium)")
		}
		t.Skip("SKIPPED: browser test NOT RUN: chromium is not installed (`make test` installs it)")
	}
	// The profile directory is ours, not t.TempDir(): Chromium's helper
	// processes can still be writing to it as the browser exits, which makes
	// TempDir's own removal fail the test. It is removed best-effort below.
	profile, err := os.MkdirTemp("", "srekit-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("headless", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	// Start the browser now so a start-up failure is reported here.
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		os.RemoveAll(profile)
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			saveScreenshot(t, ctx)
		}
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		for i := 0; i < 10; i++ {
			if os.RemoveAll(profile) == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	return ctx
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func saveScreenshot(t testing.TB, ctx context.Context) {
	dir := os.Getenv("SREKIT_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "srekit-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	var buf []byte
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Run(sctx, chromedp.FullScreenshot(&buf, 80)); err != nil {
		t.Logf("could not take a failure screenshot: %v", err)
		return
	}
	path := filepath.Join(dir, unsafeChars.ReplaceAllString(t.Name(), "_")+".jpg")
	if err := os.WriteFile(path, buf, 0o644); err == nil {
		t.Logf("failure screenshot: %s", path)
	}
}

// Screenshot saves a PNG of the current page to path (for docs and for looking).
func Screenshot(ctx context.Context, path string) error {
	var buf []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&buf, 100)); err != nil {
		return err
	}
	return os.WriteFile(path, buf, 0o644)
}

// ClickAndLoad clicks sel, which leads to a new page (a form submit or a
// link), and returns once the new page has loaded. A plain Click returns at
// once: the next action may then read the old page, or fail with "Cannot
// find context with specified id" while Chromium swaps documents.
func ClickAndLoad(sel string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		if err := chromedp.Evaluate(`window.__srekitOldPage = true`, nil).Do(ctx); err != nil {
			return err
		}
		if err := chromedp.Click(sel, chromedp.ByQuery).Do(ctx); err != nil {
			return err
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			var loaded bool
			err := chromedp.Evaluate(`!window.__srekitOldPage && document.readyState === "complete"`, &loaded).Do(ctx)
			if err == nil && loaded {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("click %s: no new page loaded within 30s (last: %v)", sel, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}
