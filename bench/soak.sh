#!/usr/bin/env bash
# The long-running soak, accelerated: kacap captures live on the loopback of
# a private network namespace with --metrics, while tcpreplay replays the
# benchmark's generated capture (short connections and long keepalive ones)
# at top speed, ROUNDS times. After each round it prints kacap's resident
# memory, the number of metric series and the connections reported so far,
# so flat memory and bounded label sets can be read off (docs/performance.md).
#
#   sudo bench/soak.sh [FLOWS per round, default 100000] [ROUNDS, default 10]
#
# Needs root (unshare), tcpreplay, and a release build (made here). Nothing
# outside the private namespace is touched. Not run by CI (minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
flows=${1:-100000}
rounds=${2:-10}
command -v tcpreplay >/dev/null || { echo "soak: needs tcpreplay (apt-get install tcpreplay)" >&2; exit 2; }
cargo build --release --quiet --bin kacap --example bench
pcap=target/release/soak-$flows.pcap
[ -s "$pcap" ] || target/release/examples/bench --generate "$pcap" "$flows" 600 >/dev/null
kacap=$PWD/target/release/kacap
export pcap kacap rounds
exec unshare --net bash -c '
  set -euo pipefail
  ip link set lo up
  "$kacap" -i lo --summary -B 65536 --linger 5 --metrics 127.0.0.1:9733 -Z root tcp >/dev/null 2>/tmp/kacap-soak.err &
  pid=$!
  sleep 1
  scrape() {
    exec 3<>/dev/tcp/127.0.0.1/9733
    printf "GET /metrics HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n" >&3
    cat <&3
    exec 3<&-
  }
  printf "round\tpackets_replayed\trss_kib\tseries\tflows_reported\tflows_open\n"
  total=0
  for r in $(seq "$rounds"); do
    sent=$(tcpreplay -i lo --topspeed "$pcap" 2>&1 | awk "/Actual:/{print \$2}")
    total=$((total + sent))
    sleep 7   # linger 5 s: the round'"'"'s connections are reported and freed
    m=$(scrape)
    rss=$(awk "/VmRSS/{print \$2}" /proc/$pid/status)
    series=$(printf "%s\n" "$m" | grep -c "^kacap_")
    reported=$(printf "%s\n" "$m" | awk "/^kacap_flows_total/{s+=\$2} END{print s}")
    open=$(printf "%s\n" "$m" | awk "/^kacap_flows_open /{print \$2}")
    printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$r" "$total" "$rss" "$series" "$reported" "$open"
  done
  kill -INT $pid
  wait $pid || true
  tail -3 /tmp/kacap-soak.err >&2
'
