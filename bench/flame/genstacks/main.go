// Command genstacks writes a synthetic folded profile with a given number of
// unique stacks, shaped like a real service's: a few roots, a branching call
// tree of plausible function names, depths from 8 to 48, skewed counts.
// The same seed gives the same file, so runs can be compared.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
)

func main() {
	n := flag.Int("stacks", 200000, "number of unique stacks")
	seed := flag.Uint64("seed", 1, "random seed")
	flag.Parse()
	r := rand.New(rand.NewPCG(*seed, 42))
	pkgs := []string{"net/http", "encoding/json", "database/sql", "runtime", "crypto/tls", "compress/gzip", "github.com/acme/api", "github.com/acme/store", "sync", "bufio"}
	verbs := []string{"Read", "Write", "Serve", "Handle", "Marshal", "Unmarshal", "Query", "Exec", "Lock", "Flush", "Scan", "Next", "Decode", "Encode", "Sign", "Verify", "Compress", "Parse", "Build", "Find"}
	nouns := []string{"Request", "Response", "Row", "Conn", "Buffer", "Header", "Record", "Index", "Block", "Frame", "Token", "Table", "Page", "Cache", "Stream"}
	names := make([]string, 4000)
	for i := range names {
		names[i] = fmt.Sprintf("%s.(*%s).%s%s", pkgs[r.IntN(len(pkgs))], nouns[r.IntN(len(nouns))], verbs[r.IntN(len(verbs))], nouns[r.IntN(len(nouns))])
	}
	seen := make(map[string]bool, *n)
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	defer w.Flush()
	roots := []string{"main", "runtime.goexit", "runtime.mcall", "runtime.gcBgMarkWorker"}
	var b strings.Builder
	for len(seen) < *n {
		b.Reset()
		b.WriteString(roots[min(r.IntN(8), 3)])
		depth := 8 + r.IntN(41)
		// a walk down a call tree: early frames are few and shared, later ones many
		for d := 1; d < depth; d++ {
			span := min(4+d*d*4, len(names))
			b.WriteByte(';')
			b.WriteString(names[r.IntN(span)])
		}
		s := b.String()
		if seen[s] {
			continue
		}
		seen[s] = true
		count := 1 + int(r.ExpFloat64()*20)
		fmt.Fprintf(w, "%s %d\n", s, count)
	}
}
