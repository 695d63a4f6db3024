package mesh

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
)

// resHead is a backend's response head, parsed in place in the backend
// connection's read buffer.
type resHead struct {
	status     int
	headers    []headerField
	connTokens [][]byte
	close      bool  // the backend closes the connection after this response
	length     int64 // Content-Length; -1 when absent
	chunked    bool
	hasDate    bool
	http10     bool
	size       int // bytes of the head, to discard once relayed
}

func (r *resHead) reset() {
	headers, conn := r.headers[:0], r.connTokens[:0]
	*r = resHead{headers: headers, connTokens: conn, length: -1}
}

// parseResponseHead parses a complete response head (CRLF line endings,
// through the blank line).
func parseResponseHead(head []byte, r *resHead) error {
	r.reset()
	r.size = len(head)
	line, rest, ok := cutLine(head)
	if !ok || len(line) < 12 || line[8] != ' ' {
		return errBadResponse
	}
	switch string(line[:8]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		r.close = true // unless it says keep-alive; kept simple: not reused
		r.http10 = true
	default:
		return errBadResponse
	}
	code := line[9:12]
	if len(line) > 12 && line[12] != ' ' {
		return errBadResponse
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return errBadResponse
		}
	}
	r.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
	if r.status < 100 {
		return errBadResponse
	}
	sawTE := false
	for {
		line, rest, ok = cutLine(rest)
		if !ok {
			return errBadResponse
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadResponse
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		for _, c := range name {
			if !tokenChar[c] {
				return errBadResponse
			}
		}
		for _, c := range value {
			if (c < ' ' && c != '\t') || c == 0x7f {
				return errBadResponse
			}
		}
		switch {
		case equalFold(name, "Content-Length"):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || r.length >= 0 && r.length != n {
				return errBadResponse
			}
			r.length = n
		case equalFold(name, "Transfer-Encoding"):
			if r.http10 {
				break // ignored in HTTP/1.0 messages, as Go's client does
			}
			if sawTE || !equalFold(value, "chunked") {
				return errBadResponse // Go's client supports only chunked too
			}
			sawTE, r.chunked = true, true
		case equalFold(name, "Connection"):
			for len(value) > 0 {
				var tok []byte
				tok, value, _ = bytes.Cut(value, []byte{','})
				tok = trimOWS(tok)
				if equalFold(tok, "close") {
					r.close = true
				}
				if len(tok) > 0 {
					r.connTokens = append(r.connTokens, tok)
				}
			}
		case equalFold(name, "Date"):
			r.hasDate = true
		}
		r.headers = append(r.headers, headerField{name, value})
	}
	if r.chunked {
		r.length = -1
	}
	return nil
}

// readResponseHead reads and parses the next final response head from pc
// (skipping 1xx interim responses); the head stays in pc.br until
// discarded.
func readResponseHead(pc *h1Conn, r *resHead) error {
	for {
		var head []byte
		for {
			buf, _ := pc.br.Peek(pc.br.Buffered())
			n, clean := headEnd(buf)
			if n > 0 {
				if !clean {
					return errBadResponse
				}
				head = buf[:n]
				break
			}
			if _, err := pc.br.Peek(len(buf) + 1); err != nil {
				if err == bufio.ErrBufferFull {
					return errors.Join(errBadResponse, errors.New("response head over 16 KiB"))
				}
				if len(buf) == 0 && err == io.EOF {
					return errStale
				}
				return err
			}
		}
		if err := parseResponseHead(head, r); err != nil {
			return err
		}
		if r.status >= 100 && r.status < 200 {
			if r.status == http.StatusSwitchingProtocols {
				return errBadResponse
			}
			pc.br.Discard(r.size) // 100 Continue, 103 Early Hints: not relayed
			continue
		}
		return nil
	}
}

// errStale is a pooled connection the backend closed before answering.
var errStale = errors.New("backend closed the connection before answering")

// isHop reports whether a header is hop-by-hop (RFC 9110 section 7.6.1).
func isHop(name []byte) bool {
	switch len(name) {
	case 2:
		return equalFold(name, "Te")
	case 7:
		return equalFold(name, "Trailer") || equalFold(name, "Upgrade")
	case 10:
		return equalFold(name, "Connection") || equalFold(name, "Keep-Alive")
	case 16:
		return equalFold(name, "Proxy-Connection")
	case 17:
		return equalFold(name, "Transfer-Encoding")
	case 18:
		return equalFold(name, "Proxy-Authenticate")
	case 19:
		return equalFold(name, "Proxy-Authorization")
	}
	return false
}

