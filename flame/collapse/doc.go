// Package collapse turns profiler output into flame's stacks model: perf
// script, DTrace stack aggregations, Java jstack thread dumps, pprof,
// bpftrace maps and folded text. Each collapser streams its input, so memory
// grows with the number of distinct stacks, not with the input size.
package collapse
