package mesh

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// cluster is a Cluster at run time: its endpoints, balancer, warm
// connection pool, health checks, outlier detector and retry budget.
type cluster struct {
	cfg       Cluster
	region    string // the front door's region, for locality
	bal       Balancer
	transport *http.Transport
	h1        *h1Client // lean path for bodiless plain HTTP/1.1; nil otherwise
	tkey      string    // what the transport depends on, to reuse it across reloads
	scheme    string
	budget    *retryBudget
	m         *metrics
	log       *slog.Logger

	decay, defRTT, penalty time.Duration
	maxConc                int64
	slack                  float64
	margin                 float64 // seconds
	panicAt                float64
	retryOn                map[int]bool
	obs                    observers

	eps    atomic.Pointer[[]*Endpoint]
	epMu   sync.Mutex    // serialises endpoint-list changes
	static []*Endpoint   // from config
	dns    [][]*Endpoint // per DNS entry, latest answer

	stop chan struct{}
	wg   sync.WaitGroup
}

func newCluster(cfg Cluster, region string, old *cluster, m *metrics, log *slog.Logger) (*cluster, error) {
	c := &cluster{
		cfg: cfg, region: region, m: m, log: log.With("cluster", cfg.Name),
		decay:   cfg.DecayTime.D(10 * time.Second),
		defRTT:  cfg.DefaultRTT.D(5 * time.Millisecond),
		penalty: cfg.FailurePenalty.D(time.Second),
		maxConc: int64(cfg.MaxConcurrentPerEndpoint),
		slack:   cfg.LocalitySlack,
		margin:  cfg.LocalityMargin.D(2 * time.Millisecond).Seconds(),
		panicAt: cfg.PanicThreshold,
		stop:    make(chan struct{}),
	}
	if c.maxConc == 0 {
		c.maxConc = 1024
	}
	if c.slack == 0 {
		c.slack = 1.5
	}
	if c.panicAt == 0 {
		c.panicAt = 0.5
	}
	if cfg.Locality == "off" {
		c.region = ""
	}
	c.bal = NewBalancer(cfg.Balancer, c.decay, c.defRTT)
	c.initObservers()
	rc := cfg.Retry
	if rc == nil {
		rc = &RetryConfig{}
	}
	ratio, min := rc.Budget, rc.MinPerSec
	if ratio == 0 {
		ratio = 0.2
	}
	if min == 0 {
		min = 10
	}
	c.budget = newRetryBudget(ratio, min)
	c.retryOn = map[int]bool{}
	for _, s := range rc.On {
		c.retryOn[s] = true
	}
	if len(c.retryOn) == 0 {
		c.retryOn = map[int]bool{502: true, 503: true, 504: true}
	}

	c.tkey = fmt.Sprint(cfg.Protocol, cfg.TLS, cfg.ConnectTimeout, cfg.MaxIdlePerEndpoint)
	if cfg.TLS != nil {
		c.tkey += fmt.Sprint(*cfg.TLS)
	}
	if old != nil && old.tkey == c.tkey {
		c.transport, c.h1 = old.transport, old.h1
	} else {
		t, err := newTransport(cfg)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: %w", cfg.Name, err)
		}
		c.transport = t
		if cfg.TLS == nil && (cfg.Protocol == "" || cfg.Protocol == "http1") {
			idle := cfg.MaxIdlePerEndpoint
			if idle == 0 {
				idle = 256
			}
			d := &net.Dialer{Timeout: cfg.ConnectTimeout.D(time.Second), KeepAlive: 30 * time.Second}
			c.h1 = &h1Client{dial: d.DialContext, maxIdle: idle}
		}
	}
	c.scheme = "http"
	if cfg.TLS != nil {
		c.scheme = "https"
	}

	// Endpoints keep their state across reloads while their address stays.
	prev := map[string]*Endpoint{}
	if old != nil {
		for _, e := range *old.eps.Load() {
			prev[e.Addr] = e
		}
	}
	for _, ec := range cfg.Endpoints {
		e := prev[ec.Address]
		if e == nil || e.Region != ec.Region || e.Zone != ec.Zone {
			e = &Endpoint{Addr: ec.Address, Region: ec.Region, Zone: ec.Zone}
		}
		c.static = append(c.static, e)
	}
	c.dns = make([][]*Endpoint, len(cfg.DNS))
	if old != nil {
		for i, d := range cfg.DNS {
			for j, od := range old.cfg.DNS {
				if d == od && j < len(old.dns) {
					c.dns[i] = old.dns[j]
				}
			}
		}
	}
	c.publish()
	return c, nil
}

