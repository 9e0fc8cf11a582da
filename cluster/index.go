package cluster

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// IPOwnerKind says what an address belongs to.
type IPOwnerKind string

const (
	OwnerPod            IPOwnerKind = "Pod"
	OwnerHostNetworkPod IPOwnerKind = "HostNetworkPod" // shares its node's address
	OwnerNode           IPOwnerKind = "Node"
	OwnerNodeCNI        IPOwnerKind = "NodeCNI" // a node's own address on the pod network (bridge cni0, flannel.1, cilium_host)
	OwnerClusterIP      IPOwnerKind = "ClusterIP"
	OwnerExternalIP     IPOwnerKind = "ExternalIP"
	OwnerLoadBalancerIP IPOwnerKind = "LoadBalancerIP"
)

// IPOwner is one object that holds an address.
type IPOwner struct {
	Kind IPOwnerKind
	Ref  Ref
}

// ServicePort is one port of one Service reachable at some address (VIP, external IP, LB IP, or any node IP for
// NodePorts).
type ServicePort struct {
	Service *corev1.Service
	Port    *corev1.ServicePort
	Via     IPOwnerKind // ClusterIP | ExternalIP | LoadBalancerIP | Node (NodePort)
}

type vipKey struct {
	ip    netip.Addr
	port  int32
	proto corev1.Protocol
}

type nodePortKey struct {
	port  int32
	proto corev1.Protocol
}

// labelIndex is an inverted index from label key=value (and key) to object ids, so selector queries touch only the
// objects that can match.
type labelIndex struct {
	kv   map[string][]int32
	keys map[string][]int32
	all  []int32
}

func newLabelIndex() *labelIndex {
	return &labelIndex{kv: map[string][]int32{}, keys: map[string][]int32{}}
}

func (li *labelIndex) add(id int32, ls map[string]string) {
	li.all = append(li.all, id)
	for k, v := range ls {
		li.kv[k+"="+v] = append(li.kv[k+"="+v], id)
		li.keys[k] = append(li.keys[k], id)
	}
}

// candidates returns the smallest posting list any requirement of sel narrows to (ids sorted ascending), or all.
func (li *labelIndex) candidates(sel labels.Selector) []int32 {
	reqs, _ := sel.Requirements()
	best := li.all
	for _, r := range reqs {
		var c []int32
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			vals := r.Values().UnsortedList()
			if len(vals) == 1 {
				c = li.kv[r.Key()+"="+vals[0]]
			} else {
				seen := map[int32]bool{}
				for _, v := range vals {
					for _, id := range li.kv[r.Key()+"="+v] {
						if !seen[id] {
							seen[id] = true
							c = append(c, id)
						}
					}
				}
				sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
			}
		case selection.Exists:
			c = li.keys[r.Key()]
		default:
			continue
		}
		if len(c) < len(best) {
			best = c
		}
	}
	return best
}

type index struct {
	namespaces map[string]*corev1.Namespace
	nodes      map[string]*corev1.Node
	pods       map[string]*corev1.Pod
	services   map[string]*corev1.Service
	configMaps map[string]*corev1.ConfigMap
	byIP       map[netip.Addr][]IPOwner
	vip        map[vipKey][]ServicePort
	nodePort   map[nodePortKey]ServicePort
	slicesBy   map[string][]*discoveryv1.EndpointSlice // by namespace/service-name
	podsByNode map[string][]*corev1.Pod
	podsByNS   map[string][]*corev1.Pod
	podLabels  map[string]*labelIndex // per namespace; ids index into podsByNS[ns]
	nsLabels   *labelIndex            // ids index into Snapshot.Namespaces
	nodeLabels *labelIndex            // ids index into Snapshot.Nodes
	owners     map[string]Ref         // pod key → top-level controller (Deployment, StatefulSet, ...)
	slicesByIP map[netip.Addr][]*discoveryv1.EndpointSlice
	svcsByNS   map[string][]*corev1.Service
}

