#!/usr/bin/env python3
"""Keepalive labels: kacap against tshark, packet by packet, over the
third-party corpus (tests/thirdparty/fetch.sh puts it in target/thirdparty).

usage: tests/thirdparty/tshark-compare.py [KACAP] > table.tsv

For every capture with TCP: the frames tshark flags `tcp.analysis.keep_alive`
/ `tcp.analysis.keep_alive_ack`, and the frames kacap labels `keepalive` /
`keepalive-ack` (`--json`). Prints one row per disagreement (file, frame,
tshark's flag, kacap's kind, the tcpdump line) and, on stderr, the totals.
The judgement of each disagreement is in docs/thirdparty.md.
"""
import json, os, subprocess, sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
kacap = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target/release/kacap")
corpus = os.path.join(root, "target/thirdparty")
files = sorted(
    os.path.join(d, f)
    for d, _, fs in os.walk(corpus)
    for f in fs
    if ".pcap" in f
)
totals = {"files": 0, "tshark_ka": 0, "kacap_ka": 0, "both_ka": 0,
          "tshark_ack": 0, "kacap_ack": 0, "both_ack": 0}
print("file\tframe\ttshark\tkacap")
for path in files:
    try:
        t = subprocess.run(
            ["tshark", "-n", "-r", path, "-Y", "tcp", "-T", "fields",
             "-e", "frame.number", "-e", "tcp.analysis.keep_alive",
             "-e", "tcp.analysis.keep_alive_ack"],
            capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        continue
    tka, tack, tcp = set(), set(), set()
    for line in t.stdout.splitlines():
        parts = line.split("\t") + ["", ""]
        if not parts[0].isdigit():
            continue
        n = int(parts[0])
        tcp.add(n)
        if parts[1]:
            tka.add(n)
        if parts[2]:
            tack.add(n)
    if not tcp:
        continue
    k = subprocess.run([kacap, "-r", path, "--json"], capture_output=True,
                       text=True, timeout=120)
    kinds = {}
    for line in k.stdout.splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if r.get("type") == "packet":
            kinds[r["n"]] = r["kind"]
        elif r.get("type") == "revise":
            kinds[r["n"]] = r["kind"]
    totals["files"] += 1
    kka = {n for n, kd in kinds.items() if kd == "keepalive"}
    kack = {n for n, kd in kinds.items() if kd == "keepalive-ack"}
    for name, a, b in (("ka", tka, kka), ("ack", tack, kack)):
        totals["tshark_" + name] += len(a)
        totals["kacap_" + name] += len(b)
        totals["both_" + name] += len(a & b)
    rel = os.path.relpath(path, corpus)
    for n in sorted((tka ^ kka) | (tack ^ kack)):
        ts = "keep_alive" if n in tka else "keep_alive_ack" if n in tack else "-"
        print(f"{rel}\t{n}\t{ts}\t{kinds.get(n, '-')}")
print(json.dumps(totals), file=sys.stderr)
