#!/usr/bin/env python3
"""tcpdump parity on captures other people made.

For every trace under target/thirdparty/ (tests/thirdparty/fetch.sh),
runs `tcpdump -n -tt -r F` and `kacap -tt --color never -r F` (add -v with --verbose)
and compares each kacap packet line with tcpdump's line of the same stamp:
whole (kacap's line starts with exactly tcpdump's line, then two spaces and
its words) and up to the application layer (equal up to and including
`length N`). Prints the two shares and, with --diffs, the differing pairs.

    tests/thirdparty/fetch.sh && cargo build --release
    tests/thirdparty/parity.py [--diffs] [--kacap target/release/kacap]
"""
import collections
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
KACAP = os.path.join(ROOT, "target", "release", "kacap")
args = sys.argv[1:]
if "--kacap" in args:
    KACAP = args[args.index("--kacap") + 1]
DIFFS = "--diffs" in args

LENGTH = re.compile(r"^(.*?, length \d+)")


def lines(cmd):
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    return p.stdout.decode("utf-8", "replace").splitlines()


def main():
    files = []
    top = os.path.join(ROOT, "target", "thirdparty")
    if not os.path.isdir(top):
        sys.exit(f"parity.py: {top} is missing: run tests/thirdparty/fetch.sh first")
    for d, _, names in sorted(os.walk(top)):
        for name in sorted(names):
            if name.endswith((".pcap", ".pcapng", ".cap")):
                files.append(os.path.join(d, name))
    total = whole = app = 0
    differ = collections.Counter()
    for f in files:
        ours = [
            l for l in lines([KACAP, "-tt", "--color", "never", "-r", f])
            if "  flow " in l or "  IP fragment " in l
        ]
        if not ours:
            continue
        theirs = collections.defaultdict(list)
        for l in lines(["tcpdump", "-n", "-tt", "-r", f]):
            theirs[l.split(" ", 1)[0]].append(l)
        for l in ours:
            stamp = l.split(" ", 1)[0]
            cands = theirs.get(stamp, [])
            total += 1
            if any(l.startswith(t + "  flow ") or l.startswith(t + "  IP fragment ") for t in cands):
                whole += 1
                app += 1
                continue
            m = LENGTH.match(l)
            if m and any(LENGTH.match(t) and LENGTH.match(t).group(1) == m.group(1) for t in cands):
                app += 1
            differ[os.path.basename(f)] += 1
            if DIFFS:
                print(f"{os.path.basename(f)}\n  kacap:   {l}\n  tcpdump: {cands[0] if cands else '(none)'}")
    print(f"{total} TCP segments and IP fragments of TCP in {len(files)} traces")
    print(f"whole line identical:          {whole} ({100 * whole / total:.2f} %)")
    print(f"identical up to `length N`:    {app} ({100 * app / total:.2f} %)")
    print("most differing lines: " + ", ".join(f"{n} {c}" for n, c in differ.most_common(12)))


main()
