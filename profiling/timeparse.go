package profiling

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a time as the API and the CLI accept it: Unix seconds (as
// Pyroscope clients send from= and until=), milli-, micro- or nanoseconds
// (told apart by size), RFC 3339, "now", or "now-1h". Empty is the zero time.
func ParseTime(v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		switch {
		case n > 1e17:
			return time.Unix(0, n), nil
		case n > 1e14:
			return time.UnixMicro(n), nil
		case n > 1e11:
			return time.UnixMilli(n), nil
		}
		return time.Unix(n, 0), nil
	}
	if v == "now" {
		return now, nil
	}
	if rest, ok := strings.CutPrefix(v, "now-"); ok {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return time.Time{}, fmt.Errorf("time %q: %w", v, err)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want Unix seconds, RFC 3339, now or now-1h", v)
	}
	return t, nil
}
