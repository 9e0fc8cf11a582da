package kubeproxy

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Endpoint is one backend of a service port as kube-proxy sees it on this node.
type Endpoint struct {
	Addr        netip.Addr
	Port        int
	NodeName    string
	Zone        string
	Local       bool // nodeName equals Config.NodeName
	Ready       bool
	Serving     bool
	Terminating bool
	ZoneHints   []string
	NodeHints   []string

	str       string // kube-proxy's Endpoint.String(): "ip:port" / "[ip]:port"
	nftBase   string // endpoint chain/affinity set base name
	iptSEP    string // KUBE-SEP-... chain
	svcPortNS string // owning ServicePortName string, for comments
}

// String is "ip:port" ("[ip]:port" for IPv6), as kube-proxy prints endpoints.
func (e *Endpoint) String() string { return e.str }

// ServicePort is one (Service, port) pair of this IP family, with its endpoints categorised for
// this node exactly as kube-proxy's CategorizeEndpoints does.
type ServicePort struct {
	Namespace, Name, PortName string
	Protocol                  corev1.Protocol
	ClusterIP                 netip.Addr
	Port                      int
	NodePort                  int
	ExternalIPs               []netip.Addr
	LoadBalancerVIPs          []netip.Addr
	SourceRanges              []netip.Prefix
	HealthCheckNodePort       int
	SessionAffinity           bool
	StickySeconds             int
	ExternalPolicyLocal       bool
	InternalPolicyLocal       bool

	// All endpoints of the port (sorted like kube-proxy: by "ip:port" string).
	AllEndpoints []*Endpoint
	// ClusterEndpoints are usable for Cluster traffic policy (topology applied, terminating fallback).
	ClusterEndpoints []*Endpoint
	// LocalEndpoints are usable for Local traffic policy.
	LocalEndpoints []*Endpoint
	// Reachable is the union of the two: every endpoint this node may DNAT to.
	Reachable []*Endpoint
	// HasEndpoints: the service has usable endpoints somewhere in the cluster.
	HasEndpoints bool
	// TopologyMode is "", "PreferSameZone" or "PreferSameNode" (from endpoint hints).
	TopologyMode string

	proto     string // lower-case protocol as in rules
	spn       string // ServicePortName.String(): "ns/name:port" or "ns/name"
	id        int    // position in the sorted port list (the key of per-node views)
	hints     bool   // some endpoint carries topology hints (categorisation depends on node and zone)
	choices   *choiceCache
	nftBase   string
	iptHash   string
	portLabel string
}

// String is the ServicePortName ("ns/name:port", or "ns/name" for an unnamed port).
func (s *ServicePort) String() string { return s.spn }

// ExternallyAccessible: reachable by NodePort, externalIP or LoadBalancer IP.
func (s *ServicePort) ExternallyAccessible() bool {
	return s.NodePort != 0 || len(s.LoadBalancerVIPs) != 0 || len(s.ExternalIPs) != 0
}

func (s *ServicePort) usesClusterEndpoints() bool {
	return !s.InternalPolicyLocal || s.ExternallyAccessible()
}

func (s *ServicePort) usesLocalEndpoints() bool {
	return s.InternalPolicyLocal || (s.ExternalPolicyLocal && s.ExternallyAccessible())
}

func (s *ServicePort) usesClusterChain() bool {
	return len(s.ClusterEndpoints) > 0 && s.usesClusterEndpoints()
}
func (s *ServicePort) usesLocalChain() bool {
	return len(s.LocalEndpoints) > 0 && s.usesLocalEndpoints()
}

func (s *ServicePort) hasInternalEndpoints() bool {
	if s.InternalPolicyLocal {
		return s.HasEndpoints && len(s.LocalEndpoints) > 0
	}
	return s.HasEndpoints
}

func (s *ServicePort) hasExternalEndpoints() bool {
	if s.ExternalPolicyLocal {
		return s.HasEndpoints && len(s.LocalEndpoints) > 0
	}
	return s.HasEndpoints
}

func (s *ServicePort) usesExternalChain() bool { return s.HasEndpoints && s.ExternallyAccessible() }

// internalEndpoints are the endpoints ClusterIP traffic is spread over.
func (s *ServicePort) internalEndpoints() []*Endpoint {
	if s.InternalPolicyLocal {
		return s.LocalEndpoints
	}
	return s.ClusterEndpoints
}

// externalEndpoints are the endpoints external traffic not short-circuited is spread over.
func (s *ServicePort) externalEndpoints() []*Endpoint {
	if s.ExternalPolicyLocal {
		return s.LocalEndpoints
	}
	return s.ClusterEndpoints
}

type nodePortKey struct {
	proto string
	port  int
}

type vipKey struct {
	addr  netip.Addr
	proto string
	port  int
}

