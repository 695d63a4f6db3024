#!/bin/sh
# bench/flame/run.sh: srekit flame against Brendan Gregg's FlameGraph scripts,
# side by side on the same inputs in one run, with the ratios printed.
#
#   FLAMEGRAPH_DIR=/path/to/FlameGraph bench/flame/run.sh
#
# FLAMEGRAPH_DIR is a checkout of https://github.com/brendangregg/FlameGraph
# (git clone https://github.com/brendangregg/FlameGraph); it is not part of
# srekit and is never committed here. Needs perl, go and GNU time
# (Debian: apt-get install perl time).
#
# 1. collapse: perf script output (FlameGraph's example-perf-stacks, from
#    ../shared/testdata, repeated to COLLAPSE_MB megabytes) through
#    stackcollapse-perf.pl and `srekit flame collapse` (GOMAXPROCS=1: one core).
#    Outputs must be byte-for-byte equal.
# 2. render: RENDER_STACKS unique stacks (synthetic, bench/flame/genstacks)
#    through flamegraph.pl and `srekit flame render`.
#
# Times are CPU seconds (user+sys) of the process, so that a busy machine
# skews both sides alike; wall seconds and peak RSS are printed too.
set -eu

: "${FLAMEGRAPH_DIR:?set FLAMEGRAPH_DIR to a FlameGraph checkout (git clone https://github.com/brendangregg/FlameGraph)}"
COLLAPSE_MB=${COLLAPSE_MB:-100}
RENDER_STACKS=${RENDER_STACKS:-200000}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
shared=${SHARED_TESTDATA:-$repo/../shared/testdata}
work=${BENCH_DIR:-$(mktemp -d /tmp/srekit-flame-bench.XXXXXX)}
mkdir -p "$work"

for tool in perl go; do
	command -v $tool >/dev/null || { echo "bench: $tool is needed" >&2; exit 1; }
done
if [ ! -x /usr/bin/time ]; then
	echo "bench: installing GNU time" >&2
	apt-get install -y -q time >/dev/null
fi

echo "building srekit and genstacks in $work"
(cd "$repo" && go build -o "$work/srekit" ./cmd/srekit && go build -o "$work/genstacks" ./bench/flame/genstacks)

# measure NAME CMD...: runs CMD, records "cpu wall rss_kb" in $work/NAME.time
measure() {
	name=$1; shift
	/usr/bin/time -f "%U %S %e %M" -o "$work/$name.raw" "$@"
	awk '{ printf "%.2f %.2f %d\n", $1 + $2, $3, $4 }' "$work/$name.raw" > "$work/$name.time"
}
field() { awk -v f="$2" '{ print $f }' "$work/$1.time"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "inf" }'; }

echo "== collapse: perf script output, ${COLLAPSE_MB} MB"
gzip -dc "$shared/flamegraph/example-perf-stacks.txt.gz" > "$work/one.txt"
one=$(wc -c < "$work/one.txt")
: > "$work/perf.txt"
while [ "$(wc -c < "$work/perf.txt")" -lt $((COLLAPSE_MB * 1000000)) ]; do cat "$work/one.txt" >> "$work/perf.txt"; done
bytes=$(wc -c < "$work/perf.txt")
measure collapse-perl sh -c "perl '$FLAMEGRAPH_DIR/stackcollapse-perf.pl' '$work/perf.txt' > '$work/perl.folded'"
measure collapse-srekit sh -c "GOMAXPROCS=1 '$work/srekit' flame collapse '$work/perf.txt' > '$work/srekit.folded'"
if cmp -s "$work/perl.folded" "$work/srekit.folded"; then same=yes; else same=NO; fi
pc=$(field collapse-perl 1); sc=$(field collapse-srekit 1)
printf "%-28s %10s %10s %10s %12s\n" "" "cpu s" "wall s" "peak MB" "MiB/s (cpu)"
for t in perl srekit; do
	c=$(field collapse-$t 1)
	printf "%-28s %10s %10s %10d %12s\n" "collapse $t" "$c" "$(field collapse-$t 2)" $(($(field collapse-$t 3) / 1024)) \
		"$(awk -v b="$bytes" -v c="$c" 'BEGIN { if (c > 0) printf "%.0f", b / 1048576 / c; else print "inf" }')"
done
echo "collapse: outputs identical: $same; srekit is $(ratio "$pc" "$sc")x faster (cpu), $(ratio "$(field collapse-perl 2)" "$(field collapse-srekit 2)")x (wall)"

echo "== render: $RENDER_STACKS unique stacks"
"$work/genstacks" -stacks "$RENDER_STACKS" > "$work/stacks.folded"
echo "input: $(wc -c < "$work/stacks.folded") bytes"
measure render-perl sh -c "perl '$FLAMEGRAPH_DIR/flamegraph.pl' '$work/stacks.folded' > '$work/perl.svg' 2>/dev/null"
measure render-srekit "$work/srekit" flame render "$work/stacks.folded" -o "$work/srekit.svg"
printf "%-28s %10s %10s %10s %12s\n" "" "cpu s" "wall s" "peak MB" "svg bytes"
for t in perl srekit; do
	printf "%-28s %10s %10s %10d %12d\n" "render $t" "$(field render-$t 1)" "$(field render-$t 2)" $(($(field render-$t 3) / 1024)) "$(wc -c < "$work/$t.svg")"
done
echo "render: srekit is $(ratio "$(field render-perl 1)" "$(field render-srekit 1)")x faster (cpu), $(ratio "$(field render-perl 2)" "$(field render-srekit 2)")x (wall), at 1/$(ratio "$(field render-perl 3)" "$(field render-srekit 3)") of the peak memory"
echo "frames drawn: perl $(grep -c "<title>" "$work/perl.svg" || true), srekit $(grep -c "<title>" "$work/srekit.svg" || true) (of which trimmed placeholders: $(grep -c "class=.trim." "$work/srekit.svg" || true))"
echo "work files in $work"
