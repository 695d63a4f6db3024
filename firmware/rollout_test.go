package firmware

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/srekit/srekit/firmware/redfish"
	"github.com/srekit/srekit/firmware/redfish/redfishtest"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

// fleet is N fake BMCs on loopback, inventoried into a versions database.
type fleet struct {
	db   *DB
	bmcs map[string]*redfishtest.BMC // by host name
	key  ComponentKey
}

var (
	mockOnce sync.Once
	mockup   redfishtest.Mockup
	mockErr  error
)

func newFleet(t *testing.T, s *store.Store, n int, mods ...func(*redfishtest.BMC)) *fleet {
	t.Helper()
	dir := redfishtest.MockupDir(t)
	mockOnce.Do(func() { mockup, mockErr = redfishtest.LoadMockup(dir) })
	if mockErr != nil {
		t.Fatal(mockErr)
	}
	f := &fleet{db: NewDB(s), bmcs: map[string]*redfishtest.BMC{}, key: ComponentKey{"Contoso", "Contoso BMC Firmware", "bmc"}}
	ctx := context.Background()
	var targets []BMCTarget
	for i := 0; i < n; i++ {
		b := redfishtest.New(mockup)
		b.Steps = 2
		b.SetVersion("BMC", "1.45.0")
		for _, m := range mods {
			m(b)
		}
		url := b.Start(t)
		name := fmt.Sprintf("node%03d", i)
		f.bmcs[name] = b
		targets = append(targets, BMCTarget{Host: name, URL: url, Model: "Contoso 1U", Rack: fmt.Sprintf("rack%02d", i/20), Zone: fmt.Sprintf("zone%d", i%2)})
	}
	// Inventory straight from the BMCs, as `srekit firmware inventory --bmcs` does.
	hosts, errs := ReadBMCs(ctx, targets, 16, 30*time.Second, nil)
	if len(errs) > 0 || len(hosts) != n {
		t.Fatalf("read %d BMCs, errors %v", len(hosts), errs)
	}
	if err := f.db.Ingest(ctx, hosts); err != nil {
		t.Fatal(err)
	}
	return f
}

