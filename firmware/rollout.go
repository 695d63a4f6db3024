package firmware

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/srekit/srekit/firmware/redfish"
	"github.com/srekit/srekit/store"
)

// Rollout states.
const (
	RolloutRunning   = "running"
	RolloutSoaking   = "soaking"
	RolloutHalted    = "halted"
	RolloutCompleted = "completed"
)

// Host states within a rollout. A host leaves "pending" once, by a
// conditional UPDATE, before anything is done to it.
const (
	HostPending = "pending"
	HostStarted = "started"
	HostDone    = "done"
	HostFailed  = "failed"
	// HostInterrupted is a host a controller claimed and then died before
	// recording that the install was handed over, with no update found in
	// flight and the old version still running. Whether an image reached it
	// cannot be known, so it is not retried (never twice) and not counted
	// against the release; an operator looks at it.
	HostInterrupted = "interrupted"
	// HostUnhealthy is a host whose health check failed before anything was
	// done to it: it is left alone and counts as unhealthy in the
	// concurrency formula, not against the release.
	HostUnhealthy = "unhealthy"
)

// Rollout is a stored rollout.
type Rollout struct {
	ID         int64         `json:"id"`
	Name       string        `json:"name"`
	ReleaseID  int64         `json:"release_id"`
	State      string        `json:"state"`
	Phase      int           `json:"phase"`
	HaltReason string        `json:"halt_reason,omitempty"`
	Record     RolloutRecord `json:"plan"`
	Created    time.Time     `json:"created"`
	Updated    time.Time     `json:"updated"`
	// Counts[phase][state] is filled by Rollout and Rollouts.
	Counts []map[string]int `json:"counts"`
}

// RolloutRecord is what is stored as the rollout's plan column.
type RolloutRecord struct {
	Spec       RolloutSpec `json:"spec"`
	PhaseSizes []int       `json:"phase_sizes"`
	Skipped    int         `json:"skipped"`
	Total      int         `json:"total"`
	SoakUntil  time.Time   `json:"soak_until,omitzero"`
}

