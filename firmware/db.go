package firmware

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/srekit/srekit/store"
)

// DB is the versions database over a store (tables in
// store/migrations/00050_firmware.sql). Version logic (formats, ordering) is
// done in Go with Compare, never in SQL, because SQL orders strings.
type DB struct{ S *store.Store }

// NewDB wraps an open store.
func NewDB(s *store.Store) *DB { return &DB{S: s} }

type querier interface {
	Exec(ctx context.Context, query string, args ...any) (sql.Result, error)
	Query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
}

// ComponentID returns the id of a component, creating it when new. format is
// recorded the first time one is known.
func (db *DB) ComponentID(ctx context.Context, k ComponentKey, f Format) (int64, error) {
	return componentID(ctx, db.S, k, f)
}

func componentID(ctx context.Context, q querier, k ComponentKey, f Format) (int64, error) {
	if k.Vendor == "" || k.Model == "" || k.Kind == "" {
		return 0, fmt.Errorf("component %q: vendor, model and kind are required", k.String())
	}
	if _, err := q.Exec(ctx, `INSERT INTO fw_components (vendor, model, kind, version_format) VALUES (?, ?, ?, ?)
		ON CONFLICT (vendor, model, kind) DO NOTHING`, k.Vendor, k.Model, k.Kind, string(f)); err != nil {
		return 0, err
	}
	var id int64
	var have string
	if err := q.QueryRow(ctx, "SELECT id, version_format FROM fw_components WHERE vendor = ? AND model = ? AND kind = ?",
		k.Vendor, k.Model, k.Kind).Scan(&id, &have); err != nil {
		return 0, err
	}
	if have == "" && f != FormatUnknown {
		if _, err := q.Exec(ctx, "UPDATE fw_components SET version_format = ? WHERE id = ?", string(f), id); err != nil {
			return 0, err
		}
	}
	return id, nil
}

// StoredRelease is a release as the database holds it.
type StoredRelease struct {
	ID        int64        `json:"id"`
	Key       ComponentKey `json:"component"`
	CompID    int64        `json:"-"`
	Version   string       `json:"version"`
	Format    Format       `json:"format"`
	Date      string       `json:"date,omitempty"`
	Urgency   string       `json:"urgency,omitempty"`
	Checksum  string       `json:"checksum,omitempty"`
	Package   string       `json:"package,omitempty"`
	KnownBad  bool         `json:"known_bad"`
	BadReason string       `json:"bad_reason,omitempty"`
	Issues    []Issue      `json:"issues,omitempty"`
	Target    []string     `json:"target_for,omitempty"` // host models that have it as target
}

