package profiling

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/pprof/profile"

	"github.com/srekit/srekit/flame"
)

// Limits bound what one upload may cost the server.
type Limits struct {
	// MaxDecompressed caps the size of a gzip body once inflated; a small
	// gzip bomb is refused instead of filling memory. 256 MiB when zero.
	MaxDecompressed int64
	// MaxStacks caps the distinct stacks of one profile. 1,000,000 when zero.
	MaxStacks int
}

func (l Limits) withDefaults() Limits {
	if l.MaxDecompressed <= 0 {
		l.MaxDecompressed = 256 << 20
	}
	if l.MaxStacks <= 0 {
		l.MaxStacks = 1_000_000
	}
	return l
}

// ErrTooLarge is returned when an upload goes over a Limits bound.
var ErrTooLarge = errors.New("upload too large")

// Decoded is one profile read from an upload: a pprof file with several
// sample types (heap: alloc_objects, alloc_space, inuse_objects, inuse_space)
// gives one per type.
type Decoded struct {
	Kind    string
	Unit    string
	Profile *flame.Profile
	// DurationNanos and TimeNanos come from pprof when it has them.
	DurationNanos int64
	TimeNanos     int64
	// Labels the upload itself carries (OTLP resource attributes).
	Labels Labels
	// Timeline is each sample's time (perf script input only); when the
	// input has samples but no timeline could be kept, NoTimeline says why.
	Timeline   *Timeline
	NoTimeline string
}

// Window is the time span a snapshot of d covers: from and until when
// given (non-zero), else the profile's own time and duration when it has
// them, else the instant fallback (the upload or file time).
func (d Decoded) Window(from, until, fallback time.Time) (start, end time.Time) {
	start, end = from, until
	if end.IsZero() {
		end = fallback
		if d.TimeNanos > 0 {
			end = time.Unix(0, d.TimeNanos+d.DurationNanos)
		}
	}
	if start.IsZero() {
		start = end
		if d.TimeNanos > 0 {
			start = time.Unix(0, d.TimeNanos)
		}
	}
	return start, end
}

// Formats srekit ingests.
const (
	FormatPprof  = "pprof"  // gzip'ed or plain protobuf, as /debug/pprof/* serves it
	FormatFolded = "folded" // "a;b;c 12" lines (Pyroscope's default format too)
	FormatLines  = "lines"  // Pyroscope's "lines": one stack per line, each one sample
	FormatPerf   = "perf"   // `perf script` output
)

