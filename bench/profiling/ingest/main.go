// Command ingest measures how many pprof uploads per second a srekit server
// stores on SQLite: it starts the server in-process on a loopback port over
// a fresh database file and posts every profile of a directory to the
// Pyroscope-compatible /ingest with several concurrent clients, over real HTTP.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/web"
)

func main() {
	dir := flag.String("dir", "profiles", "directory of .pb.gz profiles")
	workers := flag.Int("workers", 8, "concurrent uploaders")
	rounds := flag.Int("rounds", 1, "upload the directory this many times (with distinct time ranges)")
	db := flag.String("db", "", "SQLite file (default: a temporary one)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to this file")
	flag.Parse()
	files, _ := filepath.Glob(filepath.Join(*dir, "*.pb.gz"))
	sort.Strings(files)
	if len(files) == 0 {
		log.Fatalf("no *.pb.gz in %s", *dir)
	}
	var bodies [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			log.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	path := *db
	if path == "" {
		tmp, err := os.MkdirTemp("", "srekit-ingest-")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(tmp)
		path = filepath.Join(tmp, "bench.db")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, path)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	srv, err := web.New(st, web.Config{Token: "bench"})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ctx, ln)
	base := "http://" + ln.Addr().String()

	total := len(bodies) * *rounds
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *workers}}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	start := time.Now()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				from := 1_700_000_000 + i*10
				u := fmt.Sprintf("%s/ingest?name=bench%%7Bhost%%3Dh%d%%7D&format=pprof&from=%d&until=%d", base, i%16, from, from+10)
				req, _ := http.NewRequest("POST", u, bytes.NewReader(bodies[i%len(bodies)]))
				req.Header.Set("Authorization", "Bearer bench")
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				if resp.StatusCode != 200 {
					b, _ := io.ReadAll(resp.Body)
					log.Printf("upload %d: %s %s", i, resp.Status, b)
					failed.Add(1)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	var bytesIn int
	for _, b := range bodies {
		bytesIn += len(b)
	}
	fmt.Printf("ingest: %d pprof uploads (avg %d bytes) in %.2fs with %d clients: %.0f uploads/s on SQLite (%d failed)\n",
		total, bytesIn/len(bodies), el.Seconds(), *workers, float64(total)/el.Seconds(), failed.Load())
	if failed.Load() > 0 {
		log.Fatalf("%d uploads failed", failed.Load())
	}
}
