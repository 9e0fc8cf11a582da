package kubeproxy

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func testSvc(name string, mut func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       corev1.ServiceSpec{ClusterIP: "172.30.0.10", Ports: []corev1.ServicePort{{Name: "p80", Protocol: corev1.ProtocolTCP, Port: 80}}},
	}
	if mut != nil {
		mut(s)
	}
	return s
}

type testEP struct {
	ip, node, zone string
	ready          bool
	terminating    bool
	zoneHints      []string
	nodeHints      []string
}

func testSlice(svc string, eps ...testEP) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: svc + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr("p80"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
	}
	for _, e := range eps {
		ep := discoveryv1.Endpoint{Addresses: []string{e.ip}, NodeName: ptr(e.node), Zone: ptr(e.zone),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(e.ready), Serving: ptr(e.ready || e.terminating), Terminating: ptr(e.terminating)}}
		if e.zoneHints != nil || e.nodeHints != nil {
			ep.Hints = &discoveryv1.EndpointHints{}
			for _, z := range e.zoneHints {
				ep.Hints.ForZones = append(ep.Hints.ForZones, discoveryv1.ForZone{Name: z})
			}
			for _, n := range e.nodeHints {
				ep.Hints.ForNodes = append(ep.Hints.ForNodes, discoveryv1.ForNode{Name: n})
			}
		}
		es.Endpoints = append(es.Endpoints, ep)
	}
	return es
}

func endpointsOf(r Result) string {
	var s []string
	for _, c := range r.Endpoints {
		s = append(s, c.Endpoint.String())
	}
	return strings.Join(s, ",")
}

