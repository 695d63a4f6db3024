//go:build linux

package mesh

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// lconn is a client connection served by an event loop. Its request head
// is parsed in place in in[r:w]; the answer is gathered in out and written
// with one write whenever the backend's bytes have been read.
type lconn struct {
	l          *evloop
	fd         int
	ip, remote string

	in   []byte // fastHeadMax bytes; unread input is in[r:w]
	r, w int
	out  byteBuf // written to the client, pending while the socket is full

	h               reqHead
	res             resHead
	hosts           hostKeyCache
	picks           pickScratch
	state           int8
	readable        bool // edge-triggered: the socket may hold unread bytes
	eof             bool // the client sent FIN
	hup             bool // epoll reported the client's hang-up
	gone            bool // the client left (or a write to it failed)
	closeAfter      bool // close once out is written
	timedAt         int  // index in l.timed, -1 when not there
	idleSince       time.Time
	headStart       time.Time // when a partial head was first seen
	rt              *route
	headLen         int
	start           time.Time
	deadline        time.Time // the request's (cluster timeout)
	tryDeadline     time.Time // the attempt's (per-try timeout)
	connectDeadline time.Time
	attempt         int
	attempts        int
	perTry          time.Duration
	retryable       bool
	isHead          bool
	triedBuf        [4]*Endpoint
	tried           []*Endpoint
	e               *Endpoint // the endpoint of the attempt in flight
	be              *bconn    // its backend connection
	reused          bool
	again           bool // the attempt moved to a new connection after a stale one
	got             bool // the backend sent bytes for this attempt
	sent            time.Time
	lastCode        int
	lastRegion      string
	body            int8
	left            int64 // body bytes (or chunk bytes) still to relay
	chunks          chunkRelay
	closing         bool // the answer says Connection: close
}

const (
	stIdle  = iota // between requests (possibly a partial head read)
	stWait         // an attempt is in flight: connecting, sending or awaiting the head
	stRelay        // relaying the response body
	stClosed
)

const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyUntilClose
)

// relayHigh is how much answer may wait for a slow client before the loop
// stops reading its backend.
const relayHigh = 256 << 10

// backendBuf is the backend read buffer: the largest response head
// accepted, as on the goroutine path.
const backendBuf = 16 << 10

func newLconn(l *evloop, fd int, remote net.Addr) *lconn {
	lc := &lconn{l: l, fd: fd, in: make([]byte, fastHeadMax), timedAt: -1}
	lc.remote = remote.String()
	lc.ip, _, _ = net.SplitHostPort(lc.remote)
	if lc.ip == "" {
		lc.ip = lc.remote
	}
	return lc
}

func (lc *lconn) idle() bool {
	return lc.state == stIdle && lc.r == lc.w && len(lc.out.b) == 0
}

func (lc *lconn) event(ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		lc.readable = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		lc.hup = true // a short read no longer means there is nothing more to read
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && lc.state != stIdle {
		// The client left while its request is under way: like net/http's
		// background read, this cancels the attempt.
		lc.gone = true
		lc.cancel()
	}
	if ev&unix.EPOLLOUT != 0 && len(lc.out.b) > 0 {
		lc.flush()
		if lc.state == stRelay && lc.be != nil && len(lc.out.b) <= relayHigh/2 {
			lc.relay()
		}
	}
	lc.advance()
}

