package firmware

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/srekit/srekit/firmware/redfish"
)

// Sysfs reads a Linux host's firmware versions from sysfs and procfs, with
// no vendor tools: DMI for the BIOS, the microcode revision, NVMe firmware
// revisions, and NIC firmware through the ethtool ioctl.
type Sysfs struct {
	// Root is where /sys and /proc are found ("/" when empty); tests point
	// it at a directory tree shaped like them.
	Root string
	// Drvinfo answers the ethtool driver-info question for an interface;
	// EthtoolDrvinfo (the ETHTOOL_GDRVINFO ioctl) when nil and Root is "/".
	Drvinfo func(ifname string) (Drvinfo, error)
}

// Drvinfo is what ETHTOOL_GDRVINFO tells about a network interface.
type Drvinfo struct {
	Driver, Version, Firmware, BusInfo string
}

// Read returns the host (name and model from DMI) and what it runs. Parts
// that cannot be read (no NVMe, a virtual NIC) are left out; problems worth
// knowing are returned as warnings.
func (s Sysfs) Read() (Host, []string) {
	root := s.Root
	if root == "" {
		root = "/"
	}
	now := time.Now().UTC()
	var warn []string
	h := Host{}
	if name := s.read("proc/sys/kernel/hostname"); name != "" {
		h.Name = name
	} else if name, err := os.Hostname(); err == nil {
		h.Name = name
	}
	dmi := func(f string) string { return s.read("sys/class/dmi/id/" + f) }
	h.Model = dmi("product_name")
	vendor := firstNonEmpty(dmi("sys_vendor"), dmi("board_vendor"), dmi("bios_vendor"), "unknown")
	if v := dmi("bios_version"); v != "" {
		h.Components = append(h.Components, Observed{Slot: "BIOS", Kind: "bios", Vendor: vendor, Model: firstNonEmpty(h.Model, "unknown"),
			Version: v, Format: Guess(v), Source: "sysfs", At: now, Detail: strings.TrimSpace("date " + dmi("bios_date"))})
	} else {
		warn = append(warn, "no DMI BIOS version (no /sys/class/dmi/id/bios_version: a VM or a non-x86 host?)")
	}
	if o, ok := s.microcode(now); ok {
		h.Components = append(h.Components, o)
	}
	h.Components = append(h.Components, s.nvme(now)...)
	nics, w := s.nics(now)
	h.Components = append(h.Components, nics...)
	warn = append(warn, w...)
	return h, warn
}

func (s Sysfs) path(rel string) string {
	root := s.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, rel)
}

func (s Sysfs) read(rel string) string {
	b, err := os.ReadFile(s.path(rel))
	if err != nil || len(b) > 4096 {
		return ""
	}
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", ""))
}

