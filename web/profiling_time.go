package web

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/srekit/srekit/profiling"
)

// The sub-second (FlameScope) view of snapshots that keep each sample's
// time: the heat map grid as JSON, and flame graphs of time ranges.

// heatmap answers GET /api/v1/profiling/snapshots/{id}/heatmap[?row_ms=20]:
// the snapshot and its grid of sample counts (one column per second, rows of
// row_ms milliseconds).
func (p *profilingWeb) heatmap(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r, "id")
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	rowMS := 20
	if v := r.URL.Query().Get("row_ms"); v != "" {
		if rowMS, err = strconv.Atoi(v); err != nil {
			Error(w, http.StatusBadRequest, "row_ms: want a number of milliseconds that divides 1000, e.g. 20")
			return
		}
	}
	ss, err := p.svc.DB.List(r.Context(), profiling.Query{IDs: []int64{id}})
	if err != nil {
		Error(w, http.StatusInternalServerError, err.Error())
		return
	}
	if len(ss) == 0 {
		Error(w, http.StatusNotFound, fmt.Sprintf("snapshot %d: not found", id))
		return
	}
	t, err := p.svc.DB.Timeline(r.Context(), id)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	g, err := t.Grid(rowMS)
	if err != nil {
		Error(w, http.StatusBadRequest, "row_ms: "+err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"snapshot": ss[0], "grid": g})
}

// rangeOf reads start and end (seconds after the snapshot's first sample)
// for the snapshot view; ok is false when neither is given.
func rangeOf(r *http.Request, id int64) (rs []profiling.Range, ok bool, err error) {
	v := r.URL.Query()
	if v.Get("start") == "" && v.Get("end") == "" {
		return nil, false, nil
	}
	start, end := v.Get("start"), v.Get("end")
	if start == "" {
		start = "0"
	}
	if end == "" {
		end = strconv.Itoa(profiling.MaxTimelineSpan/1_000_000 + 1)
	}
	rs, err = profiling.ParseRanges(fmt.Sprintf("%d:%s-%s", id, start, end))
	return rs, true, err
}

// writeRanges answers with the flame graph of time ranges (see writeProfile).
func (p *profilingWeb) writeRanges(w http.ResponseWriter, r *http.Request, rs []profiling.Range) {
	m, err := p.svc.DB.MergeRanges(r.Context(), rs)
	if err != nil {
		Error(w, errStatus(err), err.Error())
		return
	}
	title := fmt.Sprintf("%s: %d samples of %d time ranges", m.Kind, m.Samples, len(rs))
	if len(rs) == 1 {
		title = fmt.Sprintf("%s: snapshot %d, %s", m.Kind, rs[0].ID, rangeLabel(rs[0]))
	}
	p.writeProfile(w, r, m.Profile, title, m)
}

func rangeLabel(r profiling.Range) string {
	return fmt.Sprintf("%.3f s to %.3f s", float64(r.From)/1e6, float64(r.Until)/1e6)
}
