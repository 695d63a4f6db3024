#!/usr/bin/env bash
# bench/sampling/run.sh: srekit sampler against the OpenTelemetry Collector's
# tail sampling processor, side by side, on the same seeded workload from
# `srekit sampler eval`, with the same policies (srekit.yaml, otelcol.yaml).
#
#   OTELCOL_BIN=/path/to/otelcol-tail bench/sampling/run.sh [TRACES] [SPEEDUP]
#
# OTELCOL_BIN is a collector with otlpreceiver, tailsamplingprocessor and
# otlpexporter; docs/sampling.md says how to build one with the collector
# builder. Each sampler runs as its own process; the eval client sends the
# workload over OTLP/gRPC, receives the exports, and reads the sampler's CPU
# time and peak RSS from /proc. Printed: spans per CPU-second, peak memory,
# recall, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACES=${1:-50000}
SPEEDUP=${2:-200}
: "${OTELCOL_BIN:?set OTELCOL_BIN to a collector binary (see docs/sampling.md)}"
OUT=$(mktemp -d /tmp/srekit-bench-sampling.XXXXXX)
go build -o "$OUT/srekit" ./cmd/srekit

run() { # name, target, sink, command...
  local name=$1 target=$2 sink=$3; shift 3
  "$@" >"$OUT/$name.log" 2>&1 &
  local pid=$!
  sleep 2
  "$OUT/srekit" sampler eval --traces "$TRACES" --speedup "$SPEEDUP" --seed 1 \
    --target "$target" --sink "$sink" --pid "$pid" --settle 8s >"$OUT/$name.json"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "== srekit sampler ($TRACES traces, speedup $SPEEDUP)" >&2
run srekit 127.0.0.1:24317 127.0.0.1:24318 "$OUT/srekit" sampler --config bench/sampling/srekit.yaml --log-level warn
echo "== otelcol tail_sampling" >&2
run otelcol 127.0.0.1:34317 127.0.0.1:34318 "$OTELCOL_BIN" --config bench/sampling/otelcol.yaml

python3 - "$OUT/srekit.json" "$OUT/otelcol.json" <<'PY'
import json, sys
s, o = (json.load(open(p)) for p in sys.argv[1:3])
rows = [
  ("spans per CPU-second", "spans_per_cpu_second", "{:,.0f}"),
  ("spans per second (send)", "spans_per_second", "{:,.0f}"),
  ("CPU seconds", "cpu_seconds", "{:.2f}"),
  ("peak RSS MiB", "peak_rss_bytes", None),
  ("traces kept", "trace_fraction", "{:.4f}"),
  ("error recall", "error_recall", "{:.4f}"),
  ("slow-trace recall (key p99)", "slow_recall", "{:.4f}"),
  ("rare-key coverage", "rare_key_coverage", "{:.4f}"),
  ("completeness", "completeness", "{:.4f}"),
  ("representativeness", "representativeness", "{:.4f}"),
]
print(f"{'measure':32} {'srekit':>14} {'otelcol':>14}")
for label, key, fmt in rows:
    a, b = s.get(key, 0), o.get(key, 0)
    if fmt is None:
        a, b, fmt = a / 2**20, b / 2**20, "{:.1f}"
    print(f"{label:32} {fmt.format(a):>14} {fmt.format(b):>14}")
def ratio(a, b): return a / b if b else float("nan")
print()
print(f"throughput ratio (spans per CPU-second, srekit/otelcol): {ratio(s['spans_per_cpu_second'], o['spans_per_cpu_second']):.2f}x  (target >= 2)")
print(f"peak memory ratio (srekit/otelcol): {ratio(s['peak_rss_bytes'], o['peak_rss_bytes']):.2f}  (target <= 0.5)")
print(f"error recall: srekit {s['error_recall']:.4f}, otelcol {o['error_recall']:.4f}; slow recall: srekit {s['slow_recall']:.4f}, otelcol {o['slow_recall']:.4f}")
PY
echo "raw results: $OUT" >&2
