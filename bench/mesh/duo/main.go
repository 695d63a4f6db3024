//go:build linux

// Command duo is the latency bench's loader and backend in one thread that
// never sleeps. It sends HTTP/1.1 GETs at a constant rate, open loop, to a
// target (a proxy, or its own backend for the direct runs), and it is also
// the backend behind the proxies: a listener that answers every request
// with a fixed 200.
//
// Why one busy thread: on a two-CPU machine the proxy under test gets one
// CPU and everything else shares the other. With a separate loader and
// backend, every request wakes each of them in turn on that shared CPU, and
// a woken process that must wait for the other's time slice waits
// milliseconds: at half the maximum rate, that queueing, not the proxy, made
// the p99. Here nothing waits for a wake-up: one thread polls its sockets
// with epoll_wait(0) and the clock without pause, so a request leaves at its
// time and an answer is read (or served) as soon as the kernel has it. The
// price is one whole CPU kept busy, which is reported, not hidden.
//
// Latency is measured from each request's scheduled time to the end of its
// answer (no coordinated omission: a request whose time has come while
// every connection is busy waits in a queue, and the wait counts). It prints
// one line in the format of bench/mesh/load.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/srekit/srekit/bench/mesh/internal/summary"
)

const answer = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Backend: backend\r\nContent-Length: 16\r\n\r\nok from backend\n"

func main() {
	target := flag.String("target", "", "host:port to send to (the proxy, or the -serve address for the direct runs)")
	serve := flag.String("serve", "", "host:port to serve the backend on (empty: no backend)")
	path := flag.String("path", "/", "request path")
	host := flag.String("host", "", "Host header (default: the target)")
	rate := flag.Float64("rate", 1000, "requests per second; 0: closed loop, each connection sends again as soon as it has its answer (the maximum)")
	dur := flag.Duration("duration", 4*time.Second, "how long to measure")
	warm := flag.Duration("warmup", time.Second, "sent first at the same rate, not measured")
	conns := flag.Int("conns", 64, "keep-alive connections to the target (and requests in flight at most)")
	flag.Parse()
	if *target == "" || *rate < 0 || *conns <= 0 || *dur <= 0 {
		fail("duo: -target host:port, a -rate (0 for closed loop), a positive -duration and -conns are needed")
	}
	if *host == "" {
		*host = *target
	}
	to, err := netip.ParseAddrPort(*target)
	if err != nil || !to.Addr().Is4() {
		fail("duo: -target must be an IPv4:port")
	}
	runtime.LockOSThread()
	debug.SetGCPercent(-1) // everything is allocated up front
	d := &duo{
		to:    to,
		req:   []byte("GET " + *path + " HTTP/1.1\r\nHost: " + *host + "\r\nUser-Agent: srekit-bench-duo\r\n\r\n"),
		resp:  []byte(answer),
		conns: map[int]*conn{},
		lfd:   -1,
	}
	if d.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		fail("duo: epoll: %v", err)
	}
	if *serve != "" {
		at, err := netip.ParseAddrPort(*serve)
		if err != nil || !at.Addr().Is4() {
			fail("duo: -serve must be an IPv4:port")
		}
		if d.lfd, err = listen(at); err != nil {
			fail("duo: listen on %s: %v", *serve, err)
		}
		d.add(d.lfd, &conn{listener: true})
	}
	var interval time.Duration
	n := 4 << 20 // closed loop: room for 4M answers, more than a loopback proxy gives in the default time
	if *rate > 0 {
		interval = time.Duration(float64(time.Second) / *rate)
		n = int((*warm + *dur) / interval)
	}
	d.lat = make([]time.Duration, 0, n)
	d.lag = make([]time.Duration, 0, n)
	d.due = make([]time.Time, 0, n)
	for range *conns {
		c, err := d.dial()
		if err != nil {
			fail("duo: connect to %s: %v", *target, err)
		}
		d.idle = append(d.idle, c)
	}
	start := time.Now().Add(20 * time.Millisecond)
	if *rate > 0 {
		d.run(start, interval, n, *warm)
	} else {
		d.closedLoop(start.Add(*warm), start.Add(*warm+*dur))
	}
	fmt.Printf("%s served=%d\n", summary.Line(d.lat, d.lag, d.errors, *dur, 0), d.served)
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

