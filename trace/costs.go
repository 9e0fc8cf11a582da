package trace

// Costs is the latency model the engine reads. DefaultCosts is replaced by the latency package's cited model.
type Costs interface {
	DNSQuery() Estimate
	DNSNXDomain() Estimate
	Veth() Estimate
	Bridge() Estimate
	IPTablesRules(n int) Estimate
	NFTablesLookup() Estimate
	IPVSLookup() Estimate
	EBPFSocketLB() Estimate
	Conntrack() Estimate
	VXLAN() Estimate
	Geneve() Estimate
	IPIP() Estimate
	WireGuard() Estimate
	IPsec() Estimate
	Underlay() Estimate
	Route() Estimate
}

type fixedCosts struct{}

// DefaultCosts is a placeholder until the cited model is wired in.
func DefaultCosts() Costs { return fixedCosts{} }

func est(ns int64, src string) Estimate { return Estimate{Nanos: ns, Source: src} }

func (fixedCosts) DNSQuery() Estimate    { return est(500_000, "dns.query") }
func (fixedCosts) DNSNXDomain() Estimate { return est(500_000, "dns.nxdomain") }
func (fixedCosts) Veth() Estimate        { return est(3_000, "veth") }
func (fixedCosts) Bridge() Estimate      { return est(2_000, "bridge") }
func (fixedCosts) IPTablesRules(n int) Estimate {
	return est(int64(n)*16, "iptables.rule×n")
}
func (fixedCosts) NFTablesLookup() Estimate { return est(200, "nftables.vmap") }
func (fixedCosts) IPVSLookup() Estimate     { return est(300, "ipvs.lookup") }
func (fixedCosts) EBPFSocketLB() Estimate   { return est(100, "ebpf.sock_lb") }
func (fixedCosts) Conntrack() Estimate      { return est(200, "conntrack") }
func (fixedCosts) VXLAN() Estimate          { return est(10_000, "vxlan") }
func (fixedCosts) Geneve() Estimate         { return est(10_000, "geneve") }
func (fixedCosts) IPIP() Estimate           { return est(6_000, "ipip") }
func (fixedCosts) WireGuard() Estimate      { return est(30_000, "wireguard") }
func (fixedCosts) IPsec() Estimate          { return est(40_000, "ipsec") }
func (fixedCosts) Underlay() Estimate       { return est(50_000, "underlay") }
func (fixedCosts) Route() Estimate          { return est(300, "route") }
