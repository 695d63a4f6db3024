// Command stalls measures how often the CPU it runs on is taken away from
// a busy thread, and for how long: it reads the clock in a loop and counts
// the gaps between two reads. On a quiet physical machine the gaps are
// interrupts of a few microseconds; on a virtual machine the hypervisor also
// runs other guests' work in our vCPU's time, for milliseconds at a time.
//
// The mesh bench prints this before its latency part: a proxy's p99 at a
// few thousand requests per second cannot be better than the stalls of the
// CPU it runs on allow (each stall delays every request in flight and
// those that queue behind them), so the figure tells a reader how much of
// a tail is the box.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"
)

func main() {
	dur := flag.Duration("duration", 5*time.Second, "how long to watch")
	flag.Parse()
	if *dur <= 0 {
		fmt.Fprintln(os.Stderr, "stalls: -duration must be positive")
		os.Exit(2)
	}
	runtime.LockOSThread()
	limits := []time.Duration{100 * time.Microsecond, time.Millisecond, 5 * time.Millisecond}
	counts := make([]int, len(limits))
	var lost, longest time.Duration
	start := time.Now()
	last := start
	for last.Sub(start) < *dur {
		now := time.Now()
		gap := now.Sub(last)
		last = now
		if gap < limits[0] {
			continue
		}
		lost += gap
		longest = max(longest, gap)
		for i, l := range limits {
			if gap >= l {
				counts[i]++
			}
		}
	}
	fmt.Printf("stalls over %v: %d >= 100us, %d >= 1ms, %d >= 5ms; longest %.2f ms; %.2f%% of the time lost in stalls >= 100us\n",
		*dur, counts[0], counts[1], counts[2], float64(longest)/1e6, 100*float64(lost)/float64(*dur))
}