// conn is one socket: a client connection to the target, a connection a
// proxy opened to our backend, or the listener.
type conn struct {
	fd       int
	listener bool
	server   bool // accepted: the backend's side
	busy     bool // client: a request is in flight
	closed   bool // dropped; an idle one is skipped when taken from d.idle
	queued   bool // in d.pending: the socket did not take all of out
	retried  bool // client: the request in flight was already resent once
	measured bool // client: the request in flight counts
	at       time.Time
	sent     time.Time
	in       []byte // bytes read and not yet consumed
	out      []byte // bytes not yet written
}

// duo is the whole state of a run; it is touched by one thread only.
type duo struct {
	ep, lfd int
	to      netip.AddrPort
	req     []byte
	resp    []byte
	conns   map[int]*conn
	idle    []*conn
	due     []time.Time // requests whose time has come, waiting for a connection
	pending []*conn     // connections with bytes a full socket held back
	spare   []*conn     // pending's other buffer, swapped in while it is retried
	lat     []time.Duration
	lag     []time.Duration
	errors  int
	served  int
	done    int // requests finished, measured or not
	events  [128]unix.EpollEvent
	buf     [64 << 10]byte
}

func listen(at netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(at.Port()), Addr: at.Addr().As4()}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, unix.Listen(fd, 1024)
}

func (d *duo) add(fd int, c *conn) {
	c.fd = fd
	d.conns[fd] = c
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(d.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		fail("duo: epoll_ctl: %v", err)
	}
}

func (d *duo) drop(c *conn) {
	c.closed = true
	unix.EpollCtl(d.ep, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	delete(d.conns, c.fd)
}

// dial opens a client connection. The connect blocks: on loopback the
// kernel completes the handshake without waiting for the accept, so this
// works for our own listener too, and it takes microseconds.
func (d *duo) dial() (*conn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	sa := &unix.SockaddrInet4{Port: int(d.to.Port()), Addr: d.to.Addr().As4()}
	for {
		if err = unix.Connect(fd, sa); err != unix.EINTR {
			break
		}
	}
	if err == nil {
		err = unix.SetNonblock(fd, true)
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &conn{in: make([]byte, 0, 4096)}
	d.add(fd, c)
	return c, nil
}

// run schedules n requests at start + i*interval and polls until every one
// has finished; those scheduled before start+warm are not measured.
func (d *duo) run(start time.Time, interval time.Duration, n int, warm time.Duration) {
	measureFrom := start.Add(warm)
	giveUp := start.Add(time.Duration(n)*interval + 10*time.Second)
	next := 0
	for d.done < n {
		now := time.Now()
		if now.After(giveUp) {
			// Every connection is gone or stuck: count what is left as
			// errors rather than wait forever.
			measured := 0
			for i := range n {
				if !start.Add(time.Duration(i) * interval).Before(measureFrom) {
					measured++
				}
			}
			lost := measured - len(d.lat) - d.errors
			fmt.Fprintf(os.Stderr, "duo: %d requests unanswered 10 s after the last was due; the %d measured ones count as errors\n", n-d.done, lost)
			d.errors += lost
			return
		}
		for ; next < n; next++ {
			at := start.Add(time.Duration(next) * interval)
			if at.After(now) {
				break
			}
			d.due = append(d.due, at)
		}
		for len(d.due) > 0 && len(d.idle) > 0 {
			c := d.idle[len(d.idle)-1]
			d.idle = d.idle[:len(d.idle)-1]
			if c.closed {
				continue
			}
			at := d.due[0]
			d.due = d.due[1:]
			c.busy, c.retried, c.measured, c.at = true, false, !at.Before(measureFrom), at
			d.send(c)
		}
		d.poll()
	}
}

// closedLoop keeps every connection busy: a connection sends its next
// request as soon as it has the answer to the last one. The answers to
// requests sent from measureFrom to end are measured; their number over
// the time is the maximum rate.
func (d *duo) closedLoop(measureFrom, end time.Time) {
	for {
		now := time.Now()
		if now.After(end) {
			break
		}
		for len(d.idle) > 0 && len(d.lat) < cap(d.lat) {
			c := d.idle[len(d.idle)-1]
			d.idle = d.idle[:len(d.idle)-1]
			if c.closed {
				continue
			}
			c.busy, c.retried, c.measured, c.at = true, false, !now.Before(measureFrom), now
			d.send(c)
		}
		d.poll()
	}
}

// send writes the request on c; what the socket does not take now is
// written by flush on a later pass.
func (d *duo) send(c *conn) {
	c.sent = time.Now()
	c.out = append(c.out[:0], d.req...)
	d.flush(c)
}

func (d *duo) flush(c *conn) {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			if !c.queued {
				c.queued = true
				d.pending = append(d.pending, c)
			}
			return
		}
		if err != nil {
			d.broken(c)
			return
		}
		// Compact rather than reslice, so the buffer is reused from its
		// start and the next request or answer allocates nothing.
		c.out = c.out[:copy(c.out, c.out[n:])]
	}
}

