package sampling

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Threshold is an OpenTelemetry consistent-sampling rejection threshold: a
// 56-bit number T such that a trace whose randomness R (also 56 bits) is at
// least T is kept. T = 0 keeps everything; T = MaxThreshold keeps nothing.
// The keep probability is (2^56 - T) / 2^56 and the adjusted count of a kept
// item is its inverse.
type Threshold uint64

const (
	// KeepAll is the threshold of probability 1.
	KeepAll Threshold = 0
	// MaxThreshold (2^56) rejects everything: it is what a policy that does
	// not match returns.
	MaxThreshold  Threshold = 1 << 56
	maxRandomness           = 1<<56 - 1
	// thresholdPrecision is how many significant hex digits of the keep
	// fraction are kept when a probability becomes a threshold, as the
	// specification recommends (short tracestate, error below 0.01%).
	thresholdPrecision = 4
)

// ProbabilityThreshold converts a keep probability into a threshold, rounding
// the keep fraction up to thresholdPrecision hex digits (so the rounding
// keeps slightly more, never less). p <= 0 gives MaxThreshold; p >= 1 KeepAll.
func ProbabilityThreshold(p float64) Threshold {
	if !(p > 0) { // also NaN
		return MaxThreshold
	}
	if p >= 1 {
		return KeepAll
	}
	keep := uint64(math.Ceil(p * (1 << 56)))
	if keep == 0 {
		keep = 1
	}
	// Round keep up to thresholdPrecision significant hex digits.
	digits := (64 - leadingZeros(keep) + 3) / 4
	if drop := digits - thresholdPrecision; drop > 0 {
		unit := uint64(1) << (4 * drop)
		keep = (keep + unit - 1) / unit * unit
	}
	if keep >= 1<<56 {
		return KeepAll
	}
	return Threshold(1<<56 - keep)
}

func leadingZeros(x uint64) int {
	n := 0
	for i := 63; i >= 0 && x&(1<<uint(i)) == 0; i-- {
		n++
	}
	return n
}

// Probability is the keep probability of t.
func (t Threshold) Probability() float64 {
	if t >= MaxThreshold {
		return 0
	}
	return float64(MaxThreshold-t) / float64(MaxThreshold)
}

// AdjustedCount is how many items one kept item stands for: 1/probability
// (0 for MaxThreshold, where nothing is kept).
func (t Threshold) AdjustedCount() float64 {
	if t >= MaxThreshold {
		return 0
	}
	return float64(MaxThreshold) / float64(MaxThreshold-t)
}

// Keeps reports whether randomness rv passes the threshold.
func (t Threshold) Keeps(rv uint64) bool { return t < MaxThreshold && rv >= uint64(t) }

// String is the tracestate encoding: 14 hex digits with trailing zeros
// removed ("0" for KeepAll).
func (t Threshold) String() string {
	if t == 0 {
		return "0"
	}
	s := fmt.Sprintf("%014x", uint64(t))
	return strings.TrimRight(s, "0")
}

// ParseThreshold decodes a th value: 1 to 14 hex digits, the missing low
// digits being zero.
func ParseThreshold(s string) (Threshold, error) {
	if len(s) == 0 || len(s) > 14 {
		return 0, fmt.Errorf("threshold %q: want 1 to 14 hex digits", s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || strings.ContainsAny(s, "+-xX_") {
		return 0, fmt.Errorf("threshold %q: not hexadecimal", s)
	}
	return Threshold(v << (4 * (14 - len(s)))), nil
}

// parseRandomness decodes an rv value: exactly 14 hex digits.
func parseRandomness(s string) (uint64, bool) {
	if len(s) != 14 {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || strings.ContainsAny(s, "+-xX_") {
		return 0, false
	}
	return v, true
}

// W3C trace flags: the low byte of an OTLP span's flags.
const (
	flagSampled = 0x01
	flagRandom  = 0x02
)

// OTTraceState is the parsed "ot" member of a W3C tracestate: the
// consistent-sampling threshold and randomness, plus any other sub-keys,
// preserved in order.
type OTTraceState struct {
	Threshold    Threshold
	HasThreshold bool
	Randomness   uint64
	HasRandom    bool
	rest         []string // other "k:v" sub-keys, kept verbatim
}

// ParseTraceState finds and parses the "ot" member of a tracestate string.
// Malformed th or rv values are ignored (the specification says to proceed as
// if they were absent); the other members of the tracestate are untouched.
func ParseTraceState(ts string) OTTraceState {
	var o OTTraceState
	if !strings.Contains(ts, "ot=") {
		return o
	}
	for _, member := range strings.Split(ts, ",") {
		member = strings.TrimSpace(member)
		v, ok := strings.CutPrefix(member, "ot=")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(v, ";") {
			k, val, ok := strings.Cut(kv, ":")
			if !ok {
				continue
			}
			switch k {
			case "th":
				if t, err := ParseThreshold(val); err == nil {
					o.Threshold, o.HasThreshold = t, true
				}
			case "rv":
				if r, ok := parseRandomness(val); ok {
					o.Randomness, o.HasRandom = r, true
				}
			default:
				o.rest = append(o.rest, kv)
			}
		}
		break
	}
	return o
}

// WithThreshold returns tracestate ts with the ot member's th set to t (and
// rv set when rv >= 0 is given as explicit randomness to record). The ot
// member moves to the front, as W3C asks of a modified member.
func WithThreshold(ts string, t Threshold, rv uint64, writeRV bool) string {
	o := ParseTraceState(ts)
	parts := []string{"th:" + t.String()}
	if writeRV {
		parts = append(parts, fmt.Sprintf("rv:%014x", rv&maxRandomness))
	} else if o.HasRandom {
		parts = append(parts, fmt.Sprintf("rv:%014x", o.Randomness))
	}
	parts = append(parts, o.rest...)
	out := []string{"ot=" + strings.Join(parts, ";")}
	for _, member := range strings.Split(ts, ",") {
		member = strings.TrimSpace(member)
		if member == "" || strings.HasPrefix(member, "ot=") {
			continue
		}
		out = append(out, member)
	}
	return strings.Join(out, ",")
}

// Randomness returns a trace's 56 random bits and whether they had to be
// derived (so should be written into tracestate for downstream samplers to
// agree): the explicit rv from tracestate first; else the trace ID's low 56
// bits, which W3C Trace Context level 2 guarantees random when the random
// flag is set; else (flag clear: the ID may be partly a timestamp or a
// counter) a hash of the whole ID.
func Randomness(id pcommon.TraceID, flags uint32, ot OTTraceState) (rv uint64, derived bool) {
	if ot.HasRandom {
		return ot.Randomness, false
	}
	if flags&flagRandom != 0 {
		return binary.BigEndian.Uint64(id[8:]) & maxRandomness, false
	}
	return fingerprint(id) & maxRandomness, true
}

// fingerprint mixes a trace ID into 64 well-spread bits (never 0, which the
// caches use for empty slots).
func fingerprint(id pcommon.TraceID) uint64 {
	h := binary.BigEndian.Uint64(id[:8])*0x9E3779B97F4A7C15 ^ binary.BigEndian.Uint64(id[8:])
	h ^= h >> 30
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 27
	h *= 0x94D049BB133111EB
	h ^= h >> 31
	if h == 0 {
		h = 1
	}
	return h
}