func (s *Snapshot) buildIndex() {
	x := &index{
		namespaces: make(map[string]*corev1.Namespace, len(s.Namespaces)),
		nodes:      make(map[string]*corev1.Node, len(s.Nodes)),
		pods:       make(map[string]*corev1.Pod, len(s.Pods)),
		services:   make(map[string]*corev1.Service, len(s.Services)),
		configMaps: make(map[string]*corev1.ConfigMap, len(s.ConfigMaps)),
		byIP:       make(map[netip.Addr][]IPOwner, len(s.Pods)+len(s.Services)+len(s.Nodes)),
		vip:        make(map[vipKey][]ServicePort, len(s.Services)),
		nodePort:   map[nodePortKey]ServicePort{},
		slicesBy:   make(map[string][]*discoveryv1.EndpointSlice, len(s.Services)),
		podsByNode: make(map[string][]*corev1.Pod, len(s.Nodes)),
		podsByNS:   map[string][]*corev1.Pod{},
		podLabels:  map[string]*labelIndex{},
		nsLabels:   newLabelIndex(),
		nodeLabels: newLabelIndex(),
		owners:     make(map[string]Ref, len(s.Pods)),
		svcsByNS:   map[string][]*corev1.Service{},
		slicesByIP: make(map[netip.Addr][]*discoveryv1.EndpointSlice, len(s.Pods)),
	}
	addIP := func(v string, o IPOwner) {
		if ip, err := netip.ParseAddr(v); err == nil {
			x.byIP[ip] = append(x.byIP[ip], o)
		}
	}
	for i, n := range s.Namespaces {
		x.namespaces[n.Name] = n
		x.nsLabels.add(int32(i), n.Labels)
	}
	for i, n := range s.Nodes {
		x.nodes[n.Name] = n
		x.nodeLabels.add(int32(i), n.Labels)
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				addIP(a.Address, IPOwner{OwnerNode, refOf("Node", n)})
			}
		}
		for _, a := range cniAddrs(s.Profile, n) {
			x.byIP[a] = append(x.byIP[a], IPOwner{OwnerNodeCNI, refOf("Node", n)})
		}
	}
	rsOwner := map[string]Ref{}
	for _, rs := range s.ReplicaSets {
		for _, o := range rs.OwnerReferences {
			if o.Controller != nil && *o.Controller && o.Kind == "Deployment" {
				rsOwner[key(rs.Namespace, rs.Name)] = Ref{Kind: "Deployment", Namespace: rs.Namespace, Name: o.Name}
			}
		}
	}
	jobOwner := map[string]Ref{}
	for _, j := range s.Jobs {
		for _, o := range j.OwnerReferences {
			if o.Controller != nil && *o.Controller && o.Kind == "CronJob" {
				jobOwner[key(j.Namespace, j.Name)] = Ref{Kind: "CronJob", Namespace: j.Namespace, Name: o.Name}
			}
		}
	}
	for _, p := range s.Pods {
		k := key(p.Namespace, p.Name)
		x.pods[k] = p
		ns := p.Namespace
		li := x.podLabels[ns]
		if li == nil {
			li = newLabelIndex()
			x.podLabels[ns] = li
		}
		li.add(int32(len(x.podsByNS[ns])), p.Labels)
		x.podsByNS[ns] = append(x.podsByNS[ns], p)
		if p.Spec.NodeName != "" {
			x.podsByNode[p.Spec.NodeName] = append(x.podsByNode[p.Spec.NodeName], p)
		}
		kind := OwnerPod
		if p.Spec.HostNetwork {
			kind = OwnerHostNetworkPod
		}
		for _, ip := range podIPs(p) {
			addIP(ip, IPOwner{kind, refOf("Pod", p)})
		}
		owner := Ref{Kind: "Pod", Namespace: p.Namespace, Name: p.Name}
		for _, o := range p.OwnerReferences {
			if o.Controller == nil || !*o.Controller {
				continue
			}
			owner = Ref{Kind: o.Kind, Namespace: p.Namespace, Name: o.Name}
			if o.Kind == "ReplicaSet" {
				if d, ok := rsOwner[key(p.Namespace, o.Name)]; ok {
					owner = d
				}
			}
			if o.Kind == "Job" {
				if cj, ok := jobOwner[key(p.Namespace, o.Name)]; ok {
					owner = cj
				}
			}
		}
		x.owners[k] = owner
	}
	for _, svc := range s.Services {
		x.services[key(svc.Namespace, svc.Name)] = svc
		x.svcsByNS[svc.Namespace] = append(x.svcsByNS[svc.Namespace], svc)
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			addVIP := func(v string, via IPOwnerKind) {
				ip, err := netip.ParseAddr(v)
				if err != nil {
					return
				}
				k := vipKey{ip, sp.Port, sp.Protocol}
				x.vip[k] = append(x.vip[k], ServicePort{svc, sp, via})
			}
			if svc.Spec.ClusterIP != corev1.ClusterIPNone {
				for _, ip := range svc.Spec.ClusterIPs {
					addVIP(ip, OwnerClusterIP)
				}
			}
			for _, ip := range svc.Spec.ExternalIPs {
				addVIP(ip, OwnerExternalIP)
			}
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				if ing.IP != "" {
					addVIP(ing.IP, OwnerLoadBalancerIP)
				}
			}
			if sp.NodePort != 0 {
				x.nodePort[nodePortKey{sp.NodePort, sp.Protocol}] = ServicePort{svc, sp, OwnerNode}
			}
		}
		ref := refOf("Service", svc)
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			for _, ip := range svc.Spec.ClusterIPs {
				addIP(ip, IPOwner{OwnerClusterIP, ref})
			}
		}
		for _, ip := range svc.Spec.ExternalIPs {
			addIP(ip, IPOwner{OwnerExternalIP, ref})
		}
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				addIP(ing.IP, IPOwner{OwnerLoadBalancerIP, ref})
			}
		}
	}
	for _, cm := range s.ConfigMaps {
		x.configMaps[key(cm.Namespace, cm.Name)] = cm
	}
	for _, sl := range s.EndpointSlices {
		if n := sl.Labels[discoveryv1.LabelServiceName]; n != "" {
			k := key(sl.Namespace, n)
			x.slicesBy[k] = append(x.slicesBy[k], sl)
		}
		for _, ep := range sl.Endpoints {
			for _, a := range ep.Addresses {
				if ip, err := netip.ParseAddr(a); err == nil {
					if l := x.slicesByIP[ip]; len(l) == 0 || l[len(l)-1] != sl {
						x.slicesByIP[ip] = append(l, sl)
					}
				}
			}
		}
	}
	s.idx = x
}

