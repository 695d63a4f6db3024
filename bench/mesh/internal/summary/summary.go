// Package summary writes the one line of latency percentiles that the mesh
// bench's loaders (bench/mesh/load and bench/mesh/duo) print and
// bench/mesh/run.sh reads, field by field: one definition of its format.
package summary

import (
	"fmt"
	"slices"
	"time"
)

// Line formats requests=, errors=, rate=, the latency percentiles p50_ms to
// max_ms and the send-lag percentiles lag_p50_ms and lag_p99_ms, then
// loader_gcs=. lat and lag (the answered requests' latencies and send lags)
// are sorted in place; rate is over dur, the measured time.
func Line(lat, lag []time.Duration, errors int, dur time.Duration, gcs uint32) string {
	slices.Sort(lat)
	slices.Sort(lag)
	n := len(lat) + errors
	return fmt.Sprintf("requests=%d errors=%d rate=%.0f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f lag_p50_ms=%.3f lag_p99_ms=%.3f loader_gcs=%d",
		n, errors, float64(n)/dur.Seconds(), quantile(lat, .5), quantile(lat, .9), quantile(lat, .99), quantile(lat, .999), quantile(lat, 1),
		quantile(lag, .5), quantile(lag, .99), gcs)
}

// quantile of sorted values, in milliseconds; 0 for none.
func quantile(sorted []time.Duration, f float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[min(len(sorted)-1, int(f*float64(len(sorted))))]) / 1e6
}
