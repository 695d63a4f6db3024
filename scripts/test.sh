#!/usr/bin/env bash
# The one test command (`make test` runs this): installs what the tests need
# when it is missing, starts a throwaway PostgreSQL cluster, runs every Go test
# (with -race on the packages that run concurrent code), and stops the cluster.
# Safe to run again and again; CI runs exactly this through .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use. Parts add theirs here, one per line.
APT_PACKAGES=(
  chromium          # browser tests of every page (chromedp)
  postgresql        # the shared-state store engine
  gcab              # firmware: cabinet cross-check (firmware/cab)
  fwupd             # firmware: fwupdtool get-details accepts srekit firmware pack
  knot              # caa: authoritative DNS server for the CAA integration tests
  unbound           # caa: validating resolver with a local trust anchor
  ldnsutils         # caa: ldns-keygen/ldns-signzone sign the test zones
  linux-perf        # profiling: perf record -g capture by the agent (skipped loudly where not permitted)
)

# Packages whose tests run concurrent code get -race.
RACE_PACKAGES='/store$|/web$|/mesh|/sampling|/profiling|/drills|/certs/ct|/certs/caa|/firmware$'

log() { printf '\n== %s\n' "$*" >&2; }

install_missing() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do [ -x "$d/initdb" ] && { echo "$d"; return; }; done
  command -v initdb >/dev/null && dirname "$(command -v initdb)" && return
  echo "no initdb found after installing postgresql" >&2; exit 1
}

# Go programs the tests run as real peers, built from the Go module proxy into
# a cache outside the repository (not added to go.mod), once per version.
TOOLS_BIN="${SREKIT_TOOLS_BIN:-$HOME/.cache/srekit-test/bin}"
GO_TOOLS=(
  github.com/prometheus/alertmanager/cmd/alertmanager@v0.28.1   # drills: a real Alertmanager
)

install_go_tools() {
  mkdir -p "$TOOLS_BIN"
  local t name stamp
  for t in "${GO_TOOLS[@]}"; do
    name=$(basename "${t%@*}")
    stamp="$TOOLS_BIN/.$name.version"
    if [ -x "$TOOLS_BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$t" ]; then continue; fi
    log "building $t (once)"
    (cd /tmp && GOBIN="$TOOLS_BIN" GOFLAGS=-mod=mod go install "$t") && echo "$t" > "$stamp"
  done
  export PATH="$TOOLS_BIN:$PATH"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_postgres() {
  local bin; bin=$(pg_bin)
  PGDIR=$(mktemp -d /tmp/srekit-pg.XXXXXX)
  PGPORT=$(free_port)
  local as=()
  # initdb refuses to run as root: run the cluster as the postgres user.
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    chown postgres "$PGDIR"
    as=(runuser -u postgres --)
  fi
  "${as[@]}" "$bin/initdb" -D "$PGDIR/data" -A trust -U postgres --no-sync >/dev/null
  "${as[@]}" "$bin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -o "-p $PGPORT -k $PGDIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null
  trap 'stop_postgres' EXIT
  export SREKIT_TEST_POSTGRES="postgres://postgres@127.0.0.1:$PGPORT/postgres?sslmode=disable"
  log "PostgreSQL on 127.0.0.1:$PGPORT ($PGDIR)"
}

stop_postgres() {
  local bin; bin=$(pg_bin)
  local as=()
  [ "$(id -u)" -eq 0 ] && as=(runuser -u postgres --)
  "${as[@]}" "$bin/pg_ctl" -D "$PGDIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGDIR"
}

install_missing
install_go_tools
start_postgres

all=$(go list ./...)
race=$(echo "$all" | grep -E "$RACE_PACKAGES" || true)
plain=$(echo "$all" | grep -vE "$RACE_PACKAGES" || true)

status=0
log "go vet"
go vet ./... || status=1
if [ -n "$plain" ]; then
  log "go test"
  go test -count=1 -timeout 20m $plain || status=1
fi
if [ -n "$race" ]; then
  log "go test -race"
  go test -count=1 -race -timeout 20m $race || status=1
fi
exit $status
