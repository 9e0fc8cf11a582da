package kubeproxy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// Flow is the first packet of a connection arriving at (or leaving from) this node.
type Flow struct {
	Src, Dst netip.Addr
	// Protocol is TCP, UDP or SCTP; empty means TCP.
	Protocol corev1.Protocol
	DstPort  uint16
}

// Verdict is what kube-proxy's rules do with a packet.
type Verdict string

const (
	// VerdictDNAT: the destination is rewritten to one of Result.Endpoints.
	VerdictDNAT Verdict = "dnat"
	// VerdictReject: rejected (ICMP unreachable / TCP reset), e.g. a service without endpoints.
	VerdictReject Verdict = "reject"
	// VerdictDrop: silently dropped (e.g. LoadBalancerSourceRanges, no local endpoints).
	VerdictDrop Verdict = "drop"
	// VerdictAccept: explicitly accepted by a kube-proxy rule (iptables health-check NodePort).
	VerdictAccept Verdict = "accept"
	// VerdictNone: no kube-proxy rule applies; the packet passes through untouched.
	VerdictNone Verdict = "none"
	// VerdictUnknown: not decided by this model (see Why).
	VerdictUnknown Verdict = "unknown"
)

// Choice is one endpoint a DNATed packet may go to.
type Choice struct {
	Endpoint    netip.AddrPort
	NodeName    string
	Local       bool
	Probability float64
	// Masquerade: the connection is SNATed to the node when this endpoint is chosen.
	Masquerade bool
	// Chain is the per-endpoint chain (KUBE-SEP-…, endpoint-…); empty when nftables DNATs
	// straight from the service chain's map.
	Chain string
}

// Result is the service stage of a trace: what kube-proxy does to one Flow, and why.
type Result struct {
	Verdict Verdict
	// Service is the ServicePortName ("ns/name:port") whose rules matched, if any.
	Service string
	// Via is how the service was addressed: "ClusterIP", "externalIP", "LoadBalancer IP", "NodePort".
	Via string
	// Endpoints are the choices of a DNAT. The slice may be shared with other Results of the same
	// index (it is built once per service port view): treat it as read-only.
	Endpoints []Choice
	// Masquerade is true when the packet is SNATed whichever endpoint is chosen
	// (see Choice.Masquerade when it depends on the choice).
	Masquerade    bool
	MasqueradeWhy string
	// SessionAffinity describes ClientIP affinity ("ClientIP, 10800s"), if configured.
	SessionAffinity string
	// Chains are the chains the packet traversed, in order (hook chains included).
	Chains []string
	// Why explains the verdict in one or two sentences.
	Why string
}

// Translate models kube-proxy's rules for one packet (see Index.Translate).
func Translate(idx *Index, f Flow) Result { return idx.Translate(f) }

// Translate runs a packet through the modelled rules of idx's mode. It is O(1): a few map
// lookups, no rule walking. Only the packet's first pass is modelled (conntrack state NEW).
func (idx *Index) Translate(f Flow) Result {
	cfg := &idx.cfg
	f.Src, f.Dst = f.Src.Unmap(), f.Dst.Unmap()
	if !f.Src.IsValid() || !f.Dst.IsValid() {
		return Result{Verdict: VerdictUnknown, Why: "packet has no valid source or destination address"}
	}
	if f.Dst.Is6() != cfg.isV6() || f.Src.Is6() != cfg.isV6() {
		return Result{Verdict: VerdictUnknown, Why: fmt.Sprintf("packet is not %s; this index models only kube-proxy's %s proxier", cfg.Family, cfg.Family)}
	}
	proto := lowerProto(f.Protocol)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return Result{Verdict: VerdictNone, Why: fmt.Sprintf("kube-proxy only handles TCP, UDP and SCTP, not %s", f.Protocol)}
	}
	t := &tracer{idx: idx, f: f, proto: proto, port: int(f.DstPort)}
	t.res.Chains = make([]string, 0, 8)
	t.srcLocal = idx.isLocal(f.Src)
	t.dstLocal = idx.isLocal(f.Dst)
	t.srcPod = cfg.hasLocalDetector() && cfg.PodCIDR.Contains(f.Src)
	if cfg.Mode == ModeIPTables {
		t.iptables()
	} else {
		t.nftables()
	}
	return t.res
}

