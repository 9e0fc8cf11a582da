package trace

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kpath/kpath/cluster"
)

// dnsView lets the DNS model read the snapshot through its indexes.
type dnsView struct{ s *cluster.Snapshot }

func (v dnsView) Service(ns, name string) *corev1.Service { return v.s.Service(ns, name) }
func (v dnsView) EndpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	return v.s.SlicesFor(ns, svc)
}
func (v dnsView) NamespaceExists(ns string) bool                   { return v.s.NamespaceExists(ns) }
func (v dnsView) PodsByIP(ip netip.Addr) []*corev1.Pod             { return v.s.PodsByIP(ip) }
func (v dnsView) ServiceByClusterIP(ip netip.Addr) *corev1.Service { return v.s.ServiceByIP(ip) }
func (v dnsView) EndpointSlicesByAddress(ip netip.Addr) []*discoveryv1.EndpointSlice {
	return v.s.SlicesByAddress(ip)
}

// labelSel is a one-label selector.
type labelSel struct{ k, v string }

func (l labelSel) selector() labels.Selector { return labels.SelectorFromSet(labels.Set{l.k: l.v}) }
