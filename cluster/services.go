package cluster

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func typesUID(s string) types.UID { return types.UID(s) }

// lbPool is where synthesized LoadBalancer ingress IPs come from (the range kind users give MetalLB).
var lbPool = netip.MustParsePrefix("172.18.255.0/24")

const (
	nodePortMin = 30000
	nodePortMax = 32767
)

// maxEndpointsPerSlice is the EndpointSlice controller's default --max-endpoints-per-slice.
const maxEndpointsPerSlice = 100

// serviceDefaults applies the API server's defaulting to fields kpath reads, as `kubectl apply` would store them.
func serviceDefaults(s *corev1.Service) {
	if s.Spec.Type == "" {
		s.Spec.Type = corev1.ServiceTypeClusterIP
	}
	if s.Spec.SessionAffinity == "" {
		s.Spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		if s.Spec.SessionAffinityConfig == nil || s.Spec.SessionAffinityConfig.ClientIP == nil ||
			s.Spec.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			s.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr.To(int32(10800))}}
		}
	}
	if s.Spec.Type != corev1.ServiceTypeExternalName && s.Spec.InternalTrafficPolicy == nil {
		s.Spec.InternalTrafficPolicy = ptr.To(corev1.ServiceInternalTrafficPolicyCluster)
	}
	if (s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer) && s.Spec.ExternalTrafficPolicy == "" {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	}
	for i := range s.Spec.Ports {
		p := &s.Spec.Ports[i]
		if p.Protocol == "" {
			p.Protocol = corev1.ProtocolTCP
		}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
}

func (b *builder) synthServices() {
	svcs := sortedValues(b.services)
	cidrs := b.snap.Profile.ServiceCIDRs
	usedVIP := map[netip.Addr]bool{}
	usedNodePort := map[string]bool{}
	usedLB := map[netip.Addr]bool{}
	for _, s := range svcs {
		serviceDefaults(s)
		ref := refOf("Service", s)
		if s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
			ips := s.Spec.ClusterIPs
			if len(ips) == 0 {
				ips = []string{s.Spec.ClusterIP}
			}
			var good []string
			for i, v := range ips {
				a, err := netip.ParseAddr(v)
				if err != nil {
					b.fieldError(ref, fmt.Sprintf("spec.clusterIPs[%d]", i), fmt.Sprintf("%q is not an IP address: %v; ignored", v, err))
					continue
				}
				usedVIP[a] = true
				good = append(good, v)
			}
			s.Spec.ClusterIPs = good
			s.Spec.ClusterIP = ""
			if len(good) > 0 {
				s.Spec.ClusterIP = good[0]
			}
		}
		for i, v := range s.Spec.ExternalIPs {
			if _, err := netip.ParseAddr(v); err != nil {
				b.fieldError(ref, fmt.Sprintf("spec.externalIPs[%d]", i), fmt.Sprintf("%q is not an IP address: %v", v, err))
			}
		}
		for i, v := range s.Spec.LoadBalancerSourceRanges {
			if _, err := netip.ParsePrefix(strings.TrimSpace(v)); err != nil {
				b.fieldError(ref, fmt.Sprintf("spec.loadBalancerSourceRanges[%d]", i), fmt.Sprintf("%q is not a CIDR: %v", v, err))
			}
		}
		for i, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP == "" {
				continue
			}
			if a, err := netip.ParseAddr(ing.IP); err != nil {
				b.fieldError(ref, fmt.Sprintf("status.loadBalancer.ingress[%d].ip", i), fmt.Sprintf("%q is not an IP address: %v", ing.IP, err))
			} else {
				usedLB[a] = true
			}
		}
		for _, p := range s.Spec.Ports {
			if p.NodePort != 0 {
				usedNodePort[fmt.Sprintf("%s/%d", p.Protocol, p.NodePort)] = true
			}
		}
		if s.Spec.Selector != nil {
			if _, err := labels.ValidatedSelectorFromSet(s.Spec.Selector); err != nil {
				b.fieldError(ref, "spec.selector", "invalid selector: "+err.Error())
			}
		}
	}
	for _, s := range svcs {
		ref := refOf("Service", s)
		if s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		if s.Spec.ClusterIP == "" && len(cidrs) > 0 {
			ip, ok := b.allocVIP(s, cidrs[0], usedVIP)
			if ok {
				s.Spec.ClusterIP = ip.String()
				s.Spec.ClusterIPs = []string{ip.String()}
				b.markSynth("Service", s, "allocated from the service CIDR "+cidrs[0].String(), "spec.clusterIP")
			} else {
				b.diag(Diagnostic{Severity: SeverityWarning, Object: ref.String(), Field: "spec.clusterIP",
					Message: "service CIDR " + cidrs[0].String() + " is full; no ClusterIP"})
			}
		}
		if len(s.Spec.IPFamilies) == 0 && s.Spec.ClusterIP != "" && s.Spec.ClusterIP != corev1.ClusterIPNone {
			for _, v := range s.Spec.ClusterIPs {
				if a, err := netip.ParseAddr(v); err == nil && a.Is6() {
					s.Spec.IPFamilies = append(s.Spec.IPFamilies, corev1.IPv6Protocol)
				} else {
					s.Spec.IPFamilies = append(s.Spec.IPFamilies, corev1.IPv4Protocol)
				}
			}
		}
		if s.Spec.Type == corev1.ServiceTypeNodePort || s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			synth := false
			for i := range s.Spec.Ports {
				p := &s.Spec.Ports[i]
				if p.NodePort != 0 {
					continue
				}
				if s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Spec.AllocateLoadBalancerNodePorts != nil && !*s.Spec.AllocateLoadBalancerNodePorts {
					continue
				}
				p.NodePort = allocNodePort(hash64("np", s.Namespace, s.Name, p.Name, fmt.Sprint(p.Port)), string(p.Protocol), usedNodePort)
				synth = true
			}
			if synth {
				b.markSynth("Service", s, "allocated from 30000-32767", "spec.ports[].nodePort")
			}
		}
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal && s.Spec.HealthCheckNodePort == 0 {
				s.Spec.HealthCheckNodePort = allocNodePort(hash64("hc", s.Namespace, s.Name), "TCP", usedNodePort)
				b.markSynth("Service", s, "allocated from 30000-32767", "spec.healthCheckNodePort")
			}
			if len(s.Status.LoadBalancer.Ingress) == 0 {
				ip := netip.Addr{}
				if a, err := netip.ParseAddr(s.Spec.LoadBalancerIP); err == nil {
					ip = a
				} else {
					h := hash64("lb", s.Namespace, s.Name)
					size := prefixSize(lbPool) - 2
					for i := uint64(0); i < size; i++ {
						cand := addrAdd(lbPool.Addr(), 1+(h+i)%size)
						if !usedLB[cand] {
							ip = cand
							break
						}
					}
				}
				if ip.IsValid() {
					usedLB[ip] = true
					s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}}
					b.markSynth("Service", s, "as a LoadBalancer controller (e.g. MetalLB) would assign, from "+lbPool.String(), "status.loadBalancer.ingress")
				}
			}
		}
	}
}