// lowerProto is the protocol as rules spell it ("tcp"), without allocating for the usual ones.
func lowerProto(p corev1.Protocol) string {
	switch p {
	case "", corev1.ProtocolTCP, "tcp":
		return "tcp"
	case corev1.ProtocolUDP, "udp":
		return "udp"
	case corev1.ProtocolSCTP, "sctp":
		return "sctp"
	}
	return strings.ToLower(string(p))
}

func (idx *Index) isLocal(a netip.Addr) bool { return a.IsLoopback() || idx.localAddrs[a] }

type tracer struct {
	idx                *Index
	f                  Flow
	proto              string
	port               int
	srcLocal, dstLocal bool
	srcPod             bool
	marked             bool
	res                Result
}

func (t *tracer) chain(names ...string) { t.res.Chains = append(t.res.Chains, names...) }

func (t *tracer) mark(why string) {
	if !t.marked {
		t.marked = true
		t.res.MasqueradeWhy = why
	}
}

func (t *tracer) finish(v Verdict, why string) {
	t.res.Verdict = v
	t.res.Why = why
	if v != VerdictDNAT {
		t.res.Masquerade = false
		if !t.marked {
			t.res.MasqueradeWhy = ""
		}
	}
}

func (t *tracer) lookupVIP() (vipTarget, bool) {
	vt, ok := t.idx.byVIP[vipKey{t.f.Dst, t.proto, t.port}]
	if ok {
		vt.sp = t.idx.port(vt.sp)
	}
	return vt, ok
}

func (t *tracer) nodePortService() (*ServicePort, bool) {
	sp, ok := t.idx.byNodePort[nodePortKey{t.proto, t.port}]
	return t.idx.port(sp), ok
}

func (t *tracer) healthCheckService() (*ServicePort, bool) {
	sp, ok := t.idx.byHCPort[t.port]
	return t.idx.port(sp), ok
}

func (t *tracer) setService(sp *ServicePort, via string) {
	t.res.Service, t.res.Via = sp.spn, via
	if sp.SessionAffinity {
		t.res.SessionAffinity = fmt.Sprintf("ClientIP, %ds", sp.StickySeconds)
	}
}

// dnat records the endpoint choices (uniformly random; ClientIP affinity pins a returning client) over the
// port's LocalEndpoints (local) or ClusterEndpoints.
func (t *tracer) dnat(sp *ServicePort, local bool, policy string) {
	eps := sp.ClusterEndpoints
	if local {
		eps = sp.LocalEndpoints
	}
	hairpin := false
	for _, e := range eps {
		// Hairpin: a pod reaching itself through the service must be SNATed or it would
		// answer itself directly (nftables: @hairpin-connections; iptables: KUBE-SEP "-s" rule).
		if e.Addr == t.f.Src && (e.Local || t.idx.cfg.Mode == ModeIPTables) {
			hairpin = true
			break
		}
	}
	if !hairpin && sp.choices != nil {
		// The list depends only on the port's view, the list and the mark: build it once and share it.
		slot := &sp.choices.lists[b2i(local)][b2i(t.marked)]
		if cs := slot.Load(); cs != nil {
			t.res.Endpoints = *cs
		} else {
			cs := t.choices(sp, eps)
			slot.CompareAndSwap(nil, &cs)
			t.res.Endpoints = *slot.Load()
		}
	} else {
		t.res.Endpoints = t.choices(sp, eps)
	}
	all := true
	for i := range t.res.Endpoints {
		all = all && t.res.Endpoints[i].Masquerade
	}
	t.res.Masquerade = all
	if all && !t.marked {
		t.res.MasqueradeWhy = "hairpin: the source is the chosen endpoint itself"
	}
	// Plain concatenation: this runs for every traced packet (fmt.Sprintf was a visible share of a trace).
	ne := strconv.Itoa(len(eps))
	why := t.res.Via + " " + t.f.Dst.String() + ":" + strconv.Itoa(int(t.f.DstPort)) + "/" + upperProto(t.proto) + " of " + sp.spn +
		" is DNATed to one of " + ne + " " + policy + " endpoint(s), each with probability 1/" + ne
	if sp.SessionAffinity {
		why += fmt.Sprintf("; sessionAffinity ClientIP keeps a returning client on its previous endpoint for %ds", sp.StickySeconds)
	}
	t.finish(VerdictDNAT, why)
}

