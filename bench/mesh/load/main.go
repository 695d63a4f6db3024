// Command load is a constant-rate, open-loop HTTP load generator: requests
// are sent on a fixed schedule whether or not earlier ones have returned, and
// each latency is measured from the request's scheduled time, so a stalled
// server shows up in the percentiles instead of slowing the load down
// (no coordinated omission). It prints one line of percentiles.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	url := flag.String("url", "", "target URL")
	rate := flag.Float64("rate", 1000, "requests per second")
	dur := flag.Duration("duration", 10*time.Second, "how long to send")
	warm := flag.Duration("warmup", time.Second, "sent first at the same rate, not measured")
	host := flag.String("host", "", "Host header")
	conns := flag.Int("conns", 256, "most connections kept open")
	by := flag.String("count-header", "", "count answers by this response header (e.g. X-Backend)")
	flag.Parse()
	if *url == "" || *rate <= 0 {
		fmt.Fprintln(os.Stderr, "load: --url and a positive --rate are needed")
		os.Exit(2)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: *conns, MaxConnsPerHost: *conns, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	counts := map[string]int{}
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / *rate)
	start := time.Now()
	total := *warm + *dur
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * interval)
		if at.Sub(start) >= total {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		measured := at.Sub(start) >= *warm
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", *url, nil)
			if *host != "" {
				req.Host = *host
			}
			res, err := client.Do(req)
			ok := err == nil
			hv := ""
			if ok && *by != "" {
				hv = res.Header.Get(*by)
			}
			if ok {
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				ok = res.StatusCode == 200
			}
			d := time.Since(at)
			if !measured {
				return
			}
			mu.Lock()
			if ok {
				lat = append(lat, d)
				if *by != "" {
					counts[hv]++
				}
			} else {
				errs++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
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
