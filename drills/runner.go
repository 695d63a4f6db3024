package drills

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/srekit/srekit/store"
)

// Runner plans drills into the store and pages them when they are due,
// checking every rule again at paging time. All its state is in the store, so
// a restart neither loses nor doubles a page: a drill claimed but not yet
// confirmed as paged when the process died is sent again with the same dedup
// key, which PagerDuty and Alertmanager treat as the same page.
type Runner struct {
	Store  *store.Store
	Config *Config
	Client *http.Client
	Log    *slog.Logger
	// Now is the clock; time.Now when nil (tests set it).
	Now func() time.Time
	// BaseURL is the srekit server's URL, for acknowledgement links.
	BaseURL string
	// Horizon is how far ahead drills are planned; 14 days when zero.
	Horizon time.Duration
	// Lateness is how late a due drill may still be sent; 30 minutes when zero.
	Lateness time.Duration
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return &http.Client{Timeout: 15 * time.Second}
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.Default()
}

// history returns stored drills that count for the rules: every one that was
// or will be sent (planned, paging, paged, dry run).
func (r *Runner) history(ctx context.Context) ([]Planned, error) {
	recs, err := Records(ctx, r.Store, time.Time{}, time.Time{}, StatusPlanned, StatusPaging, StatusPaged, StatusDryRun)
	if err != nil {
		return nil, err
	}
	out := make([]Planned, len(recs))
	for i, rec := range recs {
		out[i] = Planned{Page: Page{Person: rec.Person, Team: rec.Team, At: rec.At}, DrillID: rec.DrillID}
	}
	return out, nil
}

// PlanAhead stores the plan from now to now + Horizon around what is stored.
func (r *Runner) PlanAhead(ctx context.Context) (int, error) {
	if err := ApplyOptIns(ctx, r.Store, r.Config); err != nil {
		return 0, err
	}
	hist, err := r.history(ctx)
	if err != nil {
		return 0, err
	}
	horizon := r.Horizon
	if horizon == 0 {
		horizon = 14 * 24 * time.Hour
	}
	now := r.now()
	plan := r.Config.Plan(now, now.Add(horizon), hist)
	return SavePlan(ctx, r.Store, plan, r.Config.IsDryRun())
}

// RunDue pages every drill that is due. It returns how many were paged (or
// recorded, in dry run).
func (r *Runner) RunDue(ctx context.Context) (int, error) {
	if err := ApplyOptIns(ctx, r.Store, r.Config); err != nil {
		return 0, err
	}
	now := r.now()
	// Drills claimed by a process that died: resend, same dedup key.
	stuck, err := Records(ctx, r.Store, time.Time{}, now.Add(time.Millisecond), StatusPaging)
	if err != nil {
		return 0, err
	}
	due, err := Records(ctx, r.Store, time.Time{}, now.Add(time.Millisecond), StatusPlanned)
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, rec := range stuck {
		ok, err := r.page(ctx, rec, true)
		if err != nil {
			return sent, err
		}
		if ok {
			sent++
		}
	}
	for _, rec := range due {
		claimed, err := claim(ctx, r.Store, rec.ID)
		if err != nil {
			return sent, err
		}
		if !claimed {
			continue // another runner has it
		}
		ok, err := r.page(ctx, rec, false)
		if err != nil {
			return sent, err
		}
		if ok {
			sent++
		}
	}
	return sent, nil
}

