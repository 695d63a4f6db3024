// Package mesh is srekit's front-door proxy: it routes each request by host
// and path to a cluster of endpoints labelled with region and zone, and
// sends it to the fastest healthy endpoint.
//
// It follows the shape of Caddy's reverse_proxy: small pieces behind one
// interface each. A Balancer picks among endpoints (power of two choices
// over peak-EWMA latency by default, as Linkerd does; least request; round
// robin); around it sit active health checks, passive outlier ejection with
// panic mode, a locality preference for the front door's region, a circuit
// breaker on requests in flight, and retries of idempotent requests limited
// by a retry budget, with optional hedging of GETs. Connections to backends
// are pooled warm (net/http's default of two idle connections per host makes
// every burst dial). Timings per endpoint and region go to Prometheus and to
// a per-region percentile series (Timings) for the talk's timings chart.
//
// The configuration is a YAML file (Config); Reload swaps it in without
// dropping a request: in-flight requests finish on the state they started
// with, and endpoints keep their pools and statistics.
package mesh

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Mesh is a running proxy. Create it with New, then Start it.
type Mesh struct {
	log     *slog.Logger
	access  *slog.Logger
	metrics *metrics
	timings *Timings

	state atomic.Pointer[state]

	mu        sync.Mutex // serialises Reload and Close
	cfg       *Config
	path      string
	servers   []server
	lns       []net.Listener
	lkeys     []string // each listener's config, to tell which changed on reload
	addrs     []net.Addr
	admin     *http.Server
	adminAddr net.Addr
	stopRoll  chan struct{}
	accessF   *os.File
}

// state is everything a request needs, swapped atomically on reload.
type state struct {
	routes   []*route
	clusters map[string]*cluster
}

type route struct {
	Route
	cluster *cluster
}

// match finds the route for host and path: the longest path prefix, then a
// specific host over the catch-all.
func (s *state) match(host, path string) *route {
	return matchRoute(s.routes, routeHostKey(host), path)
}

// matchRoute is match over a host already in routing form; the fast path
// calls it with the path bytes of its parsed head, so it takes either form
// without converting (and allocating).
func matchRoute[P string | []byte](routes []*route, host string, path P) *route {
	var best *route
	for _, r := range routes {
		if r.Host != "" && !strings.EqualFold(r.Host, host) {
			continue
		}
		if !pathHasPrefix(path, r.PathPrefix) {
			continue
		}
		if best == nil || len(r.PathPrefix) > len(best.PathPrefix) ||
			(len(r.PathPrefix) == len(best.PathPrefix) && best.Host == "" && r.Host != "") {
			best = r
		}
	}
	return best
}

// routeHostKey is a Host value as routes match it: lower case, without port
// or trailing dot.
func routeHostKey(host string) string {
	host = strings.ToLower(host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(host, ".")
}

// pathHasPrefix matches whole segments: /api matches /api and /api/x, not /apix.
func pathHasPrefix[P string | []byte](path P, prefix string) bool {
	if prefix == "" || prefix == "/" {
		return true
	}
	if len(path) < len(prefix) || string(path[:len(prefix)]) != prefix {
		return false
	}
	return len(path) == len(prefix) || prefix[len(prefix)-1] == '/' || path[len(prefix)] == '/'
}

// New builds a mesh from a validated config. path is the file to re-read on
// Reload ("" if the config did not come from a file).
func New(cfg *Config, path string, log *slog.Logger) (*Mesh, error) {
	if log == nil {
		log = slog.Default()
	}
	m := &Mesh{log: log, metrics: newMetrics(), cfg: cfg, path: path}
	m.timings = NewTimings(cfg.TimingsInterval.D(10*time.Second), 360)
	st, err := m.build(cfg, nil)
	if err != nil {
		return nil, err
	}
	m.state.Store(st)
	if err := m.openAccessLog(cfg.AccessLog); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Mesh) openAccessLog(where string) error {
	switch where {
	case "":
		return nil
	case "stderr":
		m.access = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	case "stdout":
		m.access = slog.New(slog.NewJSONHandler(os.Stdout, nil))
	default:
		f, err := os.OpenFile(where, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("access log: %w", err)
		}
		m.accessF = f
		m.access = slog.New(slog.NewJSONHandler(f, nil))
	}
	return nil
}

func (m *Mesh) build(cfg *Config, old *state) (*state, error) {
	st := &state{clusters: map[string]*cluster{}}
	for _, cc := range cfg.Clusters {
		var prev *cluster
		if old != nil {
			prev = old.clusters[cc.Name]
		}
		c, err := newCluster(cc, cfg.Region, prev, m.metrics, m.log)
		if err != nil {
			return nil, err
		}
		st.clusters[cc.Name] = c
	}
	for _, r := range cfg.Routes {
		st.routes = append(st.routes, &route{Route: r, cluster: st.clusters[r.Cluster]})
	}
	return st, nil
}

// Start opens the listeners and the admin listener and starts health checks.
// It returns once everything listens; Close stops it.
func (m *Mesh) Start() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.state.Load().clusters {
		c.start()
	}
	for _, l := range m.cfg.Listeners {
		srv, ln, err := m.listen(l)
		if err != nil {
			m.closeLocked()
			return err
		}
		m.servers = append(m.servers, srv)
		m.lns = append(m.lns, ln)
		m.lkeys = append(m.lkeys, fmt.Sprint(l))
		m.addrs = append(m.addrs, ln.Addr())
		go srv.Serve(ln)
	}
	if a := m.cfg.Admin; a != "off" {
		if a == "" {
			a = "127.0.0.1:9901"
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			m.closeLocked()
			return fmt.Errorf("admin listener: %w", err)
		}
		m.adminAddr = ln.Addr()
		m.admin = &http.Server{Handler: m.AdminHandler(), ReadHeaderTimeout: 10 * time.Second}
		go m.admin.Serve(ln)
	}
	m.stopRoll = make(chan struct{})
	go m.rollLoop(m.stopRoll)
	return nil
}

