package collapse

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/google/pprof/profile"

	"github.com/srekit/srekit/flame"
)

// Format names an input format.
type Format string

// The formats Collapse reads.
const (
	Auto     Format = "auto"
	Perf     Format = "perf"     // perf script output
	DTrace   Format = "dtrace"   // DTrace ustack()/stack() aggregation output
	Jstack   Format = "jstack"   // Java thread dumps (jstack, kill -3)
	Pprof    Format = "pprof"    // pprof protobuf, gzipped or not
	Bpftrace Format = "bpftrace" // bpftrace maps keyed by kstack/ustack
	Folded   Format = "folded"   // folded stacks, "a;b;c 12" (passed through)
)

// Formats lists the formats, Auto first.
var Formats = []Format{Auto, Perf, DTrace, Jstack, Pprof, Bpftrace, Folded}

// ParseFormat checks a format name.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown format %q (want auto, perf, dtrace, jstack, pprof, bpftrace or folded)", s)
}

// Options configure Collapse.
type Options struct {
	Perf   PerfOptions
	Jstack JstackOptions
	// SampleIndex picks the pprof sample type (-1: the profile's default).
	SampleIndex int
	// SampleType picks the pprof sample type by name ("cpu", "alloc_space");
	// it wins over SampleIndex.
	SampleType string
	// MaxPprofBytes bounds a pprof profile's size after decompression
	// (DefaultMaxPprofBytes when 0), so a small gzip bomb cannot exhaust memory.
	MaxPprofBytes int64
	// Strict makes skipped lines an error.
	Strict bool
	// Warn receives notes (such as the perf event type kept); may be nil.
	Warn func(string)
}

// DefaultMaxPprofBytes bounds decompressed pprof input.
const DefaultMaxPprofBytes = 512 << 20

// Collapse reads r in the given format (detecting it for Auto) and returns
// the profile and the format read. Gzip-compressed input of any format is
// decompressed on the fly.
func Collapse(r io.Reader, format Format, o Options) (*flame.Profile, Format, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	var in io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, format, fmt.Errorf("gzip: %w", err)
		}
		br = bufio.NewReaderSize(gzipErrors{zr}, 256<<10)
		in = br
	}
	if format == Auto || format == "" {
		head, err := br.Peek(64 << 10)
		if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
			return nil, format, err
		}
		format = Detect(head)
		if format == Auto {
			return nil, format, errors.New("cannot tell the input format: give --format (perf, dtrace, jstack, pprof, bpftrace or folded)")
		}
	}
	var p *flame.Profile
	var err error
	switch format {
	case Perf:
		p, err = PerfScript(in, o.Perf, o.Warn)
	case DTrace:
		p, err = DTraceStacks(in)
	case Jstack:
		p, err = JstackDump(in, o.Jstack)
	case Bpftrace:
		p, err = BpftraceMaps(in)
	case Folded:
		p, err = flame.ParseFolded(in)
	case Pprof:
		var pp *profile.Profile
		if pp, err = readPprof(in, o.MaxPprofBytes); err == nil {
			idx := o.SampleIndex
			if o.SampleType != "" {
				idx, err = PprofSampleIndex(pp, o.SampleType)
			}
			if err == nil {
				p, err = flame.FromPprof(pp, idx)
			}
		}
	default:
		return nil, format, fmt.Errorf("unknown format %q", format)
	}
	if err != nil {
		return nil, format, fmt.Errorf("%s: %w", format, err)
	}
	if o.Strict {
		if err := p.Skipped.Err(); err != nil {
			return nil, format, fmt.Errorf("%s: %w", format, err)
		}
	}
	return p, format, nil
}

// gzipErrors names gzip errors as such (a truncated file says so).
type gzipErrors struct{ r io.Reader }

func (g gzipErrors) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && err != io.EOF {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = errors.New("gzip: truncated input")
		} else {
			err = fmt.Errorf("gzip: %w", err)
		}
	}
	return n, err
}

