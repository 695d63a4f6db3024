#!/usr/bin/env bash
# bench/sampling/loadbalancing.sh: opt-in integration test of the two ways
# to spread tail sampling over several `srekit sampler` processes, each of
# which must see every span of the traces it decides:
#
#   lb          an OpenTelemetry Collector with the load_balancing exporter
#               (routing_key: traceID, static resolver listing both samplers)
#               in front of two samplers;
#   peers       two samplers with --peers (rendezvous hashing of the trace
#               ID): the workload goes to sampler A, which forwards the
#               traces that B owns;
#   single      one sampler alone at the same load, for comparison;
#   lb-service  negative control: the collector routes by service.name, so
#               a trace's spans are split between the samplers; the checks
#               below must catch it (completeness drops, decisions double).
#
#   OTELCOL_LB_BIN=/path/to/otelcol-lb bench/sampling/loadbalancing.sh [TRACES] [SPEEDUP]
#   MODES="single lb peers lb-service" (default), SEED=1 (default)
#
# OTELCOL_LB_BIN is a collector with otlpreceiver, loadbalancingexporter and
# otlpexporter; this script never builds or fetches it (docs/sampling.md,
# "Scale-out", says how to build one with the collector builder). Without
# it, only the single and peers modes run.
#
# All samplers export to one sink, `srekit sampler eval --target`, which
# sends the seeded workload to the front (collector or sampler A), receives
# the kept spans and scores them. Printed per mode: completeness of kept
# traces, error/slow recall, rare-key coverage; how the spans and trace
# decisions were split between the samplers (from their /metrics); whether
# every kept trace was decided by exactly one sampler (the samplers' kept
# decisions add up to the kept traces the sink saw); CPU seconds and peak
# RSS of every process. Exits non-zero when lb or peers fails a check.
set -euo pipefail
cd "$(dirname "$0")/../.."
TRACES=${1:-50000}
SPEEDUP=${2:-10}
SEED=${SEED:-1}
MODES=${MODES:-"single lb peers lb-service"}
if [ -z "${OTELCOL_LB_BIN:-}" ]; then
  echo "OTELCOL_LB_BIN not set (see docs/sampling.md): running only the single and peers modes" >&2
  MODES=$(echo "$MODES" | tr ' ' '\n' | { grep -v '^lb' || true; } | tr '\n' ' ')
  [ -n "${MODES// /}" ] || { echo "nothing to run without OTELCOL_LB_BIN" >&2; exit 2; }
elif [ ! -x "$OTELCOL_LB_BIN" ]; then
  echo "OTELCOL_LB_BIN=$OTELCOL_LB_BIN is not an executable file" >&2
  exit 2
fi
OUT=$(mktemp -d /tmp/srekit-bench-lb.XXXXXX)
go build -o "$OUT/srekit" ./cmd/srekit

A=127.0.0.1:25317 A_MET=127.0.0.1:25319
B=127.0.0.1:26317 B_MET=127.0.0.1:26319
SINK=127.0.0.1:27318 FRONT=127.0.0.1:28317

# The samplers use the policies and buffer of the main bench (srekit.yaml),
# with their own addresses.
for s in A B; do
  eval "grpc=\$$s met=\$${s}_MET"
  sed -e "s/127.0.0.1:24317/$grpc/" -e "s/127.0.0.1:24318/$SINK/" -e "s/127.0.0.1:24319/$met/" \
    bench/sampling/srekit.yaml >"$OUT/sampler-$s.yaml"
done
for key in traceID service; do
  cat >"$OUT/otelcol-$key.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "$FRONT", max_recv_msg_size_mib: 64}
exporters:
  load_balancing:
    routing_key: $key
    protocol:
      otlp:
        tls: {insecure: true}
        sending_queue: {queue_size: 10000}
    resolver:
      static: {hostnames: ["$A", "$B"]}
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [load_balancing]}
  telemetry:
    metrics: {level: none}
YAML
done

