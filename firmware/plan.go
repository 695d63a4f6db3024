package firmware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// RolloutSpec is what an operator writes to roll a release out: which
// release, to which hosts, in which phases, how fast, when, and when to stop.
// It is read from YAML (see docs/firmware.md) and stored as JSON with the
// rollout so a restarted controller resumes with the same rules.
type RolloutSpec struct {
	Name      string       `yaml:"name" json:"name"`
	Component ComponentKey `yaml:"component" json:"component"`
	Version   string       `yaml:"version" json:"version"`
	Selector  Selector     `yaml:"selector" json:"selector"`
	// Phases are cumulative percentages of the selected hosts; the first
	// is the canary. Default: 1 (canary), 10, 50, 100.
	Phases []PhaseSpec `yaml:"phases" json:"phases"`
	// Domain groups hosts by failure domain ("rack" or "zone"): each phase
	// then takes whole domains, so a bad release reaches as few as possible.
	Domain string `yaml:"domain" json:"domain,omitempty"`
	// Concurrency: at most min(MaxConcurrent, ceil(ConcurrentPercent% x
	// hosts) - hosts already unhealthy) installs at once. Defaults 10 and 5%.
	MaxConcurrent     int     `yaml:"max_concurrent" json:"max_concurrent"`
	ConcurrentPercent float64 `yaml:"concurrent_percent" json:"concurrent_percent"`
	// Windows restrict when new installs start (in-flight ones finish).
	Windows []Window `yaml:"windows" json:"windows,omitempty"`
	Drain   Hook     `yaml:"drain" json:"drain,omitempty"`
	Undrain Hook     `yaml:"undrain" json:"undrain,omitempty"`
	Health  Hook     `yaml:"health" json:"health,omitempty"`
	// Soak is the wait between phases.
	Soak Duration `yaml:"soak" json:"soak"`
	// Halt rules: any failure in the canary; in later phases, at least
	// HaltFailures failures with a success rate under HaltSuccess.
	// Defaults 5 and 0.70, as the LVFS demotes a release.
	HaltFailures int     `yaml:"halt_failures" json:"halt_failures"`
	HaltSuccess  float64 `yaml:"halt_success" json:"halt_success"`
	// Install says how: "redfish" (default) or "command".
	Install InstallSpec `yaml:"install" json:"install"`
	// Requires are the release's requirements from its metainfo, filled
	// in by DB.PlanRollout from the package, not written by hand.
	Requires []Requirement `yaml:"-" json:"requires,omitempty"`
}

// Selector picks hosts. Empty fields select everything; Hosts are globs.
type Selector struct {
	Models []string `yaml:"models" json:"models,omitempty"`
	Racks  []string `yaml:"racks" json:"racks,omitempty"`
	Zones  []string `yaml:"zones" json:"zones,omitempty"`
	Hosts  []string `yaml:"hosts" json:"hosts,omitempty"`
}

// PhaseSpec is one phase: a cumulative share of the hosts.
type PhaseSpec struct {
	Name    string  `yaml:"name" json:"name"`
	Percent float64 `yaml:"percent" json:"percent"`
}

// InstallSpec says how to install on a host.
type InstallSpec struct {
	Method string `yaml:"method" json:"method"` // redfish | command
	// Target is the FirmwareInventory member to update and re-read (BMC, BIOS).
	Target string `yaml:"target" json:"target,omitempty"`
	// SimpleUpdate makes the BMC fetch ImageURL instead of receiving a push.
	SimpleUpdate bool   `yaml:"simple_update" json:"simple_update,omitempty"`
	ImageURL     string `yaml:"image_url" json:"image_url,omitempty"`
	// Command runs for each host (method command), with {host}, {payload}
	// and {version} replaced; its first word must be in the allowed list.
	Command []string `yaml:"command" json:"command,omitempty"`
	// VersionCommand prints the version a host runs, for verification.
	VersionCommand []string `yaml:"version_command" json:"version_command,omitempty"`
	// Stall is how long a BMC task may show no progress (10m default).
	Stall Duration `yaml:"stall" json:"stall"`
	// Poll is the task polling interval (2s default).
	Poll Duration `yaml:"poll" json:"poll"`
}

// Duration is a time.Duration written as "30s", "2h" in YAML and JSON.
type Duration time.Duration

func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	return d.set(s)
}

func (d *Duration) UnmarshalYAML(n *yaml.Node) error { return d.set(n.Value) }

func (d *Duration) set(s string) error {
	if s == "" || s == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	*d = Duration(v)
	return nil
}

