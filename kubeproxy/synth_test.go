package kubeproxy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ptr[T any](v T) *T { return &v }

// synthCluster builds n Services with epsPer endpoints each, cycling through ClusterIP,
// NodePort (eTP Local), LoadBalancer with source ranges and ClientIP affinity, and iTP Local.
func synthCluster(n, epsPer int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	var svcs []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i := 0; i < n; i++ {
		ns, name := fmt.Sprintf("ns%d", i%50), fmt.Sprintf("svc%d", i)
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.ServiceSpec{
				ClusterIP: netip.AddrFrom4([4]byte{172, 30, byte(i >> 8), byte(i)}).String(),
				Ports:     []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
			},
		}
		switch i % 4 {
		case 1:
			svc.Spec.Type = corev1.ServiceTypeNodePort
			svc.Spec.Ports[0].NodePort = int32(30000 + i%2700)
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		case 2:
			svc.Spec.Type = corev1.ServiceTypeLoadBalancer
			svc.Spec.Ports[0].NodePort = int32(30000 + i%2700)
			svc.Spec.LoadBalancerSourceRanges = []string{"203.0.113.0/24"}
			svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
			svc.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(600))}}
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}).String()}}
		case 3:
			svc.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
		}
		svcs = append(svcs, svc)
		es := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr("http"), Protocol: ptr(corev1.ProtocolTCP), Port: ptr(int32(8080))}},
		}
		for j := 0; j < epsPer; j++ {
			k := i*epsPer + j
			node := fmt.Sprintf("node-%d", k%20)
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
				Addresses: []string{netip.AddrFrom4([4]byte{10, byte(k >> 16), byte(k >> 8), byte(k)}).String()},
				NodeName:  &node,
			})
		}
		slices = append(slices, es)
	}
	return svcs, slices
}

func synthConfig(mode Mode) Config {
	return Config{
		Mode:              mode,
		NodeName:          "node-0",
		NodeIP:            netip.MustParseAddr("192.168.0.2"),
		NodeIPs:           []netip.Addr{netip.MustParseAddr("192.168.0.2")},
		PodCIDR:           netip.MustParsePrefix("10.0.0.0/8"),
		NodePortAddresses: []netip.Prefix{netip.MustParsePrefix("192.168.0.2/32")},
		ServiceCIDRs:      []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")},
	}
}
