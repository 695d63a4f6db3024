package mesh

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hopHeaders are connection-level headers (RFC 9110 section 7.6.1) that a
// proxy must not forward.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// stripHop removes hop-by-hop headers, including those named in Connection.
func stripHop(h http.Header) {
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if f = textproto.TrimString(f); f != "" {
				h.Del(f)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

// maxRetryBody is the largest request body buffered so that the request can
// be retried; bigger bodies are streamed and tried once.
const maxRetryBody = 64 << 10

func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// handler serves one listener's requests.
type handler struct {
	m *Mesh
	l Listener
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m := h.m
	st := m.state.Load()
	if r.Method == http.MethodConnect {
		httpError(w, http.StatusMethodNotAllowed, "CONNECT is not supported: this is a reverse proxy, not a forward proxy")
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/") {
		httpError(w, http.StatusBadRequest, "request target must be an absolute path")
		return
	}
	rt := st.match(r.Host, r.URL.Path)
	if rt == nil {
		httpError(w, http.StatusNotFound, "no route for this host and path")
		return
	}
	if h.l.MaxBodyBytes > 0 {
		if r.ContentLength > h.l.MaxBodyBytes {
			httpError(w, http.StatusRequestEntityTooLarge, "request body too large")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.l.MaxBodyBytes)
	}
	c := rt.cluster
	var code int
	var region string
	if proto := upgradeType(r.Header); proto != "" && r.ProtoMajor == 1 {
		code, region = h.upgrade(w, r, rt, c, proto)
	} else {
		code, region = h.forward(w, r, rt, c)
	}
	d := time.Since(start)
	m.observe(c, code, region, d)
	if m.access != nil {
		m.access.Info("request", "method", r.Method, "host", r.Host, "path", r.URL.Path, "remote", r.RemoteAddr,
			"cluster", c.cfg.Name, "region", region, "code", code, "ms", float64(d.Microseconds())/1000)
	}
}

// observe records one client request in the metrics and the timings. A
// relayed session's length (101) is not a latency.
func (m *Mesh) observe(c *cluster, code int, region string, d time.Duration) {
	if code == http.StatusSwitchingProtocols {
		return
	}
	c.requestObserver(region, code).Observe(d.Seconds())
	if code != 499 && (code < 500 || region != "") {
		m.timings.Record(region, d)
	}
}

func codeClass(code int) string {
	switch {
	case code == 499:
		return "client_closed"
	case code >= 500:
		return "5xx"
	case code >= 400:
		return "4xx"
	case code >= 300:
		return "3xx"
	default:
		return "2xx"
	}
}

func httpError(w http.ResponseWriter, code int, msg string) {
	if code == http.StatusRequestEntityTooLarge {
		// Do not wait for a body we are refusing.
		w.Header().Set("Connection", "close")
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// outgoing builds the request sent to backends: same method, path (with the
// route's prefix stripped when asked), query, Host and body; hop-by-hop
// headers removed; X-Forwarded-For/Proto/Host set.
func (h *handler) outgoing(r *http.Request, rt *route) *http.Request {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.Close = false
	stripHop(out.Header)
	if te := r.Header.Values("Te"); len(te) > 0 {
		for _, v := range te {
			if strings.Contains(strings.ToLower(v), "trailers") {
				out.Header.Set("Te", "trailers")
			}
		}
	}
	if rt.StripPrefix && rt.PathPrefix != "" {
		out.URL.Path = "/" + strings.TrimPrefix(strings.TrimPrefix(out.URL.Path, rt.PathPrefix), "/")
		out.URL.RawPath = ""
	}
	clientIP, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		clientIP = r.RemoteAddr
	}
	if prior := r.Header.Values("X-Forwarded-For"); h.l.TrustForwarded && len(prior) > 0 {
		out.Header.Set("X-Forwarded-For", strings.Join(prior, ", ")+", "+clientIP)
	} else {
		out.Header.Set("X-Forwarded-For", clientIP)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	if !(h.l.TrustForwarded && r.Header.Get("X-Forwarded-Proto") != "") {
		out.Header.Set("X-Forwarded-Proto", proto)
	}
	if !(h.l.TrustForwarded && r.Header.Get("X-Forwarded-Host") != "") {
		out.Header.Set("X-Forwarded-Host", r.Host)
	}
	if _, ok := out.Header["User-Agent"]; !ok {
		out.Header["User-Agent"] = nil // do not let Go add its own
	}
	return out
}

// forward sends r to the cluster with retries and hedging, writes the
// response and returns the status code and the region that answered.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, rt *route, c *cluster) (int, string) {
	out := h.outgoing(r, rt)
	rc := c.cfg.Retry
	attempts, perTry, hedge := 1, time.Duration(0), time.Duration(0)
	if rc != nil {
		attempts = rc.Attempts
		if attempts == 0 {
			attempts = 2
		}
		perTry = time.Duration(rc.PerTry)
		hedge = time.Duration(rc.HedgeAfter)
	}
	retryable := idempotent(r.Method)
	var body []byte
	if retryable && r.Body != nil && r.Body != http.NoBody {
		if r.ContentLength < 0 || r.ContentLength > maxRetryBody {
			retryable = false
		} else {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return h.bodyError(w, err), ""
			}
			body = b
		}
	}
	if !retryable {
		attempts, hedge = 1, 0
	}
	if body != nil {
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	if r.Method != "GET" || body != nil {
		hedge = 0
	}
	c.budget.deposit()
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.Timeout.D(30*time.Second))
	defer cancel()

	var tried []*Endpoint
	lastCode, lastRegion := http.StatusServiceUnavailable, ""
	for i := 0; i < attempts; i++ {
		if i > 0 {
			if !c.budget.withdraw(time.Now()) {
				c.m.budgetOut.WithLabelValues(c.cfg.Name).Inc()
				break
			}
			c.m.retries.WithLabelValues(c.cfg.Name, "retry").Inc()
		}
		e := c.pick(time.Now(), tried)
		if e == nil {
			break
		}
		tried = append(tried, e)
		var res *attempt
		if hedge > 0 {
			res = h.hedged(ctx, out, body, c, e, perTry, hedge, &tried)
		} else {
			res = h.try(ctx, out, body, c, e, perTry)
		}
		last := i == attempts-1
		if res.err == nil && (!c.retryOn[res.res.StatusCode] || last || !retryable) {
			return h.respond(w, res), res.e.Region
		}
		if res.err == nil && !c.canRetrySoon() {
			// No budget left for another try: the backend's answer is
			// better than a made-up one.
			return h.respond(w, res), res.e.Region
		}
		lastRegion = res.e.Region
		if res.err != nil {
			lastCode = errorStatus(ctx, res.err)
			if lastCode == http.StatusRequestEntityTooLarge {
				res.close()
				return h.bodyError(w, res.err), ""
			}
		} else {
			lastCode = res.res.StatusCode
		}
		res.close()
		if ctx.Err() != nil {
			break
		}
	}
	if r.Context().Err() != nil {
		// The client went away: nobody to answer, and not a backend's
		// failure to count (nginx logs this as 499).
		return 499, ""
	}
	httpError(w, lastCode, failureMessage(lastCode))
	return lastCode, lastRegion
}

// canRetrySoon peeks whether the budget has a retry; used only to decide
// whether to keep a retryable status response instead of discarding it.
func (c *cluster) canRetrySoon() bool {
	b := c.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens+time.Since(b.last).Seconds()*b.min >= 1
}

func errorStatus(ctx context.Context, err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return http.StatusGatewayTimeout
	}
	return http.StatusBadGateway
}

func (h *handler) bodyError(w http.ResponseWriter, err error) int {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		httpError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return http.StatusRequestEntityTooLarge
	}
	httpError(w, http.StatusBadRequest, "could not read the request body")
	return http.StatusBadRequest
}

