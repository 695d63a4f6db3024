package mesh

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// The fast path serves plain-HTTP/1.1 listeners without net/http's server:
// one goroutine per connection reads request heads from a pooled buffer,
// parses them in place (parseRequestHead), and forwards bodiless requests
// over the clusters' pooled backend connections, writing each response head
// and a small body with one write. Routing, balancing, retries, the retry
// budget, outlier detection, the circuit breaker, metrics, timings and the
// access log are the same code as on the net/http path.
//
// Whatever the fast path does not fully understand (request bodies,
// Expect, Upgrade, HTTP/1.0, absolute-form targets, escaped paths, heads
// over 8 KiB, malformed heads, unrouted requests, clusters with TLS, HTTP/2
// or hedging) makes it hand the connection, with the bytes it has read, to
// the listener's net/http server, which then serves the rest of that
// connection exactly as before: its 400/404/405/413/431 answers are the ones
// clients got before the fast path existed.

// Serving describes how a listener serves requests, for `srekit mesh check`.
func (l Listener) Serving() string {
	switch {
	case l.Cert != "":
		return "TLS, HTTP/2 and HTTP/1.1 (net/http)"
	case l.H2C:
		return "HTTP/1.1 and h2c (net/http)"
	case l.DisableFastPath:
		return "HTTP/1.1 (net/http: disable_fast_path)"
	case loopCount(l) == 0:
		return "HTTP/1.1 (fast path, a goroutine per connection; net/http for bodies, upgrades and the unusual)"
	}
	busy := ""
	if l.BusyPoll > 0 {
		busy = fmt.Sprintf(", busy polling %s after work", time.Duration(l.BusyPoll))
	}
	return fmt.Sprintf("HTTP/1.1 (fast path on %d event loops%s; net/http for bodies, upgrades and the unusual)", loopCount(l), busy)
}

// fastHeadMax is the largest request head the fast path reads: bigger heads
// go to net/http, which applies max_header_bytes.
const fastHeadMax = 8 << 10

type fastServer struct {
	m    *Mesh
	l    Listener
	srv  *http.Server // serves the connections handed off
	hand *handoffListener
	ln   net.Listener

	idle, readHeader time.Duration
	headMax          int

	closing atomic.Bool
	mu      sync.Mutex
	conns   map[*fastConn]struct{}

	loops   []*evloop    // nil: a goroutine per connection
	next    int          // the loop the next connection goes to (accept goroutine only)
	adopted atomic.Int64 // connections given to the loops (for tests)
	// loopAccepted counts connections the loops accepted themselves
	// (busy polling, loopaccept.go; for tests).
	loopAccepted atomic.Int64
	lnClosed     bool // under mu: the listener is closed, loops must not take a duplicate of it
}

func newFastServer(m *Mesh, l Listener, srv *http.Server, ln net.Listener) *fastServer {
	s := &fastServer{m: m, l: l, srv: srv, ln: ln, hand: newHandoffListener(ln.Addr()),
		idle: srv.IdleTimeout, readHeader: srv.ReadHeaderTimeout, headMax: fastHeadMax,
		conns: map[*fastConn]struct{}{}}
	if srv.MaxHeaderBytes > 0 && srv.MaxHeaderBytes < s.headMax {
		s.headMax = srv.MaxHeaderBytes
	}
	return s
}

// Serve accepts connections until ln is closed.
func (s *fastServer) Serve(ln net.Listener) error {
	go s.srv.Serve(s.hand)
	s.mu.Lock()
	if !s.closing.Load() {
		s.loops = startLoops(s, loopCount(s.l))
	}
	loops := s.loops
	s.mu.Unlock()
	stop := make(chan struct{})
	defer close(stop)
	go s.watchLoop(stop)
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !s.closing.Load() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		if len(loops) > 0 {
			s.next = (s.next + 1) % len(loops)
			if loops[s.next].adopt(nc) {
				continue
			}
		}
		fc := s.newConn(nc)
		if fc == nil {
			nc.Close()
			continue
		}
		go fc.serve()
	}
}