// microcode reads the running microcode revision of cpu0, and names the CPU
// by vendor and family-model-stepping (the way microcode files are named).
func (s Sysfs) microcode(now time.Time) (Observed, bool) {
	info := map[string]string{}
	if f, err := os.Open(s.path("proc/cpuinfo")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				if len(info) > 0 {
					break // first processor only
				}
				continue
			}
			k = strings.TrimSpace(k)
			if _, seen := info[k]; !seen {
				info[k] = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	rev := firstNonEmpty(s.read("sys/devices/system/cpu/cpu0/microcode/version"), info["microcode"])
	if rev == "" {
		return Observed{}, false
	}
	if n, err := strconv.ParseUint(strings.TrimPrefix(rev, "0x"), 16, 32); err == nil {
		rev = fmt.Sprintf("0x%08x", n)
	}
	num := func(k string) string {
		n, err := strconv.Atoi(info[k])
		if err != nil {
			return "xx"
		}
		return fmt.Sprintf("%02x", n)
	}
	model := num("cpu family") + "-" + num("model") + "-" + num("stepping")
	return Observed{Slot: "microcode", Kind: "microcode", Vendor: firstNonEmpty(info["vendor_id"], "unknown"), Model: model,
		Version: rev, Format: FormatHex, Source: "sysfs", At: now, Detail: info["model name"]}, true
}

// pciVendors names the PCI vendor ids of common NVMe and NIC makers.
var pciVendors = map[string]string{
	"0x144d": "Samsung", "0x8086": "Intel", "0x1344": "Micron", "0x15b7": "SanDisk/WD", "0x1e0f": "Kioxia",
	"0x1c5c": "SK hynix", "0x1b96": "Western Digital", "0x15b3": "Mellanox", "0x14e4": "Broadcom", "0x1077": "QLogic",
	"0x1924": "Solarflare", "0x1d0f": "Amazon", "0x1af4": "Red Hat (virtio)", "0x10ec": "Realtek", "0x19e5": "Huawei",
}

func (s Sysfs) nvme(now time.Time) []Observed {
	entries, _ := os.ReadDir(s.path("sys/class/nvme"))
	var out []Observed
	for _, e := range entries {
		base := "sys/class/nvme/" + e.Name()
		rev := s.read(base + "/firmware_rev")
		if rev == "" {
			continue
		}
		vid := s.read(base + "/device/vendor")
		vendor := firstNonEmpty(pciVendors[vid], vid, "unknown")
		out = append(out, Observed{Slot: e.Name(), Kind: "nvme", Vendor: vendor, Model: firstNonEmpty(s.read(base+"/model"), "unknown"),
			Version: rev, Format: FormatPlain, Source: "sysfs", At: now, Detail: "serial " + s.read(base+"/serial")})
	}
	return out
}

func (s Sysfs) nics(now time.Time) ([]Observed, []string) {
	entries, _ := os.ReadDir(s.path("sys/class/net"))
	drv := s.Drvinfo
	if drv == nil && (s.Root == "" || s.Root == "/") {
		drv = EthtoolDrvinfo
	}
	var out []Observed
	var warn []string
	for _, e := range entries {
		base := "sys/class/net/" + e.Name()
		if _, err := os.Stat(s.path(base + "/device")); err != nil {
			continue // virtual: lo, bridges, veth
		}
		link, _ := os.Readlink(s.path(base + "/device/driver"))
		driver := filepath.Base(link)
		fw := ""
		if drv != nil {
			di, err := drv(e.Name())
			if err != nil {
				warn = append(warn, fmt.Sprintf("%s: ethtool driver info: %v", e.Name(), err))
			} else {
				if di.Driver != "" {
					driver = di.Driver
				}
				fw = di.Firmware
			}
		}
		if fw == "" || fw == "N/A" {
			continue // a NIC without updatable firmware (virtio, most VMs)
		}
		vid := s.read(base + "/device/vendor")
		out = append(out, Observed{Slot: e.Name(), Kind: "nic", Vendor: firstNonEmpty(pciVendors[vid], vid, "unknown"),
			Model: firstNonEmpty(driver, "unknown"), Version: fw, Format: Guess(fw), Source: "sysfs", At: now})
	}
	return out, warn
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// FromRedfish turns a BMC's FirmwareInventory into observations: slot is
// the member id (BMC, BIOS, ...), kind its lower case, vendor the
// Manufacturer, model the Name.
func FromRedfish(inv []redfish.SoftwareInventory, now time.Time) []Observed {
	out := make([]Observed, 0, len(inv))
	for _, si := range inv {
		if si.Version == "" || si.Id == "" {
			continue
		}
		out = append(out, Observed{Slot: si.Id, Kind: strings.ToLower(si.Id), Vendor: firstNonEmpty(si.Manufacturer, "unknown"),
			Model: firstNonEmpty(si.Name, si.Id), Version: si.Version, Format: Guess(si.Version), Source: "redfish", At: now,
			Detail: strings.TrimSpace(si.ReleaseDate + " " + si.SoftwareId)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Slot < out[j].Slot })
	return out
}

// BMCTarget is one BMC to read, as listed in the inventory configuration.
type BMCTarget struct {
	Host     string `yaml:"host" json:"host"` // the host the BMC belongs to
	URL      string `yaml:"url" json:"url"`
	User     string `yaml:"user" json:"user,omitempty"`
	Password string `yaml:"password" json:"-"`
	Model    string `yaml:"model" json:"model,omitempty"`
	Rack     string `yaml:"rack" json:"rack,omitempty"`
	Zone     string `yaml:"zone" json:"zone,omitempty"`
}

// ReadBMC reads one BMC's FirmwareInventory into a Host.
func ReadBMC(ctx context.Context, t BMCTarget, c *redfish.Client) (Host, error) {
	if c == nil {
		c = &redfish.Client{BaseURL: t.URL, User: t.User, Password: t.Password}
	}
	inv, err := c.FirmwareInventory(ctx)
	if err != nil {
		return Host{}, fmt.Errorf("BMC of %s (%s): %w", t.Host, t.URL, err)
	}
	return Host{Name: t.Host, Model: t.Model, Rack: t.Rack, Zone: t.Zone, BMC: t.URL, Components: FromRedfish(inv, time.Now().UTC())}, nil
}

// ReadBMCs reads many BMCs, workers at a time, each within timeout. It
// returns the hosts read (in the order given) and an error per BMC that
// could not be read. httpc, when not nil, is the HTTP client to use (a
// BMC's CA, timeouts).
func ReadBMCs(ctx context.Context, targets []BMCTarget, workers int, timeout time.Duration, httpc *http.Client) ([]Host, []error) {
	workers = max(workers, 1)
	hosts := make([]Host, len(targets))
	errs := make([]error, len(targets))
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int, t BMCTarget) {
			defer wg.Done()
			defer func() { <-sem }()
			tctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			hosts[i], errs[i] = ReadBMC(tctx, t, &redfish.Client{BaseURL: t.URL, User: t.User, Password: t.Password, HTTP: httpc})
		}(i, t)
	}
	wg.Wait()
	var okHosts []Host
	var bad []error
	for i := range targets {
		if errs[i] != nil {
			bad = append(bad, errs[i])
		} else {
			okHosts = append(okHosts, hosts[i])
		}
	}
	return okHosts, bad
}
