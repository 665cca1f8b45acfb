#!/usr/bin/env bash
# Live capture under load: kacap against `tcpdump -w /dev/null`, each on its
# own turn, on the loopback of a private network namespace while tcpreplay
# replays the benchmark's generated capture at top speed ROUNDS times; the
# kernel drop counts both print at the end ("N packets dropped by kernel")
# are compared, with libpcap's default buffer (2 MiB) for both and with each
# tool's own default (kacap: 16 MiB).
#
#   sudo bench/live.sh [FLOWS, default 20000] [ROUNDS, default 3]
#
# Needs root (unshare), tcpreplay, tcpdump and a release build (made here).
# Nothing outside the private namespace is touched. Not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-20000}
rounds=${2:-3}
for t in tcpreplay tcpdump unshare; do
  command -v $t >/dev/null || { echo "live.sh: needs $t" >&2; exit 2; }
done
cargo build --release --quiet --bin kacap --example bench
pcap=target/release/live-$flows.pcap
[ -s "$pcap" ] || target/release/examples/bench --generate "$pcap" "$flows" 60 >/dev/null
kacap=$PWD/target/release/kacap
export pcap kacap rounds
exec unshare --net bash -c '
  set -euo pipefail
  ip link set lo up
  # One tool capturing while the load runs; prints "received dropped".
  turn() {
    local err=/tmp/live-$$.err
    "$@" 2>"$err" >/dev/null &
    local pid=$!
    sleep 1
    sent=0
    for r in $(seq "$rounds"); do
      s=$(tcpreplay -i lo --topspeed "$pcap" 2>&1 | awk "/Actual:/{print \$2}")
      sent=$((sent + s))
    done
    sleep 1
    kill -INT $pid
    wait $pid || true
    local recv drop
    recv=$(awk "/packets received by filter/{print \$1}" "$err")
    drop=$(awk "/packets dropped by kernel/{print \$1}" "$err")
    rm -f "$err"
    echo "$sent ${recv:-?} ${drop:-?}"
  }
  printf "| capture | buffer | packets sent | received by filter | dropped by kernel | dropped %% |\n"
  printf "| --- | --- | --- | --- | --- | --- |\n"
  row() {
    local name=$1 buf=$2; shift 2
    read -r sent recv drop < <(turn "$@")
    pct=$(awk -v d="$drop" -v r="$recv" "BEGIN{ if (r+d>0) printf \"%.2f\", 100*d/(r+d); else print \"-\" }")
    printf "| %s | %s | %s | %s | %s | %s |\n" "$name" "$buf" "$sent" "$recv" "$drop" "$pct"
  }
  row "tcpdump -w /dev/null" "2 MiB" tcpdump -i lo -n -B 2048 -w /dev/null tcp
  row "kacap --summary" "2 MiB" "$kacap" -i lo --summary -B 2048 -Z root tcp
  row "kacap (text timeline)" "2 MiB" "$kacap" -i lo -B 2048 -Z root tcp
  row "tcpdump -w /dev/null" "its default (2 MiB)" tcpdump -i lo -n -w /dev/null tcp
  row "kacap --summary" "its default (16 MiB)" "$kacap" -i lo --summary -Z root tcp
'
