#!/usr/bin/env bash
# bench/sampling/run.sh: srekit sampler against the OpenTelemetry Collector's
# tail sampling processor, side by side, on the same seeded workloads from
# `srekit sampler eval`, with the same policies, decision wait and decision
# caches (srekit.yaml, otelcol.yaml).
#
#   OTELCOL_BIN=/path/to/otelcol-tail bench/sampling/run.sh [TRACES] [SPEEDUP]
#   SEEDS="1 2 3" (default) runs one workload per seed.
#
# OTELCOL_BIN is a collector with otlpreceiver, tailsamplingprocessor and
# otlpexporter; docs/sampling.md says how to build one with the collector
# builder. Each sampler runs as its own process; the eval client sends the
# workload over OTLP/gRPC, receives the exports, and reads the sampler's CPU
# time and peak RSS from /proc. SPEEDUP (default 10) replays the 60 simulated
# seconds of the workload 10x faster: about 59,000 spans/s offered, a load
# both samplers sustain on 2 cores, so peak memory is compared at equal load
# (at a load neither sustains, each buffers whatever its own ingest rate
# lets in, and the faster one is penalised).
#
# A third run per seed uses srekit's recommended policies
# (srekit-recommended.yaml: learned per-key latency), which the collector
# cannot express. Printed: per seed and mean ± sd: spans per CPU-second,
# peak RSS, kept fraction, recall per class, and the ratios.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACES=${1:-50000}
SPEEDUP=${2:-10}
SEEDS=${SEEDS:-"1 2 3"}
: "${OTELCOL_BIN:?set OTELCOL_BIN to a collector binary (see docs/sampling.md)}"
OUT=$(mktemp -d /tmp/srekit-bench-sampling.XXXXXX)
go build -o "$OUT/srekit" ./cmd/srekit
echo "load average before: $(cat /proc/loadavg)" >&2

run() { # name, seed, target, sink, command...
  local name=$1 seed=$2 target=$3 sink=$4; shift 4
  "$@" >"$OUT/$name-$seed.log" 2>&1 &
  local pid=$!
  sleep 2
  "$OUT/srekit" sampler eval --traces "$TRACES" --speedup "$SPEEDUP" --seed "$seed" \
    --target "$target" --sink "$sink" --pid "$pid" --settle 8s --outcomes "$OUT/$name-$seed.tsv" >"$OUT/$name-$seed.json"
  case $name in srekit*) curl -s 127.0.0.1:24319/metrics >"$OUT/$name-$seed.metrics" || true ;; esac
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for seed in $SEEDS; do
  echo "== seed $seed: srekit sampler ($TRACES traces, speedup $SPEEDUP)" >&2
  run srekit "$seed" 127.0.0.1:24317 127.0.0.1:24318 "$OUT/srekit" sampler --config bench/sampling/srekit.yaml --log-level warn
  echo "== seed $seed: otelcol tail_sampling" >&2
  run otelcol "$seed" 127.0.0.1:34317 127.0.0.1:34318 "$OTELCOL_BIN" --config bench/sampling/otelcol.yaml
  echo "== seed $seed: srekit sampler, recommended policies" >&2
  run srekit-rec "$seed" 127.0.0.1:24317 127.0.0.1:24318 "$OUT/srekit" sampler --config bench/sampling/srekit-recommended.yaml --log-level warn
done
echo "load average after: $(cat /proc/loadavg)" >&2

python3 - "$OUT" $SEEDS <<'PY'
import json, statistics, sys
out, seeds = sys.argv[1], sys.argv[2:]
runs = {n: [json.load(open(f"{out}/{n}-{s}.json")) for s in seeds] for n in ("srekit", "otelcol", "srekit-rec")}
rows = [
  ("spans per CPU-second", "spans_per_cpu_second", "{:,.0f}"),
  ("spans per second (send)", "spans_per_second", "{:,.0f}"),
  ("CPU seconds", "cpu_seconds", "{:.2f}"),
  ("peak RSS MiB", "peak_rss_bytes", "mib"),
  ("traces kept", "trace_fraction", "{:.4f}"),
  ("error recall", "error_recall", "{:.4f}"),
  ("slow-trace recall (key p99)", "slow_recall", "{:.4f}"),
  ("rare-key coverage", "rare_key_coverage", "{:.4f}"),
  ("completeness", "completeness", "{:.4f}"),
  ("representativeness", "representativeness", "{:.4f}"),
]
def val(r, key):
    v = r.get(key, 0) or 0
    return v / 2**20 if key == "peak_rss_bytes" else v
def fmt(f, v):
    return f"{v:.1f}" if f == "mib" else f.format(v)
