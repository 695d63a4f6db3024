package web

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/srekit/srekit/firmware"
	"github.com/srekit/srekit/store"
)

func init() {
	Register(Part{
		Slug:    "firmware",
		Title:   "Firmware",
		Summary: "firmware across the fleet: what runs where, releases and CVEs, staged rollouts that halt on failure",
		Order:   50,
		Mount:   mountFirmware,
		Demo:    firmwareDemo,
	})
}

func mountFirmware(s *Server) error {
	s.HandleFunc("GET /firmware", s.firmwarePage)
	s.HandleFunc("GET /firmware/hosts/{name}", s.firmwareHostPage)
	s.HandleFunc("GET /api/v1/firmware/spread", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) { return db.Spread(r.Context()) }))
	s.HandleFunc("GET /api/v1/firmware/hosts", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) {
		sts, _, err := db.Status(r.Context(), firmware.Filter{Host: r.URL.Query().Get("host"), Model: r.URL.Query().Get("model"), Kind: r.URL.Query().Get("kind")})
		return sts, err
	}))
	s.HandleFunc("GET /api/v1/firmware/behind", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) { return db.Behind(r.Context()) }))
	s.HandleFunc("GET /api/v1/firmware/bad", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) { return db.OnKnownBad(r.Context()) }))
	s.HandleFunc("GET /api/v1/firmware/cve/{id}", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) {
		return db.AffectedBy(r.Context(), r.PathValue("id"))
	}))
	s.HandleFunc("GET /api/v1/firmware/releases", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) { return db.Releases(r.Context()) }))
	s.HandleFunc("GET /api/v1/firmware/rollouts", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) { return db.Rollouts(r.Context()) }))
	s.HandleFunc("GET /api/v1/firmware/rollouts/{id}", s.fwAPI(func(r *http.Request, db *firmware.DB) (any, error) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			return nil, errBadRequest("rollout id is not a number")
		}
		ro, err := db.Rollout(r.Context(), id)
		if err != nil {
			return nil, err
		}
		hosts, err := db.RolloutHosts(r.Context(), id)
		return map[string]any{"rollout": ro, "hosts": hosts}, err
	}))
	s.HandleFunc("POST /api/v1/firmware/inventory", s.fwInventory, Write(), BodyLimit(64<<20))
	s.HandleFunc("POST /api/v1/firmware/releases", s.fwAddRelease, Write(), BodyLimit(firmware.DefaultPackageLimit))
	s.HandleFunc("POST /api/v1/firmware/releases/{id}/bad", s.fwMarkBad, Write())
	s.HandleFunc("POST /api/v1/firmware/targets", s.fwSetTarget, Write())
	return nil
}

type fwHTTPError struct {
	code int
	msg  string
}

func (e fwHTTPError) Error() string { return e.msg }
func errBadRequest(m string) error  { return fwHTTPError{http.StatusBadRequest, m} }

// fwFail answers a failed read: the status the handler chose, 404 for a
// release, rollout or fix that is not stored, and 500 for anything else,
// which is then the store failing rather than the request being wrong.
func fwFail(w http.ResponseWriter, err error) {
	var he fwHTTPError
	switch {
	case errors.As(err, &he):
		Error(w, he.code, he.msg)
	case errors.Is(err, firmware.ErrNotFound), errors.Is(err, firmware.ErrNoFix):
		Error(w, http.StatusNotFound, err.Error())
	default:
		Error(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *Server) fwAPI(fn func(r *http.Request, db *firmware.DB) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v, err := fn(r, firmware.NewDB(s.Store))
		if err != nil {
			fwFail(w, err)
			return
		}
		WriteJSON(w, http.StatusOK, v)
	}
}

func (s *Server) fwInventory(w http.ResponseWriter, r *http.Request) {
	var hosts []firmware.Host
	if err := DecodeJSON(r, &hosts); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := firmware.NewDB(s.Store).Ingest(r.Context(), hosts); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]int{"hosts": len(hosts)})
}

// fwAddRelease takes a cabinet as the body and ?component=VENDOR/MODEL/KIND.
func (s *Server) fwAddRelease(w http.ResponseWriter, r *http.Request) {
	key, err := firmware.ParseComponentKey(r.URL.Query().Get("component"))
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	body, err := ReadBody(r)
	if err != nil {
		Error(w, http.StatusRequestEntityTooLarge, err.Error())
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "upload.cab"
	}
	p, err := firmware.ReadPackage(name, body, firmware.DefaultPackageLimit)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	ids, err := firmware.NewDB(s.Store).AddPackage(r.Context(), p, key)
	if err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"releases": ids})
}