// release packs a cabinet whose payload is a fake image and adds it.
func (f *fleet) release(t *testing.T, version, result string) (*Package, []byte) {
	t.Helper()
	payload := redfishtest.Image("BMC", version, result)
	spec := &PackSpec{ID: "com.contoso.Bmc.firmware", Name: "Contoso BMC", GUIDs: []string{"1624a9df-5e13-47fc-874a-df3aff143089"}, VersionFormat: "triplet", Payload: "bmc.bin"}
	spec.Release.Version = version
	c, err := spec.Component("bmc.bin", payload)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Pack(&buf, c, "bmc.bin", payload); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bmc-"+version+".cab")
	os.WriteFile(path, buf.Bytes(), 0o644)
	p, err := OpenPackage(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.AddPackage(context.Background(), p, f.key); err != nil {
		t.Fatal(err)
	}
	return p, payload
}

func (f *fleet) spec(version string) RolloutSpec {
	return RolloutSpec{Component: f.key, Version: version, MaxConcurrent: 20, ConcurrentPercent: 10,
		Install: InstallSpec{Target: "BMC", Poll: Duration(time.Millisecond), Stall: Duration(10 * time.Second)}}
}

func (f *fleet) controller(payload []byte) *Controller {
	return &Controller{DB: f.db, Installer: &RedfishInstaller{Target: "BMC", Filename: "bmc.bin", Payload: payload,
		Wait: redfish.WaitOptions{Poll: time.Millisecond, Stall: 10 * time.Second}}}
}

func (f *fleet) start(t *testing.T, spec RolloutSpec) (int64, *Plan) {
	t.Helper()
	ctx := context.Background()
	p, err := f.db.PlanRollout(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	id, err := f.db.CreateRollout(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	return id, p
}

func TestRolloutGoodReleaseCompletes(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newFleet(t, s, 200)
		_, payload := f.release(t, "1.46.0", "ok")
		if err := f.db.SetTarget(ctx, "Contoso 1U", f.key, "1.46.0"); err != nil {
			t.Fatal(err)
		}
		behind, _ := f.db.Behind(ctx)
		if len(behind) != 200 {
			t.Fatalf("before: %d hosts behind, want 200", len(behind))
		}
		id, plan := f.start(t, f.spec("1.46.0"))
		if got := []int{len(plan.Phases[0]), len(plan.Phases[1]), len(plan.Phases[2]), len(plan.Phases[3])}; fmt.Sprint(got) != "[2 18 80 100]" {
			t.Errorf("phase sizes = %v, want [2 18 80 100]", got)
		}
		if err := f.controller(payload).Run(ctx, id); err != nil {
			t.Fatal(err)
		}
		behind, _ = f.db.Behind(ctx)
		if len(behind) != 0 {
			t.Errorf("after: %d hosts behind", len(behind))
		}
		all, _, _ := f.db.Status(ctx, Filter{Kind: "bmc"})
		for _, st := range all {
			if st.State != StateOnTarget {
				t.Errorf("%s: %s %s", st.Host, st.Version, st.State)
			}
		}
		for name, b := range f.bmcs {
			if b.Installs() != 1 || b.Version("BMC") != "1.46.0" || b.Resets() != 0 {
				t.Errorf("%s: %d installs, version %s, %d resets", name, b.Installs(), b.Version("BMC"), b.Resets())
			}
		}
		ro, _ := f.db.Rollout(ctx, id)
		if ro.State != RolloutCompleted || ro.Counts[3][HostDone] != 100 {
			t.Errorf("rollout = %s %v", ro.State, ro.Counts)
		}
	})
}

func TestRolloutBadReleaseHaltsInCanary(t *testing.T) {
	s := storetest.SQLite(t)
	ctx := context.Background()
	f := newFleet(t, s, 200)
	_, payload := f.release(t, "1.47.0", "fail")
	id, plan := f.start(t, f.spec("1.47.0"))
	err := f.controller(payload).Run(ctx, id)
	if !errors.Is(err, ErrHalted) {
		t.Fatalf("Run = %v, want ErrHalted", err)
	}
	canary := map[string]bool{}
	for _, c := range plan.Phases[0] {
		canary[c.Host] = true
	}
	for name, b := range f.bmcs {
		want := 0
		if canary[name] {
			want = 1
		}
		if b.Installs() != want || b.Resets() != 0 {
			t.Errorf("%s (canary %v): %d installs, %d resets", name, canary[name], b.Installs(), b.Resets())
		}
	}
	r, _ := f.db.FindRelease(ctx, f.key, "1.47.0")
	if !r.KnownBad {
		t.Error("the release was not marked known-bad")
	}
	ro, _ := f.db.Rollout(ctx, id)
	if ro.State != RolloutHalted || ro.HaltReason == "" {
		t.Errorf("rollout = %s %q", ro.State, ro.HaltReason)
	}
	// A known-bad release cannot be rolled out again, and a halted rollout does not restart.
	p, _ := f.db.PlanRollout(ctx, f.spec("1.47.0"))
	if _, err := f.db.CreateRollout(ctx, p); err == nil {
		t.Error("a rollout of a known-bad release was created")
	}
	if err := f.controller(payload).Run(ctx, id); !errors.Is(err, ErrHalted) {
		t.Errorf("re-run of a halted rollout = %v", err)
	}
}

// TestRolloutResumesAfterKill stops a controller by cancellation (Ctrl-C)
// mid-phase; TestRolloutSurvivesSIGKILL does it with SIGKILL on 200 BMCs.
func TestRolloutResumesAfterKill(t *testing.T) {
	s := storetest.SQLite(t)
	f := newFleet(t, s, 100)
	_, payload := f.release(t, "1.46.0", "ok")
	id, _ := f.start(t, f.spec("1.46.0"))
	ctx, kill := context.WithCancel(context.Background())
	done := 0
	c := f.controller(payload)
	c.OnEvent = func(e Event) {
		if e.Phase == 2 && e.State == HostDone {
			done++
			if done == 10 {
				kill() // mid-phase, with installs in flight
			}
		}
	}
	if err := c.Run(ctx, id); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed Run = %v", err)
	}
	hosts, _ := f.db.RolloutHosts(context.Background(), id)
	started := 0
	for _, h := range hosts {
		if h.State == HostStarted {
			started++
		}
	}
	t.Logf("killed with %d hosts in flight", started)
	// A new controller (as after a restart) finishes the job.
	if err := f.controller(payload).Run(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	for name, b := range f.bmcs {
		if b.Installs() != 1 || b.Version("BMC") != "1.46.0" {
			t.Errorf("%s: %d installs, version %s", name, b.Installs(), b.Version("BMC"))
		}
	}
	ro, _ := f.db.Rollout(context.Background(), id)
	if ro.State != RolloutCompleted {
		t.Errorf("state %s", ro.State)
	}
}

func TestRolloutHaltRuleLaterPhase(t *testing.T) {
	s := storetest.SQLite(t)
	ctx := context.Background()
	f := newFleet(t, s, 100)
	_, payload := f.release(t, "1.46.0", "ok")
	spec := f.spec("1.46.0")
	spec.Phases = []PhaseSpec{{"canary", 2}, {"early", 20}, {"rest", 100}}
	id, plan := f.start(t, spec)
	// 4 broken BMCs in phase 2: under the 5-failure rule, the rollout goes on.
	// Then 40 of phase 3's 80 break: success 50% < 70% with >= 5 failures halts.
	for _, c := range plan.Phases[1][:4] {
		f.bmcs[c.Host].Broken = true
	}
	for _, c := range plan.Phases[2][:40] {
		f.bmcs[c.Host].Broken = true
	}
	err := f.controller(payload).Run(ctx, id)
	if !errors.Is(err, ErrHalted) {
		t.Fatalf("Run = %v, want a halt in phase 3", err)
	}
	ro, _ := f.db.Rollout(ctx, id)
	if ro.Phase != 2 || ro.Counts[1][HostFailed] != 4 || ro.Counts[1][HostDone] != 14 {
		t.Errorf("rollout phase %d counts %v (%s)", ro.Phase, ro.Counts, ro.HaltReason)
	}
}

func TestConcurrencyFormula(t *testing.T) {
	for _, tc := range []struct {
		cap       int
		pct       float64
		hosts, un int
		want      int
	}{
		{10, 5, 200, 0, 10},
		{20, 5, 200, 0, 10},
		{20, 5, 200, 3, 7},
		{20, 5, 201, 0, 11}, // ceil
		{20, 5, 200, 12, 0},
		{0, 50, 10, 0, 5}, // no cap
	} {
		if got := Concurrency(tc.cap, tc.pct, tc.hosts, tc.un); got != tc.want {
			t.Errorf("Concurrency(%d, %g, %d, %d) = %d, want %d", tc.cap, tc.pct, tc.hosts, tc.un, got, tc.want)
		}
	}
}
