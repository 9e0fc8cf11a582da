package latency

import (
	"strconv"
	"strings"
)

// Mesh names the sidecar meshes SidecarHop knows, spelled as the profile spells them.
const (
	MeshLinkerd      = "linkerd"
	MeshIstioSidecar = "istio-sidecar"
)

// DNSServer is CoreDNS's own work to answer one query (cache hit or kubernetes-plugin answer), without queueing.
// Use it when the engine costs the query packet's network path with its own nested journey.
func (m *Model) DNSServer() Estimate { return m.DNSServerCost.estimate() }

// DNSQuery is one whole query round trip: pod → CoreDNS on another node → pod, with no overlay, no Service
// dispatch and no queueing: dns_server + 4 × veth_hop + 2 × underlay. The engine should prefer DNSServer plus the
// nested journey's hops when it has them.
func (m *Model) DNSQuery() Estimate {
	e := Estimate{Nanos: addSat(addSat(int64(m.DNSServerCost.Value), mulSat(int64(m.VethHopCost.Value), 4)),
		mulSat(int64(m.UnderlayCost.Value), 2))}
	if e.Source = m.dnsQuerySource; e.Source == "" {
		e.Source = dnsQuerySource(m)
	}
	return e
}

func dnsQuerySource(m *Model) string {
	return m.DNSServerCost.Label() + " + 4 × " + m.VethHopCost.Label() + " + 2 × " + m.UnderlayCost.Label()
}

// DNSNXDomain is one extra round trip the resolver makes when a search-list candidate gets NXDOMAIN (ndots:5).
// CoreDNS's kubernetes plugin answers cluster-domain candidates itself, so it costs the same as DNSQuery.
// Candidates under a node search domain are forwarded upstream: not modelled.
func (m *Model) DNSNXDomain() Estimate { return m.DNSQuery() }

// DNSNXDomains is n extra NXDOMAIN round trips (n < 0 is treated as 0).
func (m *Model) DNSNXDomains(n int) Estimate {
	one := m.DNSNXDomain()
	if n < 0 {
		n = 0
	}
	return Estimate{Nanos: mulSat(one.Nanos, int64(n)), Source: strconv.Itoa(n) + " × (" + one.Source + ")"}
}

// IPTablesRules is the cost of evaluating n iptables rules: kube-proxy's KUBE-SERVICES chain is walked linearly,
// so n is the number of rules before (and including) the match. n < 0 is treated as 0.
func (m *Model) IPTablesRules(n int) Estimate { return m.IPTablesRuleCost.times(n) }

// NFTablesLookup is one nftables verdict-map lookup: flat in the number of Services.
func (m *Model) NFTablesLookup() Estimate { return m.NFTablesLookupCost.estimate() }

// IPVSLookup is one IPVS virtual-service lookup.
func (m *Model) IPVSLookup() Estimate { return m.IPVSLookupCost.estimate() }

// EBPFSocketLB is Cilium's connect-time service translation: paid once per connect(), not per packet.
func (m *Model) EBPFSocketLB() Estimate { return m.EBPFSocketLBCost.estimate() }

// ConntrackLookup is one conntrack lookup (how established packets skip the service rules).
func (m *Model) ConntrackLookup() Estimate { return m.ConntrackLookupCost.estimate() }

// VethHop is one veth crossing with the host's forwarding decision, one direction.
func (m *Model) VethHop() Estimate { return m.VethHopCost.estimate() }

// BridgeHop is L2 forwarding through a Linux bridge, on top of the veth crossings.
func (m *Model) BridgeHop() Estimate { return m.BridgeHopCost.estimate() }

// VXLANEncap is VXLAN encapsulation plus decapsulation of one packet.
func (m *Model) VXLANEncap() Estimate { return m.VXLANEncapCost.estimate() }

// GeneveEncap is Geneve encapsulation plus decapsulation of one packet.
func (m *Model) GeneveEncap() Estimate { return m.GeneveEncapCost.estimate() }

// IPIPEncap is IP-in-IP encapsulation plus decapsulation of one packet.
func (m *Model) IPIPEncap() Estimate { return m.IPIPEncapCost.estimate() }

// WireGuard is WireGuard encryption plus decryption of one packet.
func (m *Model) WireGuard() Estimate { return m.WireGuardCost.estimate() }

// IPsec is IPsec ESP encryption plus decryption of one packet.
func (m *Model) IPsec() Estimate { return m.IPsecCost.estimate() }

// Underlay is node-to-node wire time in one data centre, one direction (RTT/2).
func (m *Model) Underlay() Estimate { return m.UnderlayCost.estimate() }

// SidecarHop is one traversal of a sidecar proxy by a request. ok is false for a mesh without a sidecar model;
// the estimate's Source then says "unknown" and why.
func (m *Model) SidecarHop(mesh string) (e Estimate, ok bool) {
	switch mesh {
	case MeshLinkerd:
		return m.LinkerdProxyCost.estimate(), true
	case MeshIstioSidecar:
		return m.IstioSidecarCost.estimate(), true
	}
	return Estimate{Source: "unknown: no sidecar latency model for mesh " + strconv.Quote(mesh) +
		" (modelled: " + MeshLinkerd + ", " + MeshIstioSidecar + "; ambient uses ZtunnelHop/WaypointHop)"}, false
}

// ZtunnelHop is one traversal of an Istio ambient ztunnel (L4, HBONE/mTLS).
func (m *Model) ZtunnelHop() Estimate { return m.ZtunnelCost.estimate() }

// WaypointHop is one traversal of an Istio ambient waypoint proxy (L7), without the network hop to reach it.
func (m *Model) WaypointHop() Estimate { return m.WaypointCost.estimate() }

// Sum adds estimates (saturating) and joins their sources with " + ", skipping empty ones.
func Sum(parts ...Estimate) Estimate {
	var total int64
	n := 0
	for _, p := range parts {
		total = addSat(total, p.Nanos)
		if p.Source != "" {
			n += len(p.Source) + 3
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, p := range parts {
		if p.Source == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(" + ")
		}
		b.WriteString(p.Source)
	}
	return Estimate{Nanos: total, Source: b.String()}
}
