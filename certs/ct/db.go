package ct

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/srekit/srekit/store"
)

func nowMS() int64 { return time.Now().UnixMilli() }

// LogState is a log's row in ct_logs.
type LogState struct {
	LogID             string
	Description       string
	Operator          string
	Kind              Kind
	URL               string
	ListState         string
	Position          uint64
	FrontierStart     uint64
	Frontier          [][]byte `json:"-"`
	VerifiedSize      uint64
	VerifiedRoot      []byte
	VerifiedTimestamp uint64
	LatestSize        uint64
	LatestTimestamp   uint64
	Status            string
	LastError         string
	Updated           time.Time
}

// Backlog is how many entries of the newest tree head are not processed yet.
func (s *LogState) Backlog() uint64 {
	if s.LatestSize > s.Position {
		return s.LatestSize - s.Position
	}
	return 0
}

const logCols = `log_id, description, operator, kind, url, list_state, position, frontier_start, frontier,
	verified_size, verified_root, verified_timestamp, latest_size, latest_timestamp, status, last_error, updated_ms`

func scanLogState(sc interface{ Scan(...any) error }) (*LogState, error) {
	var s LogState
	var frontier, root []byte
	var pos, fstart, vsize, vts, lsize, lts, upd int64
	if err := sc.Scan(&s.LogID, &s.Description, &s.Operator, &s.Kind, &s.URL, &s.ListState, &pos, &fstart, &frontier,
		&vsize, &root, &vts, &lsize, &lts, &s.Status, &s.LastError, &upd); err != nil {
		return nil, err
	}
	s.Position, s.FrontierStart, s.VerifiedSize, s.VerifiedTimestamp = uint64(pos), uint64(fstart), uint64(vsize), uint64(vts)
	s.LatestSize, s.LatestTimestamp = uint64(lsize), uint64(lts)
	s.VerifiedRoot = root
	s.Updated = time.UnixMilli(upd)
	if len(frontier)%32 != 0 {
		return nil, fmt.Errorf("log %s: stored frontier of %d bytes is corrupt", s.LogID, len(frontier))
	}
	for i := 0; i < len(frontier); i += 32 {
		s.Frontier = append(s.Frontier, frontier[i:i+32])
	}
	return &s, nil
}

// loadOrCreateLog returns the stored state of l, creating it at start when new.
func loadOrCreateLog(ctx context.Context, st *store.Store, l *LogInfo, start uint64) (*LogState, error) {
	id := l.IDString()
	_, err := st.Exec(ctx, `INSERT INTO ct_logs (log_id, description, operator, kind, url, list_state, position, frontier_start, updated_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log_id) DO NOTHING`,
		id, l.Description, l.Operator, string(l.Kind), l.URL, l.State, int64(start), int64(start), nowMS())
	if err != nil {
		return nil, fmt.Errorf("store log %s: %w", l.Description, err)
	}
	// The list may have changed the description, URL or state.
	if _, err := st.Exec(ctx, `UPDATE ct_logs SET description = ?, operator = ?, url = ?, list_state = ? WHERE log_id = ?`,
		l.Description, l.Operator, l.URL, l.State, id); err != nil {
		return nil, err
	}
	return LoadLog(ctx, st, id)
}

// LoadLog reads one log's state.
func LoadLog(ctx context.Context, st *store.Store, id string) (*LogState, error) {
	s, err := scanLogState(st.QueryRow(ctx, `SELECT `+logCols+` FROM ct_logs WHERE log_id = ?`, id))
	if err != nil {
		return nil, fmt.Errorf("load log %s: %w", id, err)
	}
	return s, nil
}

