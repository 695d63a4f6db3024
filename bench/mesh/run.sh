#!/usr/bin/env bash
# bench/mesh/run.sh: srekit mesh against HAProxy and nginx (Debian packages,
# installed here when missing) as the same reverse proxy in front of the same
# backend, on loopback.
#   1. maximum throughput with wrk (keep-alive, 64 connections);
#   2. latency under a constant-rate open-loop load at 50% of the lowest of
#      the three maxima, and the p99 each proxy adds over going direct;
#   3. the regions experiment: three backends on 127.0.0.2/.3/.4 with 5, 25
#      and 60 ms of delay; p50/p99 seen by clients with srekit's P2C peak-EWMA
#      balancer (alone and with the front door's region set to eu) versus
#      least request and round robin.
# Ratios are printed as srekit / anchor.
#
# Latency placement (PIN, default 1). On a small box the loader, the backend
# and the proxy compete for the same CPUs, and the p99 then measures the
# scheduler (a woken process waits for another's time slice) more than the
# proxy. With PIN=1 each proxy under test runs alone on PROXY_CPUS (default
# CPU 1) with one worker per CPU there (srekit GOMAXPROCS, HAProxy nbthread
# and cpu-map, nginx worker_processes and worker_cpu_affinity), and the
# loader and the backend share LOAD_CPUS (default CPU 0), in the direct runs
# too; so a proxied run differs from its direct run only by the proxy's hop.
# PIN=0 is the older mode: nothing pinned, WORKERS workers per proxy.
# The latency part's loader and backend are LAT_BACKEND. The default with
# PIN=1 on Linux is duo (bench/mesh/duo): the loader and the backend in one
# thread that polls its sockets without ever sleeping, so nothing on
# LOAD_CPUS waits for a wake-up or for another process's time slice; it
# keeps LOAD_CPUS 100% busy, and the direct p99 drops from about 1 ms
# (separate loader and nginx backend) to 0.1-0.2 ms at 10k requests/s.
# LAT_BACKEND=nginx (the default otherwise) is bench/mesh/load in front of
# nginx serving a static answer; go is the Go backend, which costs 65-75 us
# of CPU per request at 6k requests/s against nginx's 25.
# Before the latency rounds, bench/mesh/stalls prints how often each CPU was
# taken away from a busy thread for 100 us, 1 ms and 5 ms or more in 5 s: on
# a virtual machine the hypervisor does this, and no proxy's p99 can be
# better than the stalls of its CPU allow.
# PROXY_PRIO is a command prefix for the proxies under test, by default
# "chrt -f 1" when PIN=1 and run as root: real-time, so other work on a
# shared box cannot hold a pinned proxy off its CPU for a time slice (it
# cannot move to another CPU). LOAD_PRIO is the same for the loader and the
# backend, off by default: they keep LOAD_CPUS about 95% busy at 50% of the
# maximum, and real-time tasks above the kernel's 95% limit stall for tens of
# ms. AWAKE=1 (default with PIN=1) runs an idle-priority busy loop on
# PROXY_CPUS so that a virtual machine's vCPU does not halt between requests
# (waking it costs the hypervisor's scheduling delay); AWAKE=0 turns it off.
# BUSY_POLL (a duration such as 200us, off by default) makes the latency
# part's proxies poll instead of sleeping between requests: srekit's
# listener gets busy_poll: BUSY_POLL and HAProxy its global busy-polling;
# nginx has no such setting and runs as before. It also makes PROXY_PRIO
# default to none: a real-time task that keeps its CPU busy is held off for
# 50 ms of every second by the kernel's real-time limit. The AWAKE busy loop
# is stopped while a busy-polling proxy is measured.
# Each latency run prints the loader's own send lag, the target's CPU per
# request, each CPU's busy and steal share and the load average, so a noisy
# round can be recognised; the added p99 is taken per round (direct and
# proxied runs of a round are back to back) and its median and spread
# printed.
#
# Environment: DURATION (seconds per wrk run, default 10), TP_ROUNDS
# (throughput rounds, targets interleaved, default 3), TP_BACKEND (go or
# nginx, default go), WORKERS (workers per proxy in the throughput part and
# with PIN=0, default 2), FRACTION (share of the lowest maximum for the
# latency part, default 0.5), RATE (requests/s for the latency part instead),
# ROUNDS (latency rounds, default 6), RATE_SECONDS (per latency run, plus 1 s
# of warm-up, default 4), PIN, PROXY_CPUS, LOAD_CPUS, LAT_BACKEND,
# PROXY_PRIO, LOAD_PRIO, AWAKE, BUSY_POLL (see above), PARTS (any of "throughput
# latency regions", default all three), SREKIT (a prebuilt srekit binary instead of building ./cmd/srekit),
# BASE_PORT (first of the loopback ports used, default 27180; the bench uses
# BASE_PORT to BASE_PORT+14).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-10}
RATE_SECONDS=${RATE_SECONDS:-4}
WORKERS=${WORKERS:-2}
FRACTION=${FRACTION:-0.5}
ROUNDS=${ROUNDS:-6}
PIN=${PIN:-1}
PROXY_CPUS=${PROXY_CPUS:-1}
LOAD_CPUS=${LOAD_CPUS:-0}
TP_BACKEND=${TP_BACKEND:-go}
LAT_BACKEND=${LAT_BACKEND:-}
LOAD_PRIO=${LOAD_PRIO:-}
AWAKE=${AWAKE:-1}
BUSY_POLL=${BUSY_POLL:-}
SPINNERS=()
read -r -a LOAD_PRIO_CMD <<<"$LOAD_PRIO"
PROXY_PRIO_CMD=()
TP_ROUNDS=${TP_ROUNDS:-3}
REGION_SECONDS=${REGION_SECONDS:-10}
PARTS=${PARTS:-"throughput latency regions"}
has() { [[ " $PARTS " == *" $1 "* ]]; }
W=$(mktemp -d /tmp/srekit-bench-mesh.XXXXXX)
PIDS=()
# A proxy frozen by the latency part (see freeze) acts on its TERM only once
# continued.
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; kill -CONT "$p" $(pgrep -P "$p") 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$W"; }
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
if [ -n "${SREKIT:-}" ]; then
  SREKIT=$(realpath "$SREKIT")
