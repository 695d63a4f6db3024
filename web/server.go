// Package web is srekit's HTTP face: one site with a page per part, a JSON API
// under /api/v1, /metrics and /healthz. It holds no domain logic: each part
// registers its routes (web/<part>.go) over its own library package.
package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/srekit/srekit/store"
)

// Config is what `srekit serve` sets.
type Config struct {
	// Addr is the listen address; 127.0.0.1:8080 when empty, so a server is
	// never exposed beyond the machine by accident.
	Addr string
	// Token guards every write and every page sent to a person. Empty means
	// writes are refused.
	Token string
	// AuthReads makes reads need the token too (for a server bound beyond localhost).
	AuthReads bool
	// MaxBodyBytes caps request bodies; 10 MiB when zero. Routes may raise it.
	MaxBodyBytes int64
	// Logger receives the access log and errors; slog.Default() when nil.
	Logger *slog.Logger
}

// Server is the srekit web server. Create it with New.
type Server struct {
	Store   *store.Store
	Config  Config
	Metrics *prometheus.Registry
	Log     *slog.Logger

	mux      *http.ServeMux
	requests *prometheus.HistogramVec
	closers  []func()
}

// Part is one part of srekit as the web server shows it. Each web/<part>.go
// file registers its Part from init().
type Part struct {
	Slug    string // URL path segment and nav key: "cost" serves /cost
	Title   string // nav label
	Summary string // one line on the home page
	Order   int    // nav position
	// Mount adds the part's pages and API routes to the server.
	Mount func(s *Server) error
	// Demo fills the store with the part's demo data; called once per
	// database by `serve --demo`.
	Demo func(ctx context.Context, s *store.Store) error
	// Run is the part's background work (schedulers, runners). Serve starts
	// it and cancels ctx on shutdown; servers used only through Handler (as
	// in tests) never run it.
	Run func(ctx context.Context, s *Server)
}

var registered = map[string]Part{}

// Register adds a part to every server created afterwards. It panics on a
// duplicate slug, which is a programming error caught by any test.
func Register(p Part) {
	if _, dup := registered[p.Slug]; dup {
		panic("web: part registered twice: " + p.Slug)
	}
	registered[p.Slug] = p
}

// Parts lists the registered parts in navigation order.
func Parts() []Part {
	ps := make([]Part, 0, len(registered))
	for _, p := range registered {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Order != ps[j].Order {
			return ps[i].Order < ps[j].Order
		}
		return ps[i].Slug < ps[j].Slug
	})
	return ps
}

// New builds a server over an open store and mounts every registered part.
func New(st *store.Store, cfg Config) (*Server, error) {
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:8080"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{Store: st, Config: cfg, Log: cfg.Logger, mux: http.NewServeMux(), Metrics: prometheus.NewRegistry()}
	s.Metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "srekit_http_request_duration_seconds",
		Help:    "Time to serve HTTP requests, by route and status code.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route", "code"})
	s.Metrics.MustRegister(s.requests)

	s.Handle("GET /healthz", http.HandlerFunc(s.healthz))
	s.Handle("GET /metrics", promhttp.HandlerFor(s.Metrics, promhttp.HandlerOpts{}))
	s.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(staticFS())))
	s.Handle("GET /{$}", http.HandlerFunc(s.home))
	s.Handle("GET /api/v1/parts", http.HandlerFunc(s.apiParts))
	for _, p := range Parts() {
		if p.Mount == nil {
			continue
		}
		if err := p.Mount(s); err != nil {
			return nil, fmt.Errorf("mount %s: %w", p.Slug, err)
		}
	}
	return s, nil
}

// OnClose registers fn to run when the server shuts down (background loops
// started by a part stop there).
func (s *Server) OnClose(fn func()) { s.closers = append(s.closers, fn) }

// RouteOption changes how one route is guarded.
type RouteOption func(*route)

type route struct {
	write     bool
	bodyLimit int64
}