// allocVIP picks a ClusterIP deterministically from the service's name (so adding a Service does not renumber the
// others), probing linearly past used addresses. default/kubernetes gets the first address and kube-system/kube-dns
// the tenth, as kubeadm clusters have them.
func (b *builder) allocVIP(s *corev1.Service, cidr netip.Prefix, used map[netip.Addr]bool) (netip.Addr, bool) {
	base := cidr.Masked().Addr()
	size := prefixSize(cidr)
	if size < 4 {
		return netip.Addr{}, false
	}
	want := func(n uint64) (netip.Addr, bool) {
		ip := addrAdd(base, n)
		if !used[ip] {
			used[ip] = true
			return ip, true
		}
		return netip.Addr{}, false
	}
	switch key(s.Namespace, s.Name) {
	case "default/kubernetes":
		if ip, ok := want(1); ok {
			return ip, true
		}
	case "kube-system/kube-dns":
		if ip, ok := want(10); ok {
			return ip, true
		}
	}
	// Skip the network address, .1 (the kubernetes Service) and the last address; small offsets are left to the
	// well-known services above.
	lo := uint64(11)
	if size <= 16 {
		lo = 2
	}
	span := size - lo - 1
	h := hash64("vip", s.Namespace, s.Name)
	for i := uint64(0); i < span && i < 1<<20; i++ {
		if ip, ok := want(lo + (h+i)%span); ok {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

func allocNodePort(h uint64, proto string, used map[string]bool) int32 {
	span := uint64(nodePortMax - nodePortMin + 1)
	for i := uint64(0); i < span; i++ {
		p := int32(nodePortMin + (h+i)%span)
		k := fmt.Sprintf("%s/%d", proto, p)
		if !used[k] {
			used[k] = true
			return p
		}
	}
	return 0
}

// ---- endpoints ----

// buildSlices converts given v1 Endpoints to EndpointSlices where no slices exist for the Service (as the
// EndpointSlice mirroring controller does), then synthesizes slices for selector Services that have none.
func (b *builder) buildSlices() {
	have := map[string]bool{}
	for _, sl := range b.slices {
		if n := sl.Labels[discoveryv1.LabelServiceName]; n != "" {
			have[key(sl.Namespace, n)] = true
		}
	}
	for _, ep := range sortedValues(b.endpoints) {
		k := key(ep.Namespace, ep.Name)
		if have[k] {
			continue
		}
		for _, sl := range b.slicesFromEndpoints(ep) {
			b.slices[key(sl.Namespace, sl.Name)] = sl
			b.markSynth("EndpointSlice", sl, fmt.Sprintf("Endpoints %s (mirrored, no EndpointSlice given)", k), "*")
		}
		have[k] = true
	}
	// Pods per namespace, sorted, for selector matching.
	podsByNS := map[string][]*corev1.Pod{}
	for _, p := range b.podList() {
		podsByNS[p.Namespace] = append(podsByNS[p.Namespace], p)
	}
	for _, s := range sortedValues(b.services) {
		k := key(s.Namespace, s.Name)
		if have[k] || s.Spec.Selector == nil || s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		var pods []*corev1.Pod
		for _, p := range podsByNS[s.Namespace] {
			if sel.Matches(labels.Set(p.Labels)) {
				pods = append(pods, p)
			}
		}
		for _, sl := range b.slicesForService(s, pods) {
			b.slices[key(sl.Namespace, sl.Name)] = sl
			b.markSynth("EndpointSlice", sl, fmt.Sprintf("Service %s selector %s", k, sel), "*")
		}
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// findPort resolves a Service targetPort on a pod: a number as is, a name through the pod's container ports with the
// same protocol (as k8s.io/kubernetes/pkg/api/v1/pod.FindPort does).
func findPort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) {
	if sp.TargetPort.Type == intstr.Int {
		return sp.TargetPort.IntVal, true
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if cp.Name == sp.TargetPort.StrVal && proto == sp.Protocol {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// slicesForService builds slices as the EndpointSlice controller does: pods grouped by their resolved port set and
// address family, at most 100 endpoints per slice; conditions from pod readiness and deletion; hostname when the pod's
// subdomain is the Service; zone from the node; hints when trafficDistribution asks for them.
func (b *builder) slicesForService(s *corev1.Service, pods []*corev1.Pod) []*discoveryv1.EndpointSlice {
	type group struct {
		ports    []discoveryv1.EndpointPort
		family   discoveryv1.AddressType
		eps      []discoveryv1.Endpoint
		portsKey string
	}
	groups := map[string]*group{}
	var order []string
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		var ports []discoveryv1.EndpointPort
		var pk strings.Builder
		for _, sp := range s.Spec.Ports {
			num, ok := findPort(p, sp)
			if !ok {
				continue
			}
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Protocol: ptr.To(sp.Protocol),
				Port: ptr.To(num), AppProtocol: sp.AppProtocol})
			fmt.Fprintf(&pk, "%s/%s/%d;", sp.Name, sp.Protocol, num)
		}
		terminating := p.DeletionTimestamp != nil
		ready := podReady(p)
		for _, ipStr := range podIPs(p) {
			ip, err := netip.ParseAddr(ipStr)
			if err != nil {
				continue
			}
			fam := discoveryv1.AddressTypeIPv4
			if ip.Is6() {
				fam = discoveryv1.AddressTypeIPv6
			}
			gk := string(fam) + "|" + pk.String()
			g := groups[gk]
			if g == nil {
				g = &group{ports: ports, family: fam, portsKey: gk}
				groups[gk] = g
				order = append(order, gk)
			}
			ep := discoveryv1.Endpoint{
				Addresses: []string{ip.String()},
				Conditions: discoveryv1.EndpointConditions{
					Ready:       ptr.To((ready || s.Spec.PublishNotReadyAddresses) && !terminating),
					Serving:     ptr.To(ready || s.Spec.PublishNotReadyAddresses),
					Terminating: ptr.To(terminating),
				},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
			}
			if p.Spec.NodeName != "" {
				ep.NodeName = ptr.To(p.Spec.NodeName)
				if n := b.nodes[p.Spec.NodeName]; n != nil {
					if z := n.Labels[corev1.LabelTopologyZone]; z != "" {
						ep.Zone = ptr.To(z)
					}
				}
			}
			if p.Spec.Hostname != "" && p.Spec.Subdomain == s.Name {
				ep.Hostname = ptr.To(p.Spec.Hostname)
			}
			if td := s.Spec.TrafficDistribution; td != nil && ep.Zone != nil {
				switch *td {
				case corev1.ServiceTrafficDistributionPreferClose, "PreferSameZone":
					ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: *ep.Zone}}}
				case "PreferSameNode":
					ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: *ep.Zone}}}
					if ep.NodeName != nil {
						ep.Hints.ForNodes = []discoveryv1.ForNode{{Name: *ep.NodeName}}
					}
				}
			}
			g.eps = append(g.eps, ep)
		}
	}
	sort.Strings(order)
	var out []*discoveryv1.EndpointSlice
	mk := func(g *group, n int) *discoveryv1.EndpointSlice {
		sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
			Namespace: s.Namespace,
			Name:      s.Name + "-" + safeEncode(hash64("slice", s.Namespace, s.Name, g.portsKey, fmt.Sprint(n)), 5),
			Labels: map[string]string{discoveryv1.LabelServiceName: s.Name,
				discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"},
			OwnerReferences: []metav1.OwnerReference{controllerRef("v1", "Service", s.Name, string(s.UID))},
		}, AddressType: g.family, Ports: g.ports}
		sl.Kind, sl.APIVersion = "EndpointSlice", "discovery.k8s.io/v1"
		if len(s.Labels) > 0 {
			for k, v := range s.Labels {
				if _, reserved := sl.Labels[k]; !reserved {
					sl.Labels[k] = v
				}
			}
		}
		return sl
	}
	for _, gk := range order {
		g := groups[gk]
		for i := 0; i < len(g.eps); i += maxEndpointsPerSlice {
			sl := mk(g, i/maxEndpointsPerSlice)
			sl.Endpoints = g.eps[i:min(len(g.eps), i+maxEndpointsPerSlice)]
			out = append(out, sl)
		}
	}
	if len(out) == 0 {
		// The controller keeps one empty slice per Service so consumers can tell "no endpoints" from "not synced".
		fam := discoveryv1.AddressTypeIPv4
		if len(s.Spec.IPFamilies) > 0 && s.Spec.IPFamilies[0] == corev1.IPv6Protocol {
			fam = discoveryv1.AddressTypeIPv6
		}
		out = append(out, mk(&group{family: fam, portsKey: "empty"}, 0))
	}
	return out
}

