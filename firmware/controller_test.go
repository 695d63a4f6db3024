package firmware

import (
	"context"
	"errors"

	"github.com/srekit/srekit/firmware/redfish/redfishtest"
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

// TestCommandRollout installs with an allowed command per host (the agent
// path, e.g. `ssh {host} fwupdmgr install {payload}`), here a shell script
// that writes the host's new version where the version command reads it.
func TestCommandRollout(t *testing.T) {
	s := storetest.SQLite(t)
	ctx := context.Background()
	db := NewDB(s)
	dir := t.TempDir()
	var hosts []Host
	for _, n := range []string{"a1", "a2", "a3", "a4", "bad1"} {
		os.WriteFile(filepath.Join(dir, n), []byte("1.2.0\n"), 0o644)
		hosts = append(hosts, Host{Name: n, Model: "m", Components: []Observed{{Slot: "fw", Kind: "nic", Vendor: "v", Model: "x", Version: "1.2.0", Source: "agent"}}})
	}
	if err := db.Ingest(ctx, hosts); err != nil {
		t.Fatal(err)
	}
	key := ComponentKey{"v", "x", "nic"}
	if _, err := db.AddRelease(ctx, key, FormatTriplet, Release{Version: "1.3.0"}, "", ""); err != nil {
		t.Fatal(err)
	}
	// A canary of one host, then the rest: bad1's one failure in the second
	// phase stays under the 5-failure rule.
	spec := RolloutSpec{Component: key, Version: "1.3.0", Phases: []PhaseSpec{{"canary", 20}, {"all", 100}}, MaxConcurrent: 2,
		Install: InstallSpec{Method: "command",
			Command:        []string{"sh", "-c", `case "$0" in bad*) exit 3;; esac; echo "$1" > ` + dir + `/"$0"`, "{host}", "{version}"},
			VersionCommand: []string{"cat", dir + "/{host}"}}}
	p, err := db.PlanRollout(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Phases[0]) != 1 || p.Phases[0][0].Host == "bad1" {
		t.Fatalf("canary = %+v; the test wants one good host there", p.Phases[0])
	}
	id, err := db.CreateRollout(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	c := &Controller{DB: db, Installer: &CommandInstaller{Command: spec.Install.Command, VersionCommand: spec.Install.VersionCommand,
		Allowed: []string{"sh", "cat"}, TargetVersion: "1.3.0"}}
	if err := c.Run(ctx, id); err != nil {
		t.Fatal(err)
	}
	rhs, _ := db.RolloutHosts(ctx, id)
	for _, h := range rhs {
		b, _ := os.ReadFile(filepath.Join(dir, h.Host))
		want, wantV := HostDone, "1.3.0"
		if h.Host == "bad1" {
			want, wantV = HostFailed, "1.2.0"
		}
		if h.State != want || strings.TrimSpace(string(b)) != wantV {
			t.Errorf("%s: %s (%s), file %q", h.Host, h.State, h.Detail, b)
		}
	}
}

// TestUnhealthyHostsLeftAlone: a host whose health check fails before the
// install is not touched, does not count against the release, and uses up
// the unavailability budget of the concurrency formula.
func TestUnhealthyHostsLeftAlone(t *testing.T) {
	s := storetest.SQLite(t)
	ctx := context.Background()
	f := newFleet(t, s, 10)
	_, payload := f.release(t, "1.46.0", "ok")
	dir := t.TempDir()
	spec := f.spec("1.46.0")
	spec.Phases = []PhaseSpec{{"canary", 10}, {"all", 100}}
	spec.ConcurrentPercent = 30 // ceil(30% of 10) - 1 unhealthy = 2 at once
	p, err := f.db.PlanRollout(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	sick := p.Phases[1][0].Host
	os.WriteFile(filepath.Join(dir, sick), nil, 0o644)
	// Healthy unless a file named after the host exists.
	spec.Health = Hook{Command: []string{"sh", "-c", `test ! -e "` + dir + `/$SREKIT_HOST"`}}
	id, _ := f.start(t, spec)
	if err := f.controller(payload).Run(ctx, id); err != nil {
		t.Fatal(err)
	}
	hosts, _ := f.db.RolloutHosts(ctx, id)
	for _, h := range hosts {
		b := f.bmcs[h.Host]
		want, installs := HostDone, 1
		if h.Host == sick {
			want, installs = HostUnhealthy, 0
		}
		if h.State != want || b.Installs() != installs {
			t.Errorf("%s: %s (%s), %d installs", h.Host, h.State, h.Detail, b.Installs())
		}
	}
	r, _ := f.db.FindRelease(ctx, f.key, "1.46.0")
	if r.KnownBad {
		t.Error("an unhealthy host made the release known-bad")
	}

	// With a budget of ceil(10% of 10) = 1, the unhealthy host spends it:
	// the rollout halts, but the release is not blamed.
	for _, b := range f.bmcs {
		b.SetVersion("BMC", "1.45.0")
	}
	spec.ConcurrentPercent = 10
	s.Exec(ctx, "UPDATE fw_host_components SET version = '1.45.0'")
	id2, _ := f.start(t, spec)
	err = f.controller(payload).Run(ctx, id2)
	if !errors.Is(err, ErrHalted) || !strings.Contains(err.Error(), "budget spent") {
		t.Fatalf("Run = %v, want a budget halt", err)
	}
	if r, _ := f.db.FindRelease(ctx, f.key, "1.46.0"); r.KnownBad {
		t.Error("a budget halt made the release known-bad")
	}
}

// TestRollbackWherePreviousImageKept: the canary's install completes but
// the host fails verification; the rollout halts and, on a BMC that keeps
// its previous image, that image is made active again (for the BMC's next
// restart: the BMC is not reset).
func TestRollbackWherePreviousImageKept(t *testing.T) {
	s := storetest.SQLite(t)
	ctx := context.Background()
	f := newFleet(t, s, 10, func(b *redfishtest.BMC) { b.KeepsPrevious = true })
	_, payload := f.release(t, "1.46.0", "ok")
	spec := f.spec("1.46.0")
	spec.Phases = []PhaseSpec{{"canary", 10}, {"all", 100}}
	id, plan := f.start(t, spec)
	canary := plan.Phases[0][0].Host
	c := f.controller(payload)
	c.Installer = &brokenAfter{c.Installer.(*RedfishInstaller)}
	if err := c.Run(ctx, id); !errors.Is(err, ErrHalted) {
		t.Fatalf("Run = %v", err)
	}
	b := f.bmcs[canary]
	if !strings.HasSuffix(b.ActiveImage(), "/BMC-previous") || b.Resets() != 0 {
		t.Errorf("canary %s: active image %s, %d resets", canary, b.ActiveImage(), b.Resets())
	}
	hosts, _ := f.db.RolloutHosts(ctx, id)
	for _, h := range hosts {
		if h.Host == canary && !strings.Contains(h.Detail, "rolled back: previous image") {
			t.Errorf("canary detail: %s", h.Detail)
		}
		if h.Host != canary && (f.bmcs[h.Host].Installs() != 0 || !strings.HasSuffix(f.bmcs[h.Host].ActiveImage(), "/BMC")) {
			t.Errorf("%s touched", h.Host)
		}
	}
}

// brokenAfter makes verification fail after a completed install, as a host
// that comes back broken would; Rollback still reads the real version.
type brokenAfter struct{ *RedfishInstaller }

func (b *brokenAfter) Version(ctx context.Context, h RolloutHost) (string, error) {
	v, err := b.RedfishInstaller.Version(ctx, h)
	return v + " (and the host does not boot)", err
}
