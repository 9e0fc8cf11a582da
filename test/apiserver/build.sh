#!/usr/bin/env bash
# Builds real Kubernetes components (k8s.io/kubernetes cmd/<component>, version pinned in go.mod) once per machine
# into a cache keyed by version, and prints each binary's path on stdout (one per line). Progress goes to stderr.
#
#   build.sh [COMPONENT...]   components: kube-apiserver (default), kube-proxy, kube-controller-manager
#   KPATH_CACHE               cache root (default $HOME/.cache/kpath); binaries land in $KPATH_CACHE/bin/<component>-<version>
#
# Concurrent callers serialise on one lock file per component, so each build happens at most once. kube-apiserver
# takes ~10-15 min cold on 2 cores; kube-proxy and kube-controller-manager share most of its dependencies and take a
# few minutes more each once it is built (see test/apiserver/README.md for measured times).
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=local

version=$(awk '$1=="k8s.io/kubernetes"{print $2; exit}' go.mod)
cache=${KPATH_CACHE:-$HOME/.cache/kpath}/bin
mkdir -p "$cache"
[ $# -gt 0 ] || set -- kube-apiserver

minor=${version#v1.}; minor=${minor%%.*}
ld="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1"
ld="$ld -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
downloaded=

build() {
  local comp=$1 bin=$cache/$1-$version
  case $comp in
    kube-apiserver|kube-proxy|kube-controller-manager) ;;
    *) echo "build.sh: unknown component $comp (want kube-apiserver, kube-proxy or kube-controller-manager)" >&2; return 2 ;;
  esac
  if [ -x "$bin" ]; then echo "$bin"; return 0; fi
  (
    exec 9>"$cache/.$comp-$version.lock"
    if ! flock -n 9; then
      echo "build.sh: another process is building $comp $version; waiting for it" >&2
      flock 9
    fi
    if [ -x "$bin" ]; then exit 0; fi
    echo "build.sh: building $comp $version into $bin (once per machine)" >&2
    start=$(date +%s)
    ( while sleep 60; do echo "build.sh: still building $comp ($(( $(date +%s) - start ))s)" >&2; done ) &
    ticker=$!
    trap 'kill $ticker 2>/dev/null || true' EXIT
    if [ -z "$downloaded" ]; then go mod download; fi
    go build -trimpath -ldflags "$ld" -o "$bin.tmp" "k8s.io/kubernetes/cmd/$comp"
    mv "$bin.tmp" "$bin"
    echo "build.sh: built $comp $version in $(( $(date +%s) - start ))s" >&2
  )
  downloaded=1
  echo "$bin"
}

for comp in "$@"; do build "$comp"; done
