#!/usr/bin/env bash
# Captures other people made: the test traces of tcpdump's, nDPI's and
# Wireshark's own test suites, from Debian's source packages (fetched with apt by package
# name, checked against the pinned SHA-256 below), unpacked into
# target/thirdparty/<project>/. Nothing of them is committed here; the
# integration test `thirdparty` runs over what this leaves (and skips,
# saying so, when it is not there).
#
#   tests/thirdparty/fetch.sh            # as root (apt), from the repo
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/thirdparty
dl=target/thirdparty-src
mkdir -p "$out" "$dl"

# project  source-package  orig tarball  sha256  path of the traces inside
SOURCES=(
  "tcpdump tcpdump tcpdump_4.99.3.orig.tar.gz ad75a6ed3dc0d9732945b2e5483cb41dc8b4b528a169315e499c6861952e73b3 tcpdump-4.99.3/tests"
  "ndpi ndpi ndpi_4.2.orig.tar.gz e54ce8fe13adc5d747be7553513657fae78f796e0bd459e122c280cc06ce4daf nDPI-4.2/tests/pcap"
  "wireshark wireshark wireshark_4.0.17.orig.tar.bz2 62fd1491b6211d1651a16a45ead15808970b3a6a9ebde2537f96722af47aaaa5 wireshark-v4.0.17/test/captures"
)

if ! grep -rqs '^Types: deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  src=$(grep -rh '^URIs:' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1 | awk '{print $2}')
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "${src:-http://deb.debian.org/debian}" "$suite" > /etc/apt/sources.list.d/kacap-thirdparty-src.sources
  apt-get update -qq
fi

for entry in "${SOURCES[@]}"; do
  read -r project package tarball sum inside <<<"$entry"
  if [ -f "$out/$project/.done" ]; then continue; fi
  if [ ! -f "$dl/$tarball" ] || ! echo "$sum  $dl/$tarball" | sha256sum -c --quiet; then
    (cd "$dl" && apt-get source --download-only "$package" >/dev/null 2>&1 || true)
  fi
  echo "$sum  $dl/$tarball" | sha256sum -c --quiet
  rm -rf "$out/$project" && mkdir -p "$out/$project"
  tar -xf "$dl/$tarball" -C "$out/$project" --wildcards --strip-components="$(echo "$inside" | tr '/' '\n' | wc -l)" \
    "$inside/*.pcap*" "$inside/*.cap*" 2>/dev/null || true
  # Compressed traces stay as they are: kacap reads those too.
  touch "$out/$project/.done"
  echo "thirdparty: $project: $(find "$out/$project" -type f | grep -c '\.\(pcap\|cap\)') traces"
done