// Window is a maintenance window: days of the week and a start and end time
// of day in a time zone; an end before the start runs past midnight.
type Window struct {
	Days  []string `yaml:"days" json:"days,omitempty"` // mon..sun; empty means every day
	Start string   `yaml:"start" json:"start"`         // "22:00"
	End   string   `yaml:"end" json:"end"`             // "04:00"
	TZ    string   `yaml:"tz" json:"tz,omitempty"`     // IANA name; UTC when empty
}

// Hook is a drain, undrain or health action: a command or a webhook.
type Hook struct {
	Command []string `yaml:"command" json:"command,omitempty"`
	URL     string   `yaml:"url" json:"url,omitempty"`
	Timeout Duration `yaml:"timeout" json:"timeout,omitempty"`
}

// IsZero reports whether the hook does nothing.
func (h Hook) IsZero() bool { return len(h.Command) == 0 && h.URL == "" }

// ParseRolloutSpec reads a YAML rollout spec, fills defaults and validates it.
func ParseRolloutSpec(data []byte) (*RolloutSpec, error) {
	var s RolloutSpec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("bad rollout spec: %w", err)
	}
	if err := s.Normalize(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Normalize fills defaults and checks the spec.
func (s *RolloutSpec) Normalize() error {
	if s.Component.Vendor == "" || s.Component.Model == "" || s.Component.Kind == "" {
		return errors.New("rollout spec needs component.vendor, component.model and component.kind")
	}
	if s.Version == "" {
		return errors.New("rollout spec needs the target version")
	}
	if s.Name == "" {
		s.Name = s.Component.Model + " " + s.Version
	}
	if len(s.Phases) == 0 {
		s.Phases = []PhaseSpec{{"canary", 1}, {"early", 10}, {"half", 50}, {"all", 100}}
	}
	prev := 0.0
	for i := range s.Phases {
		p := &s.Phases[i]
		if p.Percent <= prev || p.Percent > 100 {
			return fmt.Errorf("phase %d: percent %.4g must grow and stay within (0, 100]", i+1, p.Percent)
		}
		prev = p.Percent
		if p.Name == "" {
			p.Name = fmt.Sprintf("phase %d", i+1)
		}
	}
	if s.Phases[len(s.Phases)-1].Percent != 100 {
		s.Phases = append(s.Phases, PhaseSpec{"all", 100})
	}
	switch s.Domain {
	case "", "rack", "zone":
	default:
		return fmt.Errorf("domain %q: want rack or zone", s.Domain)
	}
	if s.MaxConcurrent == 0 {
		s.MaxConcurrent = 10
	}
	if s.ConcurrentPercent == 0 {
		s.ConcurrentPercent = 5
	}
	if s.MaxConcurrent < 0 || s.ConcurrentPercent < 0 || s.ConcurrentPercent > 100 {
		return errors.New("max_concurrent and concurrent_percent must be positive")
	}
	if s.HaltFailures == 0 {
		s.HaltFailures = 5
	}
	if s.HaltSuccess == 0 {
		s.HaltSuccess = 0.70
	}
	if s.HaltSuccess < 0 || s.HaltSuccess > 1 {
		return errors.New("halt_success is a fraction between 0 and 1")
	}
	for i, w := range s.Windows {
		if _, err := w.parse(); err != nil {
			return fmt.Errorf("window %d: %w", i+1, err)
		}
	}
	for _, g := range s.Selector.Hosts {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("selector host glob %q: %w", g, err)
		}
	}
	switch s.Install.Method {
	case "", "redfish":
		s.Install.Method = "redfish"
		if s.Install.Target == "" {
			return errors.New("a redfish install needs install.target (the FirmwareInventory member, e.g. BMC)")
		}
	case "command":
		if len(s.Install.Command) == 0 || len(s.Install.VersionCommand) == 0 {
			return errors.New("a command install needs install.command and install.version_command")
		}
	default:
		return fmt.Errorf("install.method %q: want redfish or command", s.Install.Method)
	}
	return nil
}

type window struct {
	days       map[time.Weekday]bool
	start, end int // minutes of the day
	loc        *time.Location
}