func (m *Mesh) rollLoop(stop chan struct{}) {
	t := time.NewTicker(m.timings.Interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			m.timings.Roll(now)
		}
	}
}

func (m *Mesh) listen(l Listener) (server, net.Listener, error) {
	maxHdr := l.MaxHeaderBytes
	if maxHdr == 0 {
		maxHdr = 64 << 10
	}
	srv := &http.Server{
		Handler:           &handler{m: m, l: l},
		MaxHeaderBytes:    maxHdr,
		ReadHeaderTimeout: l.ReadHeaderTimeout.D(10 * time.Second),
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
	}
	var p http.Protocols
	p.SetHTTP1(true)
	if l.H2C {
		p.SetUnencryptedHTTP2(true)
	}
	if l.Cert != "" {
		cert, err := tls.LoadX509KeyPair(l.Cert, l.Key)
		if err != nil {
			return nil, nil, fmt.Errorf("listener %s: %w", l.Addr, err)
		}
		p.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	srv.Protocols = &p
	ln, err := net.Listen("tcp", l.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("listener %s: %w", l.Addr, err)
	}
	if srv.TLSConfig != nil {
		return srv, tls.NewListener(ln, srv.TLSConfig), nil
	}
	if l.H2C || l.DisableFastPath {
		return srv, ln, nil
	}
	fs := newFastServer(m, l, srv, ln)
	return fs, fs.listener(), nil
}

// server serves one listener: net/http's server, or the fast path with
// net/http behind it.
type server interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// Addrs returns the listeners' addresses (useful with port 0).
func (m *Mesh) Addrs() []net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]net.Addr(nil), m.addrs...)
}

// AdminAddr returns the admin listener's address, nil when it is off.
func (m *Mesh) AdminAddr() net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.adminAddr
}

// Timings returns the per-region timings.
func (m *Mesh) Timings() *Timings { return m.timings }

// Report returns the timings with the endpoints' current state.
func (m *Mesh) Report() TimingsReport {
	rep := m.timings.Report()
	rep.Endpoints = m.Endpoints()
	return rep
}

// Endpoints returns a snapshot of every endpoint of every cluster.
func (m *Mesh) Endpoints() []EndpointStatus {
	now := time.Now()
	var out []EndpointStatus
	st := m.state.Load()
	for _, cc := range m.currentConfig().Clusters {
		if c := st.clusters[cc.Name]; c != nil {
			for _, e := range c.endpoints() {
				out = append(out, e.Status(now))
			}
		}
	}
	return out
}

