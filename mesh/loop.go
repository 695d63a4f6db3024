//go:build linux

package mesh

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event loops serve the fast path's common case without a goroutine per
// connection: each loop owns an epoll instance, its client connections and
// its own pool of backend connections, and drives every request with
// non-blocking reads and writes, as nginx and HAProxy do. A request costs
// four system calls (read the request, write it upstream, read the answer,
// write it back) and a share of one epoll_wait; a goroutine per connection
// costs the same four plus a read that finds nothing before each wait, and
// the scheduler's work to park and wake the goroutine, which on a busy
// proxy is the difference between matching nginx's throughput and not.
//
// The loops serve exactly what the goroutine fast path serves (bodiless
// requests to plain HTTP/1.1 clusters, see fast.go) with the same routing,
// balancing, retries, budget, outlier detection, circuit breaker, metrics
// and access log, and the same bytes on the wire. Anything else is handed to
// the goroutine fast path with the bytes already read, and from there, as
// before, to net/http.

// loopEvents registers a socket edge-triggered for reads, writes and the
// peer's hang-up: one registration for the connection's life, no epoll_ctl
// per request.
const loopEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// loopTick is how often a loop with requests in flight checks their
// deadlines; idle connections are checked once a second.
const loopTick = 5 * time.Millisecond

// loopHandler is what a loop knows of a socket it watches.
type loopHandler interface {
	event(ev uint32)
}

type evloop struct {
	s     *fastServer
	epfd  int
	wake  int // eventfd: new connections, shutdown
	items []loopHandler
	gens  []int32 // per fd, the registration the events must carry
	gen   int32

	mu       sync.Mutex
	incoming []*lconn
	stopping bool // the server shuts down: close idle connections
	force    bool // close everything now

	conns    map[*lconn]struct{}
	nconns   atomic.Int64 // len(conns), for Shutdown
	timed    []*lconn     // connections with a request (or a head) under way
	pool     map[string][]*bconn
	addrs    map[string]unix.Sockaddr
	lastTick time.Time
	lastIdle time.Time
	shutdown bool
	closed   bool // under mu: wake is closed, poke must not write to it
	exited   chan struct{}

	// With busy polling: the loop's own duplicate of the listening socket
	// (loopaccept.go), and closing it on request.
	acc       *acceptor
	dropAcc   bool // under mu: close acc
	accClosed chan struct{}
	accOnce   sync.Once
}

// loopCount is how many event loops a listener runs: its event_loops
// setting, one per CPU the Go scheduler uses by default, none when set
// below zero.
func loopCount(l Listener) int {
	if l.EventLoops < 0 {
		return 0
	}
	if l.EventLoops > 0 {
		return l.EventLoops
	}
	return runtime.GOMAXPROCS(0)
}

// startLoops starts n event loops for s; nil when the system refuses.
func startLoops(s *fastServer, n int) []*evloop {
	var loops []*evloop
	for range n {
		l, err := newLoop(s)
		if err != nil {
			s.m.log.Warn("mesh: event loop unavailable, serving with a goroutine per connection", "err", err)
			for _, l := range loops {
				l.close()
			}
			return nil
		}
		loops = append(loops, l)
	}
	for _, l := range loops {
		if s.l.BusyPoll > 0 && !s.lnClosed { // s.mu is held (Serve)
			l.watchListener(s.ln)
		}
		go l.run()
	}
	return loops
}

func newLoop(s *fastServer) (*evloop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil { // so that Go's poller takes it
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	wake, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	l := &evloop{s: s, epfd: epfd, wake: wake, conns: map[*lconn]struct{}{},
		pool: map[string][]*bconn{}, addrs: map[string]unix.Sockaddr{}, exited: make(chan struct{}), accClosed: make(chan struct{})}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wake)}); err != nil {
		l.close()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

func (l *evloop) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	unix.Close(l.wake)
	unix.Close(l.epfd)
}

