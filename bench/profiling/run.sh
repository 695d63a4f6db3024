#!/usr/bin/env bash
# bench/profiling/run.sh: the profiling service's two performance targets,
# measured in one run, side by side with the anchor.
#
#  1. Merge 1,000 stored CPU profiles of a real service into one profile:
#     srekit (from its SQLite store) vs `go tool pprof -proto` merging the
#     same files. Prints both times and the ratio.
#  2. Ingest rate: pprof uploads per second to /ingest on SQLite.
#
# The anchor, `go tool pprof`, ships with Go; nothing is downloaded.
# Environment: N (profiles, 1000), MS (milliseconds per profile, 100),
# PROFILES (a directory of *.pb.gz to reuse instead of generating),
# WORKERS (ingest clients, 8), ROUNDS (times the profiles are uploaded, 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${N:-1000}
MS=${MS:-100}
WORKERS=${WORKERS:-8}
ROUNDS=${ROUNDS:-1}
work=$(mktemp -d /tmp/srekit-bench-profiling.XXXXXX)
trap 'rm -rf "$work"' EXIT

go build -o "$work/srekit" ./cmd/srekit
go build -o "$work/genprofiles" ./bench/profiling/genprofiles
go build -o "$work/ingest" ./bench/profiling/ingest

profiles=${PROFILES:-}
if [ -z "$profiles" ]; then
  profiles="$work/profiles"
  echo "== generating $N CPU profiles of ${MS}ms of a loaded HTTP service" >&2
  "$work/genprofiles" -n "$N" -ms "$MS" -dir "$profiles"
fi
files=("$profiles"/*.pb.gz)
echo "== ${#files[@]} profiles, $(du -sh "$profiles" | cut -f1) on disk" >&2

db="$work/bench.db"
"$work/srekit" --db "$db" profiling import --name 'bench{env=bench}' "${files[@]}" >&2

now() { date +%s.%N; }
best() { # best of 3 runs of "$@", in seconds
  local b=""
  for _ in 1 2 3; do
    local s e t
    s=$(now); "$@" >/dev/null 2>&1; e=$(now)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  echo "$b"
}

srekit_t=$(best "$work/srekit" --db "$db" profiling merge --kind cpu --format folded -o "$work/merged.folded")
pprof_t=$(best go tool pprof -proto -output "$work/merged.pb" "${files[@]}")
"$work/srekit" --db "$db" profiling merge --kind cpu --format folded -o "$work/merged.folded"
go tool pprof -proto -output "$work/merged.pb" "${files[@]}" 2>/dev/null
# The same totals from both: srekit's merged cpu nanoseconds vs pprof's.
ours=$(awk '{s+=$NF} END {printf "%.0f", s}' "$work/merged.folded")
theirs=$(go tool pprof -raw -sample_index=cpu "$work/merged.pb" 2>/dev/null | awk '/^Samples:/{f=1;next} /^Locations/{f=0} f && $1 ~ /^[0-9]+$/ && NF>=2 {s+=$2} END {printf "%.0f", s}')
printf 'merge %d stored CPU profiles: srekit %.3fs, go tool pprof %.3fs, ratio pprof/srekit %.2fx\n' \
  "${#files[@]}" "$srekit_t" "$pprof_t" "$(echo "$pprof_t / $srekit_t" | bc -l)"
echo "merged totals (cpu nanoseconds): srekit $ours, pprof $theirs"

"$work/ingest" -dir "$profiles" -workers "$WORKERS" -rounds "$ROUNDS"
