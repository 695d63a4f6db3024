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
	// A perf capture of checkout-1 with a timeline, for the sub-second view.
	raw := demoPerfScript(r)
	ds, err := Decode(raw, FormatPerf, "cpu", "", Limits{})
	if err != nil {
		return fmt.Errorf("demo perf script: %w", err)
	}
	end := now.Add(-time.Minute)
	snap := &Snapshot{Kind: "cpu", Unit: ds[0].Unit, Source: "demo perf script", Profile: ds[0].Profile, Timeline: ds[0].Timeline,
		Labels: Labels{"host": "checkout-1", "env": "prod", "agent": "checkout-1"}, Start: end.Add(-10 * time.Second), End: end}
	_, _, err = db.Save(ctx, snap)
	return err
}

// demoPerfScript writes ten seconds of `perf record -F 99 -g -a` of two
// CPUs as perf script prints it: checkout's stacks, a garbage collection
// every second for 200 ms from 0.4 s into it, and a burst of JSON encoding
// from 6 s to 7.5 s, so the sub-second heat map has patterns to find.
func demoPerfScript(r *rand.Rand) []byte {
	var b []byte
	const hz = 99
	base := 183742.0
	stacks := demoStacks["checkout"]
	for cpu := 0; cpu < 2; cpu++ {
		for i := 0; i < 10*hz; i++ {
			t := float64(i)/hz + float64(cpu)*0.003
			frac := t - float64(int(t))
			var stack []string
			switch {
			case frac >= 0.4 && frac < 0.6 && r.IntN(10) < 7:
				stack = stacks[3].stack // GC
			case t >= 6 && t < 7.5 && r.IntN(10) < 8:
				stack = stacks[1].stack // JSON burst
			case r.IntN(10) < 3:
				continue // idle
			default:
				stack = stacks[r.IntN(3)].stack
			}
			b = fmt.Appendf(b, "checkout 4242/%d [%03d] %.6f: 10101010 cpu-clock:\n", 4242+cpu, cpu, base+t)
			for j := len(stack) - 1; j >= 0; j-- {
				b = fmt.Appendf(b, "\t%12x %s+0x%x (/usr/local/bin/checkout)\n", 0x401000+j*0x40, stack[j], 0x10+j)
			}
			b = append(b, '\n')
		}
	}
	return b
}