func podIPs(p *corev1.Pod) []string {
	if len(p.Status.PodIPs) > 0 {
		out := make([]string, 0, len(p.Status.PodIPs))
		for _, ip := range p.Status.PodIPs {
			out = append(out, ip.IP)
		}
		return out
	}
	if p.Status.PodIP != "" {
		return []string{p.Status.PodIP}
	}
	return nil
}

func (b *builder) slicesFromEndpoints(ep *corev1.Endpoints) []*discoveryv1.EndpointSlice {
	var out []*discoveryv1.EndpointSlice
	for si, ss := range ep.Subsets {
		byFam := map[discoveryv1.AddressType][]discoveryv1.Endpoint{}
		add := func(a corev1.EndpointAddress, ready bool) {
			ip, err := netip.ParseAddr(a.IP)
			if err != nil {
				b.fieldError(refOf("Endpoints", ep), fmt.Sprintf("subsets[%d].addresses", si), fmt.Sprintf("%q is not an IP address", a.IP))
				return
			}
			fam := discoveryv1.AddressTypeIPv4
			if ip.Is6() {
				fam = discoveryv1.AddressTypeIPv6
			}
			e := discoveryv1.Endpoint{Addresses: []string{ip.String()}, TargetRef: a.TargetRef, NodeName: a.NodeName,
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(ready), Serving: ptr.To(ready), Terminating: ptr.To(false)}}
			if a.Hostname != "" {
				e.Hostname = ptr.To(a.Hostname)
			}
			byFam[fam] = append(byFam[fam], e)
		}
		for _, a := range ss.Addresses {
			add(a, true)
		}
		for _, a := range ss.NotReadyAddresses {
			add(a, false)
		}
		var ports []discoveryv1.EndpointPort
		for _, p := range ss.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(proto), AppProtocol: p.AppProtocol})
		}
		for _, fam := range []discoveryv1.AddressType{discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6} {
			eps := byFam[fam]
			if len(eps) == 0 {
				continue
			}
			sl := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: ep.Namespace,
				Name: fmt.Sprintf("%s-%s", ep.Name, safeEncode(hash64("mirror", ep.Namespace, ep.Name, fmt.Sprint(si), string(fam)), 5)),
				Labels: map[string]string{discoveryv1.LabelServiceName: ep.Name,
					discoveryv1.LabelManagedBy: "endpointslicemirroring-controller.k8s.io"}},
				AddressType: fam, Endpoints: eps, Ports: ports}
			sl.Kind, sl.APIVersion = "EndpointSlice", "discovery.k8s.io/v1"
			out = append(out, sl)
		}
	}
	return out
}
