#!/usr/bin/env bash
# Builds the real CoreDNS (github.com/coredns/coredns, version pinned in go.mod) once per machine into a cache keyed
# by version, and prints the binary's path on stdout. Progress goes to stderr. `kpath lab up --real` runs it in the
# kube-dns pod namespaces.
#
#   KPATH_CACHE   cache root (default $HOME/.cache/kpath); the binary lands in $KPATH_CACHE/bin/coredns-<version>
#
# Concurrent callers serialise on a lock file, so the build happens at most once.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local

version=$(awk '$1=="github.com/coredns/coredns"{print $2; exit}' go.mod)
cache=${KPATH_CACHE:-$HOME/.cache/kpath}/bin
bin=$cache/coredns-$version
mkdir -p "$cache"

if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

exec 9>"$cache/.coredns-$version.lock"
if ! flock -n 9; then
  echo "build.sh: another process is building coredns $version; waiting for it" >&2
  flock 9
fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

echo "build.sh: building coredns $version into $bin (once per machine)" >&2
start=$(date +%s)
( while sleep 60; do echo "build.sh: still building coredns ($(( $(date +%s) - start ))s)" >&2; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
go mod download
go build -trimpath -ldflags "-s -w" -o "$bin.tmp" github.com/coredns/coredns
mv "$bin.tmp" "$bin"
echo "build.sh: built coredns $version in $(( $(date +%s) - start ))s" >&2
echo "$bin"
