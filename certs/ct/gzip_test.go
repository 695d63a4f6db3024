package ct_test

import (
	"compress/gzip"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/srekit/srekit/certs/ct"
	"github.com/srekit/srekit/certs/ct/ctlogtest"
	"github.com/srekit/srekit/store/storetest"
)

// gzipWriter compresses a response whatever the request asked for, as
// static-ct-api logs may ("with no negotiation").
type gzipWriter struct {
	http.ResponseWriter
	gz *gzip.Writer
}

func (g gzipWriter) Write(b []byte) (int, error) { return g.gz.Write(b) }

// TestStaticLogServingGzipTiles: data tiles compressed without negotiation are read.
func TestStaticLogServingGzipTiles(t *testing.T) {
	l, _ := ctlogtest.NewLog("", true)
	sc, _ := ctlogtest.NewScenario()
	if err := sc.Fill(l, 700, 10, 0); err != nil {
		t.Fatal(err)
	}
	l.Publish()
	var gzipped atomic.Int64
	h := l.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/tile/data/") {
			h.ServeHTTP(w, r)
			return
		}
		gzipped.Add(1)
		w.Header().Set("Content-Encoding", "gzip")
		gz := gzip.NewWriter(w)
		h.ServeHTTP(gzipWriter{w, gz}, r)
		gz.Close()
	}))
	defer srv.Close()
	st := storetest.SQLite(t)
	m := &ct.Monitor{Store: st, Logs: mustList(t, l.LogListJSON(srv.URL+"/", "gzip")).Logs, Rules: scenarioRules(t), Once: true}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkExact(t, st, sc)
	if gzipped.Load() < 3 {
		t.Fatalf("only %d tiles served gzipped", gzipped.Load())
	}
}
