package firmware

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Host is one machine of the fleet as inventory reports it.
type Host struct {
	Name  string `json:"name"`
	Model string `json:"model,omitempty"` // hardware model: targets are approved per model
	Rack  string `json:"rack,omitempty"`
	Zone  string `json:"zone,omitempty"`
	BMC   string `json:"bmc,omitempty"` // Redfish base URL of its BMC
	// Components is what was read, from one source (sysfs or redfish).
	Components []Observed `json:"components"`
}

// Observed is one firmware version read on a host.
type Observed struct {
	Slot    string    `json:"slot"` // where on the host: BIOS, microcode, nvme0, eth0, BMC
	Kind    string    `json:"kind"` // bios, microcode, nvme, nic, bmc, ...
	Vendor  string    `json:"vendor"`
	Model   string    `json:"model"`
	Version string    `json:"version"`
	Format  Format    `json:"format,omitempty"`
	Source  string    `json:"source"` // sysfs, redfish, agent
	At      time.Time `json:"at"`
	// Detail carries extra facts (BIOS date, NIC driver) for people, not for logic.
	Detail string `json:"detail,omitempty"`
}

// ComponentKey names a component in the versions database.
type ComponentKey struct {
	Vendor string `json:"vendor"`
	Model  string `json:"model"`
	Kind   string `json:"kind"`
}

func (k ComponentKey) String() string { return k.Vendor + " " + k.Model + " (" + k.Kind + ")" }

// ParseComponentKey reads "vendor/model/kind".
func ParseComponentKey(s string) (ComponentKey, error) {
	p := strings.Split(s, "/")
	if len(p) != 3 || p[0] == "" || p[1] == "" || p[2] == "" {
		return ComponentKey{}, fmt.Errorf("component %q: want VENDOR/MODEL/KIND", s)
	}
	return ComponentKey{Vendor: p[0], Model: p[1], Kind: p[2]}, nil
}

// Key is the component an observation is of.
func (o Observed) Key() ComponentKey { return ComponentKey{o.Vendor, o.Model, o.Kind} }

// State says where a host's component stands against its approved target.
type State string

const (
	StateOnTarget State = "on-target"
	StateBehind   State = "behind"
	StateAhead    State = "ahead"
	StateDiffers  State = "differs"   // versions do not order (plain strings, mixed formats) and are not equal
	StateBad      State = "bad"       // running a release marked known-bad
	StateNoTarget State = "no-target" // no target approved for this model and component
)

// Status is one host component with its target and state.
type Status struct {
	Host     string       `json:"host"`
	HostID   int64        `json:"-"`
	Model    string       `json:"model"`
	Rack     string       `json:"rack"`
	Zone     string       `json:"zone"`
	Slot     string       `json:"slot"`
	Key      ComponentKey `json:"component"`
	CompID   int64        `json:"-"`
	Version  string       `json:"version"`
	Source   string       `json:"source"`
	Observed time.Time    `json:"observed"`
	Target   string       `json:"target,omitempty"`
	State    State        `json:"state"`
	Bad      string       `json:"bad_reason,omitempty"`
}

// Evaluate sets a status's state from its version, the component's format,
// its target and the known-bad releases of the component.
func evaluate(st *Status, f Format, target string, bad map[string]string) {
	v, err := Parse(st.Version, f)
	if err != nil {
		v, _ = ParseGuess(st.Version)
	}
	for bv, reason := range bad {
		b, err := Parse(bv, f)
		if err != nil {
			continue
		}
		if c, err := Compare(v, b); (err == nil && c == 0) || bv == st.Version {
			st.State, st.Bad = StateBad, reason
			st.Target = target
			return
		}
	}
	st.Target = target
	if target == "" {
		st.State = StateNoTarget
		return
	}
	t, err := Parse(target, f)
	if err != nil {
		t, _ = ParseGuess(target)
	}
	c, err := Compare(v, t)
	switch {
	case err != nil && st.Version == target:
		st.State = StateOnTarget
	case err != nil:
		st.State = StateDiffers
	case c == 0:
		st.State = StateOnTarget
	case c < 0:
		st.State = StateBehind
	default:
		st.State = StateAhead
	}
}

// Spread is how many hosts of a model run each version of a component.
type Spread struct {
	Model    string         `json:"model"`
	Key      ComponentKey   `json:"component"`
	Target   string         `json:"target,omitempty"`
	Versions []VersionCount `json:"versions"`
	Hosts    int            `json:"hosts"`
}

// VersionCount is one cell of the fleet matrix.
type VersionCount struct {
	Version string `json:"version"`
	Count   int    `json:"count"`
	State   State  `json:"state"`
}

// SpreadOf groups statuses per (model, component) and version, versions in
// ascending order where they order.
func SpreadOf(sts []Status, formats map[int64]Format) []Spread {
	type key struct {
		model string
		comp  int64
	}
	idx := map[key]*Spread{}
	counts := map[key]map[string]*VersionCount{}
	for _, s := range sts {
		k := key{s.Model, s.CompID}
		sp := idx[k]
		if sp == nil {
			sp = &Spread{Model: s.Model, Key: s.Key, Target: s.Target}
			idx[k] = sp
			counts[k] = map[string]*VersionCount{}
		}
		sp.Hosts++
		vc := counts[k][s.Version]
		if vc == nil {
			vc = &VersionCount{Version: s.Version, State: s.State}
			counts[k][s.Version] = vc
		}
		vc.Count++
	}
	out := make([]Spread, 0, len(idx))
	for k, sp := range idx {
		f := formats[k.comp]
		for _, vc := range counts[k] {
			sp.Versions = append(sp.Versions, *vc)
		}
		sort.Slice(sp.Versions, func(i, j int) bool {
			a, errA := Parse(sp.Versions[i].Version, f)
			b, errB := Parse(sp.Versions[j].Version, f)
			if errA == nil && errB == nil {
				if c, err := Compare(a, b); err == nil && c != 0 {
					return c < 0
				}
			}
			return sp.Versions[i].Version < sp.Versions[j].Version
		})
		out = append(out, *sp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Model != out[j].Model {
			return out[i].Model < out[j].Model
		}
		return out[i].Key.String() < out[j].Key.String()
	})
	return out
}
