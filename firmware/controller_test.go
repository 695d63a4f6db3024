package firmware

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/srekit/srekit/store/storetest"
)

// fakeClock is a clock that only moves when the controller sleeps.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept = append(c.slept, d)
	return ctx.Err()
}

// TestControllerWindowsSoakHooks: installs start only inside the
// maintenance window, phases are separated by the soak time, and every host
// is drained before and undrained after its install.
func TestControllerWindowsSoakHooks(t *testing.T) {
	s := storetest.SQLite(t)
	f := newFleet(t, s, 12)
	_, payload := f.release(t, "1.46.0", "ok")
	log := filepath.Join(t.TempDir(), "hooks.log")
	spec := f.spec("1.46.0")
	spec.Phases = []PhaseSpec{{"canary", 10}, {"all", 100}}
	spec.Soak = Duration(2 * time.Hour)
	spec.Windows = []Window{{Start: "22:00", End: "04:00"}}
	hook := func(word string) Hook {
		return Hook{Command: []string{"sh", "-c", `echo "$SREKIT_EVENT $SREKIT_HOST" >> ` + log + `; test "$0" = ` + word, word}}
	}
	spec.Drain, spec.Undrain = hook("drain"), hook("undrain")
	id, _ := f.start(t, spec)
	clock := &fakeClock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	c := f.controller(payload)
	c.Now, c.Sleep = clock.Now, clock.Sleep
	var starts []time.Time
	var soaks []string
	c.OnEvent = func(e Event) {
		switch e.State {
		case "started":
			starts = append(starts, clock.Now())
		case "soaking":
			soaks = append(soaks, e.Detail)
		}
	}
	if err := c.Run(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if len(starts) != 12 {
		t.Fatalf("%d installs started, want 12", len(starts))
	}
	for _, at := range starts {
		if !InWindow(spec.Windows, at) {
			t.Errorf("an install started at %s, outside the window", at.Format("15:04"))
		}
	}
	if len(soaks) != 1 || !strings.Contains(soaks[0], "T00:00:00Z") {
		t.Errorf("soak events %v, want one until 00:00 (22:00 + 2h)", soaks)
	}
	b, _ := os.ReadFile(log)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	sort.Strings(lines)
	if len(lines) != 24 || !strings.HasPrefix(lines[0], "drain node") || !strings.HasPrefix(lines[23], "undrain node") {
		t.Errorf("hook log (%d lines): %v", len(lines), lines)
	}
}