// closeAcceptors has every loop close its duplicate of the listening
// socket, so that closing the listener frees its address at once. Loops
// started later (Serve takes s.mu to start them) take no duplicate.
func (s *fastServer) closeAcceptors() {
	s.mu.Lock()
	s.lnClosed = true
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.dropAcceptor()
	}
}

// listener is ln as the mesh keeps it: closing it (a reload that removes or
// changes the listener) first closes the loops' duplicates of its socket.
func (s *fastServer) listener() net.Listener { return &fastListener{Listener: s.ln, s: s} }

type fastListener struct {
	net.Listener
	s *fastServer
}

func (fl *fastListener) Close() error {
	fl.s.closeAcceptors()
	return fl.Listener.Close()
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish (up to ctx), then shuts the hand-off server down.
func (s *fastServer) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.closeAcceptors()
	s.ln.Close()
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.stop(false)
	}
	defer func() {
		for _, l := range loops {
			l.stop(true)
			<-l.exited
		}
	}()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		for _, l := range loops {
			n += int(l.nconns.Load())
		}
		for fc := range s.conns {
			if fc.idle.Load() {
				fc.nc.SetReadDeadline(longAgo) // wakes it; it sees closing and leaves
			}
		}
		s.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for fc := range s.conns {
				fc.nc.Close()
			}
			s.mu.Unlock()
			s.srv.Close()
			return ctx.Err()
		case <-t.C:
		}
	}
	return s.srv.Shutdown(ctx)
}

func (s *fastServer) newConn(nc net.Conn) *fastConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing.Load() {
		return nil
	}
	fc := fastConnPool.Get().(*fastConn)
	fc.s, fc.nc = s, nc
	fc.cr = connReader{nc: nc}
	fc.br.Reset(&fc.cr)
	fc.bw.Reset(nc)
	fc.ip, _, _ = net.SplitHostPort(nc.RemoteAddr().String())
	if fc.ip == "" {
		fc.ip = nc.RemoteAddr().String()
	}
	fc.remote = nc.RemoteAddr().String()
	fc.gone.Store(false)
	s.conns[fc] = struct{}{}
	return fc
}

func (s *fastServer) forget(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
}

// fastConn is one client connection on the fast path. It is pooled with its
// buffers.
type fastConn struct {
	s      *fastServer
	nc     net.Conn
	cr     connReader
	br     *bufio.Reader
	bw     *bufio.Writer
	h      reqHead
	res    resHead
	ip     string // the client's address without port, for X-Forwarded-For
	remote string
	idle   atomic.Bool
	rdl    time.Time // the read deadline set on nc

	hosts hostKeyCache
	picks pickScratch

	// Hang-up watch: a request waiting on its backend longer than
	// watchAfter gets a read on the client connection, and a client that
	// closes cancels the attempt (as net/http's background read does, but
	// only for the slow requests that can profit from it). The server's
	// watch loop starts these reads, so the fast requests pay two atomic
	// stores instead of a timer each.
	waitSince  atomic.Int64 // when the request started waiting (unix ns); 0: not waiting
	watchState atomic.Int32 // watchOff, watchOn or watchBarred
	watchDone  chan struct{}
	one        [1]byte
	oneRead    bool
	gone       atomic.Bool
	upMu       sync.Mutex
	upstream   *h1Conn // the backend connection an attempt waits on
}

const watchAfter = 50 * time.Millisecond

const (
	watchOff    = iota // no watch; the watch loop may start one
	watchOn            // a watch reads the client
	watchBarred        // the request is done waiting: no watch may start
)

var fastConnPool = sync.Pool{New: func() any {
	fc := &fastConn{watchDone: make(chan struct{}, 1)}
	fc.br = bufio.NewReaderSize(nil, fastHeadMax)
	fc.bw = bufio.NewWriterSize(nil, 8<<10)
	return fc
}}

// connReader reads a byte the hang-up watch took first, then the connection.
type connReader struct {
	nc      net.Conn
	pending []byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	return r.nc.Read(p)
}