func (s *Server) fwMarkBad(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		Error(w, http.StatusBadRequest, "release id is not a number")
		return
	}
	var body struct {
		Reason string `json:"reason"`
		Clear  bool   `json:"clear"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := firmware.NewDB(s.Store).MarkBad(r.Context(), id, !body.Clear, body.Reason); err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, firmware.ErrNotFound) {
			code = http.StatusNotFound
		}
		Error(w, code, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]bool{"known_bad": !body.Clear})
}

func (s *Server) fwSetTarget(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model     string                `json:"model"`
		Component firmware.ComponentKey `json:"component"`
		Version   string                `json:"version"`
	}
	if err := DecodeJSON(r, &body); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := firmware.NewDB(s.Store).SetTarget(r.Context(), body.Model, body.Component, body.Version); err != nil {
		Error(w, http.StatusBadRequest, err.Error())
		return
	}
	WriteJSON(w, http.StatusOK, map[string]string{"target": body.Version})
}

// fwView is what templates/firmware.html shows.
type fwView struct {
	Hosts, Components, Behind, Bad, Differs int
	Matrix                                  []fwRow
	HostRows                                []fwHostRow
	MoreHosts                               int
	Releases                                []fwRelease
	Rollouts                                []fwRollout
	Error                                   string
}

type fwRow struct {
	Model, Component, Target string
	Hosts                    int
	Cells                    []fwCell
	Bar                      template.HTML
}

type fwCell struct {
	Version, State string
	Count          int
}

type fwHostRow struct {
	Name, Model, Rack, Zone string
	Worst                   string
	Cells                   []fwCell // per slot: version and state
}

type fwRelease struct {
	ID                                        int64
	Component, Version, Format, Date, Urgency string
	CVEs                                      []string
	Others, Targets, Bad                      string
}

type fwRollout struct {
	ID                      int64
	Name, State, HaltReason string
	Phase, Phases           int
	Done, Failed, Total     int
	Interrupted, Unhealthy  int
	Bars                    []fwPhaseBar
}

type fwPhaseBar struct {
	Name                                 string
	Done, Failed, Started, Pending, Size int
	Interrupted, Unhealthy               int
	DonePct, FailedPct, StartedPct       float64
}

var stateRank = map[firmware.State]int{firmware.StateBad: 5, firmware.StateBehind: 4, firmware.StateDiffers: 3, firmware.StateNoTarget: 2, firmware.StateAhead: 1, firmware.StateOnTarget: 0}

var stateColor = map[string]string{"on-target": "#137333", "ahead": "#0b63ce", "behind": "#e8a000", "bad": "#b3261e", "differs": "#8a8f99", "no-target": "#c9ced6"}

// fwBar draws a row of the fleet matrix as a stacked bar of host counts
// coloured by state: behind and bad stand out at a glance.
func fwBar(cells []fwCell, hosts int) template.HTML {
	const w, h = 240.0, 14.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="fw-bar" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" role="img">`, w, h, w, h)
	x := 0.0
	for _, c := range cells {
		cw := w * float64(c.Count) / float64(max(hosts, 1))
		fmt.Fprintf(&b, `<rect class="seg %s" x="%.2f" y="0" width="%.2f" height="%.0f" fill="%s"><title>%s: %d hosts (%s)</title></rect>`,
			template.HTMLEscapeString(c.State), x, cw, h, stateColor[c.State], template.HTMLEscapeString(c.Version), c.Count, template.HTMLEscapeString(c.State))
		x += cw
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func buildFwView(ctx context.Context, st *store.Store) (fwView, error) {
	db := firmware.NewDB(st)
	var v fwView
	sts, formats, err := db.Status(ctx, firmware.Filter{})
	if err != nil {
		return v, err
	}
	spread := firmware.SpreadOf(sts, formats)
	comps := map[string]bool{}
	for _, sp := range spread {
		row := fwRow{Model: sp.Model, Component: sp.Key.String(), Target: sp.Target, Hosts: sp.Hosts}
		comps[sp.Key.String()] = true
		for _, vc := range sp.Versions {
			row.Cells = append(row.Cells, fwCell{Version: vc.Version, State: string(vc.State), Count: vc.Count})
		}
		row.Bar = fwBar(row.Cells, row.Hosts)
		v.Matrix = append(v.Matrix, row)
	}
	v.Components = len(comps)
	byHost := map[string]*fwHostRow{}
	var order []string
	for _, s := range sts {
		switch s.State {
		case firmware.StateBehind:
			v.Behind++
		case firmware.StateBad:
			v.Bad++
		case firmware.StateDiffers:
			v.Differs++
		}
		hr := byHost[s.Host]
		if hr == nil {
			hr = &fwHostRow{Name: s.Host, Model: s.Model, Rack: s.Rack, Zone: s.Zone, Worst: string(firmware.StateOnTarget)}
			byHost[s.Host] = hr
			order = append(order, s.Host)
		}
		hr.Cells = append(hr.Cells, fwCell{Version: s.Slot + " " + s.Version, State: string(s.State)})
		if stateRank[s.State] > stateRank[firmware.State(hr.Worst)] {
			hr.Worst = string(s.State)
		}
	}
	v.Hosts = len(order)
	// Worst first, so the hosts that need attention are on top.
	sort.SliceStable(order, func(i, j int) bool {
		return stateRank[firmware.State(byHost[order[i]].Worst)] > stateRank[firmware.State(byHost[order[j]].Worst)]
	})
	for i, name := range order {
		if i == 200 {
			v.MoreHosts = len(order) - 200
			break
		}
		v.HostRows = append(v.HostRows, *byHost[name])
	}
	rels, err := db.Releases(ctx)
	if err != nil {
		return v, err
	}
	for _, r := range rels {
		fr := fwRelease{ID: r.ID, Component: r.Key.String(), Version: r.Version, Format: string(r.Format), Date: r.Date, Urgency: r.Urgency,
			Targets: strings.Join(r.Target, ", ")}
		var cves, others []string
		for _, is := range r.Issues {
			if is.Type == "cve" {
				cves = append(cves, is.ID)
			} else {
				others = append(others, is.ID)
			}
		}
		fr.CVEs, fr.Others = cves, strings.Join(others, " ")
		if r.KnownBad {
			fr.Bad = r.BadReason
		}
		v.Releases = append(v.Releases, fr)
	}
	ros, err := db.Rollouts(ctx)
	if err != nil {
		return v, err
	}
	for _, ro := range ros {
		v.Rollouts = append(v.Rollouts, fwRolloutView(ro))
	}
	return v, nil
}

func fwRolloutView(ro firmware.Rollout) fwRollout {
	fr := fwRollout{ID: ro.ID, Name: ro.Name, State: ro.State, HaltReason: ro.HaltReason, Phase: ro.Phase + 1, Phases: len(ro.Counts), Total: ro.Record.Total}
	for i, c := range ro.Counts {
		size := ro.Record.PhaseSizes[i]
		name := fmt.Sprintf("phase %d", i+1)
		if i < len(ro.Record.Spec.Phases) {
			name = ro.Record.Spec.Phases[i].Name
		}
		pb := fwPhaseBar{Name: name, Done: c[firmware.HostDone], Failed: c[firmware.HostFailed], Started: c[firmware.HostStarted], Pending: c[firmware.HostPending],
			Interrupted: c[firmware.HostInterrupted], Unhealthy: c[firmware.HostUnhealthy], Size: size}
		if size > 0 {
			pb.DonePct = 100 * float64(pb.Done) / float64(size)
			pb.FailedPct = 100 * float64(pb.Failed) / float64(size)
			pb.StartedPct = 100 * float64(pb.Started) / float64(size)
		}
		fr.Done += pb.Done
		fr.Failed += pb.Failed
		fr.Interrupted += pb.Interrupted
		fr.Unhealthy += pb.Unhealthy
		fr.Bars = append(fr.Bars, pb)
	}
	return fr
}

func (s *Server) firmwarePage(w http.ResponseWriter, r *http.Request) {
	v, err := buildFwView(r.Context(), s.Store)
	if err != nil {
		v.Error = err.Error()
	}
	s.Render(w, "firmware.html", Page{Title: "Firmware", Active: "firmware", Data: v})
}

type fwHostView struct {
	Name     string
	Host     firmware.HostInfo
	Rows     []firmware.Status
	Rollouts []firmware.RolloutHost
	Error    string
}

func (s *Server) firmwareHostPage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	db := firmware.NewDB(s.Store)
	v := fwHostView{Name: name}
	sts, _, err := db.Status(r.Context(), firmware.Filter{Host: name})
	if err != nil {
		v.Error = err.Error()
	}
	v.Rows = sts
	hosts, _ := db.Hosts(r.Context())
	found := false
	for _, h := range hosts {
		if h.Name == name {
			v.Host, found = h, true
		}
	}
	if !found {
		w.WriteHeader(http.StatusNotFound)
		v.Error = "no host " + name + " in the versions database"
	}
	s.Render(w, "firmware_host.html", Page{Title: name + " · Firmware", Active: "firmware", Data: v})
}

