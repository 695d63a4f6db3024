package flame

import (
	"regexp"
)

// Filter returns the samples for which keep returns true (the profile is
// not changed).
func (p *Profile) Filter(keep func(Sample) bool) *Profile {
	q := &Profile{Unit: p.Unit, Diff: p.Diff, Skipped: p.Skipped}
	for _, s := range p.Samples {
		if keep(s) {
			q.Samples = append(q.Samples, s)
		}
	}
	return q
}

// Focus keeps the stacks that have a frame matching focus (all if nil) and
// none matching ignore (none dropped if nil), as pprof's -focus and -ignore do.
func (p *Profile) Focus(focus, ignore *regexp.Regexp) *Profile {
	return p.Filter(func(s Sample) bool {
		found := focus == nil
		for _, f := range s.Stack {
			if ignore != nil && ignore.MatchString(f) {
				return false
			}
			if !found && focus.MatchString(f) {
				found = true
			}
		}
		return found
	})
}

// TrimmedFrame stands for the frames Trim left out.
const TrimmedFrame = "[trimmed]"

// Trim returns a smaller profile that draws the same at a glance: stacks
// deeper than maxDepth (0: no limit) are cut there, and a frame whose total
// share is below minFraction of the profile's total (0: none) is replaced,
// with everything above it, by one TrimmedFrame under its parent, so the
// counts still add up and the trimming shows. Identical stacks are merged.
func (p *Profile) Trim(minFraction float64, maxDepth int) *Profile {
	q := p.Compact()
	total := q.Total()
	if q.Diff {
		total = max(total, q.Total2())
	}
	if total == 0 || (minFraction <= 0 && maxDepth <= 0) {
		return q
	}
	minValue := int64(minFraction * float64(total))
	// the total of each prefix, computed in one pass over the sorted samples:
	// a prefix's samples are adjacent
	b := newBuilder()
	b.p.Unit, b.p.Diff, b.p.Skipped = q.Unit, q.Diff, q.Skipped
	n := len(q.Samples)
	// prefixEnd[d] is the index one past the last sample sharing the current
	// sample's prefix of depth d+1; prefixSum[d] its total
	var stack []string
	type span struct {
		end int
		sum int64
	}
	var spans []span
	for i := 0; i < n; i++ {
		s := q.Samples[i]
		// recompute the spans that changed from the previous sample
		keep := 0
		if i > 0 {
			prev := q.Samples[i-1].Stack
			for keep < len(spans) && keep < len(s.Stack) && keep < len(prev) && prev[keep] == s.Stack[keep] && spans[keep].end > i {
				keep++
			}
		}
		spans = spans[:keep]
		for d := keep; d < len(s.Stack); d++ {
			end, sum := i, int64(0)
			for end < n && len(q.Samples[end].Stack) > d && sameUpTo(q.Samples[end].Stack, s.Stack, d) {
				sum += max(q.Samples[end].Value, q.Samples[end].Value2)
				end++
			}
			spans = append(spans, span{end, sum})
			if sum < minValue {
				break // deeper prefixes are smaller still
			}
		}
		stack = stack[:0]
		for d, f := range s.Stack {
			if maxDepth > 0 && d == maxDepth {
				break
			}
			if d < len(spans) && spans[d].sum < minValue {
				stack = append(stack, TrimmedFrame)
				break
			}
			stack = append(stack, f)
		}
		b.add(stack, s.Value, s.Value2)
	}
	return b.profile()
}

// sameUpTo reports whether a and b share their frames 0..d.
func sameUpTo(a, b []string, d int) bool {
	for k := d; k >= 0; k-- {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}