// page checks the rules once more and sends one claimed drill. It returns
// whether the drill was paged; a drill a rule now forbids is skipped with the
// reason, never sent.
func (r *Runner) page(ctx context.Context, rec Record, resumed bool) (bool, error) {
	now := r.now()
	skip := func(reason string) (bool, error) {
		r.log().Info("drill skipped", "person", rec.Person, "drill", rec.DrillID, "reason", reason)
		return false, setStatus(ctx, r.Store, rec.ID, StatusSkipped, reason, nil)
	}
	p, ok := r.Config.Person(rec.Person)
	if !ok {
		return skip("no longer on the roster")
	}
	d, ok := r.Config.Drill(rec.DrillID)
	if !ok {
		return skip("drill " + rec.DrillID + " is no longer in the catalogue")
	}
	lateness := r.Lateness
	if lateness == 0 {
		lateness = 30 * time.Minute
	}
	if now.Sub(rec.At) > lateness && !resumed {
		return skip(fmt.Sprintf("missed: due %s, more than %v ago", rec.At.Format(time.RFC3339), lateness))
	}
	if paused, err := Paused(ctx, r.Store, r.Config); err != nil {
		return false, err
	} else if paused {
		return skip("drills are paused")
	}
	hist, err := r.history(ctx)
	if err != nil {
		return false, err
	}
	var others []Page
	for _, h := range hist {
		if !(h.Person == rec.Person && h.At.Equal(rec.At)) {
			others = append(others, h.Page)
		}
	}
	// The rules are checked at the moment of paging, not at the planned time.
	if err := r.Config.Check(p, now, others); err != nil {
		return skip(err.Error())
	}
	open, why, err := IncidentOpen(ctx, r.client(), r.Config.Incidents)
	if err != nil {
		return skip("cannot tell whether an incident is open: " + err.Error())
	}
	if open {
		return skip("a real incident is open: " + why)
	}
	if r.Config.IsDryRun() {
		r.log().Info("drill (dry run)", "person", rec.Person, "drill", rec.DrillID)
		return true, setStatus(ctx, r.Store, rec.ID, StatusDryRun, "dry run: nobody was paged", &now)
	}
	secret, err := AckSecret(ctx, r.Store)
	if err != nil {
		return false, err
	}
	n := Notice{DedupKey: rec.DedupKey, Person: p, Drill: d, At: now, AckURL: AckURL(r.BaseURL, secret, rec.ID)}
	if err := Send(ctx, r.client(), n); err != nil {
		var perm *PermanentError
		if errors.As(err, &perm) {
			return false, setStatus(ctx, r.Store, rec.ID, StatusFailed, err.Error(), nil)
		}
		// Temporary: leave it claimed; the next round resends with the same key.
		r.log().Warn("drill page failed, will retry", "person", rec.Person, "err", err)
		return false, setStatus(ctx, r.Store, rec.ID, StatusPaging, "retrying: "+err.Error(), nil)
	}
	r.log().Info("drill paged", "person", rec.Person, "drill", rec.DrillID, "key", rec.DedupKey)
	return true, setStatus(ctx, r.Store, rec.ID, StatusPaged, "", &now)
}

// PollSilences acknowledges drills that have a matching Alertmanager silence.
func (r *Runner) PollSilences(ctx context.Context, alertmanagerURL string) (int, error) {
	sil, err := Silences(ctx, r.client(), alertmanagerURL)
	if err != nil {
		return 0, err
	}
	n := 0
	for key, at := range sil {
		rec, err := RecordByKey(ctx, r.Store, key)
		if err != nil || rec.AckedAt != nil {
			continue
		}
		if err := Acknowledge(ctx, r.Store, rec.ID, at, "alertmanager silence"); err == nil {
			n++
		}
	}
	return n, nil
}

// Loop plans and pages until ctx ends, every interval.
func (r *Runner) Loop(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.PlanAhead(ctx); err != nil && ctx.Err() == nil {
			r.log().Error("plan drills", "err", err)
		}
		if _, err := r.RunDue(ctx); err != nil && ctx.Err() == nil {
			r.log().Error("run drills", "err", err)
		}
		if am := r.Config.Incidents.AlertmanagerURL; am != "" {
			if _, err := r.PollSilences(ctx, am); err != nil && ctx.Err() == nil {
				r.log().Warn("poll alertmanager silences", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// AckSecret returns the server's secret for signing acknowledgement links,
// made on first use and kept in the store.
func AckSecret(ctx context.Context, st *store.Store) (string, error) {
	v, ok, err := st.Setting(ctx, "drills_ack_secret")
	if err != nil || ok {
		return v, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	v = hex.EncodeToString(b)
	if err := st.SetSetting(ctx, "drills_ack_secret", v); err != nil {
		return "", err
	}
	// Another server may have raced us; read back what won.
	v, _, err = st.Setting(ctx, "drills_ack_secret")
	return v, err
}

// AckSignature signs a drill id for its one-click acknowledgement link.
func AckSignature(secret string, id int64) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("ack:" + strconv.FormatInt(id, 10)))
	return hex.EncodeToString(mac.Sum(nil))[:32]
}

// AckURL is the signed one-click acknowledgement link of a drill.
func AckURL(base, secret string, id int64) string {
	return fmt.Sprintf("%s/drills/ack/%d?sig=%s", base, id, AckSignature(secret, id))
}

// CheckAckSignature verifies a one-click link's signature.
func CheckAckSignature(secret string, id int64, sig string) bool {
	return hmac.Equal([]byte(AckSignature(secret, id)), []byte(sig))
}