// Write marks a route as changing state (or paging a person): it needs the token.
func Write() RouteOption { return func(r *route) { r.write = true } }

// BodyLimit sets the largest request body the route accepts, in bytes.
func BodyLimit(n int64) RouteOption { return func(r *route) { r.bodyLimit = n } }

// Handle registers h for pattern (net/http ServeMux syntax, with a method).
// Routes are reads unless Write() is given: reads are open unless AuthReads is
// set; writes always need the bearer token.
func (s *Server) Handle(pattern string, h http.Handler, opts ...RouteOption) {
	rt := route{bodyLimit: s.Config.MaxBodyBytes}
	for _, o := range opts {
		o(&rt)
	}
	s.mux.Handle(pattern, s.guard(rt, h))
}

// HandleFunc is Handle for a function.
func (s *Server) HandleFunc(pattern string, h http.HandlerFunc, opts ...RouteOption) {
	s.Handle(pattern, h, opts...)
}

func (s *Server) guard(rt route, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rt.write || s.Config.AuthReads {
			if s.Config.Token == "" && rt.write {
				Error(w, http.StatusForbidden, "writes are disabled: start the server with --token or SREKIT_TOKEN")
				return
			}
			if s.Config.Token != "" && !s.authorized(r) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="srekit"`)
				Error(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		if r.ContentLength > rt.bodyLimit {
			Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, rt.bodyLimit))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, rt.bodyLimit)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	got := ""
	if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bearer ") {
		got = strings.TrimPrefix(a, "Bearer ")
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.Config.Token)) == 1
}

// Handler returns the whole site with logging and metrics around it.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		s.mux.ServeHTTP(rec, r)
		routeName := r.Pattern
		if routeName == "" {
			routeName = "unmatched"
		}
		s.requests.WithLabelValues(routeName, fmt.Sprint(rec.code)).Observe(time.Since(start).Seconds())
		s.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "code", rec.code, "duration", time.Since(start))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets streaming handlers (progress, server-sent events) flush through.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// ListenAndServe serves until ctx is cancelled, then shuts down gracefully:
// requests in flight get up to 10 seconds to finish.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Config.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.Config.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is ListenAndServe on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.Log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	bgCtx, stopBackground := context.WithCancel(ctx)
	var background sync.WaitGroup
	for _, p := range Parts() {
		if p.Run != nil {
			background.Add(1)
			go func() {
				defer background.Done()
				p.Run(bgCtx, s)
			}()
		}
	}
	defer func() {
		stopBackground()
		background.Wait()
	}()
	s.Log.Info("serving", "addr", "http://"+ln.Addr().String(), "db", s.Store.Location, "writes", s.Config.Token != "")
	select {
	case err := <-errc:
		s.close()
		return err
	case <-ctx.Done():
	}
	s.Log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	s.close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (s *Server) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.Store.DB.PingContext(ctx); err != nil {
		Error(w, http.StatusServiceUnavailable, "database unreachable: "+err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) apiParts(w http.ResponseWriter, r *http.Request) {
	type part struct {
		Slug, Title, Summary, Path string
	}
	out := []part{}
	for _, p := range Parts() {
		out = append(out, part{p.Slug, p.Title, p.Summary, "/" + p.Slug})
	}
	WriteJSON(w, http.StatusOK, out)
}

// LoadDemo runs every part's Demo once per database: a part whose demo data
// is already there (a marker in settings) is left alone, so restarting with
// --demo never duplicates or overwrites anything.
func LoadDemo(ctx context.Context, st *store.Store) error {
	for _, p := range Parts() {
		if p.Demo == nil {
			continue
		}
		key := "demo_loaded:" + p.Slug
		if _, done, err := st.Setting(ctx, key); err != nil {
			return err
		} else if done {
			continue
		}
		if err := p.Demo(ctx, st); err != nil {
			return fmt.Errorf("demo data for %s: %w", p.Slug, err)
		}
		if err := st.SetSetting(ctx, key, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return err
		}
	}
	return nil
}
