package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/srekit/srekit/internal/sharedtest"
	"github.com/srekit/srekit/profiling"
)

// perfSampleOffsets lists each sample's time in microseconds after the
// first, read from the headers with a regular expression (independently of
// the timeline code). The last sample is dropped when no blank line ends it,
// as stackcollapse-perf.pl drops it.
func perfSampleOffsets(t testing.TB, raw []byte) []int64 {
	re := regexp.MustCompile(`(?m)^\S.*?\s(\d+)\.(\d{6}):.*:\s*$`)
	ms := re.FindAllSubmatchIndex(raw, -1)
	if n := len(ms); n > 0 && !bytes.Contains(raw[ms[n-1][1]:], []byte("\n\n")) {
		ms = ms[:n-1]
	}
	var out []int64
	for _, m := range ms {
		sec, _ := strconv.ParseInt(string(raw[m[2]:m[3]]), 10, 64)
		us, _ := strconv.ParseInt(string(raw[m[4]:m[5]]), 10, 64)
		out = append(out, sec*1_000_000+us)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	for i := len(out) - 1; i >= 0; i-- {
		out[i] -= out[0]
	}
	return out
}

func countIn(offs []int64, from, until int64) int64 {
	var n int64
	for _, o := range offs {
		if o >= from && o < until {
			n++
		}
	}
	return n
}

func getRaw(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestProfilingTimelineAPI uploads a real perf script (1,315 samples over
// 10 s, event "cycles" with no period: each sample weighs 1) and checks the
// heat map grid and time-range flame graphs against an independent count.
func TestProfilingTimelineAPI(t *testing.T) {
	raw := sharedtest.Read(t, "sub-second heat map test", "flamegraph", "example-perf-stacks.txt.gz")
	offs := perfSampleOffsets(t, raw)
	base := newProfilingTestServer(t)
	code, body := post(t, base+"/api/v1/profiling/ingest?format=perf&name=demo%7Bhost%3Dh1%7D", "text/plain", raw, pfToken)
	if code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	var up struct {
		Snapshots []int64 `json:"snapshots"`
		Timelines []int64 `json:"timelines"`
	}
	json.Unmarshal([]byte(body), &up)
	if len(up.Timelines) != 1 || up.Timelines[0] != up.Snapshots[0] {
		t.Fatalf("ingest answer: %s", body)
	}
	id := up.Snapshots[0]
	code, body = post(t, base+"/api/v1/profiling/ingest?format=folded&name=plain", "text/plain", []byte("a;b 3\n"), pfToken)
	if code != 200 {
		t.Fatalf("folded ingest: %d %s", code, body)
	}
	var plain struct {
		Snapshots []int64 `json:"snapshots"`
		Timelines []int64 `json:"timelines"`
	}
	json.Unmarshal([]byte(body), &plain)
	if len(plain.Timelines) != 0 {
		t.Fatalf("folded upload got a timeline: %s", body)
	}

	var hm struct {
		Snapshot profiling.Snapshot `json:"snapshot"`
		Grid     profiling.Grid     `json:"grid"`
	}
	getJSON(t, fmt.Sprintf("%s/api/v1/profiling/snapshots/%d/heatmap", base, id), &hm)
	g := hm.Grid
	if !hm.Snapshot.HasTimeline || g.Columns != 10 || g.Rows != 50 || g.RowMS != 20 || g.Samples != len(offs) {
		t.Fatalf("grid: %d×%d rows of %d ms, %d samples (want 10×50, %d)", g.Columns, g.Rows, g.RowMS, g.Samples, len(offs))
	}
	for c := range g.Cells {
		for r, v := range g.Cells[c] {
			from := int64(c)*1_000_000 + int64(r)*20_000
			if want := countIn(offs, from, from+20_000); int64(v) != want {
				t.Fatalf("cell %d,%d: %d samples, want %d", c, r, v, want)
			}
		}
	}

	// A range's flame graph: [2 s, 5 s).
	var m profiling.MergeResult
	getJSON(t, fmt.Sprintf("%s/api/v1/profiling/snapshots/%d?start=2&end=5&format=json", base, id), &m)
	want := countIn(offs, 2_000_000, 5_000_000)
	if int64(m.Samples) != want || m.Total != want || want == 0 || want == int64(len(offs)) {
		t.Fatalf("range 2-5 s: %d samples, total %d, want %d", m.Samples, m.Total, want)
	}
	code, _, folded := getRaw(t, fmt.Sprintf("%s/api/v1/profiling/snapshots/%d?start=2&end=5&format=folded", base, id))
	if code != 200 || foldedSum(t, folded) != want {
		t.Fatalf("range folded: %d, sum %d want %d", code, foldedSum(t, folded), want)
	}
	code, hdr, svg := getRaw(t, fmt.Sprintf("%s/api/v1/profiling/snapshots/%d?start=2&end=5&format=svg", base, id))
	if code != 200 || !strings.Contains(svg, "<svg") || !strings.Contains(hdr.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Fatalf("range svg: %d, CSP %q", code, hdr.Get("Content-Security-Policy"))
	}
	code, hdr, html := getRaw(t, fmt.Sprintf("%s/api/v1/profiling/snapshots/%d?start=2&end=5&format=html", base, id))
	if code != 200 || !strings.Contains(html, `<meta http-equiv="Content-Security-Policy" content="default-src 'none'`) || hdr.Get("Content-Security-Policy") == "" {
		t.Fatalf("range html: %d, no CSP in the file", code)
	}
	// Two selections merged: [0.5, 1.5) and [7, 8.02), and overlapping ones count once.
	getJSON(t, fmt.Sprintf("%s/api/v1/profiling/merge?ranges=%d:0.5-1.5,%d:7-8.02&format=json", base, id, id), &m)
	want = countIn(offs, 500_000, 1_500_000) + countIn(offs, 7_000_000, 8_020_000)
	if m.Total != want || int64(m.Samples) != want || len(m.Ranges) != 2 {
		t.Fatalf("merged selections: total %d samples %d, want %d", m.Total, m.Samples, want)
	}
	getJSON(t, fmt.Sprintf("%s/api/v1/profiling/merge?ranges=%d:0-3,%d:2-4&format=json", base, id, id), &m)
	if want := countIn(offs, 0, 4_000_000); m.Total != want {
		t.Fatalf("overlapping selections: total %d, want %d", m.Total, want)
	}
	// The whole range is the snapshot.
	getJSON(t, fmt.Sprintf("%s/api/v1/profiling/snapshots/%d?start=0&format=json", base, id), &m)
	if m.Total != hm.Snapshot.Total {
		t.Fatalf("whole range total %d, snapshot %d", m.Total, hm.Snapshot.Total)
	}

	// The page says which heat map it shows.
	if _, _, page := getRaw(t, fmt.Sprintf("%s/profiling?snapshot=%d", base, id)); !strings.Contains(page, `id="subsecond-map"`) || !strings.Contains(page, "<strong>sub-second</strong>") {
		t.Fatal("the page of a perf snapshot has no sub-second heat map")
	}
	if _, _, page := getRaw(t, fmt.Sprintf("%s/profiling?snapshot=%d", base, plain.Snapshots[0])); !strings.Contains(page, `id="no-timeline"`) || strings.Contains(page, `id="subsecond-map"`) {
		t.Fatal("the page of a folded snapshot does not say it has no sub-second view")
	}
	if _, _, page := getRaw(t, base+"/profiling?from=now-1h"); !strings.Contains(page, "<strong>snapshot granularity</strong>") || !strings.Contains(page, "1 of these snapshots keep each sample") {
		t.Fatal("the browse page does not say its heat map is at snapshot granularity")
	}

	// A selection mixing units shows the most common one and links to the others.
	if code, body := post(t, base+"/api/v1/profiling/ingest?format=folded&name=go&units=nanoseconds", "text/plain", []byte("main;run 5000000\n"), pfToken); code != 200 {
		t.Fatalf("nanoseconds ingest: %d %s", code, body)
	}
	if _, _, page := getRaw(t, base+"/profiling?from=now-1h"); !strings.Contains(page, `id="other-units"`) ||
		!strings.Contains(page, "2 snapshots selected") || !strings.Contains(page, "unit=samples") || !strings.Contains(page, "1 in nanoseconds") {
		t.Fatal("a selection mixing units: no notice, or not the most common unit shown")
	}
	if _, _, page := getRaw(t, base+"/profiling?from=now-1h&unit=nanoseconds"); !strings.Contains(page, "1 snapshots selected") || !strings.Contains(page, "2 in samples") {
		t.Fatal("unit=nanoseconds does not select the other unit")
	}

	for _, tc := range []struct {
		path string
		code int
		msg  string
	}{
		{"/api/v1/profiling/merge?from=now-1h&kind=cpu", 400, "choose one with unit="},
		{fmt.Sprintf("/api/v1/profiling/snapshots/%d/heatmap", plain.Snapshots[0]), 404, "no per-sample timestamps"},
		{fmt.Sprintf("/api/v1/profiling/snapshots/%d?start=0&end=1", plain.Snapshots[0]), 404, "no per-sample timestamps"},
		{"/api/v1/profiling/snapshots/9999/heatmap", 404, "not found"},
		{fmt.Sprintf("/api/v1/profiling/snapshots/%d/heatmap?row_ms=7", id), 400, "divisor of 1000"},
		{fmt.Sprintf("/api/v1/profiling/snapshots/%d?start=5&end=2", id), 400, "end must be after the start"},
		{"/api/v1/profiling/merge?ranges=abc", 400, "ID:START-END"},
		{fmt.Sprintf("/api/v1/profiling/merge?ranges=%d:0-1,%d:0-1", id, plain.Snapshots[0]), 404, "no per-sample timestamps"},
	} {
		code, _, body := getRaw(t, base+tc.path)
		if msg := errorLine(body); code != tc.code || !strings.Contains(msg, tc.msg) || strings.Contains(msg, "\n") {
			t.Errorf("%s: %d %s, want %d with %q", tc.path, code, body, tc.code, tc.msg)
		}
	}
}

// errorLine is the message of an API error answer.
func errorLine(body string) string {
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Error
}

func foldedSum(t *testing.T, s string) int64 {
	var n int64
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseInt(line[i+1:], 10, 64)
		if err != nil {
			t.Fatalf("folded line %q", line)
		}
		n += v
	}
	return n
}

// shareService is a stand-in for an outbound share service: it records what
// it receives and answers with a link.
type shareService struct {
	mu       sync.Mutex
	received [][]byte
	srv      *httptest.Server
}

func newShareService(t *testing.T) *shareService {
	s := &shareService{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.received = append(s.received, b)
		n := len(s.received)
		s.mu.Unlock()
		WriteJSON(w, http.StatusCreated, map[string]string{"url": fmt.Sprintf("https://share.example/v/%d", n)})
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *shareService) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.received)
}

// TestProfilingShare: with a share service configured a view's offline HTML
// is published and the link comes back; with the switch on nothing leaves
// the server and the API says 403.
func TestProfilingShare(t *testing.T) {
	svc := newShareService(t)
	t.Setenv(EnvShareURL, svc.srv.URL)
	base := newProfilingTestServer(t)
	code, body := post(t, base+"/api/v1/profiling/ingest?format=folded&name=shop", "text/plain", []byte("main;checkout;render 7\nmain;db 3\n"), pfToken)
	if code != 200 {
		t.Fatalf("ingest: %d %s", code, body)
	}
	share := func(base, view, token string) (int, string) {
		b, _ := json.Marshal(map[string]string{"view": view})
		return post(t, base+"/api/v1/profiling/share", "application/json", b, token)
	}
	code, body = share(base, "/api/v1/profiling/merge?query=shop&kind=cpu", pfToken)
	if code != 200 || !strings.Contains(body, "https://share.example/v/1") {
		t.Fatalf("share: %d %s", code, body)
	}
	if svc.count() != 1 {
		t.Fatalf("share service received %d posts", svc.count())
	}
	html := string(svc.received[0])
	if !strings.HasPrefix(html, "<!DOCTYPE html>") || !strings.Contains(html, "checkout") || !strings.Contains(html, `http-equiv="Content-Security-Policy"`) {
		t.Fatalf("shared file: %.300s", html)
	}
	for _, tc := range []struct {
		view, token string
		code        int
	}{
		{"/api/v1/profiling/merge?query=shop", "", 401},                 // a write: the token is needed
		{"https://elsewhere.example/x", pfToken, 400},                   // only this server's views
		{"/api/v1/profiling/agents", pfToken, 400},                      // only flame graph views
		{"/api/v1/profiling/merge?query=nothing-matches", pfToken, 404}, // the view's own error
		{"/api/v1/profiling/snapshots/1/../../stats", pfToken, 400},     // no path tricks
	} {
		if code, body := share(base, tc.view, tc.token); code != tc.code {
			t.Errorf("share %q: %d %s, want %d", tc.view, code, body, tc.code)
		}
	}
	if svc.count() != 1 {
		t.Fatalf("refused shares reached the share service: %d posts", svc.count())
	}
	code, _, page := getRaw(t, base+"/profiling?from=now-1h")
	if code != 200 || !strings.Contains(page, `id="merged-share"`) {
		t.Fatalf("page with sharing: %d, no Share action", code)
	}

	// The switch forbids it: 403, nothing sent, no action on the page.
	t.Setenv(EnvNoOutboundSharing, "1")
	closed := newProfilingTestServer(t)
	post(t, closed+"/api/v1/profiling/ingest?format=folded&name=shop", "text/plain", []byte("main;checkout 7\n"), pfToken)
	code, body = share(closed, "/api/v1/profiling/merge?query=shop&kind=cpu", pfToken)
	if msg := errorLine(body); code != 403 || !strings.Contains(msg, EnvNoOutboundSharing) || strings.Contains(msg, "\n") {
		t.Fatalf("forbidden share: %d %s", code, body)
	}
	if svc.count() != 1 {
		t.Fatalf("a forbidden share reached the share service")
	}
	code, hdr, page := getRaw(t, closed+"/profiling?from=now-1h")
	if code != 200 || strings.Contains(page, `class="share"`) || !strings.Contains(page, `id="no-sharing"`) {
		t.Fatalf("page without sharing: %d, share action shown or no notice", code)
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Fatalf("page CSP %q", csp)
	}
	// Export still works, and carries its CSP.
	code, _, exp := getRaw(t, closed+"/api/v1/profiling/merge?query=shop&kind=cpu&format=html&download=1")
	if code != 200 || !strings.Contains(exp, `http-equiv="Content-Security-Policy"`) {
		t.Fatalf("export with sharing off: %d", code)
	}
}

// TestProfilingShareNotConfigured: no share service, no switch: the API
// says so in one line and the page offers no Share action.
func TestProfilingShareNotConfigured(t *testing.T) {
	t.Setenv(EnvShareURL, "")
	base := newProfilingTestServer(t)
	b, _ := json.Marshal(map[string]string{"view": "/api/v1/profiling/merge"})
	code, body := post(t, base+"/api/v1/profiling/share", "application/json", b, pfToken)
	if code != 404 || !strings.Contains(body, EnvShareURL) {
		t.Fatalf("share without a service: %d %s", code, body)
	}
}

// Exported for the browser test (package web_test).
var (
	PerfSampleOffsetsForTest = perfSampleOffsets
	CountInForTest           = countIn
)
