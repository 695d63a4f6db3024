#!/usr/bin/env bash
# Benchmark of `srekit caa check --file` (batch mode) against a local Knot
# authoritative server, with the usual tools as the anchor: BIND's `dig -f`
# (one process, queries in sequence) and Knot's `kdig` (many queries per
# process, run in parallel with xargs). The anchors only fetch the same
# records; srekit also follows aliases, checks the DNSSEC status and
# evaluates every name. srekit runs twice: with its default TTL cache (names
# under one parent share the parent's lookup) and with --cache 0 (every
# question asked, as the anchors do). Prints names per second, peak memory
# and the ratios.
#
#   bench/caa/run.sh [NAMES]       # default 20000 names
#
# Needs the Debian packages knot, knot-dnsutils and bind9-dnsutils
# (installed here when missing). Not run by `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20000}
CONC=${CONC:-64}

need=()
command -v knotd >/dev/null || [ -x /usr/sbin/knotd ] || need+=(knot)
command -v kdig >/dev/null || need+=(knot-dnsutils)
command -v dig >/dev/null || need+=(bind9-dnsutils)
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
KNOTD=$(command -v knotd || echo /usr/sbin/knotd)

D=$(mktemp -d /tmp/srekit-caa-bench.XXXXXX)
cleanup() { [ -n "${KPID:-}" ] && kill "$KPID" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$D"; }
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# The zone: an issue policy at the apex; every tenth name has its own set,
# every fiftieth is a CNAME to another name's records. Other names do not
# exist, so their climb is NXDOMAIN at the name, then the apex: the common case.
{
  echo '$TTL 3600'
  echo 'bench.test. IN SOA ns.bench.test. host.bench.test. 1 3600 600 86400 300'
  echo 'bench.test. IN NS ns.bench.test.'
  echo 'ns.bench.test. IN A 127.0.0.1'
  echo 'bench.test. IN CAA 0 issue "ca.example"'
  echo 'bench.test. IN CAA 0 iodef "mailto:security@bench.test"'
  for ((i = 0; i < N; i++)); do
    if ((i % 10 == 0)); then
      printf 'n%d.bench.test. IN CAA 0 issue "ca.example; validationmethods=dns-01"\n' "$i"
      printf 'n%d.bench.test. IN CAA 0 issue "other.example"\n' "$i"
    elif ((i % 50 == 5)); then
      printf 'n%d.bench.test. IN CNAME n%d.bench.test.\n' "$i" "$((i - 5))"
    fi
  done
} > "$D/bench.zone"
for ((i = 0; i < N; i++)); do echo "n$i.bench.test"; done > "$D/names.txt"

cat > "$D/knot.conf" <<CONF
server:
    listen: 127.0.0.1@$PORT
    rundir: $D
database:
    storage: $D/db
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: $D
    semantic-checks: off
    journal-content: none
zone:
  - domain: bench.test.
    file: bench.zone
CONF
"$KNOTD" -c "$D/knot.conf" 2>"$D/knot.log" &
KPID=$!
for _ in $(seq 100); do kdig @127.0.0.1 -p "$PORT" bench.test SOA +short >/dev/null 2>&1 && break; sleep 0.1; done

go build -o "$D/srekit" ./cmd/srekit

# Both sides ask the same questions: the name, then (when it has no records)
# the apex, as the RFC 8659 climb does; the anchors are told the list.
awk -v N="$N" '{ print $1 " CAA"; if (NR % 10 != 1 && NR % 50 != 6) print "bench.test CAA" }' "$D/names.txt" > "$D/queries.txt"
Q=$(wc -l < "$D/queries.txt")

now() { date +%s.%N; }
rate() { python3 -c "print(f'{$1/($3-$2):.0f}')"; }

echo "names: $N ($Q DNS queries on the climbs), server: knotd on 127.0.0.1:$PORT, cores: $(nproc)"

t0=$(now)
/usr/bin/time -f '%M' -o "$D/srekit.mem" "$D/srekit" caa check --file "$D/names.txt" --ca ca.example \
  --resolver "127.0.0.1:$PORT" --concurrency "$CONC" --method dns-01 > "$D/out.jsonl" || [ $? -eq 3 ]
t1=$(now)
srekit_rate=$(rate "$N" "$t0" "$t1")
lines=$(wc -l < "$D/out.jsonl")
allowed=$(grep -c '"decision":"allowed"' "$D/out.jsonl" || true)
forbidden=$(grep -c '"decision":"forbidden"' "$D/out.jsonl" || true)
undecided=$(grep -c '"decision":"cannot decide"' "$D/out.jsonl" || true)
printf 'srekit caa check --file: %6s names/s, peak RSS %s KiB (%s lines: %s allowed, %s forbidden, %s cannot decide)\n' \
  "$srekit_rate" "$(cat "$D/srekit.mem")" "$lines" "$allowed" "$forbidden" "$undecided"

# The same without the cache: every name's climb asks every question, as
# the anchors below do.
t0=$(now)
/usr/bin/time -f '%M' -o "$D/srekit-nc.mem" "$D/srekit" caa check --file "$D/names.txt" --ca ca.example \
  --resolver "127.0.0.1:$PORT" --concurrency "$CONC" --method dns-01 --cache 0 > "$D/out-nc.jsonl" || [ $? -eq 3 ]
t1=$(now)
nocache_rate=$(rate "$N" "$t0" "$t1")
cmp -s <(sort "$D/out.jsonl" | sed 's/"ms":[0-9.]*//g; s/,"cached":true//g' | sort) <(sed 's/"ms":[0-9.]*//g' "$D/out-nc.jsonl" | sort) \
  && same="same decisions" || same="DIFFERENT output"
printf 'srekit, --cache 0:        %6s names/s, peak RSS %s KiB (%s as with the cache)\n' "$nocache_rate" "$(cat "$D/srekit-nc.mem")" "$same"

t0=$(now)
/usr/bin/time -f '%M' -o "$D/dig.mem" dig @127.0.0.1 -p "$PORT" -f "$D/queries.txt" +noall +answer > "$D/dig.out"
t1=$(now)
dig_rate=$(rate "$N" "$t0" "$t1")
printf 'dig -f (sequential):      %6s names/s, peak RSS %s KiB\n' "$dig_rate" "$(cat "$D/dig.mem")"

t0=$(now)
sed 's/ CAA$//' "$D/queries.txt" | xargs -n 200 -P "$(nproc)" kdig @127.0.0.1 -p "$PORT" -t CAA +noall +answer > "$D/kdig.out"
t1=$(now)
kdig_rate=$(rate "$N" "$t0" "$t1")
printf 'kdig x%s (xargs -P):      %6s names/s\n' "$(nproc)" "$kdig_rate"

python3 -c "print(f'ratio srekit/dig: {$srekit_rate/$dig_rate:.1f}x   srekit/kdig: {$srekit_rate/$kdig_rate:.1f}x   (without the cache: {$nocache_rate/$dig_rate:.1f}x and {$nocache_rate/$kdig_rate:.1f}x)')"

# Flat memory: the same run with 5x the names must not need 5x the memory.
if [ "${FLAT:-1}" = 1 ]; then
  for ((k = 0; k < 5; k++)); do cat "$D/names.txt"; done > "$D/names5.txt"
  /usr/bin/time -f '%M' -o "$D/srekit5.mem" "$D/srekit" caa check --file "$D/names5.txt" --ca ca.example \
    --resolver "127.0.0.1:$PORT" --concurrency "$CONC" --method dns-01 > /dev/null || [ $? -eq 3 ]
  printf 'memory: %s KiB for %d names, %s KiB for %d names\n' "$(cat "$D/srekit.mem")" "$N" "$(cat "$D/srekit5.mem")" "$((5 * N))"
fi
