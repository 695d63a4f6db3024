package web

import (
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srekit/srekit/replication"
)

func init() {
	Register(Part{
		Slug:    "replication",
		Title:   "Replication",
		Summary: "the replica-checker storm: a cluster simulator, naive checker vs the mitigations HDFS and Ceph ship",
		Order:   25,
		Mount:   mountReplication,
	})
}

// Limits for runs started from a page: a request should take seconds.
const (
	webMaxNodes    = 2000
	webMaxBlocks   = 1_000_000
	webMaxDuration = 12 * time.Hour
)

func mountReplication(s *Server) error {
	cache := &replicationCache{m: map[string]*replication.Result{}}
	s.HandleFunc("GET /replication", func(w http.ResponseWriter, r *http.Request) { s.replicationPage(w, r, cache) })
	// Running a simulation only computes: a read.
	s.HandleFunc("POST /api/v1/replication/run", s.replicationAPIRun, BodyLimit(1<<20))
	return nil
}

// replicationCache keeps the last runs, since a page shows the same naive run
// beside every choice of mitigations.
type replicationCache struct {
	mu    sync.Mutex
	m     map[string]*replication.Result
	order []string
}

func (c *replicationCache) run(ctx context.Context, p replication.Params) (*replication.Result, error) {
	key := fmt.Sprintf("%+v", p)
	c.mu.Lock()
	if r, ok := c.m[key]; ok {
		c.mu.Unlock()
		return r, nil
	}
	c.mu.Unlock()
	r, err := replication.Run(ctx, p)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok {
		c.m[key] = r
		c.order = append(c.order, key)
		if len(c.order) > 16 {
			delete(c.m, c.order[0])
			c.order = c.order[1:]
		}
	}
	return r, nil
}

type replicationView struct {
	Scenarios   []string
	Scenario    string
	Mitigations map[string]bool
	Nodes       int
	Blocks      int
	Minutes     int
	Seed        uint64
	Error       string
	Naive       *replication.Result
	Mitigated   *replication.Result
	Charts      []template.HTML
}

// replicationMitigations are the checkboxes, in order.
var replicationMitigations = []struct{ Key, Label string }{
	{"grace", "grace period (10 min)"},
	{"copy-limit", "2 copies per node"},
	{"rate-limit", "200 copies/s cluster-wide"},
	{"priority", "fewest replicas first"},
	{"breaker", "circuit breaker at 25% dead"},
	{"backoff", "jittered backoff"},
}

func (s *Server) replicationPage(w http.ResponseWriter, r *http.Request, cache *replicationCache) {
	q := r.URL.Query()
	def := replication.Defaults()
	v := replicationView{Scenarios: replication.ScenarioNames(), Scenario: "brownout", Mitigations: map[string]bool{},
		Nodes: def.Cluster.Nodes, Blocks: def.Cluster.Blocks, Minutes: int(def.Duration.Seconds() / 60), Seed: def.Seed}
	if q.Has("scenario") {
		v.Scenario = q.Get("scenario")
		for _, m := range q["m"] {
			v.Mitigations[m] = true
		}
	} else {
		for _, m := range replicationMitigations {
			v.Mitigations[m.Key] = true
		}
	}
	intField := func(name string, dst *int) {
		if x := q.Get(name); x != "" {
			n, err := strconv.Atoi(strings.TrimSpace(x))
			if err != nil && v.Error == "" {
				v.Error = fmt.Sprintf("%s: want a whole number, not %q", name, x)
			}
			*dst = n
		}
	}
	intField("nodes", &v.Nodes)
	intField("blocks", &v.Blocks)
	intField("minutes", &v.Minutes)
	if x := q.Get("seed"); x != "" {
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil && v.Error == "" {
			v.Error = "seed: want a whole number"
		}
		v.Seed = n
	}
	switch {
	case v.Error != "":
	case v.Nodes > webMaxNodes || v.Blocks > webMaxBlocks || time.Duration(v.Minutes)*time.Minute > webMaxDuration:
		v.Error = fmt.Sprintf("the page runs at most %d nodes, %d blocks and %v; use 'srekit replication run' for more", webMaxNodes, webMaxBlocks, webMaxDuration)
	default:
		s.runReplicationView(r.Context(), &v, cache)
	}
	s.Render(w, "replication.html", Page{Title: "Replication", Active: "replication", Data: v})
}

func (s *Server) runReplicationView(ctx context.Context, v *replicationView, cache *replicationCache) {
	p := replication.Defaults()
	p.Scenario = v.Scenario
	p.Cluster.Nodes, p.Cluster.Blocks = v.Nodes, v.Blocks
	if p.Cluster.Racks > p.Cluster.Nodes {
		p.Cluster.Racks = max(1, p.Cluster.Nodes/20)
	}
	p.Duration = replication.Duration(time.Duration(v.Minutes) * time.Minute)
	p.Seed = v.Seed
	naive := p
	if err := naive.Validate(); err != nil {
		v.Error = err.Error()
		return
	}
	mit := p
	for _, m := range replicationMitigations {
		if v.Mitigations[m.Key] {
			mit.Mitigations, _ = replication.MitigationByName(mit.Mitigations, m.Key)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var err error
	if v.Naive, err = cache.run(ctx, naive); err != nil {
		v.Error = err.Error()
		return
	}
	if v.Mitigated, err = cache.run(ctx, mit); err != nil {
		v.Error = err.Error()
		return
	}
	for _, key := range replication.ChartKeys {
		svg, err := replication.Chart(key, "chart-"+key, v.Naive, v.Mitigated)
		if err != nil {
			v.Error = err.Error()
			return
		}
		v.Charts = append(v.Charts, template.HTML(svg))
	}
}

func (s *Server) replicationAPIRun(w http.ResponseWriter, r *http.Request) {
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	p, err := replication.ParseParams("params", strings.NewReader(string(body)))
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if p.Cluster.Nodes > webMaxNodes || p.Cluster.Blocks > webMaxBlocks || time.Duration(p.Duration) > webMaxDuration {
		Error(w, http.StatusBadRequest, fmt.Sprintf("the server runs at most %d nodes, %d blocks and %v", webMaxNodes, webMaxBlocks, webMaxDuration))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	res, err := replication.Run(ctx, p)
	if err != nil {
		Error(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, res)
}

// replicationCheckboxes is for the template: key, label, checked.
func (v replicationView) Checkboxes() []struct {
	Key, Label string
	On         bool
} {
	var out []struct {
		Key, Label string
		On         bool
	}
	for _, m := range replicationMitigations {
		out = append(out, struct {
			Key, Label string
			On         bool
		}{m.Key, m.Label, v.Mitigations[m.Key]})
	}
	return out
}

// Runs is the naive run and the mitigated one, for the verdict table.
func (v replicationView) Runs() []*replication.Result {
	return []*replication.Result{v.Naive, v.Mitigated}
}
