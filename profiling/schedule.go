package profiling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Schedule is a continuous capture: every Every seconds, capture Seconds of
// Kind from an agent's target. Schedules live in the store, so a restarted
// server carries on where it stopped (a run missed while it was down fires
// once, not once per missed period).
type Schedule struct {
	ID            int64     `json:"id"`
	Agent         string    `json:"agent"`
	Target        string    `json:"target"`
	Kind          string    `json:"kind"`
	Seconds       int       `json:"seconds"`
	Every         int       `json:"every_seconds"`
	Enabled       bool      `json:"enabled"`
	Next          time.Time `json:"next"`
	LastCaptureID int64     `json:"last_capture_id,omitempty"`
}

func (sc *Schedule) validate() error {
	if sc.Agent == "" {
		return errors.New("schedule: no agent")
	}
	if _, ok := CaptureKinds[sc.Kind]; !ok {
		return fmt.Errorf("schedule: unknown kind %q", sc.Kind)
	}
	if sc.Seconds <= 0 {
		sc.Seconds = 10
	}
	if sc.Every < 10 {
		return fmt.Errorf("schedule: every %d seconds: at least 10", sc.Every)
	}
	if sc.Seconds > sc.Every {
		return fmt.Errorf("schedule: a %d-second capture every %d seconds would overlap itself", sc.Seconds, sc.Every)
	}
	return nil
}

// SaveSchedule creates (ID 0) or updates a schedule.
func (s *Service) SaveSchedule(ctx context.Context, sc Schedule) (*Schedule, error) {
	if err := sc.validate(); err != nil {
		return nil, err
	}
	if _, err := s.Agent(ctx, sc.Agent); err != nil {
		return nil, fmt.Errorf("schedule: %w", err)
	}
	if sc.Next.IsZero() {
		sc.Next = s.now()
	}
	if sc.ID == 0 {
		id, err := s.DB.S.InsertID(ctx, `INSERT INTO profiling_schedules (agent, target, kind, seconds, every_s, enabled, next_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, sc.Agent, sc.Target, sc.Kind, sc.Seconds, sc.Every, sc.Enabled, ms(sc.Next))
		if err != nil {
			return nil, fmt.Errorf("save schedule: %w", err)
		}
		sc.ID = id
		return &sc, nil
	}
	res, err := s.DB.S.Exec(ctx, `UPDATE profiling_schedules SET agent = ?, target = ?, kind = ?, seconds = ?, every_s = ?, enabled = ?, next_ms = ?
		WHERE id = ?`, sc.Agent, sc.Target, sc.Kind, sc.Seconds, sc.Every, sc.Enabled, ms(sc.Next), sc.ID)
	if err != nil {
		return nil, fmt.Errorf("save schedule: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("schedule %d: %w", sc.ID, ErrNotFound)
	}
	return &sc, nil
}

// DeleteSchedule removes a schedule.
func (s *Service) DeleteSchedule(ctx context.Context, id int64) error {
	return s.deleteRow(ctx, "profiling_schedules", "schedule", id)
}

// deleteRow deletes the row of table with this id; ErrNotFound, naming
// what the row is, when there is none.
func (s *Service) deleteRow(ctx context.Context, table, what string, id int64) error {
	res, err := s.DB.S.Exec(ctx, "DELETE FROM "+table+" WHERE id = ?", id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %d: %w", what, id, ErrNotFound)
	}
	return nil
}

// Schedules lists schedules by id.
func (s *Service) Schedules(ctx context.Context) ([]Schedule, error) {
	rows, err := s.DB.S.Query(ctx, `SELECT id, agent, target, kind, seconds, every_s, enabled, next_ms, COALESCE(last_capture_id, 0)
		FROM profiling_schedules ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	defer rows.Close()
	out := []Schedule{}
	for rows.Next() {
		var sc Schedule
		var next int64
		if err := rows.Scan(&sc.ID, &sc.Agent, &sc.Target, &sc.Kind, &sc.Seconds, &sc.Every, &sc.Enabled, &next, &sc.LastCaptureID); err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		sc.Next = fromMS(next)
		out = append(out, sc)
	}
	return out, rows.Err()
}

// RunDue queues a capture for every enabled schedule whose time has come and
// moves it to its next run. The move is a compare-and-set on next_ms, so that
// of several servers sharing the database exactly one fires each run.
func (s *Service) RunDue(ctx context.Context) ([]int64, error) {
	now := s.now()
	scs, err := s.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	var ids []int64
	var errs []error
	for _, sc := range scs {
		if !sc.Enabled || sc.Next.After(now) {
			continue
		}
		next := sc.Next.Add(time.Duration(sc.Every) * time.Second)
		if !next.After(now) {
			next = now.Add(time.Duration(sc.Every) * time.Second)
		}
		res, err := s.DB.S.Exec(ctx, "UPDATE profiling_schedules SET next_ms = ? WHERE id = ? AND next_ms = ?", ms(next), sc.ID, ms(sc.Next))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if n, _ := res.RowsAffected(); n != 1 {
			continue // another server fired it
		}
		c, err := s.Request(ctx, Capture{Agent: sc.Agent, Target: sc.Target, Kind: sc.Kind, Seconds: sc.Seconds,
			Reason: fmt.Sprintf("schedule %d", sc.ID), Labels: Labels{"schedule": fmt.Sprint(sc.ID)}})
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %d: %w", sc.ID, err))
			continue
		}
		s.DB.S.Exec(ctx, "UPDATE profiling_schedules SET last_capture_id = ? WHERE id = ?", c.ID, sc.ID)
		ids = append(ids, c.ID)
	}
	return ids, errors.Join(errs...)
}

// AlertRule maps Alertmanager alerts to captures: an alert whose labels
// include every Matchers pair triggers a capture of Kind on the agent named by
// the alert's AgentLabel (instance, host, ...; a :port is dropped) or, when
// AgentLabel is empty, on Agent.
type AlertRule struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Matchers   Labels `json:"matchers"`
	AgentLabel string `json:"agent_label"`
	Agent      string `json:"agent"`
	// Target is the agent's target (a service name, or perf); empty when the
	// agent has only one.
	Target  string `json:"target"`
	Kind    string `json:"kind"`
	Seconds int    `json:"seconds"`
	Preroll bool   `json:"preroll"`
}