func (w Window) parse() (window, error) {
	out := window{days: map[time.Weekday]bool{}, loc: time.UTC}
	names := map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
	for _, d := range w.Days {
		wd, ok := names[strings.ToLower(d)[:min(3, len(d))]]
		if !ok {
			return out, fmt.Errorf("day %q: want mon..sun", d)
		}
		out.days[wd] = true
	}
	hm := func(s string) (int, error) {
		t, err := time.Parse("15:04", s)
		if err != nil {
			return 0, fmt.Errorf("time %q: want HH:MM", s)
		}
		return t.Hour()*60 + t.Minute(), nil
	}
	var err error
	if out.start, err = hm(w.Start); err != nil {
		return out, err
	}
	if out.end, err = hm(w.End); err != nil {
		return out, err
	}
	if w.TZ != "" {
		if out.loc, err = time.LoadLocation(w.TZ); err != nil {
			return out, fmt.Errorf("time zone %q: %w", w.TZ, err)
		}
	}
	return out, nil
}

// InWindow reports whether t falls in one of the windows (always, when
// there are none). A window running past midnight belongs to the day it
// starts on.
func InWindow(ws []Window, t time.Time) bool {
	if len(ws) == 0 {
		return true
	}
	for _, w := range ws {
		pw, err := w.parse()
		if err != nil {
			continue
		}
		lt := t.In(pw.loc)
		m := lt.Hour()*60 + lt.Minute()
		day := lt.Weekday()
		in := false
		if pw.start <= pw.end {
			in = m >= pw.start && m < pw.end
		} else if m >= pw.start {
			in = true
		} else if m < pw.end {
			in, day = true, (day+6)%7 // started yesterday
		}
		if in && (len(pw.days) == 0 || pw.days[day]) {
			return true
		}
	}
	return false
}

// Candidate is a host that runs the component a rollout updates.
type Candidate struct {
	HostID  int64  `json:"host_id"`
	Host    string `json:"host"`
	Model   string `json:"model"`
	Rack    string `json:"rack"`
	Zone    string `json:"zone"`
	BMC     string `json:"bmc,omitempty"`
	Version string `json:"version"`
	State   State  `json:"state"`
}

// Plan is a rollout's hosts divided into phases.
type Plan struct {
	Spec RolloutSpec `json:"spec"`
	// Phases hold the hosts of each phase, in install order.
	Phases [][]Candidate `json:"phases"`
	// Skipped are selected hosts already at (or past) the version.
	Skipped int `json:"skipped"`
	Total   int `json:"total"`
	// Ineligible are selected hosts whose current version does not meet
	// the release's <firmware> requirement: they are left out.
	Ineligible []Ineligible `json:"ineligible,omitempty"`
	// Unchecked lists requirements inventory cannot evaluate (client
	// features, hardware GUIDs, other components): the install decides.
	Unchecked []string `json:"unchecked,omitempty"`
}

