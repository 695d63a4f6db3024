//go:build !linux

package mesh

import (
	"net"
	"sync/atomic"
)

// Event loops are Linux-only (epoll); elsewhere the fast path serves each
// connection with its own goroutine.
type evloop struct {
	nconns atomic.Int64
	exited chan struct{}
}

func loopCount(Listener) int                { return 0 }
func startLoops(*fastServer, int) []*evloop { return nil }
func (l *evloop) adopt(net.Conn) bool       { return false }
func (l *evloop) stop(bool)                 {}
func (l *evloop) dropAcceptor()             {}
