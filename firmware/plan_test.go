package firmware

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func candidates(n int) []Candidate {
	out := make([]Candidate, n)
	for i := range out {
		out[i] = Candidate{HostID: int64(i + 1), Host: fmt.Sprintf("h%06d", i), Model: "m1", Rack: fmt.Sprintf("rack%03d", i/40),
			Zone: fmt.Sprintf("zone%d", i%3), Version: "1.45.0"}
	}
	return out
}

func TestMakePlanPhases(t *testing.T) {
	cands := candidates(1000)
	cands[5].Version = "1.46.0" // already on target
	cands[6].Version = "1.47.0" // ahead
	spec := RolloutSpec{Component: bmcKey, Version: "1.46.0", Install: InstallSpec{Target: "BMC"}}
	p, err := MakePlan(spec, cands, FormatTriplet)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{}
	seen := map[string]bool{}
	for _, ph := range p.Phases {
		sizes = append(sizes, len(ph))
		for _, c := range ph {
			if seen[c.Host] {
				t.Fatalf("%s in two phases", c.Host)
			}
			seen[c.Host] = true
		}
	}
	// 998 hosts: ceil(1%)=10, ceil(10%)=100, ceil(50%)=499, 100%.
	if fmt.Sprint(sizes) != "[10 90 399 499]" || p.Skipped != 2 || p.Total != 998 {
		t.Errorf("sizes %v skipped %d total %d", sizes, p.Skipped, p.Total)
	}
	// Deterministic.
	p2, _ := MakePlan(spec, cands, FormatTriplet)
	if p2.Phases[0][0].Host != p.Phases[0][0].Host {
		t.Error("plan is not deterministic")
	}
}

func TestMakePlanDomains(t *testing.T) {
	cands := candidates(1000) // 25 racks of 40
	spec := RolloutSpec{Component: bmcKey, Version: "1.46.0", Domain: "rack", Install: InstallSpec{Target: "BMC"},
		Phases: []PhaseSpec{{"canary", 1}, {"early", 10}, {"all", 100}}}
	p, err := MakePlan(spec, cands, FormatTriplet)
	if err != nil {
		t.Fatal(err)
	}
	racks := func(ph []Candidate) map[string]int {
		m := map[string]int{}
		for _, c := range ph {
			m[c.Rack]++
		}
		return m
	}
	if r := racks(p.Phases[0]); len(r) != 1 || len(p.Phases[0]) != 10 {
		t.Errorf("canary spans racks %v", r)
	}
	// Later phases take whole racks: no rack is split between phases 2 and 3.
	r1, r2 := racks(p.Phases[1]), racks(p.Phases[2])
	for rack := range r1 {
		if r2[rack] > 0 {
			t.Errorf("rack %s split between phases 2 and 3", rack)
		}
	}
	// Selector.
	spec.Selector = Selector{Zones: []string{"zone1"}, Hosts: []string{"h0000*"}}
	p, err = MakePlan(spec, cands, FormatTriplet)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 33 { // h000000..h000099 with i%3 == 1
		t.Errorf("selected %d hosts, want 33", p.Total)
	}
}

func TestWindows(t *testing.T) {
	ws := []Window{{Days: []string{"sat", "sun"}, Start: "22:00", End: "04:00", TZ: "Europe/Berlin"}}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, tc := range []struct {
		t    time.Time
		want bool
	}{
		{time.Date(2026, 11, 28, 23, 0, 0, 0, berlin), true},    // Saturday night
		{time.Date(2026, 11, 29, 3, 59, 0, 0, berlin), true},    // Sunday early: Saturday's window
		{time.Date(2026, 11, 30, 3, 0, 0, 0, berlin), true},     // Monday early: Sunday's window
		{time.Date(2026, 12, 1, 3, 0, 0, 0, berlin), false},     // Tuesday early: Monday has none
		{time.Date(2026, 11, 28, 21, 59, 0, 0, berlin), false},  // before the start
		{time.Date(2026, 11, 28, 21, 30, 0, 0, time.UTC), true}, // 22:30 in Berlin
	} {
		if got := InWindow(ws, tc.t); got != tc.want {
			t.Errorf("InWindow(%v) = %v, want %v", tc.t, got, tc.want)
		}
	}
	if !InWindow(nil, time.Now()) {
		t.Error("no windows must mean always")
	}
}

