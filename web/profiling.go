package web

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/profiling"
	"github.com/srekit/srekit/store"
)

// The profiling part: ingest (srekit's API and Pyroscope's /ingest), the
// capture queue agents long-poll, schedules, the Alertmanager receiver, and
// the browse/merge/search/diff views. The logic is in package profiling.

// profilingUploadLimit is the largest profile upload accepted (compressed);
// profiling.Limits bounds what it may inflate to.
const profilingUploadLimit = 64 << 20

// EnvAgentToken names the token agents may use instead of the write token,
// so that hosts can capture and upload without being able to change anything else.
const EnvAgentToken = "SREKIT_AGENT_TOKEN"

// EnvPull lists pprof endpoints the server captures from itself, without an
// agent: "api=http://10.0.0.5:6060,worker=http://10.0.0.6:6060". They appear
// as the agent "server-HOSTNAME".
const EnvPull = "SREKIT_PROFILING_PULL"

// EnvOTLP enables OTLP profiles ingest (an alpha signal upstream):
// format=otlp|otlp-json on /ingest and the OTLP/HTTP path /v1development/profiles.
const EnvOTLP = "SREKIT_PROFILING_OTLP"

// EnvMaxInflate overrides how many bytes one upload may decompress to
// (256 MiB by default).
const EnvMaxInflate = "SREKIT_PROFILING_MAX_INFLATE"

func init() {
	Register(Part{
		Slug:    "profiling",
		Title:   "Profiling",
		Summary: "on-demand flame graphs from any host: stored snapshots, merge, search, diff, continuous and alert-triggered capture",
		Order:   35,
		Mount:   mountProfiling,
		Demo:    profilingDemo,
		Run:     runProfiling,
	})
}

type profilingWeb struct {
	s          *Server
	svc        *profiling.Service
	agentToken string
	otlp       bool
	sharing    shareConfig
	pull       []profiling.PprofTarget // from EnvPull
}

// profilingParts maps a server to its profiling part, for Run.
var profilingParts sync.Map // *Server -> *profilingWeb