// Decode reads an upload in the given format. kind names the profile when
// the format does not carry it (folded, lines, perf: "cpu" by default); for
// pprof it selects one sample type ("" keeps every type).
func Decode(data []byte, format, kind, unit string, lim Limits) ([]Decoded, error) {
	lim = lim.withDefaults()
	raw, err := inflate(data, lim.MaxDecompressed)
	if err != nil {
		return nil, err
	}
	var out []Decoded
	switch format {
	case FormatPprof, "":
		out, err = decodePprof(raw, kind)
	case FormatFolded, "collapsed":
		var p *flame.Profile
		p, err = flame.ParseFolded(bytes.NewReader(raw))
		if err == nil {
			if len(p.Samples) == 0 && p.Skipped.Count > 0 {
				err = fmt.Errorf("folded: no stacks: %w", p.Skipped.Err())
			}
			if p.Diff {
				err = errors.New("folded: two-column (differential) input cannot be stored as a snapshot")
			}
		}
		out = []Decoded{{Kind: orDefault(kind, "cpu"), Unit: orDefault(unit, "samples"), Profile: p}}
	case FormatLines:
		var p *flame.Profile
		p, err = parseLines(raw)
		out = []Decoded{{Kind: orDefault(kind, "cpu"), Unit: orDefault(unit, "samples"), Profile: p}}
	case FormatPerf, "perf_script":
		var p *flame.Profile
		p, err = collapsePerf(raw)
		d := Decoded{Kind: orDefault(kind, "cpu"), Unit: orDefault(unit, "samples"), Profile: p}
		if err == nil {
			var terr error
			if d.Timeline, terr = perfTimeline(raw, p); terr != nil {
				d.NoTimeline = terr.Error()
			}
		}
		out = []Decoded{d}
	case FormatOTLP, FormatOTLPJSON:
		out, err = decodeOTLP(raw, format == FormatOTLPJSON)
		if err == nil && kind != "" {
			var keep []Decoded
			for _, d := range out {
				if d.Kind == kind {
					keep = append(keep, d)
				}
			}
			out = keep
			if len(out) == 0 {
				err = fmt.Errorf("otlp profiles: no %s profile in the request", kind)
			}
		}
	default:
		return nil, fmt.Errorf("unknown format %q: want pprof, folded, lines or perf", format)
	}
	if err != nil {
		return nil, err
	}
	for _, d := range out {
		if len(d.Profile.Samples) > lim.MaxStacks {
			return nil, fmt.Errorf("%w: %d distinct stacks, the limit is %d", ErrTooLarge, len(d.Profile.Samples), lim.MaxStacks)
		}
	}
	return out, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// inflate gunzips data when it starts with the gzip magic, refusing to
// produce more than max bytes.
func inflate(data []byte, max int64) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		if int64(len(data)) > max {
			return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), max)
		}
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	defer zr.Close()
	out, err := io.ReadAll(io.LimitReader(zr, max+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	if int64(len(out)) > max {
		return nil, fmt.Errorf("%w: decompresses to more than %d bytes", ErrTooLarge, max)
	}
	return out, nil
}

// pprofKinds names the sample types of Go's profiles the way Pyroscope does,
// so that "cpu" means the same thing whichever agent sent it.
func pprofKind(p *profile.Profile, i int) string {
	st := p.SampleType[i]
	switch {
	case st.Type == "cpu" || (st.Type == "samples" && p.PeriodType != nil && p.PeriodType.Type == "cpu" && len(p.SampleType) == 1):
		return "cpu"
	case st.Type == "goroutine" || st.Type == "goroutines":
		return "goroutine"
	case st.Type == "contentions" || st.Type == "delay":
		prefix := "mutex"
		if p.PeriodType != nil && strings.Contains(p.PeriodType.Type, "block") || strings.Contains(p.DefaultSampleType, "block") {
			prefix = "block"
		}
		if st.Type == "contentions" {
			return prefix + "_count"
		}
		return prefix + "_duration"
	}
	return st.Type
}

func decodePprof(raw []byte, kind string) ([]Decoded, error) {
	p, err := profile.ParseData(raw)
	if err != nil {
		return nil, fmt.Errorf("pprof: %w", err)
	}
	if len(p.SampleType) == 0 {
		return nil, errors.New("pprof: profile has no sample types")
	}
	hasCPU := false
	for i := range p.SampleType {
		if pprofKind(p, i) == "cpu" {
			hasCPU = true
		}
	}
	var out []Decoded
	for i, st := range p.SampleType {
		k := pprofKind(p, i)
		if hasCPU && k == "samples" {
			continue // the sample count beside cpu nanoseconds says nothing more
		}
		if kind != "" && k != kind {
			continue
		}
		fp, err := flame.FromPprof(p, i)
		if err != nil {
			return nil, err
		}
		out = append(out, Decoded{Kind: k, Unit: pprofUnit(st), Profile: fp, DurationNanos: p.DurationNanos, TimeNanos: p.TimeNanos})
	}
	if len(out) == 0 {
		var names []string
		for i := range p.SampleType {
			names = append(names, pprofKind(p, i))
		}
		return nil, fmt.Errorf("pprof: no sample type %q in the profile (it has %s)", kind, strings.Join(names, ", "))
	}
	return out, nil
}

func pprofUnit(st *profile.ValueType) string {
	if st.Unit == "" || st.Unit == "count" {
		return "samples"
	}
	return st.Unit
}

// parseLines reads Pyroscope's "lines" format: each line is one sampled
// stack, frames separated by ';', root first.
func parseLines(raw []byte) (*flame.Profile, error) {
	var b strings.Builder
	for i, line := range bytes.Split(raw, []byte("\n")) {
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if bytes.IndexByte(line, 0) >= 0 {
			return nil, fmt.Errorf("lines: line %d: NUL byte", i+1)
		}
		b.Write(line)
		b.WriteString(" 1\n")
	}
	return flame.ParseFolded(strings.NewReader(b.String()))
}
