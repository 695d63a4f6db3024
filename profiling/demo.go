package profiling

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/store"
)

// demoStacks are the call paths of three made-up services, with weights;
// the demo varies them over time so that merges, diffs and searches have
// something to find (checkout's JSON encoding grows after a "deploy").
var demoStacks = map[string][]struct {
	stack  []string
	weight int
}{
	"checkout": {
		{[]string{"main.main", "net/http.(*Server).Serve", "net/http.(*conn).serve", "checkout.(*Handler).ServeHTTP", "checkout.price", "math/big.(*Float).Mul"}, 20},
		{[]string{"main.main", "net/http.(*Server).Serve", "net/http.(*conn).serve", "checkout.(*Handler).ServeHTTP", "encoding/json.Marshal", "encoding/json.(*encodeState).marshal"}, 30},
		{[]string{"main.main", "net/http.(*Server).Serve", "net/http.(*conn).serve", "checkout.(*Handler).ServeHTTP", "database/sql.(*DB).QueryContext", "syscall.Syscall"}, 25},
		{[]string{"runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.scanobject"}, 15},
	},
	"search": {
		{[]string{"main.main", "search.(*Index).Query", "regexp.(*Regexp).MatchString", "regexp.(*machine).match"}, 45},
		{[]string{"main.main", "search.(*Index).Query", "search.rank", "sort.Slice"}, 25},
		{[]string{"main.main", "search.(*Index).Query", "encoding/json.Marshal", "encoding/json.(*encodeState).marshal"}, 10},
		{[]string{"runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.scanobject"}, 10},
	},
	"gateway": {
		{[]string{"main.main", "net/http.(*Server).Serve", "net/http/httputil.(*ReverseProxy).ServeHTTP", "crypto/tls.(*Conn).Write", "crypto/aes.encryptBlockAsm"}, 40},
		{[]string{"main.main", "net/http.(*Server).Serve", "net/http/httputil.(*ReverseProxy).ServeHTTP", "io.copyBuffer", "syscall.Syscall"}, 35},
		{[]string{"runtime.gcBgMarkWorker", "runtime.gcDrain", "runtime.scanobject"}, 5},
	},
}

// Demo stores two hours of ten-second CPU snapshots of three services on
// two hosts each, ending at now.
func Demo(ctx context.Context, st *store.Store, now time.Time) error {
	db := &DB{S: st}
	r := rand.New(rand.NewPCG(35, 35))
	now = now.Truncate(time.Minute)
	for _, svc := range []string{"checkout", "search", "gateway"} {
		for h := 1; h <= 2; h++ {
			host := fmt.Sprintf("%s-%d", svc, h)
			for i := 24; i >= 1; i-- {
				end := now.Add(-time.Duration(i-1) * 5 * time.Minute)
				version := "v1.4.0"
				if i <= 12 {
					version = "v1.5.0"
				}
				p := &flame.Profile{Unit: "nanoseconds"}
				for _, s := range demoStacks[svc] {
					w := s.weight
					if svc == "checkout" && version == "v1.5.0" && s.stack[len(s.stack)-1] == "encoding/json.(*encodeState).marshal" {
						w *= 3
					}
					// Go's CPU profiles sample at 100 Hz: 10ms per sample.
					n := int64(w*10+r.IntN(w*4+1)-w*2) * 10_000_000
					if n > 0 {
						p.Samples = append(p.Samples, flame.Sample{Stack: s.stack, Value: n})
					}
				}
				snap := &Snapshot{Kind: "cpu", Unit: "nanoseconds", Source: "demo", Profile: p,
					Labels: Labels{"service": svc, "host": host, "env": "prod", "version": version},
					Start:  end.Add(-10 * time.Second), End: end}
				if _, _, err := db.Save(ctx, snap); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
