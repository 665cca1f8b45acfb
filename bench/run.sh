#!/usr/bin/env bash
# Benchmark kacap against the libpcap floor (and tshark / tcpdump when
# installed) on a generated capture. Options go to the harness:
#   --flows N        connections in the capture (default 100000, ~2.9 M packets)
#   --runs N         best of N runs per command (default 3)
#   --spread S       seconds over which connections start (default 600)
#   --keep           keep target/release/bench-N.pcap and reuse it next time
#   --with-tcpdump   also time `tcpdump -n -r` (minutes on the default size)
#   --live           then, as root, the live drop comparison (bench/live.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin kacap --example bench
target/release/examples/bench "$@"
for a in "$@"; do
  if [ "$a" = "--live" ]; then
    echo
    bash bench/live.sh
  fi
done
