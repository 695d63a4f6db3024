package main

import "time"

// paceSleeping is pace with Go's timers: each request waits for its time
// with time.Sleep (at least 1 ms per sleep on Linux when the process is
// otherwise idle, so requests leave in small bursts).
func paceSleeping(start time.Time, interval time.Duration, n int, send func(i int)) {
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		send(i)
	}
}
