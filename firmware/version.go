package firmware

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Format says how a firmware version string is written and how two of them
// order. The names and bit layouts are fwupd's (FwupdVersionFormat), because
// LVFS metadata and fwupd-reporting hosts use them: a device that reports the
// raw 32-bit value 0x00010035 means "1.53" to a vendor using "pair" and
// "0.1.53" to one using "triplet", and only the format says which.
type Format string

const (
	FormatUnknown       Format = ""
	FormatPlain         Format = "plain"          // any printable text; ordered only when it ends in "vN.N" after a common prefix
	FormatNumber        Format = "number"         // one decimal integer: 1234
	FormatPair          Format = "pair"           // AABB.CCDD
	FormatTriplet       Format = "triplet"        // AA.BB.CCDD
	FormatQuad          Format = "quad"           // AA.BB.CC.DD
	FormatBCD           Format = "bcd"            // AA.BB.CC.DD, each byte binary-coded decimal
	FormatIntelME       Format = "intel-me"       // aaa+11.bbbbb.cccccccc.dddddddddddddddd
	FormatIntelME2      Format = "intel-me2"      // A.B.CC.DDDD
	FormatSurfaceLegacy Format = "surface-legacy" // 10b.12b.10b
	FormatSurface       Format = "surface"        // 8b.16b.8b
	FormatDellBIOS      Format = "dell-bios"      // BB.CC.DD (the top byte is ignored)
	FormatDellBIOSMSB   Format = "dell-bios-msb"  // AA.BB.CC (the low byte is ignored)
	FormatHex           Format = "hex"            // 0xAABBCCDD
)

// Formats lists every known format, in fwupd's order.
var Formats = []Format{FormatPlain, FormatNumber, FormatPair, FormatTriplet, FormatQuad, FormatBCD,
	FormatIntelME, FormatIntelME2, FormatSurfaceLegacy, FormatSurface, FormatDellBIOS, FormatHex, FormatDellBIOSMSB}

// layout is the dotted-decimal shape of a format: the largest value of each
// section (and, for intel-me, the smallest of the first).
var layouts = map[Format]struct {
	max   []uint64
	first uint64 // lowest allowed first section
}{
	FormatPair:          {max: []uint64{0xffff, 0xffff}},
	FormatTriplet:       {max: []uint64{0xff, 0xff, 0xffff}},
	FormatQuad:          {max: []uint64{0xff, 0xff, 0xff, 0xff}},
	FormatBCD:           {max: []uint64{99, 99, 99, 99}},
	FormatIntelME:       {max: []uint64{18, 31, 0xff, 0xffff}, first: 11},
	FormatIntelME2:      {max: []uint64{15, 15, 0xff, 0xffff}},
	FormatSurfaceLegacy: {max: []uint64{0x3ff, 0xfff, 0x3ff}},
	FormatSurface:       {max: []uint64{0xff, 0xffff, 0xff}},
	FormatDellBIOS:      {max: []uint64{0xff, 0xff, 0xff}},
	FormatDellBIOSMSB:   {max: []uint64{0xff, 0xff, 0xff}},
}

// ParseFormat turns a format name (as in metainfo.xml's LVFS::VersionFormat)
// into a Format, with an error naming the known ones.
func ParseFormat(s string) (Format, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	for _, f := range Formats {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, len(Formats))
	for i, f := range Formats {
		names[i] = string(f)
	}
	return FormatUnknown, fmt.Errorf("unknown version format %q (known: %s)", s, strings.Join(names, ", "))
}

// Version is one parsed firmware version: the text as written, the format it
// is read in, and its numeric sections when the format has them.
type Version struct {
	Raw    string
	Format Format
	// Parts are the numeric sections of dotted formats, or the one value of
	// number and hex. Empty for plain.
	Parts []uint64
	// prefix and tail serve plain versions of the shape "P79 v1.45": the
	// family ("P79") and the dotted number after it.
	prefix string
	tail   []uint64
}

// ErrIncomparable is returned (wrapped) by Compare when two versions have no
// defined order, for example two NVMe revision strings or a "bcd" version
// against an "intel-me" one. Callers must decide what that means (usually:
// "different from the target") instead of guessing an order.
var ErrIncomparable = errors.New("versions cannot be compared")

