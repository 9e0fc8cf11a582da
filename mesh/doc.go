// Package mesh models a service mesh on a packet's path: which pods are meshed and how (Linkerd, Istio sidecar,
// Istio ambient), their workload identities, the proxy's own endpoint choice, and the inbound authorization and L7
// routing decisions of Linkerd and Istio policy resources decoded from the snapshot.
package mesh
