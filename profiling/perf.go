package profiling

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/srekit/srekit/flame"
	"github.com/srekit/srekit/flame/collapse"
)

// collapsePerf turns `perf script` output into stacks with flame's
// stackcollapse-perf.pl-compatible collapser (kernel frames annotated).
func collapsePerf(raw []byte) (*flame.Profile, error) {
	p, err := collapse.PerfScript(bytes.NewReader(raw), collapse.PerfOptions{Kernel: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("perf script: %w", err)
	}
	if len(p.Samples) == 0 {
		if p.Skipped.Count > 0 {
			return nil, fmt.Errorf("perf script: no samples: %w", p.Skipped.Err())
		}
		return nil, errors.New("perf script: no samples")
	}
	return p, nil
}
