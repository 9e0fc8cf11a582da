// Package dns models the DNS stage of a journey: the resolv.conf kubelet writes for a pod, the exact queries glibc
// or musl send for a name, and the answer CoreDNS's kubernetes plugin gives to each of them.
package dns
