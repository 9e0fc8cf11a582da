// Package cluster loads Kubernetes cluster state (manifests, kubectl dumps, the embedded demo) into an immutable,
// indexed Snapshot, synthesizes the runtime state offline inputs lack (marked as such), and detects the dataplane
// profile (kube-proxy mode, CNI, mesh, encryption) with the evidence for each setting.
package cluster
