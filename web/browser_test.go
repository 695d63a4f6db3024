package web_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/web/webtest"
)

func TestBrowserHomeShowsNavigation(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)
	var title, brand string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("header.top", chromedp.ByQuery),
		chromedp.Title(&title),
		chromedp.Text(".brand", &brand, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "srekit") || brand != "srekit" {
		t.Fatalf("title %q, brand %q", title, brand)
	}
}
