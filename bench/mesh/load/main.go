// Command load is a constant-rate, open-loop HTTP/1.1 load generator:
// requests are scheduled at fixed times whether or not earlier ones have
// returned, and each latency is measured from the request's scheduled time,
// so a stalled server shows up in the percentiles instead of slowing the
// load down (no coordinated omission). It prints one line of percentiles.
//
// It is lean on purpose, because on a small machine the loader shares the
// CPU with the proxy it measures: a fixed set of keep-alive connections
// (-conns), each served by one goroutine that writes the request bytes and
// reads the response with net/http's parser. A request whose time has come
// while every connection is busy waits in the queue, and that wait counts
// in its latency.
//
// Two things keep the loader's own noise out of the tail. It does not
// collect garbage while it measures (below -gc-limit of heap), because a
// collection stops the goroutines that send and read. And it reports its
// own send lag (scheduled time to the write of the request) as lag_p99_ms:
// if that is near p99_ms, the tail is the loader or the CPU it runs on, not
// the target. On Linux the requests are released by a timerfd, not by Go's
// timers, which wait at least 1 ms when nothing else wakes the poller (see
// pace_linux.go; -sleep uses Go's timers, for comparison).
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/srekit/srekit/bench/mesh/internal/summary"
)

// result is one request's outcome.
type result struct {
	d   time.Duration // from the scheduled time to the end of the answer
	lag time.Duration // from the scheduled time to the first write
	ok  bool
	hv  string
}

func main() {
	target := flag.String("url", "", "target URL (http only)")
	rate := flag.Float64("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	warm := flag.Duration("warmup", time.Second, "sent first at the same rate, not measured")
	host := flag.String("host", "", "Host header (default: the URL's host)")
	conns := flag.Int("conns", 64, "keep-alive connections (and requests in flight at most)")
	by := flag.String("count-header", "", "count answers by this response header (e.g. X-Backend)")
	sleep := flag.Bool("sleep", false, "pace with Go's timers instead of a timerfd (Linux)")
	gcLimit := flag.Int64("gc-limit", 1<<30, "collect garbage only when the heap reaches this many bytes (0: Go's default pacing)")
	flag.Parse()
	u, err := url.Parse(*target)
	if *target == "" || *rate <= 0 || *conns <= 0 || err != nil || u.Scheme != "http" {
		fmt.Fprintln(os.Stderr, "load: --url http://host:port/path, a positive --rate and --conns are needed")
		os.Exit(2)
	}
	if *host == "" {
		*host = u.Host
	}
	if *gcLimit > 0 {
		debug.SetGCPercent(-1)
		debug.SetMemoryLimit(*gcLimit)
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: srekit-bench-load\r\n\r\n")

	total := *warm + *dur
	interval := time.Duration(float64(time.Second) / *rate)
	n := int(total / interval)
	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(*warm)
	all := goroutines(u.Host, req, *conns, start, interval, n, measureFrom, *by, *sleep)

	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	var lat, lags []time.Duration
	errs := 0
	counts := map[string]int{}
	for _, r := range all {
		if !r.ok {
			errs++
			continue
		}
		lat = append(lat, r.d)
		lags = append(lags, r.lag)
		if *by != "" {
			counts[r.hv]++
		}
	}
	fmt.Print(summary.Line(lat, lags, errs, *dur, mem.NumGC))
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Printf(" %s=%d", k, counts[k])
	}
	fmt.Println()
}

// goroutines sends n requests, request i at start + i*interval: a goroutine
// per keep-alive connection takes the next due request from a queue, writes
// it and reads the answer with net/http's parser; pace fills the queue. It
// returns the results of the requests scheduled from measureFrom on.
func goroutines(addr string, req []byte, conns int, start time.Time, interval time.Duration, n int, measureFrom time.Time, by string, sleep bool) []result {
	jobs := make(chan time.Time, n+1)
	results := make([][]result, conns)
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			var err error
			for at := range jobs {
				r := result{}
				for try := 0; try < 2 && !r.ok; try++ { // once more on a fresh connection if a kept one was closed
					if c == nil {
						if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
							c = nil
							break
						}
						br = bufio.NewReaderSize(c, 16<<10)
					}
					now := time.Now()
					if try == 0 {
						r.lag = now.Sub(at)
					}
					c.SetDeadline(now.Add(10 * time.Second))
					res, err := func() (*http.Response, error) {
						if _, err := c.Write(req); err != nil {
							return nil, err
						}
						return http.ReadResponse(br, nil)
					}()
					if err != nil {
						c.Close()
						c = nil
						continue
					}
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					r.ok = err == nil && res.StatusCode == 200
					if by != "" {
						r.hv = res.Header.Get(by)
					}
					if err != nil || res.Close {
						c.Close()
						c = nil
					}
					break
				}
				r.d = time.Since(at)
				if !at.Before(measureFrom) {
					results[w] = append(results[w], r)
				}
			}
			if c != nil {
				c.Close()
			}
		}()
	}
	if sleep {
		paceSleeping(start, interval, n, func(i int) { jobs <- start.Add(time.Duration(i) * interval) })
	} else {
		pace(start, interval, n, func(i int) { jobs <- start.Add(time.Duration(i) * interval) })
	}
	close(jobs)
	wg.Wait()

	var all []result
	for _, rs := range results {
		all = append(all, rs...)
	}
	return all
}
