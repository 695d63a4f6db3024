package profiling

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srekit/srekit/store"
)

// Capture kinds an agent can be allowed to run. Nothing else can be asked of
// an agent: a capture request names one of these, never a command.
var CaptureKinds = map[string]string{
	"cpu":       "CPU profile from /debug/pprof/profile?seconds=N",
	"heap":      "heap profile from /debug/pprof/heap",
	"allocs":    "allocation profile from /debug/pprof/allocs",
	"goroutine": "goroutine stacks from /debug/pprof/goroutine",
	"mutex":     "mutex contention from /debug/pprof/mutex",
	"block":     "blocking profile from /debug/pprof/block",
	"perf":      "on-CPU stacks of the whole host or one PID with perf record -g",
}

// primaryKind is the stored kind a capture's snapshot link points at when a
// capture yields several (a heap profile has four sample types).
var primaryKind = map[string]string{
	"cpu": "cpu", "heap": "inuse_space", "allocs": "alloc_space", "goroutine": "goroutine",
	"mutex": "mutex_duration", "block": "block_duration", "perf": "cpu",
}

// PerfTarget is the target name under which agents offer perf captures.
const PerfTarget = "perf"

// AgentTarget is something an agent can profile: a local service's pprof
// endpoint (its URL stays on the agent) or the host itself with perf.
type AgentTarget struct {
	Name   string   `json:"name"`
	Kinds  []string `json:"kinds"`
	Labels Labels   `json:"labels,omitempty"`
	// Preroll is how much history the agent keeps for this target (0: none).
	PrerollSeconds int `json:"preroll_seconds,omitempty"`
}

// Agent is a host running `srekit agent`, as it registered.
type Agent struct {
	Name    string        `json:"name"`
	Host    string        `json:"host"`
	Labels  Labels        `json:"labels"`
	Targets []AgentTarget `json:"targets"`
	Version string        `json:"version"`
	Seen    time.Time     `json:"seen"`
}

// Online reports whether the agent polled recently.
func (a Agent) Online(now time.Time) bool { return now.Sub(a.Seen) < 90*time.Second }

func (a Agent) target(name string) (AgentTarget, bool) {
	for _, t := range a.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return AgentTarget{}, false
}

