package trace

import "github.com/kpath/kpath/latency"

// costs adapts the cited latency model (package latency, docs/latency-model.md) to the steps the engine records.
type costs struct{ m *latency.Model }

// SetLatencyModel replaces the default model (e.g. with one calibrated by `kpath lab bench`).
func (e *Engine) SetLatencyModel(m *latency.Model) { e.lat = costs{m} }

func conv(e latency.Estimate) Estimate { return Estimate(e) }

func (c costs) DNSQuery() Estimate           { return conv(c.m.DNSQuery()) }
func (c costs) DNSNXDomain() Estimate        { return conv(c.m.DNSNXDomain()) }
func (c costs) Veth() Estimate               { return conv(c.m.VethHop()) }
func (c costs) Bridge() Estimate             { return conv(c.m.BridgeHop()) }
func (c costs) IPTablesRules(n int) Estimate { return conv(c.m.IPTablesRules(n)) }
func (c costs) NFTablesLookup() Estimate     { return conv(c.m.NFTablesLookup()) }
func (c costs) IPVSLookup() Estimate         { return conv(c.m.IPVSLookup()) }
func (c costs) EBPFSocketLB() Estimate       { return conv(c.m.EBPFSocketLB()) }
func (c costs) Conntrack() Estimate          { return conv(c.m.ConntrackLookup()) }
func (c costs) VXLAN() Estimate              { return conv(c.m.VXLANEncap()) }
func (c costs) Geneve() Estimate             { return conv(c.m.GeneveEncap()) }
func (c costs) IPIP() Estimate               { return conv(c.m.IPIPEncap()) }
func (c costs) WireGuard() Estimate          { return conv(c.m.WireGuard()) }
func (c costs) IPsec() Estimate              { return conv(c.m.IPsec()) }
func (c costs) Underlay() Estimate           { return conv(c.m.Underlay()) }

// Route: a FIB lookup is part of every forwarding hop's cost in the model; it is not counted separately.
func (c costs) Route() Estimate { return Estimate{} }
