// Command backend is the benchmark's backend: a small HTTP server answering
// every request with a short body, optionally after a delay (the network
// distance of a simulated region). The same backend sits behind srekit mesh,
// HAProxy and nginx, so the proxies are compared on equal terms.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18080", "listen address")
	delay := flag.Duration("delay", 0, "delay before every answer")
	name := flag.String("name", "backend", "name put in the X-Backend header")
	flag.Parse()
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