// Index is the node's kube-proxy state: service ports of one family with categorised endpoints
// and O(1) lookups by (IP, protocol, port) and by NodePort. Build it once with NewIndex, or take a
// cheap node view of a Shared index with Shared.Node. It is safe for concurrent use.
type Index struct {
	cfg Config
	// Ports are the service ports sorted by ServicePortName string, categorised for this node.
	// A node view (Shared.Node) leaves Ports nil and categorises lazily: use NumPorts and
	// ServicePorts instead, which work for both kinds.
	Ports []*ServicePort
	// Notes are input problems kube-proxy itself would log and skip (never fatal).
	Notes []string

	// shared is set for a node view: byVIP & co. belong to it and point at its uncategorised
	// ports, which port() turns into this node's categorised views.
	shared *Shared
	mu     sync.Mutex
	views  map[int]*ServicePort // node-specific views by port id (ports with a local endpoint or hints)

	byVIP       map[vipKey]vipTarget
	byNodePort  map[nodePortKey]*ServicePort
	byHCPort    map[int]*ServicePort
	clusterIPs  map[netip.Addr]bool
	localAddrs  map[netip.Addr]bool
	nodePortIPs map[netip.Addr]bool
	totalEps    int
}

type vipKind int

const (
	vipCluster vipKind = iota
	vipExternal
	vipLoadBalancer
)

func (k vipKind) String() string {
	switch k {
	case vipExternal:
		return "externalIP"
	case vipLoadBalancer:
		return "LoadBalancer IP"
	}
	return "ClusterIP"
}

type vipTarget struct {
	sp   *ServicePort
	kind vipKind
}

// Config returns the (normalised) configuration the index was built with.
func (idx *Index) Config() Config { return idx.cfg }

// NewIndex builds kube-proxy's view of the given Services and EndpointSlices for one node.
// Objects kube-proxy would ignore (headless, ExternalName, other family, unlabeled slices…) are
// skipped and explained in Index.Notes; only a bad Config is an error. To model many nodes of
// one cluster, parse once with NewShared and take node views with Shared.Node.
func NewIndex(cfg Config, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) (*Index, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	idx := build(cfg, svcs, eps)
	for _, sp := range idx.Ports {
		categorize(sp, cfg.NodeName, cfg.Zone)
		// Per-endpoint chain names are hashes; compute them only where a chain exists
		// (iptables: every reachable endpoint; nftables: only with ClientIP affinity).
		for _, e := range sp.Reachable {
			e.setChainName(sp, cfg.Mode)
		}
	}
	return idx, nil
}

func (e *Endpoint) setChainName(sp *ServicePort, mode Mode) {
	if mode == ModeIPTables {
		e.iptSEP = iptEndpointChain(sp.spn, sp.proto, e.str)
	} else if sp.SessionAffinity {
		e.nftBase = nftEndpointBase(sp.Namespace, sp.Name, sp.proto, sp.PortName, e.Addr.String(), strconv.Itoa(e.Port))
	}
}