// advance serves the requests that can be served now: it reads and parses
// the next head once the previous answer is written, and closes the
// connection when it is done.
func (lc *lconn) advance() {
	s := lc.l.s
	for lc.state == stIdle {
		if len(lc.out.b) > 0 {
			return // the next answer waits for this one to be written
		}
		if lc.closeAfter || lc.gone || s.closing.Load() && lc.r == lc.w {
			lc.close()
			return
		}
		buf := lc.in[lc.r:lc.w]
		n, clean := headEnd(buf)
		if n > 0 && !clean || n > s.headMax || n == 0 && len(buf) >= s.headMax {
			lc.handOff()
			return
		}
		if n == 0 {
			if lc.eof {
				lc.close() // a partial head, or nothing, and then FIN
				return
			}
			if !lc.readable {
				if len(buf) > 0 && lc.headStart.IsZero() {
					lc.headStart = time.Now()
					lc.l.addTimed(lc)
				}
				return
			}
			if !lc.fill() {
				lc.close()
				return
			}
			continue
		}
		start := lc.headStart
		if start.IsZero() {
			start = time.Now()
		}
		lc.headStart = time.Time{}
		rt := s.m.fastRoute(buf[:n], &lc.h, &lc.hosts)
		if rt == nil {
			lc.handOff()
			return
		}
		lc.begin(rt, n, start)
	}
}

// fill reads from the client into the free end of in (moving unread bytes
// to the front first); false on a read error.
func (lc *lconn) fill() bool {
	if lc.r > 0 {
		lc.w = copy(lc.in, lc.in[lc.r:lc.w])
		lc.r = 0
	}
	for {
		n, err := rawRead(lc.fd, lc.in[lc.w:])
		switch {
		case n > 0:
			lc.w += n
			lc.readable = lc.w == len(lc.in) || lc.hup // a full buffer may have left more
			return true
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			lc.readable = false
			return true
		case err == nil:
			lc.eof, lc.readable = true, false
			return true
		}
		return false
	}
}

// begin starts forwarding a parsed request, with the same retry settings,
// budget and deadline as fastConn.proxy.
func (lc *lconn) begin(rt *route, headLen int, start time.Time) {
	c := rt.cluster
	lc.rt, lc.headLen, lc.start = rt, headLen, start
	lc.attempts, lc.perTry, lc.retryable = c.attemptsFor(lc.h.method)
	c.budget.deposit()
	lc.deadline = start.Add(c.cfg.Timeout.D(30 * time.Second))
	lc.isHead = string(lc.h.method) == "HEAD"
	lc.tried = lc.triedBuf[:0]
	lc.lastCode, lc.lastRegion = http.StatusServiceUnavailable, ""
	lc.attempt = -1
	lc.state = stWait
	lc.l.addTimed(lc)
	lc.nextAttempt()
}

// nextAttempt starts the next attempt, or answers with the last failure
// when there is none left.
func (lc *lconn) nextAttempt() {
	c := lc.rt.cluster
	for lc.state == stWait && lc.be == nil {
		lc.attempt++
		now := time.Now()
		if lc.attempt >= lc.attempts || lc.gone || lc.attempt > 0 && !now.Before(lc.deadline) {
			lc.fail()
			return
		}
		if lc.attempt > 0 {
			if !c.budget.withdraw(now) {
				c.m.budgetOut.WithLabelValues(c.cfg.Name).Inc()
				lc.fail()
				return
			}
			c.m.retries.WithLabelValues(c.cfg.Name, "retry").Inc()
		}
		e := c.pickWith(now, lc.tried, &lc.picks)
		if e == nil {
			lc.fail()
			return
		}
		if _, ok := lc.l.sockaddr(e.Addr); !ok && lc.attempt == 0 {
			// A host name: the goroutine path resolves it.
			lc.state = stIdle
			lc.l.removeTimed(lc)
			lc.handOff()
			return
		}
		lc.tried = append(lc.tried, e)
		e.inflight.Add(1)
		e.requests.Add(1)
		lc.e, lc.again = e, false
		lc.tryDeadline = lc.deadline
		if lc.perTry > 0 && now.Add(lc.perTry).Before(lc.deadline) {
			lc.tryDeadline = now.Add(lc.perTry)
		}
		if err := lc.send(now, true); err != nil {
			if !lc.endAttempt(err, false) {
				return
			}
		}
	}
}

