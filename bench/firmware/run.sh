#!/usr/bin/env bash
# Firmware benchmarks (not run by `make test`):
#  1. inventory ingest: 10,000 hosts x 20 components into SQLite (target < 10 s)
#  2. rollout planning over 100,000 hosts (target < 1 s)
#  3. cabinets against the anchor, Debian's gcab (the library fwupd uses):
#     pack a payload into an MSZIP cabinet, and read it back (srekit also
#     parses the metainfo and verifies the checksums; gcab only extracts).
# Usage: bench/firmware/run.sh [PAYLOAD_MIB]   (default 64)
set -euo pipefail
cd "$(dirname "$0")/../.."
mib=${1:-64}

if ! command -v gcab >/dev/null; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gcab >/dev/null
fi

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1+2. go benchmarks"
go test -run '^$' -bench 'Ingest10k' -benchtime 1x ./firmware/ | grep -E '^Benchmark'
go test -run '^$' -bench 'Plan100k' -benchtime 5x ./firmware/ | grep -E '^Benchmark'

work=$(mktemp -d /tmp/srekit-fwbench.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/srekit" ./cmd/srekit
# Half random (incompressible), half text (compressible), like real images
# with padding and tables.
head -c $((mib * 512 * 1024)) /dev/urandom > "$work/fw.bin"
set +o pipefail
yes "firmware table entry 0123456789abcdef" | head -c $((mib * 512 * 1024)) >> "$work/fw.bin"
set -o pipefail
cat > "$work/fw.yaml" <<YAML
id: com.example.Bench.firmware
guids: [84f40464-9272-4ef7-9399-cd95f12da696]
version_format: triplet
payload: fw.bin
release: {version: 1.2.3}
YAML

echo "== 3. cabinets, ${mib} MiB payload (srekit vs gcab)"
t0=$(now); "$work/srekit" firmware pack "$work/fw.yaml" -o "$work/srekit.cab" >/dev/null; t1=$(now)
s_pack=$(secs "$t0" "$t1")
# gcab packs the same two files srekit packed (payload and its metainfo):
# extracting srekit's cabinet with gcab also checks gcab reads it.
mkdir "$work/in" && cd "$work/in" && gcab -x -C . ../srekit.cab >/dev/null
cmp fw.bin ../fw.bin
t0=$(now); gcab -c -z "$work/gcab.cab" fw.bin fw.metainfo.xml; t1=$(now)
g_pack=$(secs "$t0" "$t1")
cd - >/dev/null
mkdir "$work/out"
t0=$(now); gcab -x -C "$work/out" "$work/gcab.cab"; t1=$(now)
g_read=$(secs "$t0" "$t1")
t0=$(now); "$work/srekit" firmware inspect "$work/gcab.cab" >/dev/null; t1=$(now)
s_read=$(secs "$t0" "$t1")
printf '%-28s %10s %10s %8s\n' "" "srekit s" "gcab s" "ratio"
printf '%-28s %10s %10s %8s\n' "pack (MSZIP)" "$s_pack" "$g_pack" "$(ratio "$s_pack" "$g_pack")"
printf '%-28s %10s %10s %8s\n' "read gcab's cabinet" "$s_read" "$g_read" "$(ratio "$s_read" "$g_read")"
printf 'sizes: srekit %s bytes, gcab %s bytes\n' "$(stat -c %s "$work/srekit.cab")" "$(stat -c %s "$work/gcab.cab")"
echo "(ratio < 1: srekit faster; srekit's read also parses metainfo.xml and verifies sha1+sha256)"