// Capture statuses.
const (
	StatusPending = "pending"
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// Capture is a request to profile a target of an agent, and its outcome.
type Capture struct {
	ID      int64  `json:"id"`
	Agent   string `json:"agent"`
	Target  string `json:"target"`
	Kind    string `json:"kind"`
	Seconds int    `json:"seconds"`
	// Preroll asks the agent to also send its ring buffer of the minutes
	// before the request (targets with pre-roll only).
	Preroll bool `json:"preroll"`
	// PID and Frequency are for perf captures: the process to profile (0:
	// the whole host) and samples per second per CPU (0: the agent's default).
	PID       int    `json:"pid,omitempty"`
	Frequency int    `json:"frequency,omitempty"`
	Status    string `json:"status"`
	Reason    string `json:"reason"` // ui, schedule 3, alert HighCPU ...
	// Labels are added to the snapshot (alertname, alert_fingerprint, ...).
	Labels            Labels    `json:"labels"`
	Error             string    `json:"error,omitempty"`
	SnapshotID        int64     `json:"snapshot_id,omitempty"`
	PrerollSnapshotID int64     `json:"preroll_snapshot_id,omitempty"`
	Created           time.Time `json:"created"`
	Started           time.Time `json:"started,omitzero"`
	Done              time.Time `json:"done,omitzero"`
}

// MaxCaptureSeconds bounds one capture's duration.
const MaxCaptureSeconds = 600

// Service is the profiling service: the store plus the wake-ups that let a
// long-polling agent learn of a new capture at once. Several servers may
// share one database; an agent polling another server sees the request at
// its next database check (twice a second).
type Service struct {
	DB     *DB
	Limits Limits
	Now    func() time.Time

	mu   sync.Mutex
	wake chan struct{}
}

// NewService returns a service over st.
func NewService(st *store.Store) *Service {
	return &Service{DB: &DB{S: st}, Now: time.Now, wake: make(chan struct{})}
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) notify() {
	s.mu.Lock()
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

func (s *Service) waiter() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// Register records (or refreshes) an agent.
func (s *Service) Register(ctx context.Context, a Agent) error {
	if a.Name == "" {
		return errors.New("register: agent has no name")
	}
	if err := a.Labels.Validate(); err != nil {
		return fmt.Errorf("register %s: %w", a.Name, err)
	}
	for _, t := range a.Targets {
		if t.Name == "" {
			return fmt.Errorf("register %s: a target has no name", a.Name)
		}
		for _, k := range t.Kinds {
			if _, ok := CaptureKinds[k]; !ok {
				return fmt.Errorf("register %s: target %s: unknown capture kind %q", a.Name, t.Name, k)
			}
		}
	}
	targets, _ := json.Marshal(a.Targets)
	_, err := s.DB.S.Exec(ctx, `INSERT INTO profiling_agents (name, host, labels, targets, version, seen_ms) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET host = excluded.host, labels = excluded.labels, targets = excluded.targets,
		version = excluded.version, seen_ms = excluded.seen_ms`,
		a.Name, a.Host, a.Labels.canonical(), string(targets), a.Version, ms(s.now()))
	if err != nil {
		return fmt.Errorf("register %s: %w", a.Name, err)
	}
	return nil
}

func (s *Service) touch(ctx context.Context, name string) (bool, error) {
	res, err := s.DB.S.Exec(ctx, "UPDATE profiling_agents SET seen_ms = ? WHERE name = ?", ms(s.now()), name)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// Agents lists registered agents by name.
func (s *Service) Agents(ctx context.Context) ([]Agent, error) {
	rows, err := s.DB.S.Query(ctx, "SELECT name, host, labels, targets, version, seen_ms FROM profiling_agents ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	defer rows.Close()
	out := []Agent{}
	for rows.Next() {
		var a Agent
		var labels, targets string
		var seen int64
		if err := rows.Scan(&a.Name, &a.Host, &labels, &targets, &a.Version, &seen); err != nil {
			return nil, fmt.Errorf("list agents: %w", err)
		}
		a.Labels, _ = parseLabelsJSON(labels)
		if err := json.Unmarshal([]byte(targets), &a.Targets); err != nil {
			return nil, fmt.Errorf("agent %s targets: %w", a.Name, err)
		}
		a.Seen = fromMS(seen)
		out = append(out, a)
	}
	return out, rows.Err()
}

// Agent returns one agent.
func (s *Service) Agent(ctx context.Context, name string) (Agent, error) {
	as, err := s.Agents(ctx)
	if err != nil {
		return Agent{}, err
	}
	for _, a := range as {
		if a.Name == name {
			return a, nil
		}
	}
	return Agent{}, fmt.Errorf("agent %q: %w", name, ErrNotFound)
}

// findAgent resolves a host name (or host:port, as Alertmanager's instance
// label has it) to an agent, by agent name first and host second.
func (s *Service) findAgent(ctx context.Context, hostOrName string) (Agent, error) {
	as, err := s.Agents(ctx)
	if err != nil {
		return Agent{}, err
	}
	h := hostOrName
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	for _, cand := range []string{hostOrName, h} {
		for _, a := range as {
			if a.Name == cand {
				return a, nil
			}
		}
		for _, a := range as {
			if a.Host == cand {
				return a, nil
			}
		}
	}
	return Agent{}, fmt.Errorf("no agent for host %q: %w", hostOrName, ErrNotFound)
}

// Request queues a capture for an agent, checking that the agent offers the
// target and the kind. It returns the stored capture.
func (s *Service) Request(ctx context.Context, c Capture) (*Capture, error) {
	if c.Seconds <= 0 {
		c.Seconds = 10
	}
	if c.Seconds > MaxCaptureSeconds {
		return nil, fmt.Errorf("capture of %d seconds: at most %d", c.Seconds, MaxCaptureSeconds)
	}
	if _, ok := CaptureKinds[c.Kind]; !ok {
		return nil, fmt.Errorf("unknown capture kind %q: want one of %s", c.Kind, strings.Join(kindNames(), ", "))
	}
	a, err := s.Agent(ctx, c.Agent)
	if err != nil {
		return nil, err
	}
	if c.Target == "" && len(a.Targets) == 1 {
		c.Target = a.Targets[0].Name
	}
	t, ok := a.target(c.Target)
	if !ok {
		var names []string
		for _, t := range a.Targets {
			names = append(names, t.Name)
		}
		return nil, fmt.Errorf("agent %s has no target %q (it has: %s)", a.Name, c.Target, strings.Join(names, ", "))
	}
	allowed := false
	for _, k := range t.Kinds {
		allowed = allowed || k == c.Kind
	}
	if !allowed {
		return nil, fmt.Errorf("agent %s does not allow %s captures of %s (allowed: %s)", a.Name, c.Kind, t.Name, strings.Join(t.Kinds, ", "))
	}
	if err := c.perfFields(); err != nil {
		return nil, err
	}
	if c.Preroll && t.PrerollSeconds == 0 {
		c.Preroll = false // nothing to flush; the live capture still runs
	}
	if c.Labels == nil {
		c.Labels = Labels{}
	}
	if err := c.Labels.Validate(); err != nil {
		return nil, err
	}
	c.Status = StatusPending
	c.Created = s.now()
	id, err := s.DB.S.InsertID(ctx, `INSERT INTO profiling_captures (agent, target, kind, seconds, preroll, status, reason, labels, created_ms, pid, frequency)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.Agent, c.Target, c.Kind, c.Seconds, c.Preroll, c.Status, c.Reason, c.Labels.canonical(), ms(c.Created), c.PID, c.Frequency)
	if err != nil {
		return nil, fmt.Errorf("queue capture: %w", err)
	}
	c.ID = id
	s.notify()
	return &c, nil
}

// MaxPerfFrequency bounds a perf capture's sampling frequency.
const MaxPerfFrequency = 10000

// perfFields checks PID and Frequency, taking them from the labels "pid" and
// "frequency" where an older client put them there.
func (c *Capture) perfFields() error {
	for _, f := range []struct {
		label string
		v     *int
	}{{"pid", &c.PID}, {"frequency", &c.Frequency}} {
		if l := c.Labels[f.label]; l != "" && *f.v == 0 {
			n, err := strconv.Atoi(l)
			if err != nil {
				return fmt.Errorf("%s %q: want a number", f.label, l)
			}
			*f.v = n
			delete(c.Labels, f.label)
		}
	}
	if c.Kind != "perf" && (c.PID != 0 || c.Frequency != 0) {
		return fmt.Errorf("pid and frequency apply to perf captures only, not %s", c.Kind)
	}
	if c.PID < 0 {
		return fmt.Errorf("pid %d: want a process id (0 for the whole host)", c.PID)
	}
	if c.Frequency < 0 || c.Frequency > MaxPerfFrequency {
		return fmt.Errorf("frequency %d: want 1 to %d Hz (0 for the agent's default)", c.Frequency, MaxPerfFrequency)
	}
	return nil
}

func kindNames() []string {
	var out []string
	for k := range CaptureKinds {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

const captureCols = `id, agent, target, kind, seconds, preroll, status, reason, labels, error,
	COALESCE(snapshot_id, 0), COALESCE(preroll_snapshot_id, 0), created_ms, started_ms, done_ms, pid, frequency`

func scanCapture(sc interface{ Scan(...any) error }) (*Capture, error) {
	var c Capture
	var labels string
	var created, started, done int64
	if err := sc.Scan(&c.ID, &c.Agent, &c.Target, &c.Kind, &c.Seconds, &c.Preroll, &c.Status, &c.Reason, &labels, &c.Error,
		&c.SnapshotID, &c.PrerollSnapshotID, &created, &started, &done, &c.PID, &c.Frequency); err != nil {
		return nil, err
	}
	c.Labels, _ = parseLabelsJSON(labels)
	c.Created, c.Started, c.Done = fromMS(created), fromMS(started), fromMS(done)
	return &c, nil
}

// Capture returns one capture.
func (s *Service) Capture(ctx context.Context, id int64) (*Capture, error) {
	c, err := scanCapture(s.DB.S.QueryRow(ctx, "SELECT "+captureCols+" FROM profiling_captures WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("capture %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("capture %d: %w", id, err)
	}
	return c, nil
}

// Captures lists the newest captures.
func (s *Service) Captures(ctx context.Context, limit int) ([]Capture, error) {
	if limit <= 0 {
		limit = 50
	}
	rows, err := s.DB.S.Query(ctx, fmt.Sprintf("SELECT %s FROM profiling_captures ORDER BY id DESC LIMIT %d", captureCols, limit))
	if err != nil {
		return nil, fmt.Errorf("list captures: %w", err)
	}
	defer rows.Close()
	out := []Capture{}
	for rows.Next() {
		c, err := scanCapture(rows)
		if err != nil {
			return nil, fmt.Errorf("list captures: %w", err)
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// claim hands the oldest pending capture of agent to it, or nil. The
// compare-and-set on status makes two servers never hand one capture out twice.
func (s *Service) claim(ctx context.Context, agent string) (*Capture, error) {
	for range 5 {
		var id int64
		err := s.DB.S.QueryRow(ctx, "SELECT id FROM profiling_captures WHERE agent = ? AND status = ? ORDER BY id LIMIT 1", agent, StatusPending).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("claim capture: %w", err)
		}
		res, err := s.DB.S.Exec(ctx, "UPDATE profiling_captures SET status = ?, started_ms = ? WHERE id = ? AND status = ?",
			StatusRunning, ms(s.now()), id, StatusPending)
		if err != nil {
			return nil, fmt.Errorf("claim capture: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return s.Capture(ctx, id)
		}
	}
	return nil, nil
}

// ErrUnknownAgent tells an agent to register again (the server's database
// was replaced, or the agent was removed).
var ErrUnknownAgent = errors.New("unknown agent: register first")

// Next waits up to wait for a capture for agent and claims it; nil when none
// came. It also marks the agent as seen.
func (s *Service) Next(ctx context.Context, agent string, wait time.Duration) (*Capture, error) {
	ok, err := s.touch(ctx, agent)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrUnknownAgent
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		w := s.waiter()
		c, err := s.claim(ctx, agent)
		if err != nil || c != nil {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-deadline.C:
			return nil, nil
		case <-w:
		case <-tick.C:
		}
	}
}

// Fail records that a capture could not be made.
func (s *Service) Fail(ctx context.Context, id int64, msg string) error {
	if len(msg) > 2000 {
		msg = msg[:2000]
	}
	_, err := s.DB.S.Exec(ctx, "UPDATE profiling_captures SET status = ?, error = ?, done_ms = ? WHERE id = ? AND status <> ?",
		StatusFailed, msg, ms(s.now()), id, StatusDone)
	return err
}

// CaptureResult is what an agent uploads for a capture.
type CaptureResult struct {
	Format  string
	Data    []byte
	Start   time.Time
	End     time.Time
	Preroll bool // the ring buffer flush, not the live capture
}

// Complete stores an agent's upload for capture id and links the snapshot.
// Uploading the same result twice (a retry after a lost reply) stores it once.
func (s *Service) Complete(ctx context.Context, id int64, r CaptureResult) (*Capture, error) {
	c, err := s.Capture(ctx, id)
	if err != nil {
		return nil, err
	}
	a, err := s.Agent(ctx, c.Agent)
	if err != nil {
		return nil, err
	}
	kind := ""
	if r.Format != FormatPprof {
		kind = "cpu"
	}
	ds, err := Decode(r.Data, r.Format, kind, "", s.Limits)
	if err != nil {
		s.Fail(ctx, id, "upload: "+err.Error())
		return nil, err
	}
	labels := Labels{"host": a.Host, "agent": a.Name}
	for k, v := range a.Labels {
		labels[k] = v
	}
	if t, ok := a.target(c.Target); ok {
		if c.Target != PerfTarget {
			labels["service"] = t.Name
		}
		for k, v := range t.Labels {
			labels[k] = v
		}
	}
	for k, v := range c.Labels {
		labels[k] = v
	}
	if c.PID > 0 {
		labels["pid"] = strconv.Itoa(c.PID)
	}
	if c.Frequency > 0 {
		labels["frequency"] = strconv.Itoa(c.Frequency)
	}
	labels["capture"] = fmt.Sprint(c.ID)
	if r.Preroll {
		labels["preroll"] = "true"
	}
	source := "agent:" + a.Name
	var linkID int64
	for _, d := range ds {
		start, end := r.Start, r.End
		if end.IsZero() {
			end = s.now()
		}
		if start.IsZero() {
			start = end.Add(-time.Duration(c.Seconds) * time.Second)
		}
		snap := &Snapshot{Kind: d.Kind, Unit: d.Unit, Labels: labels, Start: start, End: end, Source: source, Profile: d.Profile, Timeline: d.Timeline}
		sid, _, err := s.DB.Save(ctx, snap)
		if err != nil {
			return nil, err
		}
		if linkID == 0 || d.Kind == primaryKind[c.Kind] {
			linkID = sid
		}
	}
	col := "snapshot_id"
	if r.Preroll {
		col = "preroll_snapshot_id"
	}
	q := "UPDATE profiling_captures SET " + col + " = ?, done_ms = ?, error = ''"
	args := []any{linkID, ms(s.now())}
	if !r.Preroll {
		q += ", status = ?"
		args = append(args, StatusDone)
	}
	q += " WHERE id = ?"
	args = append(args, id)
	if _, err := s.DB.S.Exec(ctx, q, args...); err != nil {
		return nil, fmt.Errorf("capture %d: %w", id, err)
	}
	return s.Capture(ctx, id)
}

// ExpireStale fails captures nobody finished: pending ones older than
// maxWait, running ones overdue by maxWait. Returns how many.
func (s *Service) ExpireStale(ctx context.Context, maxWait time.Duration) (int64, error) {
	now := s.now()
	res, err := s.DB.S.Exec(ctx, `UPDATE profiling_captures SET status = ?, error = ?, done_ms = ?
		WHERE (status = ? AND created_ms < ?) OR (status = ? AND started_ms + seconds * 1000 < ?)`,
		StatusFailed, "no result from the agent in time", ms(now),
		StatusPending, ms(now.Add(-maxWait)), StatusRunning, ms(now.Add(-maxWait)))
	if err != nil {
		return 0, fmt.Errorf("expire captures: %w", err)
	}
	return res.RowsAffected()
}
