package drills

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/srekit/srekit/store"
)

// Status of a stored drill.
const (
	StatusPlanned   = "planned"   // decided ahead, not yet due
	StatusPaging    = "paging"    // claimed by the runner; a crash here is resumed with the same dedup key
	StatusPaged     = "paged"     // the page was accepted by the pager
	StatusDryRun    = "dry-run"   // due in dry run: recorded, nobody paged
	StatusSkipped   = "skipped"   // a rule said no at paging time; reason says which
	StatusFailed    = "failed"    // the pager refused it for good; reason says why
	StatusCancelled = "cancelled" // removed from the plan (opt-out, pause)
)

// Record is a stored drill.
type Record struct {
	ID          int64      `json:"id"`
	DedupKey    string     `json:"dedup_key"`
	Person      string     `json:"person"`
	Team        string     `json:"team"`
	DrillID     string     `json:"drill_id"`
	At          time.Time  `json:"at"`
	Status      string     `json:"status"`
	Reason      string     `json:"reason,omitempty"`
	DryRun      bool       `json:"dry_run"`
	PagedAt     *time.Time `json:"paged_at,omitempty"`
	AckedAt     *time.Time `json:"acked_at,omitempty"`
	MitigatedAt *time.Time `json:"mitigated_at,omitempty"`
	AckSource   string     `json:"ack_source,omitempty"`
}

// DedupKey identifies a drill to the pagers: the same drill sent twice (a
// retry after a crash) is the same incident at PagerDuty and the same alert
// at Alertmanager, never a second page.
func DedupKey(p Planned) string {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s|%d|%s", p.Person, p.At.UnixMilli(), p.DrillID)))
	return "srekit-drill-" + hex.EncodeToString(h[:8])
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).UTC()
	return &t
}

