package profiling

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/pprof"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestAgentBufferSurvivesRestart: a result the server cannot take is kept in
// --buffer-dir, and a new agent process delivers it. The server here is a
// stand-in that speaks the agent protocol (the real server is exercised in
// web's end-to-end test).
func TestAgentBufferSurvivesRestart(t *testing.T) {
	pmux := http.NewServeMux()
	pmux.HandleFunc("/debug/pprof/", pprof.Index)
	svc := httptest.NewServer(pmux)
	defer svc.Close()

	var accept atomic.Bool
	var handed atomic.Bool
	var mu sync.Mutex
	var delivered []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/profiling/agents", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	mux.HandleFunc("GET /api/v1/profiling/agents/{name}/next", func(w http.ResponseWriter, r *http.Request) {
		if handed.CompareAndSwap(false, true) {
			json.NewEncoder(w).Encode(Capture{ID: 7, Agent: "a", Target: "api", Kind: "goroutine", Seconds: 1})
			return
		}
		time.Sleep(200 * time.Millisecond)
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("POST /api/v1/profiling/captures/{id}/result", func(w http.ResponseWriter, r *http.Request) {
		if !accept.Load() {
			http.Error(w, `{"error":"down for maintenance"}`, http.StatusServiceUnavailable)
			return
		}
		mu.Lock()
		delivered = append(delivered, r.PathValue("id")+" "+r.URL.Query().Get("format"))
		mu.Unlock()
		io.WriteString(w, "{}")
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	dir := t.TempDir()
	cfg := AgentConfig{Server: srv.URL, Token: "t", Name: "a", Pprof: []PprofTarget{{Name: "api", URL: svc.URL}},
		BufferDir: dir, PollWait: time.Second, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	run := func() (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { RunAgent(ctx, cfg); close(done) }()
		return func() { cancel(); <-done }
	}
	stop := run()
	var files []string
	for i := 0; i < 100 && len(files) == 0; i++ {
		time.Sleep(100 * time.Millisecond)
		files, _ = filepath.Glob(filepath.Join(dir, "*.json"))
	}
	stop()
	if len(files) != 1 {
		t.Fatalf("buffered files: %v", files)
	}
	accept.Store(true)
	stop = run()
	defer stop()
	for i := 0; i < 100; i++ {
		mu.Lock()
		n := len(delivered)
		mu.Unlock()
		files, _ = filepath.Glob(filepath.Join(dir, "*.json"))
		if n == 1 && len(files) == 0 {
			if delivered[0] != "7 pprof" {
				t.Fatalf("delivered %v", delivered)
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the restarted agent did not deliver the buffered result: delivered %v, files %v", delivered, files)
}