// Guess picks the format fwupd would guess for s: hex for "0x...", number for
// digits, pair/triplet/quad for 2-4 dotted numeric sections, plain otherwise.
func Guess(s string) Format {
	s = strings.TrimSpace(s)
	if s == "" {
		return FormatUnknown
	}
	split := strings.Split(s, ".")
	if len(split) == 1 {
		if isHex(s) {
			return FormatHex
		}
		if isDigits(s) {
			return FormatNumber
		}
		return FormatPlain
	}
	for _, p := range split {
		if !isDigits(p) {
			return FormatPlain
		}
	}
	switch len(split) {
	case 2:
		return FormatPair
	case 3:
		return FormatTriplet
	case 4:
		return FormatQuad
	}
	return FormatPlain
}

// ParseGuess parses s in the format Guess picks.
func ParseGuess(s string) (Version, error) {
	f := Guess(s)
	if f == FormatUnknown {
		return Version{}, errors.New("empty version")
	}
	return Parse(s, f)
}

// Parse reads s in format f and verifies that it is well formed for it: the
// number of sections and the range of each. A raw integer ("0x00010035" or
// "65589") is accepted for any dotted format and decoded with the format's
// bit layout, as fwupd does for devices that report a number.
func Parse(s string, f Format) (Version, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Version{}, errors.New("empty version")
	}
	if len(s) > 256 {
		return Version{}, fmt.Errorf("version of %d bytes is too long", len(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return Version{}, fmt.Errorf("version %q has a control character", s)
		}
	}
	v := Version{Raw: s, Format: f}
	switch f {
	case FormatPlain:
		v.prefix, v.tail = plainTail(s)
		return v, nil
	case FormatNumber:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("version %q is not a %s: want a decimal integer", s, f)
		}
		v.Parts = []uint64{n}
		return v, nil
	case FormatHex:
		if !isHex(s) {
			return Version{}, fmt.Errorf("version %q is not %s: want 0x followed by hex digits", s, f)
		}
		n, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return Version{}, fmt.Errorf("version %q is not %s: %w", s, f, errors.Unwrap(err))
		}
		v.Parts = []uint64{n}
		return v, nil
	case FormatUnknown:
		return Version{}, fmt.Errorf("version %q has no format", s)
	}
	lay, ok := layouts[f]
	if !ok {
		return Version{}, fmt.Errorf("unknown version format %q", string(f))
	}
	// A raw integer: decode it with the format's layout.
	if !strings.Contains(s, ".") {
		var n uint64
		var err error
		if isHex(s) {
			n, err = strconv.ParseUint(s[2:], 16, 32)
		} else {
			n, err = strconv.ParseUint(s, 10, 32)
		}
		if err != nil {
			return Version{}, fmt.Errorf("version %q is not %s: want %d dotted numbers or a 32-bit integer", s, f, len(lay.max))
		}
		d, err := FromUint32(uint32(n), f)
		if err != nil {
			return Version{}, err
		}
		d.Raw = s
		return d, nil
	}
	split := strings.Split(s, ".")
	if len(split) != len(lay.max) {
		return Version{}, fmt.Errorf("version %q is not %s: want %d dotted numbers, got %d sections", s, f, len(lay.max), len(split))
	}
	v.Parts = make([]uint64, len(split))
	for i, p := range split {
		if !isDigits(p) {
			return Version{}, fmt.Errorf("version %q is not %s: section %d (%q) is not a number", s, f, i+1, p)
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || n > lay.max[i] {
			return Version{}, fmt.Errorf("version %q is not %s: section %d is over %d", s, f, i+1, lay.max[i])
		}
		if i == 0 && n < lay.first {
			return Version{}, fmt.Errorf("version %q is not %s: first section is under %d", s, f, lay.first)
		}
		v.Parts[i] = n
	}
	return v, nil
}

