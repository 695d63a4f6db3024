package mesh

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"
)

// h1Client is a lean HTTP/1.1 client for idempotent requests without a body
// to plain HTTP backends: the request is written and the response read on the
// calling goroutine, over a pool of warm connections. http.Transport hands
// every request to a writer goroutine and every response back from a reader
// goroutine; on a proxy's hot path those hand-offs cost about as much as the
// proxying itself. Everything else (bodies, TLS, HTTP/2) goes to the
// Transport.
type h1Client struct {
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle int

	mu   sync.Mutex
	idle map[string][]*h1Conn
}

type h1Conn struct {
	nc   net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	addr string
	// deadline is set when the fast path left a deadline on nc; the
	// net/http path, which cancels through the context, clears it.
	deadline bool
}

var longAgo = time.Unix(1, 0)

// idleConn takes a pooled connection to addr, nil when there is none.
func (c *h1Client) idleConn(addr string) (*h1Conn, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.idle[addr]; len(l) > 0 {
		pc := l[len(l)-1]
		c.idle[addr] = l[:len(l)-1]
		return pc, true
	}
	return nil, false
}

func (c *h1Client) get(ctx context.Context, addr string) (*h1Conn, bool, error) {
	c.mu.Lock()
	if l := c.idle[addr]; len(l) > 0 {
		pc := l[len(l)-1]
		c.idle[addr] = l[:len(l)-1]
		c.mu.Unlock()
		return pc, true, nil
	}
	c.mu.Unlock()
	nc, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10), addr: addr}, false, nil
}

func (c *h1Client) put(pc *h1Conn) {
	if pc.br.Buffered() > 0 {
		// Bytes nobody asked for (a body after a HEAD answer, say) would
		// be read as the next request's response.
		pc.nc.Close()
		return
	}
	c.mu.Lock()
	if c.idle == nil {
		c.idle = map[string][]*h1Conn{}
	}
	if len(c.idle[pc.addr]) < c.maxIdle {
		c.idle[pc.addr] = append(c.idle[pc.addr], pc)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	pc.nc.Close()
}

// closeIdle closes every pooled connection.
func (c *h1Client) closeIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.idle {
		for _, pc := range l {
			pc.nc.Close()
		}
	}
	c.idle = nil
}

// RoundTrip sends a bodiless request. A pooled connection the backend has
// closed meanwhile is detected by the failed exchange, and the request is
// tried once more on a new connection (nothing was processed: a bodiless
// request on a dead connection gets no answer at all).
func (c *h1Client) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	trace := httptrace.ContextClientTrace(ctx)
	for try := 0; ; try++ {
		pc, reused, err := c.get(ctx, req.URL.Host)
		if err != nil {
			return nil, err
		}
		if pc.deadline {
			pc.nc.SetDeadline(time.Time{})
			pc.deadline = false
		}
		if trace != nil && trace.GotConn != nil {
			trace.GotConn(httptrace.GotConnInfo{Conn: pc.nc, Reused: reused})
		}
		stop := context.AfterFunc(ctx, func() { pc.nc.SetDeadline(longAgo) })
		res, err := pc.exchange(req)
		if err != nil {
			stop()
			pc.nc.Close()
			if reused && try == 0 && ctx.Err() == nil && !errors.Is(err, errBadResponse) {
				continue
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		reuse := !res.Close && !req.Close
		if res.Body == http.NoBody || res.ContentLength == 0 {
			res.Body = http.NoBody
			if stop() && reuse {
				c.put(pc)
			} else {
				pc.nc.Close()
			}
			return res, nil
		}
		res.Body = &h1Body{rc: res.Body, pc: pc, c: c, stop: stop, reuse: reuse}
		return res, nil
	}
}

var errBadResponse = errors.New("malformed HTTP response from backend")

func (pc *h1Conn) exchange(req *http.Request) (*http.Response, error) {
	if err := req.Write(pc.bw); err != nil {
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		return nil, err
	}
	for {
		res, err := http.ReadResponse(pc.br, req)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || isNetErr(err) {
				return nil, err
			}
			return nil, errors.Join(errBadResponse, err)
		}
		if res.StatusCode >= 100 && res.StatusCode < 200 && res.StatusCode != http.StatusSwitchingProtocols {
			continue // interim responses (100 Continue, 103 Early Hints) are not relayed
		}
		return res, nil
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}

// h1Body returns the connection to the pool once the body has been read to
// the end, and closes it if the body is abandoned.
type h1Body struct {
	rc    io.ReadCloser
	pc    *h1Conn
	c     *h1Client
	stop  func() bool
	reuse bool
	done  bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *h1Body) finish(complete bool) {
	if b.done {
		return
	}
	b.done = true
	if b.stop() && complete && b.reuse {
		b.c.put(b.pc)
		return
	}
	b.pc.nc.Close()
}

func (b *h1Body) Close() error {
	b.finish(false)
	return nil
}