// newTransport builds the pooled transport for a cluster: many idle
// connections per endpoint (Go's default of 2 makes every burst dial), keep-
// alives, and HTTP/2 where the backends speak it.
func newTransport(cfg Cluster) (*http.Transport, error) {
	idle := cfg.MaxIdlePerEndpoint
	if idle == 0 {
		idle = 256
	}
	d := &net.Dialer{Timeout: cfg.ConnectTimeout.D(time.Second), KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:           d.DialContext,
		MaxIdleConns:          0, // no global cap: the per-endpoint cap is the one that matters
		MaxIdleConnsPerHost:   idle,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // per-try timeouts bound this
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // pass bodies through as they are
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
	}
	if cfg.TLS != nil {
		tc := &tls.Config{ServerName: cfg.TLS.ServerName, InsecureSkipVerify: cfg.TLS.InsecureSkipVerify}
		if cfg.TLS.CA != "" {
			pem, err := os.ReadFile(cfg.TLS.CA)
			if err != nil {
				return nil, err
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%s: no PEM certificates", cfg.TLS.CA)
			}
			tc.RootCAs = pool
		}
		t.TLSClientConfig = tc
	}
	var p http.Protocols
	switch cfg.Protocol {
	case "h2":
		if cfg.TLS != nil {
			p.SetHTTP2(true)
		} else {
			p.SetUnencryptedHTTP2(true)
		}
		t.Protocols = &p
	case "auto":
		p.SetHTTP1(true)
		p.SetHTTP2(true)
		t.Protocols = &p
	default:
		p.SetHTTP1(true)
		t.Protocols = &p
	}
	return t, nil
}

// start launches the cluster's health checks and DNS refreshers.
func (c *cluster) start() {
	if h := c.cfg.HealthCheck; h != nil {
		c.wg.Add(1)
		go c.healthLoop(*h)
	}
	for i, d := range c.cfg.DNS {
		c.wg.Add(1)
		go c.dnsLoop(i, d)
	}
}

// close stops background work; the transport is closed only if no newer
// cluster reuses it (closeIdle false).
func (c *cluster) close(closeIdle bool) {
	close(c.stop)
	c.wg.Wait()
	if closeIdle {
		c.transport.CloseIdleConnections()
		if c.h1 != nil {
			c.h1.closeIdle()
		}
	}
}

// publish rebuilds the endpoint list from static and discovered endpoints.
func (c *cluster) publish() {
	c.epMu.Lock()
	defer c.epMu.Unlock()
	seen := map[string]bool{}
	var all []*Endpoint
	for _, e := range c.static {
		seen[e.Addr] = true
		all = append(all, e)
	}
	for _, group := range c.dns {
		for _, e := range group {
			if !seen[e.Addr] {
				seen[e.Addr] = true
				all = append(all, e)
			}
		}
	}
	c.eps.Store(&all)
}

// Endpoints returns the cluster's current endpoints.
func (c *cluster) endpoints() []*Endpoint { return *c.eps.Load() }

// pick chooses the endpoint for one attempt, skipping those in tried (unless
// nothing else is left). It applies health and panic mode, the circuit
// breaker and the locality preference, then asks the balancer.
func (c *cluster) pick(now time.Time, tried []*Endpoint) *Endpoint {
	return c.pickWith(now, tried, new(pickScratch))
}

// pickScratch keeps pick's candidate lists from one call to the next, so
// that a connection picking for request after request allocates nothing
// (the lists go to the balancer through an interface, so the compiler
// cannot keep them on the stack).
type pickScratch struct{ cands, open, local []*Endpoint }

// pickWith is pick with the caller's scratch lists.
func (c *cluster) pickWith(now time.Time, tried []*Endpoint, sc *pickScratch) *Endpoint {
	all := c.endpoints()
	cands := sc.cands[:0]
	for _, e := range all {
		if e.available(now) {
			cands = append(cands, e)
		}
	}
	if c.panicAt > 0 && float64(len(cands)) < c.panicAt*float64(len(all)) {
		// Too few healthy endpoints: trusting health now would overload
		// the rest, so spread over all of them (Envoy's panic mode).
		c.m.panics.WithLabelValues(c.cfg.Name).Inc()
		cands = append(cands[:0], all...)
	}
	sc.cands = cands
	open := sc.open[:0]
	for _, e := range cands {
		if e.inflight.Load() < c.maxConc && !slices.Contains(tried, e) {
			open = append(open, e)
		}
	}
	if len(open) == 0 {
		for _, e := range cands {
			if e.inflight.Load() < c.maxConc {
				open = append(open, e)
			}
		}
	}
	sc.open = open
	if len(open) == 0 {
		if len(cands) > 0 {
			c.m.overflow.WithLabelValues(c.cfg.Name).Inc()
		}
		return nil
	}
	if c.region != "" {
		open = c.local(open, now, sc)
	}
	return c.bal.Pick(open, now)
}