func mountProfiling(s *Server) error {
	p := &profilingWeb{s: s, svc: profiling.NewService(s.Store), agentToken: os.Getenv(EnvAgentToken)}
	if v := os.Getenv(EnvMaxInflate); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("%s=%q: want a number of bytes", EnvMaxInflate, v)
		}
		p.svc.Limits.MaxDecompressed = n
	}
	p.otlp = os.Getenv(EnvOTLP) == "1" || os.Getenv(EnvOTLP) == "true"
	var err error
	if p.sharing, err = readShareConfig(); err != nil {
		return err
	}
	if v := os.Getenv(EnvPull); v != "" {
		for _, f := range strings.Split(v, ",") {
			name, u, ok := strings.Cut(strings.TrimSpace(f), "=")
			if !ok || name == "" || u == "" {
				return fmt.Errorf("%s: %q: want name=http://host:port,...", EnvPull, f)
			}
			p.pull = append(p.pull, profiling.PprofTarget{Name: name, URL: u})
		}
	}
	up := BodyLimit(profilingUploadLimit)
	if p.otlp {
		s.HandleFunc("POST /v1development/profiles", p.otlpHTTP, Write(), up)
	}
	s.HandleFunc("GET /profiling", p.page)
	s.HandleFunc("POST /ingest", p.ingest, Write(), up)
	s.HandleFunc("POST /api/v1/profiling/ingest", p.ingest, Write(), up)
	s.HandleFunc("GET /api/v1/profiling/snapshots", p.listSnapshots)
	s.HandleFunc("GET /api/v1/profiling/snapshots/{id}", p.getSnapshot)
	s.HandleFunc("DELETE /api/v1/profiling/snapshots/{id}", p.deleteSnapshot, Write())
	s.HandleFunc("GET /api/v1/profiling/snapshots/{id}/heatmap", p.heatmap)
	s.HandleFunc("GET /api/v1/profiling/merge", p.merge)
	s.HandleFunc("GET /api/v1/profiling/diff", p.diff)
	s.HandleFunc("GET /api/v1/profiling/search", p.search)
	s.HandleFunc("GET /api/v1/profiling/stats", p.stats)
	s.HandleFunc("POST /api/v1/profiling/compact", p.compact, Write())
	// Agent routes check the agent token (or the write token) themselves.
	s.HandleFunc("POST /api/v1/profiling/agents", p.agentAuth(p.register))
	s.HandleFunc("GET /api/v1/profiling/agents", p.listAgents)
	s.HandleFunc("GET /api/v1/profiling/agents/{name}/next", p.agentAuth(p.next))
	s.HandleFunc("POST /api/v1/profiling/captures/{id}/result", p.agentAuth(p.result), up)
	s.HandleFunc("POST /api/v1/profiling/captures/{id}/fail", p.agentAuth(p.fail))
	s.HandleFunc("POST /api/v1/profiling/captures", p.requestCapture, Write())
	s.HandleFunc("GET /api/v1/profiling/captures", p.listCaptures)
	s.HandleFunc("GET /api/v1/profiling/captures/{id}", p.getCapture)
	s.HandleFunc("GET /api/v1/profiling/schedules", p.listSchedules)
	s.HandleFunc("POST /api/v1/profiling/schedules", p.saveSchedule, Write())
	s.HandleFunc("PUT /api/v1/profiling/schedules/{id}", p.saveSchedule, Write())
	s.HandleFunc("DELETE /api/v1/profiling/schedules/{id}", p.deleteSchedule, Write())
	s.HandleFunc("GET /api/v1/profiling/alert-rules", p.listRules)
	s.HandleFunc("POST /api/v1/profiling/alert-rules", p.saveRule, Write())
	s.HandleFunc("DELETE /api/v1/profiling/alert-rules/{id}", p.deleteRule, Write())
	s.HandleFunc("POST /api/v1/alerts/alertmanager", p.alertmanager, Write())

	s.HandleFunc("POST /api/v1/profiling/share", p.share, Write())
	s.HandleFunc("GET /api/v1/profiling/agent-tokens", p.listAgentTokens)
	s.HandleFunc("POST /api/v1/profiling/agent-tokens", p.issueAgentToken, Write())
	s.HandleFunc("DELETE /api/v1/profiling/agent-tokens/{agent}", p.revokeAgentToken, Write())
	s.HandleFunc("GET /api/v1/profiling/pull-targets", p.listPullTargets)
	s.HandleFunc("POST /api/v1/profiling/pull-targets", p.savePullTarget, Write())
	s.HandleFunc("DELETE /api/v1/profiling/pull-targets/{name}", p.deletePullTarget, Write())
	profilingParts.Store(s, p)
	s.OnClose(func() { profilingParts.Delete(s) })
	return nil
}

// runProfiling is the part's background work under Serve: the schedule and
// retention loop, and the server's own pull captures.
func runProfiling(ctx context.Context, s *Server) {
	v, ok := profilingParts.Load(s)
	if !ok {
		return
	}
	p := v.(*profilingWeb)
	var wg sync.WaitGroup
	host, _ := os.Hostname()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := p.svc.RunPullStored(ctx, "server-"+host, p.pull, s.Log); err != nil {
			s.Log.Error("profiling pull", "err", err)
		}
	}()
	p.loop(ctx)
	wg.Wait()
}

// loop fires due schedules every second, fails captures nobody finished, and
// applies retention hourly. It stops with the server, or when the store is closed.
func (p *profilingWeb) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastExpire time.Time
	lastCompact := time.Now().Add(-55 * time.Minute) // first pass five minutes after start
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if _, err := p.svc.RunDue(ctx); err != nil {
			if ctx.Err() != nil || strings.Contains(err.Error(), "database is closed") {
				return
			}
			p.s.Log.Warn("profiling schedules", "err", err)
		}
		now := time.Now()
		if now.Sub(lastExpire) > 30*time.Second {
			lastExpire = now
			if _, err := p.svc.ExpireStale(ctx, 10*time.Minute); err != nil {
				p.s.Log.Warn("profiling expire", "err", err)
			}
		}
		if now.Sub(lastCompact) > time.Hour {
			lastCompact = now
			if r, err := p.svc.DB.Compact(ctx, profiling.DefaultRetention, now); err != nil {
				if ctx.Err() != nil || strings.Contains(err.Error(), "database is closed") {
					return
				}
				p.s.Log.Warn("profiling retention", "err", err)
			} else if r.Merged > 0 || r.Deleted > 0 {
				p.s.Log.Info("profiling retention", "merged", r.Merged, "created", r.Created, "deleted", r.Deleted)
			}
		}
	}
}

