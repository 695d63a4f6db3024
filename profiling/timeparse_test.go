package profiling

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"now":                  now,
		"now-1h30m":            now.Add(-90 * time.Minute),
		"1795651200":           time.Unix(1795651200, 0),
		"1795651200123":        time.UnixMilli(1795651200123),
		"1795651200123456":     time.UnixMicro(1795651200123456),
		"1795651200123456789":  time.Unix(0, 1795651200123456789),
		"2026-11-25T11:00:00Z": now.Add(-time.Hour),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "now-", "now-1x", "2026-11-25"} {
		if _, err := ParseTime(bad, now); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"now", "now-1h", "1795651200", "2026-11-25T11:00:00Z", "-5", "now--1h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ParseTime(s, time.Now())
	})
}