// ---- lookups (all O(1) or proportional to the answer) ----

// Namespace returns a namespace by name, or nil.
func (s *Snapshot) Namespace(name string) *corev1.Namespace { return s.idx.namespaces[name] }

// NamespaceExists reports whether a namespace is in the snapshot.
func (s *Snapshot) NamespaceExists(name string) bool { return s.idx.namespaces[name] != nil }

// Node returns a node by name, or nil.
func (s *Snapshot) Node(name string) *corev1.Node { return s.idx.nodes[name] }

// Pod returns a pod by namespace and name, or nil.
func (s *Snapshot) Pod(ns, name string) *corev1.Pod { return s.idx.pods[key(ns, name)] }

// Service returns a Service by namespace and name, or nil.
func (s *Snapshot) Service(ns, name string) *corev1.Service { return s.idx.services[key(ns, name)] }

// ConfigMap returns a ConfigMap by namespace and name, or nil.
func (s *Snapshot) ConfigMap(ns, name string) *corev1.ConfigMap {
	return s.idx.configMaps[key(ns, name)]
}

// ServicesIn lists the Services of a namespace, sorted by name.
func (s *Snapshot) ServicesIn(ns string) []*corev1.Service { return s.idx.svcsByNS[ns] }

// PodsIn lists the pods of a namespace, sorted by name.
func (s *Snapshot) PodsIn(ns string) []*corev1.Pod { return s.idx.podsByNS[ns] }

// PodsOnNode lists the pods scheduled to a node, sorted by namespace/name.
func (s *Snapshot) PodsOnNode(node string) []*corev1.Pod { return s.idx.podsByNode[node] }

// SlicesFor returns the slices of a Service (label kubernetes.io/service-name).
func (s *Snapshot) SlicesFor(ns, svc string) []*discoveryv1.EndpointSlice {
	return s.idx.slicesBy[key(ns, svc)]
}

// IPOwners lists what holds an address: pods, nodes, Service VIPs. Several owners are normal (hostNetwork pods and
// their node; a Service's LoadBalancer IP that is also a node IP).
func (s *Snapshot) IPOwners(ip netip.Addr) []IPOwner { return s.idx.byIP[ip.Unmap()] }

// PodsByIP returns the pods that have an address (one for pod-network pods; every hostNetwork pod of a node).
func (s *Snapshot) PodsByIP(ip netip.Addr) []*corev1.Pod {
	var out []*corev1.Pod
	for _, o := range s.idx.byIP[ip.Unmap()] {
		if o.Kind == OwnerPod || o.Kind == OwnerHostNetworkPod {
			out = append(out, s.idx.pods[o.Ref.Key()])
		}
	}
	return out
}

// ServiceByIP returns the Service whose ClusterIP is ip, or nil.
func (s *Snapshot) ServiceByIP(ip netip.Addr) *corev1.Service {
	for _, o := range s.idx.byIP[ip.Unmap()] {
		if o.Kind == OwnerClusterIP {
			return s.idx.services[o.Ref.Key()]
		}
	}
	return nil
}

// SlicesByAddress returns the EndpointSlices that have an endpoint with address ip (reverse DNS, "which Services
// front this pod").
func (s *Snapshot) SlicesByAddress(ip netip.Addr) []*discoveryv1.EndpointSlice {
	return s.idx.slicesByIP[ip.Unmap()]
}