// send writes the request to lc.e over a pooled connection (pooled: one
// may be taken) or a new one.
func (lc *lconn) send(now time.Time, pooled bool) error {
	l, c, e := lc.l, lc.rt.cluster, lc.e
	lc.sent, lc.got = time.Time{}, false
	var b *bconn
	if pooled {
		b = l.idleBackend(e.Addr)
	}
	lc.reused = b != nil
	if b == nil {
		var err error
		if b, err = l.dial(e.Addr); err != nil {
			return err
		}
		lc.connectDeadline = lc.tryDeadline
		if d := now.Add(c.cfg.ConnectTimeout.D(time.Second)); d.Before(lc.connectDeadline) {
			lc.connectDeadline = d
		}
	}
	b.owner, lc.be = lc, b
	b.out.b = b.out.b[:0]
	writeRequestHead(&b.out, &lc.h, lc.rt, l.s.l.TrustForwarded, lc.ip)
	if b.connecting {
		return nil // written once connected
	}
	lc.sent = now
	c.connObserved(lc.reused)
	return b.flush()
}

// backendEvent drives the attempt or relay on b.
func (lc *lconn) backendEvent(b *bconn, ev uint32) {
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		b.readable = true
	}
	if ev&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		b.hup = true
	}
	if b.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		errno, err := unix.GetsockoptInt(b.fd, unix.SOL_SOCKET, unix.SO_ERROR)
		if err == nil && errno != 0 {
			err = syscall.Errno(errno)
		} else if err == nil && ev&(unix.EPOLLERR|unix.EPOLLHUP) != 0 {
			err = unix.ECONNREFUSED
		}
		if err != nil {
			lc.attemptFailed(os.NewSyscallError("connect", err), false)
			lc.advance()
			return
		}
		b.connecting = false
		lc.sent = time.Now()
		lc.rt.cluster.connObserved(false)
	}
	if len(b.out.b) > 0 {
		if err := b.flush(); err != nil {
			lc.attemptFailed(err, false)
			lc.advance()
			return
		}
	}
	switch lc.state {
	case stWait:
		lc.readHead()
	case stRelay:
		lc.relay()
	}
	lc.advance()
}

// readHead reads the backend's answer until its head is complete.
func (lc *lconn) readHead() {
	b := lc.be
	for b != nil && len(b.out.b) == 0 {
		buf := b.in[b.r:b.w]
		if n, clean := headEnd(buf); n > 0 {
			if !clean || parseResponseHead(buf[:n], &lc.res) != nil {
				lc.attemptFailed(errBadResponse, false)
				return
			}
			if lc.res.status < 200 {
				if lc.res.status == http.StatusSwitchingProtocols {
					lc.attemptFailed(errBadResponse, false)
					return
				}
				b.r += n // 100 Continue, 103 Early Hints: not relayed
				continue
			}
			lc.answered()
			return
		}
		if b.w-b.r >= len(b.in) {
			lc.attemptFailed(errors.Join(errBadResponse, errors.New("response head over 16 KiB")), false)
			return
		}
		if !b.readable {
			return
		}
		eof, err := b.fill()
		switch {
		case err != nil:
			lc.attemptFailed(err, false)
			return
		case eof && !lc.got:
			lc.attemptFailed(errStale, false)
			return
		case eof:
			lc.attemptFailed(errBadResponse, false)
			return
		}
		lc.got = true
	}
}

// attemptFailed ends an attempt that got no usable answer. A pooled
// connection the backend had closed while idle processed nothing, so an
// idempotent request goes once more to the same endpoint on a new
// connection, as on the goroutine path.
func (lc *lconn) attemptFailed(err error, timedOut bool) {
	if b := lc.be; b != nil {
		lc.be = nil
		b.close()
	}
	if lc.state != stWait {
		return
	}
	if lc.reused && !lc.again && lc.retryable && !lc.gone && !timedOut && !errors.Is(err, errBadResponse) {
		lc.again = true
		if err2 := lc.send(time.Now(), false); err2 == nil {
			return
		} else {
			err = err2
		}
	}
	if lc.endAttempt(err, timedOut) {
		lc.nextAttempt()
	}
}

