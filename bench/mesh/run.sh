#!/usr/bin/env bash
# bench/mesh/run.sh: srekit mesh against HAProxy and nginx (Debian packages,
# installed here when missing) as the same reverse proxy in front of the same
# Go backend, on loopback.
#   1. maximum throughput with wrk (keep-alive, 64 connections);
#   2. latency under a constant-rate open-loop load at 50% of the lowest of
#      the three maxima, and the p99 each proxy adds over going direct;
#   3. the regions experiment: three backends on 127.0.0.2/.3/.4 with 5, 25
#      and 60 ms of delay; p50/p99 seen by clients with srekit's P2C peak-EWMA
#      balancer (alone and with the front door's region set to eu) versus
#      least request and round robin.
# Ratios are printed as srekit / anchor. Environment: DURATION (seconds per
# wrk run, default 10), RATE_SECONDS (per open-loop run, default 5),
# FRACTION (share of the lowest maximum for the latency run, default 0.5),
# RATE (requests/s for the latency run instead of FRACTION of the maximum),
# ROUNDS (latency rounds, targets interleaved, default 3; RATE_SECONDS each),
# TP_ROUNDS (throughput rounds, targets interleaved, default 3),
# PARTS (any of "throughput latency regions", default all three),
# WORKERS (nginx workers, haproxy threads and srekit GOMAXPROCS, default 2),
# BASE_PORT (first of the loopback ports used, default 27180).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
RATE_SECONDS=${RATE_SECONDS:-5}
WORKERS=${WORKERS:-2}
FRACTION=${FRACTION:-0.5}
ROUNDS=${ROUNDS:-3}
TP_ROUNDS=${TP_ROUNDS:-3}
REGION_SECONDS=${REGION_SECONDS:-10}
PARTS=${PARTS:-"throughput latency regions"}
has() { [[ " $PARTS " == *" $1 "* ]]; }
W=$(mktemp -d /tmp/srekit-bench-mesh.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
trap cleanup EXIT

need=()
for p in haproxy nginx wrk; do command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

echo "building srekit and the bench tools" >&2
go build -o "$W/srekit" ./cmd/srekit
go build -o "$W/backend" ./bench/mesh/backend
go build -o "$W/load" ./bench/mesh/load

B=${BASE_PORT:-27180}
BE=127.0.0.1:$B SK=127.0.0.1:$((B+1)) HA=127.0.0.1:$((B+2)) NG=127.0.0.1:$((B+3)) ADMIN=127.0.0.1:$((B+4))
"$W/backend" -addr $BE & PIDS+=($!); BE_PID=$!

cat > "$W/mesh.yaml" <<YAML
admin: $ADMIN
listeners: [{addr: "$SK"}]
routes: [{cluster: app}]
clusters:
  - name: app
    endpoints: [{address: "$BE"}]
YAML
GOMAXPROCS=$WORKERS "$W/srekit" mesh --config "$W/mesh.yaml" --log-level warn & PIDS+=($!); SK_PID=$!

cat > "$W/haproxy.cfg" <<CFG
global
  nbthread $WORKERS
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
  option forwardfor
frontend fe
  bind $HA
  default_backend be
backend be
  server app $BE maxconn 1000
CFG
"$HAPROXY" -f "$W/haproxy.cfg" -db >"$W/haproxy.log" 2>&1 & PIDS+=($!); HA_PID=$!

mkdir -p "$W/nginx"
cat > "$W/nginx.conf" <<CFG
daemon off;
worker_processes $WORKERS;
pid $W/nginx.pid;
error_log $W/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/nginx; proxy_temp_path $W/nginx; fastcgi_temp_path $W/nginx;
  uwsgi_temp_path $W/nginx; scgi_temp_path $W/nginx;
  upstream app { server $BE; keepalive 256; }
  server {
    listen $NG;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    }
  }
}
CFG
"$NGINX" -c "$W/nginx.conf" -p "$W/nginx" & PIDS+=($!); NG_PID=$!

sleep 1.5
for a in $BE $SK $HA $NG; do
  curl -fsS -o /dev/null "http://$a/" || { echo "no answer from $a" >&2; cat "$W/haproxy.log" "$W/nginx/error.log" >&2 2>/dev/null; exit 1; }
done

# cpu_ticks PID: user+system clock ticks of a process and its children
# threads/processes (nginx workers), from /proc.
cpu_ticks() {
  local t=0 p
  for p in "$1" $(pgrep -P "$1" || true); do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo $t
}
HZ=$(getconf CLK_TCK)
declare -A MAX CPU
declare -A PID_OF=([direct]=$BE_PID [srekit]=$SK_PID [haproxy]=$HA_PID [nginx]=$NG_PID)
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
if has throughput || { has latency && [ -z "${RATE:-}" ]; }; then
echo; echo "== maximum throughput (wrk -t2 -c64 -d${DURATION}s, $TP_ROUNDS rounds, targets interleaved; median of rounds) and the proxy's CPU per request"
for n in direct:$BE srekit:$SK haproxy:$HA nginx:$NG; do
  wrk -t2 -c64 -d2s "http://${n#*:}/" >/dev/null 2>&1 || true   # warm pools