// Logs lists every monitored log's state.
func Logs(ctx context.Context, st *store.Store) ([]*LogState, error) {
	rows, err := st.Query(ctx, `SELECT `+logCols+` FROM ct_logs ORDER BY description`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*LogState
	for rows.Next() {
		s, err := scanLogState(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func joinHashes(h [][]byte) []byte {
	b := make([]byte, 0, 32*len(h))
	for _, x := range h {
		b = append(b, x...)
	}
	return b
}

// setStatus records a log's status and last error.
func setStatus(ctx context.Context, st *store.Store, id, status, lastErr string) error {
	_, err := st.Exec(ctx, `UPDATE ct_logs SET status = ?, last_error = ?, updated_ms = ? WHERE log_id = ?`, status, lastErr, nowMS(), id)
	return err
}

// Problem is a loud report about a log.
type Problem struct {
	ID     int64
	LogID  string
	Kind   string // fork, bad_signature, inconsistent
	Detail string
	At     time.Time
}

func recordProblem(ctx context.Context, st *store.Store, p Problem) error {
	_, err := st.Exec(ctx, `INSERT INTO ct_problems (log_id, kind, detail, at_ms) VALUES (?, ?, ?, ?)`, p.LogID, p.Kind, p.Detail, nowMS())
	if err == nil {
		err = setStatus(ctx, st, p.LogID, p.Kind, p.Detail)
	}
	return err
}

// Problems lists the reports, newest first.
func Problems(ctx context.Context, st *store.Store, limit int) ([]Problem, error) {
	rows, err := st.Query(ctx, `SELECT id, log_id, kind, detail, at_ms FROM ct_problems ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Problem
	for rows.Next() {
		var p Problem
		var at int64
		if err := rows.Scan(&p.ID, &p.LogID, &p.Kind, &p.Detail, &at); err != nil {
			return nil, err
		}
		p.At = time.UnixMilli(at)
		out = append(out, p)
	}
	return out, rows.Err()
}

// saveTreeHead records a tree head as seen (verified or not).
func saveTreeHead(ctx context.Context, st *store.Store, id string, th *TreeHead, verified bool) error {
	_, err := st.Exec(ctx, `INSERT INTO ct_sths (log_id, tree_size, root_hash, sth_ms, signature, verified, seen_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (log_id, tree_size, root_hash) DO NOTHING`,
		id, int64(th.Size), th.Root[:], int64(th.Timestamp), th.Signature, verified, nowMS())
	if err != nil {
		return err
	}
	_, err = st.Exec(ctx, `UPDATE ct_logs SET latest_size = ?, latest_timestamp = ?, updated_ms = ? WHERE log_id = ? AND latest_size <= ?`,
		int64(th.Size), int64(th.Timestamp), nowMS(), id, int64(th.Size))
	return err
}

// SaveRules replaces the stored watch rules (what the UI shows).
func SaveRules(ctx context.Context, st *store.Store, rules []Rule) error {
	return st.InTx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM ct_rules`); err != nil {
			return err
		}
		for _, r := range rules {
			if _, err := tx.Exec(ctx, `INSERT INTO ct_rules (pattern, issuers, added_ms) VALUES (?, ?, ?) ON CONFLICT (pattern) DO UPDATE SET issuers = excluded.issuers`,
				r.Pattern, strings.Join(r.Issuers, ","), nowMS()); err != nil {
				return err
			}
		}
		return nil
	})
}

// LoadRules reads the stored watch rules.
func LoadRules(ctx context.Context, st *store.Store) ([]Rule, error) {
	rows, err := st.Query(ctx, `SELECT pattern, issuers FROM ct_rules ORDER BY pattern`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Rule
	for rows.Next() {
		var r Rule
		var iss string
		if err := rows.Scan(&r.Pattern, &iss); err != nil {
			return nil, err
		}
		if iss != "" {
			r.Issuers = strings.Split(iss, ",")
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Finding is one certificate matching one rule.
type Finding struct {
	ID             int64     `json:"id"`
	Rule           string    `json:"rule"`
	CertKey        string    `json:"cert_key"` // hex TBS hash (leaf hash when unparseable)
	Kind           string    `json:"kind"`     // match, redacted, unparseable
	Names          []string  `json:"names"`
	Issuer         string    `json:"issuer"`
	IssuerExpected bool      `json:"issuer_expected"`
	Serial         string    `json:"serial"`
	NotBefore      time.Time `json:"not_before"`
	NotAfter       time.Time `json:"not_after"`
	HasPrecert     bool      `json:"has_precert"`
	HasCert        bool      `json:"has_cert"`
	LogID          string    `json:"log_id"`
	Index          uint64    `json:"entry_index"`
	EntryTime      time.Time `json:"entry_time"`
	Found          time.Time `json:"found"`
	Notified       time.Time `json:"notified,omitzero"`
	NotifyAttempts int       `json:"notify_attempts"`
	NotifyError    string    `json:"notify_error,omitempty"`
}

// DeliveryID is the stable idempotency key of a finding's notification.
func (f *Finding) DeliveryID() string { return fmt.Sprintf("%d-%.16s", f.ID, f.CertKey) }

// insertFinding stores f, or merges it into the finding of the same
// certificate and rule (precertificate and final certificate).
func insertFinding(ctx context.Context, tx *store.Tx, f *Finding) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO ct_findings (rule, cert_key, kind, names, issuer, issuer_expected, serial,
		not_before_ms, not_after_ms, has_precert, has_cert, log_id, entry_index, entry_ms, found_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule, cert_key) DO NOTHING`,
		f.Rule, f.CertKey, f.Kind, strings.Join(f.Names, " "), f.Issuer, f.IssuerExpected, f.Serial,
		f.NotBefore.UnixMilli(), f.NotAfter.UnixMilli(), f.HasPrecert, f.HasCert, f.LogID, int64(f.Index), f.EntryTime.UnixMilli(), nowMS())
	if err != nil {
		return false, fmt.Errorf("store finding: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	col := "has_cert"
	if f.HasPrecert {
		col = "has_precert"
	}
	_, err = tx.Exec(ctx, `UPDATE ct_findings SET `+col+` = TRUE WHERE rule = ? AND cert_key = ?`, f.Rule, f.CertKey)
	return false, err
}

const findingCols = `id, rule, cert_key, kind, names, issuer, issuer_expected, serial, not_before_ms, not_after_ms,
	has_precert, has_cert, log_id, entry_index, entry_ms, found_ms, notified_ms, notify_attempts, notify_error`

func scanFinding(sc interface{ Scan(...any) error }) (*Finding, error) {
	var f Finding
	var names string
	var nb, na, idx, ems, found int64
	var notified sql.NullInt64
	if err := sc.Scan(&f.ID, &f.Rule, &f.CertKey, &f.Kind, &names, &f.Issuer, &f.IssuerExpected, &f.Serial, &nb, &na,
		&f.HasPrecert, &f.HasCert, &f.LogID, &idx, &ems, &found, &notified, &f.NotifyAttempts, &f.NotifyError); err != nil {
		return nil, err
	}
	if names != "" {
		f.Names = strings.Split(names, " ")
	}
	f.NotBefore, f.NotAfter = time.UnixMilli(nb).UTC(), time.UnixMilli(na).UTC()
	f.Index, f.EntryTime, f.Found = uint64(idx), time.UnixMilli(ems).UTC(), time.UnixMilli(found).UTC()
	if notified.Valid {
		f.Notified = time.UnixMilli(notified.Int64).UTC()
	}
	return &f, nil
}

// FindingFilter selects findings.
type FindingFilter struct {
	Rule      string
	Pending   bool // not notified yet
	Limit     int  // 0 means all
	NewestOut bool // newest first
}

// Findings lists stored findings.
func Findings(ctx context.Context, st *store.Store, ff FindingFilter) ([]*Finding, error) {
	q := `SELECT ` + findingCols + ` FROM ct_findings WHERE 1=1`
	var args []any
	if ff.Rule != "" {
		q += ` AND rule = ?`
		args = append(args, ff.Rule)
	}
	if ff.Pending {
		q += ` AND notified_ms IS NULL`
	}
	if ff.NewestOut {
		q += ` ORDER BY id DESC`
	} else {
		q += ` ORDER BY id`
	}
	if ff.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, ff.Limit)
	}
	rows, err := st.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Finding
	for rows.Next() {
		f, err := scanFinding(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// markNotified records a delivered finding, or a failed attempt.
func markNotified(ctx context.Context, st *store.Store, id int64, deliveryErr error) error {
	if deliveryErr == nil {
		_, err := st.Exec(ctx, `UPDATE ct_findings SET notified_ms = ?, notify_attempts = notify_attempts + 1, notify_error = '' WHERE id = ? AND notified_ms IS NULL`, nowMS(), id)
		return err
	}
	msg := deliveryErr.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	_, err := st.Exec(ctx, `UPDATE ct_findings SET notify_attempts = notify_attempts + 1, notify_error = ? WHERE id = ?`, msg, id)
	return err
}

var errFork = errors.New("log is inconsistent")

func hexs(b []byte) string { return hex.EncodeToString(b) }

// LogListInfo is which log list the monitor last used, for the page.
type LogListInfo struct {
	Source    string    `json:"source"`
	Timestamp time.Time `json:"timestamp"` // log_list_timestamp
	Loaded    time.Time `json:"loaded"`
	Logs      int       `json:"logs"`
}

// Age is how old the list's own timestamp is.
func (i LogListInfo) Age() time.Duration {
	if i.Timestamp.IsZero() {
		return 0
	}
	return time.Since(i.Timestamp)
}

const logListKey = "ct.loglist"

// SaveLogListInfo records the log list in use (in settings).
func SaveLogListInfo(ctx context.Context, st *store.Store, src string, ll *LogList) error {
	b, err := json.Marshal(LogListInfo{Source: src, Timestamp: ll.Timestamp, Loaded: time.Now().UTC(), Logs: len(ll.Logs)})
	if err != nil {
		return err
	}
	return st.SetSetting(ctx, logListKey, string(b))
}

// LoadLogListInfo reads what SaveLogListInfo recorded (ok false when nothing).
func LoadLogListInfo(ctx context.Context, st *store.Store) (LogListInfo, bool, error) {
	var i LogListInfo
	v, ok, err := st.Setting(ctx, logListKey)
	if err != nil || !ok {
		return i, false, err
	}
	return i, true, json.Unmarshal([]byte(v), &i)
}
