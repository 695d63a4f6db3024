// Package sampling is srekit's tail trace sampler: it buffers OTLP spans by
// trace ID, decides per trace with policies (errors, latency, attributes,
// probability, rate limits, dynamic per-key rates, and/or/not, drop rules)
// and forwards the kept traces, while keeping its memory bounded in bytes.
//
// Why a tail sampler and not head sampling: a head sampler decides before it
// knows whether the trace failed or was slow, so it loses the traces an SRE
// looks for. A tail sampler sees the whole trace but must hold it in memory,
// which is where the existing ones hurt (a trace-count limit instead of bytes,
// late spans mis-sampled, overload that grows memory). This package makes
// those three things first-class:
//
//   - Buffer holds spans by trace ID with byte accounting; a trace is decided
//     when its root span has arrived plus a wait, at a timeout, or when it
//     reaches a span/byte cap. Spans arriving after the decision follow it
//     (a cache of kept IDs with their threshold, a compact fingerprint set of
//     dropped IDs). Under memory pressure the oldest traces are decided early;
//     when the buffer cannot even hold traces for their wait, it switches to
//     stateless consistent sampling by trace ID (stress relief) until memory
//     falls back.
//   - Every decision is a consistent probability threshold in the
//     OpenTelemetry sense (tracestate ot=th:...;rv:...): a policy says "keep
//     with probability p", the trace's randomness rv decides, and kept spans
//     carry the applied threshold so downstream counts are unbiased
//     (adjusted count = 1/p).
//
// The model is one type, Trace, with its spans as pdata; receivers and the
// exporter (otlp.go) convert at the edge.
package sampling