// fwDemoInstaller installs nothing: it is the demo's stand-in for BMCs, so
// `serve --demo` shows rollouts the real controller ran (one completed, one
// halted in its canary). A version listed in fail never installs.
type fwDemoInstaller struct {
	version string
	fail    bool
	db      *firmware.DB
}

func (d *fwDemoInstaller) Install(ctx context.Context, h firmware.RolloutHost, started func(string) error) error {
	if err := started("demo"); err != nil {
		return err
	}
	if d.fail {
		return errors.New("task ended Exception/Critical: Flash write verification failed")
	}
	return nil
}

func (d *fwDemoInstaller) Follow(ctx context.Context, h firmware.RolloutHost, handle string) error {
	return nil
}

func (d *fwDemoInstaller) Probe(ctx context.Context, h firmware.RolloutHost) (string, error) {
	return "", nil
}

func (d *fwDemoInstaller) Version(ctx context.Context, h firmware.RolloutHost) (string, error) {
	return d.version, nil
}

// firmwareDemo fills the store with a small fleet: two models, four kinds
// of firmware, releases with CVEs, targets, a known-bad release, and
// rollouts (completed, halted, and one waiting to run).
func firmwareDemo(ctx context.Context, st *store.Store) error {
	db := firmware.NewDB(st)
	bmc := firmware.ComponentKey{Vendor: "Contoso", Model: "Contoso BMC Firmware", Kind: "bmc"}
	biosA := firmware.ComponentKey{Vendor: "Dell Inc.", Model: "PowerEdge R650", Kind: "bios"}
	biosB := firmware.ComponentKey{Vendor: "HPE", Model: "ProLiant DL360 Gen10", Kind: "bios"}
	nvme := firmware.ComponentKey{Vendor: "Samsung", Model: "SAMSUNG MZQL21T9HCJR-00A07", Kind: "nvme"}
	ucode := firmware.ComponentKey{Vendor: "GenuineIntel", Model: "06-6a-06", Kind: "microcode"}
	day := func(s string) time.Time { t, _ := time.Parse("2006-01-02", s); return t }
	rels := []struct {
		k firmware.ComponentKey
		f firmware.Format
		r firmware.Release
	}{
		{bmc, firmware.FormatTriplet, firmware.Release{Version: "1.45.0", Date: day("2023-11-01"), Urgency: "medium"}},
		{bmc, firmware.FormatTriplet, firmware.Release{Version: "1.46.0", Date: day("2024-03-01"), Urgency: "critical",
			Issues: []firmware.Issue{{Type: "cve", ID: "CVE-2023-34329"}, {Type: "cve", ID: "CVE-2023-34330"}}}},
		{bmc, firmware.FormatTriplet, firmware.Release{Version: "1.47.0", Date: day("2024-06-10"), Urgency: "low"}},
		{biosA, firmware.FormatTriplet, firmware.Release{Version: "2.18.1", Date: day("2023-12-01")}},
		{biosA, firmware.FormatTriplet, firmware.Release{Version: "2.19.1", Date: day("2024-02-13"), Urgency: "high",
			Issues: []firmware.Issue{{Type: "cve", ID: "CVE-2023-39368"}, {Type: "dell", ID: "DSA-2024-045"}}}},
		{biosB, firmware.FormatPlain, firmware.Release{Version: "U32 v2.72", Date: day("2023-01-20")}},
		{biosB, firmware.FormatPlain, firmware.Release{Version: "U32 v2.90", Date: day("2024-01-25"), Urgency: "high"}},
		{nvme, firmware.FormatPlain, firmware.Release{Version: "GDC5302Q"}},
		{nvme, firmware.FormatPlain, firmware.Release{Version: "GDC5602Q", Urgency: "medium"}},
		{ucode, firmware.FormatHex, firmware.Release{Version: "0x0d0003a5", Issues: []firmware.Issue{{Type: "cve", ID: "CVE-2023-23583"}}}},
	}
	for _, r := range rels {
		if _, err := db.AddRelease(ctx, r.k, r.f, r.r, "", "demo"); err != nil {
			return err
		}
	}
	var hosts []firmware.Host
	for i := 0; i < 48; i++ {
		modelA := i < 32
		h := firmware.Host{Name: fmt.Sprintf("web%02d", i), Rack: fmt.Sprintf("rack-%d", i/8+1), Zone: fmt.Sprintf("zone-%c", 'a'+i%2)}
		bmcV := []string{"1.45.0", "1.46.0", "1.46.0", "1.46.0"}[i%4]
		if modelA {
			h.Model = "PowerEdge R650"
			h.Components = []firmware.Observed{
				{Slot: "BIOS", Kind: "bios", Vendor: biosA.Vendor, Model: biosA.Model, Version: []string{"2.18.1", "2.19.1", "2.19.1"}[i%3], Source: "sysfs"},
				{Slot: "microcode", Kind: "microcode", Vendor: ucode.Vendor, Model: ucode.Model, Version: []string{"0x0d000389", "0x0d0003a5"}[min(i%5, 1)], Format: firmware.FormatHex, Source: "sysfs"},
				{Slot: "nvme0", Kind: "nvme", Vendor: nvme.Vendor, Model: nvme.Model, Version: []string{"GDC5302Q", "GDC5602Q", "GDC5602Q"}[i%3], Source: "sysfs"},
			}
		} else {
			h.Model = "ProLiant DL360 Gen10"
			h.Components = []firmware.Observed{
				{Slot: "BIOS", Kind: "bios", Vendor: biosB.Vendor, Model: biosB.Model, Version: []string{"U32 v2.72", "U32 v2.90"}[i%2], Source: "sysfs"},
			}
		}
		if i == 5 {
			bmcV = "1.47.0" // the canary host of the halted rollout below
		}
		h.Components = append(h.Components, firmware.Observed{Slot: "BMC", Kind: "bmc", Vendor: bmc.Vendor, Model: bmc.Model, Version: bmcV, Source: "redfish"})
		h.BMC = fmt.Sprintf("https://bmc-%s.example", h.Name)
		hosts = append(hosts, h)
	}
	if err := db.Ingest(ctx, hosts); err != nil {
		return err
	}
	for _, t := range []struct {
		model string
		k     firmware.ComponentKey
		v     string
	}{
		{"PowerEdge R650", bmc, "1.46.0"}, {"ProLiant DL360 Gen10", bmc, "1.46.0"}, {"PowerEdge R650", biosA, "2.19.1"},
		{"ProLiant DL360 Gen10", biosB, "U32 v2.90"}, {"PowerEdge R650", nvme, "GDC5602Q"}, {"PowerEdge R650", ucode, "0x0d0003a5"},
	} {
		if err := db.SetTarget(ctx, t.model, t.k, t.v); err != nil {
			return err
		}
	}
	run := func(spec firmware.RolloutSpec, inst *fwDemoInstaller, start bool) error {
		p, err := db.PlanRollout(ctx, spec)
		if err != nil {
			return err
		}
		id, err := db.CreateRollout(ctx, p)
		if err != nil {
			return err
		}
		if !start {
			return nil
		}
		c := &firmware.Controller{DB: db, Installer: inst}
		if err := c.Run(ctx, id); err != nil && !errors.Is(err, firmware.ErrHalted) {
			return err
		}
		return nil
	}
	install := firmware.InstallSpec{Target: "BIOS"}
	// Completed: the DL360 BIOS.
	if err := run(firmware.RolloutSpec{Name: "DL360 BIOS U32 v2.90", Component: biosB, Version: "U32 v2.90", Install: install,
		Phases: []firmware.PhaseSpec{{Name: "canary", Percent: 10}, {Name: "all", Percent: 100}}}, &fwDemoInstaller{version: "U32 v2.90"}, true); err != nil {
		return err
	}
	// Halted in the canary: BMC 1.47.0, which is then known-bad (web05 runs it).
	if err := run(firmware.RolloutSpec{Name: "BMC 1.47.0", Component: bmc, Version: "1.47.0", Install: firmware.InstallSpec{Target: "BMC"},
		Selector: firmware.Selector{Hosts: []string{"web1*", "web2*"}}}, &fwDemoInstaller{fail: true}, true); err != nil {
		return err
	}
	// Waiting to run: the R650 BIOS 2.19.1 (`srekit firmware rollout run ID`).
	return run(firmware.RolloutSpec{Name: "R650 BIOS 2.19.1", Component: biosA, Version: "2.19.1", Install: install, Domain: "rack",
		Phases: []firmware.PhaseSpec{{Name: "canary", Percent: 10}, {Name: "half", Percent: 50}, {Name: "all", Percent: 100}}}, nil, false)
}