// FromUint32 renders a raw 32-bit version value in format f, with fwupd's bit
// layouts (fu_version_from_uint32).
func FromUint32(n uint32, f Format) (Version, error) {
	u := uint64(n)
	var parts []uint64
	switch f {
	case FormatQuad:
		parts = []uint64{u >> 24 & 0xff, u >> 16 & 0xff, u >> 8 & 0xff, u & 0xff}
	case FormatTriplet:
		parts = []uint64{u >> 24 & 0xff, u >> 16 & 0xff, u & 0xffff}
	case FormatPair:
		parts = []uint64{u >> 16 & 0xffff, u & 0xffff}
	case FormatBCD:
		parts = []uint64{bcd(u >> 24), bcd(u >> 16), bcd(u >> 8), bcd(u)}
	case FormatIntelME:
		parts = []uint64{(u>>29)&0x07 + 0x0b, u >> 24 & 0x1f, u >> 16 & 0xff, u & 0xffff}
	case FormatIntelME2:
		parts = []uint64{u >> 28 & 0x0f, u >> 24 & 0x0f, u >> 16 & 0xff, u & 0xffff}
	case FormatSurfaceLegacy:
		parts = []uint64{u >> 22 & 0x3ff, u >> 10 & 0xfff, u & 0x3ff}
	case FormatSurface:
		parts = []uint64{u >> 24 & 0xff, u >> 8 & 0xffff, u & 0xff}
	case FormatDellBIOS:
		parts = []uint64{u >> 16 & 0xff, u >> 8 & 0xff, u & 0xff}
	case FormatDellBIOSMSB:
		parts = []uint64{u >> 24 & 0xff, u >> 16 & 0xff, u >> 8 & 0xff}
	case FormatNumber, FormatPlain:
		return Version{Raw: strconv.FormatUint(u, 10), Format: FormatNumber, Parts: []uint64{u}}, nil
	case FormatHex:
		return Version{Raw: fmt.Sprintf("0x%08x", n), Format: FormatHex, Parts: []uint64{u}}, nil
	default:
		return Version{}, fmt.Errorf("unknown version format %q", string(f))
	}
	return Version{Raw: joinParts(parts), Format: f, Parts: parts}, nil
}

// FromUint16 renders a raw 16-bit value (USB bcdDevice and similar) with
// fwupd's 16-bit layouts: pair and bcd are two bytes, number and hex the value.
func FromUint16(n uint16, f Format) (Version, error) {
	u := uint64(n)
	switch f {
	case FormatPair:
		p := []uint64{u >> 8, u & 0xff}
		return Version{Raw: joinParts(p), Format: f, Parts: p}, nil
	case FormatBCD:
		p := []uint64{bcd(u >> 8), bcd(u)}
		return Version{Raw: joinParts(p), Format: f, Parts: p}, nil
	case FormatNumber, FormatPlain:
		return Version{Raw: strconv.FormatUint(u, 10), Format: FormatNumber, Parts: []uint64{u}}, nil
	case FormatHex:
		return Version{Raw: fmt.Sprintf("0x%04x", n), Format: FormatHex, Parts: []uint64{u}}, nil
	}
	return Version{}, fmt.Errorf("format %q has no 16-bit layout", string(f))
}

// String is the version as written.
func (v Version) String() string { return v.Raw }

// Canonical is the version as its format writes it ("7.10.30.00" becomes
// "7.10.30.0"; "0x00010035" read as pair becomes "1.53").
func (v Version) Canonical() string {
	switch v.Format {
	case FormatPlain, FormatUnknown:
		return v.Raw
	case FormatHex:
		return fmt.Sprintf("0x%08x", v.Parts[0])
	case FormatNumber:
		return strconv.FormatUint(v.Parts[0], 10)
	}
	return joinParts(v.Parts)
}

