#!/usr/bin/env bash
# Replication simulator benchmark, the issue's target: 1,000 nodes, 1,000,000
# blocks x 3 replicas, 6 simulated hours at 1 s resolution, under 30 s and
# 2 GiB on 2 cores. Runs the worst case (the naive checker through a
# brown-out: a storm for five hours, the checker scanning every block each
# pass) and the mitigated checker, and prints CPU time, wall time and peak
# memory of each. There is no anchor: no public tool simulates a replica
# checker under load, so the figures stand against the target. Not run by
# `make test`.
#
#   bench/replication/run.sh
#   NODES=2000 BLOCKS=2000000 DURATION=6h bench/replication/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
NODES=${NODES:-1000} BLOCKS=${BLOCKS:-1000000} DURATION=${DURATION:-6h} SCENARIO=${SCENARIO:-brownout}
work=$(mktemp -d /tmp/srekit-bench-repl.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/srekit" ./cmd/srekit
printf '%d nodes, %d blocks x 3, %s at 1 s, scenario %s\n' "$NODES" "$BLOCKS" "$DURATION" "$SCENARIO"
for m in none all; do
  out=$( { /usr/bin/time -f "%U %S %e %M" "$work/srekit" replication run --nodes "$NODES" --racks $((NODES / 40 > 0 ? NODES / 40 : 1)) \
      --blocks "$BLOCKS" --duration "$DURATION" --scenario "$SCENARIO" --mitigations "$m" --every "$DURATION" > "$work/out.txt"; } 2>&1 )
  read -r u s w rss <<<"$(echo "$out" | tail -1)"
  verdict=$(grep '^verdict' "$work/out.txt" | cut -c1-110)
  label=naive; [ "$m" = all ] && label=mitigated
  printf '%-9s CPU %6.1f s (user %s + sys %s), wall %6.1f s, peak RSS %5d MiB\n          %s\n' \
    "$label" "$(echo "$u + $s" | bc -l)" "$u" "$s" "$w" $((rss / 1024)) "$verdict"
done