// endAttempt records a failed attempt and reports whether another may
// follow.
func (lc *lconn) endAttempt(err error, timedOut bool) bool {
	c, e := lc.rt.cluster, lc.e
	now := time.Now()
	var rtt time.Duration
	if !lc.sent.IsZero() {
		rtt = now.Sub(lc.sent)
	}
	canceled, timeout := c.attemptEnded(e, now, rtt, err, timedOut, lc.gone, lc.deadline, 0)
	lc.lastRegion = e.Region
	lc.lastCode = failedStatus(canceled, timeout, lc.gone)
	e.inflight.Add(-1)
	lc.e = nil
	if lc.gone || !now.Before(lc.deadline) {
		lc.fail()
		return false
	}
	return true
}

// answered handles a final response head: relayed, or dropped for a retry.
func (lc *lconn) answered() {
	c, e, b, r := lc.rt.cluster, lc.e, lc.be, &lc.res
	now := time.Now()
	c.attemptEnded(e, now, now.Sub(lc.sent), nil, false, lc.gone, lc.deadline, r.status)
	last := lc.attempt == lc.attempts-1
	if !c.retryOn[r.status] || last || !lc.retryable || !c.canRetrySoon() {
		lc.startRelay()
		return
	}
	lc.lastRegion, lc.lastCode = e.Region, r.status
	b.r += r.size
	lc.be = nil
	switch {
	case r.close:
		b.close()
	case bodiless(r.status, lc.isHead):
		lc.l.putBackend(b, c.h1.maxIdle)
	case r.length >= 0 && int64(b.w-b.r) >= r.length:
		b.r += int(r.length)
		lc.l.putBackend(b, c.h1.maxIdle)
	default:
		b.close()
	}
	e.inflight.Add(-1)
	lc.e = nil
	if lc.gone || !now.Before(lc.deadline) {
		lc.fail()
		return
	}
	lc.nextAttempt()
}

// startRelay writes the response head and relays the body.
func (lc *lconn) startRelay() {
	r, b := &lc.res, lc.be
	lc.state = stRelay
	noBody := bodiless(r.status, lc.isHead)
	lc.closing = lc.h.close || lc.l.s.closing.Load()
	writeResponseHead(&lc.out, r, noBody, lc.closing)
	b.r += r.size
	switch {
	case noBody:
		lc.body = bodyNone
	case r.chunked:
		lc.body, lc.chunks = bodyChunked, chunkRelay{}
	case r.length >= 0:
		lc.body, lc.left = bodyLength, r.length
	default:
		lc.body = bodyUntilClose
		r.close = true
	}
	lc.relay()
}

// relay moves body bytes from the backend to the client until the body
// ends, the backend has nothing more for now, or the client is too slow.
func (lc *lconn) relay() {
	for lc.state == stRelay {
		b := lc.be
		done, ok := lc.moveBody()
		if done || !ok {
			lc.endRelay(ok)
			return
		}
		if len(lc.out.b) > 0 && !lc.flush() {
			lc.endRelay(false)
			return
		}
		if len(lc.out.b) > relayHigh || !b.readable {
			return
		}
		eof, err := b.fill()
		switch {
		case err != nil:
			lc.endRelay(false)
			return
		case eof && lc.body == bodyUntilClose:
			lc.out.WriteString("0\r\n\r\n")
			lc.endRelay(true)
			return
		case eof:
			lc.endRelay(false)
			return
		}
	}
}

// moveBody copies the buffered body bytes to out: done when the body is
// complete, not ok when the backend broke its framing.
func (lc *lconn) moveBody() (done, ok bool) {
	b := lc.be
	switch lc.body {
	case bodyNone:
		return true, true
	case bodyLength:
		k := int(min(lc.left, int64(b.w-b.r)))
		lc.out.Write(b.in[b.r : b.r+k])
		b.r += k
		lc.left -= int64(k)
		return lc.left == 0, true
	case bodyUntilClose:
		if b.w > b.r {
			var nb [16]byte
			lc.out.Write(strconv.AppendInt(nb[:0], int64(b.w-b.r), 16))
			lc.out.WriteString("\r\n")
			lc.out.Write(b.in[b.r:b.w])
			lc.out.WriteString("\r\n")
			b.r = b.w
		}
		return false, true
	}
	n, done, ok := lc.chunks.relay(b.in[b.r:b.w], &lc.out)
	b.r += n
	if !done && ok {
		b.compact() // a partial line waits at the front for the rest
	}
	return done, ok
}