func (m *Mesh) currentConfig() *Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// Reload re-reads the config file and swaps it in. A bad file leaves the
// running config as it was. Listeners are added, removed and reopened as
// the file says; an admin change needs a restart and is reported as an
// error after the rest has been applied.
func (m *Mesh) Reload() error {
	if m.path == "" {
		return errors.New("the mesh was not started from a file")
	}
	cfg, err := LoadConfig(m.path)
	if err != nil {
		m.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	return m.Apply(cfg)
}

// Apply swaps in a new config: new clusters are built (reusing endpoints and
// warm transports), published atomically, and the old ones stopped. Requests
// in flight keep the state they started with, so none is dropped.
func (m *Mesh) Apply(cfg *Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := m.state.Load()
	st, err := m.build(cfg, old)
	if err != nil {
		m.metrics.reloads.WithLabelValues("error").Inc()
		return err
	}
	if m.servers != nil {
		for _, c := range st.clusters {
			c.start()
		}
	}
	m.state.Store(st)
	reused := map[*http.Transport]bool{}
	for _, c := range st.clusters {
		reused[c.transport] = true
	}
	for _, c := range old.clusters {
		if m.servers != nil {
			go func() {
				// Let requests on the old state finish before idle
				// connections of a replaced transport are closed.
				time.Sleep(time.Second)
				c.close(!reused[c.transport])
			}()
		}
	}
	var lerr error
	if m.servers != nil {
		lerr = m.applyListeners(cfg.Listeners)
	}
	adminChanged := cfg.Admin != m.cfg.Admin
	cfg.Admin = m.cfg.Admin
	if lerr != nil {
		cfg.Listeners = m.cfg.Listeners
	}
	m.cfg = cfg
	m.metrics.reloads.WithLabelValues("ok").Inc()
	m.log.Info("config reloaded", "clusters", len(cfg.Clusters), "routes", len(cfg.Routes), "listeners", len(m.servers))
	if lerr != nil {
		return fmt.Errorf("routes and clusters reloaded, listeners not all: %w", lerr)
	}
	if adminChanged {
		return errors.New("routes, clusters and listeners reloaded; an admin change needs a restart")
	}
	return nil
}

// applyListeners closes the listeners no longer configured (their requests
// in flight finish) and opens the new ones. A listener whose settings
// changed is closed and reopened on its address: requests in flight are
// kept, but a connection attempt in that instant can be refused.
func (m *Mesh) applyListeners(want []Listener) error {
	keep := map[string]int{}
	for _, l := range want {
		keep[fmt.Sprint(l)]++
	}
	var servers []server
	var lns []net.Listener
	var keys []string
	var addrs []net.Addr
	for i, k := range m.lkeys {
		if keep[k] > 0 {
			keep[k]--
			servers, lns, keys, addrs = append(servers, m.servers[i]), append(lns, m.lns[i]), append(keys, k), append(addrs, m.addrs[i])
			continue
		}
		m.lns[i].Close() // stop accepting now, so the address is free
		srv := m.servers[i]
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		}()
	}
	var errs []error
	for _, l := range want {
		k := fmt.Sprint(l)
		if keep[k] == 0 {
			continue
		}
		keep[k]--
		srv, ln, err := m.listen(l)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		servers, lns, keys, addrs = append(servers, srv), append(lns, ln), append(keys, k), append(addrs, ln.Addr())
		go srv.Serve(ln)
	}
	m.servers, m.lns, m.lkeys, m.addrs = servers, lns, keys, addrs
	return errors.Join(errs...)
}

// Close stops the listeners, letting requests in flight finish (up to ctx),
// and the clusters' background work.
func (m *Mesh) Close(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, s := range m.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	m.closeLocked()
	return errors.Join(errs...)
}

func (m *Mesh) closeLocked() {
	if m.admin != nil {
		m.admin.Close()
		m.admin = nil
	}
	if m.stopRoll != nil {
		close(m.stopRoll)
		m.stopRoll = nil
	}
	if st := m.state.Load(); st != nil && m.servers != nil {
		for _, c := range st.clusters {
			c.close(true)
		}
	}
	m.servers, m.lns, m.lkeys, m.addrs = nil, nil, nil, nil
	if m.accessF != nil {
		m.accessF.Close()
		m.accessF = nil
	}
}

// AdminHandler serves /metrics, /healthz, /debug/pprof/, GET /api/v1/mesh/timings,
// GET /api/v1/mesh/endpoints and POST /api/v1/mesh/reload. It listens on
// loopback by default: it can reload the config.
func (m *Mesh) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.metrics.reg, promhttp.HandlerOpts{}))
	// Profiles of the proxy itself, for `srekit flame` or `go tool pprof`.
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	// An execution trace shows what held up a request (`go tool trace`).
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	mux.HandleFunc("GET /api/v1/mesh/timings", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, m.Report()) })
	mux.HandleFunc("GET /api/v1/mesh/endpoints", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, m.Endpoints()) })
	mux.HandleFunc("POST /api/v1/mesh/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := m.Reload(); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, 200, map[string]string{"status": "reloaded"})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