// NodeByIP returns the node with that InternalIP/ExternalIP, or that uses the address on the pod network (its
// bridge or tunnel device, which is what a node's traffic to pods is masqueraded to), or nil.
func (s *Snapshot) NodeByIP(ip netip.Addr) *corev1.Node {
	for _, o := range s.idx.byIP[ip.Unmap()] {
		if o.Kind == OwnerNode || o.Kind == OwnerNodeCNI {
			return s.idx.nodes[o.Ref.Name]
		}
	}
	return nil
}

// ServicePortsAt returns the Service ports answering at ip:port/proto through a ClusterIP, external IP or
// LoadBalancer IP (several only when the input is inconsistent).
func (s *Snapshot) ServicePortsAt(ip netip.Addr, port int32, proto corev1.Protocol) []ServicePort {
	return s.idx.vip[vipKey{ip.Unmap(), port, proto}]
}

// ServiceByNodePort returns the Service port that owns a NodePort.
func (s *Snapshot) ServiceByNodePort(port int32, proto corev1.Protocol) (ServicePort, bool) {
	sp, ok := s.idx.nodePort[nodePortKey{port, proto}]
	return sp, ok
}

// PodsMatching returns the pods of namespace ns (every namespace when ns is "") whose labels match sel, in
// namespace/name order. The inverted label index limits the work to pods that can match.
func (s *Snapshot) PodsMatching(ns string, sel labels.Selector) []*corev1.Pod {
	if ns == "" {
		var out []*corev1.Pod
		for _, n := range s.Namespaces {
			out = append(out, s.PodsMatching(n.Name, sel)...)
		}
		return out
	}
	li := s.idx.podLabels[ns]
	if li == nil {
		return nil
	}
	pods := s.idx.podsByNS[ns]
	var out []*corev1.Pod
	for _, id := range li.candidates(sel) {
		if p := pods[id]; sel.Matches(labels.Set(p.Labels)) {
			out = append(out, p)
		}
	}
	return out
}

// NamespacesMatching returns the namespaces whose labels match sel.
func (s *Snapshot) NamespacesMatching(sel labels.Selector) []*corev1.Namespace {
	var out []*corev1.Namespace
	for _, id := range s.idx.nsLabels.candidates(sel) {
		if n := s.Namespaces[id]; sel.Matches(labels.Set(n.Labels)) {
			out = append(out, n)
		}
	}
	return out
}

// NodesMatching returns the nodes whose labels match sel.
func (s *Snapshot) NodesMatching(sel labels.Selector) []*corev1.Node {
	var out []*corev1.Node
	for _, id := range s.idx.nodeLabels.candidates(sel) {
		if n := s.Nodes[id]; sel.Matches(labels.Set(n.Labels)) {
			out = append(out, n)
		}
	}
	return out
}

// WorkloadOf returns the top-level controller of a pod (Deployment rather than its ReplicaSet, CronJob rather than
// its Job), or the pod itself when it has none.
func (s *Snapshot) WorkloadOf(p *corev1.Pod) Ref {
	if r, ok := s.idx.owners[key(p.Namespace, p.Name)]; ok {
		return r
	}
	return refOf("Pod", p)
}

// NodeIP returns a node's primary address (first InternalIP, then ExternalIP).
func NodeIP(n *corev1.Node) netip.Addr { return nodeIP(n) }

// PodReady reports the pod's Ready condition.
func PodReady(p *corev1.Pod) bool { return podReady(p) }

// FindPort resolves a Service port's targetPort on a pod (named ports through the pod's container ports).
func FindPort(p *corev1.Pod, sp corev1.ServicePort) (int32, bool) { return findPort(p, sp) }

// cniAddrs are the addresses a node itself holds inside its pod CIDR, as the profile's CNI assigns them: the bridge
// gateway (.1: cni0 for bridge CNIs, cilium_host for Cilium) and the VXLAN device address (.0: flannel.1).
func cniAddrs(p Profile, n *corev1.Node) []netip.Addr {
	var out []netip.Addr
	for _, c := range n.Spec.PodCIDRs {
		pfx, err := netip.ParsePrefix(c)
		if err != nil {
			continue
		}
		base := pfx.Masked().Addr()
		switch p.CNI {
		case CNIFlannelVXLAN:
			out = append(out, base, base.Next())
		case CNIFlannelHostGW, CNIBridge, CNICiliumNative, CNICiliumVXLAN, CNICiliumGeneve:
			out = append(out, base.Next())
		}
	}
	return out
}