PIDS=()
cleanup() { # the front first, so it drains to live samplers
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  PIDS=()
}
trap cleanup EXIT

wait_port() { # host:port
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  return 1
}
start() { # name, command...
  local name=$1; shift
  "$@" >"$OUT/$MODE-$name.log" 2>&1 &
  PIDS+=($!)
  echo "$name $!" >>"$OUT/$MODE.pids"
}
cpu() { # pid: user+system CPU seconds
  awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14 + $15) / t}' "/proc/$1/stat"
}

echo "load average before: $(cat /proc/loadavg)" >&2
for MODE in $MODES; do
  echo "== $MODE ($TRACES traces, speedup $SPEEDUP, seed $SEED)" >&2
  : >"$OUT/$MODE.pids"
  case $MODE in
  single)
    start A "$OUT/srekit" sampler --config "$OUT/sampler-A.yaml" --log-level warn
    wait_port "$A"; target=$A ;;
  peers)
    start A "$OUT/srekit" sampler --config "$OUT/sampler-A.yaml" --log-level warn --peers "$A,$B" --peer-self "$A"
    start B "$OUT/srekit" sampler --config "$OUT/sampler-B.yaml" --log-level warn --peers "$A,$B" --peer-self "$B"
    wait_port "$A"; wait_port "$B"; target=$A ;;
  lb | lb-service)
    start A "$OUT/srekit" sampler --config "$OUT/sampler-A.yaml" --log-level warn
    start B "$OUT/srekit" sampler --config "$OUT/sampler-B.yaml" --log-level warn
    wait_port "$A"; wait_port "$B"
    key=traceID; [ "$MODE" = lb-service ] && key=service
    start otelcol "$OTELCOL_LB_BIN" --config "$OUT/otelcol-$key.yaml"
    wait_port "$FRONT"; target=$FRONT ;;
  *) echo "unknown mode $MODE (single, lb, peers, lb-service)" >&2; exit 2 ;;
  esac
  front_pid=$(awk 'END {print $2}' "$OUT/$MODE.pids")
  while read -r name pid; do echo "$name $(cpu "$pid")"; done <"$OUT/$MODE.pids" >"$OUT/$MODE.cpu0"
  "$OUT/srekit" sampler eval --traces "$TRACES" --speedup "$SPEEDUP" --seed "$SEED" \
    --target "$target" --sink "$SINK" --pid "$front_pid" --settle 8s --outcomes "$OUT/$MODE.tsv" >"$OUT/$MODE.json"
  while read -r name pid; do
    echo "$name $(cpu "$pid") $(awk '/VmHWM/ {print $2}' "/proc/$pid/status")"
  done <"$OUT/$MODE.pids" >"$OUT/$MODE.cpu1"
  curl -sf "$A_MET/metrics" >"$OUT/$MODE-A.metrics"
  [ "$MODE" = single ] || curl -sf "$B_MET/metrics" >"$OUT/$MODE-B.metrics"
  cleanup
done
echo "load average after: $(cat /proc/loadavg)" >&2

python3 - "$OUT" $MODES <<'PY'
import csv, json, sys
out, modes = sys.argv[1], sys.argv[2:]
def metrics(path):
    m = {}
    try:
        for line in open(path):
            if line.startswith("srekit_sampler_") and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                m[k] = float(v)
    except OSError:
        pass
    return m
def outcomes(mode):
    return {r["trace_id"]: r for r in csv.DictReader(open(f"{out}/{mode}.tsv"), delimiter="\t")}