// local narrows candidates to the front door's region while it has one whose
// latency is within the slack factor (plus the margin) of the best elsewhere.
func (c *cluster) local(cands []*Endpoint, now time.Time, sc *pickScratch) []*Endpoint {
	local := sc.local[:0]
	bestLocal, bestOther := -1.0, -1.0
	for _, e := range cands {
		l := e.latencyFloor(now, c.defRTT)
		if e.Region == c.region {
			local = append(local, e)
			if bestLocal < 0 || l < bestLocal {
				bestLocal = l
			}
		} else if bestOther < 0 || l < bestOther {
			bestOther = l
		}
	}
	sc.local = local
	if len(local) == 0 || len(local) == len(cands) {
		return cands
	}
	if bestLocal <= bestOther*c.slack+c.margin {
		return local
	}
	return cands
}

// outcome is how one attempt ended, for outlier detection and the EWMA.
type outcome int

const (
	outcomeOK outcome = iota
	outcome5xx
	outcomeConnect
	outcomeTimeout
)

// record feeds one attempt's result to the endpoint's latency estimate and
// to passive outlier detection. A failure is recorded with at least the
// failure penalty as its latency, so a backend that fails fast looks slow.
func (c *cluster) record(e *Endpoint, now time.Time, rtt time.Duration, o outcome) {
	if o != outcomeOK && rtt < c.penalty {
		rtt = c.penalty
	}
	e.observe(now, rtt, c.decay)
	if o == outcomeOK {
		e.observeFloor(now, rtt)
	}
	if o != outcomeOK {
		e.failures.Add(1)
	}
	oc := c.cfg.Outlier
	if oc == nil {
		return
	}
	e.mu.Lock()
	switch o {
	case outcomeOK:
		e.consec5xx, e.consecConn = 0, 0
		// A long healthy stretch (max_ejection since the last ejection)
		// forgives one past ejection, so the next one is shorter again.
		if e.ejections > 0 && now.Sub(e.lastEjected) > oc.MaxEjection.D(300*time.Second) {
			e.ejections--
			e.lastEjected = now
		}
		e.mu.Unlock()
		return
	case outcome5xx, outcomeTimeout:
		e.consec5xx++
	case outcomeConnect:
		e.consecConn++
		e.consec5xx++
	}
	n5, nc := oc.Consecutive5xx, oc.ConsecutiveConnectErrors
	if n5 == 0 {
		n5 = 5
	}
	if nc == 0 {
		nc = 3
	}
	trip := e.consec5xx >= n5 || e.consecConn >= nc
	already := now.Before(e.ejectedUntil)
	e.mu.Unlock()
	if trip && !already {
		c.eject(e, now)
	}
}

// eject removes e from balancing for base ejection time × times ejected
// (capped), unless that would eject more than the maximum share.
func (c *cluster) eject(e *Endpoint, now time.Time) {
	oc := c.cfg.Outlier
	maxPct := oc.MaxEjectedPercent
	if maxPct == 0 {
		maxPct = 50
	}
	all := c.endpoints()
	ejected := 0
	for _, x := range all {
		x.mu.Lock()
		if now.Before(x.ejectedUntil) {
			ejected++
		}
		x.mu.Unlock()
	}
	// Always allow ejecting one endpoint of a cluster with more than one.
	if (ejected+1)*100 > maxPct*len(all) && !(ejected == 0 && len(all) > 1) {
		return
	}
	base := oc.BaseEjection.D(30 * time.Second)
	maxE := oc.MaxEjection.D(300 * time.Second)
	e.mu.Lock()
	e.ejections++
	e.lastEjected = now
	d := base * time.Duration(e.ejections)
	if d > maxE {
		d = maxE
	}
	e.ejectedUntil = now.Add(d)
	e.consec5xx, e.consecConn = 0, 0
	e.mu.Unlock()
	c.m.ejections.WithLabelValues(c.cfg.Name, e.Addr).Inc()
	c.log.Warn("endpoint ejected", "endpoint", e.Addr, "for", d)
}

