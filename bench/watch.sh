#!/usr/bin/env bash
# What `kacap watch` costs, and what it costs the connections it watches:
# in a private network namespace, examples/churn.rs opens RATE connections a
# second for SECONDS on loopback, each reset by its client (two ends each,
# every one of them printed by the watch), PAIRS times with `kacap watch
# --json` running and without, in alternating order. Then the same unpaced
# (20,000 connections as fast as they go). Prints, per run, the churn's
# figures (connections a second, connect latency median / p99 / max in µs)
# and the watch's CPU seconds (utime + stime from /proc), peak RSS and lost
# events; then the medians of each side.
#
#   sudo bench/watch.sh [RATE, default 10000] [SECONDS, default 10] [PAIRS, default 5]
#
# Needs root (unshare, tracepoints). The tracepoints are the host's: other
# connections of the machine are watched too (and counted in its CPU).
# Not run by CI (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-10000}
seconds=${2:-10}
pairs=${3:-5}
cargo build --release --quiet --bin kacap --example churn
kacap=$PWD/target/release/kacap
churn=$PWD/target/release/examples/churn
export kacap churn rate seconds pairs
exec unshare --net bash -c '
  set -euo pipefail
  ip link set lo up
  tck=$(getconf CLK_TCK)
  watched() {  # churn args…: the churn line, then the watch s CPU s, RSS KiB, lost
    "$kacap" watch --json >/dev/null 2>/tmp/kacap-watch.err &
    local pid=$!
    until grep -q watching /tmp/kacap-watch.err 2>/dev/null; do sleep 0.05; done
    local line
    line=$("$churn" "$@")
    sleep 0.5   # the last ends settle (200 ms) and are printed
    local cpu rss
    cpu=$(awk -v t="$tck" "{printf \"%.2f\", (\$14 + \$15) / t}" /proc/$pid/stat)
    rss=$(awk "/VmHWM/{print \$2}" /proc/$pid/status)
    kill -INT $pid
    wait $pid || true
    local lost
    lost=$(sed -n "s/.*; \([0-9]*\) events\? lost.*/\1/p" /tmp/kacap-watch.err)
    printf "%s\t%s\t%s\t%s\n" "$line" "$cpu" "$rss" "${lost:-?}"
  }
  alone() { printf "%s\t-\t-\t-\n" "$("$churn" "$@")"; }
  run() {  # label, churn args…
    local label=$1; shift
    printf "\n%s\nside\tconns\tsecs\tconns/s\tp50_us\tp99_us\tmax_us\twatch_cpu_s\twatch_rss_kib\tlost\n" "$label"
    for p in $(seq "$pairs"); do
      if [ $((p % 2)) = 1 ]; then
        printf "alone\t%s\n" "$(alone "$@")"; printf "watched\t%s\n" "$(watched "$@")"
      else
        printf "watched\t%s\n" "$(watched "$@")"; printf "alone\t%s\n" "$(alone "$@")"
      fi
    done | tee /tmp/kacap-watch.runs
    printf "median\n"
    for side in alone watched; do
      awk -v s=$side -F"\t" "\$1 == s" /tmp/kacap-watch.runs | sort -t"	" -k4,4n | awk -F"\t" -v n="$pairs" "NR == int((n + 1) / 2) {print \"conns/s (median run)\t\" \$0}"
    done
  }
  run "paced: $rate a second for $seconds s" "$rate" "$seconds"
  run "unpaced: 20000 as fast as they go" 0 0
'