// endRelay finishes a relayed answer: the backend connection goes back to
// the pool when the body ended cleanly and the backend keeps it open.
func (lc *lconn) endRelay(ok bool) {
	b, e, c := lc.be, lc.e, lc.rt.cluster
	lc.be, lc.e = nil, nil
	if ok && !lc.res.close {
		lc.l.putBackend(b, c.h1.maxIdle)
	} else {
		b.close()
	}
	e.inflight.Add(-1)
	if ok && len(lc.out.b) > 0 {
		ok = lc.flush()
	}
	lc.finish(lc.res.status, e.Region, ok && !lc.closing)
}

// fail answers with the last attempt's failure (nothing, when the client
// has left).
func (lc *lconn) fail() {
	if lc.gone {
		lc.finish(499, "", false)
		return
	}
	closing := lc.h.close || lc.l.s.closing.Load()
	writeErrorResponse(&lc.out, lc.lastCode, failureMessage(lc.lastCode), closing)
	ok := lc.flush()
	lc.finish(lc.lastCode, lc.lastRegion, ok && !closing)
}

// finish records the request and returns the connection to reading heads.
func (lc *lconn) finish(code int, region string, keep bool) {
	s, c := lc.l.s, lc.rt.cluster
	d := time.Since(lc.start)
	s.m.observe(c, code, region, d)
	if a := s.m.access; a != nil {
		a.Info("request", "method", string(lc.h.method), "host", string(lc.h.host), "path", string(lc.h.path), "remote", lc.remote,
			"cluster", c.cfg.Name, "region", region, "code", code, "ms", float64(d.Microseconds())/1000)
	}
	lc.r += lc.headLen
	lc.rt, lc.headLen = nil, 0
	lc.state = stIdle
	lc.l.removeTimed(lc)
	lc.idleSince = time.Now()
	if !keep || lc.h.close {
		lc.closeAfter = true
	}
}

// cancel ends the request in flight because the client left.
func (lc *lconn) cancel() {
	switch lc.state {
	case stWait:
		if lc.be != nil {
			lc.attemptFailed(context.Canceled, false)
		}
	case stRelay:
		lc.out.b = lc.out.b[:0]
		lc.endRelay(false)
	}
}

// checkDeadline enforces read_header_timeout and the attempt's deadlines.
func (lc *lconn) checkDeadline(now time.Time) {
	switch lc.state {
	case stIdle:
		if !lc.headStart.IsZero() && now.Sub(lc.headStart) >= lc.l.s.readHeader {
			lc.close() // a partial head and then silence
		}
		return
	case stWait:
		b := lc.be
		if b == nil {
			return
		}
		if b.connecting && !now.Before(lc.connectDeadline) || !now.Before(lc.tryDeadline) {
			lc.attemptFailed(os.ErrDeadlineExceeded, true)
		}
	case stRelay:
		if !now.Before(lc.tryDeadline) {
			lc.endRelay(false)
		}
	}
	lc.advance()
}

// flush writes out; false when the client cannot be written to (it is
// then gone).
func (lc *lconn) flush() bool {
	if err := writeOut(lc.fd, &lc.out); err != nil {
		lc.gone = true
		lc.out.b = lc.out.b[:0]
		return false
	}
	if len(lc.out.b) > 0 {
		return true // EPOLLOUT will tell
	}
	if cap(lc.out.b) > 64<<10 {
		lc.out.b = nil // a big answer's buffer is not kept per connection
	}
	return true
}