// adopt takes an accepted connection off Go's poller and gives it to a
// loop; false when the connection could not be moved (it then stays with
// the caller).
func (l *evloop) adopt(nc net.Conn) bool {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return false
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	fd := -1
	raw.Control(func(f uintptr) {
		fd, err = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err != nil || fd < 0 {
		return false
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return false
	}
	lc := newLconn(l, fd, nc.RemoteAddr())
	nc.Close() // the duplicate keeps the socket
	l.mu.Lock()
	if l.stopping {
		l.mu.Unlock()
		unix.Close(fd)
		return true
	}
	l.s.adopted.Add(1)
	l.incoming = append(l.incoming, lc)
	l.pokeLocked()
	l.mu.Unlock()
	return true
}

// pokeLocked wakes the loop; l.mu is held, so the eventfd is still open.
func (l *evloop) pokeLocked() {
	if !l.closed {
		one := [8]byte{1}
		unix.Write(l.wake, one[:])
	}
}

// stop asks the loop to close idle connections and let the others finish
// (force: close them all now).
func (l *evloop) stop(force bool) {
	l.mu.Lock()
	l.stopping = true
	l.force = l.force || force
	l.pokeLocked()
	l.mu.Unlock()
}

// register watches fd. Each registration gets a generation number that
// its events carry: an event collected for a socket that was closed while
// the same batch was being handled, and whose number a new socket took,
// must not reach the new one.
func (l *evloop) register(fd int, h loopHandler) error {
	return l.registerFor(fd, h, loopEvents)
}

// registerFor is register with other events than a connection's.
func (l *evloop) registerFor(fd int, h loopHandler, events uint32) error {
	for fd >= len(l.items) {
		l.items = append(l.items, make([]loopHandler, len(l.items)+64)...)
		l.gens = append(l.gens, make([]int32, len(l.items)-len(l.gens))...)
	}
	l.items[fd] = h
	l.gen++
	l.gens[fd] = l.gen
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd), Pad: l.gen}); err != nil {
		l.items[fd] = nil
		return err
	}
	return nil
}

// forget stops watching fd (before it is closed or handed over: a
// duplicate of it would otherwise keep the registration alive).
func (l *evloop) forget(fd int) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	l.items[fd] = nil
}

// run is the loop: wait for events, dispatch them, check deadlines.
//
// The loop does not block in epoll_wait itself: its epoll instance is
// registered with Go's own poller, and the loop's goroutine parks there
// when nothing is ready. A goroutine blocked in a system call makes the Go
// runtime's monitor wake every 20 µs to take its processor back, which on a
// busy proxy costs more than the proxying; parked, it costs nothing.
func (l *evloop) run() {
	defer close(l.exited)
	f := os.NewFile(uintptr(l.epfd), "mesh-epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		l.s.m.log.Error("mesh event loop: cannot poll epoll", "err", err)
		l.closeAll()
		l.closeWith(f)
		return
	}
	defer l.closeWith(f)
	events := make([]unix.EpollEvent, 256)
	var deadline time.Time
	busy := time.Duration(l.s.l.BusyPoll)
	var lastWork time.Time
	spun, waited := l.s.m.metrics.polls.WithLabelValues("spin"), l.s.m.metrics.polls.WithLabelValues("wait")
	for {
		now := time.Now()
		want := now.Add(time.Second)
		if len(l.timed) > 0 {
			want = now.Add(loopTick)
		}
		if deadline.Before(now) || want.Before(deadline) {
			deadline = want
			f.SetReadDeadline(deadline)
		}
		n := 0
		var werr error
		if busy > 0 && now.Sub(lastWork) < busy {
			// Back to the top every loopTick at most, for the deadlines.
			until := lastWork.Add(busy)
			if tick := now.Add(loopTick); tick.Before(until) {
				until = tick
			}
			if n, werr = l.spin(events, until); n > 0 {
				spun.Inc()
			}
		}
		// Park when there is nothing to do and the busy window, if any, is
		// over; a spin that only stopped for the deadline tick goes on.
		if n == 0 && werr == nil && (busy == 0 || time.Since(lastWork) >= busy) {
			err := rc.Read(func(fd uintptr) bool {
				n, werr = epollWaitNow(int(fd), events)
				return n > 0 || werr != nil
			})
			if werr == nil && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				werr = err
			}
			if n > 0 {
				waited.Inc()
			}
		}
		if werr != nil {
			l.s.m.log.Error("mesh event loop: epoll_wait failed", "err", werr)
			l.closeAll()
			return
		}
		for i := 0; i < n; i++ {
			fd := int(events[i].Fd)
			if fd == l.wake {
				if l.woken() {
					return
				}
				continue
			}
			if fd < len(l.items) && l.items[fd] != nil && l.gens[fd] == events[i].Pad {
				l.dispatch(l.items[fd], events[i].Events)
			}
		}
		now = time.Now()
		if n > 0 {
			lastWork = now
		}
		if len(l.timed) > 0 && now.Sub(l.lastTick) >= loopTick {
			l.lastTick = now
			l.checkDeadlines(now)
		}
		if now.Sub(l.lastIdle) >= time.Second {
			l.lastIdle = now
			l.checkIdle(now)
		}
		if l.shutdown && len(l.conns) == 0 {
			l.closeAll()
			return
		}
	}
}

