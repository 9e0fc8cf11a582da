// Package capture renders, exactly as the real init containers and CNI agents do, the traffic-interception
// rules a service mesh installs in a pod's network namespace (Linkerd proxy-init, Istio istio-iptables /
// istio-nftables, Istio ambient in-pod rules) and derives their settings from pod and namespace annotations.
package capture
