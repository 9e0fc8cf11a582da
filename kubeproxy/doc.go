// Package kubeproxy renders the netfilter rules kube-proxy (upstream v1.36) programs on one node, in
// nftables and iptables mode, and models which endpoint(s) a packet reaches through them.
package kubeproxy
