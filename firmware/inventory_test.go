package firmware

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/srekit/srekit/firmware/redfish/redfishtest"
)

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSysfs(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"proc/sys/kernel/hostname":                      "db17\n",
		"sys/class/dmi/id/bios_version":                 "2.19.1\n",
		"sys/class/dmi/id/bios_date":                    "06/13/2023\n",
		"sys/class/dmi/id/sys_vendor":                   "Dell Inc.\n",
		"sys/class/dmi/id/product_name":                 "PowerEdge R650\n",
		"sys/devices/system/cpu/cpu0/microcode/version": "0xd0003a5\n",
		"proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\ncpu family\t: 6\nmodel\t\t: 106\nmodel name\t: Intel(R) Xeon(R) Gold 6338\nstepping\t: 6\nmicrocode\t: 0xd0003a5\n\n" +
			"processor\t: 1\nvendor_id\t: GenuineIntel\n",
		"sys/class/nvme/nvme0/firmware_rev":  "GDC5602Q\n",
		"sys/class/nvme/nvme0/model":         "SAMSUNG MZQL21T9HCJR-00A07               \n",
		"sys/class/nvme/nvme0/serial":        "S64GNE0R123456\n",
		"sys/class/nvme/nvme0/device/vendor": "0x144d\n",
		"sys/class/net/eth0/device/vendor":   "0x8086\n",
		"sys/class/net/lo/address":           "00:00:00:00:00:00\n",
		"drivers/ice/.keep":                  "",
	})
	os.Symlink(filepath.Join(root, "drivers/ice"), filepath.Join(root, "sys/class/net/eth0/device/driver"))
	s := Sysfs{Root: root, Drvinfo: func(ifname string) (Drvinfo, error) {
		return Drvinfo{Driver: "ice", Firmware: "4.20 0x8001778b 1.3346.0"}, nil
	}}
	h, warn := s.Read()
	if len(warn) != 0 {
		t.Errorf("warnings: %v", warn)
	}
	if h.Name != "db17" || h.Model != "PowerEdge R650" {
		t.Errorf("host = %s %s", h.Name, h.Model)
	}
	got := map[string]Observed{}
	for _, o := range h.Components {
		got[o.Slot] = o
	}
	if o := got["BIOS"]; o.Version != "2.19.1" || o.Format != FormatTriplet || o.Vendor != "Dell Inc." || o.Model != "PowerEdge R650" || o.Detail != "date 06/13/2023" {
		t.Errorf("BIOS = %+v", o)
	}
	if o := got["microcode"]; o.Version != "0x0d0003a5" || o.Format != FormatHex || o.Model != "06-6a-06" || o.Vendor != "GenuineIntel" {
		t.Errorf("microcode = %+v", o)
	}
	if o := got["nvme0"]; o.Version != "GDC5602Q" || o.Vendor != "Samsung" || o.Model != "SAMSUNG MZQL21T9HCJR-00A07" {
		t.Errorf("nvme0 = %+v", o)
	}
	if o := got["eth0"]; o.Version != "4.20 0x8001778b 1.3346.0" || o.Model != "ice" || o.Vendor != "Intel" {
		t.Errorf("eth0 = %+v", o)
	}
	if _, ok := got["lo"]; ok || len(got) != 4 {
		t.Errorf("components = %v", got)
	}
}

// TestEthtoolIoctl asks this machine's kernel: the driver the ioctl names
// must be the one sysfs links each physical interface to.
func TestEthtoolIoctl(t *testing.T) {
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Skip("SKIPPED: no /sys/class/net on this machine")
	}
	checked := 0
	for _, e := range entries {
		link, err := os.Readlink(filepath.Join("/sys/class/net", e.Name(), "device", "driver"))
		if err != nil {
			continue
		}
		di, err := EthtoolDrvinfo(e.Name())
		if errors.Is(err, syscall.ENODEV) {
			continue // the interface went away meanwhile (others create and delete test interfaces)
		}
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		if di.Driver != filepath.Base(link) {
			t.Errorf("%s: ioctl says driver %q, sysfs %q", e.Name(), di.Driver, filepath.Base(link))
		}
		checked++
	}
	if checked == 0 {
		t.Skip("SKIPPED: no physical network interface to ask")
	}
	if _, err := EthtoolDrvinfo("no-such-if0"); err == nil {
		t.Error("ioctl on a missing interface succeeded")
	}
}

func TestReadBMC(t *testing.T) {
	m, err := redfishtest.LoadMockup(redfishtest.MockupDir(t))
	if err != nil {
		t.Fatal(err)
	}
	b := redfishtest.New(m)
	url := b.Start(t)
	h, err := ReadBMC(context.Background(), BMCTarget{Host: "rack1-u07", URL: url, Model: "Contoso 1U"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Name != "rack1-u07" || h.BMC != url || len(h.Components) != 3 {
		t.Fatalf("host = %+v", h)
	}
	bios := h.Components[0]
	if bios.Slot != "BIOS" || bios.Kind != "bios" || bios.Version != "P79 v1.45" || bios.Vendor != "Contoso" || bios.Model != "Contoso BIOS Firmware" {
		t.Errorf("BIOS = %+v", bios)
	}
	if _, err := ReadBMC(context.Background(), BMCTarget{Host: "x", URL: "http://127.0.0.1:1"}, nil); err == nil {
		t.Error("unreachable BMC gave no error")
	}
}
