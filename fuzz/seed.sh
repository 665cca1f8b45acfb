#!/usr/bin/env bash
# Builds the seed corpora from the fixtures: whole captures for `capture`,
# and the same packets in the `frame` target's format (link byte, then
# 2-byte time step + 2-byte length + frame, little-endian).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/capture corpus/frame
cp ../fixtures/*.pcap corpus/capture/
python3 - <<'PY'
import glob, os, struct
for path in glob.glob("../fixtures/*.pcap"):
    data = open(path, "rb").read()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    at, out, prev = 24, bytearray([0]), None  # 0 = Ethernet
    while at + 16 <= len(data):
        sec, usec, cap, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        t = sec * 100 + usec // 10000
        step = 0 if prev is None else min(t - prev, 65535)
        prev = t
        out += struct.pack("<HH", step, cap) + data[at + 16:at + 16 + cap]
        at += 16 + cap
    name = os.path.basename(path).replace(".pcap", "")
    open(f"corpus/frame/{name}", "wb").write(out)
PY
echo "seeded: $(ls corpus/capture | wc -l) captures, $(ls corpus/frame | wc -l) frame sequences"
