#!/usr/bin/env bash
# CI's fuzzing smoke run: the five targets (`threads`: two shards against
# one thread, outputs compared; `frag`: the IP reassembler), coverage-guided, with debug
# assertions and overflow checks on, SECS seconds each (default 60), from the
# seed corpora (seed.sh). No cargo-fuzz or nightly needed: these are the
# flags cargo-fuzz passes, without a sanitizer, on stable Rust. A crash fails
# the run and leaves its input as fuzz/crash-*; turn it into a regression
# test in tests/it/regressions.rs.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
./seed.sh >/dev/null
host=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
  cargo build --quiet --bins --release --target "$host" --target-dir target/smoke
for t in frame capture app threads frag; do
  work=$(mktemp -d)
  cp corpus/"${t/threads/capture}"/* "$work"/
  echo "fuzz smoke: $t, ${secs}s"
  log=$(mktemp)
  rc=0
  target/smoke/"$host"/release/"$t" -max_total_time="$secs" -rss_limit_mb=2048 "$work" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then
    # Show why: the panic message and libFuzzer's report, not just its last line.
    grep -A8 -m3 'panicked' "$log" || true
    tail -30 "$log"
    rm -rf "$work" "$log"
    exit "$rc"
  fi
  tail -1 "$log"
  rm -rf "$work" "$log"
done
