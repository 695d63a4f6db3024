package profiling

import (
	"reflect"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile"
)

// otlpSample builds an OTLP profiles request: service "checkout" on host
// "web-1", one CPU profile with main -> work (inlined helper) 100 ns and
// main 30 ns.
func otlpSample(t testing.TB) pprofile.Profiles {
	ps := pprofile.NewProfiles()
	d := ps.Dictionary()
	d.StringTable().Append("", "cpu", "nanoseconds", "main", "work", "helper")
	d.FunctionTable().AppendEmpty() // index 0 is the empty function
	for _, name := range []int32{3, 4, 5} {
		d.FunctionTable().AppendEmpty().SetNameStrindex(name)
	}
	d.LocationTable().AppendEmpty()
	main := d.LocationTable().AppendEmpty()
	main.Lines().AppendEmpty().SetFunctionIndex(1)
	work := d.LocationTable().AppendEmpty() // helper inlined into work: innermost line first
	work.Lines().AppendEmpty().SetFunctionIndex(3)
	work.Lines().AppendEmpty().SetFunctionIndex(2)
	d.StackTable().AppendEmpty()
	d.StackTable().AppendEmpty().LocationIndices().Append(2, 1) // leaf first
	d.StackTable().AppendEmpty().LocationIndices().Append(1)
	rp := ps.ResourceProfiles().AppendEmpty()
	rp.Resource().Attributes().PutStr("service.name", "checkout")
	rp.Resource().Attributes().PutStr("host.name", "web-1")
	p := rp.ScopeProfiles().AppendEmpty().Profiles().AppendEmpty()
	p.SampleType().SetTypeStrindex(1)
	p.SampleType().SetUnitStrindex(2)
	s := p.Samples().AppendEmpty()
	s.SetStackIndex(1)
	s.Values().Append(60, 40)
	s = p.Samples().AppendEmpty()
	s.SetStackIndex(2)
	s.Values().Append(30)
	return ps
}

func TestDecodeOTLP(t *testing.T) {
	ps := otlpSample(t)
	pb, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(ps)
	if err != nil {
		t.Fatal(err)
	}
	js, err := (&pprofile.JSONMarshaler{}).MarshalProfiles(ps)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		format string
		data   []byte
	}{{FormatOTLP, pb}, {FormatOTLPJSON, js}} {
		ds, err := Decode(tc.data, tc.format, "", "", Limits{})
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		if len(ds) != 1 || ds[0].Kind != "cpu" || ds[0].Unit != "nanoseconds" || ds[0].Labels["service"] != "checkout" || ds[0].Labels["host"] != "web-1" {
			t.Fatalf("%s: %+v", tc.format, ds)
		}
		if got := foldedText(t, ds[0].Profile); got != "main 30\nmain;work;helper 100\n" {
			t.Fatalf("%s stacks:\n%s", tc.format, got)
		}
	}
	if _, err := Decode([]byte("not protobuf at all \xff\xff"), FormatOTLP, "", "", Limits{}); err == nil || !strings.Contains(err.Error(), "otlp") {
		t.Fatalf("garbage: %v", err)
	}
	if _, err := Decode(pb, FormatOTLP, "alloc_space", "", Limits{}); err == nil {
		t.Fatal("asked for alloc_space in a cpu-only request and got something")
	}
}

func FuzzDecodeOTLP(f *testing.F) {
	pb, _ := (&pprofile.ProtoMarshaler{}).MarshalProfiles(otlpSample(f))
	f.Add(pb)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	timed := otlpSample(f)
	timed.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).Samples().At(0).TimestampsUnixNano().Append(5_000_000, 9_000_000)
	timed.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).Samples().At(1).TimestampsUnixNano().Append(7_000_000)
	tb, _ := (&pprofile.ProtoMarshaler{}).MarshalProfiles(timed)
	f.Add(tb)
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, err := Decode(b, FormatOTLP, "", "", Limits{MaxDecompressed: 1 << 20})
		if err != nil {
			return
		}
		for _, d := range ds {
			if d.Profile == nil || d.Kind == "" {
				t.Fatalf("decoded %+v", d)
			}
			if tl := d.Timeline; tl != nil {
				m := stackMap{}
				m.addProfile(d.Profile)
				sums := make([]int64, tl.Stacks)
				tl.Range(0, tl.Span()+1, sums)
				var sum int64
				for _, v := range sums {
					sum += v
				}
				if sum != m.total() {
					t.Fatalf("timeline total %d, profile %d", sum, m.total())
				}
				b, err := tl.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := DecodeTimeline(b); err != nil {
					t.Fatalf("timeline does not read back: %v", err)
				}
			}
		}
	})
}

// TestDecodeOTLPTimeline: samples with a timestamp per value give a
// timeline (the OpenTelemetry eBPF profiler sends them so); one sample
// without timestamps means none.
func TestDecodeOTLPTimeline(t *testing.T) {
	ps := otlpSample(t)
	p := ps.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
	const t0 = 1_764_000_000_000_000_000
	p.Samples().At(0).TimestampsUnixNano().Append(t0+100_000_000, t0+1_500_000_000)
	p.Samples().At(1).TimestampsUnixNano().Append(t0 + 500_000_000)
	pb, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(ps)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Decode(pb, FormatOTLP, "", "", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	tl := ds[0].Timeline
	if tl == nil {
		t.Fatalf("no timeline: %s", ds[0].NoTimeline)
	}
	// Stacks in stored order: "main" (0), "main;work;helper" (1).
	want := []TimedSample{{0, 1, 60}, {400_000, 0, 30}, {1_400_000, 1, 40}}
	if !reflect.DeepEqual(tl.Samples, want) || tl.Origin != (t0+100_000_000)/1000 || tl.Stacks != 2 {
		t.Fatalf("timeline %+v", tl)
	}
	// Without timestamps on one sample: no timeline, the profile as before.
	ps = otlpSample(t)
	ps.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0).Samples().At(0).TimestampsUnixNano().Append(t0)
	pb, _ = (&pprofile.ProtoMarshaler{}).MarshalProfiles(ps)
	if ds, err = Decode(pb, FormatOTLP, "", "", Limits{}); err != nil || ds[0].Timeline != nil || foldedText(t, ds[0].Profile) != "main 30\nmain;work;helper 100\n" {
		t.Fatalf("partly timed: %v, timeline %v", err, ds[0].Timeline != nil)
	}
}