done
declare -A ALLMAX ALLCPU
for r in $(seq "$TP_ROUNDS"); do
  for n in direct:$BE srekit:$SK haproxy:$HA nginx:$NG; do
    name=${n%%:*}; addr=${n#*:}
    c0=$(cpu_ticks "${PID_OF[$name]}")
    out=$(wrk -t2 -c64 -d"${DURATION}s" "http://$addr/")
    c1=$(cpu_ticks "${PID_OF[$name]}")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    ALLMAX[$name]+="$rps "; ALLCPU[$name]+="$cpu "
    printf "round %d %-8s %10.0f requests/s   %6s CPU us/request   load average %s\n" "$r" "$name" "$rps" "$cpu" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
for name in direct srekit haproxy nginx; do
  MAX[$name]=$(median <<<"${ALLMAX[$name]}"); CPU[$name]=$(median <<<"${ALLCPU[$name]}")
  printf "%-8s median %10.0f requests/s   %6s CPU us/request (%s)\n" "$name" "${MAX[$name]}" "${CPU[$name]}" \
    "$([ $name = direct ] && echo backend || echo proxy only)"
done
echo "CPU per request srekit/haproxy: $(ratio "${CPU[srekit]}" "${CPU[haproxy]}")   srekit/nginx: $(ratio "${CPU[srekit]}" "${CPU[nginx]}")"
echo "srekit/haproxy throughput: $(ratio "${MAX[srekit]}" "${MAX[haproxy]}")   srekit/nginx: $(ratio "${MAX[srekit]}" "${MAX[nginx]}")"
fi

if has latency; then
[ -n "${RATE:-}" ] || RATE=$(printf "%s\n" "${MAX[srekit]}" "${MAX[haproxy]}" "${MAX[nginx]}" | sort -g | head -1 | awk -v f="$FRACTION" '{printf "%d", $1 * f}')
echo; echo "== latency at a constant $RATE requests/s, open loop, $ROUNDS rounds of ${RATE_SECONDS}s each, targets interleaved; median of rounds"
declare -A P99 P50 ALL50 ALL99
for r in $(seq "$ROUNDS"); do
  for n in direct:$BE srekit:$SK haproxy:$HA nginx:$NG; do
    name=${n%%:*}; addr=${n#*:}
    c0=$(cpu_ticks "${PID_OF[$name]}")
    out=$("$W/load" -url "http://$addr/" -rate "$RATE" -duration "${RATE_SECONDS}s" -warmup 1s)
    c1=$(cpu_ticks "${PID_OF[$name]}")
    ALL50[$name]+="$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$out") "
    ALL99[$name]+="$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out") "
    # CPU per request at this rate (warm-up requests included in the count).
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$RATE" -v s="$RATE_SECONDS" 'BEGIN { printf "%.1f", t / hz * 1e6 / (n * (s + 1)) }')
    printf "round %d %-8s %s cpu_us_per_request=%s\n" "$r" "$name" "$out" "$cpu"
  done
done
for name in direct srekit haproxy nginx; do
  P50[$name]=$(median <<<"${ALL50[$name]}"); P99[$name]=$(median <<<"${ALL99[$name]}")
  printf "%-8s median p50 %8.3f ms  p99 %8.3f ms\n" "$name" "${P50[$name]}" "${P99[$name]}"
done
for name in srekit haproxy nginx; do
  awk -v n=$name -v p=${P99[$name]} -v d=${P99[direct]} -v m=${P50[$name]} -v dm=${P50[direct]} \
    'BEGIN { printf "%-8s added p50 %.3f ms, added p99 %.3f ms\n", n, m - dm, p - d }'
done
echo "srekit/haproxy p99: $(ratio "${P99[srekit]}" "${P99[haproxy]}")   srekit/nginx p99: $(ratio "${P99[srekit]}" "${P99[nginx]}")"
fi
has regions || exit 0

echo; echo "== regions experiment: eu 5 ms (127.0.0.2), us 25 ms (.3), ap 60 ms (.4); 200 requests/s for ${REGION_SECONDS}s"
"$W/backend" -addr 127.0.0.2:$B -delay 5ms -name eu & PIDS+=($!)
"$W/backend" -addr 127.0.0.3:$B -delay 25ms -name us & PIDS+=($!)
"$W/backend" -addr 127.0.0.4:$B -delay 60ms -name ap & PIDS+=($!)
port=$((B+10))
for bal in p2c_ewma least_request round_robin p2c_ewma+locality; do
  port=$((port + 1))
  region=""; [ "$bal" = p2c_ewma+locality ] && region="region: eu"
  cat > "$W/regions-$bal.yaml" <<YAML
$region
admin: "off"
listeners: [{addr: "127.0.0.1:$port"}]
routes: [{cluster: api}]
clusters:
  - name: api
    balancer: ${bal%+locality}
    endpoints:
      - {address: "127.0.0.2:$B", region: eu}
      - {address: "127.0.0.3:$B", region: us}
      - {address: "127.0.0.4:$B", region: ap}
YAML
  "$W/srekit" mesh --config "$W/regions-$bal.yaml" --log-level warn & PIDS+=($!)
done
sleep 1
port=$((B+10))
declare -A RP50 RP99
for bal in p2c_ewma least_request round_robin p2c_ewma+locality; do
  port=$((port + 1))
  out=$("$W/load" -url "http://127.0.0.1:$port/" -rate 200 -duration "${REGION_SECONDS}s" -warmup 2s -count-header X-Backend)
  RP50[$bal]=$(sed -n 's/.*p50_ms=\([0-9.]*\).*/\1/p' <<<"$out")
  RP99[$bal]=$(sed -n 's/.*p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")
  printf "%-18s %s\n" "$bal" "$out"
done
echo "p2c_ewma/round_robin: p50 $(ratio "${RP50[p2c_ewma]}" "${RP50[round_robin]}"), p99 $(ratio "${RP99[p2c_ewma]}" "${RP99[round_robin]}")"
echo "p2c_ewma+locality (front door in eu)/round_robin: p50 $(ratio "${RP50[p2c_ewma+locality]}" "${RP50[round_robin]}"), p99 $(ratio "${RP99[p2c_ewma+locality]}" "${RP99[round_robin]}")"