// healthLoop runs active HTTP checks against every endpoint.
func (c *cluster) healthLoop(h HealthConfig) {
	defer c.wg.Done()
	interval := h.Interval.D(5 * time.Second)
	timeout := h.Timeout.D(time.Second)
	up, down := h.HealthyThreshold, h.UnhealthyThreshold
	if up == 0 {
		up = 2
	}
	if down == 0 {
		down = 3
	}
	expect := h.ExpectStatus
	if expect == 0 {
		expect = 2
	}
	client := &http.Client{Transport: c.transport, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var wg sync.WaitGroup
		for _, e := range c.endpoints() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok := c.check(client, e, h.Path, expect)
				e.mu.Lock()
				if ok {
					e.hcOK, e.hcBad = e.hcOK+1, 0
					if e.unhealthy && e.hcOK >= up {
						e.unhealthy = false
						e.resetLocked()
						c.log.Info("endpoint healthy", "endpoint", e.Addr)
					}
				} else {
					e.hcOK, e.hcBad = 0, e.hcBad+1
					if !e.unhealthy && e.hcBad >= down {
						e.unhealthy = true
						c.log.Warn("endpoint unhealthy", "endpoint", e.Addr)
					}
				}
				e.mu.Unlock()
			}()
		}
		wg.Wait()
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
	}
}

func (c *cluster) check(client *http.Client, e *Endpoint, path string, expect int) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, "GET", c.scheme+"://"+e.Addr+path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "srekit-mesh-health")
	var got time.Time
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { got = time.Now() }}))
	res, err := client.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	ok := res.StatusCode/100 == expect
	if ok && !got.IsZero() {
		e.observeFloor(time.Now(), time.Since(got))
	}
	return ok
}

// dnsLoop re-resolves one DNS discovery entry every refresh interval.
func (c *cluster) dnsLoop(i int, d DNSConfig) {
	defer c.wg.Done()
	refresh := d.Refresh.D(30 * time.Second)
	r := resolverFor(d.Server)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		addrs, err := Resolve(ctx, r, d)
		cancel()
		if err != nil {
			c.log.Warn("dns discovery failed; keeping the last answer", "name", d.Name, "err", err)
		} else {
			c.setDNS(i, addrs, d)
		}
		select {
		case <-c.stop:
			return
		case <-time.After(refresh):
		}
	}
}

func (c *cluster) setDNS(i int, addrs []string, d DNSConfig) {
	prev := map[string]*Endpoint{}
	for _, e := range c.endpoints() {
		prev[e.Addr] = e
	}
	var group []*Endpoint
	for _, a := range addrs {
		e := prev[a]
		if e == nil {
			e = &Endpoint{Addr: a, Region: d.Region, Zone: d.Zone}
		}
		group = append(group, e)
	}
	c.epMu.Lock()
	c.dns[i] = group
	c.epMu.Unlock()
	c.publish()
}

// resolverFor returns the system resolver, or one asking server (host:port).
func resolverFor(server string) *net.Resolver {
	if server == "" {
		return net.DefaultResolver
	}
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, network, server)
	}}
}

// Resolve looks a DNS discovery entry up: A/AAAA give address:port for each
// address, SRV gives target:port for each record (targets resolved).
func Resolve(ctx context.Context, r *net.Resolver, d DNSConfig) ([]string, error) {
	var out []string
	switch strings.ToUpper(d.Type) {
	case "SRV":
		_, srvs, err := r.LookupSRV(ctx, "", "", d.Name)
		if err != nil {
			return nil, err
		}
		for _, s := range srvs {
			ips, err := r.LookupIPAddr(ctx, strings.TrimSuffix(s.Target, "."))
			if err != nil {
				continue
			}
			for _, ip := range ips {
				out = append(out, net.JoinHostPort(ip.IP.String(), strconv.Itoa(int(s.Port))))
			}
		}
	default:
		network := "ip"
		if strings.ToUpper(d.Type) == "AAAA" {
			network = "ip6"
		}
		ips, err := r.LookupIP(ctx, network, d.Name)
		if err != nil {
			return nil, err
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip.String(), strconv.Itoa(d.Port)))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no addresses", d.Name)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// retryBudget allows retries as a share of requests plus a small floor per
// second, so retries can never multiply load during an outage (Linkerd's and
// Finagle's retry budget).
type retryBudget struct {
	mu     sync.Mutex
	tokens float64
	ratio  float64
	min    float64
	last   time.Time
}

func newRetryBudget(ratio, minPerSec float64) *retryBudget {
	return &retryBudget{ratio: ratio, min: minPerSec, tokens: minPerSec}
}

// deposit is called once per original request.
func (b *retryBudget) deposit() {
	b.mu.Lock()
	b.tokens += b.ratio
	if cap := b.ratio*1000 + b.min*10; b.tokens > cap {
		b.tokens = cap
	}
	b.mu.Unlock()
}

// withdraw takes one retry from the budget, if there is one.
func (b *retryBudget) withdraw(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		dt := now.Sub(b.last).Seconds()
		if dt > 0 {
			b.tokens += dt * b.min
		}
		if cap := b.ratio*1000 + b.min*10; b.tokens > cap {
			b.tokens = cap
		}
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}
