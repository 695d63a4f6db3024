//go:build linux

package mesh

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// With busy polling the event loops also accept new connections
// themselves, as nginx's and HAProxy's loops do. Otherwise only Go's
// listener goroutine accepts, and while every processor is held by a
// spinning loop the Go runtime looks at its poller only from its monitor,
// every 10 ms at most: a new connection then waited milliseconds for its
// first byte. Go's goroutine keeps accepting too; whoever is first takes a
// connection, and a loop hands nothing over.
//
// Each loop watches its own duplicate of the listening socket. A duplicate
// keeps the address bound, so whoever closes the listener first has every
// loop close its duplicate (closeAcceptors): a reload that replaces a
// listener on the same address can bind it again at once.

// acceptor is a loop's duplicate of the listening socket.
type acceptor struct {
	l      *evloop
	fd     int
	paused bool // accept4 failed for a reason that will not pass at once: Go's goroutine accepts from then on
}

// acceptEvents is level-triggered (a loop takes at most acceptBatch
// connections per pass and the rest stay ready) and exclusive (one loop
// woken per new connection, not all of them).
const acceptEvents = unix.EPOLLIN | unix.EPOLLEXCLUSIVE

const acceptBatch = 64

// watchListener gives l a duplicate of ln's socket to accept from. It runs
// before l's goroutine starts; without a duplicate, Go's goroutine accepts
// for l as before.
func (l *evloop) watchListener(ln net.Listener) {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	fd := -1
	if raw.Control(func(f uintptr) { fd, err = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }) != nil || err != nil || fd < 0 {
		return
	}
	a := &acceptor{l: l, fd: fd}
	if err := l.registerFor(fd, a, acceptEvents); err != nil {
		unix.Close(fd)
		return
	}
	l.acc = a
}

func (a *acceptor) event(uint32) {
	l := a.l
	if l.shutdown || l.acc != a {
		return
	}
	for range acceptBatch {
		fd, sa, err := unix.Accept4(a.fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.EINTR, unix.ECONNABORTED:
			continue
		case unix.EAGAIN:
			return // another loop or Go's goroutine took it
		default:
			// Out of descriptors or memory: a level-triggered socket
			// would keep the loop failing. Leave accepting to Go's
			// goroutine, which backs off and logs.
			l.forget(a.fd)
			a.paused = true
			return
		}
		// What Go's listener sets on the connections it accepts.
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15)
		unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15)
		l.s.loopAccepted.Add(1)
		l.add(newLconn(l, fd, tcpAddr(sa)))
	}
}

// closeAcceptor stops accepting and closes l's duplicate of the listening
// socket; on the loop's goroutine, any number of times.
func (l *evloop) closeAcceptor() {
	if a := l.acc; a != nil {
		if !a.paused {
			l.forget(a.fd)
		}
		unix.Close(a.fd)
		l.acc = nil
	}
	l.accOnce.Do(func() { close(l.accClosed) })
}

// dropAcceptor asks l to close its duplicate of the listening socket and
// waits until it has (or has exited, which closes it too).
func (l *evloop) dropAcceptor() {
	l.mu.Lock()
	l.dropAcc = true
	l.pokeLocked()
	l.mu.Unlock()
	select {
	case <-l.accClosed:
	case <-l.exited:
	}
}

func tcpAddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IPv4(sa.Addr[0], sa.Addr[1], sa.Addr[2], sa.Addr[3]), Port: sa.Port}
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
	}
	return &net.TCPAddr{}
}
