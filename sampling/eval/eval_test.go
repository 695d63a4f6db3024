package eval

import (
	"context"
	"math"
	"testing"
	"time"
)

// TestScorecardBars runs a small seeded workload through a real sampler over
// real OTLP/gRPC and holds the tail sampler to the bars.
func TestScorecardBars(t *testing.T) {
	res, err := Run(context.Background(), Options{
		Workload: WorkloadConfig{Seed: 2, Traces: 10000, Duration: 40 * time.Second, HugeTraces: 1, HugeSpans: 1500},
		Speedup:  20,
	})
	if err != nil {
		t.Fatal(err)
	}
	tail, head := res.Tail, res.Head
	t.Logf("workload %+v", res.Workload)
	t.Logf("tail %+v", tail)
	t.Logf("head %+v", head)
	if ok, failed := tail.Pass(); !ok {
		t.Logf("tail sampler misses bars on this run: %v (off: %v)", failed, tail.OffKeys)
	}
	// The bars that do not depend on chance must hold on every run.
	if tail.ErrorRecall < BarErrorRecall || tail.SlowRecall < BarSlowRecall || tail.RareCoverage < BarRareCoverage || tail.Completeness < BarCompleteness {
		t.Errorf("error recall %.3f, slow recall %.3f, rare-key coverage %.3f, completeness %.4f",
			tail.ErrorRecall, tail.SlowRecall, tail.RareCoverage, tail.Completeness)
	}
	// Representativeness is statistical. The 99%-of-keys bar is logged
	// above; what must hold on every run is that the estimates are
	// unbiased: (1) the count misses are no more than an exactly unbiased
	// sampler with the same keep probabilities makes (ExpectedOffKeys,
	// about 0.4-0.6 keys per run here: a key with a handful of kept traces
	// at 1/p each has a skewed estimate, so it leaves 3 standard errors
	// more often than 0.27%); for a Poisson count of mean below 0.7,
	// 4 or more misses happen in under 0.6% of runs; and (2) the misses do
	// not lean one way: the standardized sum of the keys' errors is about
	// standard normal for unbiased adjusted counts.
	// The bar itself is not asserted: with fewer than 100 keys it allows no
	// miss at all, and even an exactly unbiased sampler whose estimates were
	// exactly normal misses 3 SE on ~0.27% of each estimate with sampling
	// variance, so it fails such a run by chance about a quarter of the time
	// (IdealBarChance; 0.6-0.8 here). Over 8 seeds pooled (~850 keys) the
	// bar holds with room (docs/sampling.md).
	t.Logf("representativeness %.4f (bar %.2f): %d keys off, %.2f expected from an unbiased sampler, chance it meets the bar %.2f, bias z %.2f; off: %v",
		tail.Representativeness, BarRepresentative, len(tail.OffKeys), tail.ExpectedOffKeys, tail.IdealBarChance, tail.CountBiasZ, tail.OffKeys)
	if tail.ExpectedOffKeys > 1 {
		t.Errorf("%.2f keys expected off even for an unbiased sampler: too many keys with a handful of kept traces", tail.ExpectedOffKeys)
	}
	if len(tail.OffKeys) > 3 {
		t.Errorf("%d estimates off by more than 3 standard errors (an unbiased sampler: %.2f): %v", len(tail.OffKeys), tail.ExpectedOffKeys, tail.OffKeys)
	}
	if math.Abs(tail.CountBiasZ) > 4 {
		t.Errorf("count estimates biased: standardized sum of errors %.2f", tail.CountBiasZ)
	}
	// A short run keeps a lot: each key's first 20 traces (learning) and
	// everything before the dynamic sampler's first wall-clock interval.
	// Longer runs keep far less (docs/sampling.md: 21.75% of 20 000 traces).
	if tail.TraceFraction > 0.7 {
		t.Errorf("kept %.1f%% of traces: not a reduction", 100*tail.TraceFraction)
	}
	if head.ErrorRecall >= tail.ErrorRecall {
		t.Errorf("head sampling at the same fraction recalls errors as well (%.3f): the workload does not discriminate", head.ErrorRecall)
	}
	if tail.LateSpansKept+tail.LateSpansDropped == 0 {
		t.Error("no late spans reached the decision caches")
	}
	if tail.InconsistentThreshold != 0 {
		t.Errorf("%d traces with different thresholds on their spans", tail.InconsistentThreshold)
	}
}

func TestPool(t *testing.T) {
	cards := []Scorecard{
		{Keys: 99, CountWithin3SE: 98.0 / 99, ErrorCountWithin3SE: 1, MedianWithin3SE: 1, ExpectedOffKeys: 0.4, TraceFraction: 0.3},
		{Keys: 101, CountWithin3SE: 1, ErrorCountWithin3SE: 1, MedianWithin3SE: 100.0 / 101, ExpectedOffKeys: 0.3, TraceFraction: 0.4},
		{Keys: 100, CountWithin3SE: 98.0 / 100, ErrorCountWithin3SE: 1, MedianWithin3SE: 1, ExpectedOffKeys: 0.5, TraceFraction: 0.2},
	}
	p := Pool(cards)
	if p.Runs != 3 || p.Keys != 300 || p.CountOff != 3 || p.MedianOff != 1 || p.ErrorCountOff != 0 {
		t.Fatalf("pooled %+v", p)
	}
	if math.Abs(p.Representativeness-297.0/300) > 1e-12 || !p.Pass() || math.Abs(p.ExpectedOffKeys-1.2) > 1e-12 || math.Abs(p.TraceFraction-0.3) > 1e-12 {
		t.Fatalf("pooled %+v", p)
	}
	cards[2].CountWithin3SE = 96.0 / 100 // 5 of 300 count misses: 98.3%
	if p := Pool(cards); p.Pass() {
		t.Fatalf("pooled %+v passes with 5 of 300 keys off", p)
	}
	if p := Pool(nil); p.Pass() {
		t.Fatal("no runs passes")
	}
}
