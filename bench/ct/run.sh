#!/usr/bin/env bash
# Side-by-side throughput of `srekit ct watch` and SSLMate's certspotter on
# the same local CT log (an in-process test log with N real test
# certificates, RFC 6962 or static-ct-api) and the same watch list.
#
#   CERTSPOTTER=/path/to/certspotter bench/ct/run.sh [N] [rfc6962|static]
#
# certspotter is not fetched or built by this script: build it from
# https://github.com/SSLMate/certspotter (go build ./cmd/certspotter) and
# point CERTSPOTTER at the binary. Both tools get 4 parallel downloads of
# 1000 entries (certspotter through certspotter_download_jobs/size in the log
# list). certspotter has no "exit when caught up" mode, so its time is taken
# when its state file says it has verified the whole tree.
#
# Keep N a multiple of 256 for static logs: certspotter deliberately waits
# up to 5 minutes before reading a partial data tile, which would measure
# that policy rather than throughput.
#
# "findings" are not the same unit: srekit stores one finding per
# certificate per rule (precert and final merged, unparseable entries
# included); certspotter prints one notification per certificate or
# precertificate it discovers.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-102400}
API=${2:-rfc6962}
: "${CERTSPOTTER:?set CERTSPOTTER to a certspotter binary (see the comment at the top)}"
WORK=$(mktemp -d /tmp/srekit-ct-bench.XXXXXX)
trap 'kill $LOGPID 2>/dev/null || true; kill $CSPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
LOGPID=""; CSPID=""

go build -o "$WORK/srekit" ./cmd/srekit
go build -o "$WORK/logserver" ./bench/ct/logserver
STATIC=false; [ "$API" = static ] && STATIC=true
echo "== building a $API log of $N entries" >&2
"$WORK/logserver" -n "$N" -static="$STATIC" -dir "$WORK" > "$WORK/logserver.out" &
LOGPID=$!
until grep -q ready "$WORK/logserver.out" 2>/dev/null; do sleep 0.5; kill -0 $LOGPID; done
read -r _ URL SIZE EXPECTED < "$WORK/logserver.out"
echo "== log at $URL: $SIZE entries, $EXPECTED expected findings" >&2

now() { date +%s.%N; }
rss_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# srekit: --once exits when caught up and verified.
T0=$(now)
/usr/bin/env time -f "%M" -o "$WORK/srekit.rss" "$WORK/srekit" ct watch --once --no-progress \
  --db "$WORK/srekit.db" --log-list "$WORK/loglist.json" --watch-file "$WORK/watch-srekit.txt" \
  --workers 4 --batch 1000 2> "$WORK/srekit.err" || { cat "$WORK/srekit.err" >&2; exit 1; }
T1=$(now)
SREKIT_S=$(echo "$T1 - $T0" | bc -l)
SREKIT_FINDINGS=$("$WORK/srekit" ct findings --db "$WORK/srekit.db" --limit 0 -o csv | tail -n +2 | wc -l)
SREKIT_RSS=$(cat "$WORK/srekit.rss")

# certspotter: poll its state until the verified position reaches the tree size.
T0=$(now)
"$CERTSPOTTER" -logs "$WORK/loglist.json" -watchlist "$WORK/watch-certspotter.txt" \
  -state_dir "$WORK/cs-state" -stdout > "$WORK/cs.out" 2> "$WORK/cs.err" &
CSPID=$!
CS_RSS=0
while :; do
  kill -0 $CSPID 2>/dev/null || { echo "certspotter exited:" >&2; cat "$WORK/cs.err" >&2; exit 1; }
  R=$(rss_kb $CSPID); [ "${R:-0}" -gt "$CS_RSS" ] && CS_RSS=$R
  STATE=$(ls "$WORK"/cs-state/logs/*/state.json 2>/dev/null | head -1 || true)
  if [ -n "$STATE" ] && python3 - "$STATE" "$SIZE" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
v = (s.get("verified_position") or {}).get("size", 0)
sys.exit(0 if v >= int(sys.argv[2]) else 1)
PY
  then break; fi
  sleep 0.05
done
T1=$(now)
kill $CSPID; wait $CSPID 2>/dev/null || true; CSPID=""
CS_S=$(echo "$T1 - $T0" | bc -l)
CS_FINDINGS=$(grep -cE '^[0-9a-f]{64}:$' "$WORK/cs.out" || true)

printf '\n%-12s %10s %12s %10s %10s\n' tool seconds entries/s maxRSS_MB findings
printf '%-12s %10.2f %12.0f %10.1f %10s\n' srekit "$SREKIT_S" "$(echo "$SIZE / $SREKIT_S" | bc -l)" "$(echo "$SREKIT_RSS/1024" | bc -l)" "$SREKIT_FINDINGS"
printf '%-12s %10.2f %12.0f %10.1f %10s\n' certspotter "$CS_S" "$(echo "$SIZE / $CS_S" | bc -l)" "$(echo "$CS_RSS/1024" | bc -l)" "$CS_FINDINGS"
printf '\nratio (srekit entries/s / certspotter entries/s): %.2fx  [%s log, %s entries, expected findings %s]\n' \
  "$(echo "$CS_S / $SREKIT_S" | bc -l)" "$API" "$SIZE" "$EXPECTED"