// build parses Services and EndpointSlices for a normalised cfg: ports sorted, endpoints
// attached (Local per cfg.NodeName) and indexed by VIP / NodePort — everything but the
// node-dependent categorisation.
func build(cfg Config, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) *Index {
	idx := &Index{
		cfg:         cfg,
		byVIP:       map[vipKey]vipTarget{},
		byNodePort:  map[nodePortKey]*ServicePort{},
		byHCPort:    map[int]*ServicePort{},
		clusterIPs:  map[netip.Addr]bool{},
		localAddrs:  map[netip.Addr]bool{},
		nodePortIPs: map[netip.Addr]bool{},
	}
	for _, a := range cfg.NodeIPs {
		idx.localAddrs[a.Unmap()] = true
	}
	for _, a := range cfg.nodePortIPs() {
		idx.nodePortIPs[a] = true
	}

	type spnKey struct {
		ns, name, port string
		proto          corev1.Protocol
	}
	bySPN := map[spnKey]*ServicePort{}
	for _, svc := range svcs {
		for _, sp := range idx.servicePorts(svc) {
			bySPN[spnKey{sp.Namespace, sp.Name, sp.PortName, sp.Protocol}] = sp
			idx.Ports = append(idx.Ports, sp)
		}
	}

	// Endpoints per ServicePortName, deduplicated by "ip:port" preferring non-terminating ones.
	epSets := map[spnKey]map[string]*Endpoint{}
	wantType := discoveryv1.AddressTypeIPv4
	if cfg.isV6() {
		wantType = discoveryv1.AddressTypeIPv6
	}
	for _, es := range eps {
		if es == nil {
			continue
		}
		if es.AddressType != wantType {
			continue
		}
		svcName := es.Labels[discoveryv1.LabelServiceName]
		if svcName == "" {
			idx.Notes = append(idx.Notes, fmt.Sprintf("EndpointSlice %s/%s has no %s label: ignored, as kube-proxy does", es.Namespace, es.Name, discoveryv1.LabelServiceName))
			continue
		}
		for _, p := range es.Ports {
			if p.Name == nil {
				idx.Notes = append(idx.Notes, fmt.Sprintf("EndpointSlice %s/%s has a port without a name (not even \"\"): ignored, as kube-proxy does", es.Namespace, es.Name))
				continue
			}
			if p.Port == nil || *p.Port == 0 {
				idx.Notes = append(idx.Notes, fmt.Sprintf("EndpointSlice %s/%s port %q has no port number: ignored, as kube-proxy does", es.Namespace, es.Name, *p.Name))
				continue
			}
			proto := corev1.ProtocolTCP
			if p.Protocol != nil && *p.Protocol != "" {
				proto = *p.Protocol
			}
			key := spnKey{es.Namespace, svcName, *p.Name, proto}
			set := epSets[key]
			if set == nil {
				set = map[string]*Endpoint{}
				epSets[key] = set
			}
			for i := range es.Endpoints {
				e := &es.Endpoints[i]
				if len(e.Addresses) == 0 {
					continue
				}
				ip, ok := parseIPSloppy(e.Addresses[0])
				if !ok || ip.Is6() != cfg.isV6() {
					idx.Notes = append(idx.Notes, fmt.Sprintf("EndpointSlice %s/%s: endpoint address %q is not a valid %s address: ignored", es.Namespace, es.Name, e.Addresses[0], cfg.Family))
					continue
				}
				ep := &Endpoint{
					Addr:        ip,
					Port:        int(*p.Port),
					Ready:       e.Conditions.Ready == nil || *e.Conditions.Ready,
					Serving:     e.Conditions.Serving == nil || *e.Conditions.Serving,
					Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating,
				}
				if e.NodeName != nil {
					ep.NodeName = *e.NodeName
					ep.Local = cfg.NodeName != "" && *e.NodeName == cfg.NodeName
				}
				if e.Zone != nil {
					ep.Zone = *e.Zone
				}
				if e.Hints != nil {
					for _, z := range e.Hints.ForZones {
						ep.ZoneHints = append(ep.ZoneHints, z.Name)
					}
					for _, n := range e.Hints.ForNodes {
						ep.NodeHints = append(ep.NodeHints, n.Name)
					}
				}
				ep.str = hostPort(ip, ep.Port)
				if _, exists := set[ep.str]; !exists || !ep.Terminating {
					set[ep.str] = ep
				}
			}
		}
	}

	slices.SortFunc(idx.Ports, func(a, b *ServicePort) int {
		if c := strings.Compare(a.spn, b.spn); c != 0 {
			return c
		}
		return strings.Compare(a.proto, b.proto)
	})
	for i, sp := range idx.Ports {
		sp.id = i
		set := epSets[spnKey{sp.Namespace, sp.Name, sp.PortName, sp.Protocol}]
		sp.AllEndpoints = make([]*Endpoint, 0, len(set))
		for _, e := range set { // each Endpoint object belongs to exactly one service port
			e.svcPortNS = sp.spn
			sp.AllEndpoints = append(sp.AllEndpoints, e)
			if len(e.ZoneHints) > 0 || len(e.NodeHints) > 0 {
				sp.hints = true
			}
		}
		slices.SortFunc(sp.AllEndpoints, func(a, b *Endpoint) int { return strings.Compare(a.str, b.str) })
		idx.totalEps += len(sp.AllEndpoints)
		idx.indexPort(sp)
	}
	return idx
}

func (idx *Index) indexPort(sp *ServicePort) {
	idx.clusterIPs[sp.ClusterIP] = true
	add := func(a netip.Addr, kind vipKind) {
		k := vipKey{a, sp.proto, sp.Port}
		if _, dup := idx.byVIP[k]; dup {
			idx.Notes = append(idx.Notes, fmt.Sprintf("%s %s:%d/%s is claimed by more than one service port; %s ignored for it", kind, a, sp.Port, sp.Protocol, sp.spn))
			return
		}
		idx.byVIP[k] = vipTarget{sp, kind}
	}
	add(sp.ClusterIP, vipCluster)
	for _, a := range sp.ExternalIPs {
		add(a, vipExternal)
	}
	for _, a := range sp.LoadBalancerVIPs {
		add(a, vipLoadBalancer)
	}
	if sp.NodePort != 0 {
		k := nodePortKey{sp.proto, sp.NodePort}
		if _, dup := idx.byNodePort[k]; dup {
			idx.Notes = append(idx.Notes, fmt.Sprintf("NodePort %d/%s is claimed by more than one service port; %s ignored for it", sp.NodePort, sp.Protocol, sp.spn))
		} else {
			idx.byNodePort[k] = sp
		}
	}
	if sp.HealthCheckNodePort != 0 {
		if _, dup := idx.byHCPort[sp.HealthCheckNodePort]; !dup {
			idx.byHCPort[sp.HealthCheckNodePort] = sp
		}
	}
}