// spin is busy polling (the listener's busy_poll): epoll_wait without a
// timeout, again and again, until something is ready or until is passed.
// Parking and being woken costs a request two context switches and, on a
// virtual machine, an interrupt between CPUs that the hypervisor delivers;
// at moderate load that is most of a request's CPU and a good part of its
// latency. Spinning keeps the CPU, so the next request is seen as soon as
// the kernel queues it. Every 64 polls (some 20 µs) the goroutine yields so
// that timers and other goroutines on its processor still run, and the
// clock is read.
func (l *evloop) spin(events []unix.EpollEvent, until time.Time) (int, error) {
	for i := 1; ; i++ {
		n, err := epollWaitNow(l.epfd, events)
		if n > 0 || err != nil {
			return n, err
		}
		if i%64 == 0 {
			runtime.Gosched()
			if time.Now().After(until) {
				return 0, nil
			}
		}
	}
}

// closeWith closes the loop's descriptors, the epoll one through f.
func (l *evloop) closeWith(f *os.File) {
	l.closeAcceptor()
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	unix.Close(l.wake)
	f.Close()
}

// epollWaitNow collects the ready events without waiting. The loop's
// sockets are non-blocking, so this and its reads and writes are made as
// raw system calls, without telling the Go scheduler (they never block).
func epollWaitNow(epfd int, events []unix.EpollEvent) (int, error) {
	for {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, os.NewSyscallError("epoll_pwait", e)
		}
		return int(n), nil
	}
}

