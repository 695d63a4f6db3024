package web_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/web/webtest"
)

const flameTestProfile = "main;work;leaf 60\nmain;work;other;leaf 5\nmain;idle 25\nmain;work 10\n"

// matchedShare is the share of samples in stacks with a frame matching re,
// as the graph's "Matched: x%" should show it.
func matchedShare(t *testing.T, folded, re string, ignoreCase bool) string {
	t.Helper()
	p, err := flame.ParseFolded(strings.NewReader(folded))
	if err != nil {
		t.Fatal(err)
	}
	if ignoreCase {
		re = "(?i)" + re
	}
	rx := regexp.MustCompile(re)
	var hit int64
	for _, s := range p.Samples {
		for _, f := range s.Stack {
			if rx.MatchString(f) {
				hit += s.Value
				break
			}
		}
	}
	pct := 100 * float64(hit) / float64(p.Total())
	if pct == 100 {
		return "Matched: 100%"
	}
	return fmt.Sprintf("Matched: %.1f%%", pct)
}

// TestBrowserFlameGraphSVG opens a rendered SVG in Chromium: a regex search
// (through the Search button and its prompt) paints the matches
// rgb(230,0,230) and shows their share; clicking a frame zooms to it.
func TestBrowserFlameGraphSVG(t *testing.T) {
	p, err := flame.ParseFolded(strings.NewReader(flameTestProfile))
	if err != nil {
		t.Fatal(err)
	}
	var svg bytes.Buffer
	if err := flame.Render(&svg, p, flame.RenderOptions{Title: "browser test"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Write(svg.Bytes())
	}))
	defer ts.Close()

	ctx := webtest.Browser(t)
	answer := make(chan string, 4)
	chromedp.ListenTarget(ctx, func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			text := <-answer
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(true).WithPromptText(text))
		}
	})
	fill := func(name string) string {
		return fmt.Sprintf(`(function(){var out=[];document.querySelectorAll("#frames > g").forEach(function(g){
			var t=g.querySelector("title").textContent; if (t.substring(0,t.lastIndexOf(" (")) === %q) out.push(g.querySelector("rect").getAttribute("fill"));});return out.join("|");})()`, name)
	}
	var matched, leafFill, idleFill, workFill string
	answer <- "^(leaf|idle)$"
	if err := chromedp.Run(ctx,
		chromedp.Navigate(ts.URL+"/graph.svg"),
		chromedp.WaitReady("#frames", chromedp.ByQuery),
		chromedp.Click("#search", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("matched").textContent.indexOf("Matched") >= 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.getElementById("matched").textContent`, &matched),
		chromedp.Evaluate(fill("leaf"), &leafFill),
		chromedp.Evaluate(fill("idle"), &idleFill),
		chromedp.Evaluate(fill("work"), &workFill),
	); err != nil {
		t.Fatal(err)
	}
	if want := matchedShare(t, flameTestProfile, "^(leaf|idle)$", false); matched != want {
		t.Errorf("readout %q, want %q", matched, want)
	}
	for name, f := range map[string]string{"leaf": leafFill, "idle": idleFill} {
		for _, c := range strings.Split(f, "|") {
			if c != "rgb(230,0,230)" {
				t.Errorf("matched frame %s has fill %q, want rgb(230,0,230)", name, c)
			}
		}
	}
	if workFill == "rgb(230,0,230)" || workFill == "" {
		t.Errorf("unmatched frame work has fill %q", workFill)
	}
	var url string
	if err := chromedp.Run(ctx, chromedp.Location(&url)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(url, "s=") {
		t.Errorf("search not kept in the URL: %s", url)
	}

	// case toggle: the search is redone ignoring case
	var matched2 string
	answer <- "^WORK$"
	if err := chromedp.Run(ctx,
		chromedp.Click("#search", chromedp.ByQuery), // resets the search
		chromedp.Click("#ignorecase", chromedp.ByQuery),
		chromedp.Click("#search", chromedp.ByQuery), // prompts
		chromedp.Poll(`document.getElementById("matched").textContent.indexOf("Matched") >= 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.getElementById("matched").textContent`, &matched2),
	); err != nil {
		t.Fatal(err)
	}
	if want := matchedShare(t, flameTestProfile, "^WORK$", true); matched2 != want {
		t.Errorf("ignore-case readout %q, want %q", matched2, want)
	}

	// click "work": it fills the width, its parents are marked, "idle" is hidden
	var idx int
	if err := chromedp.Run(ctx, chromedp.Evaluate(`(function(){var gs=document.querySelectorAll("#frames > g");
		for (var i=0;i<gs.length;i++){var t=gs[i].querySelector("title").textContent; if (t.indexOf("work (")===0) return i+1;} return 0;})()`, &idx)); err != nil || idx == 0 {
		t.Fatalf("frame work not found: %v", err)
	}
	var workW, idleClass, mainClass, unzoomClass string
	ctxTimeout, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Run(ctxTimeout,
		chromedp.Click(fmt.Sprintf("#frames > g:nth-child(%d) rect", idx), chromedp.ByQuery),
		chromedp.Poll(`!document.getElementById("unzoom").classList.contains("hide")`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.AttributeValue(fmt.Sprintf("#frames > g:nth-child(%d) rect", idx), "width", &workW, nil, chromedp.ByQuery),
		chromedp.Evaluate(`(function(){var c="";document.querySelectorAll("#frames > g").forEach(function(g){if (g.querySelector("title").textContent.indexOf("idle (")===0) c=g.getAttribute("class")||"";});return c;})()`, &idleClass),
		chromedp.Evaluate(`(function(){var c="";document.querySelectorAll("#frames > g").forEach(function(g){if (g.querySelector("title").textContent.indexOf("main (")===0) c=g.getAttribute("class")||"";});return c;})()`, &mainClass),
		chromedp.AttributeValue("#unzoom", "class", &unzoomClass, nil, chromedp.ByQuery),
		chromedp.Location(&url),
	); err != nil {
		t.Fatal(err)
	}
	if workW != "1180.0" {
		t.Errorf("zoomed frame width %q, want 1180.0 (the full width)", workW)
	}
	if !strings.Contains(idleClass, "hide") {
		t.Errorf("idle not hidden after zooming into work: class %q", idleClass)
	}
	if !strings.Contains(mainClass, "parent") {
		t.Errorf("main not marked as a parent: class %q", mainClass)
	}
	if !strings.Contains(url, "x=") || !strings.Contains(url, "y=") {
		t.Errorf("zoom not kept in the URL: %s", url)
	}
	// reload with the URL state: still zoomed
	var reloadedW string
	if err := chromedp.Run(ctxTimeout,
		chromedp.Navigate(url),
		chromedp.WaitReady("#frames", chromedp.ByQuery),
		chromedp.AttributeValue(fmt.Sprintf("#frames > g:nth-child(%d) rect", idx), "width", &reloadedW, nil, chromedp.ByQuery),
		chromedp.Click("#unzoom", chromedp.ByQuery),
		chromedp.AttributeValue(fmt.Sprintf("#frames > g:nth-child(%d) rect", idx), "width", &workW, nil, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if reloadedW != "1180.0" {
		t.Errorf("zoom not restored from the URL: width %q", reloadedW)
	}
	if workW == "1180.0" {
		t.Error("Reset Zoom did not restore the width")
	}
}

// TestBrowserFlamePage pastes a profile into /flame, draws it and checks
// the graph shows in the page's frame.
func TestBrowserFlamePage(t *testing.T) {
	_, base := webtest.StartServer(t, false)
	ctx := webtest.Browser(t)
	var status string
	var frames int
	if err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/flame"),
		chromedp.WaitVisible("#flame-example", chromedp.ByQuery),
		// the page draws the example on its own first
		chromedp.Poll(`document.getElementById("flame-status").textContent.indexOf("Drawn") === 0`, nil, chromedp.WithPollingTimeout(15*time.Second)),
		chromedp.Click("#flame-example", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("flame-text").value.length > 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.SetValue("#flame-search", "regexp", chromedp.ByQuery),
		chromedp.Click("#flame-draw", chromedp.ByQuery),
		chromedp.Poll(`(function(){var f=document.getElementById("flame-frame"); try { return f.contentDocument && f.contentDocument.querySelectorAll("#frames > g").length > 0 && f.contentDocument.getElementById("matched").textContent.indexOf("Matched") >= 0; } catch(e) { return false; }})()`,
			nil, chromedp.WithPollingTimeout(15*time.Second)),
		chromedp.Text("#flame-status", &status, chromedp.ByQuery),
		chromedp.Evaluate(`document.getElementById("flame-frame").contentDocument.querySelectorAll("#frames > g").length`, &frames),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(status, "Drawn") {
		t.Errorf("status %q", status)
	}
	if frames < 10 {
		t.Errorf("the example graph has %d frames", frames)
	}
	// bad input: one clear error in the page
	if err := chromedp.Run(ctx,
		chromedp.SetValue("#flame-text", "nothing to see here", chromedp.ByQuery),
		chromedp.SetValue("#flame-format", "perf", chromedp.ByQuery),
		chromedp.Click("#flame-draw", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("flame-status").textContent.indexOf("Error") === 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Text("#flame-status", &status, chromedp.ByQuery),
	); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(status, "no stack counts") {
		t.Errorf("error status %q", status)
	}
}

// TestBrowserFlameHTMLView opens the offline HTML view: the search box
// paints the graph and filters the function table, and clicking a function
// draws its sandwich (callers above, callees below).
func TestBrowserFlameHTMLView(t *testing.T) {
	p, err := flame.ParseFolded(strings.NewReader(flameTestProfile))
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	if err := flame.RenderHTML(&page, p, flame.RenderOptions{Title: "html view"}); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(page.Bytes())
	}))
	defer ts.Close()
	ctx := webtest.Browser(t)
	var matched string
	var visibleRows int
	var callers, callees string
	if err := chromedp.Run(ctx,
		chromedp.Navigate(ts.URL),
		chromedp.WaitReady("#funcs", chromedp.ByQuery),
		chromedp.SendKeys("#q", "^idle$", chromedp.ByQuery),
		chromedp.Poll(`document.getElementById("matched").textContent.indexOf("Matched") >= 0`, nil, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Evaluate(`document.getElementById("matched").textContent`, &matched),
		chromedp.Evaluate(`Array.prototype.filter.call(document.querySelectorAll("#funcs tbody tr"), function(r){return r.style.display !== "none";}).length`, &visibleRows),
		chromedp.Evaluate(`(function(){var c=null;document.querySelectorAll("#funcs td.name").forEach(function(td){if(td.textContent==="work") c=td;}); c.click(); return true;})()`, nil),
		chromedp.Evaluate(`Array.prototype.map.call(document.querySelectorAll("#callers div.f"), function(d){return d.textContent;}).join(",")`, &callers),
		chromedp.Evaluate(`Array.prototype.map.call(document.querySelectorAll("#callees div.f"), function(d){return d.textContent;}).join(",")`, &callees),
	); err != nil {
		t.Fatal(err)
	}
	if want := matchedShare(t, flameTestProfile, "^idle$", false); matched != want {
		t.Errorf("readout %q, want %q", matched, want)
	}
	if visibleRows != 1 {
		t.Errorf("%d table rows match ^idle$, want 1", visibleRows)
	}
	// callers of work: work itself, then main; callees: leaf, other
	if callers != "work,main" {
		t.Errorf("callers %q, want work,main", callers)
	}
	for _, want := range []string{"work", "leaf", "other"} {
		if !strings.Contains(callees, want) {
			t.Errorf("callees %q lack %s", callees, want)
		}
	}
}
