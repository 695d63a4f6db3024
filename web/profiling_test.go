package web

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/srekit/srekit/profiling"
	"github.com/srekit/srekit/store/storetest"
)

func newProfilingTestServer(t *testing.T) string {
	t.Helper()
	s, err := New(storetest.SQLite(t), Config{Token: pfToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return ts.URL
}

func post(t *testing.T, u, ctype string, body []byte, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, bytes.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
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

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// TestPyroscopeIngest sends what Pyroscope clients send: folded text and a
// multipart pprof upload to /ingest?name=app.kind{labels}&from=&until=.
func TestPyroscopeIngest(t *testing.T) {
	base := newProfilingTestServer(t)
	from, until := time.Now().Add(-10*time.Second).Unix(), time.Now().Unix()
	u := fmt.Sprintf("%s/ingest?name=%s&from=%d&until=%d&format=folded&spyName=rbspy&sampleRate=100",
		base, "shop.cpu%7Benv%3Dprod%2Cregion%3Deu%7D", from, until)
	code, body := post(t, u, "text/plain", []byte("main;handle;render 40\nmain;handle;db 10\n"), pfToken)
	if code != 200 {
		t.Fatalf("folded ingest: %d %s", code, body)
	}
	if code, _ := post(t, u, "text/plain", []byte("main;x 1\n"), ""); code != 401 {
		t.Fatalf("ingest without the token: %d, want 401", code)
	}
	var ss []profiling.Snapshot
	getJSON(t, base+"/api/v1/profiling/snapshots?query=shop", &ss)
	if len(ss) != 1 || ss[0].Kind != "cpu" || ss[0].Labels["env"] != "prod" || ss[0].Labels["region"] != "eu" ||
		ss[0].Total != 50 || ss[0].Start.Unix() != from || ss[0].End.Unix() != until || ss[0].Source != "pyroscope:rbspy" {
		t.Fatalf("stored: %+v", ss)
	}

	// A Go heap profile, as pyroscope-go uploads it (multipart, field "profile").
	var prof bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&prof, 0); err != nil {
		t.Fatal(err)
	}
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	fw, _ := mw.CreateFormFile("profile", "profile.pprof")
	fw.Write(prof.Bytes())
	mw.Close()
	code, body = post(t, base+"/ingest?name=shop%7Benv%3Dprod%7D&format=pprof&spyName=gospy", mw.FormDataContentType(), form.Bytes(), pfToken)
	if code != 200 {
		t.Fatalf("pprof ingest: %d %s", code, body)
	}
	var res struct{ Snapshots []int64 }
	json.Unmarshal([]byte(body), &res)
	if len(res.Snapshots) != 4 {
		t.Fatalf("a heap profile should give 4 snapshots (alloc/inuse objects/space): %s", body)
	}
	getJSON(t, base+"/api/v1/profiling/snapshots?query=shop&kind=inuse_space", &ss)
	if len(ss) != 1 || ss[0].Unit != "bytes" {
		t.Fatalf("inuse_space: %+v", ss)
	}
	// The same upload again is stored once.
	code, body = post(t, base+"/ingest?name=shop%7Benv%3Dprod%7D&format=pprof&from=1&until=2", "", prof.Bytes(), pfToken)
	code2, body2 := post(t, base+"/ingest?name=shop%7Benv%3Dprod%7D&format=pprof&from=1&until=2", "", prof.Bytes(), pfToken)
	if code != 200 || code2 != 200 || !strings.Contains(body2, `"duplicates": 4`) {
		t.Fatalf("repeat upload: %d %s / %d %s", code, body, code2, body2)
	}
}

func TestIngestRejectsBadInput(t *testing.T) {
	t.Setenv(EnvMaxInflate, fmt.Sprint(8<<20))
	base := newProfilingTestServer(t)
	// 10 MiB of zeros gzip to about 10 KiB: refused by the decompression limit.
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	zero := make([]byte, 1<<20)
	for i := 0; i < 10; i++ {
		zw.Write(zero)
	}
	zw.Close()
	for _, tc := range []struct {
		name, query, ctype string
		body               []byte
		code               int
		msg                string
	}{
		{"gzip bomb", "name=a&format=folded", "", bomb.Bytes(), 413, "decompresses to more than"},
		{"not pprof", "name=a&format=pprof", "", []byte("hello"), 400, "pprof"},
		{"bad name", "name=a%7Bb", "", []byte("a;b 1\n"), 400, "missing closing"},
		{"unknown format", "name=a&format=jfr", "", []byte("x"), 400, "unknown format"},
		{"no stacks", "name=a&format=folded", "", []byte("just words\n"), 400, "no stacks"},
		{"bad time", "name=a&from=yesterday", "", []byte("a;b 1\n"), 400, "time"},
		{"multipart without profile", "name=a&format=pprof", "multipart/form-data; boundary=xx", []byte("--xx--\r\n"), 400, "multipart upload has no"},
	} {
		code, body := post(t, base+"/ingest?"+tc.query, tc.ctype, tc.body, pfToken)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d with %q", tc.name, code, body, tc.code, tc.msg)
		}
		if strings.Count(strings.TrimSpace(body), "\n") > 2 {
			t.Errorf("%s: error is not one line: %s", tc.name, body)
		}
	}
	var st profiling.Stats
	getJSON(t, base+"/api/v1/profiling/stats", &st)
	if st.Snapshots != 0 {
		t.Fatalf("bad uploads stored %d snapshots", st.Snapshots)
	}
}

func TestProfilingPageRenders(t *testing.T) {
	st := storetest.SQLite(t)
	if err := profiling.Demo(context.Background(), st, time.Now()); err != nil {
		t.Fatal(err)
	}
	s, err := New(st, Config{Token: pfToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	resp, err := http.Get(ts.URL + "/profiling?query=checkout&from=now-3h")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="heatmap"`) || !strings.Contains(page, "48 snapshots selected") {
		t.Fatalf("page: %d\n%.3000s", resp.StatusCode, page)
	}
}

// TestAgentOverHTTPS registers an agent with a server it authenticates by
// a CA certificate file, and checks the agent's refusals.
func TestAgentOverHTTPS(t *testing.T) {
	s, err := New(storetest.SQLite(t), Config{Token: pfToken})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(s.Handler())
	defer ts.Close()
	ca := t.TempDir() + "/ca.pem"
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	target := []profiling.PprofTarget{{Name: "api", URL: "http://127.0.0.1:1"}}
	for _, bad := range []profiling.AgentConfig{
		{Server: "http://10.1.2.3:8080", Token: "x", Pprof: target},                                             // token in clear across the network
		{Server: ts.URL, Pprof: target},                                                                         // no token
		{Server: ts.URL, Token: "x"},                                                                            // nothing to capture
		{Server: ts.URL, Token: "x", Pprof: target, Allow: []string{"shell"}},                                   // not a kind
		{Server: ts.URL, Token: "x", Pprof: []profiling.PprofTarget{{Name: "perf", URL: "http://127.0.0.1:1"}}}, // reserved name
	} {
		if err := profiling.RunAgent(context.Background(), bad); err == nil {
			t.Errorf("agent config %+v accepted", bad)
		}
	}
	// Without the CA the agent cannot register (it keeps retrying); with it, it can.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- profiling.RunAgent(ctx, profiling.AgentConfig{Server: ts.URL, Token: pfToken, Name: "tls-host", CACert: ca, Pprof: target, PollWait: time.Second})
	}()
	defer func() { cancel(); <-done }()
	for i := 0; i < 100; i++ {
		var as []profiling.Agent
		resp, err := ts.Client().Get(ts.URL + "/api/v1/profiling/agents")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&as)
			resp.Body.Close()
		}
		if len(as) == 1 && as[0].Name == "tls-host" && len(as[0].Targets) == 1 && len(as[0].Targets[0].Kinds) == 6 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("agent never registered over HTTPS")
}

func TestOTLPProfilesIngest(t *testing.T) {
	base := newProfilingTestServer(t)
	ps := pprofile.NewProfiles()
	d := ps.Dictionary()
	d.StringTable().Append("", "cpu", "nanoseconds", "main", "work")
	d.FunctionTable().AppendEmpty()
	d.FunctionTable().AppendEmpty().SetNameStrindex(3)
	d.FunctionTable().AppendEmpty().SetNameStrindex(4)
	d.LocationTable().AppendEmpty()
	d.LocationTable().AppendEmpty().Lines().AppendEmpty().SetFunctionIndex(1)
	d.LocationTable().AppendEmpty().Lines().AppendEmpty().SetFunctionIndex(2)
	d.StackTable().AppendEmpty()
	d.StackTable().AppendEmpty().LocationIndices().Append(2, 1)
	rp := ps.ResourceProfiles().AppendEmpty()
	rp.Resource().Attributes().PutStr("service.name", "otel-svc")
	p := rp.ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
	p.SampleType().SetTypeStrindex(1)
	p.SampleType().SetUnitStrindex(2)
	s := p.Samples().AppendEmpty()
	s.SetStackIndex(1)
	s.Values().Append(1000)
	body, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(ps)
	if err != nil {
		t.Fatal(err)
	}
	// Off by default: the signal is alpha.
	if code, msg := post(t, base+"/ingest?name=x&format=otlp", "", body, pfToken); code != 400 || !strings.Contains(msg, EnvOTLP) {
		t.Fatalf("OTLP while off: %d %s", code, msg)
	}
	t.Setenv(EnvOTLP, "1")
	base = newProfilingTestServer(t)
	code, msg := post(t, base+"/v1development/profiles", "application/x-protobuf", body, pfToken)
	if code != 200 || msg != "" {
		t.Fatalf("OTLP/HTTP: %d %q", code, msg)
	}
	var ss []profiling.Snapshot
	getJSON(t, base+"/api/v1/profiling/snapshots?query=otel-svc", &ss)
	if len(ss) != 1 || ss[0].Kind != "cpu" || ss[0].Total != 1000 || ss[0].Source != "otlp" {
		t.Fatalf("stored: %+v", ss)
	}
	if code, _ := post(t, base+"/v1development/profiles", "application/x-protobuf", []byte("\xff\xff\xff"), pfToken); code != 400 {
		t.Fatalf("bad OTLP body: %d", code)
	}
	if ss[0].HasTimeline {
		t.Fatal("an OTLP profile without sample timestamps got a timeline")
	}
	// With a timestamp per sample (as the OTel eBPF profiler sends), the
	// snapshot gets the sub-second view.
	s.Values().FromRaw([]int64{400, 600})
	s.TimestampsUnixNano().Append(1_764_000_000_000_000_000, 1_764_000_002_500_000_000)
	if body, err = (&pprofile.ProtoMarshaler{}).MarshalProfiles(ps); err != nil {
		t.Fatal(err)
	}
	if code, msg := post(t, base+"/v1development/profiles", "application/x-protobuf", body, pfToken); code != 200 {
		t.Fatalf("timed OTLP: %d %q", code, msg)
	}
	getJSON(t, base+"/api/v1/profiling/snapshots?query=otel-svc", &ss) // newest first
	if len(ss) != 2 || ss[1].HasTimeline {
		t.Fatalf("stored: %+v", ss)
	}
	var hm struct {
		Grid profiling.Grid `json:"grid"`
	}
	getJSON(t, fmt.Sprintf("%s/api/v1/profiling/snapshots/%d/heatmap", base, ss[0].ID), &hm)
	if !ss[0].HasTimeline || hm.Grid.Samples != 2 || hm.Grid.Columns != 3 || hm.Grid.Cells[2][25] != 1 {
		t.Fatalf("timed OTLP: timeline %v, grid %+v", ss[0].HasTimeline, hm.Grid)
	}
}
