package profiling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"sort"
	"time"
)

// RunPull makes the server itself an agent for pprof endpoints it can
// reach (the "pull" mode): it registers an agent called name with those
// targets and runs the captures queued for it, storing results directly. It
// returns when ctx ends. Use it where installing `srekit agent` next to a
// service is not possible; the endpoints must be reachable from the server.
func (s *Service) RunPull(ctx context.Context, name string, targets []PprofTarget, log *slog.Logger) error {
	for _, t := range targets {
		if t.Name == "" || t.URL == "" {
			return fmt.Errorf("pull target %q: want name=URL", t.Name)
		}
	}
	return s.runPull(ctx, name, func(context.Context) ([]PprofTarget, error) { return targets, nil }, time.Hour, log)
}

// RunPullStored is RunPull over the pull targets stored in the database
// (SavePullTarget) plus static ones (from the server's environment). It
// re-reads the stored targets every few seconds, so targets added or removed
// through the API, the CLI or the page take effect without a restart, on
// every server sharing the database.
func (s *Service) RunPullStored(ctx context.Context, name string, static []PprofTarget, log *slog.Logger) error {
	load := func(ctx context.Context) ([]PprofTarget, error) {
		stored, err := s.DB.PullTargets(ctx)
		if err != nil {
			return nil, err
		}
		out := append([]PprofTarget(nil), static...)
		seen := map[string]bool{}
		for _, t := range static {
			seen[t.Name] = true
		}
		for _, t := range stored {
			if !seen[t.Name] {
				out = append(out, PprofTarget{Name: t.Name, URL: t.URL, Labels: t.Labels})
			}
		}
		return out, nil
	}
	return s.runPull(ctx, name, load, 5*time.Second, log)
}

// runPull polls for captures of agent name, reloading its targets (load)
// between polls of at most reload.
func (s *Service) runPull(ctx context.Context, name string, load func(context.Context) ([]PprofTarget, error), reload time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	kinds := []string{"cpu", "heap", "allocs", "goroutine", "mutex", "block"}
	var (
		current []PprofTarget
		a       *agent
		info    Agent
		loaded  bool
	)
	// setup builds the agent for a target set; captures already running keep
	// the agent they started with.
	setup := func(targets []PprofTarget) error {
		cfg := AgentConfig{Name: name, Host: host, Pprof: targets, Log: log}
		na := &agent{cfg: cfg, log: log, allowed: map[string]bool{}, targets: map[string]PprofTarget{}, rings: map[string]*ring{}}
		for _, k := range kinds {
			na.allowed[k] = true
		}
		ni := Agent{Name: name, Host: host, Labels: Labels{"pull": "true"}, Version: "server"}
		for _, t := range targets {
			na.targets[t.Name] = t
			ni.Targets = append(ni.Targets, AgentTarget{Name: t.Name, Kinds: kinds, Labels: t.Labels})
		}
		if len(targets) > 0 || len(current) > 0 { // an emptied list is registered too
			if err := s.Register(ctx, ni); err != nil {
				return err
			}
		}
		a, info, current, loaded = na, ni, targets, true
		return nil
	}
	sem := make(chan struct{}, 4)
	for ctx.Err() == nil {
		if targets, err := load(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("pull: targets", "err", err)
		} else if !loaded || !reflect.DeepEqual(targets, current) {
			if err := setup(targets); err != nil {
				if ctx.Err() != nil {
					break
				}
				log.Warn("pull: register", "err", err)
			}
		}
		if len(current) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(reload):
			}
			continue
		}
		c, err := s.Next(ctx, name, min(reload, 25*time.Second))
		if errors.Is(err, ErrUnknownAgent) {
			if err := s.Register(ctx, info); err != nil {
				log.Warn("pull: register", "err", err)
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			log.Warn("pull: poll", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
			continue
		}
		if c == nil {
			continue
		}
		sem <- struct{}{}
		go func(a *agent) {
			defer func() { <-sem }()
			ups, err := a.capture(ctx, c)
			if err != nil {
				s.Fail(context.WithoutCancel(ctx), c.ID, err.Error())
				return
			}
			for _, u := range ups {
				if _, err := s.Complete(context.WithoutCancel(ctx), c.ID, CaptureResult{Format: u.Format, Data: u.Data, Start: u.Start, End: u.End, Preroll: u.Preroll}); err != nil {
					log.Warn("pull: store", "capture", c.ID, "err", err)
				}
			}
		}(a)
	}
	return nil
}

// PullTarget is a pprof endpoint the server captures from itself, stored
// in the database.
type PullTarget struct {
	Name    string    `json:"name"`
	URL     string    `json:"url"`
	Labels  Labels    `json:"labels"`
	Created time.Time `json:"created"`
}

var targetName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// Validate checks a pull target: a short name, an http(s) base URL.
func (t PullTarget) Validate() error {
	if !targetName.MatchString(t.Name) || t.Name == PerfTarget {
		return fmt.Errorf("pull target name %q: want letters, digits, '_', '.', '-' (not %q)", t.Name, PerfTarget)
	}
	u, err := url.Parse(t.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("pull target %s: url %q: want the service's base URL, e.g. http://10.0.0.5:6060", t.Name, t.URL)
	}
	return t.Labels.Validate()
}

// SavePullTarget adds or replaces a stored pull target.
func (d *DB) SavePullTarget(ctx context.Context, t PullTarget) error {
	if err := t.Validate(); err != nil {
		return err
	}
	if t.Labels == nil {
		t.Labels = Labels{}
	}
	_, err := d.S.Exec(ctx, `INSERT INTO profiling_pull_targets (name, url, labels, created_ms) VALUES (?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET url = excluded.url, labels = excluded.labels`,
		t.Name, t.URL, t.Labels.canonical(), time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("save pull target: %w", err)
	}
	return nil
}

// DeletePullTarget removes a stored pull target.
func (d *DB) DeletePullTarget(ctx context.Context, name string) error {
	res, err := d.S.Exec(ctx, "DELETE FROM profiling_pull_targets WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("delete pull target: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("pull target %q: %w", name, ErrNotFound)
	}
	return nil
}

// PullTargets lists the stored pull targets by name.
func (d *DB) PullTargets(ctx context.Context) ([]PullTarget, error) {
	rows, err := d.S.Query(ctx, "SELECT name, url, labels, created_ms FROM profiling_pull_targets")
	if err != nil {
		return nil, fmt.Errorf("list pull targets: %w", err)
	}
	defer rows.Close()
	out := []PullTarget{}
	for rows.Next() {
		var t PullTarget
		var labels string
		var created int64
		if err := rows.Scan(&t.Name, &t.URL, &labels, &created); err != nil {
			return nil, fmt.Errorf("list pull targets: %w", err)
		}
		t.Labels, _ = parseLabelsJSON(labels)
		t.Created = fromMS(created)
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, rows.Err()
}