// rawRead and rawWrite are read(2) and write(2) on a non-blocking socket.
func rawRead(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// dispatch runs one event; like net/http, a bug costs the connection it
// happened on, not the process.
func (l *evloop) dispatch(h loopHandler, ev uint32) {
	defer func() {
		if p := recover(); p != nil {
			l.s.m.log.Error("mesh event loop: panic serving a connection", "panic", p, "stack", string(debug.Stack()))
			defer func() { recover() }() // cleaning up after a bug may hit it again
			switch x := h.(type) {
			case *lconn:
				x.abort()
			case *bconn:
				if x.owner != nil {
					x.owner.abort()
				} else {
					x.close()
				}
			}
		}
	}()
	h.event(ev)
}

// woken handles the eventfd: adopts new connections and applies a
// shutdown. It returns true when the loop must exit.
func (l *evloop) woken() bool {
	var b [8]byte
	unix.Read(l.wake, b[:])
	l.mu.Lock()
	in := l.incoming
	l.incoming = nil
	stopping, force, dropAcc := l.stopping, l.force, l.dropAcc
	l.mu.Unlock()
	for _, lc := range in {
		l.add(lc)
	}
	if stopping || dropAcc {
		l.closeAcceptor()
	}
	if stopping {
		l.shutdown = true
		for lc := range l.conns {
			if force || lc.idle() {
				lc.abort()
			}
		}
		if len(l.conns) == 0 {
			l.closeAll()
			return true
		}
	}
	return false
}

// add starts serving a new client connection.
func (l *evloop) add(lc *lconn) {
	if err := l.register(lc.fd, lc); err != nil {
		unix.Close(lc.fd)
		return
	}
	l.conns[lc] = struct{}{}
	l.nconns.Store(int64(len(l.conns)))
	lc.idleSince = time.Now()
}

func (l *evloop) closeAll() {
	for lc := range l.conns {
		lc.abort()
	}
	for _, list := range l.pool {
		for _, b := range list {
			b.close()
		}
	}
	l.pool = map[string][]*bconn{}
}

// checkDeadlines enforces read_header_timeout on partial heads and each
// attempt's deadline on requests in flight.
func (l *evloop) checkDeadlines(now time.Time) {
	for i := 0; i < len(l.timed); {
		lc := l.timed[i]
		lc.checkDeadline(now)
		if i < len(l.timed) && l.timed[i] == lc {
			i++
		}
	}
}

// backendIdle is how long a pooled backend connection may sit unused (as
// Go's Transport's IdleConnTimeout): it also lets connections to endpoints
// that have left the configuration go.
const backendIdle = 90 * time.Second

// checkIdle closes client connections idle longer than the server's idle
// timeout (also those whose last answer the client has not read for that
// long), and pooled backend connections unused for backendIdle.
func (l *evloop) checkIdle(now time.Time) {
	for lc := range l.conns {
		// Between requests, idle or with an answer the client is not
		// reading: either way the idle timeout is all it gets.
		if lc.state == stIdle && lc.headStart.IsZero() && now.Sub(lc.idleSince) > l.s.idle {
			lc.abort()
		}
	}
	for addr, list := range l.pool {
		kept := list[:0]
		for _, b := range list {
			if now.Sub(b.idleSince) > backendIdle {
				b.close()
			} else {
				kept = append(kept, b)
			}
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(l.pool, addr)
		} else {
			l.pool[addr] = kept
		}
	}
}

func (l *evloop) addTimed(lc *lconn) {
	if lc.timedAt >= 0 {
		return
	}
	if len(l.timed) == 0 {
		l.lastTick = time.Now()
	}
	lc.timedAt = len(l.timed)
	l.timed = append(l.timed, lc)
}

func (l *evloop) removeTimed(lc *lconn) {
	i := lc.timedAt
	if i < 0 {
		return
	}
	last := len(l.timed) - 1
	l.timed[i] = l.timed[last]
	l.timed[i].timedAt = i
	l.timed[last] = nil
	l.timed = l.timed[:last]
	lc.timedAt = -1
}

// sockaddr parses an endpoint address once; ok is false for a host name,
// which the loop does not resolve (the goroutine path's dialer does).
func (l *evloop) sockaddr(addr string) (unix.Sockaddr, bool) {
	if sa, ok := l.addrs[addr]; ok {
		return sa, sa != nil
	}
	var sa unix.Sockaddr
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		ip := ap.Addr().Unmap()
		if ip.Is4() {
			sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
		} else if ip.Zone() == "" {
			sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
		}
	}
	if len(l.addrs) > 4096 {
		clear(l.addrs)
	}
	l.addrs[addr] = sa
	return sa, sa != nil
}

// idleBackend takes a pooled backend connection to addr, nil when there is
// none.
func (l *evloop) idleBackend(addr string) *bconn {
	list := l.pool[addr]
	if len(list) == 0 {
		return nil
	}
	b := list[len(list)-1]
	list[len(list)-1] = nil
	l.pool[addr] = list[:len(list)-1]
	b.pooled = false
	return b
}

// putBackend pools a backend connection, or closes it when it holds
// unasked-for bytes or the pool is full.
func (l *evloop) putBackend(b *bconn, max int) {
	b.owner = nil
	if b.r != b.w || b.readable || b.dead || l.shutdown || len(l.pool[b.addr]) >= max {
		b.close()
		return
	}
	b.r, b.w = 0, 0
	b.pooled = true
	b.idleSince = time.Now()
	l.pool[b.addr] = append(l.pool[b.addr], b)
}

func (l *evloop) dropPooled(b *bconn) {
	list := l.pool[b.addr]
	for i, x := range list {
		if x == b {
			l.pool[b.addr] = append(list[:i], list[i+1:]...)
			break
		}
	}
	b.pooled = false
}