def ms(vals, f):
    if len(vals) == 1:
        return fmt(f, vals[0])
    return f"{fmt(f, statistics.mean(vals))} ± {fmt(f, statistics.stdev(vals))}"
for i, s in enumerate(seeds):
    print(f"seed {s}: {'measure':30} {'srekit':>12} {'otelcol':>12} {'srekit-rec':>12}")
    for label, key, f in rows:
        print(f"        {label:30} " + " ".join(f"{fmt(f, val(runs[n][i], key)):>12}" for n in runs))
    print()
print(f"mean ± sd over seeds {' '.join(seeds)}: {'measure':30} {'srekit':>20} {'otelcol':>20} {'srekit-rec':>20}")
for label, key, f in rows:
    print(f"{'':{len(' '.join(seeds)) + 26}} {label:30} " + " ".join(f"{ms([val(r, key) for r in runs[n]], f):>20}" for n in runs))
print()
def ratios(a, b, key):
    return [val(x, key) / val(y, key) if val(y, key) else float("nan") for x, y in zip(runs[a], runs[b])]
tp = ratios("srekit", "otelcol", "spans_per_cpu_second")
mem = ratios("srekit", "otelcol", "peak_rss_bytes")
send = ratios("srekit", "otelcol", "spans_per_second")
print(f"equal load: offered spans/s srekit/otelcol per seed: {', '.join(f'{x:.2f}' for x in send)}")
print(f"throughput ratio (spans per CPU-second, srekit/otelcol): {ms(tp, '{:.2f}')}x  (target >= 2)")
print(f"peak memory ratio (peak RSS, srekit/otelcol): {ms(mem, '{:.2f}')}  (target <= 0.5)")
for label, key in (("error recall", "error_recall"), ("slow-trace recall", "slow_recall"), ("rare-key coverage", "rare_key_coverage")):
    s, o, r = ([val(x, key) for x in runs[n]] for n in ("srekit", "otelcol", "srekit-rec"))
    print(f"{label}: srekit {ms(s, '{:.4f}')}, otelcol {ms(o, '{:.4f}')}, srekit recommended {ms(r, '{:.4f}')}"
          f"  (srekit - otelcol per seed: {', '.join(f'{a - b:+.4f}' for a, b in zip(s, o))})")
# Why the slow-trace recalls differ, trace by trace: the fixed 500ms
# latency policy keeps the same traces in both; the rest of the slow traces
# are kept only by each sampler's 5% coin, whose hashes are independent.
import csv
def outcomes(name, seed):
    return {r["trace_id"]: r for r in csv.DictReader(open(f"{out}/{name}-{seed}.tsv"), delimiter="\t")}
for seed in seeds:
    so, oo = outcomes("srekit", seed), outcomes("otelcol", seed)
    cats = {}
    for tid, r in so.items():
        if r["slow"] != "true":
            continue
        over = float(r["duration_ms"]) > 500
        k = (over, int(r["kept_spans"]) > 0, int(oo[tid]["kept_spans"]) > 0)
        cats[k] = cats.get(k, 0) + 1
    n_over = sum(v for k, v in cats.items() if k[0])
    n_under = sum(v for k, v in cats.items() if not k[0])
    print(f"seed {seed}: slow traces over 500ms: {n_over}, kept by srekit {sum(v for k, v in cats.items() if k[0] and k[1])}, by otelcol {sum(v for k, v in cats.items() if k[0] and k[2])}; "
          f"slow under 500ms: {n_under}, kept by srekit {sum(v for k, v in cats.items() if not k[0] and k[1])} ({100 * sum(v for k, v in cats.items() if not k[0] and k[1]) / max(n_under, 1):.1f}%), "
          f"by otelcol {sum(v for k, v in cats.items() if not k[0] and k[2])} ({100 * sum(v for k, v in cats.items() if not k[0] and k[2]) / max(n_under, 1):.1f}%), by both {cats.get((False, True, True), 0)}")
    for name in ("srekit", "srekit-rec"):
        try:
            m = open(f"{out}/{name}-{seed}.metrics").read()
        except OSError:
            continue
        early = [l for l in m.splitlines() if l.startswith('srekit_sampler_decisions_total{trigger="memory"}') or l.startswith("srekit_sampler_stress_activations_total")]
        print(f"        {name}: " + ", ".join(early))
kf = [(val(x, "trace_fraction"), val(y, "trace_fraction")) for x, y in zip(runs["srekit-rec"], runs["otelcol"])]
print(f"kept fraction, srekit recommended vs otelcol per seed: {', '.join(f'{a:.4f} vs {b:.4f}' for a, b in kf)}")
PY
echo "raw results (JSON scorecards, per-trace outcomes *.tsv, logs): $OUT" >&2