// attempt is one try at one endpoint.
type attempt struct {
	e      *Endpoint
	res    *http.Response
	err    error
	cancel context.CancelFunc
	done   func()
}

func (a *attempt) close() {
	if a.res != nil {
		io.Copy(io.Discard, io.LimitReader(a.res.Body, 64<<10))
		a.res.Body.Close()
	}
	a.cancel()
	a.done()
}

// try sends one attempt to e. The endpoint's in-flight count stays raised
// until the response body has been relayed (attempt.close), so the balancer
// sees real load.
func (h *handler) try(ctx context.Context, out *http.Request, body []byte, c *cluster, e *Endpoint, perTry time.Duration) *attempt {
	var actx context.Context
	var cancel context.CancelFunc
	if perTry > 0 {
		actx, cancel = context.WithTimeout(ctx, perTry)
	} else {
		actx, cancel = context.WithCancel(ctx)
	}
	var gotConn atomic.Int64
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) {
		gotConn.Store(time.Now().UnixNano())
		c.connObserved(i.Reused)
	}}
	req := out.WithContext(httptrace.WithClientTrace(actx, trace))
	u := *out.URL
	u.Scheme, u.Host = c.scheme, e.Addr
	req.URL = &u
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	e.inflight.Add(1)
	e.requests.Add(1)
	start := time.Now()
	var res *http.Response
	var err error
	// The lean client retries on a fresh connection when a pooled one
	// turns out dead, which is only safe for idempotent methods.
	if c.h1 != nil && body == nil && (req.Body == nil || req.Body == http.NoBody) && idempotent(req.Method) {
		res, err = c.h1.RoundTrip(req)
	} else {
		res, err = c.transport.RoundTrip(req)
	}
	now := time.Now()
	rtt := now.Sub(start)
	if g := gotConn.Load(); g != 0 && err == nil {
		// The balancer learns the endpoint's service time, not the time
		// to dial a new connection into the pool: one cold dial must not
		// make an endpoint look slow for the next seconds.
		rtt = now.Sub(time.Unix(0, g))
	}
	o := outcomeOK
	label := "ok"
	switch {
	case err != nil && actx.Err() != nil && ctx.Err() == nil:
		o, label = outcomeTimeout, "timeout"
	case err != nil && ctx.Err() != nil:
		// The client went away or the request's deadline passed: not the
		// endpoint's fault beyond the time it took.
		label = "canceled"
	case err != nil:
		o, label = outcomeConnect, "error"
	case res.StatusCode >= 500:
		o, label = outcome5xx, "5xx"
	}
	if label != "canceled" {
		c.record(e, now, rtt, o)
	}
	c.upstreamObserver(e, label).Observe(rtt.Seconds())
	var once sync.Once
	return &attempt{e: e, res: res, err: err, cancel: cancel, done: func() { once.Do(func() { e.inflight.Add(-1) }) }}
}