// agentAuth lets agents in with the shared agent token (EnvAgentToken), the
// write token, or a per-agent token; a per-agent token binds the request to
// its agent's name, which the handlers check with p.asAgent.
func (p *profilingWeb) agentAuth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		ok := false
		for _, tok := range []string{p.agentToken, p.s.Config.Token} {
			if tok != "" && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1 {
				ok = true
			}
		}
		if !ok && got != "" {
			name, err := p.svc.DB.AgentForToken(r.Context(), got)
			if err != nil {
				Error(w, http.StatusInternalServerError, err.Error())
				return
			}
			if name != "" {
				r = r.WithContext(context.WithValue(r.Context(), boundAgentKey{}, name))
				ok = true
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="srekit"`)
			Error(w, http.StatusUnauthorized, "missing or wrong agent token (give the agent its own token, "+EnvAgentToken+" or the write token)")
			return
		}
		h(w, r)
	}
}

type boundAgentKey struct{}

// asAgent refuses (403) a request made with another agent's per-agent token.
func (p *profilingWeb) asAgent(w http.ResponseWriter, r *http.Request, name string) bool {
	bound, _ := r.Context().Value(boundAgentKey{}).(string)
	if bound != "" && bound != name {
		Error(w, http.StatusForbidden, fmt.Sprintf("this token belongs to agent %q, not %q", bound, name))
		return false
	}
	return true
}

// asCaptureAgent is asAgent for the agent a capture was requested of.
func (p *profilingWeb) asCaptureAgent(w http.ResponseWriter, r *http.Request, id int64) bool {
	if _, bound := r.Context().Value(boundAgentKey{}).(string); !bound {
		return true
	}
	c, err := p.svc.Capture(r.Context(), id)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return false
	}
	return p.asAgent(w, r, c.Agent)
}

// errStatus maps library errors to HTTP statuses.
func errStatus(err error) int {
	var tooBig *http.MaxBytesError
	switch {
	case errors.Is(err, profiling.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, profiling.ErrTooLarge), errors.As(err, &tooBig):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, profiling.ErrUnknownAgent), errors.Is(err, profiling.ErrNoTimeline):
		return http.StatusNotFound
	}
	return http.StatusBadRequest
}

// parseTime reads a time parameter (see profiling.ParseTime).
func parseTime(v string, now time.Time) (time.Time, error) { return profiling.ParseTime(v, now) }

// snapshotQuery reads a selection from URL parameters, each name prefixed
// with prefix (for diff's before_ and after_): query, kind, from, until, ids,
// resolution, unit, limit.
func snapshotQuery(r *http.Request, prefix string) (profiling.Query, error) {
	v := r.URL.Query()
	get := func(k string) string { return v.Get(prefix + k) }
	var q profiling.Query
	var err error
	if q.Selector, err = profiling.ParseSelector(get("query")); err != nil {
		return q, err
	}
	q.Kind = get("kind")
	now := time.Now()
	if q.From, err = parseTime(get("from"), now); err != nil {
		return q, err
	}
	if q.Until, err = parseTime(get("until"), now); err != nil {
		return q, err
	}
	if ids := get("ids"); ids != "" {
		for _, f := range strings.Split(ids, ",") {
			id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
			if err != nil {
				return q, fmt.Errorf("ids: %q is not a snapshot id", f)
			}
			q.IDs = append(q.IDs, id)
		}
	}
	q.Resolution = get("resolution")
	q.Unit = get("unit")
	if l := get("limit"); l != "" {
		if q.Limit, err = strconv.Atoi(l); err != nil || q.Limit < 0 {
			return q, fmt.Errorf("limit %q: want a positive number", l)
		}
	}
	return q, nil
}

// pyroscopeKinds are the profile type suffixes Pyroscope clients append to
// the application name (app.cpu, app.alloc_space, ...).
var pyroscopeKinds = []string{"cpu", "itimer", "wall", "alloc_objects", "alloc_space", "inuse_objects", "inuse_space",
	"goroutines", "goroutine", "mutex_count", "mutex_duration", "block_count", "block_duration"}

// ingest accepts uploads in srekit's and Pyroscope's shape:
// POST /ingest?name=app{k=v}&from=&until=&format=folded|lines|pprof|perf[&kind=&units=]
// with the profile as the body, or (pprof) a multipart form with a "profile" file.
func (p *profilingWeb) ingest(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	name := v.Get("name")
	if name == "" {
		name = v.Get("labels")
	}
	labels, err := profiling.ParseName(name)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	kind := v.Get("kind")
	if svc := labels["service"]; svc != "" && kind == "" {
		for _, k := range pyroscopeKinds {
			if base, ok := strings.CutSuffix(svc, "."+k); ok && base != "" {
				labels["service"] = base
				kind = k
				if k == "goroutines" {
					kind = "goroutine"
				}
				break
			}
		}
	}
	format := v.Get("format")
	data, err := p.uploadBody(r)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	if format == "" {
		format = profiling.FormatFolded
		if len(data) > 1 && data[0] == 0x1f && data[1] == 0x8b {
			format = profiling.FormatPprof
		}
	}
	now := time.Now()
	until, err := parseTime(v.Get("until"), now)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	from, err := parseTime(v.Get("from"), now)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	isOTLP := format == profiling.FormatOTLP || format == profiling.FormatOTLPJSON
	if isOTLP && !p.otlp {
		Error(w, http.StatusBadRequest, "OTLP profiles are an alpha signal and are off: start the server with "+EnvOTLP+"=1")
		return
	}
	if kind == "" && format != profiling.FormatPprof && !isOTLP {
		kind = "cpu"
	}
	ds, err := profiling.Decode(data, format, kind, v.Get("units"), p.svc.Limits)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	source := format + " upload"
	if spy := v.Get("spyName"); spy == "otlp" {
		source = "otlp"
	} else if spy != "" {
		source = "pyroscope:" + spy
	}
	var ids []int64
	dups := 0
	timelines := []int64{}
	note := ""
	for _, d := range ds {
		start, end := from, until
		if end.IsZero() {
			end = now
			if d.TimeNanos > 0 {
				end = time.Unix(0, d.TimeNanos+d.DurationNanos)
			}
		}
		if start.IsZero() {
			start = end
			if d.TimeNanos > 0 {
				start = time.Unix(0, d.TimeNanos)
			}
		}
		l := labels
		if len(d.Labels) > 0 {
			l = labels.Clone()
			for k, v := range d.Labels {
				if _, set := l[k]; !set {
					l[k] = v
				}
			}
		}
		snap := &profiling.Snapshot{Kind: d.Kind, Unit: d.Unit, Labels: l, Start: start, End: end, Source: source, Profile: d.Profile, Timeline: d.Timeline}
		id, dup, err := p.svc.DB.Save(r.Context(), snap)
		if err != nil {
			Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		if dup {
			dups++
		}
		ids = append(ids, id)
		if snap.HasTimeline {
			timelines = append(timelines, id)
		} else if d.NoTimeline != "" {
			note = d.NoTimeline
		} else if d.Timeline != nil {
			note = "the timeline is over the stored size limit"
		}
	}
	out := map[string]any{"snapshots": ids, "duplicates": dups, "timelines": timelines}
	if note != "" {
		out["timeline_note"] = note
	}
	WriteJSON(w, http.StatusOK, out)
}

// otlpHTTP is the OTLP/HTTP profiles receiver (POST /v1development/profiles,
// protobuf or JSON by Content-Type); labels come from resource attributes.
func (p *profilingWeb) otlpHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	q.Set("format", profiling.FormatOTLP)
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		q.Set("format", profiling.FormatOTLPJSON)
	}
	q.Set("spyName", "otlp")
	r.URL.RawQuery = q.Encode()
	if q.Get("format") == profiling.FormatOTLPJSON {
		p.ingest(w, r)
		return
	}
	// A protobuf client expects an ExportProfilesServiceResponse: an empty
	// message (zero bytes) on success; errors stay srekit's JSON line.
	rec := &bufferedResponse{header: http.Header{}, code: http.StatusOK}
	p.ingest(rec, r)
	if rec.code == http.StatusOK {
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
		return
	}
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.code)
	w.Write(rec.body.Bytes())
}

type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header         { return b.header }
func (b *bufferedResponse) WriteHeader(code int)        { b.code = code }
func (b *bufferedResponse) Write(p []byte) (int, error) { return b.body.Write(p) }

// uploadBody returns the profile bytes of a request: the "profile" part of a
// multipart form (Pyroscope's pprof upload) or the whole body.
func (p *profilingWeb) uploadBody(r *http.Request) ([]byte, error) {
	mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return ReadBody(r)
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, errors.New(`multipart upload has no "profile" part`)
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, fmt.Errorf("%w: over %d bytes", profiling.ErrTooLarge, tooBig.Limit)
			}
			return nil, fmt.Errorf("multipart upload: %w", err)
		}
		if part.FormName() != "profile" {
			continue
		}
		var b bytes.Buffer
		if _, err := io.Copy(&b, part); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return nil, fmt.Errorf("%w: over %d bytes", profiling.ErrTooLarge, tooBig.Limit)
			}
			return nil, fmt.Errorf("multipart upload: %w", err)
		}
		return b.Bytes(), nil
	}
}

func (p *profilingWeb) listSnapshots(w http.ResponseWriter, r *http.Request) {
	q, err := snapshotQuery(r, "")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.Limit == 0 {
		q.Limit = 1000
	}
	ss, err := p.svc.DB.List(r.Context(), q)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, ss)
}

func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not a number", name, r.PathValue(name))
	}
	return id, nil
}

func (p *profilingWeb) getSnapshot(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if rs, ok, err := rangeOf(r, id); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	} else if ok {
		p.writeRanges(w, r, rs)
		return
	}
	snap, err := p.svc.DB.Get(r.Context(), id)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	title := fmt.Sprintf("%s %s %s", snap.Kind, snap.Labels, snap.End.Format(time.RFC3339))
	p.writeProfile(w, r, snap.Profile, title, snap)
}

func (p *profilingWeb) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := p.svc.DB.Delete(r.Context(), []int64{id}); err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"deleted": id})
}

// writeProfile answers with the profile in the asked format: json (the
// metadata), folded, svg, or html (one offline file, no outside links).
func (p *profilingWeb) writeProfile(w http.ResponseWriter, r *http.Request, prof *flame.Profile, title string, meta any) {
	v := r.URL.Query()
	opts := flame.RenderOptions{Title: title, Search: v.Get("search"), MaxNodes: 20000}
	if mw := v.Get("min_width"); mw != "" {
		f, err := strconv.ParseFloat(mw, 64)
		if err != nil {
			Error(w, http.StatusBadRequest, "min_width: want a number of pixels")
			return
		}
		opts.MinWidth = f
	}
	switch prof.Unit {
	case "bytes":
		opts.Colors = "mem"
	}
	if prof.Diff {
		opts.Colors = ""
	}
	switch v.Get("format") {
	case "", "json":
		WriteJSON(w, http.StatusOK, meta)
	case "folded":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		prof.WriteFolded(w)
	case "svg":
		var b bytes.Buffer
		if err := flame.Render(&b, prof, opts); err != nil {
			Error(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		w.Header().Set("Content-Type", "image/svg+xml")
		w.Header().Set("Content-Security-Policy", exportCSP)
		w.Write(b.Bytes())
	case "html":
		var b bytes.Buffer
		if err := flame.RenderHTML(&b, prof, opts); err != nil {
			Error(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", exportCSP)
		if v.Get("download") != "" {
			w.Header().Set("Content-Disposition", `attachment; filename="profile.html"`)
		}
		w.Write(withExportCSP(b.Bytes()))
	default:
		Error(w, http.StatusBadRequest, "format: want json, folded, svg or html")
	}
}

func (p *profilingWeb) merge(w http.ResponseWriter, r *http.Request) {
	if v := r.URL.Query().Get("ranges"); v != "" {
		rs, err := profiling.ParseRanges(v)
		if err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		p.writeRanges(w, r, rs)
		return
	}
	q, err := snapshotQuery(r, "")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	m, err := p.svc.DB.Merge(r.Context(), q)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	title := fmt.Sprintf("%s: %d snapshots merged", m.Kind, m.Snapshots)
	p.writeProfile(w, r, m.Profile, title, m)
}

func (p *profilingWeb) diff(w http.ResponseWriter, r *http.Request) {
	before, err := snapshotQuery(r, "before_")
	if err != nil {
		Error(w, http.StatusBadRequest, "before: "+err.Error())
		return
	}
	after, err := snapshotQuery(r, "after_")
	if err != nil {
		Error(w, http.StatusBadRequest, "after: "+err.Error())
		return
	}
	if k := r.URL.Query().Get("kind"); k != "" {
		before.Kind, after.Kind = k, k
	}
	d, a, b, err := p.svc.DB.Diff(r.Context(), before, after)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	if r.URL.Query().Get("normalize") != "false" {
		d.Normalize()
	}
	meta := map[string]any{"before": a, "after": b, "stacks": len(d.Samples), "before_total": a.Total, "after_total": b.Total}
	p.writeProfile(w, r, d, fmt.Sprintf("%s diff: %d vs %d snapshots", a.Kind, a.Snapshots, b.Snapshots), meta)
}

func (p *profilingWeb) search(w http.ResponseWriter, r *http.Request) {
	q, err := snapshotQuery(r, "")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	pat := r.URL.Query().Get("pattern")
	if pat == "" {
		Error(w, http.StatusBadRequest, "pattern: give a function regex, e.g. pattern=json\\.Marshal")
		return
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		Error(w, http.StatusBadRequest, "pattern: "+err.Error())
		return
	}
	if q.Kind == "" {
		q.Kind = "cpu"
	}
	rows, err := p.svc.DB.Search(r.Context(), q, re, r.URL.Query().Get("group_by"))
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, rows)
}

func (p *profilingWeb) stats(w http.ResponseWriter, r *http.Request) {
	st, err := p.svc.DB.Stats(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, st)
}

func (p *profilingWeb) compact(w http.ResponseWriter, r *http.Request) {
	res, err := p.svc.DB.Compact(r.Context(), profiling.DefaultRetention, time.Now())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

func (p *profilingWeb) register(w http.ResponseWriter, r *http.Request) {
	var a profiling.Agent
	if err := DecodeJSON(r, &a); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if !p.asAgent(w, r, a.Name) {
		return
	}
	if err := p.svc.Register(r.Context(), a); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"name": a.Name, "next": "/api/v1/profiling/agents/" + a.Name + "/next"})
}

func (p *profilingWeb) listAgents(w http.ResponseWriter, r *http.Request) {
	as, err := p.svc.Agents(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, as)
}

// next is the agents' long poll: it answers with a capture to run, or 204
// after wait seconds (25 by default, at most 55).
func (p *profilingWeb) next(w http.ResponseWriter, r *http.Request) {
	wait := 25 * time.Second
	if s := r.URL.Query().Get("wait"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 55 {
			Error(w, http.StatusBadRequest, "wait: want 0 to 55 seconds")
			return
		}
		wait = time.Duration(n) * time.Second
	}
	if !p.asAgent(w, r, r.PathValue("name")) {
		return
	}
	c, err := p.svc.Next(r.Context(), r.PathValue("name"), wait)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	if c == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (p *profilingWeb) result(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if !p.asCaptureAgent(w, r, id) {
		return
	}
	v := r.URL.Query()
	data, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	res := profiling.CaptureResult{Format: v.Get("format"), Data: data, Preroll: v.Get("preroll") == "true"}
	now := time.Now()
	if res.Start, err = parseTime(v.Get("start"), now); err == nil {
		res.End, err = parseTime(v.Get("end"), now)
	}
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := p.svc.Complete(r.Context(), id, res)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (p *profilingWeb) fail(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if !p.asCaptureAgent(w, r, id) {
		return
	}
	var body struct {
		Error string `json:"error"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := p.svc.Fail(r.Context(), id, body.Error); err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"id": id, "status": profiling.StatusFailed})
}

