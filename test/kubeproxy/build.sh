#!/usr/bin/env bash
# Builds the real kube-proxy (k8s.io/kubernetes cmd/kube-proxy, version pinned in go.mod: the upstream version package
# kubeproxy renders) once per machine into a cache keyed by version, and prints the binary's path on stdout. Progress
# goes to stderr. `kpath lab up --real` runs it in every node namespace.
#
#   KPATH_CACHE   cache root (default $HOME/.cache/kpath); the binary lands in $KPATH_CACHE/bin/kube-proxy-<version>
#
# Concurrent callers serialise on a lock file, so the build happens at most once.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local

version=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' go.mod)
cache=${KPATH_CACHE:-$HOME/.cache/kpath}/bin
bin=$cache/kube-proxy-$version
mkdir -p "$cache"

if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

exec 9>"$cache/.kube-proxy-$version.lock"
if ! flock -n 9; then
  echo "build.sh: another process is building kube-proxy $version; waiting for it" >&2
  flock 9
fi
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi

echo "build.sh: building kube-proxy $version into $bin (once per machine)" >&2
start=$(date +%s)
( while sleep 60; do echo "build.sh: still building kube-proxy ($(( $(date +%s) - start ))s)" >&2; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
go mod download
minor=${version#v1.}; minor=${minor%%.*}
ld="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1"
ld="$ld -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
go build -trimpath -ldflags "$ld" -o "$bin.tmp" k8s.io/kubernetes/cmd/kube-proxy
mv "$bin.tmp" "$bin"
echo "build.sh: built kube-proxy $version in $(( $(date +%s) - start ))s" >&2
echo "$bin"
