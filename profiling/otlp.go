package profiling

import (
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/srekit/srekit/flame"
)

// Formats of OTLP profiles (the signal is alpha upstream: srekit accepts it
// only when the server enables it).
const (
	FormatOTLP     = "otlp"      // ExportProfilesServiceRequest, protobuf
	FormatOTLPJSON = "otlp-json" // the same, OTLP/JSON
)

// decodeOTLP converts OTLP profiles (development signal, as
// go.opentelemetry.io/collector/pdata/pprofile reads it) into one Decoded per
// profile. Each profile has one sample type; stacks come from the shared
// dictionary (stack -> locations -> lines -> functions -> strings), leaf
// first as in pprof. A sample's value is the sum of its values, or the
// number of its timestamps when it has none. Resource attributes
// service.name and host.name become the service and host labels.
func decodeOTLP(raw []byte, jsonFormat bool) ([]Decoded, error) {
	var ps pprofile.Profiles
	var err error
	if jsonFormat {
		ps, err = (&pprofile.JSONUnmarshaler{}).UnmarshalProfiles(raw)
	} else {
		ps, err = (&pprofile.ProtoUnmarshaler{}).UnmarshalProfiles(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp profiles: %w", err)
	}
	dict := ps.Dictionary()
	strs := dict.StringTable()
	str := func(i int32) string {
		if i < 0 || int(i) >= strs.Len() {
			return ""
		}
		return strs.At(int(i))
	}
	stacks, locs, funcs := dict.StackTable(), dict.LocationTable(), dict.FunctionTable()
	var out []Decoded
	rps := ps.ResourceProfiles()
	for i := 0; i < rps.Len(); i++ {
		rp := rps.At(i)
		labels := Labels{}
		if v, ok := rp.Resource().Attributes().Get("service.name"); ok && v.Str() != "" {
			labels["service"] = v.Str()
		}
		if v, ok := rp.Resource().Attributes().Get("host.name"); ok && v.Str() != "" {
			labels["host"] = v.Str()
		}
		sps := rp.ScopeProfiles()
		for j := 0; j < sps.Len(); j++ {
			profs := sps.At(j).Profiles()
			for k := 0; k < profs.Len(); k++ {
				p := profs.At(k)
				typ, unit := str(p.SampleType().TypeStrindex()), str(p.SampleType().UnitStrindex())
				kind := typ
				if typ == "cpu" || (typ == "samples" && str(p.PeriodType().TypeStrindex()) == "cpu") {
					kind = "cpu"
				}
				if kind == "" {
					kind = "cpu"
				}
				if unit == "" || unit == "count" {
					unit = "samples"
				}
				fp := &flame.Profile{Unit: unit}
				// Samples with a timestamp per value (or per count) make a
				// timeline for the sub-second view, when every sample has them.
				var entries []timedEntry
				timed := true
				samples := p.Samples()
				for s := 0; s < samples.Len(); s++ {
					smp := samples.At(s)
					var v int64
					vals := smp.Values()
					for n := 0; n < vals.Len(); n++ {
						v += vals.At(n)
					}
					if vals.Len() == 0 {
						v = int64(smp.TimestampsUnixNano().Len())
					}
					if v <= 0 {
						continue
					}
					si := smp.StackIndex()
					if si < 0 || int(si) >= stacks.Len() {
						return nil, fmt.Errorf("otlp profiles: sample %d: stack index %d out of range", s, si)
					}
					li := stacks.At(int(si)).LocationIndices()
					var stack []string
					for n := li.Len() - 1; n >= 0; n-- { // root first
						x := li.At(n)
						if x < 0 || int(x) >= locs.Len() {
							return nil, fmt.Errorf("otlp profiles: location index %d out of range", x)
						}
						loc := locs.At(int(x))
						lines := loc.Lines()
						if lines.Len() == 0 {
							stack = append(stack, fmt.Sprintf("0x%x", loc.Address()))
							continue
						}
						for m := lines.Len() - 1; m >= 0; m-- {
							fi := lines.At(m).FunctionIndex()
							name := ""
							if fi >= 0 && int(fi) < funcs.Len() {
								name = str(funcs.At(int(fi)).NameStrindex())
							}
							if name == "" {
								name = fmt.Sprintf("0x%x", loc.Address())
							}
							stack = append(stack, name)
						}
					}
					if len(stack) == 0 {
						stack = []string{"[unknown]"}
					}
					fp.Samples = append(fp.Samples, flame.Sample{Stack: stack, Value: v})
					ts := smp.TimestampsUnixNano()
					switch {
					case !timed || ts.Len() == 0 || len(entries)+ts.Len() > MaxTimelineSamples:
						timed = false
					case vals.Len() == 0 || vals.Len() == ts.Len():
						key := strings.Join(stack, ";")
						for n := 0; n < ts.Len(); n++ {
							ev := int64(1)
							if vals.Len() > 0 {
								ev = vals.At(n)
							}
							if ev != 0 {
								entries = append(entries, timedEntry{int64(ts.At(n) / 1000), key, ev})
							}
						}
					default:
						timed = false // several values but not one per timestamp
					}
				}
				fp = fp.Compact()
				d := Decoded{Kind: kind, Unit: unit, Profile: fp, Labels: labels,
					TimeNanos: int64(p.Time()), DurationNanos: int64(p.DurationNano())}
				if timed && len(entries) > 0 {
					var terr error
					if d.Timeline, terr = buildTimeline(entries, fp); terr != nil {
						d.NoTimeline = terr.Error()
					}
				}
				out = append(out, d)
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("otlp profiles: no profile in the request")
	}
	return out, nil
}
