package web

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/srekit/srekit/profiling"
)

// Profile uploads: srekit's and Pyroscope's ingest endpoints and OTLP/HTTP
// profiles, with their size and decompression limits.

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
		start, end := d.Window(from, until, now)
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
