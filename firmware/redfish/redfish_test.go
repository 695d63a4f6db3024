package redfish_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/srekit/srekit/firmware/redfish"
	"github.com/srekit/srekit/firmware/redfish/redfishtest"
)

func startBMC(t *testing.T, mod func(*redfishtest.BMC)) (*redfishtest.BMC, *redfish.Client) {
	t.Helper()
	m, err := redfishtest.LoadMockup(redfishtest.MockupDir(t))
	if err != nil {
		t.Fatal(err)
	}
	b := redfishtest.New(m)
	b.User, b.Password = "root", "calvin"
	if mod != nil {
		mod(b)
	}
	url := b.Start(t)
	return b, &redfish.Client{BaseURL: url, User: "root", Password: "calvin"}
}

func TestFirmwareInventoryFromMockup(t *testing.T) {
	_, c := startBMC(t, nil)
	ctx := context.Background()
	root, err := c.ServiceRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if root.RedfishVersion != "1.15.0" || root.UpdateService.ID != "/redfish/v1/UpdateService" {
		t.Errorf("root = %+v", root)
	}
	inv, err := c.FirmwareInventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, si := range inv {
		got[si.Id] = si.Version + "|" + si.Manufacturer
	}
	// The mockup's values, as the DMTF publishes them.
	if got["BIOS"] != "P79 v1.45|Contoso" || got["BMC"] != "1.45.455b66-rev4|Contoso" || len(inv) != 3 {
		t.Errorf("inventory = %v", got)
	}
	bad := &redfish.Client{BaseURL: c.BaseURL, User: "root", Password: "wrong"}
	var re *redfish.Error
	if _, err := bad.FirmwareInventory(ctx); !errors.As(err, &re) || re.Status != 401 {
		t.Errorf("wrong password: %v", err)
	}
}

func TestPushAndTask(t *testing.T) {
	for _, multipart := range []bool{false, true} {
		b, c := startBMC(t, func(b *redfishtest.BMC) { b.Multipart = multipart; b.Steps = 4 })
		ctx := context.Background()
		uri, err := c.Push(ctx, "bmc.bin", redfishtest.Image("BMC", "1.46.0", "ok"), []string{"/redfish/v1/UpdateService/FirmwareInventory/BMC"})
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		task, err := c.WaitTask(ctx, uri, redfish.WaitOptions{Poll: time.Millisecond, Progress: func(t redfish.Task) { seen = append(seen, t.TaskState) }})
		if err != nil {
			t.Fatal(err)
		}
		if !task.OK() || b.Version("BMC") != "1.46.0" || len(seen) != 4 {
			t.Errorf("multipart %v: task %s, version %s, states %v", multipart, task.Summary(), b.Version("BMC"), seen)
		}
	}
}

func TestTaskFailureAndStall(t *testing.T) {
	b, c := startBMC(t, nil)
	ctx := context.Background()
	uri, err := c.Push(ctx, "bmc.bin", redfishtest.Image("BMC", "9.9.9", "fail"), nil)
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.WaitTask(ctx, uri, redfish.WaitOptions{Poll: time.Millisecond})
	if err == nil || task.TaskState != "Exception" || !strings.Contains(err.Error(), "Flash write verification failed") {
		t.Errorf("failed task: %v, %+v", err, task)
	}
	uri, err = c.Push(ctx, "bmc.bin", redfishtest.Image("BMC", "9.9.9", "stall"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitTask(ctx, uri, redfish.WaitOptions{Poll: time.Millisecond, Stall: 30 * time.Millisecond})
	if !errors.Is(err, redfish.ErrStalled) {
		t.Errorf("stalled task: %v", err)
	}
	if b.Resets() != 0 {
		t.Errorf("the BMC got %d resets", b.Resets())
	}
	if b.Version("BMC") != "1.45.455b66-rev4" {
		t.Errorf("version changed to %s", b.Version("BMC"))
	}
	// A target the BMC does not have is refused with the Redfish message.
	if _, err := c.Push(ctx, "x.bin", redfishtest.Image("NIC9", "1", "ok"), nil); err == nil || !strings.Contains(err.Error(), "no firmware NIC9") {
		t.Errorf("unknown target: %v", err)
	}
}

func TestSimpleUpdate(t *testing.T) {
	b, c := startBMC(t, nil)
	img := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write(redfishtest.Image("BIOS", "P79 v1.46", "ok"))
	}))
	defer img.Close()
	ctx := context.Background()
	uri, err := c.SimpleUpdate(ctx, img.URL+"/bios.bin", []string{"/redfish/v1/UpdateService/FirmwareInventory/BIOS"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitTask(ctx, uri, redfish.WaitOptions{Poll: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if b.Version("BIOS") != "P79 v1.46" {
		t.Errorf("BIOS version %q after SimpleUpdate", b.Version("BIOS"))
	}
}