func (fc *fastConn) release() {
	fc.s.forget(fc)
	fc.br.Reset(nil)
	fc.bw.Reset(nil)
	fc.s, fc.nc, fc.cr, fc.rdl = nil, nil, connReader{}, time.Time{}
	fc.hosts.reset()
	fc.upstream = nil
	fastConnPool.Put(fc)
}

func (fc *fastConn) close() {
	fc.nc.Close()
	fc.release()
}

// serve runs the connection's request loop.
func (fc *fastConn) serve() {
	s, nc := fc.s, fc.nc
	defer func() {
		// Like net/http: a bug costs the connection, not the process.
		// The connection's state is unknown, so it is not pooled again.
		if p := recover(); p != nil {
			s.m.log.Error("mesh fast path: panic serving a connection", "panic", p, "stack", string(debug.Stack()))
			nc.Close()
			s.forget(fc)
		}
	}()
	for {
		if fc.br.Buffered() == 0 {
			// Idle between requests. Shutdown marks closing, then expires
			// idle connections' deadlines: checking after setting ours
			// means one of the two always sees the other.
			fc.idle.Store(true)
			// The idle timeout is kept loosely (re-armed when less than
			// 7/8 of it is left) to spare a timer update per request.
			if now := time.Now(); fc.rdl.Before(now.Add(s.idle - s.idle/8)) {
				fc.rdl = now.Add(s.idle)
				fc.nc.SetReadDeadline(fc.rdl)
			}
			if s.closing.Load() {
				fc.idle.Store(false)
				fc.close()
				return
			}
			_, err := fc.br.Peek(1)
			fc.idle.Store(false)
			if err != nil || s.closing.Load() && fc.br.Buffered() == 0 {
				fc.close()
				return
			}
		}
		start := time.Now()
		var head []byte
		deadline := false
		for {
			buf, _ := fc.br.Peek(fc.br.Buffered())
			n, clean := headEnd(buf)
			if n > 0 && !clean || n > s.headMax || n == 0 && len(buf) >= s.headMax {
				fc.handOff()
				return
			}
			if n > 0 {
				head = buf[:n]
				break
			}
			if !deadline {
				fc.rdl = start.Add(s.readHeader)
				fc.nc.SetReadDeadline(fc.rdl)
				deadline = true
			}
			if _, err := fc.br.Peek(len(buf) + 1); err != nil {
				if err == bufio.ErrBufferFull {
					fc.handOff()
				} else {
					fc.close() // a partial head and then a timeout or hang-up
				}
				return
			}
		}
		if deadline {
			// The head came in pieces under read_header_timeout; that
			// deadline must not cut a hang-up watch short.
			fc.rdl = time.Time{}
			fc.nc.SetReadDeadline(fc.rdl)
		}
		rt := s.m.fastRoute(head, &fc.h, &fc.hosts)
		if rt == nil {
			fc.handOff()
			return
		}
		fc.br.Discard(len(head)) // the parsed slices stay valid until the next read
		code, region, keep := fc.proxy(rt, start)
		d := time.Since(start)
		s.m.observe(rt.cluster, code, region, d)
		if a := s.m.access; a != nil {
			a.Info("request", "method", string(fc.h.method), "host", string(fc.h.host), "path", string(fc.h.path), "remote", fc.remote,
				"cluster", rt.cluster.cfg.Name, "region", region, "code", code, "ms", float64(d.Microseconds())/1000)
		}
		if !keep || fc.h.close {
			fc.close()
			return
		}
	}
}

// serveHandedOff serves a connection an event loop handed over, replaying
// the bytes it had read.
func (s *fastServer) serveHandedOff(nc net.Conn, pending []byte) {
	fc := s.newConn(nc)
	if fc == nil {
		nc.Close()
		return
	}
	fc.cr.pending = pending
	go fc.serve()
}

// fastRoute parses a request head into h and finds its route: nil when
// the request is not one the fast path serves (it is then handed off).
func (m *Mesh) fastRoute(head []byte, h *reqHead, hosts *hostKeyCache) *route {
	if parseRequestHead(head, h) != nil {
		return nil
	}
	rt := matchRoute(m.state.Load().routes, hosts.key(h.host), h.path)
	if rt == nil || !rt.cluster.fastOK() {
		return nil
	}
	return rt
}