// handOff gives the connection, with the bytes read but not served, to
// the goroutine fast path (which gives what it does not serve to net/http).
func (lc *lconn) handOff() {
	l := lc.l
	pending := append([]byte(nil), lc.in[lc.r:lc.w]...)
	l.forget(lc.fd)
	lc.unlist()
	f := os.NewFile(uintptr(lc.fd), "mesh-client")
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return
	}
	l.s.serveHandedOff(nc, pending)
}

// close closes the connection (a request in flight must have ended).
func (lc *lconn) close() {
	if lc.state == stClosed {
		return
	}
	lc.l.forget(lc.fd)
	unix.Close(lc.fd)
	lc.unlist()
}

func (lc *lconn) unlist() {
	l := lc.l
	l.removeTimed(lc)
	delete(l.conns, lc)
	l.nconns.Store(int64(len(l.conns)))
	lc.state = stClosed
}

// abort ends whatever the connection is doing and closes it.
func (lc *lconn) abort() {
	if lc.state == stWait || lc.state == stRelay {
		lc.gone = true
		lc.cancel()
	}
	lc.close()
}

// bconn is a backend connection owned by one loop: pooled while idle, or
// carrying one client's attempt.
type bconn struct {
	l          *evloop
	fd         int
	addr       string
	in         []byte // unread answer bytes are in[r:w]
	r, w       int
	out        byteBuf // request bytes not yet written
	owner      *lconn
	connecting bool
	readable   bool
	hup        bool // epoll reported the backend's hang-up
	pooled     bool
	idleSince  time.Time
	dead       bool
}

func (b *bconn) event(ev uint32) {
	if b.owner != nil {
		b.owner.backendEvent(b, ev)
		return
	}
	if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		// An idle connection has nothing to say but goodbye.
		if b.pooled {
			b.l.dropPooled(b)
		}
		b.close()
	}
}

// dial opens a non-blocking connection to addr (an IP address and port).
func (l *evloop) dial(addr string) (*bconn, error) {
	sa, ok := l.sockaddr(addr)
	if !ok {
		return nil, errors.New("endpoint " + addr + " is not an IP address and port")
	}
	family := unix.AF_INET
	if _, ok := sa.(*unix.SockaddrInet6); ok {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// As Go's dialer: no Nagle delay, keep-alive probes after 30 s idle.
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 30)
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 30)
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	b := &bconn{l: l, fd: fd, addr: addr, in: make([]byte, backendBuf), connecting: err != nil}
	if err := l.register(fd, b); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return b, nil
}

// fill reads from the backend into the free end of in; eof when the
// backend closed.
func (b *bconn) fill() (eof bool, err error) {
	b.compact()
	if b.w == len(b.in) {
		return false, nil
	}
	for {
		n, err := rawRead(b.fd, b.in[b.w:])
		switch {
		case n > 0:
			b.w += n
			b.readable = b.w == len(b.in) || b.hup
			return false, nil
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			b.readable = false
			return false, nil
		case err == nil:
			b.readable = false
			return true, nil
		}
		b.readable = false
		return false, os.NewSyscallError("read", err)
	}
}

// compact moves unread bytes to the front of in.
func (b *bconn) compact() {
	if b.r > 0 {
		b.w = copy(b.in, b.in[b.r:b.w])
		b.r = 0
	}
}

// flush writes the pending request bytes.
func (b *bconn) flush() error {
	return writeOut(b.fd, &b.out)
}

// writeOut writes what out holds to the non-blocking socket fd, keeping
// what the socket would not take yet (EPOLLOUT tells when it will).
func writeOut(fd int, out *byteBuf) error {
	for len(out.b) > 0 {
		n, err := rawWrite(fd, out.b)
		switch {
		case n > 0:
			out.b = out.b[:copy(out.b, out.b[n:])]
		case err == unix.EINTR:
		case err == unix.EAGAIN:
			return nil
		default:
			return os.NewSyscallError("write", err)
		}
	}
	return nil
}

func (b *bconn) close() {
	if b.dead {
		return
	}
	b.dead = true
	b.owner = nil
	b.l.forget(b.fd)
	unix.Close(b.fd)
}