else
  go build -o "$W/srekit" ./cmd/srekit; SREKIT=$W/srekit
fi
go build -o "$W/backend" ./bench/mesh/backend
go build -o "$W/load" ./bench/mesh/load
go build -o "$W/stalls" ./bench/mesh/stalls
[ "$(uname -s)" != Linux ] || go build -o "$W/duo" ./bench/mesh/duo

B=${BASE_PORT:-27180}
declare -A ADDR PID_OF
# start_set SET PORT BACKEND_CPUS PROXY_CPUS WORKERS BACKEND: the backend
# (go: bench/mesh/backend; nginx: a static answer) on PORT
# and srekit, HAProxy and nginx in front of it on PORT+1..+3 (srekit's admin
# on PORT+4), each proxy with WORKERS workers (srekit GOMAXPROCS, HAProxy
# nbthread, nginx worker_processes). With CPU lists (comma-separated CPU
# numbers) the backend and the proxies are pinned with taskset, and each
# proxy's workers one per listed CPU (HAProxy cpu-map, nginx
# worker_cpu_affinity; a Go process sizes GOMAXPROCS to its affinity).
start_set() {
  local set=$1 p=$2 bcpus=$3 pcpus=$4 workers=$5 backend=$6
  local be=127.0.0.1:$p sk=127.0.0.1:$(($2 + 1)) ha=127.0.0.1:$(($2 + 2)) ng=127.0.0.1:$(($2 + 3)) admin=127.0.0.1:$(($2 + 4))
  local bpin=() ppin=() cpumap="" affinity="" c busy="" habusy=""
  if [ "$set" = lat ] && [ -n "$BUSY_POLL" ]; then busy=", busy_poll: $BUSY_POLL"; habusy="busy-polling"; fi
  if [ -n "$bcpus" ]; then bpin=("${LOAD_PRIO_CMD[@]}" taskset -c "$bcpus"); fi
  if [ -n "$pcpus" ]; then
    ppin=("${PROXY_PRIO_CMD[@]}" taskset -c "$pcpus")
    if [ "$workers" -eq 1 ]; then cpumap="cpu-map 1/1 ${pcpus//,/ }"; else cpumap="cpu-map auto:1/1-$workers ${pcpus//,/ }"; fi
    affinity="worker_cpu_affinity"
    for c in ${pcpus//,/ }; do affinity+=" 1$(printf "%${c}s" "" | tr ' ' 0)"; done
    affinity+=";"
  fi
  ADDR[$set,direct]=$be ADDR[$set,srekit]=$sk ADDR[$set,haproxy]=$ha ADDR[$set,nginx]=$ng
  if [ "$backend" = nginx ]; then
    local bw; bw=$(if [ -n "$bcpus" ]; then tr ',' '\n' <<<"$bcpus" | grep -c .; else nproc; fi)
    mkdir -p "$W/backend-$set"
    cat > "$W/backend-$set.conf" <<CFG
daemon off;
worker_processes $bw;
pid $W/backend-$set.pid;
error_log $W/backend-$set/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 600s;
  client_body_temp_path $W/backend-$set; proxy_temp_path $W/backend-$set; fastcgi_temp_path $W/backend-$set;
  uwsgi_temp_path $W/backend-$set; scgi_temp_path $W/backend-$set;
  default_type text/plain;
  server {
    listen $be;
    location / { add_header X-Backend backend; return 200 "ok from backend\n"; }
  }
}
CFG
    "${bpin[@]}" "$NGINX" -c "$W/backend-$set.conf" -p "$W/backend-$set" & PIDS+=($!); PID_OF[$set,direct]=$!
  elif [ "$backend" = duo ]; then
    PID_OF[$set,direct]=""   # bench/mesh/duo serves it, during each latency run
  else
    "${bpin[@]}" "$W/backend" -addr "$be" & PIDS+=($!); PID_OF[$set,direct]=$!
  fi

  cat > "$W/mesh-$set.yaml" <<YAML
admin: $admin
listeners: [{addr: "$sk"$busy}]
routes: [{cluster: app}]
clusters:
  - name: app
    endpoints: [{address: "$be"}]
YAML
  GOMAXPROCS=$workers "${ppin[@]}" "$SREKIT" mesh --config "$W/mesh-$set.yaml" --log-level warn & PIDS+=($!); PID_OF[$set,srekit]=$!

  cat > "$W/haproxy-$set.cfg" <<CFG
global
  nbthread $workers
  $cpumap
  $habusy
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 30s
  http-reuse always
  option forwardfor
frontend fe
  bind $ha
  default_backend be
backend be
  server app $be maxconn 1000
CFG
  "${ppin[@]}" "$HAPROXY" -f "$W/haproxy-$set.cfg" -db >"$W/haproxy-$set.log" 2>&1 & PIDS+=($!); PID_OF[$set,haproxy]=$!

  mkdir -p "$W/nginx-$set"
  cat > "$W/nginx-$set.conf" <<CFG
daemon off;
worker_processes $workers;
$affinity
pid $W/nginx-$set.pid;
error_log $W/nginx-$set/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $W/nginx-$set; proxy_temp_path $W/nginx-$set; fastcgi_temp_path $W/nginx-$set;
  uwsgi_temp_path $W/nginx-$set; scgi_temp_path $W/nginx-$set;
  upstream app { server $be; keepalive 256; }
  server {
    listen $ng;
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
  "${ppin[@]}" "$NGINX" -c "$W/nginx-$set.conf" -p "$W/nginx-$set" & PIDS+=($!); PID_OF[$set,nginx]=$!

  sleep 1.5
  for c in direct srekit haproxy nginx; do
    if [ "$backend" = duo ]; then
      out=$("$W/duo" -serve "$be" -target "${ADDR[$set,$c]}" -rate 200 -duration 0.2s -warmup 0.1s -conns 2 2>&1) &&
        [ "$(field errors "$out")" = 0 ] || { echo "no answer from $c at ${ADDR[$set,$c]} (duo backend): $out" >&2; exit 1; }
      continue
    fi
    curl -fsS -o /dev/null "http://${ADDR[$set,$c]}/" || {
      echo "no answer from $c at ${ADDR[$set,$c]}" >&2; cat "$W/haproxy-$set.log" "$W/nginx-$set/error.log" >&2 2>/dev/null; exit 1; }
  done
}
# stop_set SET: stops a set's four processes (they would sit idle otherwise).
stop_set() {
  local c
  for c in direct srekit haproxy nginx; do [ -z "${PID_OF[$1,$c]}" ] || kill "${PID_OF[$1,$c]}" 2>/dev/null || true; done
  sleep 0.5
}

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
# cpu_busy BEFORE AFTER: from two samples of /proc/stat's per-CPU lines, each
# CPU's busy share (everything but idle, iowait and steal) and steal share
# (time the hypervisor ran something else), e.g. "cpu0 83%/0.4%".
cpu_busy() {
  paste -d' ' <(echo "$1") <(echo "$2") | awk '{
    n = (NF - 2) / 2; t = 0
    for (k = 2; k <= n + 1; k++) t += $(k + n + 1) - $k
    idle = $(n + 6) - $5 + $(n + 7) - $6; st = $(n + 10) - $9
    if (t > 0) printf "%s %.0f%%/%.1f%% ", $1, 100 * (t - idle - st) / t, 100 * st / t }'
}
declare -A MAX CPU
median() { tr ' ' '\n' | grep . | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
sorted() { tr ' ' '\n' | grep . | sort -g | tr '\n' ' '; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
field() { sed -n "s/.* $1=\([-0-9.]*\).*/\1/p" <<<" $2"; }
TP_STARTED=0
if has throughput || { has latency && [ -z "${RATE:-}" ]; }; then
start_set tp "$B" "" "" "$WORKERS" "$TP_BACKEND"; TP_STARTED=1
echo; echo "== maximum throughput (wrk -t2 -c64 -d${DURATION}s, $TP_ROUNDS rounds, targets interleaved; median of rounds) and the proxy's CPU per request"
echo "   nothing pinned: wrk, the backend ($TP_BACKEND) and each proxy ($WORKERS workers) share all $(nproc) CPUs"
for name in direct srekit haproxy nginx; do
  wrk -t2 -c64 -d2s "http://${ADDR[tp,$name]}/" >/dev/null 2>&1 || true   # warm pools
done
declare -A ALLMAX ALLCPU RPS
for r in $(seq "$TP_ROUNDS"); do
  for name in direct srekit haproxy nginx; do
    c0=$(cpu_ticks "${PID_OF[tp,$name]}")
    out=$(wrk -t2 -c64 -d"${DURATION}s" "http://${ADDR[tp,$name]}/")
    c1=$(cpu_ticks "${PID_OF[tp,$name]}")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
    ALLMAX[$name]+="$rps "; ALLCPU[$name]+="$cpu "; RPS[$r,$name]=$rps
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
# Paired by round: the targets of a round ran back to back, so the box's
# mood of the moment weighs less on a ratio within a round.
for anchor in haproxy nginx; do
  rs="" ahead=0
  for r in $(seq "$TP_ROUNDS"); do
    x=$(ratio "${RPS[$r,srekit]}" "${RPS[$r,$anchor]}"); rs+="$x "
    awk -v x="$x" 'BEGIN { exit !(x >= 1) }' && ahead=$((ahead + 1))
  done
  echo "srekit/$anchor throughput per round, sorted: $(sorted <<<"$rs")(at least 1 in $ahead of $TP_ROUNDS rounds)"
done
fi

if has latency; then
[ -n "${RATE:-}" ] || RATE=$(printf "%s\n" "${MAX[srekit]}" "${MAX[haproxy]}" "${MAX[nginx]}" | sort -g | head -1 | awk -v f="$FRACTION" '{printf "%d", $1 * f}')
[ "$TP_STARTED" = 0 ] || stop_set tp
if [ "$PIN" = 1 ] && { [ "$(nproc)" -lt 2 ] || ! command -v taskset >/dev/null; }; then
  echo "PIN=1 needs 2 CPUs and taskset (util-linux); running unpinned" >&2; PIN=0
fi
if [ -z "$LAT_BACKEND" ]; then
  # duo busy-polls a whole CPU: only where the proxies have CPUs of their own.
  if [ "$PIN" = 1 ] && [ "$(uname -s)" = Linux ]; then LAT_BACKEND=duo; else LAT_BACKEND=nginx; fi
fi
if [ -z "${PROXY_PRIO+set}" ]; then
  PROXY_PRIO=""
  if [ "$PIN" = 1 ] && [ -z "$BUSY_POLL" ] && [ "$(id -u)" -eq 0 ] && command -v chrt >/dev/null; then PROXY_PRIO="chrt -f 1"; fi
fi
read -r -a PROXY_PRIO_CMD <<<"$PROXY_PRIO"
if [ "$PIN" = 1 ]; then
  # The proxy under test gets CPUs of its own; the loader and the backend
  # share the others, in the direct runs too, so the direct and proxied
  # runs differ only by the proxy's hop.
  n=$(tr ',' '\n' <<<"$PROXY_CPUS" | grep -c .)
  start_set lat $((B + 5)) "$LOAD_CPUS" "$PROXY_CPUS" "$n" "$LAT_BACKEND"
  LOADPIN=("${LOAD_PRIO_CMD[@]}" taskset -c "$LOAD_CPUS")
  mode="PIN=1: each proxy alone on CPU $PROXY_CPUS ($n worker(s)); the loader and the backend on CPU $LOAD_CPUS, for the direct runs too"
  if [ "$AWAKE" = 1 ] && command -v chrt >/dev/null; then
    # Keep the proxies' CPUs from going idle: on a virtual machine an idle
    # vCPU halts, and waking it again costs the hypervisor's scheduling
    # delay (milliseconds at p99 here), paid on every request that crosses
    # to the proxy. A busy loop at SCHED_IDLE priority keeps them running
    # and yields to anything else at once (like booting with idle=poll).
    for c in ${PROXY_CPUS//,/ }; do
      chrt -i 0 taskset -c "$c" sh -c 'while :; do :; done' & PIDS+=($!); SPINNERS+=($!)
    done
    mode+="; AWAKE=1: an idle-priority busy loop keeps CPU $PROXY_CPUS from halting"
  fi
else
  start_set lat $((B + 5)) "" "" "$WORKERS" "$LAT_BACKEND"
  LOADPIN=()
  mode="PIN=0: nothing pinned; the loader, the backend and the proxy ($WORKERS workers) share all $(nproc) CPUs"
fi
set=lat
# freeze/thaw NAME: stop a proxy (with its worker processes) while another
# is measured, so that its timers, and with BUSY_POLL its polling, take
# nothing from the CPU the measured proxy runs on.
freeze() { local p=${PID_OF[$set,$1]}; [ -z "$p" ] || kill -STOP "$p" $(pgrep -P "$p") 2>/dev/null || true; }
thaw() { local p=${PID_OF[$set,$1]}; [ -z "$p" ] || kill -CONT "$p" $(pgrep -P "$p") 2>/dev/null || true; }
for name in srekit haproxy nginx; do freeze "$name"; done
echo; echo "== stalls of each CPU seen by a busy thread (bench/mesh/stalls, 5 s, all CPUs at once): the box's own floor for a p99"
sp=()
for c in $(seq 0 $(($(nproc) - 1))); do taskset -c "$c" "$W/stalls" -duration 5s > "$W/stalls-$c" & sp+=($!); done
wait "${sp[@]}"
for c in $(seq 0 $(($(nproc) - 1))); do echo "cpu$c $(cat "$W/stalls-$c")"; done
echo; echo "== latency at a constant $RATE requests/s, open loop (bench/mesh/$([ "$LAT_BACKEND" = duo ] && echo duo || echo load)), $ROUNDS rounds of ${RATE_SECONDS}s (+1s warm-up), targets interleaved in a rotating order"
echo "   $mode"
echo "   backend: $LAT_BACKEND; scheduling prefix for the proxies: ${PROXY_PRIO:-none}; for the loader and the backend: ${LOAD_PRIO:-none}"
[ -z "$BUSY_POLL" ] || echo "   BUSY_POLL=$BUSY_POLL: srekit busy_poll: $BUSY_POLL, HAProxy busy-polling; nginx has no busy polling"
echo "   lag_p99: delay from a request's scheduled time to its write (the loader's CPU, or all its connections busy); cpu_us: the target's CPU per request"
echo "   (the backend's for direct); cpuN busy%/steal%: each CPU's busy and hypervisor-steal share during the run, whoever used it"
declare -A P99 P50 ALL50 ALL99 ADD99 ADD50
targets=(direct srekit haproxy nginx)
for r in $(seq "$ROUNDS"); do
  declare -A R50 R99
  for i in 0 1 2 3; do
    name=${targets[$(((i + r - 1) % 4))]}
    pid=${PID_OF[$set,$name]}
    thaw "$name"
    # A proxy that busy-polls keeps its CPU awake itself, and the idle
    # busy loop would only take slices of 1 ms or more from it: EEVDF does
    # not preempt an idle-priority task for one that never sleeps.
    if [ -n "$BUSY_POLL" ] && { [ "$name" = srekit ] || [ "$name" = haproxy ]; }; then
      for p in "${SPINNERS[@]}"; do kill -STOP "$p" 2>/dev/null || true; done
    fi
    sleep 0.2
    c0=$([ -z "$pid" ] || cpu_ticks "$pid"); s0=$(grep '^cpu[0-9]' /proc/stat)
    if [ "$LAT_BACKEND" = duo ]; then
      out=$("${LOADPIN[@]}" "$W/duo" -serve "${ADDR[$set,direct]}" -target "${ADDR[$set,$name]}" -rate "$RATE" -duration "${RATE_SECONDS}s" -warmup 1s)
    else
      out=$("${LOADPIN[@]}" "$W/load" -url "http://${ADDR[$set,$name]}/" -rate "$RATE" -duration "${RATE_SECONDS}s" -warmup 1s)
    fi
    c1=$([ -z "$pid" ] || cpu_ticks "$pid"); s1=$(grep '^cpu[0-9]' /proc/stat)
    [ "$name" = direct ] || freeze "$name"
    for p in "${SPINNERS[@]}"; do kill -CONT "$p" 2>/dev/null || true; done
    R50[$name]=$(field p50_ms "$out"); R99[$name]=$(field p99_ms "$out")
    ALL50[$name]+="${R50[$name]} "; ALL99[$name]+="${R99[$name]} "
    # CPU per request at this rate (warm-up requests included in the count).
    cpu=-
    [ -z "$pid" ] || cpu=$(awk -v t=$((c1 - c0)) -v hz="$HZ" -v n="$RATE" -v s="$RATE_SECONDS" 'BEGIN { printf "%.1f", t / hz * 1e6 / (n * (s + 1)) }')
    printf "round %d %-8s p50 %7.3f  p90 %7.3f  p99 %7.3f  p99.9 %7.3f  max %7.3f ms  errors %s  lag_p99 %6.3f ms  cpu_us %5s  %s load average %s\n" \
      "$r" "$name" "${R50[$name]}" "$(field p90_ms "$out")" "${R99[$name]}" "$(field p999_ms "$out")" "$(field max_ms "$out")" \
      "$(field errors "$out")" "$(field lag_p99_ms "$out")" "$cpu" "$(cpu_busy "$s0" "$s1")" "$(cut -d' ' -f1 /proc/loadavg)"
  done
  line="round $r added p99 (ms, proxy minus direct of this round):"
  for name in srekit haproxy nginx; do
    a=$(awk -v p="${R99[$name]}" -v d="${R99[direct]}" 'BEGIN { printf "%.3f", p - d }')
    ADD99[$name]+="$a "; line+=" $name $a"
    ADD50[$name]+="$(awk -v p="${R50[$name]}" -v d="${R50[direct]}" 'BEGIN { printf "%.3f", p - d }') "
  done
  echo "$line"
done
for name in direct srekit haproxy nginx; do
  P50[$name]=$(median <<<"${ALL50[$name]}"); P99[$name]=$(median <<<"${ALL99[$name]}")
  printf "%-8s median p50 %8.3f ms  p99 %8.3f ms   p99 of the rounds, sorted: %s\n" "$name" "${P50[$name]}" "${P99[$name]}" "$(sorted <<<"${ALL99[$name]}")"
done
echo "added latency, paired by round (median of the per-round differences; the per-round values sorted show the spread):"
for name in srekit haproxy nginx; do
  printf "%-8s added p50 %.3f ms   added p99 %.3f ms   per round: %s\n" "$name" \
    "$(median <<<"${ADD50[$name]}")" "$(median <<<"${ADD99[$name]}")" "$(sorted <<<"${ADD99[$name]}")"
done
echo "srekit/haproxy p99: $(ratio "${P99[srekit]}" "${P99[haproxy]}")   srekit/nginx p99: $(ratio "${P99[srekit]}" "${P99[nginx]}")   (medians of the rounds)"
for p in "${SPINNERS[@]}"; do kill "$p" 2>/dev/null || true; done
for name in srekit haproxy nginx; do thaw "$name"; done
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
  "$SREKIT" mesh --config "$W/regions-$bal.yaml" --log-level warn & PIDS+=($!)
done
sleep 1
port=$((B+10))
declare -A RP50 RP99
for bal in p2c_ewma least_request round_robin p2c_ewma+locality; do
  port=$((port + 1))
  out=$("$W/load" -url "http://127.0.0.1:$port/" -rate 200 -duration "${REGION_SECONDS}s" -warmup 2s -count-header X-Backend)
  RP50[$bal]=$(field p50_ms "$out")
  RP99[$bal]=$(field p99_ms "$out")
  printf "%-18s %s\n" "$bal" "$out"
done
echo "p2c_ewma/round_robin: p50 $(ratio "${RP50[p2c_ewma]}" "${RP50[round_robin]}"), p99 $(ratio "${RP99[p2c_ewma]}" "${RP99[round_robin]}")"
echo "p2c_ewma+locality (front door in eu)/round_robin: p50 $(ratio "${RP50[p2c_ewma+locality]}" "${RP50[round_robin]}"), p99 $(ratio "${RP99[p2c_ewma+locality]}" "${RP99[round_robin]}")"
