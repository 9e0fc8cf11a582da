package latency

import (
	"strconv"
	"time"
)

// Estimate is one modelled cost: a duration and the constant(s) it came from. It has the same fields as
// trace.Estimate, so the engine converts with trace.Estimate(e). It is never a measurement of the user's cluster.
type Estimate struct {
	Nanos  int64  `json:"ns"`
	Source string `json:"source,omitempty"`
}

// Duration returns the estimate as a time.Duration.
func (e Estimate) Duration() time.Duration { return time.Duration(e.Nanos) }

// Quality says how a constant's value relates to its source. Output and docs show it next to every number.
type Quality string

const (
	// QualityMeasured: the source measured this quantity directly (possibly on other hardware).
	QualityMeasured Quality = "measured"
	// QualityDerived: arithmetic on published measurements; Source.Derivation shows the formula.
	QualityDerived Quality = "derived"
	// QualityBound: the source states only a bound (e.g. "less than a millisecond"); the value is that bound.
	QualityBound Quality = "bound"
	// QualityPlaceholder: no source with a number was found; the value is kpath's reasoned guess, the reason is in
	// Source.Derivation. Calibrate these first.
	QualityPlaceholder Quality = "placeholder"
	// QualityCalibrated: replaced by a calibration file (a kpath lab measurement on a named machine and date).
	QualityCalibrated Quality = "calibrated"
)

// Source is where a constant's value comes from.
type Source struct {
	// Citation names the publication, benchmark or lab run, e.g. "DaoCloud CNI performance test report (2023)".
	Citation string `json:"citation"`
	// URL of the publication, when there is one.
	URL string `json:"url,omitempty"`
	// Setup is what was measured and how: hardware, versions, tool, load, percentile.
	Setup string `json:"setup"`
	// Derivation is the arithmetic from the published number to the constant, or the reasoning for a placeholder.
	Derivation string `json:"derivation,omitempty"`
	// Date is when the source was published or the measurement was taken (YYYY-MM-DD or YYYY-MM or YYYY).
	Date string `json:"date,omitempty"`
	// Machine is the machine a calibration measurement ran on (calibrated constants only).
	Machine string `json:"machine,omitempty"`
}

// Constant is one named cost in the model.
type Constant struct {
	// Name is the stable key used in calibration files and in Estimate.Source, e.g. "veth_hop".
	Name string `json:"name"`
	// Meaning says what the constant costs, in one line.
	Meaning string        `json:"meaning"`
	Value   time.Duration `json:"value"`
	Quality Quality       `json:"quality"`
	Source  Source        `json:"source"`
	label   string        // "veth_hop (derived)", cached so estimates do not allocate
}

// Label is how an estimate names this constant: the key and its quality (and date, once calibrated).
func (c Constant) Label() string {
	if c.label != "" {
		return c.label
	}
	return makeLabel(c)
}

func makeLabel(c Constant) string {
	q := string(c.Quality)
	if c.Quality == QualityCalibrated && c.Source.Date != "" {
		q += " " + c.Source.Date
	}
	if q == "" {
		q = "unrated"
	}
	return c.Name + " (" + q + ")"
}

// estimate is the constant taken once.
func (c *Constant) estimate() Estimate {
	return Estimate{Nanos: int64(c.Value), Source: c.Label()}
}

// times is the constant taken n times (n < 0 is treated as 0), saturating instead of overflowing.
func (c *Constant) times(n int) Estimate {
	if n < 0 {
		n = 0
	}
	var buf [20]byte
	count := strconv.AppendInt(buf[:0], int64(n), 10)
	return Estimate{Nanos: mulSat(int64(c.Value), int64(n)), Source: string(count) + " × " + c.Label()}
}

// Model is the set of named cost constants. The zero value costs nothing: start from Default() and calibrate.
// Treat a Model as read-only once built; Apply returns a new one.
// Field names end in "Cost" so they do not collide with the estimate methods (m.VethHop() reads m.VethHopCost).
type Model struct {
	// DNS
	DNSServerCost Constant // CoreDNS work to answer one query (cache or kubernetes plugin), no queueing

	// Service dispatch (first packet of a connection; established packets ride conntrack)
	IPTablesRuleCost    Constant // one iptables rule evaluated in a linear chain (KUBE-SERVICES)
	NFTablesLookupCost  Constant // one nftables verdict-map lookup (kube-proxy nftables service-ips), flat
	IPVSLookupCost      Constant // one IPVS virtual-service lookup
	EBPFSocketLBCost    Constant // Cilium socket-LB: service translation once at connect(), not per packet
	ConntrackLookupCost Constant // one conntrack table lookup

	// Links and encapsulation (one packet, one direction)
	VethHopCost     Constant // one veth crossing plus the host's forwarding decision
	BridgeHopCost   Constant // L2 forwarding through a Linux bridge, on top of the veth crossings
	VXLANEncapCost  Constant // VXLAN encapsulation on the sender plus decapsulation on the receiver
	GeneveEncapCost Constant // Geneve encapsulation plus decapsulation
	IPIPEncapCost   Constant // IP-in-IP encapsulation plus decapsulation
	WireGuardCost   Constant // WireGuard encryption plus decryption
	IPsecCost       Constant // IPsec ESP encryption plus decryption
	UnderlayCost    Constant // node-to-node wire time, same data centre: RTT/2

	// Mesh (one proxy traversal of a request)
	LinkerdProxyCost Constant // one linkerd2-proxy sidecar traversal
	IstioSidecarCost Constant // one Istio Envoy sidecar traversal
	ZtunnelCost      Constant // one Istio ambient ztunnel traversal
	WaypointCost     Constant // one Istio ambient waypoint (Envoy, L7) traversal

	dnsQuerySource string // cached Source of DNSQuery
}

