// Command logserver serves an in-process CT test log (certs/ct/ctlogtest)
// filled with real test certificates, for bench/ct/run.sh: it writes a v3
// log list and watch lists for srekit and certspotter, prints "ready", and
// serves until killed.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/srekit/srekit/certs/ct/ctlogtest"
)

func main() {
	n := flag.Int("n", 200000, "entries")
	static := flag.Bool("static", false, "serve a static-ct-api log (tiles) instead of RFC 6962")
	every := flag.Int("every", 50, "one watched-name case every this many entries")
	unique := flag.Int("unique", 5000, "unique unrelated certificates (then reused)")
	jobs := flag.Int("jobs", 4, "parallel downloads to configure in the log list (certspotter_download_jobs)")
	dir := flag.String("dir", ".", "where to write loglist.json, watch-srekit.txt, watch-certspotter.txt")
	flag.Parse()

	l, err := ctlogtest.NewLog("", *static)
	if err != nil {
		log.Fatal(err)
	}
	sc, err := ctlogtest.NewScenario()
	if err != nil {
		log.Fatal(err)
	}
	if err := sc.Fill(l, *n, *every, *unique); err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/"
	list := ctlogtest.LogList(ctlogtest.LogListEntry{Log: l, URL: url, Description: "Bench log"})
	l.Publish()
	// certspotter reads its own tuning fields from the same list.
	var doc map[string]any
	if err := json.Unmarshal(list, &doc); err != nil {
		log.Fatal(err)
	}
	for _, op := range doc["operators"].([]any) {
		for _, k := range []string{"logs", "tiled_logs"} {
			for _, lg := range op.(map[string]any)[k].([]any) {
				lg.(map[string]any)["certspotter_download_jobs"] = *jobs
				lg.(map[string]any)["certspotter_download_size"] = 1000
			}
		}
	}
	list, _ = json.MarshalIndent(doc, "", "  ")
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(*dir, name), b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	write("loglist.json", list)
	write("watch-srekit.txt", []byte(strings.Join(ctlogtest.ScenarioRules, "\n")+"\n"))
	// certspotter's watch list: the same names, without issuer policy.
	var cs []string
	for _, r := range ctlogtest.ScenarioRules {
		cs = append(cs, strings.Fields(r)[0])
	}
	write("watch-certspotter.txt", []byte(strings.Join(cs, "\n")+"\n"))
	fmt.Printf("ready %s %d %d\n", url, l.Size(), len(sc.Expected))
	l.MaxBatch = 1000
	log.Fatal(http.Serve(ln, l.Handler()))
}
