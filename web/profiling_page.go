package web

import (
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/srekit/srekit/profiling"
)

type profilingPage struct {
	Agents    []profilingAgentRow
	Kinds     []string
	Query     string
	Kind      string
	From      string
	Until     string
	Error     string
	Snapshots []profiling.Snapshot
	Shown     int
	Total     int
	// Params is the selection as URL parameters, for the merge/export links;
	// typed as a URL so that html/template keeps its '&' and '=' (a plain
	// string is escaped whole in a query, which lost the selection).
	Params    template.URL
	HeatMap   string
	Captures  []profiling.Capture
	Schedules []profiling.Schedule
	Rules     []profiling.AlertRule
	Pull      []profiling.PullTarget
	Tokens    []profiling.AgentToken
	PullEnv   []profiling.PprofTarget
	Stats     profiling.Stats
	// Sub is the snapshot whose sub-second heat map the page shows
	// (?snapshot=ID); nil for the snapshot-granularity view.
	Sub *profiling.Snapshot
	// Timelines counts the selected snapshots that have a sub-second view.
	Timelines int
	// Unit is the one unit shown when the selection mixes units;
	// OtherUnits are the others, with links.
	Unit       string
	OtherUnits []profilingUnit
	// Share offers the Share action; NoSharing says the server forbids it.
	Share     bool
	NoSharing bool
}

type profilingUnit struct {
	Unit  string
	Count int
	Link  string
}

type profilingAgentRow struct {
	profiling.Agent
	Online bool
}

func (p *profilingWeb) page(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v := r.URL.Query()
	d := profilingPage{Query: v.Get("query"), Kind: v.Get("kind"), From: v.Get("from"), Until: v.Get("until"),
		Share: p.sharing.enabled(), NoSharing: p.sharing.forbidden}
	w.Header().Set("Content-Security-Policy", profilingCSP)
	if sv := v.Get("snapshot"); sv != "" {
		id, err := strconv.ParseInt(sv, 10, 64)
		if err != nil {
			d.Error = "snapshot: " + strconv.Quote(sv) + " is not a snapshot id"
		} else if ss, err := p.svc.DB.List(ctx, profiling.Query{IDs: []int64{id}}); err != nil {
			d.Error = err.Error()
		} else if len(ss) == 0 {
			d.Error = "snapshot " + sv + ": not found"
		} else {
			d.Sub = &ss[0]
		}
	}
	if d.Kind == "" {
		d.Kind = "cpu"
	}
	if d.From == "" && d.Until == "" && !v.Has("from") {
		d.From = "now-6h" // the page merges what it shows: keep the default bounded
	}
	for k := range profiling.CaptureKinds {
		d.Kinds = append(d.Kinds, k)
	}
	sort.Strings(d.Kinds)
	agents, err := p.svc.Agents(ctx)
	if err != nil {
		d.Error = err.Error()
	}
	now := time.Now()
	for _, a := range agents {
		d.Agents = append(d.Agents, profilingAgentRow{a, a.Online(now)})
	}
	params := url.Values{}
	for k, val := range map[string]string{"query": d.Query, "from": d.From, "until": d.Until} {
		if val != "" {
			params.Set(k, val)
		}
	}
	params.Set("kind", d.Kind)
	d.Unit = v.Get("unit")
	q, err := snapshotQuery(&http.Request{URL: &url.URL{RawQuery: params.Encode()}}, "")
	if err != nil {
		d.Error = err.Error()
		d.Params = template.URL(params.Encode())
	} else {
		q.Limit = 5000
		ss, err := p.svc.DB.List(ctx, q)
		if err != nil {
			d.Error = err.Error()
		}
		// A selection mixing units (pprof CPU in nanoseconds, perf in
		// samples) cannot be merged: show one unit, the most common unless
		// the URL names one, and link to the others.
		count := map[string]int{}
		for _, s := range ss {
			count[s.Unit]++
		}
		if len(count) > 1 || d.Unit != "" {
			if d.Unit == "" {
				for u, n := range count {
					if n > count[d.Unit] || (n == count[d.Unit] && u < d.Unit) {
						d.Unit = u
					}
				}
			}
			kept := ss[:0]
			for _, s := range ss {
				if s.Unit == d.Unit {
					kept = append(kept, s)
				}
			}
			ss = kept
			for u, n := range count {
				if u != d.Unit {
					ov := url.Values{}
					for k, vs := range params {
						ov[k] = vs
					}
					ov.Set("unit", u)
					d.OtherUnits = append(d.OtherUnits, profilingUnit{Unit: u, Count: n, Link: "/profiling?" + ov.Encode()})
				}
			}
			sort.Slice(d.OtherUnits, func(i, j int) bool { return d.OtherUnits[i].Unit < d.OtherUnits[j].Unit })
			params.Set("unit", d.Unit)
		}
		d.Params = template.URL(params.Encode())
		d.Total = len(ss)
		for _, s := range ss {
			if s.HasTimeline {
				d.Timelines++
			}
		}
		d.HeatMap = profiling.HeatMapSVG(ss, "service", 60, func(from, until time.Time, group string) string {
			pv := url.Values{}
			pv.Set("kind", d.Kind)
			if d.Unit != "" {
				pv.Set("unit", d.Unit)
			}
			sel := d.Query
			if sel == "" && group != "" {
				sel = `{service="` + group + `"}`
			}
			if sel != "" {
				pv.Set("query", sel)
			}
			pv.Set("from", from.UTC().Format(time.RFC3339))
			pv.Set("until", until.UTC().Format(time.RFC3339))
			return "/profiling?" + pv.Encode()
		})
		if len(ss) > 25 {
			ss = ss[:25]
		}
		d.Snapshots = ss
		d.Shown = len(ss)
	}
	if d.Captures, err = p.svc.Captures(ctx, 10); err != nil {
		d.Error = err.Error()
	}
	if d.Schedules, err = p.svc.Schedules(ctx); err != nil {
		d.Error = err.Error()
	}
	if d.Rules, err = p.svc.AlertRules(ctx); err != nil {
		d.Error = err.Error()
	}
	if d.Pull, err = p.svc.DB.PullTargets(ctx); err != nil {
		d.Error = err.Error()
	}
	d.PullEnv = p.pull
	if d.Tokens, err = p.svc.DB.AgentTokens(ctx); err != nil {
		d.Error = err.Error()
	}
	d.Stats, _ = p.svc.DB.Stats(ctx)
	p.s.Render(w, "profiling.html", Page{Title: "Profiling", Active: "profiling", Data: d})
}
