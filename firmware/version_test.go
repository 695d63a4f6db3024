package firmware

import (
	"errors"
	"testing"
)

func TestGuess(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Format
	}{
		{"0x00010035", FormatHex},
		{"2B2QEXE7", FormatPlain},
		{"7.10.30.00", FormatQuad},
		{"7.10.30", FormatTriplet},
		{"1.53", FormatPair},
		{"1234", FormatNumber},
		{"P79 v1.45", FormatPlain},
		{"1.45.455b66-rev4", FormatPlain},
		{"1.2.3.4.5", FormatPlain},
		{"", FormatUnknown},
		{"0x", FormatPlain},
	} {
		if got := Guess(tc.in); got != tc.want {
			t.Errorf("Guess(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestFromUint32(t *testing.T) {
	// Bit layouts from fwupd's fu_version_from_uint32.
	for _, tc := range []struct {
		in   uint32
		f    Format
		want string
	}{
		{0x00010035, FormatPair, "1.53"},
		{0x00010035, FormatTriplet, "0.1.53"},
		{0x00010035, FormatQuad, "0.1.0.53"},
		{0x00010035, FormatHex, "0x00010035"},
		{0x00010035, FormatNumber, "65589"},
		{0x01020304, FormatQuad, "1.2.3.4"},
		{0x12345678, FormatBCD, "12.34.56.78"},
		{0x0, FormatIntelME, "11.0.0.0"},
		{0xffffffff, FormatIntelME, "18.31.255.65535"},
		{0x0, FormatIntelME2, "0.0.0.0"},
		{0xffffffff, FormatIntelME2, "15.15.255.65535"},
		{0xffffffff, FormatSurfaceLegacy, "1023.4095.1023"},
		{0xffffffff, FormatSurface, "255.65535.255"},
		{0x01020304, FormatDellBIOS, "2.3.4"},
		{0x01020304, FormatDellBIOSMSB, "1.2.3"},
	} {
		v, err := FromUint32(tc.in, tc.f)
		if err != nil {
			t.Errorf("FromUint32(%#x, %s): %v", tc.in, tc.f, err)
			continue
		}
		if v.String() != tc.want {
			t.Errorf("FromUint32(%#x, %s) = %q, want %q", tc.in, tc.f, v, tc.want)
		}
	}
	if v, _ := FromUint16(0x1234, FormatBCD); v.String() != "12.34" {
		t.Errorf("FromUint16(0x1234, bcd) = %q, want 12.34", v)
	}
	if v, _ := FromUint16(0x0102, FormatPair); v.String() != "1.2" {
		t.Errorf("FromUint16(0x0102, pair) = %q, want 1.2", v)
	}
}

func TestParseVerify(t *testing.T) {
	for _, tc := range []struct {
		in      string
		f       Format
		wantErr bool
		canon   string
	}{
		{"11.8.50.3425", FormatIntelME, false, "11.8.50.3425"}, // a Skylake CSME release
		{"10.0.0.1", FormatIntelME, true, ""},                  // ME major starts at 11
		{"12.34.56.78", FormatBCD, false, "12.34.56.78"},
		{"12.34.56.100", FormatBCD, true, ""},
		{"1.2.3", FormatQuad, true, ""},
		{"1.2.256", FormatTriplet, false, "1.2.256"},
		{"1.256.3", FormatTriplet, true, ""},
		{"0x00010035", FormatTriplet, false, "0.1.53"}, // a raw value decoded with the layout
		{"0x00010035", FormatPair, false, "1.53"},
		{"65589", FormatPair, false, "1.53"},
		{"7.10.30.00", FormatQuad, false, "7.10.30.0"},
		{"0x00010035", FormatHex, false, "0x00010035"},
		{"0xZZ", FormatHex, true, ""},
		{"2B2QEXE7", FormatPlain, false, "2B2QEXE7"},
		{"2B2QEXE7", FormatNumber, true, ""},
		{"1.2", "semver", true, ""},
		{"", FormatPlain, true, ""},
		{"a\x00b", FormatPlain, true, ""},
	} {
		v, err := Parse(tc.in, tc.f)
		if (err != nil) != tc.wantErr {
			t.Errorf("Parse(%q, %s) err = %v, wantErr %v", tc.in, tc.f, err, tc.wantErr)
			continue
		}
		if err == nil && v.Canonical() != tc.canon {
			t.Errorf("Parse(%q, %s).Canonical() = %q, want %q", tc.in, tc.f, v.Canonical(), tc.canon)
		}
	}
}

func TestCompare(t *testing.T) {
	p := func(s string, f Format) Version {
		t.Helper()
		if f == "" {
			v, err := ParseGuess(s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		v, err := Parse(s, f)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		a, b         Version
		want         int
		incomparable bool
	}{
		{p("7.10.30.00", ""), p("7.10.30", ""), 0, false},
		{p("7.10.30.01", ""), p("7.10.30", ""), 0, true},
		{p("7.10.31", ""), p("7.10.30", ""), 1, false},
		{p("1.9", ""), p("1.10", ""), -1, false}, // semver-as-string would say 1.9 > 1.10
		{p("0x00010035", ""), p("0x00010036", ""), -1, false},
		{p("0x00010035", ""), p("1.53", FormatPair), 0, false},
		{p("0x00010035", ""), p("0.1.52", FormatTriplet), 1, false},
		{p("2B2QEXE7", ""), p("2B2QEXE7", ""), 0, false},
		{p("2B2QEXE7", ""), p("2B2QEXE8", ""), 0, true}, // NVMe revisions have no order
		{p("P79 v1.45", ""), p("P79 v1.10", ""), 1, false},
		{p("P79 v1.45", ""), p("P80 v1.10", ""), 0, true}, // a different BIOS family
		{p("P79 v1.45", ""), p("1.45", ""), 0, true},
		{p("12.34.56.78", FormatBCD), p("12.34.56.79", FormatBCD), -1, false},
		{p("0x12345678", FormatHex), p("12.34.56.78", FormatBCD), 0, false},
		{p("12.34.56.78", FormatBCD), p("12.34.56.78", FormatQuad), 0, true},
		{p("11.8.50.3425", FormatIntelME), p("11.8.92.4222", FormatIntelME), -1, false},
		{p("11.8.50.3425", FormatIntelME), p("11.8.50.3425", FormatIntelME2), 0, true},
		{p("1.45.455b66-rev4", ""), p("1.30.367a12-rev1", ""), 0, true},
	} {
		got, err := Compare(tc.a, tc.b)
		if tc.incomparable {
			if !errors.Is(err, ErrIncomparable) {
				t.Errorf("Compare(%q, %q) = %d, %v; want ErrIncomparable", tc.a, tc.b, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Compare(%q, %q) = %d, %v; want %d", tc.a, tc.b, got, err, tc.want)
		}
		// Antisymmetry.
		if back, err := Compare(tc.b, tc.a); err != nil || back != -tc.want {
			t.Errorf("Compare(%q, %q) = %d, %v; want %d", tc.b, tc.a, back, err, -tc.want)
		}
	}
}

func TestParseFormat(t *testing.T) {
	if f, err := ParseFormat("Intel-ME2"); err != nil || f != FormatIntelME2 {
		t.Errorf("ParseFormat(Intel-ME2) = %q, %v", f, err)
	}
	if _, err := ParseFormat("semver"); err == nil {
		t.Error("ParseFormat(semver) succeeded, want an error")
	}
}

func FuzzVersion(f *testing.F) {
	for _, s := range []string{"0x00010035", "2B2QEXE7", "7.10.30.00", "7.10.30", "P79 v1.45", "11.8.50.3425", "12.34.56.78", "1.45.455b66-rev4", "65589", "0x", "1..2", " v1"} {
		f.Add(s, "7.10.30", "")
		f.Add(s, "0x00010035", "pair")
	}
	f.Fuzz(func(t *testing.T, a, b, format string) {
		var va, vb Version
		var err error
		if format == "" {
			va, err = ParseGuess(a)
		} else {
			va, err = Parse(a, Format(format))
		}
		if err != nil {
			return
		}
		_ = va.Canonical()
		vb, err = ParseGuess(b)
		if err != nil {
			return
		}
		c1, err1 := Compare(va, vb)
		c2, err2 := Compare(vb, va)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("Compare(%q,%q) err %v but reverse err %v", a, b, err1, err2)
		}
		if err1 == nil && c1 != -c2 {
			t.Fatalf("Compare(%q,%q)=%d but reverse %d", a, b, c1, c2)
		}
		if c, err := Compare(va, va); err != nil || c != 0 {
			t.Fatalf("Compare(%q, itself) = %d, %v", a, c, err)
		}
	})
}
