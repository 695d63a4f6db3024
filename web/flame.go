package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/flame/collapse"
)

// The /flame page draws a flame graph from a profile pasted or uploaded in
// the browser: perf script output, folded stacks, DTrace, jstack, bpftrace or
// pprof. Drawing stores nothing, so it needs no token; the profiling service
// (/profiling) is where captured profiles are kept.
func init() {
	Register(Part{
		Slug:    "flame",
		Title:   "Flame graphs",
		Summary: "flame graphs from perf, pprof, DTrace, jstack or folded stacks: zoom, search, diff, compatible with flamegraph.pl",
		Order:   30,
		Mount:   mountFlame,
	})
}

// flameMaxBody bounds an uploaded profile.
const flameMaxBody = 64 << 20

func mountFlame(s *Server) error {
	s.HandleFunc("GET /flame", s.flamePage)
	s.HandleFunc("GET /api/v1/flame/example", s.flameExample)
	s.HandleFunc("POST /api/v1/flame/render", s.flameRender, BodyLimit(flameMaxBody))
	return nil
}

type flameView struct {
	Palettes []string
	Formats  []collapse.Format
}

func (s *Server) flamePage(w http.ResponseWriter, r *http.Request) {
	s.Render(w, "flame.html", Page{Title: "Flame graphs", Active: "flame",
		Data: flameView{Palettes: flame.Palettes, Formats: collapse.Formats}})
}

// flameExample serves a small made-up profile of a web service (folded
// stacks) for the page's "example" button.
func (s *Server) flameExample(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, flameExampleProfile)
}

const flameExampleProfile = `api;main;http.ListenAndServe;http.serve;handler.Orders;db.Query;net.Write;syscall.write_[k] 180
api;main;http.ListenAndServe;http.serve;handler.Orders;db.Query;net.Read;syscall.read_[k] 420
api;main;http.ListenAndServe;http.serve;handler.Orders;json.Marshal;reflect.Value.Field 260
api;main;http.ListenAndServe;http.serve;handler.Orders;json.Marshal;strconv.AppendInt 90
api;main;http.ListenAndServe;http.serve;handler.Search;regexp.Compile;regexp.syntax.Parse 310
api;main;http.ListenAndServe;http.serve;handler.Search;regexp.Regexp.Match 150
api;main;http.ListenAndServe;http.serve;tls.Conn.Handshake;ecdsa.Sign;p256.ScalarMult 240
api;runtime.gcBgMarkWorker;runtime.gcDrain;runtime.scanobject 200
api;runtime.mcall;runtime.schedule;runtime.findRunnable;runtime.netpoll;epoll_wait_[k] 120
`

// flameRender draws the request body (or a multipart "profile" file or
// "text" field) as SVG, HTML or folded text, per the query parameters:
// format, as (svg|html|folded), colors, title, width, minwidth, maxnodes,
// inverted, reverse, search, sampleindex. A multipart form with a "before"
// file or "beforetext" field draws a differential graph (before to the
// profile), normalised unless nonormalize; elided draws the before side.
func (s *Server) flameRender(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var body io.Reader = r.Body
	var before io.Reader
	if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "multipart/form-data") || strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		if err := r.ParseMultipartForm(8 << 20); err != nil && !errors.Is(err, http.ErrNotMultipart) {
			Error(w, http.StatusBadRequest, "read form: "+err.Error())
			return
		}
		if err := r.ParseForm(); err != nil {
			Error(w, http.StatusBadRequest, "read form: "+err.Error())
			return
		}
		q = r.Form
		body = strings.NewReader(r.FormValue("text"))
		if f, _, err := r.FormFile("profile"); err == nil {
			defer f.Close()
			body = f
		}
		// a "before" profile makes a differential graph
		if f, _, err := r.FormFile("before"); err == nil {
			defer f.Close()
			before = f
		} else if t := r.FormValue("beforetext"); strings.TrimSpace(t) != "" {
			before = strings.NewReader(t)
		}
	}
	format, err := collapse.ParseFormat(flameOr(q.Get("format"), "auto"))
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	idx, stype := -1, ""
	if v := q.Get("sampleindex"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			idx = n
		} else {
			stype = v // a sample type name: cpu, alloc_space...
		}
	}
	read := func(name string, r io.Reader) (*flame.Profile, bool) {
		p, _, err := collapse.Collapse(r, format, collapse.Options{SampleIndex: idx, SampleType: stype})
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				Error(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("profile over the limit of %d bytes", tooBig.Limit))
				return nil, false
			}
			Error(w, http.StatusBadRequest, name+err.Error())
			return nil, false
		}
		return p, true
	}
	p, ok := read("", body)
	if !ok {
		return
	}
	if before != nil {
		b, ok := read("before: ", before)
		if !ok {
			return
		}
		p = flame.Diff(b, p)
		if q.Get("nonormalize") == "" {
			p.Normalize()
		}
	}
	if p.Skipped.Count > 0 {
		w.Header().Set("X-Srekit-Skipped-Lines", strconv.FormatInt(p.Skipped.Count, 10))
		if err := p.Skipped.Err(); err != nil {
			w.Header().Set("X-Srekit-Skipped", strings.ToValidUTF8(strings.ReplaceAll(err.Error(), "\n", " "), "?"))
		}
	}
	o := flame.RenderOptions{
		Title:    q.Get("title"),
		Colors:   flameOr(q.Get("colors"), "hot"),
		Search:   q.Get("search"),
		Inverted: q.Get("inverted") != "",
		Reverse:  q.Get("reverse") != "",
		Elided:   q.Get("elided") != "",
		MaxNodes: 20000,
	}
	if v := q.Get("width"); v != "" {
		if o.Width, err = strconv.Atoi(v); err != nil || o.Width < 200 || o.Width > 10000 {
			Error(w, http.StatusBadRequest, "width: want 200 to 10000 pixels")
			return
		}
	}
	if v := q.Get("maxnodes"); v != "" {
		if o.MaxNodes, err = strconv.Atoi(v); err != nil || o.MaxNodes < 0 {
			Error(w, http.StatusBadRequest, "maxnodes: want a whole number")
			return
		}
	}
	if v := strings.TrimSpace(q.Get("minwidth")); v != "" {
		o.MinWidthPercent = strings.HasSuffix(v, "%")
		if o.MinWidth, err = strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64); err != nil || o.MinWidth < 0 {
			Error(w, http.StatusBadRequest, "minwidth: want pixels or a percentage like 0.5%")
			return
		}
	}
	var buf bytes.Buffer
	switch as := flameOr(q.Get("as"), "svg"); as {
	case "svg":
		err = flame.Render(&buf, p, o)
		w.Header().Set("Content-Type", "image/svg+xml")
	case "html":
		err = flame.RenderHTML(&buf, p, o)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	case "folded":
		err = p.WriteFolded(&buf)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	default:
		Error(w, http.StatusBadRequest, "as: want svg, html or folded")
		return
	}
	if err != nil {
		w.Header().Del("Content-Type")
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	w.Write(buf.Bytes())
}

func flameOr(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
