package firmware

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/srekit/srekit/store"
	"github.com/srekit/srekit/store/storetest"
)

var (
	bmcKey  = ComponentKey{"Contoso", "BMC", "bmc"}
	nvmeKey = ComponentKey{"Samsung", "MZQL21T9HCJR", "nvme"}
)

func seedFleet(t *testing.T, db *DB) {
	t.Helper()
	ctx := context.Background()
	for _, r := range []Release{
		{Version: "1.45.0", Urgency: "medium"},
		{Version: "1.46.0", Urgency: "critical", Issues: []Issue{{Type: "cve", ID: "CVE-2023-34329"}}},
		{Version: "1.47.0"},
	} {
		if _, err := db.AddRelease(ctx, bmcKey, FormatTriplet, r, "", "bmc.cab"); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"GDC5302Q", "GDC5602Q"} {
		if _, err := db.AddRelease(ctx, nvmeKey, FormatPlain, Release{Version: v}, "", ""); err != nil {
			t.Fatal(err)
		}
	}
	var hosts []Host
	versions := []string{"1.45.0", "1.46.0", "1.46.0", "1.47.0", "1.46.0.0", "1.44.9"}
	for i, v := range versions {
		hosts = append(hosts, Host{Name: fmt.Sprintf("web%02d", i), Model: "R650", Rack: fmt.Sprintf("r%d", i%2), Zone: "z1",
			Components: []Observed{
				{Slot: "BMC", Kind: "bmc", Vendor: "Contoso", Model: "BMC", Version: v, Source: "redfish"},
				{Slot: "nvme0", Kind: "nvme", Vendor: "Samsung", Model: "MZQL21T9HCJR", Version: []string{"GDC5302Q", "GDC5602Q"}[i%2], Source: "sysfs"},
			}})
	}
	if err := db.Ingest(ctx, hosts); err != nil {
		t.Fatal(err)
	}
	if err := db.SetTarget(ctx, "R650", bmcKey, "1.46.0"); err != nil {
		t.Fatal(err)
	}
	if err := db.SetTarget(ctx, "R650", nvmeKey, "GDC5602Q"); err != nil {
		t.Fatal(err)
	}
}