// hostKeyCache keeps a connection's last Host value and its routing form
// (lower case, without port or trailing dot), computed once while the
// client keeps sending the same Host.
type hostKeyCache struct {
	raw    []byte
	routed string
}

func (c *hostKeyCache) key(host []byte) string {
	if c.routed != "" && bytes.Equal(c.raw, host) {
		return c.routed
	}
	c.raw = append(c.raw[:0], host...)
	c.routed = routeHostKey(string(host))
	return c.routed
}

func (c *hostKeyCache) reset() { c.raw, c.routed = c.raw[:0], "" }

// handOff gives the connection to the listener's net/http server, replaying
// every byte read from it but not yet served.
func (fc *fastConn) handOff() {
	buffered, _ := fc.br.Peek(fc.br.Buffered())
	replay := make([]byte, 0, len(buffered)+len(fc.cr.pending))
	replay = append(append(replay, buffered...), fc.cr.pending...)
	nc, s := fc.nc, fc.s
	nc.SetReadDeadline(time.Time{})
	fc.release()
	s.hand.deliver(&replayConn{Conn: nc, replay: replay})
}

// replayConn is a connection whose first reads return bytes already read.
type replayConn struct {
	net.Conn
	replay []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.replay) > 0 {
		n := copy(p, c.replay)
		c.replay = c.replay[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handoffListener is the listener the fast path's net/http server accepts
// handed-off connections from.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *handoffListener) deliver(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// watchLoop starts hang-up watches for requests that have waited on their
// backend for watchAfter, until the server shuts down.
func (s *fastServer) watchLoop(stop <-chan struct{}) {
	t := time.NewTicker(watchAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			limit := now.Add(-watchAfter).UnixNano()
			s.mu.Lock()
			for fc := range s.conns {
				if w := fc.waitSince.Load(); w != 0 && w <= limit && fc.watchState.CompareAndSwap(watchOff, watchOn) {
					go fc.watchClient()
				}
			}
			s.mu.Unlock()
		}
	}
}

// beginWait marks the request as waiting on its backend.
func (fc *fastConn) beginWait(now time.Time) {
	fc.gone.Store(false)
	fc.watchState.Store(watchOff)
	fc.waitSince.Store(now.UnixNano())
}

// watchClient reads from the client while its request waits; a hang-up
// cancels the attempt by expiring the backend connection's deadline.
func (fc *fastConn) watchClient() {
	n, err := fc.nc.Read(fc.one[:])
	if n > 0 {
		fc.oneRead = true // the start of a pipelined request
	} else if err != nil && !isTimeout(err) {
		fc.upMu.Lock()
		fc.gone.Store(true)
		if fc.upstream != nil {
			fc.upstream.nc.SetDeadline(longAgo)
		}
		fc.upMu.Unlock()
	}
	fc.watchDone <- struct{}{}
}

// setUpstream records the backend connection an attempt waits on (nil:
// none); false when the client has already left.
func (fc *fastConn) setUpstream(pc *h1Conn) bool {
	fc.upMu.Lock()
	defer fc.upMu.Unlock()
	fc.upstream = pc
	return !fc.gone.Load()
}

// stopWatch ends a hang-up watch; a byte it read is replayed to the reader.
func (fc *fastConn) stopWatch() {
	fc.waitSince.Store(0)
	if fc.watchState.CompareAndSwap(watchOff, watchBarred) {
		return
	}
	fc.nc.SetReadDeadline(longAgo)
	<-fc.watchDone
	fc.rdl = time.Time{}
	fc.nc.SetReadDeadline(fc.rdl)
	if fc.oneRead {
		fc.oneRead = false
		fc.cr.pending = append(fc.cr.pending, fc.one[0])
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// fastOK reports whether the fast path can forward to this cluster: plain
// HTTP/1.1 backends (the lean client's pool) and no hedging.
func (c *cluster) fastOK() bool {
	return c.h1 != nil && (c.cfg.Retry == nil || c.cfg.Retry.HedgeAfter == 0)
}

var _ io.Reader = (*connReader)(nil)
