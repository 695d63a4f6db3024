// Command genprofiles writes N real CPU profiles of a small HTTP service
// under load (JSON, regexp, hashing, sorting, compression behind net/http),
// each captured with runtime/pprof for a fixed time, as /debug/pprof/profile
// would. They are the input of bench/profiling/run.sh.
package main

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"
)

type item struct {
	ID    int               `json:"id"`
	Name  string            `json:"name"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
}

var words = regexp.MustCompile(`[a-z]+ing\b|\b[A-Z][a-z]+`)

func handleJSON(w http.ResponseWriter, r *http.Request) {
	items := make([]item, 200)
	for i := range items {
		items[i] = item{ID: i, Name: fmt.Sprintf("item-%d", i), Tags: []string{"a", "b", "c"}, Attrs: map[string]string{"k": "v", "x": "y"}}
	}
	b, _ := json.Marshal(items)
	var back []item
	json.Unmarshal(b, &back)
	w.Write(b[:64])
}

func handleSearch(w http.ResponseWriter, r *http.Request) {
	text := strings.Repeat("The quick Brown fox is jumping over the lazy Dog while Running and Singing. ", 80)
	n := len(words.FindAllString(text, -1))
	fmt.Fprintln(w, n)
}

func handleHash(w http.ResponseWriter, r *http.Request) {
	buf := bytes.Repeat([]byte("srekit"), 50000)
	sum := sha256.Sum256(buf)
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestSpeed)
	fw.Write(buf)
	fw.Close()
	fmt.Fprintf(w, "%x %d\n", sum[:4], z.Len())
}

func handleSort(w http.ResponseWriter, r *http.Request) {
	xs := make([]string, 20000)
	for i := range xs {
		xs[i] = fmt.Sprintf("%08d", (i*7919)%20000)
	}
	sort.Strings(xs)
	fmt.Fprintln(w, xs[0])
}

func main() {
	n := flag.Int("n", 1000, "number of profiles")
	ms := flag.Int("ms", 100, "milliseconds per profile")
	dir := flag.String("dir", "profiles", "output directory")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/json", handleJSON)
	mux.HandleFunc("/search", handleSearch)
	mux.HandleFunc("/hash", handleHash)
	mux.HandleFunc("/sort", handleSort)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(ln, mux)
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i, path := range []string{"/json", "/search", "/hash", "/sort"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; ctx.Err() == nil; k++ {
				req, _ := http.NewRequestWithContext(ctx, "GET", base+path, nil)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				_ = i
			}
		}()
	}
	for i := 0; i < *n; i++ {
		f, err := os.Create(filepath.Join(*dir, fmt.Sprintf("cpu-%04d.pb.gz", i)))
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		time.Sleep(time.Duration(*ms) * time.Millisecond)
		pprof.StopCPUProfile()
		f.Close()
		if (i+1)%100 == 0 {
			fmt.Fprintf(os.Stderr, "%d/%d profiles\n", i+1, *n)
		}
	}
	cancel()
	wg.Wait()
}
