#!/usr/bin/env bash
# kpath's full test suite, runnable on a fresh Debian machine: installs the system tools the kernel tests need
# (when root and they are missing), fetches Go modules, then runs go vet and every test.
set -euo pipefail
cd "$(dirname "$0")"

need=()
for tool in nft:nftables iptables-restore:iptables ip:iproute2 conntrack:conntrack tcpdump:tcpdump etcd:etcd-server; do
  command -v "${tool%%:*}" >/dev/null 2>&1 || need+=("${tool##*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "test.sh: missing ${need[*]} (not root or no apt-get): kernel tests will skip" >&2
  fi
fi

export GOTOOLCHAIN=local
go mod download
# The live tests (package live) run a real kube-apiserver built from k8s.io/kubernetes in its own module. It is built
# once per machine into ${KPATH_CACHE:-~/.cache/kpath}/bin (about 10-15 minutes the first time, seconds after that);
# if the build fails the live tests skip and say so.
if ! test/apiserver/build.sh >/dev/null; then
  echo "test.sh: building kube-apiserver failed: the live tests will skip" >&2
fi
# The lab's --real proof suite (package lab) also runs the real kube-controller-manager (same module as
# kube-apiserver: ~2.5 min more once its dependencies are cached), kube-proxy at the version package kubeproxy renders
# (its own module) and CoreDNS (its own module). Same cache and per-component locks; if a build fails the --real
# suite skips and says which binary is missing.
if ! test/apiserver/build.sh kube-controller-manager >/dev/null; then
  echo "test.sh: building kube-controller-manager failed: the lab --real tests will skip" >&2
fi
if ! test/kubeproxy/build.sh >/dev/null; then
  echo "test.sh: building kube-proxy failed: the lab --real tests will skip" >&2
fi
if ! test/coredns/build.sh >/dev/null; then
  echo "test.sh: building CoreDNS failed: the lab --real tests will skip" >&2
fi
go vet ./...
go test -count=1 -timeout 60m ./...
