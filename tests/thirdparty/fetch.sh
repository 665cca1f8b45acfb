#!/usr/bin/env bash
# Captures other people made: the test traces of tcpdump's (4.99.3 and
# 4.99.6), nDPI's, Wireshark's, gopacket's, dpkt's, tcpflow's and
# pypacker's own test suites, from Debian's source packages (this
# release's by apt, a later release's from Debian's pool) and PyPI,
# checked against the pinned SHA-256 below, unpacked into
# target/thirdparty/<project>/ and deduplicated by content. Nothing of
# them is committed here; the integration test `thirdparty` runs over
# what this leaves (and skips, saying so, when it is not there).
#
#   tests/thirdparty/fetch.sh            # as root (apt), from the repo
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/thirdparty
dl=target/thirdparty-src
mkdir -p "$out" "$dl"

# project  how  where  tarball  sha256  path of the traces inside
#   how=apt: a source package of this Debian release (apt-get source);
#   how=url: a file from Debian's pool (a later release's source) or PyPI.
POOL=http://deb.debian.org/debian/pool/main
SOURCES=(
  "tcpdump apt tcpdump tcpdump_4.99.3.orig.tar.gz ad75a6ed3dc0d9732945b2e5483cb41dc8b4b528a169315e499c6861952e73b3 tcpdump-4.99.3/tests"
  "ndpi apt ndpi ndpi_4.2.orig.tar.gz e54ce8fe13adc5d747be7553513657fae78f796e0bd459e122c280cc06ce4daf nDPI-4.2/tests/pcap"
  "wireshark apt wireshark wireshark_4.0.17.orig.tar.bz2 62fd1491b6211d1651a16a45ead15808970b3a6a9ebde2537f96722af47aaaa5 wireshark-v4.0.17/test/captures"
  "tcpdump_4.99.6 url $POOL/t/tcpdump tcpdump_4.99.6.orig.tar.xz 40a8cefd45f0d2a06827e6658efb830d484868c449ad80f7efb33516af44f3da tcpdump-4.99.6/tests"
  "gopacket url $POOL/g/golang-github-gopacket-gopacket golang-github-gopacket-gopacket_1.3.0.orig.tar.xz 14bc7962419a4d353ed0a9a37991f744946f52b6887649f2da198d97697ae1de golang-github-gopacket-gopacket-1.3.0"
  "dpkt url $POOL/p/python-dpkt python-dpkt_1.9.8.orig.tar.gz 9990639e19a9c8f1db4af453b7e6a45ef2995ec03e13bac35b9824839fd46867 dpkt-1.9.8/examples/data"
  "tcpflow url $POOL/t/tcpflow tcpflow_1.6.1.orig.tar.gz c1c88513473e12011c0c00bba88dd02013ea3b813b08088f250cbf82b8f42358 tcpflow-tcpflow-1.6.1"
  "pypacker url https://files.pythonhosted.org/packages/83/c1/b270e105135bb24986486c5b60e2d0c3cde4ed2ee11c8f4d7074d9792ffe pypacker-5.4.tar.gz 80fb794acbe9eb972e43b4b28e85d8899ea3637fa5461df2866736e6d99ea5a3 pypacker-5.4"
)

if ! grep -rqs '^Types: deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  src=$(grep -rh '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "${src:-http://deb.debian.org/debian}" "$suite" > /etc/apt/sources.list.d/kacap-thirdparty-src.sources
  apt-get update -qq
fi

for entry in "${SOURCES[@]}"; do
  read -r project how where tarball sum inside <<<"$entry"
  if [ -f "$out/$project/.done" ]; then continue; fi
  if [ ! -f "$dl/$tarball" ] || ! echo "$sum  $dl/$tarball" | sha256sum -c --quiet; then
    if [ "$how" = apt ]; then
      (cd "$dl" && apt-get source --download-only "$where" >/dev/null 2>&1 || true)
    else
      curl -fsS -m 300 -o "$dl/$tarball" "$where/$tarball" || true
    fi
  fi
  echo "$sum  $dl/$tarball" | sha256sum -c --quiet
  rm -rf "$out/$project" && mkdir -p "$out/$project"
  # Folders below $inside are kept (gopacket's be/ and le/ share names).
  tar -xf "$dl/$tarball" -C "$out/$project" --wildcards --wildcards-match-slash \
    --strip-components="$(echo "$inside" | tr '/' '\n' | wc -l)" \
    "$inside/*.pcap*" "$inside/*.cap*" 2>/dev/null || true
  # Compressed traces stay as they are: kacap reads those too.
  touch "$out/$project/.done"
  echo "thirdparty: $project: $(find "$out/$project" -type f | grep -c '\.\(pcap\|cap\)') traces"
done

# A trace two projects ship (or two releases of one) is read once: the
# copy met later in path order goes.
find "$out" -type f ! -name .done -print0 | LC_ALL=C sort -z | xargs -0 sha256sum |
  awk 'seen[$1]++ { sub(/^[0-9a-f]+  /, ""); print }' | while IFS= read -r dup; do rm -f -- "$dup"; done
echo "thirdparty: $(find "$out" -type f ! -name .done | wc -l) distinct traces"