func hostsOf(sts []Status) string {
	var s []string
	for _, x := range sts {
		s = append(s, x.Host+":"+x.Slot)
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

func TestVersionsDB(t *testing.T) {
	storetest.Each(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		db := NewDB(s)
		seedFleet(t, db)

		behind, err := db.Behind(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// 1.45.0 and 1.44.9 are behind 1.46.0; 1.46.0.0 pads 1.46.0 and is on target;
		// the NVMe revisions do not order, so GDC5302Q is "differs", not "behind".
		if got := hostsOf(behind); got != "web00:BMC web05:BMC" {
			t.Errorf("behind = %s", got)
		}
		all, _, err := db.Status(ctx, Filter{Kind: "nvme"})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range all {
			want := StateOnTarget
			if st.Version == "GDC5302Q" {
				want = StateDiffers
			}
			if st.State != want {
				t.Errorf("%s %s: state %s, want %s", st.Host, st.Version, st.State, want)
			}
		}

		affected, err := db.AffectedBy(ctx, "cve-2023-34329")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range affected {
			names = append(names, a.Host)
			if !a.Certain || a.FixedIn != "1.46.0" {
				t.Errorf("affected %+v", a)
			}
		}
		if strings.Join(names, " ") != "web00 web05" {
			t.Errorf("affected by CVE = %v", names)
		}
		if _, err := db.AffectedBy(ctx, "CVE-1999-0001"); !errors.Is(err, ErrNoFix) {
			t.Errorf("a CVE nothing fixes: %v, want ErrNoFix", err)
		}

		// Mark 1.47.0 bad: web03 is then on a known-bad release.
		r, err := db.FindRelease(ctx, bmcKey, "1.47.0")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.MarkBad(ctx, r.ID, true, "bricks BMCs with old bootloaders"); err != nil {
			t.Fatal(err)
		}
		bad, err := db.OnKnownBad(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := hostsOf(bad); got != "web03:BMC" || bad[0].Bad == "" {
			t.Errorf("on known-bad = %s %+v", got, bad)
		}
		if err := db.SetTarget(ctx, "R650", bmcKey, "1.47.0"); err == nil {
			t.Error("a known-bad release became a target")
		}

		spread, err := db.Spread(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(spread) != 2 {
			t.Fatalf("spread = %+v", spread)
		}
		var vs []string
		for _, vc := range spread[0].Versions {
			vs = append(vs, fmt.Sprintf("%s=%d/%s", vc.Version, vc.Count, vc.State))
		}
		// Versions in version order (1.44.9 before 1.45.0; 1.46.0.0 equal to 1.46.0).
		want := "1.44.9=1/behind 1.45.0=1/behind 1.46.0=2/on-target 1.46.0.0=1/on-target 1.47.0=1/bad"
		if spread[0].Key != bmcKey || strings.Join(vs, " ") != want {
			t.Errorf("spread[0] = %v %s\nwant %s", spread[0].Key, strings.Join(vs, " "), want)
		}

		rels, err := db.Releases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rels) != 5 {
			t.Errorf("releases = %d", len(rels))
		}
		for _, r := range rels {
			if r.Version == "1.46.0" && (len(r.Issues) != 1 || len(r.Target) != 1 || r.Target[0] != "R650") {
				t.Errorf("release 1.46.0 = %+v", r)
			}
		}

		// Re-ingesting a source replaces its rows: web00 upgraded, NVMe row untouched.
		if err := db.Ingest(ctx, []Host{{Name: "web00", Components: []Observed{{Slot: "BMC", Kind: "bmc", Vendor: "Contoso", Model: "BMC", Version: "1.46.0", Source: "redfish", At: time.Now()}}}}); err != nil {
			t.Fatal(err)
		}
		st, _, _ := db.Status(ctx, Filter{Host: "web00"})
		if len(st) != 2 || st[0].State != StateOnTarget || st[0].Model != "R650" {
			t.Errorf("web00 after re-ingest = %+v", st)
		}

		// Bad input writes nothing.
		hostsBefore, _ := db.Hosts(ctx)
		err = db.Ingest(ctx, []Host{{Name: "new1", Components: []Observed{{Slot: "x", Kind: "k", Vendor: "v", Model: "m", Version: "1", Source: "s"}}}, {Name: ""}})
		if err == nil {
			t.Error("a host without a name was accepted")
		}
		hostsAfter, _ := db.Hosts(ctx)
		if len(hostsAfter) != len(hostsBefore) {
			t.Errorf("failed ingest wrote %d hosts", len(hostsAfter)-len(hostsBefore))
		}
	})
}

// BenchmarkIngest10k measures the issue's target: 10,000 hosts with 20
// components each into SQLite (go test -bench Ingest10k -benchtime 1x).
func BenchmarkIngest10k(b *testing.B) {
	hosts := syntheticFleet(10000, 20)
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := storetest.SQLite(b)
		db := NewDB(s)
		b.StartTimer()
		c0 := cpuTime()
		if err := db.Ingest(context.Background(), hosts); err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		b.StopTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(len(hosts)*20)/b.Elapsed().Seconds()*float64(b.N), "rows/s")
}

func syntheticFleet(n, comps int) []Host {
	hosts := make([]Host, n)
	for i := range hosts {
		h := Host{Name: fmt.Sprintf("host%05d", i), Model: fmt.Sprintf("model%d", i%4), Rack: fmt.Sprintf("rack%03d", i/40), Zone: fmt.Sprintf("zone%d", i%3)}
		for c := 0; c < comps; c++ {
			h.Components = append(h.Components, Observed{Slot: fmt.Sprintf("slot%02d", c), Kind: fmt.Sprintf("kind%d", c%5),
				Vendor: "Vendor", Model: fmt.Sprintf("part%02d", c), Version: fmt.Sprintf("1.%d.%d", c, i%7), Format: FormatTriplet, Source: "sysfs"})
		}
		hosts[i] = h
	}
	return hosts
}