// poll takes what epoll has ready now, without waiting, and retries the
// writes a full socket held back.
func (d *duo) poll() {
	n, err := unix.EpollWait(d.ep, d.events[:], 0)
	if err != nil && err != unix.EINTR {
		fail("duo: epoll_wait: %v", err)
	}
	for _, ev := range d.events[:max(n, 0)] {
		c := d.conns[int(ev.Fd)]
		if c == nil {
			continue
		}
		switch {
		case c.listener:
			d.accept()
		default:
			d.read(c)
		}
	}
	if len(d.pending) > 0 {
		retry := d.pending
		d.pending = d.spare[:0]
		for _, c := range retry {
			c.queued = false
			if !c.closed {
				d.flush(c)
			}
		}
		d.spare = retry[:0]
	}
}

func (d *duo) accept() {
	for {
		fd, _, err := unix.Accept4(d.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		d.add(fd, &conn{server: true, in: make([]byte, 0, 4096)})
	}
}

func (d *duo) read(c *conn) {
	for {
		n, err := unix.Read(c.fd, d.buf[:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN {
			return
		}
		if n <= 0 || err != nil {
			d.broken(c)
			return
		}
		c.in = append(c.in, d.buf[:n]...)
		if c.server {
			d.answer(c)
		} else if !d.parse(c) {
			return
		}
		if n < len(d.buf) {
			return
		}
	}
}

// answer serves every complete request head in c.in (GETs: no bodies).
func (d *duo) answer(c *conn) {
	for {
		end := bytes.Index(c.in, []byte("\r\n\r\n"))
		if end < 0 {
			return
		}
		c.in = c.in[:copy(c.in, c.in[end+4:])]
		c.out = append(c.out, d.resp...)
		d.served++
		d.flush(c)
	}
}

// parse finishes the request in flight on c when c.in holds its whole
// answer; false when c was closed.
func (d *duo) parse(c *conn) bool {
	end := bytes.Index(c.in, []byte("\r\n\r\n"))
	if end < 0 {
		return true
	}
	head := c.in[:end+2]
	ok := bytes.HasPrefix(head, []byte("HTTP/1.1 200 ")) || bytes.HasPrefix(head, []byte("HTTP/1.0 200 "))
	length, closing := -1, bytes.HasPrefix(head, []byte("HTTP/1.0"))
	for line := range bytes.Lines(head) {
		name, value, found := bytes.Cut(bytes.TrimRight(line, "\r\n"), []byte(":"))
		if !found {
			continue
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if v, err := strconv.Atoi(string(value)); err == nil {
				length = v
			}
		case bytes.EqualFold(name, []byte("Connection")):
			closing = bytes.EqualFold(value, []byte("close"))
		}
	}
	if length < 0 {
		// Only Content-Length answers are expected from the fixed backend.
		d.finish(c, false)
		d.drop(c)
		d.replace()
		return false
	}
	if len(c.in) < end+4+length {
		return true
	}
	c.in = c.in[:copy(c.in, c.in[end+4+length:])]
	d.finish(c, ok)
	if closing {
		d.drop(c)
		d.replace()
		return false
	}
	d.idle = append(d.idle, c)
	return true
}

func (d *duo) finish(c *conn, ok bool) {
	c.busy = false
	d.done++
	if !c.measured {
		return
	}
	if ok {
		d.lat = append(d.lat, time.Since(c.at))
		d.lag = append(d.lag, c.sent.Sub(c.at))
	} else {
		d.errors++
	}
}

// broken handles a connection that failed or was closed. A client's
// request that had no answer yet is sent once more on a new connection (a
// kept-alive connection the target closed), as bench/mesh/load does.
func (d *duo) broken(c *conn) {
	d.drop(c)
	if c.server || c.listener {
		return
	}
	if c.busy && !c.retried && len(c.in) == 0 {
		nc, err := d.dial()
		if err == nil {
			nc.busy, nc.retried, nc.measured, nc.at = true, true, c.measured, c.at
			d.send(nc)
			nc.sent = c.sent
			return
		}
	}
	if c.busy {
		d.finish(c, false)
	}
	d.replace()
}

// replace opens a new idle connection for one that was closed.
func (d *duo) replace() {
	if nc, err := d.dial(); err == nil {
		d.idle = append(d.idle, nc)
	}
}