failed = []
for mode in modes:
    r = json.load(open(f"{out}/{mode}.json"))
    cpu0 = {l.split()[0]: float(l.split()[1]) for l in open(f"{out}/{mode}.cpu0")}
    procs = [l.split() for l in open(f"{out}/{mode}.cpu1")]
    traces = r["Workload"]["Traces"]
    print(f"{mode}: {r['spans_sent']:,} spans of {traces:,} traces sent at {r['spans_per_second']:,.0f} spans/s")
    print(f"  completeness of kept traces {r['completeness']:.4f} ({r['Complete']}/{r['KeptTraces']}), "
          f"error recall {r['error_recall']:.4f} ({r['ErrorsKept']}/{r['ErrorTraces']}), "
          f"slow-trace recall {r['slow_recall']:.4f}, rare-key coverage {r['rare_key_coverage']:.4f}, "
          f"traces kept {r['trace_fraction']:.4f}, representativeness {r['representativeness']:.4f}")
    total_cpu = 0.0
    parts = []
    for name, c1, hwm in procs:
        c = float(c1) - cpu0[name]
        total_cpu += c
        parts.append(f"{name} {c:.2f} CPU-s, peak RSS {int(hwm) / 1024:.0f} MiB")
    print(f"  processes: {'; '.join(parts)}; total {total_cpu:.2f} CPU-s = {r['spans_sent'] / total_cpu:,.0f} spans per CPU-second")
    ms = {s: metrics(f"{out}/{mode}-{s}.metrics") for s in ("A", "B")}
    ms = {s: m for s, m in ms.items() if m}
    recv = {s: m.get('srekit_sampler_spans_total{outcome="received"}', 0) for s, m in ms.items()}
    kept = {s: m.get('srekit_sampler_traces_total{outcome="kept"}', 0) for s, m in ms.items()}
    dec = {s: kept[s] + m.get('srekit_sampler_traces_total{outcome="dropped"}', 0) for s, m in ms.items()}
    total = sum(recv.values()) or 1
    split = ", ".join(f"{s} {recv[s]:,.0f} ({100 * recv[s] / total:.1f}%)" for s in recv)
    print(f"  spans decided per sampler: {split}; sum {sum(recv.values()):,.0f}")
    print(f"  traces decided per sampler: {', '.join(f'{s} {dec[s]:,.0f} (kept {kept[s]:,.0f})' for s in dec)}; "
          f"sum {sum(dec.values()):,.0f} for {traces:,} traces")
    trig = {s: {k.split('"')[1]: v for k, v in m.items() if k.startswith("srekit_sampler_decisions_total") and v} for s, m in ms.items()}
    late = {s: m.get('srekit_sampler_late_spans_total{decision="kept"}', 0) + m.get('srekit_sampler_late_spans_total{decision="dropped"}', 0) for s, m in ms.items()}
    print(f"  decision triggers: {'; '.join(f'{s} ' + ', '.join(f'{k} {v:,.0f}' for k, v in t.items()) for s, t in trig.items())}; "
          f"late spans {', '.join(f'{s} {v:,.0f}' for s, v in late.items())}")
    one = sum(kept.values()) == r["KeptTraces"]
    print(f"  every kept trace decided by exactly one sampler (kept decisions {sum(kept.values()):,.0f} = kept traces at the sink {r['KeptTraces']:,}): {'yes' if one else 'NO'}")
    if mode != "single" and "single" in modes:
        a, b = outcomes("single"), outcomes(mode)
        diff = sum(1 for t in a if (int(a[t]["kept_spans"]) > 0) != (int(b[t]["kept_spans"]) > 0))
        print(f"  traces kept differently from the single sampler: {diff} of {len(a):,}")
    if mode in ("lb", "peers"):
        ok = r["completeness"] >= 0.999 and r["error_recall"] == 1.0 and one and len(recv) == 2 and min(recv.values()) > 0
        print(f"  {mode}: {'PASS' if ok else 'FAIL'}")
        if not ok:
            failed.append(mode)
    elif mode == "lb-service":
        caught = r["completeness"] < 0.999 or not one
        print(f"  negative control: split traces {'detected' if caught else 'NOT detected'}")
        if not caught:
            failed.append(mode)
    print()
if failed:
    print("FAILED: " + " ".join(failed))
    sys.exit(1)
PY
echo "raw results (JSON scorecards, metrics, per-trace outcomes, logs): $OUT" >&2
