package profiling

import (
	"errors"

	"github.com/srekit/srekit/flame"
)

// collapsePerf turns `perf script` output into stacks with flame's collapser.
func collapsePerf(raw []byte) (*flame.Profile, error) {
	return nil, errors.New("perf script ingest: not available yet")
}