// SavePlan stores planned drills; drills already stored are left as they are.
func SavePlan(ctx context.Context, st *store.Store, plan []Planned, dryRun bool) (added int, err error) {
	err = st.InTx(ctx, func(tx *store.Tx) error {
		for _, p := range plan {
			res, err := tx.Exec(ctx, `INSERT INTO drills_pages (dedup_key, person, team, drill_id, at_ms, status, dry_run)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				DedupKey(p), p.Person, p.Team, p.DrillID, ms(p.At), StatusPlanned, dryRun)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			added += int(n)
		}
		return nil
	})
	return added, err
}

const recordColumns = `id, dedup_key, person, team, drill_id, at_ms, status, reason, dry_run, paged_ms, acked_ms, mitigated_ms, ack_source`

func scanRecords(rows *sql.Rows) ([]Record, error) {
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var at int64
		var paged, acked, mitigated sql.NullInt64
		if err := rows.Scan(&r.ID, &r.DedupKey, &r.Person, &r.Team, &r.DrillID, &at, &r.Status, &r.Reason, &r.DryRun,
			&paged, &acked, &mitigated, &r.AckSource); err != nil {
			return nil, err
		}
		r.At = time.UnixMilli(at).UTC()
		r.PagedAt, r.AckedAt, r.MitigatedAt = fromMS(paged), fromMS(acked), fromMS(mitigated)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Records lists stored drills with at in [from, to), oldest first; a zero
// time leaves that side open. status filters when non-empty.
func Records(ctx context.Context, st *store.Store, from, to time.Time, status ...string) ([]Record, error) {
	q := "SELECT " + recordColumns + " FROM drills_pages WHERE 1=1"
	var args []any
	if !from.IsZero() {
		q += " AND at_ms >= ?"
		args = append(args, ms(from))
	}
	if !to.IsZero() {
		q += " AND at_ms < ?"
		args = append(args, ms(to))
	}
	if len(status) > 0 {
		q += " AND status IN (" + strings.TrimSuffix(strings.Repeat("?,", len(status)), ",") + ")"
		for _, s := range status {
			args = append(args, s)
		}
	}
	rows, err := st.Query(ctx, q+" ORDER BY at_ms, person", args...)
	if err != nil {
		return nil, err
	}
	return scanRecords(rows)
}

// RecordByID returns one stored drill.
func RecordByID(ctx context.Context, st *store.Store, id int64) (Record, error) {
	rows, err := st.Query(ctx, "SELECT "+recordColumns+" FROM drills_pages WHERE id = ?", id)
	if err != nil {
		return Record{}, err
	}
	rs, err := scanRecords(rows)
	if err != nil {
		return Record{}, err
	}
	if len(rs) == 0 {
		return Record{}, fmt.Errorf("no drill %d", id)
	}
	return rs[0], nil
}

// RecordByKey returns the stored drill with a dedup key.
func RecordByKey(ctx context.Context, st *store.Store, key string) (Record, error) {
	rows, err := st.Query(ctx, "SELECT "+recordColumns+" FROM drills_pages WHERE dedup_key = ?", key)
	if err != nil {
		return Record{}, err
	}
	rs, err := scanRecords(rows)
	if err != nil {
		return Record{}, err
	}
	if len(rs) == 0 {
		return Record{}, fmt.Errorf("no drill with key %q", key)
	}
	return rs[0], nil
}

// claim moves a drill from planned to paging; false if someone else did.
func claim(ctx context.Context, st *store.Store, id int64) (bool, error) {
	res, err := st.Exec(ctx, "UPDATE drills_pages SET status = ? WHERE id = ? AND status = ?", StatusPaging, id, StatusPlanned)
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

func setStatus(ctx context.Context, st *store.Store, id int64, status, reason string, paged *time.Time) error {
	if paged != nil {
		_, err := st.Exec(ctx, "UPDATE drills_pages SET status = ?, reason = ?, paged_ms = ? WHERE id = ?", status, reason, ms(*paged), id)
		return err
	}
	_, err := st.Exec(ctx, "UPDATE drills_pages SET status = ?, reason = ? WHERE id = ?", status, reason, id)
	return err
}

// ErrAlreadyAcked is returned when a drill was acknowledged before.
var ErrAlreadyAcked = errors.New("already acknowledged")

// Acknowledge records the first acknowledgement of a paged drill.
func Acknowledge(ctx context.Context, st *store.Store, id int64, at time.Time, source string) error {
	res, err := st.Exec(ctx, "UPDATE drills_pages SET acked_ms = ?, ack_source = ? WHERE id = ? AND acked_ms IS NULL AND status IN (?, ?)",
		ms(at), source, id, StatusPaged, StatusDryRun)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		r, err := RecordByID(ctx, st, id)
		if err != nil {
			return err
		}
		if r.AckedAt != nil {
			return ErrAlreadyAcked
		}
		return fmt.Errorf("drill %d is %s, not paged", id, r.Status)
	}
	return nil
}

// Mitigate records when the responder says the drill's problem is handled.
func Mitigate(ctx context.Context, st *store.Store, id int64, at time.Time) error {
	res, err := st.Exec(ctx, "UPDATE drills_pages SET mitigated_ms = ?, acked_ms = COALESCE(acked_ms, ?) WHERE id = ? AND mitigated_ms IS NULL AND status IN (?, ?)",
		ms(at), ms(at), id, StatusPaged, StatusDryRun)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("drill %d is not paged or is already mitigated", id)
	}
	return nil
}

// Finding is what a responder found during a drill.
type Finding struct {
	ID      int64     `json:"id"`
	PageID  int64     `json:"page_id"`
	Text    string    `json:"text"`
	Tags    []string  `json:"tags"`
	Created time.Time `json:"created"`
	Person  string    `json:"person"`
	Team    string    `json:"team"`
	DrillID string    `json:"drill_id"`
}

// AddFinding records a finding against a drill.
func AddFinding(ctx context.Context, st *store.Store, pageID int64, text string, tags []string, at time.Time) error {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > 10000 {
		return errors.New("a finding needs text (at most 10,000 characters)")
	}
	for _, tg := range tags {
		if tg == "" || strings.ContainsAny(tg, ", \n") || len(tg) > 50 {
			return fmt.Errorf("tag %q: one word of at most 50 characters", tg)
		}
	}
	if _, err := RecordByID(ctx, st, pageID); err != nil {
		return err
	}
	_, err := st.Exec(ctx, "INSERT INTO drills_findings (page_id, text, tags, created_ms) VALUES (?, ?, ?, ?)",
		pageID, text, strings.Join(tags, ","), ms(at))
	return err
}

// Findings lists all findings, newest first.
func Findings(ctx context.Context, st *store.Store) ([]Finding, error) {
	rows, err := st.Query(ctx, `SELECT f.id, f.page_id, f.text, f.tags, f.created_ms, p.person, p.team, p.drill_id
		FROM drills_findings f JOIN drills_pages p ON p.id = f.page_id ORDER BY f.created_ms DESC, f.id DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Finding
	for rows.Next() {
		var f Finding
		var tags string
		var created int64
		if err := rows.Scan(&f.ID, &f.PageID, &f.Text, &tags, &created, &f.Person, &f.Team, &f.DrillID); err != nil {
			return nil, err
		}
		if tags != "" {
			f.Tags = strings.Split(tags, ",")
		}
		f.Created = time.UnixMilli(created).UTC()
		out = append(out, f)
	}
	return out, rows.Err()
}

// AddRealPage records a real (not drill) page of a person.
func AddRealPage(ctx context.Context, st *store.Store, person, team string, at time.Time, source string) error {
	_, err := st.Exec(ctx, "INSERT INTO drills_real_pages (person, team, at_ms, source) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
		person, team, ms(at), source)
	return err
}

// SetOptIn overrides a person's opt-in expiry ("" opts out).
func SetOptIn(ctx context.Context, st *store.Store, person, until string, now time.Time) error {
	if until != "" {
		if _, err := time.Parse("2006-01-02", until); err != nil {
			return fmt.Errorf("opt-in date %q: want YYYY-MM-DD", until)
		}
	}
	_, err := st.Exec(ctx, `INSERT INTO drills_optins (person, until_date, updated_ms) VALUES (?, ?, ?)
		ON CONFLICT (person) DO UPDATE SET until_date = excluded.until_date, updated_ms = excluded.updated_ms`, person, until, ms(now))
	return err
}

// ApplyOptIns applies the stored opt-in overrides to the configuration.
func ApplyOptIns(ctx context.Context, st *store.Store, c *Config) error {
	rows, err := st.Query(ctx, "SELECT person, until_date FROM drills_optins")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var person, until string
		if err := rows.Scan(&person, &until); err != nil {
			return err
		}
		p, ok := c.Person(person)
		if !ok {
			continue
		}
		p.OptInUntil = until
		p.optIn = time.Time{}
		if until != "" {
			d, err := time.ParseInLocation("2006-01-02", until, p.loc)
			if err != nil {
				return err
			}
			p.optIn = d.Add(24 * time.Hour)
		}
	}
	return rows.Err()
}

// PausedKey is the settings key of the global pause switch.
const PausedKey = "drills_paused"

// Paused reports whether the global pause switch is on (in the store or the config).
func Paused(ctx context.Context, st *store.Store, c *Config) (bool, error) {
	if c.Rules.Paused {
		return true, nil
	}
	v, ok, err := st.Setting(ctx, PausedKey)
	return ok && v == "true", err
}

// SetPaused turns the global pause switch on or off.
func SetPaused(ctx context.Context, st *store.Store, paused bool) error {
	return st.SetSetting(ctx, PausedKey, fmt.Sprint(paused))
}

// ConfigKey is the settings key of the stored configuration.
const ConfigKey = "drills_config"

// SaveConfig validates a configuration and stores it for the server's runner
// and pages. What does not validate is never stored.
func SaveConfig(ctx context.Context, st *store.Store, yamlText string) (*Config, error) {
	c, err := ParseConfig("drills configuration", strings.NewReader(yamlText))
	if err != nil {
		return nil, err
	}
	if err := st.SetSetting(ctx, ConfigKey, yamlText); err != nil {
		return nil, err
	}
	return c, nil
}

// LoadConfig returns the stored configuration with the opt-in overrides
// applied; ok is false when none is stored.
func LoadConfig(ctx context.Context, st *store.Store) (c *Config, ok bool, err error) {
	text, ok, err := st.Setting(ctx, ConfigKey)
	if err != nil || !ok {
		return nil, ok, err
	}
	c, err = ParseConfig("stored drills configuration", strings.NewReader(text))
	if err != nil {
		return nil, true, err
	}
	if err := ApplyOptIns(ctx, st, c); err != nil {
		return nil, true, err
	}
	return c, true, nil
}