func (p *profilingWeb) requestCapture(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Agent   string            `json:"agent"`
		Target  string            `json:"target"`
		Kind    string            `json:"kind"`
		Seconds int               `json:"seconds"`
		Preroll bool              `json:"preroll"`
		Labels  map[string]string `json:"labels"`
		// perf only: the process (0 or absent: the whole host) and Hz.
		PID       int `json:"pid"`
		Frequency int `json:"frequency"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := p.svc.Request(r.Context(), profiling.Capture{Agent: body.Agent, Target: body.Target, Kind: body.Kind,
		Seconds: body.Seconds, Preroll: body.Preroll, Labels: body.Labels, Reason: "on demand", PID: body.PID, Frequency: body.Frequency})
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusCreated, c)
}

func (p *profilingWeb) listCaptures(w http.ResponseWriter, r *http.Request) {
	n, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	cs, err := p.svc.Captures(r.Context(), n)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, cs)
}

func (p *profilingWeb) getCapture(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c, err := p.svc.Capture(r.Context(), id)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, c)
}

func (p *profilingWeb) listSchedules(w http.ResponseWriter, r *http.Request) {
	scs, err := p.svc.Schedules(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, scs)
}

func (p *profilingWeb) saveSchedule(w http.ResponseWriter, r *http.Request) {
	var sc profiling.Schedule
	if err := DecodeJSON(r, &sc); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if r.Method == http.MethodPut {
		id, err := pathID(r, "id")
		if err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		sc.ID = id
	} else {
		sc.ID = 0
	}
	out, err := p.svc.SaveSchedule(r.Context(), sc)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (p *profilingWeb) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := p.svc.DeleteSchedule(r.Context(), id); err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"deleted": id})
}

func (p *profilingWeb) listRules(w http.ResponseWriter, r *http.Request) {
	rs, err := p.svc.AlertRules(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, rs)
}

func (p *profilingWeb) saveRule(w http.ResponseWriter, r *http.Request) {
	var rule profiling.AlertRule
	if err := DecodeJSON(r, &rule); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := p.svc.SaveAlertRule(r.Context(), rule)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, out)
}

func (p *profilingWeb) deleteRule(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := p.svc.DeleteAlertRule(r.Context(), id); err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"deleted": id})
}

// alertmanager is Alertmanager's webhook receiver (webhook_configs url:
// http://srekit:8080/api/v1/alerts/alertmanager, with the write token as
// http_config.authorization.credentials).
func (p *profilingWeb) alertmanager(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	payload, err := profiling.ParseAlertmanager(body)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	out, err := p.svc.HandleAlerts(r.Context(), payload)
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"outcomes": out})
}

// listPullTargets lists the stored pull targets and those of EnvPull.
func (p *profilingWeb) listPullTargets(w http.ResponseWriter, r *http.Request) {
	ts, err := p.svc.DB.PullTargets(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	env := []map[string]string{}
	for _, t := range p.pull {
		env = append(env, map[string]string{"name": t.Name, "url": t.URL})
	}
	WriteJSON(w, http.StatusOK, map[string]any{"stored": ts, "environment": env})
}

func (p *profilingWeb) savePullTarget(w http.ResponseWriter, r *http.Request) {
	var t profiling.PullTarget
	if err := DecodeJSON(r, &t); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := p.svc.DB.SavePullTarget(r.Context(), t); err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, t)
}

func (p *profilingWeb) deletePullTarget(w http.ResponseWriter, r *http.Request) {
	if err := p.svc.DB.DeletePullTarget(r.Context(), r.PathValue("name")); err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"deleted": r.PathValue("name")})
}

func (p *profilingWeb) listAgentTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := p.svc.DB.AgentTokens(r.Context())
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, ts)
}

// issueAgentToken answers POST {"agent": NAME} with a new token for that
// agent, shown this once.
func (p *profilingWeb) issueAgentToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Agent string `json:"agent"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	tok, err := p.svc.DB.IssueAgentToken(r.Context(), body.Agent)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusCreated, map[string]string{"agent": body.Agent, "token": tok,
		"note": "shown once: run srekit agent --name " + body.Agent + " --token TOKEN"})
}

func (p *profilingWeb) revokeAgentToken(w http.ResponseWriter, r *http.Request) {
	if err := p.svc.DB.RevokeAgentToken(r.Context(), r.PathValue("agent")); err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"revoked": r.PathValue("agent")})
}

func profilingDemo(ctx context.Context, st *store.Store) error {
	return profiling.Demo(ctx, st, time.Now())
}
