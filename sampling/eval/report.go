package eval

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the scorecard: a measure, its bar, and the two samplers' values.
type Row struct {
	Group, Measure, Bar string
	Tail, Head          string
	TailOK, HeadOK      *bool // nil when the measure has no bar
}

// Rows lays the result out as the scorecard table.
func (r *Result) Rows() []Row {
	t, h := r.Tail, r.Head
	pct := func(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }
	num := func(f float64) string { return fmt.Sprintf("%.4f", f) }
	bar := func(v, min float64) *bool { ok := v >= min; return &ok }
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	return []Row{
		{Group: "overhead", Measure: "traces kept", Tail: pct(t.TraceFraction), Head: pct(h.TraceFraction)},
		{Group: "overhead", Measure: "spans kept", Tail: pct(t.SpanFraction), Head: pct(h.SpanFraction)},
		{Group: "overhead", Measure: "bytes kept", Tail: pct(t.ByteFraction), Head: pct(h.ByteFraction)},
		{Group: "overhead", Measure: "CPU s per million spans (whole eval process)", Tail: fmt.Sprintf("%.1f", t.CPUSecondsPerMillionSpans), Head: "-"},
		{Group: "overhead", Measure: "peak heap above start (whole eval process)", Tail: mib(t.PeakHeapBytes), Head: "-"},
		{Group: "overhead", Measure: "peak buffered bytes (real allocations)", Tail: mib(t.PeakBufferedBytes), Head: "-"},
		{Group: "overhead", Measure: "p99 decision delay", Tail: t.DecisionDelayP99.Round(time.Millisecond).String(), Head: "0"},
		{Group: "what matters", Measure: fmt.Sprintf("error-trace recall (%d errors)", t.ErrorTraces), Bar: "= 1.0", Tail: num(t.ErrorRecall), Head: num(h.ErrorRecall), TailOK: bar(t.ErrorRecall, BarErrorRecall), HeadOK: bar(h.ErrorRecall, BarErrorRecall)},
		{Group: "what matters", Measure: fmt.Sprintf("recall of traces slower than their key's p99 (%d)", t.SlowTraces), Bar: ">= 0.99", Tail: num(t.SlowRecall), Head: num(h.SlowRecall), TailOK: bar(t.SlowRecall, BarSlowRecall), HeadOK: bar(h.SlowRecall, BarSlowRecall)},
		{Group: "what matters", Measure: fmt.Sprintf("rare-key coverage (%d keys under %d traces)", t.RareKeys, RareKeyMaxTraces), Bar: "= 1.0", Tail: num(t.RareCoverage), Head: num(h.RareCoverage), TailOK: bar(t.RareCoverage, BarRareCoverage), HeadOK: bar(h.RareCoverage, BarRareCoverage)},
		{Group: "what matters", Measure: "completeness of kept traces", Bar: ">= 0.999", Tail: num(t.Completeness), Head: num(h.Completeness), TailOK: bar(t.Completeness, BarCompleteness), HeadOK: bar(h.Completeness, BarCompleteness)},
		{Group: "representative", Measure: fmt.Sprintf("keys with count within 3 SE (%d keys)", t.Keys), Tail: pct(t.CountWithin3SE), Head: pct(h.CountWithin3SE)},
		{Group: "representative", Measure: "keys with error count within 3 SE", Tail: pct(t.ErrorCountWithin3SE), Head: pct(h.ErrorCountWithin3SE)},
		{Group: "representative", Measure: "keys with median latency within 3 SE", Tail: pct(t.MedianWithin3SE), Head: pct(h.MedianWithin3SE)},
		{Group: "representative", Measure: "keys off by > 3 SE expected from an unbiased sampler (count)", Tail: fmt.Sprintf("%.2f", t.ExpectedOffKeys), Head: fmt.Sprintf("%.2f", h.ExpectedOffKeys)},
		{Group: "representative", Measure: "chance an unbiased sampler meets the bar on this run", Tail: fmt.Sprintf("%.2f", t.IdealBarChance), Head: fmt.Sprintf("%.2f", h.IdealBarChance)},
		{Group: "representative", Measure: "count bias z (about N(0,1) when unbiased)", Tail: fmt.Sprintf("%+.2f", t.CountBiasZ), Head: fmt.Sprintf("%+.2f", h.CountBiasZ)},
		{Group: "representative", Measure: "all three (the least)", Bar: ">= 99%", Tail: pct(t.Representativeness), Head: pct(h.Representativeness), TailOK: bar(t.Representativeness, BarRepresentative), HeadOK: bar(h.Representativeness, BarRepresentative)},
	}
}

// WriteText prints the scorecard as an aligned table.
func (r *Result) WriteText(w io.Writer) error {
	ws := r.Workload
	fmt.Fprintf(w, "workload: seed %d, %d traces, %d spans, %d keys (%d rare), %d error traces, %d slow, %d late spans, %d huge traces, spike x%.0f\n",
		ws.Seed, ws.Traces, ws.Spans, ws.Keys, ws.RareKeys, ws.ErrorTraces, ws.SlowTraces, ws.LateSpans, ws.HugeTraces, ws.SpikeRate)
	fmt.Fprintf(w, "run: %s wall; late spans kept %d / dropped %d; stress relief activations %d; export drops %d\n\n",
		r.Wall.Round(time.Millisecond), r.Tail.LateSpansKept, r.Tail.LateSpansDropped, r.Tail.StressActivations, r.Tail.ExportDropped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MEASURE\tBAR\tTAIL (SREKIT)\tHEAD (SAME FRACTION)\t")
	mark := func(v string, ok *bool) string {
		if ok == nil {
			return v
		}
		if *ok {
			return v + " ok"
		}
		return v + " FAIL"
	}
	for _, row := range r.Rows() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", row.Measure, row.Bar, mark(row.Tail, row.TailOK), mark(row.Head, row.HeadOK))
	}
	tw.Flush()
	if len(r.Tail.OffKeys) > 0 {
		fmt.Fprintf(w, "\ntail estimates off by more than 3 SE: %s\n", strings.Join(r.Tail.OffKeys, "; "))
	}
	ok, failed := r.Tail.Pass()
	if ok {
		fmt.Fprintln(w, "\ntail sampler: every bar met")
	} else {
		fmt.Fprintf(w, "\ntail sampler: bars missed: %s\n", strings.Join(failed, ", "))
	}
	return nil
}

// TailClass and HeadClass are "good", "bad" or "" (no bar), for pages.
func (r Row) TailClass() string { return okClass(r.TailOK) }

// HeadClass is TailClass for head sampling.
func (r Row) HeadClass() string { return okClass(r.HeadOK) }

func okClass(ok *bool) string {
	switch {
	case ok == nil:
		return ""
	case *ok:
		return "good"
	}
	return "bad"
}