// Compare orders a and b: -1, 0 or +1. It returns an error wrapping
// ErrIncomparable when the two have no defined order:
//
//   - plain versions order only when both are "<family> v<dotted number>"
//     with the same family ("P79 v1.10" < "P79 v1.45"); otherwise only
//     equality is known;
//   - pair, triplet and quad compare with each other only when the longer one
//     merely pads the shorter with zeros ("7.10.30.00" == "7.10.30"): a
//     non-zero extra section could be a build number or a different scheme;
//   - the vendor formats (bcd, intel-me, surface, dell-bios, ...) compare with
//     the same format, and with a raw number or hex value decoded into it;
//   - number and hex compare as integers.
func Compare(a, b Version) (int, error) {
	if a.Raw == b.Raw && a.Format == b.Format {
		return 0, nil
	}
	incomparable := func(why string) (int, error) {
		return 0, fmt.Errorf("%q (%s) and %q (%s): %w: %s", a.Raw, fmtName(a.Format), b.Raw, fmtName(b.Format), ErrIncomparable, why)
	}
	if a.Format == FormatUnknown || b.Format == FormatUnknown {
		return incomparable("a version has no format")
	}
	if a.Format == FormatPlain || b.Format == FormatPlain {
		if a.Format != b.Format {
			return incomparable("plain text has no order against numbers")
		}
		if a.tail != nil && b.tail != nil && a.prefix == b.prefix {
			return compareParts(a.tail, b.tail, true), nil
		}
		return incomparable("plain versions order only as \"<family> v<number>\" with the same family")
	}
	ra, rb := isRaw(a.Format), isRaw(b.Format)
	switch {
	case ra && rb:
		return cmpU(a.Parts[0], b.Parts[0]), nil
	case ra:
		d, err := decodeRaw(a, b.Format)
		if err != nil {
			return incomparable(err.Error())
		}
		return compareParts(d.Parts, b.Parts, false), nil
	case rb:
		d, err := decodeRaw(b, a.Format)
		if err != nil {
			return incomparable(err.Error())
		}
		return compareParts(a.Parts, d.Parts, false), nil
	}
	if a.Format == b.Format {
		return compareParts(a.Parts, b.Parts, false), nil
	}
	if isDotted(a.Format) && isDotted(b.Format) {
		short, long := a.Parts, b.Parts
		if len(short) > len(long) {
			short, long = long, short
		}
		for _, p := range long[len(short):] {
			if p != 0 {
				return incomparable("the longer version has a non-zero extra section")
			}
		}
		return compareParts(a.Parts, b.Parts, true), nil
	}
	return incomparable("different formats")
}

// Less reports whether a orders before b; incomparable versions are not less.
func Less(a, b Version) bool {
	c, err := Compare(a, b)
	return err == nil && c < 0
}

func fmtName(f Format) string {
	if f == FormatUnknown {
		return "unknown"
	}
	return string(f)
}

func isRaw(f Format) bool    { return f == FormatNumber || f == FormatHex }
func isDotted(f Format) bool { return f == FormatPair || f == FormatTriplet || f == FormatQuad }

func decodeRaw(raw Version, f Format) (Version, error) {
	if raw.Parts[0] > 0xffffffff {
		return Version{}, fmt.Errorf("%d does not fit 32 bits", raw.Parts[0])
	}
	return FromUint32(uint32(raw.Parts[0]), f)
}

// compareParts compares section by section; with pad, missing sections count
// as zero, otherwise the longer list wins a tie.
func compareParts(a, b []uint64, pad bool) int {
	n := max(len(a), len(b))
	for i := 0; i < n; i++ {
		var x, y uint64
		if i < len(a) {
			x = a[i]
		} else if !pad {
			return -1
		}
		if i < len(b) {
			y = b[i]
		} else if !pad {
			return 1
		}
		if c := cmpU(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func cmpU(x, y uint64) int {
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// plainTail splits "P79 v1.45" into the family "P79" and [1 45]. It returns a
// nil tail when s does not end in a space, an optional "v" and dotted digits.
func plainTail(s string) (string, []uint64) {
	i := strings.LastIndexAny(s, " \t")
	if i <= 0 {
		return "", nil
	}
	prefix, last := strings.TrimSpace(s[:i]), s[i+1:]
	last = strings.TrimPrefix(strings.TrimPrefix(last, "v"), "V")
	if last == "" {
		return "", nil
	}
	var tail []uint64
	for _, p := range strings.Split(last, ".") {
		if !isDigits(p) || len(p) > 18 {
			return "", nil
		}
		n, _ := strconv.ParseUint(p, 10, 64)
		tail = append(tail, n)
	}
	return prefix, tail
}

func bcd(b uint64) uint64 { return (b>>4&0x0f)*10 + b&0x0f }

func joinParts(p []uint64) string {
	s := make([]string, len(p))
	for i, n := range p {
		s[i] = strconv.FormatUint(n, 10)
	}
	return strings.Join(s, ".")
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isHex(s string) bool {
	if len(s) < 3 || (s[:2] != "0x" && s[:2] != "0X") {
		return false
	}
	for i := 2; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
