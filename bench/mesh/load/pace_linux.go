package main

import (
	"encoding/binary"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// pace calls send(i) for i in [0, n) at start + i*interval, from a periodic
// timerfd read through Go's poller. Go's own timers (time.Sleep, Ticker)
// round a wait under 1 ms up to a 1 ms epoll timeout when nothing else
// wakes the poller, so at a few thousand requests/s they release requests in
// bursts up to 1 ms late; a timerfd fires on time (hrtimer) and costs no
// busy waiting. Falls back to sleeping when the timerfd is unavailable.
func pace(start time.Time, interval time.Duration, n int, send func(i int)) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		paceSleeping(start, interval, n, send)
		return
	}
	f := os.NewFile(uintptr(fd), "timerfd") // non-blocking: reads park in the poller
	defer f.Close()
	first := max(time.Until(start), time.Microsecond)
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(first)), Interval: unix.NsecToTimespec(int64(interval))}
	if err := unix.TimerfdSettime(fd, 0, &spec, nil); err != nil {
		paceSleeping(start, interval, n, send)
		return
	}
	var buf [8]byte
	for i := 0; i < n; {
		if _, err := f.Read(buf[:]); err != nil {
			paceSleeping(start.Add(time.Duration(i)*interval), interval, n-i, func(j int) { send(i + j) })
			return
		}
		for k := binary.NativeEndian.Uint64(buf[:]); k > 0 && i < n; k-- {
			send(i)
			i++
		}
	}
}
