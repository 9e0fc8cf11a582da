package mesh

import (
	"net/netip"
	"testing"
)

// BenchmarkInboundDecision is one inbound decision at a Linkerd pod (Server + AuthorizationPolicy +
// MeshTLSAuthentication) and one at an Istio pod (PeerAuthentication + AuthorizationPolicies), on the mesh demo.
func BenchmarkInboundDecision(b *testing.B) {
	m := meshSnapshot(b, "")
	s := m.Snapshot()
	api := s.Pod("linkerd-shop", "api-6c8f7d9b4-fghij")
	ratings := s.Pod("istio-shop", "ratings-v1-85cc46b6d4-6tqv7")
	b.ReportAllocs()
	for b.Loop() {
		m.LinkerdInbound(api, Request{Client: webClient, Port: 8080})
		m.IstioPeerMode(ratings, 9080)
		m.IstioInbound(ratings, Request{Client: revClient, Port: 9080})
	}
}

// BenchmarkIntercept walks one outbound connection through a pod's rendered interception rules (cached per pod).
func BenchmarkIntercept(b *testing.B) {
	m := meshSnapshot(b, "")
	p := m.Snapshot().Pod("istio-shop", "productpage-v1-6b746f74dc-9stvs")
	src, dst := netip.MustParseAddrPort("10.244.1.210:40000"), netip.MustParseAddrPort("10.96.60.11:9080")
	b.ReportAllocs()
	for b.Loop() {
		m.Intercept(p, Outbound, "TCP", src, dst, 0)
	}
}