func TestTranslateModelsTopologyAffinityAndIgnoredObjects(t *testing.T) {
	pod := netip.MustParseAddr("10.0.0.99")
	vip := netip.MustParseAddr("172.30.0.10")
	cases := []struct {
		name      string
		svcs      []*corev1.Service
		slices    []*discoveryv1.EndpointSlice
		flow      Flow
		verdict   Verdict
		endpoints string
		masq      bool
	}{
		{
			name: "zone hints for this node's zone restrict cluster traffic to that zone",
			svcs: []*corev1.Service{testSvc("web", nil)},
			slices: []*discoveryv1.EndpointSlice{testSlice("web",
				testEP{ip: "10.1.0.1", node: "n1", ready: true, zoneHints: []string{"a"}},
				testEP{ip: "10.1.0.2", node: "n2", ready: true, zoneHints: []string{"b"}})},
			flow: Flow{Src: pod, Dst: vip, DstPort: 80}, verdict: VerdictDNAT, endpoints: "10.1.0.1:8080",
		},
		{
			name: "zone hints are ignored when one ready endpoint lacks a hint",
			svcs: []*corev1.Service{testSvc("web", nil)},
			slices: []*discoveryv1.EndpointSlice{testSlice("web",
				testEP{ip: "10.1.0.1", node: "n1", ready: true, zoneHints: []string{"a"}},
				testEP{ip: "10.1.0.2", node: "n2", ready: true})},
			flow: Flow{Src: pod, Dst: vip, DstPort: 80}, verdict: VerdictDNAT, endpoints: "10.1.0.1:8080,10.1.0.2:8080",
		},
		{
			name: "node hints (PreferSameNode) naming this node win over zone hints",
			svcs: []*corev1.Service{testSvc("web", nil)},
			slices: []*discoveryv1.EndpointSlice{testSlice("web",
				testEP{ip: "10.1.0.1", node: "n1", ready: true, zoneHints: []string{"a"}, nodeHints: []string{"n1"}},
				testEP{ip: "10.1.0.2", node: "n2", ready: true, zoneHints: []string{"a"}, nodeHints: []string{"n2"}})},
			flow: Flow{Src: pod, Dst: vip, DstPort: 80}, verdict: VerdictDNAT, endpoints: "10.1.0.1:8080",
		},
		{
			name: "serving terminating endpoints are used only when nothing is ready",
			svcs: []*corev1.Service{testSvc("web", nil)},
			slices: []*discoveryv1.EndpointSlice{testSlice("web",
				testEP{ip: "10.1.0.1", node: "n2", terminating: true},
				testEP{ip: "10.1.0.2", node: "n3", terminating: true})},
			flow: Flow{Src: pod, Dst: vip, DstPort: 80}, verdict: VerdictDNAT, endpoints: "10.1.0.1:8080,10.1.0.2:8080",
		},
		{
			name:    "a service whose only endpoint is not ready rejects",
			svcs:    []*corev1.Service{testSvc("web", nil)},
			slices:  []*discoveryv1.EndpointSlice{testSlice("web", testEP{ip: "10.1.0.1", node: "n2"})},
			flow:    Flow{Src: pod, Dst: vip, DstPort: 80},
			verdict: VerdictReject,
		},
		{
			name: "sessionAffinity ClientIP still spreads first connections over all endpoints",
			svcs: []*corev1.Service{testSvc("web", func(s *corev1.Service) { s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP })},
			slices: []*discoveryv1.EndpointSlice{testSlice("web",
				testEP{ip: "10.1.0.1", node: "n1", ready: true}, testEP{ip: "10.1.0.2", node: "n2", ready: true})},
			flow: Flow{Src: pod, Dst: vip, DstPort: 80}, verdict: VerdictDNAT, endpoints: "10.1.0.1:8080,10.1.0.2:8080",
		},
		{
			name:    "a headless service is not proxied",
			svcs:    []*corev1.Service{testSvc("web", func(s *corev1.Service) { s.Spec.ClusterIP = "None" })},
			slices:  []*discoveryv1.EndpointSlice{testSlice("web", testEP{ip: "10.1.0.1", node: "n1", ready: true})},
			flow:    Flow{Src: pod, Dst: vip, DstPort: 80},
			verdict: VerdictDrop, // unallocated IP inside the service CIDR (nftables)
		},
		{
			name: "a LoadBalancer ingress in ipMode Proxy is not captured",
			svcs: []*corev1.Service{testSvc("web", func(s *corev1.Service) {
				s.Spec.Type = corev1.ServiceTypeLoadBalancer
				s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "1.2.3.4", IPMode: ptr(corev1.LoadBalancerIPModeProxy)}}
			})},
			slices:  []*discoveryv1.EndpointSlice{testSlice("web", testEP{ip: "10.1.0.1", node: "n1", ready: true})},
			flow:    Flow{Src: netip.MustParseAddr("203.0.113.9"), Dst: netip.MustParseAddr("1.2.3.4"), DstPort: 80},
			verdict: VerdictNone,
		},
		{
			name:    "an IPv6 packet is unknown to the IPv4 proxier",
			svcs:    []*corev1.Service{testSvc("web", nil)},
			flow:    Flow{Src: netip.MustParseAddr("fd00::1"), Dst: netip.MustParseAddr("fd00::2"), DstPort: 80},
			verdict: VerdictUnknown,
		},
	}
	for _, mode := range []Mode{ModeNFTables, ModeIPTables} {
		for _, tc := range cases {
			t.Run(string(mode)+"/"+tc.name, func(t *testing.T) {
				cfg := Config{Mode: mode, NodeName: "n1", Zone: "a", NodeIP: netip.MustParseAddr("192.168.0.2"),
					NodeIPs: []netip.Addr{netip.MustParseAddr("192.168.0.2")}, PodCIDR: netip.MustParsePrefix("10.0.0.0/8"),
					ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")}}
				idx, err := NewIndex(cfg, tc.svcs, tc.slices)
				if err != nil {
					t.Fatal(err)
				}
				r := idx.Translate(tc.flow)
				want := tc.verdict
				if mode == ModeIPTables && tc.name == "a headless service is not proxied" {
					want = VerdictNone // iptables mode has no unallocated-ClusterIP check
				}
				if r.Verdict != want || endpointsOf(r) != tc.endpoints || r.Masquerade != tc.masq {
					t.Fatalf("got %s [%s] masq=%v, want %s [%s] masq=%v\nwhy: %s\nchains: %v", r.Verdict, endpointsOf(r), r.Masquerade, want, tc.endpoints, tc.masq, r.Why, r.Chains)
				}
				if r.Why == "" {
					t.Fatal("every result must say why")
				}
			})
		}
	}
}

func TestNewIndexExplainsWhatItIgnores(t *testing.T) {
	es := testSlice("web", testEP{ip: "10.1.0.1", node: "n1", ready: true})
	es.Ports[0].Name = nil
	idx, err := NewIndex(Config{NodeName: "n1"}, []*corev1.Service{testSvc("web", nil)}, []*discoveryv1.EndpointSlice{es})
	if err != nil {
		t.Fatal(err)
	}
	if len(idx.Notes) != 1 || !strings.Contains(idx.Notes[0], "without a name") {
		t.Fatalf("notes = %q", idx.Notes)
	}
	if _, err := NewIndex(Config{Mode: "ipvs"}, nil, nil); err == nil || !strings.Contains(err.Error(), "unknown mode") {
		t.Fatalf("bad mode error = %v", err)
	}
}