// RolloutHost is a host's row in a rollout.
type RolloutHost struct {
	HostID   int64     `json:"host_id"`
	Host     string    `json:"host"`
	BMC      string    `json:"bmc,omitempty"`
	Phase    int       `json:"phase"`
	State    string    `json:"state"`
	Detail   string    `json:"detail,omitempty"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// Candidates lists the hosts running component k, with their state against
// version, for planning.
func (db *DB) Candidates(ctx context.Context, k ComponentKey) ([]Candidate, Format, error) {
	rows, err := db.S.Query(ctx, `SELECT h.id, h.name, h.model, h.rack, h.zone, h.bmc, hc.version, c.version_format
		FROM fw_host_components hc JOIN fw_hosts h ON h.id = hc.host_id JOIN fw_components c ON c.id = hc.component_id
		WHERE c.vendor = ? AND c.model = ? AND c.kind = ? ORDER BY h.name`, k.Vendor, k.Model, k.Kind)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []Candidate
	var f string
	for rows.Next() {
		var c Candidate
		if err := rows.Scan(&c.HostID, &c.Host, &c.Model, &c.Rack, &c.Zone, &c.BMC, &c.Version, &f); err != nil {
			return nil, "", err
		}
		out = append(out, c)
	}
	return out, Format(f), rows.Err()
}

// PlanRollout builds a plan from the versions database.
func (db *DB) PlanRollout(ctx context.Context, spec RolloutSpec) (*Plan, error) {
	if err := spec.Normalize(); err != nil {
		return nil, err
	}
	r, err := db.FindRelease(ctx, spec.Component, spec.Version)
	if err != nil {
		return nil, err
	}
	if r.Package != "" && len(spec.Requires) == 0 {
		// The package's requirements for this release, when it is on disk.
		if pkg, err := OpenPackage(r.Package, 0); err == nil {
			for _, q := range pkg.Component.Requires {
				spec.Requires = append(spec.Requires, q)
			}
		}
	}
	cands, f, err := db.Candidates(ctx, spec.Component)
	if err != nil {
		return nil, err
	}
	if f == FormatUnknown {
		f = r.Format
	}
	return MakePlan(spec, cands, f)
}

// CreateRollout stores a plan as a new rollout with every host pending. The
// release must exist and not be known-bad.
func (db *DB) CreateRollout(ctx context.Context, p *Plan) (int64, error) {
	r, err := db.FindRelease(ctx, p.Spec.Component, p.Spec.Version)
	if err != nil {
		return 0, err
	}
	if r.KnownBad {
		return 0, fmt.Errorf("release %s of %s is known-bad (%s): refusing to roll it out", r.Version, r.Key, r.BadReason)
	}
	if p.Total == 0 {
		return 0, errors.New("the plan selects no host that needs this release")
	}
	rec := RolloutRecord{Spec: p.Spec, Skipped: p.Skipped, Total: p.Total}
	for _, ph := range p.Phases {
		rec.PhaseSizes = append(rec.PhaseSizes, len(ph))
	}
	planJSON, _ := json.Marshal(rec)
	var id int64
	err = db.S.InTx(ctx, func(tx *store.Tx) error {
		now := time.Now().UTC()
		if err := tx.QueryRow(ctx, `INSERT INTO fw_rollouts (name, release_id, state, phase, plan, created_at, updated_at)
			VALUES (?, ?, ?, 0, ?, ?, ?) RETURNING id`, p.Spec.Name, r.ID, RolloutRunning, string(planJSON), now, now).Scan(&id); err != nil {
			return err
		}
		st, err := tx.PrepareContext(ctx, db.S.Rebind("INSERT INTO fw_rollout_hosts (rollout_id, host_id, phase, state) VALUES (?, ?, ?, ?)"))
		if err != nil {
			return err
		}
		defer st.Close()
		for i, ph := range p.Phases {
			for _, c := range ph {
				if _, err := st.ExecContext(ctx, id, c.HostID, i, HostPending); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	db.S.LogEvent(ctx, "firmware", "rollout-created", fmt.Sprintf("rollout %d: %s %s to %d hosts", id, p.Spec.Component, p.Spec.Version, p.Total))
	return id, nil
}

// Rollout reads one rollout with its counts.
func (db *DB) Rollout(ctx context.Context, id int64) (Rollout, error) {
	rs, err := db.rollouts(ctx, "WHERE id = ?", id)
	if err != nil {
		return Rollout{}, err
	}
	if len(rs) == 0 {
		return Rollout{}, notFound(fmt.Sprintf("no rollout %d", id))
	}
	return rs[0], nil
}

// Rollouts lists rollouts, newest first.
func (db *DB) Rollouts(ctx context.Context) ([]Rollout, error) { return db.rollouts(ctx, "") }

func (db *DB) rollouts(ctx context.Context, where string, args ...any) ([]Rollout, error) {
	rows, err := db.S.Query(ctx, `SELECT id, name, release_id, state, phase, plan, halt_reason, created_at, updated_at
		FROM fw_rollouts `+where+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, err
	}
	var out []Rollout
	for rows.Next() {
		var r Rollout
		var plan string
		if err := rows.Scan(&r.ID, &r.Name, &r.ReleaseID, &r.State, &r.Phase, &plan, &r.HaltReason, &r.Created, &r.Updated); err != nil {
			rows.Close()
			return nil, err
		}
		if err := json.Unmarshal([]byte(plan), &r.Record); err != nil {
			rows.Close()
			return nil, fmt.Errorf("rollout %d: stored plan: %w", r.ID, err)
		}
		r.Counts = make([]map[string]int, len(r.Record.PhaseSizes))
		for i := range r.Counts {
			r.Counts[i] = map[string]int{}
		}
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		rows, err := db.S.Query(ctx, "SELECT phase, state, COUNT(*) FROM fw_rollout_hosts WHERE rollout_id = ? GROUP BY phase, state", out[i].ID)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var ph, n int
			var st string
			if err := rows.Scan(&ph, &st, &n); err != nil {
				rows.Close()
				return nil, err
			}
			if ph >= 0 && ph < len(out[i].Counts) {
				out[i].Counts[ph][st] = n
			}
		}
		rows.Close()
	}
	return out, nil
}

// RolloutHosts lists the hosts of a rollout by phase and name.
func (db *DB) RolloutHosts(ctx context.Context, id int64) ([]RolloutHost, error) {
	rows, err := db.S.Query(ctx, `SELECT rh.host_id, h.name, h.bmc, rh.phase, rh.state, rh.detail, rh.started_at, rh.finished_at
		FROM fw_rollout_hosts rh JOIN fw_hosts h ON h.id = rh.host_id WHERE rh.rollout_id = ? ORDER BY rh.phase, h.name`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RolloutHost
	for rows.Next() {
		var h RolloutHost
		var s, f sql.NullTime
		if err := rows.Scan(&h.HostID, &h.Host, &h.BMC, &h.Phase, &h.State, &h.Detail, &s, &f); err != nil {
			return nil, err
		}
		h.Started, h.Finished = s.Time, f.Time
		out = append(out, h)
	}
	return out, rows.Err()
}

// Installer installs a release on one host and reads back what it runs.
type Installer interface {
	// Install puts the release on the host. Once the install is committed
	// (the BMC accepted the image), it calls started with a handle to follow
	// it by; the controller stores the handle before waiting.
	Install(ctx context.Context, h RolloutHost, started func(handle string) error) error
	// Follow waits for an install a previous controller started.
	Follow(ctx context.Context, h RolloutHost, handle string) error
	// Probe looks for an install in flight on a host a dead controller had
	// claimed without recording a handle; "" when there is none.
	Probe(ctx context.Context, h RolloutHost) (string, error)
	// Version reads the version the host runs now.
	Version(ctx context.Context, h RolloutHost) (string, error)
}

// Rollbacker is an Installer that can put a host back on the image it ran
// before, where the hardware keeps it.
type Rollbacker interface {
	// Rollback returns what it did, or an error saying why it could not.
	Rollback(ctx context.Context, h RolloutHost, rel StoredRelease) (string, error)
}

// RedfishInstaller installs through the BMC's UpdateService: an HTTP push of
// the payload (or SimpleUpdate from ImageURL), then the task monitor until
// done, with a stall timeout. It never resets a BMC, even on failure.
type RedfishInstaller struct {
	Target   string // FirmwareInventory member id (BMC, BIOS)
	Filename string
	Payload  []byte
	// SimpleUpdate with ImageURL makes the BMC fetch the image itself.
	SimpleUpdate bool
	ImageURL     string
	Wait         redfish.WaitOptions
	// Client returns the client for a BMC URL (credentials, TLS); a plain
	// client when nil.
	Client func(bmc string) *redfish.Client
}

func (ri *RedfishInstaller) client(h RolloutHost) (*redfish.Client, error) {
	if h.BMC == "" {
		return nil, fmt.Errorf("host %s has no BMC address in the versions database", h.Host)
	}
	if ri.Client != nil {
		return ri.Client(h.BMC), nil
	}
	return &redfish.Client{BaseURL: h.BMC}, nil
}

func (ri *RedfishInstaller) Install(ctx context.Context, h RolloutHost, started func(string) error) error {
	c, err := ri.client(h)
	if err != nil {
		return err
	}
	targets := []string{"/redfish/v1/UpdateService/FirmwareInventory/" + ri.Target}
	// The request that hands the image over is not abandoned when the
	// controller is told to stop: half-sent, the host's state would be
	// unknown. Its HTTP client's timeout still bounds it.
	post := context.WithoutCancel(ctx)
	var uri string
	if ri.SimpleUpdate {
		uri, err = c.SimpleUpdate(post, ri.ImageURL, targets)
	} else {
		uri, err = c.Push(post, ri.Filename, ri.Payload, targets)
	}
	if err != nil {
		return err
	}
	if err := started("task " + uri); err != nil {
		return err
	}
	if uri == "" {
		return nil
	}
	_, err = c.WaitTask(ctx, uri, ri.Wait)
	return err
}

func (ri *RedfishInstaller) Follow(ctx context.Context, h RolloutHost, handle string) error {
	uri, ok := strings.CutPrefix(handle, "task ")
	if !ok {
		return fmt.Errorf("cannot follow %q", handle)
	}
	if uri == "" {
		return nil
	}
	c, err := ri.client(h)
	if err != nil {
		return err
	}
	_, err = c.WaitTask(ctx, uri, ri.Wait)
	return err
}

func (ri *RedfishInstaller) Probe(ctx context.Context, h RolloutHost) (string, error) {
	c, err := ri.client(h)
	if err != nil {
		return "", err
	}
	ts, err := c.RunningTasks(ctx)
	if err != nil || len(ts) == 0 {
		return "", err
	}
	return "task " + ts[0].ODataID, nil
}

// Rollback selects the BMC's previous image where the BMC keeps one (a
// Manager with two SoftwareImages, the updated one active): it PATCHes
// Links.ActiveSoftwareImage, which takes effect when the BMC next
// restarts. srekit never restarts a BMC; an operator chooses when.
// Only hosts that run the new release are rolled back: a failed flash left
// the old image active and needs nothing.
func (ri *RedfishInstaller) Rollback(ctx context.Context, h RolloutHost, rel StoredRelease) (string, error) {
	c, err := ri.client(h)
	if err != nil {
		return "", err
	}
	v, err := ri.Version(ctx, h)
	if err != nil {
		return "", err
	}
	if v != rel.Version {
		return "", fmt.Errorf("runs %q, not the release: nothing to roll back", v)
	}
	ms, err := c.Managers(ctx)
	if err != nil {
		return "", err
	}
	target := "/FirmwareInventory/" + ri.Target
	for _, m := range ms {
		active := m.Links.ActiveSoftwareImage.ID
		if !strings.HasSuffix(active, target) || len(m.Links.SoftwareImages) < 2 {
			continue
		}
		for _, img := range m.Links.SoftwareImages {
			if img.ID != active {
				if err := c.SetActiveImage(ctx, m.ODataID, img.ID); err != nil {
					return "", err
				}
				return "previous image " + img.ID + " made active for the BMC's next restart (not restarted by srekit)", nil
			}
		}
	}
	return "", errors.New("the BMC keeps no previous image")
}

func (ri *RedfishInstaller) Version(ctx context.Context, h RolloutHost) (string, error) {
	c, err := ri.client(h)
	if err != nil {
		return "", err
	}
	var si redfish.SoftwareInventory
	if err := c.Get(ctx, "/redfish/v1/UpdateService/FirmwareInventory/"+ri.Target, &si); err != nil {
		return "", err
	}
	return si.Version, nil
}

// CommandInstaller installs by running an allowed command per host (for
// example `ssh {host} fwupdmgr install {payload}`), and verifies by running
// VersionCommand, whose last output line is the version.
type CommandInstaller struct {
	Command, VersionCommand []string
	// Allowed lists the programs the commands may start; a command whose
	// first word is not in it is refused.
	Allowed       []string
	PayloadPath   string
	TargetVersion string
}

func (ci *CommandInstaller) check(args []string) error {
	if len(args) == 0 {
		return errors.New("empty command")
	}
	for _, a := range ci.Allowed {
		if a == args[0] {
			return nil
		}
	}
	return fmt.Errorf("command %q is not in the allowed list %v", args[0], ci.Allowed)
}

func (ci *CommandInstaller) run(ctx context.Context, args []string) (string, error) {
	if err := ci.check(args); err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s: %v: %s", args[0], err, lastLine(out))
	}
	return lastLine(out), nil
}

func (ci *CommandInstaller) Install(ctx context.Context, h RolloutHost, started func(string) error) error {
	args := expand(ci.Command, h.Host, ci.PayloadPath, ci.TargetVersion)
	if err := ci.check(args); err != nil {
		return err
	}
	if err := started("command"); err != nil {
		return err
	}
	_, err := ci.run(ctx, args)
	return err
}

// Follow cannot re-attach to a command of a dead controller: the host is
// verified as it is.
func (ci *CommandInstaller) Follow(ctx context.Context, h RolloutHost, handle string) error {
	return nil
}

// Probe finds nothing: a command leaves no trace to follow.
func (ci *CommandInstaller) Probe(ctx context.Context, h RolloutHost) (string, error) { return "", nil }

func (ci *CommandInstaller) Version(ctx context.Context, h RolloutHost) (string, error) {
	return ci.run(ctx, expand(ci.VersionCommand, h.Host, ci.PayloadPath, ci.TargetVersion))
}

// Event is what the controller reports as it goes.
type Event struct {
	Rollout int64
	Phase   int
	Host    string
	State   string // started, done, failed, phase-done, soaking, halted, completed
	Detail  string
}

// ErrHalted is returned (wrapped) by Controller.Run when a halt rule fired.
var ErrHalted = errors.New("rollout halted")

// Controller drives a stored rollout to its end: phase by phase, within the
// concurrency limit and the maintenance windows, draining, installing,
// verifying and undraining each host, halting on the rules of the spec. All
// state is in the store, so a controller that dies can be started again on
// the same rollout: it follows installs that were in flight and never starts
// a second install on any host.
type Controller struct {
	DB        *DB
	Installer Installer
	OnEvent   func(Event)
	Log       *slog.Logger
	// Now and Sleep are the clock (time.Now and a context-aware sleep when nil).
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

func (c *Controller) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Controller) sleep(ctx context.Context, d time.Duration) error {
	if c.Sleep != nil {
		return c.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (c *Controller) emit(e Event) {
	if c.Log != nil {
		c.Log.Info("rollout", "id", e.Rollout, "phase", e.Phase, "host", e.Host, "state", e.State, "detail", e.Detail)
	}
	if c.OnEvent != nil {
		c.OnEvent(e)
	}
}

type result struct {
	h       RolloutHost
	err     error
	aborted bool   // the controller is stopping: record nothing
	unclaim bool   // aborted before anything was done to the host: back to pending
	state   string // a final state other than done/failed (interrupted)
}

// Run drives rollout id until it completes, halts, or ctx ends.
func (c *Controller) Run(ctx context.Context, id int64) error {
	ro, err := c.DB.Rollout(ctx, id)
	if err != nil {
		return err
	}
	switch ro.State {
	case RolloutCompleted:
		return nil
	case RolloutHalted:
		return fmt.Errorf("rollout %d: %w earlier: %s", id, ErrHalted, ro.HaltReason)
	}
	rel, err := c.DB.Release(ctx, ro.ReleaseID)
	if err != nil {
		return err
	}
	spec := ro.Record.Spec
	stored := ro.Phase // the phase the store has
	for phase := ro.Phase; phase < len(ro.Record.PhaseSizes); phase++ {
		if phase != stored {
			if err := c.setPhase(ctx, id, phase, RolloutRunning, time.Time{}, &ro.Record); err != nil {
				return err
			}
			stored = phase
		}
		if err := c.runPhase(ctx, ro, rel, phase); err != nil {
			return err
		}
		c.emit(Event{Rollout: id, Phase: phase, State: "phase-done"})
		if phase+1 < len(ro.Record.PhaseSizes) && spec.Soak > 0 {
			until := ro.Record.SoakUntil
			if until.IsZero() || ro.Phase != phase {
				until = c.now().Add(spec.Soak.D())
				if err := c.setPhase(ctx, id, phase, RolloutSoaking, until, &ro.Record); err != nil {
					return err
				}
			}
			c.emit(Event{Rollout: id, Phase: phase, State: "soaking", Detail: "until " + until.Format(time.RFC3339)})
			if d := until.Sub(c.now()); d > 0 {
				if err := c.sleep(ctx, d); err != nil {
					return err
				}
			}
			ro.Record.SoakUntil = time.Time{}
		}
		ro.Phase = phase + 1
	}
	if _, err := c.DB.S.Exec(ctx, "UPDATE fw_rollouts SET state = ?, updated_at = ? WHERE id = ?", RolloutCompleted, c.now().UTC(), id); err != nil {
		return err
	}
	c.DB.S.LogEvent(ctx, "firmware", "rollout-completed", fmt.Sprintf("rollout %d", id))
	c.emit(Event{Rollout: id, State: "completed"})
	return nil
}

func (c *Controller) setPhase(ctx context.Context, id int64, phase int, state string, soakUntil time.Time, rec *RolloutRecord) error {
	rec.SoakUntil = soakUntil
	planJSON, _ := json.Marshal(rec)
	_, err := c.DB.S.Exec(ctx, "UPDATE fw_rollouts SET phase = ?, state = ?, plan = ?, updated_at = ? WHERE id = ?",
		phase, state, string(planJSON), c.now().UTC(), id)
	return err
}

func (c *Controller) runPhase(ctx context.Context, ro Rollout, rel StoredRelease, phase int) error {
	spec := ro.Record.Spec
	all, err := c.DB.RolloutHosts(ctx, ro.ID)
	if err != nil {
		return err
	}
	var pending []RolloutHost
	var resume []RolloutHost
	failedTotal, done, failed := 0, 0, 0
	for _, h := range all {
		if h.State == HostFailed || h.State == HostUnhealthy {
			failedTotal++ // unhealthy, for the concurrency formula
		}
		if h.Phase != phase {
			continue
		}
		switch h.State {
		case HostPending:
			pending = append(pending, h)
		case HostStarted:
			resume = append(resume, h)
		case HostDone:
			done++
		case HostFailed:
			failed++
		}
	}
	halt := func() string {
		if phase == 0 && failed > 0 {
			return fmt.Sprintf("%d failure(s) in the canary phase", failed)
		}
		if phase > 0 && failed >= spec.HaltFailures {
			rate := float64(done) / float64(done+failed)
			if rate < spec.HaltSuccess {
				return fmt.Sprintf("%d failures in phase %d, success %.0f%% under %.0f%%", failed, phase+1, rate*100, spec.HaltSuccess*100)
			}
		}
		return ""
	}
	results := make(chan result)
	inflight := 0
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Hosts a dead controller had started: follow, never re-install.
	for _, h := range resume {
		inflight++
		go func(h RolloutHost) {
			results <- c.follow(wctx, h, rel, spec)
		}(h)
	}
	reason := halt()
	budget := false // halted because the unavailability budget is spent
	// A store error stops new work, but the hosts in flight are still
	// settled below: an install that never handed its image over must go
	// back to pending, or a restart would take it for an interrupted one.
	var storeErr error
	for {
		for reason == "" && storeErr == nil && ctx.Err() == nil && len(pending) > 0 && InWindow(spec.Windows, c.now()) {
			limit := Concurrency(spec.MaxConcurrent, spec.ConcurrentPercent, ro.Record.Total, failedTotal)
			if limit == 0 && inflight == 0 {
				budget = true
				reason = fmt.Sprintf("unavailability budget spent: %d hosts failed or unhealthy, ceil(%.4g%% of %d) allows none", failedTotal, spec.ConcurrentPercent, ro.Record.Total)
				break
			}
			if inflight >= limit {
				break
			}
			h := pending[0]
			pending = pending[1:]
			ok, err := c.claim(ctx, ro.ID, h)
			if err != nil {
				storeErr = err
				cancel()
				break
			}
			if !ok {
				continue // another controller took it
			}
			inflight++
			c.emit(Event{Rollout: ro.ID, Phase: phase, Host: h.Host, State: "started"})
			go func(h RolloutHost) {
				results <- c.install(wctx, ro.ID, h, rel, spec)
			}(h)
		}
		if inflight == 0 {
			if reason != "" || storeErr != nil || ctx.Err() != nil || len(pending) == 0 {
				break
			}
			// Outside every maintenance window: wait for one.
			if err := c.sleep(ctx, time.Minute); err != nil {
				break
			}
			continue
		}
		r := <-results
		inflight--
		if r.aborted {
			if r.unclaim {
				if _, err := c.DB.S.Exec(context.WithoutCancel(ctx), "UPDATE fw_rollout_hosts SET state = ?, started_at = NULL WHERE rollout_id = ? AND host_id = ? AND state = ? AND detail = ''",
					HostPending, ro.ID, r.h.HostID, HostStarted); err != nil {
					c.emit(Event{Rollout: ro.ID, Phase: phase, Host: r.h.Host, State: "unclaim-failed", Detail: err.Error()})
				}
			}
			continue
		}
		state, detail := HostDone, ""
		if r.state != "" {
			state, detail = r.state, r.err.Error()
			if state == HostUnhealthy {
				failedTotal++
			}
		} else if r.err != nil {
			state, detail = HostFailed, r.err.Error()
			failed++
			failedTotal++
		} else {
			done++
		}
		if err := c.finish(ctx, ro.ID, r.h, rel, state, detail); err != nil {
			if storeErr == nil {
				storeErr = err
				cancel()
			}
			continue
		}
		c.emit(Event{Rollout: ro.ID, Phase: phase, Host: r.h.Host, State: state, Detail: detail})
		if reason == "" {
			reason = halt()
		}
	}
	if storeErr != nil {
		return storeErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if reason != "" {
		return c.halt(ctx, ro, rel, phase, reason, !budget)
	}
	return nil
}

// claim moves a host from pending to started; false when it was not pending.
//
// The write is not cut short by a stop: a claim the database took but
// reported as cancelled would leave a host started with nothing in flight.
// The install that follows sees the stop and gives the host back.
func (c *Controller) claim(ctx context.Context, id int64, h RolloutHost) (bool, error) {
	res, err := c.DB.S.Exec(context.WithoutCancel(ctx), "UPDATE fw_rollout_hosts SET state = ?, started_at = ? WHERE rollout_id = ? AND host_id = ? AND state = ?",
		HostStarted, c.now().UTC(), id, h.HostID, HostPending)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (c *Controller) install(ctx context.Context, id int64, h RolloutHost, rel StoredRelease, spec RolloutSpec) result {
	fail := func(err error) result {
		if ctx.Err() != nil {
			return result{h: h, aborted: true}
		}
		return result{h: h, err: err}
	}
	if ctx.Err() != nil {
		return result{h: h, aborted: true, unclaim: true}
	}
	// A host already unhealthy is not touched: installing on it would
	// blame the release for what was broken before.
	if err := spec.Health.Run(ctx, "health", h.Host, rel.Version); err != nil {
		if ctx.Err() != nil {
			return result{h: h, aborted: true, unclaim: true}
		}
		return result{h: h, state: HostUnhealthy, err: fmt.Errorf("unhealthy before the install, left alone: %w", err)}
	}
	if err := spec.Drain.Run(ctx, "drain", h.Host, rel.Version); err != nil {
		if ctx.Err() != nil {
			return result{h: h, aborted: true, unclaim: true}
		}
		return fail(err)
	}
	handled := false
	err := c.Installer.Install(ctx, h, func(handle string) error {
		handled = true
		// The BMC has taken the image: record how to follow it even if the
		// controller is being stopped, so a restart follows instead of guessing.
		_, err := c.DB.S.Exec(context.WithoutCancel(ctx), "UPDATE fw_rollout_hosts SET detail = ? WHERE rollout_id = ? AND host_id = ?", handle, id, h.HostID)
		return err
	})
	if err != nil {
		if !handled {
			// The hand-over itself failed (it is not cut short by a stop).
			return result{h: h, err: fmt.Errorf("install: %w", err)}
		}
		return fail(fmt.Errorf("install: %w", err))
	}
	if err := c.verify(ctx, h, rel, spec); err != nil {
		return fail(err)
	}
	if err := spec.Undrain.Run(ctx, "undrain", h.Host, rel.Version); err != nil {
		return fail(err)
	}
	return result{h: h}
}

// follow finishes a host a previous controller started: it waits for the
// recorded task, if any, then verifies. It never installs.
func (c *Controller) follow(ctx context.Context, h RolloutHost, rel StoredRelease, spec RolloutSpec) result {
	fail := func(err error) result {
		if ctx.Err() != nil {
			return result{h: h, aborted: true}
		}
		return result{h: h, err: err}
	}
	handle := h.Detail
	if handle == "" {
		found, err := c.Installer.Probe(ctx, h)
		if err != nil {
			return fail(fmt.Errorf("probe for an install in flight: %w", err))
		}
		handle = found
	}
	if handle != "" {
		if err := c.Installer.Follow(ctx, h, handle); err != nil {
			return fail(fmt.Errorf("install (resumed): %w", err))
		}
	}
	if err := c.verify(ctx, h, rel, spec); err != nil {
		if handle == "" && ctx.Err() == nil {
			return result{h: h, state: HostInterrupted, err: fmt.Errorf("controller stopped before the install was confirmed, none in flight, host not retried: %w", err)}
		}
		return fail(err)
	}
	if err := spec.Undrain.Run(ctx, "undrain", h.Host, rel.Version); err != nil {
		return fail(err)
	}
	return result{h: h}
}

// verify re-reads the version and runs the health check.
func (c *Controller) verify(ctx context.Context, h RolloutHost, rel StoredRelease, spec RolloutSpec) error {
	got, err := c.Installer.Version(ctx, h)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	want, err := Parse(rel.Version, rel.Format)
	if err != nil {
		return err
	}
	have, err := Parse(got, rel.Format)
	if err != nil {
		have, _ = ParseGuess(got)
	}
	if cmp, err := Compare(have, want); (err != nil || cmp != 0) && got != rel.Version {
		return fmt.Errorf("verify: host runs %q after the install, not %q", got, rel.Version)
	}
	if err := spec.Health.Run(ctx, "health", h.Host, rel.Version); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	return nil
}

// finish records a host's outcome; a host done also shows the new version
// in the versions database. It is not cut short by a stop: the outcome
// happened, and a restart should not have to rediscover it.
func (c *Controller) finish(ctx context.Context, id int64, h RolloutHost, rel StoredRelease, state, detail string) error {
	ctx = context.WithoutCancel(ctx)
	now := c.now().UTC()
	return c.DB.S.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE fw_rollout_hosts SET state = ?, detail = ?, finished_at = ? WHERE rollout_id = ? AND host_id = ?",
			state, detail, now, id, h.HostID); err != nil {
			return err
		}
		if state == HostDone {
			if _, err := tx.Exec(ctx, "UPDATE fw_host_components SET version = ?, source = ?, observed_at = ? WHERE host_id = ? AND component_id = ?",
				rel.Version, "rollout", now, h.HostID, rel.CompID); err != nil {
				return err
			}
		}
		return nil
	})
}

// rollback asks the installer, when it can, to put the failed hosts of the
// halted phase back on their previous image, and records the outcome.
func (c *Controller) rollback(ctx context.Context, id int64, rel StoredRelease, phase int) {
	rb, ok := c.Installer.(Rollbacker)
	if !ok {
		return
	}
	hosts, err := c.DB.RolloutHosts(ctx, id)
	if err != nil {
		return
	}
	for _, h := range hosts {
		if h.Phase != phase || h.State != HostFailed {
			continue
		}
		what, err := rb.Rollback(ctx, h, rel)
		if err != nil {
			what = "no rollback: " + err.Error()
		} else {
			what = "rolled back: " + what
		}
		c.DB.S.Exec(ctx, "UPDATE fw_rollout_hosts SET detail = ? WHERE rollout_id = ? AND host_id = ?", h.Detail+"; "+what, id, h.HostID)
		c.emit(Event{Rollout: id, Phase: phase, Host: h.Host, State: "rollback", Detail: what})
	}
}

// halt stops a rollout. A halt by a failure rule marks the release
// known-bad; a halt because the unavailability budget is spent does not
// (unhealthy hosts may have spent it), and says so.
func (c *Controller) halt(ctx context.Context, ro Rollout, rel StoredRelease, phase int, reason string, markBad bool) error {
	if _, err := c.DB.S.Exec(ctx, "UPDATE fw_rollouts SET state = ?, halt_reason = ?, phase = ?, updated_at = ? WHERE id = ?",
		RolloutHalted, reason, phase, c.now().UTC(), ro.ID); err != nil {
		return err
	}
	c.emit(Event{Rollout: ro.ID, Phase: phase, State: "halted", Detail: reason})
	if !markBad {
		return fmt.Errorf("rollout %d: %w in phase %d: %s; the release is not marked known-bad", ro.ID, ErrHalted, phase+1, reason)
	}
	if err := c.DB.MarkBad(ctx, rel.ID, true, fmt.Sprintf("rollout %d halted: %s", ro.ID, reason)); err != nil {
		return err
	}
	c.rollback(ctx, ro.ID, rel, phase)
	return fmt.Errorf("rollout %d: %w in phase %d: %s; release %s marked known-bad", ro.ID, ErrHalted, phase+1, reason, rel.Version)
}
