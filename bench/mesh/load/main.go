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
	"slices"
	"sync"
	"time"
)

func main() {
	target := flag.String("url", "", "target URL (http only)")
	rate := flag.Float64("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	warm := flag.Duration("warmup", time.Second, "sent first at the same rate, not measured")
	host := flag.String("host", "", "Host header (default: the URL's host)")
	conns := flag.Int("conns", 64, "keep-alive connections (and requests in flight at most)")
	by := flag.String("count-header", "", "count answers by this response header (e.g. X-Backend)")
	flag.Parse()
	u, err := url.Parse(*target)
	if *target == "" || *rate <= 0 || *conns <= 0 || err != nil || u.Scheme != "http" {
		fmt.Fprintln(os.Stderr, "load: --url http://host:port/path, a positive --rate and --conns are needed")
		os.Exit(2)
	}
	if *host == "" {
		*host = u.Host
	}
	req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: srekit-bench-load\r\n\r\n")

	type result struct {
		d  time.Duration
		ok bool
		hv string
	}
	total := *warm + *dur
	interval := time.Duration(float64(time.Second) / *rate)
	n := int(total / interval)
	jobs := make(chan time.Time, n+1)
	results := make([][]result, *conns)
	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(*warm)
	var wg sync.WaitGroup
	for w := range *conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c net.Conn
			var br *bufio.Reader
			for at := range jobs {
				r := result{}
				for try := 0; try < 2 && !r.ok; try++ { // once more on a fresh connection if a kept one was closed
					if c == nil {
						if c, err = net.DialTimeout("tcp", u.Host, 5*time.Second); err != nil {
							c = nil
							break
						}
						br = bufio.NewReaderSize(c, 16<<10)
					}
					c.SetDeadline(time.Now().Add(10 * time.Second))
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
					if *by != "" {
						r.hv = res.Header.Get(*by)
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
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		jobs <- at
	}
	close(jobs)
	wg.Wait()

	var lat []time.Duration
	errs := 0
	counts := map[string]int{}
	for _, rs := range results {
		for _, r := range rs {
			if !r.ok {
				errs++
				continue
			}
			lat = append(lat, r.d)
			if *by != "" {
				counts[r.hv]++
			}
		}
	}
	slices.Sort(lat)
	q := func(f float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))]) / 1e6
	}
	fmt.Printf("requests=%d errors=%d rate=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f",
		len(lat)+errs, errs, float64(len(lat)+errs)/dur.Seconds(), q(.5), q(.9), q(.99), q(.999), q(1))
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
