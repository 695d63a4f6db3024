package sampling

import (
	"math"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

func TestProbabilityThreshold(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		want string
	}{
		{1, "0"}, {0.5, "8"}, {0.25, "c"}, {0.1, "e666"}, {0.01, "fd70a"}, {1.0 / 3, "aaaa"},
	} {
		th := ProbabilityThreshold(tc.p)
		if got := th.String(); got != tc.want {
			t.Errorf("p=%g: th %s, want %s", tc.p, got, tc.want)
		}
		back, err := ParseThreshold(th.String())
		if err != nil || back != th {
			t.Errorf("p=%g: parse back %v %v", tc.p, back, err)
		}
		if got := th.Probability(); got < tc.p || got > tc.p*1.001 {
			t.Errorf("p=%g: rounded probability %g not in [p, p*1.001]", tc.p, got)
		}
		if ac := th.AdjustedCount(); math.Abs(ac*th.Probability()-1) > 1e-9 {
			t.Errorf("p=%g: adjusted count %g", tc.p, ac)
		}
	}
	if ProbabilityThreshold(0) != MaxThreshold || ProbabilityThreshold(math.NaN()) != MaxThreshold {
		t.Error("p=0 or NaN should never keep")
	}
	if MaxThreshold.Keeps(maxRandomness) {
		t.Error("MaxThreshold keeps")
	}
	if !KeepAll.Keeps(0) {
		t.Error("KeepAll drops rv=0")
	}
}

func TestParseThresholdRejects(t *testing.T) {
	for _, s := range []string{"", "123456789abcdef", "g", "-1", "+1", "0x1"} {
		if _, err := ParseThreshold(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestTraceState(t *testing.T) {
	o := ParseTraceState("vendor=x,ot=th:c;rv:0123456789abcd;zz:1")
	if !o.HasThreshold || o.Threshold.String() != "c" || !o.HasRandom || o.Randomness != 0x0123456789abcd {
		t.Fatalf("parsed %+v", o)
	}
	got := WithThreshold("vendor=x,ot=th:c;rv:0123456789abcd;zz:1", ProbabilityThreshold(0.125), 0, false)
	if got != "ot=th:e;rv:0123456789abcd;zz:1,vendor=x" {
		t.Fatalf("rewritten %q", got)
	}
	if got := WithThreshold("", KeepAll, 0xabc, true); got != "ot=th:0;rv:00000000000abc" {
		t.Fatalf("fresh %q", got)
	}
	// Malformed values are ignored, not errors.
	if o := ParseTraceState("ot=th:xyz;rv:12"); o.HasThreshold || o.HasRandom {
		t.Fatalf("malformed accepted: %+v", o)
	}
}

func TestRandomness(t *testing.T) {
	id := tid(7, 0x00112233445566)
	if rv, derived := Randomness(id, flagRandom, OTTraceState{}); rv != 0x00112233445566 || derived {
		t.Fatalf("random flag: rv %x derived %v", rv, derived)
	}
	if rv, _ := Randomness(id, flagRandom, OTTraceState{HasRandom: true, Randomness: 5}); rv != 5 {
		t.Fatalf("explicit rv ignored: %x", rv)
	}
	rv1, derived := Randomness(id, 0, OTTraceState{})
	rv2, _ := Randomness(id, 0, OTTraceState{})
	if !derived || rv1 != rv2 || rv1 > maxRandomness {
		t.Fatalf("hashed rv %x %x derived %v", rv1, rv2, derived)
	}
	if fingerprint(pcommon.TraceID{}) == 0 {
		t.Fatal("fingerprint 0")
	}
}

func TestFPSetRemembersRecent(t *testing.T) {
	s := newFPSet(64, true)
	for i := uint64(1); i <= 1000; i++ {
		s.Put(i*0x9E3779B97F4A7C15, i)
	}
	// The last 32 (capacity/2) must be remembered with their values.
	for i := uint64(1000 - 31); i <= 1000; i++ {
		if v, ok := s.Get(i * 0x9E3779B97F4A7C15); !ok || v != i {
			t.Fatalf("recent %d: %d %v", i, v, ok)
		}
	}
	if _, ok := s.Get(1 * 0x9E3779B97F4A7C15); ok {
		t.Fatal("oldest still remembered: the set is not bounded")
	}
	if s.Len() > 128 {
		t.Fatalf("holds %d", s.Len())
	}
}