// Constant names: the keys of a calibration file.
const (
	NameDNSServer       = "dns_server"
	NameIPTablesRule    = "iptables_rule"
	NameNFTablesLookup  = "nftables_lookup"
	NameIPVSLookup      = "ipvs_lookup"
	NameEBPFSocketLB    = "ebpf_socket_lb"
	NameConntrackLookup = "conntrack_lookup"
	NameVethHop         = "veth_hop"
	NameBridgeHop       = "bridge_hop"
	NameVXLANEncap      = "vxlan_encap"
	NameGeneveEncap     = "geneve_encap"
	NameIPIPEncap       = "ipip_encap"
	NameWireGuard       = "wireguard"
	NameIPsec           = "ipsec"
	NameUnderlay        = "underlay"
	NameLinkerdProxy    = "linkerd_proxy"
	NameIstioSidecar    = "istio_sidecar"
	NameZtunnel         = "ztunnel"
	NameWaypoint        = "waypoint"
)

// fields is the registry: constant name → field. Order is the documentation order.
var fields = []struct {
	name    string
	meaning string
	get     func(*Model) *Constant
}{
	{NameDNSServer, "CoreDNS work to answer one query (cache or kubernetes plugin), no queueing",
		func(m *Model) *Constant { return &m.DNSServerCost }},
	{NameIPTablesRule, "one iptables rule evaluated in a linear chain (KUBE-SERVICES), first packet only",
		func(m *Model) *Constant { return &m.IPTablesRuleCost }},
	{NameNFTablesLookup, "one nftables verdict-map lookup (kube-proxy nftables), flat in the number of Services",
		func(m *Model) *Constant { return &m.NFTablesLookupCost }},
	{NameIPVSLookup, "one IPVS virtual-service lookup",
		func(m *Model) *Constant { return &m.IPVSLookupCost }},
	{NameEBPFSocketLB, "Cilium socket-LB service translation, once per connect()",
		func(m *Model) *Constant { return &m.EBPFSocketLBCost }},
	{NameConntrackLookup, "one conntrack lookup",
		func(m *Model) *Constant { return &m.ConntrackLookupCost }},
	{NameVethHop, "one veth crossing plus the host's forwarding decision, one direction",
		func(m *Model) *Constant { return &m.VethHopCost }},
	{NameBridgeHop, "L2 forwarding through a Linux bridge, on top of the veth crossings",
		func(m *Model) *Constant { return &m.BridgeHopCost }},
	{NameVXLANEncap, "VXLAN encapsulation plus decapsulation of one packet",
		func(m *Model) *Constant { return &m.VXLANEncapCost }},
	{NameGeneveEncap, "Geneve encapsulation plus decapsulation of one packet",
		func(m *Model) *Constant { return &m.GeneveEncapCost }},
	{NameIPIPEncap, "IP-in-IP encapsulation plus decapsulation of one packet",
		func(m *Model) *Constant { return &m.IPIPEncapCost }},
	{NameWireGuard, "WireGuard encryption plus decryption of one packet",
		func(m *Model) *Constant { return &m.WireGuardCost }},
	{NameIPsec, "IPsec ESP encryption plus decryption of one packet",
		func(m *Model) *Constant { return &m.IPsecCost }},
	{NameUnderlay, "node-to-node wire time in one data centre, one direction (RTT/2)",
		func(m *Model) *Constant { return &m.UnderlayCost }},
	{NameLinkerdProxy, "one linkerd2-proxy sidecar traversal of a request",
		func(m *Model) *Constant { return &m.LinkerdProxyCost }},
	{NameIstioSidecar, "one Istio Envoy sidecar traversal of a request",
		func(m *Model) *Constant { return &m.IstioSidecarCost }},
	{NameZtunnel, "one Istio ambient ztunnel traversal (L4, HBONE mTLS)",
		func(m *Model) *Constant { return &m.ZtunnelCost }},
	{NameWaypoint, "one Istio ambient waypoint (Envoy, L7) traversal, without the hop to reach it",
		func(m *Model) *Constant { return &m.WaypointCost }},
}

var fieldIndex = func() map[string]int {
	idx := make(map[string]int, len(fields))
	for i, f := range fields {
		idx[f.name] = i
	}
	return idx
}()

// Names returns every constant name in documentation order.
func Names() []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.name
	}
	return out
}

// Constants returns a copy of every constant in documentation order.
func (m *Model) Constants() []Constant {
	out := make([]Constant, len(fields))
	for i, f := range fields {
		out[i] = *f.get(m)
	}
	return out
}

// Lookup returns the constant with this name.
func (m *Model) Lookup(name string) (Constant, bool) {
	i, ok := fieldIndex[name]
	if !ok {
		return Constant{}, false
	}
	return *fields[i].get(m), true
}

// relabel sets each constant's name from the registry and caches its label.
func (m *Model) relabel() {
	for _, f := range fields {
		c := f.get(m)
		c.Name = f.name
		c.Meaning = f.meaning
		c.label = makeLabel(*c)
	}
	m.dnsQuerySource = dnsQuerySource(m)
}

func mulSat(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > maxNanos/b {
		return maxNanos
	}
	return a * b
}

func addSat(a, b int64) int64 {
	switch {
	case b > 0 && a > maxNanos-b:
		return maxNanos
	case b < 0 && a < minNanos-b:
		return minNanos
	}
	return a + b
}

const (
	maxNanos = int64(^uint64(0) >> 1)
	minNanos = -maxNanos - 1
)