// AddRelease records a release of component k (created when new), with its
// issues. Adding a release that exists updates its metadata and keeps its
// known-bad flag.
func (db *DB) AddRelease(ctx context.Context, k ComponentKey, f Format, r Release, checksum, pkg string) (int64, error) {
	if _, err := Parse(r.Version, f); err != nil {
		return 0, err
	}
	var id int64
	err := db.S.InTx(ctx, func(tx *store.Tx) error {
		cid, err := componentID(ctx, tx, k, f)
		if err != nil {
			return err
		}
		date := ""
		if !r.Date.IsZero() {
			date = r.Date.Format("2006-01-02")
		}
		if err := tx.QueryRow(ctx, `INSERT INTO fw_releases (component_id, version, format, released_on, urgency, checksum, package, description)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (component_id, version) DO UPDATE SET format = excluded.format, released_on = excluded.released_on,
			urgency = excluded.urgency, checksum = excluded.checksum, package = excluded.package, description = excluded.description
			RETURNING id`, cid, r.Version, string(f), date, r.Urgency, checksum, pkg, r.Description).Scan(&id); err != nil {
			return err
		}
		for _, is := range r.Issues {
			if _, err := tx.Exec(ctx, `INSERT INTO fw_release_issues (release_id, kind, issue) VALUES (?, ?, ?)
				ON CONFLICT (release_id, issue) DO NOTHING`, id, is.Type, is.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return id, err
}

// AddPackage records every release of a verified package under component k;
// the payload's sha256 is kept as the release checksum.
func (db *DB) AddPackage(ctx context.Context, p *Package, k ComponentKey) ([]int64, error) {
	var sum string
	if _, payload, err := p.Payload(); err == nil {
		sum, _ = Digest("sha256", payload)
	}
	var ids []int64
	for _, r := range p.Component.Releases {
		id, err := db.AddRelease(ctx, k, p.Component.VersionFormat, r, sum, p.Source)
		if err != nil {
			return nil, fmt.Errorf("release %s: %w", r.Version, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// FindRelease finds the release of component k with this version.
func (db *DB) FindRelease(ctx context.Context, k ComponentKey, version string) (StoredRelease, error) {
	rs, err := db.releases(ctx, "c.vendor = ? AND c.model = ? AND c.kind = ? AND r.version = ?", k.Vendor, k.Model, k.Kind, version)
	if err != nil {
		return StoredRelease{}, err
	}
	if len(rs) == 0 {
		return StoredRelease{}, notFound(fmt.Sprintf("no release %s of %s in the database (add it with `srekit firmware release add`)", version, k))
	}
	return rs[0], nil
}

// Release returns a release by id.
func (db *DB) Release(ctx context.Context, id int64) (StoredRelease, error) {
	rs, err := db.releases(ctx, "r.id = ?", id)
	if err != nil {
		return StoredRelease{}, err
	}
	if len(rs) == 0 {
		return StoredRelease{}, notFound(fmt.Sprintf("no release with id %d", id))
	}
	return rs[0], nil
}

// Releases lists every release with its issues and the models targeting it.
func (db *DB) Releases(ctx context.Context) ([]StoredRelease, error) {
	return db.releases(ctx, "1 = 1")
}

func (db *DB) releases(ctx context.Context, where string, args ...any) ([]StoredRelease, error) {
	rows, err := db.S.Query(ctx, `SELECT r.id, c.id, c.vendor, c.model, c.kind, r.version, r.format, r.released_on, r.urgency,
		r.checksum, r.package, r.known_bad, r.bad_reason
		FROM fw_releases r JOIN fw_components c ON c.id = r.component_id WHERE `+where+` ORDER BY c.vendor, c.model, c.kind, r.id`, args...)
	if err != nil {
		return nil, err
	}
	var out []StoredRelease
	byID := map[int64]int{}
	for rows.Next() {
		var r StoredRelease
		var f string
		if err := rows.Scan(&r.ID, &r.CompID, &r.Key.Vendor, &r.Key.Model, &r.Key.Kind, &r.Version, &f, &r.Date, &r.Urgency,
			&r.Checksum, &r.Package, &r.KnownBad, &r.BadReason); err != nil {
			rows.Close()
			return nil, err
		}
		r.Format = Format(f)
		byID[r.ID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	rows, err = db.S.Query(ctx, "SELECT release_id, kind, issue FROM fw_release_issues ORDER BY issue")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		var is Issue
		if err := rows.Scan(&id, &is.Type, &is.ID); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := byID[id]; ok {
			out[i].Issues = append(out[i].Issues, is)
		}
	}
	rows.Close()
	rows, err = db.S.Query(ctx, "SELECT release_id, model FROM fw_targets ORDER BY model")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var m string
		if err := rows.Scan(&id, &m); err != nil {
			return nil, err
		}
		if i, ok := byID[id]; ok {
			out[i].Target = append(out[i].Target, m)
		}
	}
	return out, rows.Err()
}

// SetTarget approves a release as the target of component k on hosts of a
// model. A known-bad release cannot be a target.
func (db *DB) SetTarget(ctx context.Context, model string, k ComponentKey, version string) error {
	if model == "" {
		return errors.New("target needs a host model")
	}
	r, err := db.FindRelease(ctx, k, version)
	if err != nil {
		return err
	}
	if r.KnownBad {
		return fmt.Errorf("release %s of %s is known-bad (%s): it cannot be a target", version, k, r.BadReason)
	}
	_, err = db.S.Exec(ctx, `INSERT INTO fw_targets (model, component_id, release_id, approved_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (model, component_id) DO UPDATE SET release_id = excluded.release_id, approved_at = excluded.approved_at`,
		model, r.CompID, r.ID, time.Now().UTC())
	return err
}

// MarkBad flags a release known-bad with a reason (or clears the flag when
// bad is false), and logs it in the audit trail.
func (db *DB) MarkBad(ctx context.Context, releaseID int64, bad bool, reason string) error {
	if bad && reason == "" {
		return errors.New("marking a release known-bad needs a reason")
	}
	res, err := db.S.Exec(ctx, "UPDATE fw_releases SET known_bad = ?, bad_reason = ? WHERE id = ?", bad, reason, releaseID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound(fmt.Sprintf("no release with id %d", releaseID))
	}
	kind := "release-bad"
	if !bad {
		kind = "release-good"
	}
	return db.S.LogEvent(ctx, "firmware", kind, fmt.Sprintf("release %d: %s", releaseID, reason))
}

// Ingest stores inventory reports: each host is created or updated, and the
// rows of each reported source replace that source's earlier rows for the
// host (a slot no longer reported disappears). Hosts are written in
// transactions of a few hundred so a large fleet streams in.
func (db *DB) Ingest(ctx context.Context, hosts []Host) error {
	comps := map[ComponentKey]int64{}
	const batch = 500
	for start := 0; start < len(hosts); start += batch {
		chunk := hosts[start:min(start+batch, len(hosts))]
		err := db.S.InTx(ctx, func(tx *store.Tx) error {
			in := &ingester{db: db, tx: tx, stmts: map[string]*sql.Stmt{}}
			defer in.close()
			for _, h := range chunk {
				if err := in.host(ctx, h, comps); err != nil {
					return fmt.Errorf("host %s: %w", h.Name, err)
				}
			}
			return nil
		})
		if err != nil {
			// A failed transaction may have created components whose ids
			// are now gone: forget them.
			clear(comps)
			return err
		}
	}
	return nil
}

// ingester holds prepared statements for one transaction of Ingest:
// preparing once per batch instead of once per host is most of its speed.
type ingester struct {
	db    *DB
	tx    *store.Tx
	stmts map[string]*sql.Stmt
}

func (in *ingester) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := in.stmts[q]; ok {
		return st, nil
	}
	st, err := in.tx.PrepareContext(ctx, in.db.S.Rebind(q))
	if err != nil {
		return nil, err
	}
	in.stmts[q] = st
	return st, nil
}

func (in *ingester) close() {
	for _, st := range in.stmts {
		st.Close()
	}
}

const hostUpsert = `INSERT INTO fw_hosts (name, model, rack, zone, bmc, seen_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET
		  model = CASE WHEN excluded.model <> '' THEN excluded.model ELSE fw_hosts.model END,
		  rack = CASE WHEN excluded.rack <> '' THEN excluded.rack ELSE fw_hosts.rack END,
		  zone = CASE WHEN excluded.zone <> '' THEN excluded.zone ELSE fw_hosts.zone END,
		  bmc = CASE WHEN excluded.bmc <> '' THEN excluded.bmc ELSE fw_hosts.bmc END,
		  seen_at = excluded.seen_at
		RETURNING id`

func (in *ingester) host(ctx context.Context, h Host, comps map[ComponentKey]int64) error {
	tx := in.tx
	if strings.TrimSpace(h.Name) == "" {
		return errors.New("host without a name")
	}
	now := time.Now().UTC()
	var hid int64
	up, err := in.stmt(ctx, hostUpsert)
	if err != nil {
		return err
	}
	if err := up.QueryRowContext(ctx, h.Name, h.Model, h.Rack, h.Zone, h.BMC, now).Scan(&hid); err != nil {
		return err
	}
	del, err := in.stmt(ctx, "DELETE FROM fw_host_components WHERE host_id = ? AND source = ?")
	if err != nil {
		return err
	}
	sources := map[string]bool{}
	slots := map[string]bool{}
	for _, o := range h.Components {
		if o.Slot == "" || o.Version == "" {
			return fmt.Errorf("component %s: slot and version are required", o.Key())
		}
		if slots[o.Slot] {
			return fmt.Errorf("slot %s reported twice", o.Slot)
		}
		slots[o.Slot] = true
		if o.Source == "" {
			return fmt.Errorf("slot %s: no source", o.Slot)
		}
		if !sources[o.Source] {
			sources[o.Source] = true
			if _, err := del.ExecContext(ctx, hid, o.Source); err != nil {
				return err
			}
		}
	}
	if len(h.Components) == 0 {
		return nil
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO fw_host_components (host_id, slot, component_id, version, source, observed_at) VALUES ")
	args := make([]any, 0, 6*len(h.Components))
	for i, o := range h.Components {
		cid, ok := comps[o.Key()]
		if !ok {
			var err error
			if cid, err = componentID(ctx, tx, o.Key(), o.Format); err != nil {
				return err
			}
			comps[o.Key()] = cid
		}
		at := o.At
		if at.IsZero() {
			at = now
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(?, ?, ?, ?, ?, ?)")
		args = append(args, hid, o.Slot, cid, o.Version, o.Source, at.UTC())
	}
	sb.WriteString(` ON CONFLICT (host_id, slot) DO UPDATE SET component_id = excluded.component_id, version = excluded.version,
		source = excluded.source, observed_at = excluded.observed_at`)
	ins, err := in.stmt(ctx, sb.String())
	if err != nil {
		return err
	}
	_, err = ins.ExecContext(ctx, args...)
	return err
}

// Filter narrows Status to some hosts.
type Filter struct {
	Host  string // exact host name
	Model string
	Kind  string
}

// Status evaluates every host component against its target and the
// known-bad releases.
func (db *DB) Status(ctx context.Context, f Filter) ([]Status, map[int64]Format, error) {
	formats := map[int64]Format{}
	bad := map[int64]map[string]string{}
	rows, err := db.S.Query(ctx, "SELECT id, version_format FROM fw_components")
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var id int64
		var fm string
		if err := rows.Scan(&id, &fm); err != nil {
			rows.Close()
			return nil, nil, err
		}
		formats[id] = Format(fm)
	}
	rows.Close()
	rows, err = db.S.Query(ctx, "SELECT component_id, version, bad_reason FROM fw_releases WHERE known_bad = ?", true)
	if err != nil {
		return nil, nil, err
	}
	for rows.Next() {
		var id int64
		var v, reason string
		if err := rows.Scan(&id, &v, &reason); err != nil {
			rows.Close()
			return nil, nil, err
		}
		if bad[id] == nil {
			bad[id] = map[string]string{}
		}
		bad[id][v] = reason
	}
	rows.Close()
	where, args := []string{"1 = 1"}, []any{}
	if f.Host != "" {
		where, args = append(where, "h.name = ?"), append(args, f.Host)
	}
	if f.Model != "" {
		where, args = append(where, "h.model = ?"), append(args, f.Model)
	}
	if f.Kind != "" {
		where, args = append(where, "c.kind = ?"), append(args, f.Kind)
	}
	rows, err = db.S.Query(ctx, `SELECT h.id, h.name, h.model, h.rack, h.zone, hc.slot, c.id, c.vendor, c.model, c.kind,
		hc.version, hc.source, hc.observed_at, COALESCE(tr.version, '')
		FROM fw_host_components hc
		JOIN fw_hosts h ON h.id = hc.host_id
		JOIN fw_components c ON c.id = hc.component_id
		LEFT JOIN fw_targets t ON t.model = h.model AND t.component_id = c.id
		LEFT JOIN fw_releases tr ON tr.id = t.release_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY h.name, hc.slot`, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var out []Status
	for rows.Next() {
		var s Status
		var target string
		if err := rows.Scan(&s.HostID, &s.Host, &s.Model, &s.Rack, &s.Zone, &s.Slot, &s.CompID, &s.Key.Vendor, &s.Key.Model, &s.Key.Kind,
			&s.Version, &s.Source, &s.Observed, &target); err != nil {
			return nil, nil, err
		}
		evaluate(&s, formats[s.CompID], target, bad[s.CompID])
		out = append(out, s)
	}
	return out, formats, rows.Err()
}

// Behind lists host components older than their approved target.
func (db *DB) Behind(ctx context.Context) ([]Status, error) { return db.byState(ctx, StateBehind) }

// OnKnownBad lists host components running a release marked known-bad.
func (db *DB) OnKnownBad(ctx context.Context) ([]Status, error) { return db.byState(ctx, StateBad) }

func (db *DB) byState(ctx context.Context, want State) ([]Status, error) {
	all, _, err := db.Status(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, s := range all {
		if s.State == want {
			out = append(out, s)
		}
	}
	return out, nil
}

// Affected is a host component exposed to a CVE: it runs a version older
// than the first release that fixes it. Certain is false when the versions do
// not order and srekit cannot tell.
type Affected struct {
	Status
	FixedIn string `json:"fixed_in"`
	Certain bool   `json:"certain"`
}

// ErrNoFix is AffectedBy's answer for an issue no stored release fixes
// (unknown to the database, so nothing can be said about exposure).
var ErrNoFix = errors.New("no release in the database fixes it")

// ErrNotFound is matched (with errors.Is) by lookups of a release or a
// rollout that is not stored, so that faces can tell "no such thing" from a
// failing database; the error itself names what was missing.
var ErrNotFound = errors.New("not found")

type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == ErrNotFound }

// AffectedBy lists the host components exposed to a CVE (or any issue id).
func (db *DB) AffectedBy(ctx context.Context, cve string) ([]Affected, error) {
	rows, err := db.S.Query(ctx, `SELECT r.component_id, r.version, c.version_format FROM fw_release_issues i
		JOIN fw_releases r ON r.id = i.release_id JOIN fw_components c ON c.id = r.component_id
		WHERE UPPER(i.issue) = UPPER(?)`, cve)
	if err != nil {
		return nil, err
	}
	fixes := map[int64]Version{} // lowest fixing version per component
	for rows.Next() {
		var cid int64
		var v, f string
		if err := rows.Scan(&cid, &v, &f); err != nil {
			rows.Close()
			return nil, err
		}
		pv, err := Parse(v, Format(f))
		if err != nil {
			continue
		}
		if cur, ok := fixes[cid]; !ok || Less(pv, cur) {
			fixes[cid] = pv
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(fixes) == 0 {
		return nil, fmt.Errorf("%s: %w", cve, ErrNoFix)
	}
	all, formats, err := db.Status(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	var out []Affected
	for _, s := range all {
		fix, ok := fixes[s.CompID]
		if !ok {
			continue
		}
		v, err := Parse(s.Version, formats[s.CompID])
		if err != nil {
			v, _ = ParseGuess(s.Version)
		}
		c, err := Compare(v, fix)
		switch {
		case err != nil && s.Version != fix.Raw:
			out = append(out, Affected{Status: s, FixedIn: fix.Raw, Certain: false})
		case err == nil && c < 0:
			out = append(out, Affected{Status: s, FixedIn: fix.Raw, Certain: true})
		}
	}
	return out, nil
}

// Spread returns the version spread per (model, component).
func (db *DB) Spread(ctx context.Context) ([]Spread, error) {
	all, formats, err := db.Status(ctx, Filter{})
	if err != nil {
		return nil, err
	}
	return SpreadOf(all, formats), nil
}

// HostInfo is a host row.
type HostInfo struct {
	ID     int64     `json:"id"`
	Name   string    `json:"name"`
	Model  string    `json:"model"`
	Rack   string    `json:"rack"`
	Zone   string    `json:"zone"`
	BMC    string    `json:"bmc,omitempty"`
	SeenAt time.Time `json:"seen_at"`
}

// Hosts lists the fleet's hosts by name.
func (db *DB) Hosts(ctx context.Context) ([]HostInfo, error) {
	rows, err := db.S.Query(ctx, "SELECT id, name, model, rack, zone, bmc, seen_at FROM fw_hosts ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []HostInfo
	for rows.Next() {
		var h HostInfo
		var seen sql.NullTime
		if err := rows.Scan(&h.ID, &h.Name, &h.Model, &h.Rack, &h.Zone, &h.BMC, &seen); err != nil {
			return nil, err
		}
		h.SeenAt = seen.Time
		out = append(out, h)
	}
	return out, rows.Err()
}