// servicePorts mirrors ServiceChangeTracker + newBaseServiceInfo for one Service.
func (idx *Index) servicePorts(svc *corev1.Service) []*ServicePort {
	if svc == nil {
		return nil
	}
	cfg := &idx.cfg
	ref := svc.Namespace + "/" + svc.Name
	if svc.Spec.ClusterIP == "" || svc.Spec.ClusterIP == corev1.ClusterIPNone {
		return nil // headless (or no IP yet): kube-proxy does not proxy it
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	cipStr := clusterIPByFamily(cfg.Family, svc)
	if cipStr == "" {
		return nil
	}
	cip, ok := parseIPSloppy(cipStr)
	if !ok {
		idx.Notes = append(idx.Notes, fmt.Sprintf("Service %s: clusterIP %q does not parse: ignored", ref, cipStr))
		return nil
	}
	svcType := svc.Spec.Type
	if svcType == "" {
		svcType = corev1.ServiceTypeClusterIP
	}
	externallyAccessible := svcType == corev1.ServiceTypeLoadBalancer || svcType == corev1.ServiceTypeNodePort ||
		(svcType == corev1.ServiceTypeClusterIP && len(svc.Spec.ExternalIPs) > 0)
	etpLocal := externallyAccessible && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	itpLocal := svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal

	var externalIPs, lbVIPs []netip.Addr
	for _, s := range svc.Spec.ExternalIPs {
		if a, ok := parseIPSloppy(s); ok && a.Is6() == cfg.isV6() {
			externalIPs = append(externalIPs, a)
		} else if !ok {
			idx.Notes = append(idx.Notes, fmt.Sprintf("Service %s: externalIP %q does not parse: ignored", ref, s))
		}
	}
	var ranges []netip.Prefix
	for _, s := range svc.Spec.LoadBalancerSourceRanges {
		if p, ok := parsePrefixSloppy(s); ok && p.Addr().Is6() == cfg.isV6() {
			ranges = append(ranges, p)
		} else if !ok {
			idx.Notes = append(idx.Notes, fmt.Sprintf("Service %s: loadBalancerSourceRange %q does not parse: ignored", ref, s))
		}
	}
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP == "" {
			continue
		}
		if ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP {
			continue // ipMode Proxy: the LB proxies, kube-proxy does not capture the IP
		}
		if a, ok := parseIPSloppy(ing.IP); ok && a.Is6() == cfg.isV6() {
			lbVIPs = append(lbVIPs, a)
		}
	}
	hc := 0
	if svcType == corev1.ServiceTypeLoadBalancer && etpLocal {
		hc = int(svc.Spec.HealthCheckNodePort)
	}
	sticky := 0
	affinity := svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP
	if affinity {
		sticky = int(corev1.DefaultClientIPServiceAffinitySeconds)
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			sticky = int(*c.ClientIP.TimeoutSeconds)
		}
	}

	var out []*ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		sp := &ServicePort{
			Namespace: svc.Namespace, Name: svc.Name, PortName: p.Name, Protocol: proto,
			ClusterIP: cip, Port: int(p.Port), NodePort: int(p.NodePort),
			ExternalIPs: externalIPs, LoadBalancerVIPs: lbVIPs, SourceRanges: ranges,
			HealthCheckNodePort: hc, SessionAffinity: affinity, StickySeconds: sticky,
			ExternalPolicyLocal: etpLocal, InternalPolicyLocal: itpLocal,
			proto: strings.ToLower(string(proto)),
		}
		sp.spn = ref
		if p.Name != "" {
			sp.spn = ref + ":" + p.Name
		}
		if cfg.Mode == ModeNFTables {
			sp.nftBase = nftServiceBase(svc.Namespace, svc.Name, sp.proto, p.Name)
		} else {
			sp.iptHash = iptPortProtoHash(sp.spn, sp.proto)
		}
		out = append(out, sp)
	}
	return out
}

// clusterIPByFamily mirrors proxyutil.GetClusterIPByFamily.
func clusterIPByFamily(fam corev1.IPFamily, svc *corev1.Service) string {
	if len(svc.Spec.IPFamilies) == 0 {
		a, ok := parseIPSloppy(svc.Spec.ClusterIP)
		if !ok {
			return ""
		}
		if a.Is6() == (fam == corev1.IPv6Protocol) {
			return svc.Spec.ClusterIP
		}
		return ""
	}
	for i, f := range svc.Spec.IPFamilies {
		if f == fam && i < len(svc.Spec.ClusterIPs) {
			return svc.Spec.ClusterIPs[i]
		}
	}
	return ""
}