// Ineligible is a host a requirement keeps out of a rollout.
type Ineligible struct {
	Host    string `json:"host"`
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

// Concurrency is the formula: min(cap, ceil(percent x hosts) -
// unhealthy), and 0 when the unavailability budget is spent.
func Concurrency(cap int, percent float64, hosts, unhealthy int) int {
	n := int(math.Ceil(percent/100*float64(hosts))) - unhealthy
	if cap > 0 && n > cap {
		n = cap
	}
	return max(n, 0)
}

func (s *Selector) match(c Candidate) bool {
	in := func(list []string, v string) bool {
		if len(list) == 0 {
			return true
		}
		for _, x := range list {
			if x == v {
				return true
			}
		}
		return false
	}
	if !in(s.Models, c.Model) || !in(s.Racks, c.Rack) || !in(s.Zones, c.Zone) {
		return false
	}
	if len(s.Hosts) == 0 {
		return true
	}
	for _, g := range s.Hosts {
		if ok, _ := path.Match(g, c.Host); ok {
			return true
		}
	}
	return false
}

// MakePlan selects hosts and divides them into phases. Hosts already on the
// version (or ahead of it) are skipped. The order is deterministic: a hash of
// the host name spreads each phase across the fleet instead of taking the
// first names alphabetically; with a Domain, whole domains go to a phase (the
// canary takes hosts of one domain only).
func MakePlan(spec RolloutSpec, cands []Candidate, f Format) (*Plan, error) {
	if err := spec.Normalize(); err != nil {
		return nil, err
	}
	target, err := Parse(spec.Version, f)
	if err != nil {
		return nil, fmt.Errorf("target version: %w", err)
	}
	p := &Plan{Spec: spec}
	type item struct {
		c    Candidate
		h    uint64
		dom  string
		domH uint64
	}
	items := make([]item, 0, len(cands))
	domHash := map[string]uint64{}
	// The requirement on the device's own current firmware is checked here;
	// the others need facts inventory does not have.
	var own []Requirement
	for _, q := range spec.Requires {
		if q.Kind == "firmware" && q.Value == "" && q.Depth == 0 {
			own = append(own, q)
		} else {
			p.Unchecked = append(p.Unchecked, strings.TrimSpace(fmt.Sprintf("%s %s %s %s", q.Kind, q.Value, q.Compare, q.Version)))
		}
	}
	meets := map[string]string{} // version -> "" or the reason it is ineligible
	// A fleet runs few distinct versions: decide each once.
	atTarget := map[string]bool{}
	for _, c := range cands {
		if !spec.Selector.match(c) {
			continue
		}
		skip, ok := atTarget[c.Version]
		if !ok {
			if v, err := Parse(c.Version, f); err == nil {
				cmp, err := Compare(v, target)
				skip = err == nil && cmp >= 0
			}
			skip = skip || c.Version == spec.Version
			atTarget[c.Version] = skip
		}
		if skip {
			p.Skipped++
			continue
		}
		if len(own) > 0 {
			why, ok := meets[c.Version]
			if !ok {
				for _, q := range own {
					m, err := q.Match(c.Version, f)
					if err != nil {
						why = fmt.Sprintf("requires firmware %s %s: %v", q.Compare, q.Version, err)
						break
					}
					if !m {
						why = fmt.Sprintf("requires firmware %s %s", q.Compare, q.Version)
						break
					}
				}
				meets[c.Version] = why
			}
			if why != "" {
				p.Ineligible = append(p.Ineligible, Ineligible{Host: c.Host, Version: c.Version, Reason: why})
				continue
			}
		}
		it := item{c: c, h: hash64(c.Host)}
		switch spec.Domain {
		case "rack":
			it.dom = c.Rack
		case "zone":
			it.dom = c.Zone
		}
		if spec.Domain != "" {
			dh, ok := domHash[it.dom]
			if !ok {
				dh = hash64(it.dom)
				domHash[it.dom] = dh
			}
			it.domH = dh
		}
		items = append(items, it)
	}
	sort.Slice(items, func(i, j int) bool {
		a, b := &items[i], &items[j]
		if a.domH != b.domH {
			return a.domH < b.domH
		}
		if a.dom != b.dom {
			return a.dom < b.dom
		}
		if a.h != b.h {
			return a.h < b.h
		}
		return a.c.Host < b.c.Host
	})
	n := len(items)
	p.Total = n
	p.Phases = make([][]Candidate, len(spec.Phases))
	next := 0
	for i, ph := range spec.Phases {
		end := int(math.Ceil(ph.Percent / 100 * float64(n)))
		if end <= next && next < n {
			end = next + 1 // every phase gets at least one host while hosts remain
		}
		if i == len(spec.Phases)-1 {
			end = n
		}
		if spec.Domain != "" && i > 0 && end < n {
			// Extend to the end of the domain the cut falls in.
			for end < n && end > 0 && items[end].dom == items[end-1].dom {
				end++
			}
		}
		if i == 0 && spec.Domain != "" {
			// The canary stays inside the first domain.
			for k := next; k < end; k++ {
				if items[k].dom != items[0].dom {
					end = k
					break
				}
			}
		}
		end = min(end, n)
		ph := make([]Candidate, 0, end-next)
		for _, it := range items[next:end] {
			ph = append(ph, it.c)
		}
		p.Phases[i] = ph
		next = end
	}
	return p, nil
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// Run runs a hook for a host. Commands get SREKIT_HOST, SREKIT_VERSION and
// SREKIT_EVENT in their environment; webhooks get a JSON POST.
func (h Hook) Run(ctx context.Context, event, host, version string) error {
	if h.IsZero() {
		return nil
	}
	timeout := h.Timeout.D()
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if len(h.Command) > 0 {
		args := expand(h.Command, host, "", version)
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "SREKIT_HOST="+host, "SREKIT_VERSION="+version, "SREKIT_EVENT="+event)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s hook %s: %v: %s", event, args[0], err, lastLine(out))
		}
		return nil
	}
	body, _ := json.Marshal(map[string]string{"event": event, "host": host, "version": version})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s hook: %w", event, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s hook: %w", event, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s hook %s: %s", event, h.URL, resp.Status)
	}
	return nil
}

func expand(args []string, host, payload, version string) []string {
	out := make([]string, len(args))
	r := strings.NewReplacer("{host}", host, "{payload}", payload, "{version}", version)
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
