// Package lab builds a snapshot's network from real Linux network namespaces (nodes, pods, bridges, VXLAN, the
// kube-proxy rules kpath renders, a DNS server answering as the model, echo servers) and proves predicted journeys
// by performing them on the kernel and diffing what it observed against what package trace predicted.
package lab