func TestRolloutSpecValidation(t *testing.T) {
	good := `name: bmc 1.46
component: {vendor: Contoso, model: Contoso BMC Firmware, kind: bmc}
version: 1.46.0
domain: rack
soak: 30m
windows: [{days: [sat, sun], start: "22:00", end: "04:00", tz: UTC}]
drain: {command: [/usr/local/bin/drain, "{host}"]}
install: {target: BMC, stall: 15m}
`
	s, err := ParseRolloutSpec([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if s.Soak.D() != 30*time.Minute || s.Install.Stall.D() != 15*time.Minute || s.HaltFailures != 5 || s.HaltSuccess != 0.70 || len(s.Phases) != 4 {
		t.Errorf("spec = %+v", s)
	}
	for _, bad := range []struct{ old, new, want string }{
		{"version: 1.46.0\n", "", "target version"},
		{"domain: rack", "domain: row", "want rack or zone"},
		{"soak: 30m", "soak: soon", "duration"},
		{`start: "22:00"`, `start: "25:00"`, "HH:MM"},
		{"target: BMC, ", "", "install.target"},
		{"name: bmc 1.46", "nmae: x", "not found"},
	} {
		_, err := ParseRolloutSpec([]byte(strings.Replace(good, bad.old, bad.new, 1)))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q -> %q: err = %v, want %q", bad.old, bad.new, err, bad.want)
		}
	}
}

func TestHooks(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 200)
		n, _ := r.Body.Read(b)
		got = append(got, string(b[:n]))
		if strings.Contains(string(b[:n]), "bad-host") {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	h := Hook{URL: srv.URL}
	if err := h.Run(ctx, "drain", "web1", "1.46.0"); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], `"host":"web1"`) || !strings.Contains(got[0], `"event":"drain"`) {
		t.Errorf("webhook body = %v", got)
	}
	if err := h.Run(ctx, "drain", "bad-host", "1.46.0"); err == nil {
		t.Error("a 500 from the webhook was not an error")
	}
	cmd := Hook{Command: []string{"sh", "-c", `test "$SREKIT_HOST" = web1 && test "$1" = web1`, "x", "{host}"}}
	if err := cmd.Run(ctx, "health", "web1", "1.46.0"); err != nil {
		t.Errorf("command hook: %v", err)
	}
	if err := cmd.Run(ctx, "health", "web2", "1.46.0"); err == nil {
		t.Error("a failing command hook was not an error")
	}
}

func TestCommandInstallerAllowList(t *testing.T) {
	ci := &CommandInstaller{Command: []string{"rm", "-rf", "/"}, VersionCommand: []string{"echo", "1"}, Allowed: []string{"echo"}}
	err := ci.Install(context.Background(), RolloutHost{Host: "h"}, func(string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "not in the allowed list") {
		t.Errorf("Install = %v", err)
	}
	v, err := ci.Version(context.Background(), RolloutHost{Host: "h"})
	if err != nil || v != "1" {
		t.Errorf("Version = %q, %v", v, err)
	}
}

// BenchmarkPlan100k measures the target: planning a rollout over
// 100,000 hosts (go test -bench Plan100k).
func BenchmarkPlan100k(b *testing.B) {
	cands := candidates(100000)
	spec := RolloutSpec{Component: bmcKey, Version: "1.46.0", Domain: "rack", Install: InstallSpec{Target: "BMC"}}
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		p, err := MakePlan(spec, cands, FormatTriplet)
		if err != nil || p.Total != 100000 {
			b.Fatal(err)
		}
	}
	reportCPU(b, c0)
}

func TestMakePlanRequirements(t *testing.T) {
	cands := candidates(10)
	cands[0].Version = "1.29.9" // too old for the release
	cands[1].Version = "2B2QEXE7"
	spec := RolloutSpec{Component: bmcKey, Version: "1.46.0", Install: InstallSpec{Target: "BMC"},
		Requires: []Requirement{{Kind: "firmware", Compare: "ge", Version: "1.30.0"}, {Kind: "client", Value: "detach-action"}}}
	p, err := MakePlan(spec, cands, FormatTriplet)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 8 || len(p.Ineligible) != 2 || len(p.Unchecked) != 1 {
		t.Fatalf("total %d, ineligible %+v, unchecked %v", p.Total, p.Ineligible, p.Unchecked)
	}
	for _, in := range p.Ineligible {
		if !strings.Contains(in.Reason, "requires firmware ge 1.30.0") {
			t.Errorf("%s: %s", in.Host, in.Reason)
		}
	}
}
