package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
// This file mounts the routes and serves the snapshot views; uploads are in
// profiling_ingest.go, the agents' side in profiling_agents.go, schedules,
// rules, pull targets and tokens in profiling_config.go, the page in
// profiling_page.go, time ranges in profiling_time.go, sharing in
// profiling_share.go.

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
	s.HandleFunc("DELETE /api/v1/profiling/snapshots/{id}", deleteByID(p.svc.DB.DeleteOne), Write())
	s.HandleFunc("GET /api/v1/profiling/snapshots/{id}/heatmap", p.heatmap)
	s.HandleFunc("GET /api/v1/profiling/merge", p.merge)
	s.HandleFunc("GET /api/v1/profiling/diff", p.diff)
	s.HandleFunc("GET /api/v1/profiling/search", p.search)
	s.HandleFunc("GET /api/v1/profiling/stats", p.stats)
	s.HandleFunc("POST /api/v1/profiling/compact", p.compact, Write())
	// Agent routes check the agent token (or the write token) themselves.
	s.HandleFunc("POST /api/v1/profiling/agents", p.agentAuth(p.register))
	s.HandleFunc("GET /api/v1/profiling/agents", listJSON(p.svc.Agents))
	s.HandleFunc("GET /api/v1/profiling/agents/{name}/next", p.agentAuth(p.next))
	s.HandleFunc("POST /api/v1/profiling/captures/{id}/result", p.agentAuth(p.result), up)
	s.HandleFunc("POST /api/v1/profiling/captures/{id}/fail", p.agentAuth(p.fail))
	s.HandleFunc("POST /api/v1/profiling/captures", p.requestCapture, Write())
	s.HandleFunc("GET /api/v1/profiling/captures", p.listCaptures)
	s.HandleFunc("GET /api/v1/profiling/captures/{id}", p.getCapture)
	s.HandleFunc("GET /api/v1/profiling/schedules", listJSON(p.svc.Schedules))
	s.HandleFunc("POST /api/v1/profiling/schedules", p.saveSchedule, Write())
	s.HandleFunc("PUT /api/v1/profiling/schedules/{id}", p.saveSchedule, Write())
	s.HandleFunc("DELETE /api/v1/profiling/schedules/{id}", deleteByID(p.svc.DeleteSchedule), Write())
	s.HandleFunc("GET /api/v1/profiling/alert-rules", listJSON(p.svc.AlertRules))
	s.HandleFunc("POST /api/v1/profiling/alert-rules", p.saveRule, Write())
	s.HandleFunc("DELETE /api/v1/profiling/alert-rules/{id}", deleteByID(p.svc.DeleteAlertRule), Write())
	s.HandleFunc("POST /api/v1/alerts/alertmanager", p.alertmanager, Write())

	s.HandleFunc("POST /api/v1/profiling/share", p.share, Write())
	s.HandleFunc("GET /api/v1/profiling/agent-tokens", listJSON(p.svc.DB.AgentTokens))
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

// listJSON answers a GET with what list returns, as JSON.
func listJSON[T any](list func(context.Context) (T, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := list(r.Context())
		if err != nil {
			Error(w, http.StatusInternalServerError, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, v)
	}
}

// deleteByID answers a DELETE of .../{id}: 404 when there is no such row,
// 500 when the store fails.
func deleteByID(del func(context.Context, int64) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := pathID(r, "id")
		if err != nil {
			Error(w, http.StatusBadRequest, err.Error())
			return
		}
		if err := del(r.Context(), id); err != nil {
			status := http.StatusInternalServerError
			if errors.Is(err, profiling.ErrNotFound) {
				status = http.StatusNotFound
			}
			Error(w, status, err.Error())
			return
		}
		WriteJSON(w, http.StatusOK, map[string]any{"deleted": id})
	}
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

func profilingDemo(ctx context.Context, st *store.Store) error {
	return profiling.Demo(ctx, st, time.Now())
}
