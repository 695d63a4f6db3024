//go:build !linux

package main

import "time"

// pace calls send(i) for i in [0, n) at start + i*interval.
func pace(start time.Time, interval time.Duration, n int, send func(i int)) {
	paceSleeping(start, interval, n, send)
}