var (
	perfFrameRE   = regexp.MustCompile(`(?m)^\s+[0-9a-fA-F]+ .+ \(.*\)\s*$`)
	perfHeaderRE  = regexp.MustCompile(`(?m)^\S.*?\s+\d+(/\d+)?\s`) // command, then PID[/TID], as stackcollapse-perf.pl matches it
	foldedRE      = regexp.MustCompile(`^[^\s].*\s\d+(\.\d*)?(\s+\d+(\.\d*)?)?\s*$`)
	dtraceCountRE = regexp.MustCompile(`(?m)^\s+\d+\s*$`)
)

// Detect guesses the format of an input from its first bytes; Auto means
// it could not tell.
func Detect(head []byte) Format {
	if len(bytes.TrimSpace(head)) == 0 {
		return Folded // nothing to detect: an empty profile
	}
	if isBinary(head) {
		return Pprof
	}
	if bytes.Contains(head, []byte("java.lang.Thread.State:")) || bytes.HasPrefix(head, []byte("Full thread dump")) {
		return Jstack
	}
	if bytes.HasPrefix(head, []byte("@[")) || bytes.Contains(head, []byte("\n@[")) {
		return Bpftrace
	}
	if perfFrameRE.Match(head) && perfHeaderRE.Match(head) {
		return Perf
	}
	// folded: most non-empty lines look like "stack count"
	lines := bytes.Split(head, []byte("\n"))
	if len(lines) > 1 && len(head) == 64<<10 {
		lines = lines[:len(lines)-1] // the last may be cut
	}
	folded, other := 0, 0
	for _, l := range lines {
		l = bytes.TrimRight(l, "\r")
		if len(bytes.TrimSpace(l)) == 0 || l[0] == '#' {
			continue
		}
		if foldedRE.Match(l) {
			folded++
		} else {
			other++
		}
	}
	if folded > 0 && folded > other {
		return Folded
	}
	if dtraceCountRE.Match(head) {
		return DTrace
	}
	return Auto
}

// isBinary reports whether head is not text (a protobuf).
func isBinary(head []byte) bool {
	n := min(len(head), 512)
	if bytes.IndexByte(head[:n], 0) >= 0 {
		return true
	}
	bad := 0
	for i := 0; i < n; {
		r, size := utf8.DecodeRune(head[i:])
		if r == utf8.RuneError && size == 1 && n-i >= utf8.UTFMax {
			bad++
		} else if r < 0x20 && r != '\n' && r != '\r' && r != '\t' && r != '\f' && r != '\v' {
			bad++
		}
		i += size
	}
	return bad*10 > n
}

// PprofProfile reads a pprof profile (protobuf, gzipped or not, or pprof's
// legacy text formats) and converts the sample type at sampleIndex (-1: the
// default) with flame.FromPprof. max bounds the decompressed size.
func PprofProfile(r io.Reader, sampleIndex int, max int64) (*flame.Profile, error) {
	pp, err := readPprof(r, max)
	if err != nil {
		return nil, err
	}
	return flame.FromPprof(pp, sampleIndex)
}

// PprofSampleIndex finds a sample type by name ("cpu", "alloc_space"...).
func PprofSampleIndex(pp *profile.Profile, sampleType string) (int, error) {
	var names []string
	for i, st := range pp.SampleType {
		if st.Type == sampleType {
			return i, nil
		}
		names = append(names, st.Type)
	}
	return 0, fmt.Errorf("no sample type %q (the profile has %s)", sampleType, strings.Join(names, ", "))
}

func readPprof(r io.Reader, max int64) (*profile.Profile, error) {
	if max <= 0 {
		max = DefaultMaxPprofBytes
	}
	br := bufio.NewReader(r)
	var in io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		in = gzipErrors{zr}
	}
	data, err := io.ReadAll(io.LimitReader(in, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("profile larger than %d bytes once decompressed", max)
	}
	pp, err := profile.ParseData(data)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	return pp, nil
}
