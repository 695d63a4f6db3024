// Command backend is the benchmark's backend: a small HTTP server answering
// every request with a short body, optionally after a delay (the network
// distance of a simulated region). The same backend sits behind srekit mesh,
// HAProxy and nginx, so the proxies are compared on equal terms.
//
// It collects garbage only when its heap reaches -gc-limit (net/http
// allocates a few KB per request, so with Go's default pacing and a tiny
// live heap it would collect several times a second). A collection adds
// the same delay whichever proxy is in front, so it is only noise in the
// "added latency" the bench measures.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"runtime/debug"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	delay := flag.Duration("delay", 0, "delay before every answer")
	name := flag.String("name", "backend", "name put in the X-Backend header")
	gcLimit := flag.Int64("gc-limit", 256<<20, "collect garbage only when the heap reaches this many bytes (0: Go's default pacing)")
	flag.Parse()
	if *gcLimit > 0 {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(*gcLimit)
	}
	body := []byte("ok from " + *name + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if *delay > 0 {
			time.Sleep(*delay)
		}
		w.Header().Set("X-Backend", *name)
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})
	log.Fatal((&http.Server{Addr: *addr, Handler: h}).ListenAndServe())
}
