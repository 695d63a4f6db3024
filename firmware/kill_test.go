package firmware

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/srekit/srekit/firmware/redfish"
	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

// TestHelperController is not a test: TestRolloutSurvivesSIGKILL runs the
// test binary again with SREKIT_FW_CONTROLLER set, so that this function
// runs a controller in a separate process that can be killed with SIGKILL.
func TestHelperController(t *testing.T) {
	dsn := os.Getenv("SREKIT_FW_CONTROLLER")
	if dsn == "" {
		t.Skip("helper process for TestRolloutSurvivesSIGKILL")
	}
	id, _ := strconv.ParseInt(os.Getenv("SREKIT_FW_ROLLOUT"), 10, 64)
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := controllerFor(ctx, t, st, id).Run(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// controllerFor builds a controller the way `srekit firmware rollout run`
// does: the payload comes from the release's package on disk.
func controllerFor(ctx context.Context, t *testing.T, st *store.Store, id int64) *Controller {
	db := NewDB(st)
	ro, err := db.Rollout(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := db.Release(ctx, ro.ReleaseID)
	if err != nil {
		t.Fatal(err)
	}
	p, err := OpenPackage(rel.Package, 0)
	if err != nil {
		t.Fatal(err)
	}
	name, payload, err := p.Payload()
	if err != nil {
		t.Fatal(err)
	}
	return &Controller{DB: db, Installer: &RedfishInstaller{Target: ro.Record.Spec.Install.Target, Filename: name, Payload: payload,
		Wait: redfish.WaitOptions{Poll: time.Millisecond, Stall: 10 * time.Second}}}
}

// TestRolloutSurvivesSIGKILL kills a controller process with SIGKILL in the
// middle of a phase, then starts another on the same database: the rollout
// completes, and no BMC received the image twice.
func TestRolloutSurvivesSIGKILL(t *testing.T) {
	dsn := t.TempDir() + "/fw.db"
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newFleet(t, st, 200)
	f.release(t, "1.46.0", "ok")
	spec := f.spec("1.46.0")
	id, _ := f.start(t, spec)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperController$")
	cmd.Env = append(os.Environ(), "SREKIT_FW_CONTROLLER="+dsn, "SREKIT_FW_ROLLOUT="+strconv.FormatInt(id, 10))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	killed := false
	for time.Now().Before(deadline) {
		ro, err := f.db.Rollout(ctx, id)
		if err == nil && len(ro.Counts) > 2 && ro.Counts[2][HostDone] >= 10 {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
		if err == nil && ro.State == RolloutCompleted {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the controller process was not killed mid-phase (it finished or never reached phase 3)")
	}
	ro, _ := f.db.Rollout(ctx, id)
	if ro.State == RolloutCompleted || ro.Phase != 2 {
		t.Fatalf("after the kill: state %s phase %d", ro.State, ro.Phase+1)
	}
	t.Logf("killed in phase 3 with %v", ro.Counts[2])

	if err := controllerFor(ctx, t, st, id).Run(ctx, id); err != nil {
		t.Fatal(err)
	}
	// Every host was handled once. A host the dead controller had claimed
	// but not yet sent the image to is "interrupted": left alone, never
	// installed twice. One it had sent the image to was found in flight
	// through the BMC's TaskService and followed to the end.
	hosts, _ := f.db.RolloutHosts(ctx, id)
	interrupted := 0
	for _, h := range hosts {
		b := f.bmcs[h.Host]
		switch h.State {
		case HostDone:
			if b.Installs() != 1 || b.Version("BMC") != "1.46.0" {
				t.Errorf("%s done: %d installs, version %s", h.Host, b.Installs(), b.Version("BMC"))
			}
		case HostInterrupted:
			interrupted++
			if b.Installs() != 0 || b.Version("BMC") != "1.45.0" {
				t.Errorf("%s interrupted: %d installs, version %s", h.Host, b.Installs(), b.Version("BMC"))
			}
		default:
			t.Errorf("%s: state %s (%s)", h.Host, h.State, h.Detail)
		}
	}
	if interrupted > 20 {
		t.Errorf("%d hosts interrupted, more than the 20 that can be in flight", interrupted)
	}
	t.Logf("%d hosts interrupted between claim and hand-over", interrupted)
	ro, _ = f.db.Rollout(ctx, id)
	if ro.State != RolloutCompleted {
		t.Errorf("state %s", ro.State)
	}
}

// TestResumeClaimedWithoutHandle covers both sides of the crash window
// between claiming a host and recording the BMC's task: an image that did
// reach the BMC is found through its TaskService and followed; a host with
// nothing in flight is marked interrupted and not touched.
func TestResumeClaimedWithoutHandle(t *testing.T) {
	s := storetest.SQLite(t)
	ctx := context.Background()
	f := newFleet(t, s, 4)
	_, payload := f.release(t, "1.46.0", "ok")
	spec := f.spec("1.46.0")
	spec.Phases = []PhaseSpec{{"all", 100}}
	id, plan := f.start(t, spec)
	sent, untouched := plan.Phases[0][0], plan.Phases[0][1]
	// The dead controller had claimed both; it had pushed the image to the first only.
	for _, h := range []Candidate{sent, untouched} {
		if _, err := s.Exec(ctx, "UPDATE fw_rollout_hosts SET state = ? WHERE rollout_id = ? AND host_id = ?", HostStarted, id, h.HostID); err != nil {
			t.Fatal(err)
		}
	}
	c := &redfish.Client{BaseURL: sent.BMC}
	if _, err := c.Push(ctx, "bmc.bin", payload, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.controller(payload).Run(ctx, id); err != nil {
		t.Fatal(err)
	}
	hosts, _ := f.db.RolloutHosts(ctx, id)
	for _, h := range hosts {
		b := f.bmcs[h.Host]
		want, installs, version := HostDone, 1, "1.46.0"
		if h.Host == untouched.Host {
			want, installs, version = HostInterrupted, 0, "1.45.0"
		}
		if h.State != want || b.Installs() != installs || b.Version("BMC") != version {
			t.Errorf("%s: %s (%s), %d installs, version %s; want %s, %d, %s", h.Host, h.State, h.Detail, b.Installs(), b.Version("BMC"), want, installs, version)
		}
	}
}
