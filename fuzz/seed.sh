#!/usr/bin/env bash
# Builds the seed corpora from the fixtures: whole captures for `capture`,
# and the same packets in the `frame` target's format (link byte, then
# 2-byte time step + 2-byte length + frame, little-endian).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p corpus/capture corpus/frame corpus/app
cp ../fixtures/*.pcap corpus/capture/
python3 - <<'PY'
import glob, os, struct

# Some fixtures as pcapng too (the fast path reads pcapng): a section, an
# interface (nanosecond stamps), a custom block, enhanced packet blocks.
def block(out, kind, body):
    pad = (4 - len(body) % 4) % 4
    n = 12 + len(body) + pad
    out += struct.pack("<II", kind, n) + body + b"\0" * pad + struct.pack("<I", n)
for name in ["dead-peer", "idle-start-dead", "grpc-keepalive", "http"]:
    data = open(f"../fixtures/{name}.pcap", "rb").read()
    nano = data[:4] == b"\x4d\x3c\xb2\xa1"
    link = struct.unpack("<I", data[20:24])[0]
    out = bytearray()
    block(out, 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    block(out, 1, struct.pack("<HHI", link, 0, 262144) + struct.pack("<HHBxxx", 9, 1, 9) + struct.pack("<HH", 0, 0))
    block(out, 0x00000BAD, bytes([0x59, 0x7E, 0, 0, 1, 2, 3, 4]))
    at = 24
    while at + 16 <= len(data):
        sec, frac, cap, wire = struct.unpack("<IIII", data[at:at + 16])
        ns = sec * 10**9 + (frac if nano else frac * 1000)
        block(out, 6, struct.pack("<IIIII", 0, ns >> 32, ns & 0xFFFFFFFF, cap, wire) + data[at + 16:at + 16 + cap])
        at += 16 + cap
    open(f"corpus/capture/{name}.pcapng", "wb").write(out)

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

# The `app` target: prelude 3 (none), then every TCP payload as control
# (bit 0: from the server, the first SYN's destination port), time step,
# length, bytes (payloads over 255 bytes cut).
for path in glob.glob("../fixtures/*.pcap"):
    data = open(path, "rb").read()
    endian = "<" if data[:4] == b"\xd4\xc3\xb2\xa1" else ">"
    at, out, server = 24, bytearray([3]), None
    while at + 16 <= len(data):
        sec, usec, cap, _ = struct.unpack(endian + "IIII", data[at:at + 16])
        frame = data[at + 16:at + 16 + cap]
        at += 16 + cap
        if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 15) * 4
        tcp = frame[14 + ihl:]
        sport, dport = struct.unpack(">HH", tcp[:4])
        if server is None and tcp[13] & 0x12 == 0x02:
            server = dport
        payload = tcp[(tcp[12] >> 4) * 4:][:255]
        if payload:
            out += bytes([1 if sport == server else 0, 0, len(payload)]) + payload
    if len(out) > 1:
        name = os.path.basename(path).replace(".pcap", "")
        open(f"corpus/app/{name}", "wb").write(bytes(out))
PY
# The `frag` target: records of datagram, ID, offset (8-byte units, LE),
# length, more|wait<<1, then the bytes: in order, the last first, a copy,
# an overlap, IPv6.
mkdir -p corpus/frag
python3 - <<'PY'
import struct
def rec(which, ident, units, data, more, wait=0):
    return struct.pack("<BBHBB", which, ident, units, len(data), int(more) | wait << 1) + data
a, b, c = b"A" * 24, b"B" * 24, b"C" * 5
seeds = {
    "in-order": rec(0, 1, 0, a, 1) + rec(0, 1, 3, b, 1) + rec(0, 1, 6, c, 0),
    "last-first": rec(0, 1, 6, c, 0) + rec(0, 1, 0, a, 1) + rec(0, 1, 3, b, 1),
    "copy": rec(0, 1, 0, a, 1) + rec(0, 1, 0, a, 1) + rec(0, 1, 3, b, 0),
    "overlap": rec(0, 1, 0, a, 1) + rec(0, 1, 1, b, 0),
    "v6": rec(4, 2, 0, a, 1) + rec(4, 2, 3, c, 0),
    "timeout": rec(0, 3, 0, a, 1) + rec(1, 3, 0, a, 1, 40) + rec(0, 3, 3, c, 0),
}
for name, data in seeds.items():
    open(f"corpus/frag/{name}", "wb").write(data)
PY
echo "seeded: $(ls corpus/capture | wc -l) captures, $(ls corpus/frame | wc -l) frame sequences, $(ls corpus/app | wc -l) payload streams"