// SaveAlertRule creates (ID 0) or replaces a rule.
func (s *Service) SaveAlertRule(ctx context.Context, r AlertRule) (*AlertRule, error) {
	if r.Name == "" {
		return nil, errors.New("alert rule: no name")
	}
	if r.AgentLabel == "" && r.Agent == "" {
		return nil, errors.New("alert rule: set agent_label (the alert label naming the host) or agent")
	}
	if _, ok := CaptureKinds[r.Kind]; !ok {
		return nil, fmt.Errorf("alert rule: unknown kind %q", r.Kind)
	}
	if r.Seconds <= 0 {
		r.Seconds = 10
	}
	if r.Seconds > MaxCaptureSeconds {
		return nil, fmt.Errorf("alert rule: %d seconds: at most %d", r.Seconds, MaxCaptureSeconds)
	}
	if r.Matchers == nil {
		r.Matchers = Labels{}
	}
	if r.ID == 0 {
		id, err := s.DB.S.InsertID(ctx, `INSERT INTO profiling_alert_rules (name, matchers, agent_label, agent, target, kind, seconds, preroll)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, r.Name, r.Matchers.canonical(), r.AgentLabel, r.Agent, r.Target, r.Kind, r.Seconds, r.Preroll)
		if err != nil {
			return nil, fmt.Errorf("save alert rule: %w", err)
		}
		r.ID = id
		return &r, nil
	}
	res, err := s.DB.S.Exec(ctx, `UPDATE profiling_alert_rules SET name = ?, matchers = ?, agent_label = ?, agent = ?, target = ?, kind = ?, seconds = ?, preroll = ?
		WHERE id = ?`, r.Name, r.Matchers.canonical(), r.AgentLabel, r.Agent, r.Target, r.Kind, r.Seconds, r.Preroll, r.ID)
	if err != nil {
		return nil, fmt.Errorf("save alert rule: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, fmt.Errorf("alert rule %d: %w", r.ID, ErrNotFound)
	}
	return &r, nil
}

// DeleteAlertRule removes a rule.
func (s *Service) DeleteAlertRule(ctx context.Context, id int64) error {
	return s.deleteRow(ctx, "profiling_alert_rules", "alert rule", id)
}

// AlertRules lists the rules by id.
func (s *Service) AlertRules(ctx context.Context) ([]AlertRule, error) {
	rows, err := s.DB.S.Query(ctx, "SELECT id, name, matchers, agent_label, agent, target, kind, seconds, preroll FROM profiling_alert_rules ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	defer rows.Close()
	out := []AlertRule{}
	for rows.Next() {
		var r AlertRule
		var m string
		if err := rows.Scan(&r.ID, &r.Name, &m, &r.AgentLabel, &r.Agent, &r.Target, &r.Kind, &r.Seconds, &r.Preroll); err != nil {
			return nil, fmt.Errorf("list alert rules: %w", err)
		}
		r.Matchers, _ = parseLabelsJSON(m)
		out = append(out, r)
	}
	return out, rows.Err()
}

// AlertmanagerPayload is the body Alertmanager's webhook receiver posts
// (version 4 of its webhook format).
type AlertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of a webhook payload.
type AlertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ParseAlertmanager reads a webhook body.
func ParseAlertmanager(b []byte) (*AlertmanagerPayload, error) {
	var p AlertmanagerPayload
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("alertmanager payload: %w", err)
	}
	if p.Version != "" && p.Version != "4" {
		return nil, fmt.Errorf("alertmanager payload version %q: want 4", p.Version)
	}
	return &p, nil
}

// AlertOutcome says what one alert and rule led to.
type AlertOutcome struct {
	Alert     string `json:"alert"`
	Rule      string `json:"rule"`
	CaptureID int64  `json:"capture_id,omitempty"`
	Skipped   string `json:"skipped,omitempty"`
}

// HandleAlerts triggers captures for the firing alerts of a webhook. An alert
// that Alertmanager sends again (every group_interval while it fires)
// triggers one capture per rule per ten minutes, not one per notification.
// The snapshot carries the alert's name and fingerprint as labels, which is
// how a snapshot is linked to its alert.
func (s *Service) HandleAlerts(ctx context.Context, p *AlertmanagerPayload) ([]AlertOutcome, error) {
	rules, err := s.AlertRules(ctx)
	if err != nil {
		return nil, err
	}
	out := []AlertOutcome{}
	for _, al := range p.Alerts {
		if al.Status != "firing" && !(al.Status == "" && p.Status == "firing") {
			continue
		}
		name := al.Labels["alertname"]
		fp := al.Fingerprint
		if fp == "" {
			fp = Labels(al.Labels).canonical()
		}
		for _, r := range rules {
			if !matchesAll(al.Labels, r.Matchers) {
				continue
			}
			o := AlertOutcome{Alert: name, Rule: r.Name}
			agentName := r.Agent
			if r.AgentLabel != "" {
				v := al.Labels[r.AgentLabel]
				if v == "" {
					o.Skipped = fmt.Sprintf("alert has no %s label", r.AgentLabel)
					out = append(out, o)
					continue
				}
				a, err := s.findAgent(ctx, v)
				if err != nil {
					o.Skipped = err.Error()
					out = append(out, o)
					continue
				}
				agentName = a.Name
			}
			reason := fmt.Sprintf("alert %s rule %d fp %s", name, r.ID, shortFP(fp))
			var recent int
			if err := s.DB.S.QueryRow(ctx, "SELECT COUNT(*) FROM profiling_captures WHERE reason = ? AND created_ms > ?",
				reason, ms(s.now().Add(-10*time.Minute))).Scan(&recent); err != nil {
				return out, err
			}
			if recent > 0 {
				o.Skipped = "already captured for this alert in the last 10 minutes"
				out = append(out, o)
				continue
			}
			c, err := s.Request(ctx, Capture{Agent: agentName, Target: r.Target, Kind: r.Kind, Seconds: r.Seconds, Preroll: r.Preroll,
				Reason: reason, Labels: Labels{"alertname": sanitizeLabel(name), "alert_fingerprint": shortFP(fp)}})
			if err != nil {
				o.Skipped = err.Error()
				out = append(out, o)
				continue
			}
			o.CaptureID = c.ID
			out = append(out, o)
		}
	}
	return out, nil
}

func matchesAll(l map[string]string, m Labels) bool {
	for k, v := range m {
		if l[k] != v {
			return false
		}
	}
	return true
}

func shortFP(fp string) string {
	if len(fp) > 32 {
		return fp[:32]
	}
	return fp
}

func sanitizeLabel(v string) string {
	if len(v) > 200 {
		v = v[:200]
	}
	return strings.ToValidUTF8(v, "?")
}