func listed(name []byte, tokens [][]byte) bool {
	for _, t := range tokens {
		if len(t) == len(name) && equalFold(name, string(t)) {
			return true
		}
	}
	return false
}

// headWriter is where heads are written: a connection's bufio.Writer on
// the goroutine fast path, a byte buffer on the event loop.
type headWriter interface {
	Write([]byte) (int, error)
	WriteString(string) (int, error)
	WriteByte(byte) error
}

// writeRequest writes the request head sent upstream.
func (fc *fastConn) writeRequest(w *bufio.Writer, rt *route) {
	writeRequestHead(w, &fc.h, rt, fc.s.l.TrustForwarded, fc.ip)
}

// writeRequestHead writes the request head sent upstream: the client's with
// the route's prefix stripped, hop-by-hop headers (and those Connection
// names) removed, and X-Forwarded-* set (ip is the client's address), exactly
// as outgoing does on the net/http path.
func writeRequestHead(w headWriter, h *reqHead, rt *route, trust bool, ip string) {
	w.Write(h.method)
	w.WriteByte(' ')
	path := h.path
	if rt.StripPrefix && rt.PathPrefix != "" {
		// "/" + the rest without the prefix and one leading slash.
		path = bytes.TrimPrefix(path[min(len(rt.PathPrefix), len(path)):], []byte{'/'})
		w.WriteByte('/')
	}
	w.Write(path)
	if len(h.target) > len(h.path) {
		w.WriteByte('?')
		w.Write(h.query)
	}
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.Write(h.host)
	w.WriteString("\r\n")
	keepXFP := trust && len(h.xfp) > 0
	keepXFH := trust && len(h.xfh) > 0
	for _, f := range h.headers {
		if isHop(f.name) || listed(f.name, h.connTokens) ||
			equalFold(f.name, "X-Forwarded-For") ||
			!keepXFP && equalFold(f.name, "X-Forwarded-Proto") ||
			!keepXFH && equalFold(f.name, "X-Forwarded-Host") {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if h.te {
		w.WriteString("Te: trailers\r\n")
	}
	switch string(h.method) {
	case "POST", "PUT", "PATCH":
		w.WriteString("Content-Length: 0\r\n")
	}
	w.WriteString("X-Forwarded-For: ")
	if trust && len(h.xff) > 0 {
		for _, v := range h.xff {
			w.Write(v)
			w.WriteString(", ")
		}
	}
	w.WriteString(ip)
	w.WriteString("\r\n")
	if !keepXFP {
		w.WriteString("X-Forwarded-Proto: http\r\n")
	}
	if !keepXFH {
		w.WriteString("X-Forwarded-Host: ")
		w.Write(h.host)
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
}

// fastTry is how one attempt ended.
type fastTry struct {
	pc       *h1Conn
	err      error
	canceled bool // the client left or the request's deadline passed
	timeout  bool // the per-try timeout
}

// attemptsFor returns how many attempts a request with this method gets
// (one unless it is idempotent), and the per-try timeout.
func (c *cluster) attemptsFor(method []byte) (attempts int, perTry time.Duration, retryable bool) {
	attempts = 1
	if rc := c.cfg.Retry; rc != nil {
		attempts = rc.Attempts
		if attempts == 0 {
			attempts = 2
		}
		perTry = time.Duration(rc.PerTry)
	}
	retryable = idempotent(string(method))
	if !retryable {
		attempts = 1
	}
	return attempts, perTry, retryable
}

// proxy forwards the parsed request with the same retries, budget and
// bookkeeping as handler.forward, writes the answer and returns the status,
// the region that answered and whether the client connection can be kept.
func (fc *fastConn) proxy(rt *route, start time.Time) (int, string, bool) {
	c := rt.cluster
	h := &fc.h
	attempts, perTry, retryable := c.attemptsFor(h.method)
	c.budget.deposit()
	deadline := start.Add(c.cfg.Timeout.D(30 * time.Second))
	head := h.method[0] == 'H' && string(h.method) == "HEAD"

	// With a pipelined request already read, the client has not left.
	watching := fc.br.Buffered() == 0
	if watching {
		fc.beginWait(start)
	}
	stopWatch := func() {
		if watching {
			watching = false
			fc.stopWatch()
		}
	}

	var triedBuf [4]*Endpoint
	tried := triedBuf[:0]
	lastCode, lastRegion := http.StatusServiceUnavailable, ""
	for i := 0; i < attempts; i++ {
		now := time.Now()
		if i > 0 {
			if !c.budget.withdraw(now) {
				c.m.budgetOut.WithLabelValues(c.cfg.Name).Inc()
				break
			}
			c.m.retries.WithLabelValues(c.cfg.Name, "retry").Inc()
		}
		e := c.pickWith(now, tried, &fc.picks)
		if e == nil {
			break
		}
		tried = append(tried, e)
		t := fc.try(c, e, rt, perTry, deadline, retryable)
		last := i == attempts-1
		if t.err == nil && (!c.retryOn[fc.res.status] || last || !retryable || !c.canRetrySoon()) {
			stopWatch()
			keep := fc.relay(t.pc, c, head)
			e.inflight.Add(-1)
			return fc.res.status, e.Region, keep
		}
		lastRegion = e.Region
		if t.err != nil {
			lastCode = failedStatus(t.canceled, t.timeout, fc.gone.Load())
		} else {
			lastCode = fc.res.status
			fc.discard(t.pc, c, head)
		}
		e.inflight.Add(-1)
		if fc.gone.Load() || !time.Now().Before(deadline) {
			break
		}
	}
	stopWatch()
	if fc.gone.Load() {
		return 499, "", false
	}
	return lastCode, lastRegion, fc.writeError(lastCode, failureMessage(lastCode))
}

// try sends one attempt to e and reads the response head into fc.res. The
// endpoint's in-flight count is raised here and lowered by the caller once
// the body has been relayed.
func (fc *fastConn) try(c *cluster, e *Endpoint, rt *route, perTry time.Duration, deadline time.Time, idem bool) fastTry {
	e.inflight.Add(1)
	e.requests.Add(1)
	tryDeadline := deadline
	var t fastTry
	var sent time.Time
	for again := 0; ; again++ {
		t.err = nil
		now := time.Now()
		if perTry > 0 && now.Add(perTry).Before(deadline) {
			tryDeadline = now.Add(perTry)
		}
		pc, reused := c.h1.idleConn(e.Addr)
		if pc == nil {
			dctx, cancel := context.WithDeadline(context.Background(), tryDeadline)
			var err error
			pc, _, err = c.h1.get(dctx, e.Addr)
			cancel()
			if err != nil {
				t.err = err
				break
			}
		}
		sent = time.Now()
		c.connObserved(reused)
		pc.nc.SetDeadline(tryDeadline)
		pc.deadline = true
		if !fc.setUpstream(pc) {
			pc.nc.Close()
			t.err = context.Canceled
			break
		}
		fc.writeRequest(pc.bw, rt)
		err := pc.bw.Flush()
		if err == nil {
			err = readResponseHead(pc, &fc.res)
		}
		if err == nil {
			t.pc = pc
			break
		}
		fc.setUpstream(nil)
		pc.nc.Close()
		t.err = err
		// A pooled connection the backend closed while idle: nothing was
		// processed, so an idempotent request goes once more on a new one.
		if reused && again == 0 && idem && !fc.gone.Load() && !isTimeout(err) && !errors.Is(err, errBadResponse) {
			continue
		}
		break
	}
	now := time.Now()
	var rtt time.Duration // from having a connection to the response head, as on the net/http path
	if !sent.IsZero() {
		rtt = now.Sub(sent)
	}
	t.canceled, t.timeout = c.attemptEnded(e, now, rtt, t.err, isTimeout(t.err), fc.gone.Load(), deadline, fc.res.status)
	return t
}

// attemptEnded records how one attempt on e ended (err nil: a response with
// status arrived) in the endpoint's latency and outlier state and the
// upstream histogram. An attempt the client left, or that ran into the
// request's own deadline, says nothing about the backend and is only
// counted. It returns whether the attempt was canceled that way, or hit
// the per-try timeout.
func (c *cluster) attemptEnded(e *Endpoint, now time.Time, rtt time.Duration, err error, timedOut, gone bool, deadline time.Time, status int) (canceled, timeout bool) {
	o, label := outcomeOK, "ok"
	switch {
	case err != nil && gone:
		canceled, label = true, "canceled"
	case err != nil && timedOut && !now.Before(deadline):
		canceled, label = true, "canceled"
	case err != nil && timedOut:
		timeout = true
		o, label = outcomeTimeout, "timeout"
	case err != nil:
		o, label = outcomeConnect, "error"
	case status >= 500:
		o, label = outcome5xx, "5xx"
	}
	if label != "canceled" {
		c.record(e, now, rtt, o)
	}
	c.upstreamObserver(e, label).Observe(rtt.Seconds())
	return canceled, timeout
}

// failedStatus is the status a failed attempt leaves for the client.
func failedStatus(canceled, timeout, gone bool) int {
	switch {
	case canceled && gone:
		return 499
	case canceled || timeout:
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

// discard reads and drops a response that will be retried, keeping the
// connection when the body is small.
func (fc *fastConn) discard(pc *h1Conn, c *cluster, head bool) {
	r := &fc.res
	pc.br.Discard(r.size)
	fc.setUpstream(nil)
	if bodiless(r.status, head) {
		fc.putBack(pc, c)
		return
	}
	if r.length >= 0 && r.length <= 64<<10 && !r.close {
		if _, err := pc.br.Discard(int(r.length)); err == nil {
			fc.putBack(pc, c)
			return
		}
	}
	pc.nc.Close()
}

func (fc *fastConn) putBack(pc *h1Conn, c *cluster) {
	if fc.res.close {
		pc.nc.Close()
		return
	}
	c.h1.put(pc)
}

func bodiless(status int, head bool) bool {
	return head || status == http.StatusNoContent || status == http.StatusNotModified || status < 200
}

// relay writes the backend's response to the client: the status line, the
// headers without hop-by-hop ones, then the body (Content-Length, chunked
// or until the backend closes, the last two sent chunked). It returns
// whether the client connection can be kept.
func (fc *fastConn) relay(pc *h1Conn, c *cluster, head bool) bool {
	r := &fc.res
	w := fc.bw
	fc.setUpstream(nil) // the hang-up watch has ended
	noBody := bodiless(r.status, head)
	closing := fc.h.close || fc.s.closing.Load()
	writeResponseHead(w, r, noBody, closing)
	pc.br.Discard(r.size)
	var ok bool
	var cerr error // a client write error
	switch {
	case noBody:
		ok = true
	case r.chunked:
		ok, cerr = relayChunked(pc.br, w)
	case r.length >= 0:
		ok, cerr = relayLength(pc.br, w, r.length)
	default:
		ok, cerr = relayUntilClose(pc.br, w)
		r.close = true
	}
	if cerr == nil {
		cerr = w.Flush()
	}
	if ok && !r.close {
		c.h1.put(pc)
	} else {
		pc.nc.Close()
	}
	return ok && cerr == nil && !closing
}

// writeResponseHead writes the head relayed to the client: the status line,
// the backend's headers without hop-by-hop ones, a Date when the backend sent
// none, chunked framing for a body of unknown length, and Connection: close
// when the client connection ends after this response.
func writeResponseHead(w headWriter, r *resHead, noBody, closing bool) {
	writeStatusLine(w, r.status)
	chunkedOut := !noBody && r.length < 0
	for _, f := range r.headers {
		if isHop(f.name) && !(r.chunked && equalFold(f.name, "Trailer")) || listed(f.name, r.connTokens) {
			continue
		}
		if chunkedOut && equalFold(f.name, "Content-Length") {
			continue
		}
		w.Write(f.name)
		w.WriteString(": ")
		w.Write(f.value)
		w.WriteString("\r\n")
	}
	if !r.hasDate {
		w.WriteString("Date: ")
		w.Write(httpDate())
		w.WriteString("\r\n")
	}
	if chunkedOut {
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if closing {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
}

// relayLength copies exactly n body bytes.
func relayLength(br *bufio.Reader, w *bufio.Writer, n int64) (bool, error) {
	for n > 0 {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				return false, nil
			}
		}
		b, _ := br.Peek(int(min(n, int64(br.Buffered()))))
		if _, err := w.Write(b); err != nil {
			return false, err
		}
		br.Discard(len(b))
		n -= int64(len(b))
	}
	return true, nil
}

// relayChunked copies a chunked body as it comes (chunk sizes normalised,
// extensions dropped, trailers kept), flushing whenever the backend has
// nothing more buffered so that streams stay streams.
func relayChunked(br *bufio.Reader, w *bufio.Writer) (bool, error) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil || len(line) < 2 || line[len(line)-2] != '\r' {
			return false, nil
		}
		size, ok := parseChunkSize(line[:len(line)-2])
		if !ok {
			return false, nil
		}
		if size == 0 {
			if _, err := w.WriteString("0\r\n"); err != nil {
				return false, err
			}
			for { // trailers, then the blank line
				tl, err := br.ReadSlice('\n')
				if err != nil || len(tl) < 2 || tl[len(tl)-2] != '\r' {
					return false, nil
				}
				if _, err := w.Write(tl); err != nil {
					return false, err
				}
				if len(tl) == 2 {
					return true, nil
				}
			}
		}
		var nb [16]byte
		w.Write(strconv.AppendInt(nb[:0], size, 16))
		w.WriteString("\r\n")
		if ok, err := relayLength(br, w, size); !ok || err != nil {
			return false, err
		}
		crlf, err := br.Peek(2)
		if err != nil || crlf[0] != '\r' || crlf[1] != '\n' {
			return false, nil
		}
		br.Discard(2)
		if _, err := w.WriteString("\r\n"); err != nil {
			return false, err
		}
		if br.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return false, err
			}
		}
	}
}

// parseChunkSize reads a chunk-size line (without its CRLF), ignoring
// chunk extensions.
func parseChunkSize(line []byte) (int64, bool) {
	if i := bytes.IndexByte(line, ';'); i >= 0 {
		line = line[:i]
	}
	line = trimOWS(line)
	if len(line) == 0 || len(line) > 15 {
		return 0, false
	}
	var size int64
	for _, c := range line {
		switch {
		case c >= '0' && c <= '9':
			size = size<<4 | int64(c-'0')
		case c|0x20 >= 'a' && c|0x20 <= 'f':
			size = size<<4 | int64(c|0x20-'a'+10)
		default:
			return 0, false
		}
	}
	return size, true
}

// relayUntilClose copies a body that ends when the backend closes, as chunks.
func relayUntilClose(br *bufio.Reader, w *bufio.Writer) (bool, error) {
	for {
		if br.Buffered() == 0 {
			if _, err := br.Peek(1); err != nil {
				if err != io.EOF {
					return false, nil
				}
				_, werr := w.WriteString("0\r\n\r\n")
				return true, werr
			}
		}
		b, _ := br.Peek(br.Buffered())
		var nb [16]byte
		w.Write(strconv.AppendInt(nb[:0], int64(len(b)), 16))
		w.WriteString("\r\n")
		w.Write(b)
		if _, err := w.WriteString("\r\n"); err != nil {
			return false, err
		}
		br.Discard(len(b))
		if err := w.Flush(); err != nil {
			return false, err
		}
	}
}

// writeError answers with a short text error, as httpError does.
func (fc *fastConn) writeError(code int, msg string) bool {
	closing := fc.h.close || fc.s.closing.Load()
	writeErrorResponse(fc.bw, code, msg, closing)
	return fc.bw.Flush() == nil && !closing
}

// writeErrorResponse writes a short text error response.
func writeErrorResponse(w headWriter, code int, msg string, closing bool) {
	writeStatusLine(w, code)
	w.WriteString("Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nDate: ")
	w.Write(httpDate())
	w.WriteString("\r\nContent-Length: ")
	w.WriteString(strconv.Itoa(len(msg) + 1))
	if closing {
		w.WriteString("\r\nConnection: close")
	}
	w.WriteString("\r\n\r\n")
	w.WriteString(msg)
	w.WriteString("\n")
}

// writeStatusLine writes the status line as net/http's server does (its own
// reason phrase, not the backend's).
func writeStatusLine(w headWriter, code int) {
	if code >= 100 && code < len(statusLines) {
		w.WriteString(statusLines[code])
		return
	}
	w.WriteString(formatStatusLine(code))
}

// statusLines holds every status line from 100 to 599, made once, so that
// writing one costs no allocation.
var statusLines = func() (l [600]string) {
	for code := 100; code < len(l); code++ {
		l[code] = formatStatusLine(code)
	}
	return l
}()

func formatStatusLine(code int) string {
	text := http.StatusText(code)
	if text == "" {
		text = "status code " + strconv.Itoa(code)
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
}

type dateValue struct {
	sec int64
	b   []byte
}

var dateCache atomic.Pointer[dateValue]

// httpDate is the current time for a Date header, formatted once a second.
func httpDate() []byte {
	now := time.Now()
	if d := dateCache.Load(); d != nil && d.sec == now.Unix() {
		return d.b
	}
	d := &dateValue{sec: now.Unix(), b: now.UTC().AppendFormat(nil, http.TimeFormat)}
	dateCache.Store(d)
	return d.b
}