// hedged sends a GET to e and, if no response has come after the hedge
// delay and the retry budget allows, a second copy to another endpoint; the
// first good answer wins and the other is cancelled.
func (h *handler) hedged(ctx context.Context, out *http.Request, body []byte, c *cluster, e *Endpoint, perTry, after time.Duration, tried *[]*Endpoint) *attempt {
	results := make(chan *attempt, 2)
	go func() { results <- h.try(ctx, out, body, c, e, perTry) }()
	timer := time.NewTimer(after)
	defer timer.Stop()
	pending := 1
	var first *attempt
	for {
		select {
		case a := <-results:
			pending--
			good := a.err == nil && !c.retryOn[a.res.StatusCode]
			if good || pending == 0 {
				if first != nil {
					if !good && first.err == nil {
						// Prefer a real response over an error.
						a.close()
						a = first
					} else {
						first.close()
					}
				}
				if pending > 0 {
					go func() { (<-results).close() }()
				}
				return a
			}
			if first != nil {
				first.close()
			}
			first = a
		case <-timer.C:
			if pending == 0 || !c.budget.withdraw(time.Now()) {
				continue
			}
			e2 := c.pick(time.Now(), *tried)
			if e2 == nil || e2 == e {
				continue
			}
			*tried = append(*tried, e2)
			c.m.retries.WithLabelValues(c.cfg.Name, "hedge").Inc()
			pending++
			go func() { results <- h.try(ctx, out, body, c, e2, perTry) }()
		}
	}
}

// respond relays a backend response to the client.
func (h *handler) respond(w http.ResponseWriter, a *attempt) int {
	defer a.close()
	res := a.res
	hdr := w.Header()
	for k, v := range res.Header {
		hdr[k] = v
	}
	stripHop(hdr)
	if len(res.Trailer) > 0 {
		keys := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		hdr["Trailer"] = []string{strings.Join(keys, ", ")}
	}
	w.WriteHeader(res.StatusCode)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	flush := res.ContentLength == -1
	rc := http.NewResponseController(w)
	for {
		n, err := res.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				break
			}
			if flush {
				rc.Flush()
			}
		}
		if err != nil {
			break
		}
	}
	for k, v := range res.Trailer {
		hdr[http.TrailerPrefix+k] = v
	}
	return res.StatusCode
}

// failureMessage is the one-line answer when no attempt succeeded; both the
// net/http path and the fast path use it, so clients see the same text.
func failureMessage(code int) string {
	switch code {
	case http.StatusGatewayTimeout:
		return "the backend did not answer in time"
	case http.StatusBadGateway:
		return "the backend could not be reached"
	}
	return "no healthy endpoint could answer"
}
