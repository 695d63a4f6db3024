package profiling

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// RunPull makes the server itself an agent for pprof endpoints it can
// reach (the "pull" mode): it registers an agent called name with those
// targets and runs the captures queued for it, storing results directly. It
// returns when ctx ends. Use it where installing `srekit agent` next to a
// service is not possible; the endpoints must be reachable from the server.
func (s *Service) RunPull(ctx context.Context, name string, targets []PprofTarget, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	host, _ := os.Hostname()
	cfg := AgentConfig{Name: name, Host: host, Pprof: targets, Log: log}
	a := &agent{cfg: cfg, log: log, allowed: map[string]bool{}, targets: map[string]PprofTarget{}, rings: map[string]*ring{}}
	kinds := []string{"cpu", "heap", "allocs", "goroutine", "mutex", "block"}
	for _, k := range kinds {
		a.allowed[k] = true
	}
	info := Agent{Name: name, Host: host, Labels: Labels{"pull": "true"}, Version: "server"}
	for _, t := range targets {
		if t.Name == "" || t.URL == "" {
			return fmt.Errorf("pull target %q: want name=URL", t.Name)
		}
		a.targets[t.Name] = t
		info.Targets = append(info.Targets, AgentTarget{Name: t.Name, Kinds: kinds, Labels: t.Labels})
	}
	if err := s.Register(ctx, info); err != nil {
		return err
	}
	sem := make(chan struct{}, 4)
	for ctx.Err() == nil {
		c, err := s.Next(ctx, name, 25*time.Second)
		if err == ErrUnknownAgent {
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
		go func() {
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
		}()
	}
	return nil
}