// choices builds the Choice list for eps as seen by this packet.
func (t *tracer) choices(sp *ServicePort, eps []*Endpoint) []Choice {
	n := float64(len(eps))
	out := make([]Choice, 0, len(eps))
	for _, e := range eps {
		c := Choice{Endpoint: netip.AddrPortFrom(e.Addr, uint16(e.Port)), NodeName: e.NodeName, Local: e.Local, Probability: 1 / n, Masquerade: t.marked}
		if e.Addr == t.f.Src && (e.Local || t.idx.cfg.Mode == ModeIPTables) {
			c.Masquerade = true
		}
		if t.idx.cfg.Mode == ModeIPTables {
			c.Chain = e.iptSEP
		} else if sp.SessionAffinity {
			c.Chain = e.nftChain()
		}
		out = append(out, c)
	}
	return out
}

// choiceCache holds a port view's Choice lists, [local list][marked for masquerade], shared by every Result.
type choiceCache struct {
	lists [2][2]atomic.Pointer[[]Choice]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func upperProto(p string) string {
	switch p {
	case "tcp":
		return "TCP"
	case "udp":
		return "UDP"
	case "sctp":
		return "SCTP"
	}
	return strings.ToUpper(p)
}

func policyName(sp *ServicePort, local bool) string {
	if local {
		return "node-local"
	}
	if sp.TopologyMode != "" {
		return "topology-filtered (" + sp.TopologyMode + ")"
	}
	return "cluster-wide"
}

// ---- nftables ----

func (t *tracer) nftables() {
	cfg := &t.idx.cfg
	vt, hasVIP := t.lookupVIP()

	// filter-*-pre-dnat: LoadBalancerSourceRanges, on the original destination.
	if t.srcLocal {
		t.chain(nftFilterOutputPreDNAT)
	} else {
		t.chain(nftFilterPreroutingPreDNAT)
	}
	if hasVIP && vt.kind == vipLoadBalancer && len(vt.sp.SourceRanges) > 0 {
		t.chain(nftFirewallCheck, vt.sp.nftFirewallChain())
		if !t.sourceAllowed(vt.sp) {
			t.setService(vt.sp, vt.kind.String())
			t.finish(VerdictDrop, fmt.Sprintf("source %s is not in loadBalancerSourceRanges of %s", t.f.Src, vt.sp.spn))
			return
		}
	}

	// nat-*: service dispatch.
	if t.srcLocal {
		t.chain(nftNATOutput, nftServicesChain)
	} else {
		t.chain(nftNATPrerouting, nftServicesChain)
	}
	if t.idx.clusterIPs[t.f.Dst] {
		if cfg.MasqueradeAll {
			t.mark("masqueradeAll: all traffic to ClusterIPs is masqueraded")
		} else if cfg.hasLocalDetector() && !t.srcPod {
			t.mark(fmt.Sprintf("traffic to a ClusterIP from outside the pod CIDR %s is masqueraded", cfg.PodCIDR))
		}
	}
	if hasVIP {
		sp := vt.sp
		t.setService(sp, vt.kind.String())
		if vt.kind == vipCluster {
			if sp.hasInternalEndpoints() {
				t.chain(sp.nftInternalChain())
				t.dnat(sp, sp.InternalPolicyLocal, policyName(sp, sp.InternalPolicyLocal))
				return
			}
		} else if sp.HasEndpoints && t.nftExternal(sp) {
			return
		}
	} else if t.nftIsNodePortIP() {
		if sp, ok := t.nodePortService(); ok {
			t.setService(sp, "NodePort")
			if sp.HasEndpoints && t.nftExternal(sp) {
				return
			}
		}
	}

	// Not DNATed: the filter chains see the original destination.
	var hooks [][]string
	switch {
	case t.srcLocal && t.dstLocal:
		hooks = [][]string{{nftFilterOutput, nftServiceEPCheck, nftClusterIPsCheck}, {nftFilterInput, nftNodePortEPCheck, nftServiceEPCheck}}
	case t.srcLocal:
		hooks = [][]string{{nftFilterOutput, nftServiceEPCheck, nftClusterIPsCheck}}
	case t.dstLocal:
		hooks = [][]string{{nftFilterInput, nftNodePortEPCheck, nftServiceEPCheck}}
	default:
		hooks = [][]string{{nftFilterForward, nftServiceEPCheck, nftClusterIPsCheck}}
	}
	for _, h := range hooks {
		t.chain(h[0])
		for _, c := range h[1:] {
			if t.nftFilterCheck(c, vt, hasVIP) {
				return
			}
		}
	}
	t.finish(VerdictNone, "no kube-proxy rule matches this destination; the packet passes untouched")
}

func (t *tracer) nftIsNodePortIP() bool {
	if t.f.Dst.IsLoopback() {
		return false // localhost NodePorts are not supported in nftables mode
	}
	if t.idx.cfg.nodePortMatchAll() {
		return t.dstLocal
	}
	return t.idx.nodePortIPs[t.f.Dst]
}

// nftExternal runs the external-* chain; it reports whether the packet was DNATed.
func (t *tracer) nftExternal(sp *ServicePort) bool {
	return t.external(sp, sp.nftExternalChain(), sp.nftClusterChain(), sp.nftLocalChain())
}

// external is the external-traffic chain both modes program (nftables external-*, iptables KUBE-EXT-*), named by
// the mode: externalTrafficPolicy Cluster masquerades and goes cluster-wide; Local keeps the source for node-local
// endpoints, except that pod and node traffic short-circuit to the cluster chain.
func (t *tracer) external(sp *ServicePort, extChain, clusterChain, localChain string) bool {
	cfg := &t.idx.cfg
	t.chain(extChain)
	if !sp.ExternalPolicyLocal {
		t.mark("external traffic (externalTrafficPolicy: Cluster) is masqueraded: the endpoint may be on another node")
		t.chain(clusterChain)
		t.dnat(sp, false, policyName(sp, false))
		return true
	}
	if cfg.hasLocalDetector() && t.srcPod {
		t.chain(clusterChain)
		t.dnat(sp, false, policyName(sp, false)+" (pod traffic short-circuits externalTrafficPolicy: Local)")
		return true
	}
	if t.srcLocal {
		t.mark("traffic from the node itself to an external address is masqueraded")
		t.chain(clusterChain)
		t.dnat(sp, false, policyName(sp, false)+" (node traffic short-circuits externalTrafficPolicy: Local)")
		return true
	}
	if sp.hasExternalEndpoints() {
		t.chain(localChain)
		t.dnat(sp, true, "node-local (externalTrafficPolicy: Local, source IP preserved)")
		return true
	}
	return false
}

func (t *tracer) noEndpointVerdict(sp *ServicePort) (Verdict, string) {
	if !sp.HasEndpoints {
		return VerdictReject, fmt.Sprintf("%s has no usable endpoints", sp.spn)
	}
	return VerdictDrop, fmt.Sprintf("%s has no usable endpoints on node %s (traffic policy Local)", sp.spn, t.idx.cfg.NodeName)
}

func (t *tracer) nftFilterCheck(c string, vt vipTarget, hasVIP bool) bool {
	cfg := &t.idx.cfg
	switch c {
	case nftServiceEPCheck:
		if !hasVIP {
			return false
		}
		sp := vt.sp
		blocked := (vt.kind == vipCluster && !sp.hasInternalEndpoints()) || (vt.kind != vipCluster && !sp.hasExternalEndpoints())
		if blocked {
			t.chain(c)
			t.setService(sp, vt.kind.String())
			v, why := t.noEndpointVerdict(sp)
			if v == VerdictReject {
				// @no-endpoint-services maps the service to "goto reject-chain" (drop for Local-only misses).
				t.chain(nftRejectChain)
			}
			t.finish(v, why)
			return true
		}
	case nftClusterIPsCheck:
		if t.idx.clusterIPs[t.f.Dst] {
			t.chain(c)
			t.finish(VerdictReject, fmt.Sprintf("%s is a ClusterIP but no service exposes port %d/%s on it", t.f.Dst, t.f.DstPort, strings.ToUpper(t.proto)))
			return true
		}
		for _, p := range cfg.ServiceCIDRs {
			if p.Contains(t.f.Dst) {
				t.chain(c)
				t.finish(VerdictDrop, fmt.Sprintf("%s is inside service CIDR %s but not allocated to any service", t.f.Dst, p))
				return true
			}
		}
	case nftNodePortEPCheck:
		if !t.nftIsNodePortIP() {
			return false
		}
		if sp, ok := t.nodePortService(); ok && !sp.hasExternalEndpoints() {
			t.chain(c)
			t.setService(sp, "NodePort")
			v, why := t.noEndpointVerdict(sp)
			t.finish(v, why)
			return true
		}
	}
	return false
}

// sourceAllowed applies loadBalancerSourceRanges (plus the LB IPs themselves when a range
// contains the node IP, for VIPs looped back locally).
func (t *tracer) sourceAllowed(sp *ServicePort) bool {
	cfg := &t.idx.cfg
	allowFromNode := false
	for _, c := range sp.SourceRanges {
		if c.Contains(t.f.Src) {
			return true
		}
		if cfg.NodeIP.IsValid() && c.Contains(cfg.NodeIP.Unmap()) {
			allowFromNode = true
		}
	}
	if allowFromNode {
		for _, lb := range sp.LoadBalancerVIPs {
			if lb == t.f.Src {
				return true
			}
		}
	}
	return false
}

// ---- iptables ----

func (t *tracer) iptables() {
	cfg := &t.idx.cfg
	if t.srcLocal {
		t.chain("nat/OUTPUT", iptServices)
	} else {
		t.chain("nat/PREROUTING", iptServices)
	}
	vt, hasVIP := t.lookupVIP()
	if hasVIP {
		sp := vt.sp
		t.setService(sp, vt.kind.String())
		if vt.kind == vipCluster {
			if sp.hasInternalEndpoints() {
				t.chain(sp.iptInternalChain())
				if cfg.MasqueradeAll {
					t.mark("masqueradeAll: all traffic to ClusterIPs is masqueraded")
				} else if cfg.hasLocalDetector() && !t.srcPod {
					t.mark(fmt.Sprintf("traffic to a ClusterIP from outside the pod CIDR %s is masqueraded", cfg.PodCIDR))
				}
				t.dnat(sp, sp.InternalPolicyLocal, policyName(sp, sp.InternalPolicyLocal))
				return
			}
		} else if sp.HasEndpoints {
			toEXT := true
			if vt.kind == vipLoadBalancer && sp.iptUsesFW() {
				t.chain(sp.iptFW())
				toEXT = t.sourceAllowed(sp)
			}
			if toEXT && t.iptExternal(sp) {
				return
			}
		}
	}
	// Last rule of KUBE-SERVICES: NodePorts.
	if t.iptIsNodePortDst() {
		t.chain(iptNodePorts)
		if sp, ok := t.nodePortService(); ok {
			t.setService(sp, "NodePort")
			if sp.HasEndpoints && t.iptExternal(sp) {
				return
			}
		}
	}

	// Not DNATed: filter table, on the original destination.
	var hooks [][]string
	switch {
	case t.srcLocal && t.dstLocal:
		hooks = [][]string{{"filter/OUTPUT", iptFirewall, iptProxyFirewall, iptServices}, {"filter/INPUT", iptFirewall, iptProxyFirewall, iptNodePorts, iptExternalServices}}
	case t.srcLocal:
		hooks = [][]string{{"filter/OUTPUT", iptFirewall, iptProxyFirewall, iptServices}}
	case t.dstLocal:
		hooks = [][]string{{"filter/INPUT", iptFirewall, iptProxyFirewall, iptNodePorts, iptExternalServices}}
	default:
		hooks = [][]string{{"filter/FORWARD", iptProxyFirewall, iptForward, iptServices, iptExternalServices}}
	}
	for _, h := range hooks {
		t.chain(h[0])
		for _, c := range h[1:] {
			if done := t.iptFilterCheck(c, vt, hasVIP); done {
				return
			}
		}
	}
	t.finish(VerdictNone, "no kube-proxy rule matches this destination; the packet passes untouched")
}

func (t *tracer) iptIsNodePortDst() bool {
	cfg := &t.idx.cfg
	lo := t.f.Dst.IsLoopback()
	if cfg.nodePortMatchAll() {
		if !t.dstLocal {
			return false
		}
		return !lo || (!cfg.isV6() && !cfg.DisableLocalhostNodePorts)
	}
	if lo && (cfg.isV6() || cfg.DisableLocalhostNodePorts) {
		return false
	}
	return t.idx.nodePortIPs[t.f.Dst]
}

// iptExternal runs KUBE-EXT-*; it reports whether the packet was DNATed (otherwise the chain
// returns to its caller).
func (t *tracer) iptExternal(sp *ServicePort) bool {
	return t.external(sp, sp.iptEXT(), sp.iptSVC(), sp.iptSVL())
}

func (t *tracer) iptFilterCheck(c string, vt vipTarget, hasVIP bool) bool {
	cfg := &t.idx.cfg
	switch c {
	case iptFirewall:
		if !cfg.DisableLocalhostNodePorts && cfg.containsIPv4Loopback() {
			lo := netip.MustParsePrefix("127.0.0.0/8")
			if lo.Contains(t.f.Dst) && !lo.Contains(t.f.Src) {
				t.chain(c)
				t.finish(VerdictDrop, "connections to 127.0.0.0/8 from a non-loopback source are blocked (route_localnet protection)")
				return true
			}
		}
	case iptProxyFirewall:
		if hasVIP && vt.kind == vipLoadBalancer && vt.sp.iptUsesFW() {
			t.chain(c)
			t.setService(vt.sp, vt.kind.String())
			t.finish(VerdictDrop, fmt.Sprintf("traffic to %s not accepted by %s (loadBalancerSourceRanges or no local endpoint)", vt.sp.spn, vt.sp.iptFW()))
			return true
		}
	case iptForward:
		if t.marked {
			t.chain(c)
			t.finish(VerdictNone, "marked for masquerade and accepted by KUBE-FORWARD")
			return true
		}
	case iptNodePorts:
		if t.proto == "tcp" {
			if sp, ok := t.healthCheckService(); ok {
				t.chain(c)
				t.setService(sp, "healthCheckNodePort")
				t.finish(VerdictAccept, fmt.Sprintf("port %d is the healthCheckNodePort of %s, opened by kube-proxy", t.port, sp.spn))
				return true
			}
		}
	case iptServices:
		if hasVIP && vt.kind == vipCluster && !vt.sp.hasInternalEndpoints() {
			t.chain(c)
			t.setService(vt.sp, vt.kind.String())
			v, why := t.noEndpointVerdict(vt.sp)
			t.finish(v, why)
			return true
		}
	case iptExternalServices:
		if hasVIP && vt.kind != vipCluster && !vt.sp.hasExternalEndpoints() {
			t.chain(c)
			t.setService(vt.sp, vt.kind.String())
			v, why := t.noEndpointVerdict(vt.sp)
			t.finish(v, why)
			return true
		}
		if t.dstLocal {
			if sp, ok := t.nodePortService(); ok && !sp.hasExternalEndpoints() {
				t.chain(c)
				t.setService(sp, "NodePort")
				v, why := t.noEndpointVerdict(sp)
				t.finish(v, why)
				return true
			}
		}
	}
	return false
}
