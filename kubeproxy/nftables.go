package kubeproxy

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/knftables"
)

// Names of kube-proxy's nftables objects (pkg/proxy/nftables, v1.36). All live in one table.
const (
	nftTable = "kube-proxy"

	// Base chains: "${type}-${hook}[-qualifier]".
	nftFilterPreroutingPreDNAT = "filter-prerouting-pre-dnat"
	nftFilterOutputPreDNAT     = "filter-output-pre-dnat"
	nftFilterForward           = "filter-forward"
	nftFilterInput             = "filter-input"
	nftFilterOutput            = "filter-output"
	nftNATPrerouting           = "nat-prerouting"
	nftNATOutput               = "nat-output"
	nftNATPostrouting          = "nat-postrouting"

	// Service dispatch.
	nftServicesChain     = "services"
	nftServiceIPsMap     = "service-ips"
	nftServiceNodePorts  = "service-nodeports"
	nftNodePortIPsSet    = "nodeport-ips"
	nftClusterIPsSet     = "cluster-ips"
	nftHairpinSet        = "hairpin-connections"
	nftClusterIPsCheck   = "cluster-ips-check"
	nftServiceEPCheck    = "service-endpoints-check"
	nftNodePortEPCheck   = "nodeport-endpoints-check"
	nftNoEndpointSvcMap  = "no-endpoint-services"
	nftNoEndpointNPMap   = "no-endpoint-nodeports"
	nftRejectChain       = "reject-chain"
	nftFirewallIPsMap    = "firewall-ips"
	nftFirewallCheck     = "firewall-check"
	nftMasqueradingChain = "masquerading"
)

// nftBaseChains are the chains attached to netfilter hooks, with why each priority.
var nftBaseChains = []struct {
	name     string
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}{
	// Filtering on the original (pre-DNAT) destination must run before DNAT (dstnat = -100).
	{nftFilterPreroutingPreDNAT, knftables.FilterType, knftables.PreroutingHook, knftables.DNATPriority + "-10"},
	{nftFilterOutputPreDNAT, knftables.FilterType, knftables.OutputHook, knftables.DNATPriority + "-10"},
	// "No endpoints" and unallocated-ClusterIP checks run at normal filter priority, after
	// DNAT: a packet that was DNATed no longer matches a service IP there.
	{nftFilterForward, knftables.FilterType, knftables.ForwardHook, knftables.FilterPriority},
	{nftFilterInput, knftables.FilterType, knftables.InputHook, knftables.FilterPriority},
	{nftFilterOutput, knftables.FilterType, knftables.OutputHook, knftables.FilterPriority},
	// DNAT at the standard dstnat priority, masquerade at srcnat.
	{nftNATOutput, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
	{nftNATPostrouting, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority},
	{nftNATPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
}

// nftJumps are the jump rules from base chains, in the order kube-proxy adds them.
var nftJumps = []struct{ from, extra, to string }{
	{nftFilterPreroutingPreDNAT, "ct state new", nftFirewallCheck},
	{nftFilterOutputPreDNAT, "ct state new", nftFirewallCheck},
	{nftFilterInput, "ct state new", nftNodePortEPCheck},
	{nftFilterInput, "ct state new", nftServiceEPCheck},
	{nftFilterForward, "ct state new", nftServiceEPCheck},
	{nftFilterForward, "ct state new", nftClusterIPsCheck},
	{nftFilterOutput, "ct state new", nftServiceEPCheck},
	{nftFilterOutput, "ct state new", nftClusterIPsCheck},
	{nftNATOutput, "", nftServicesChain},
	{nftNATPrerouting, "", nftServicesChain},
	{nftNATPostrouting, "", nftMasqueradingChain},
}

func (sp *ServicePort) nftClusterChain() string  { return nftServicePrefix + sp.nftBase }
func (sp *ServicePort) nftLocalChain() string    { return nftLocalPrefix + sp.nftBase }
func (sp *ServicePort) nftExternalChain() string { return nftExternalPrefix + sp.nftBase }
func (sp *ServicePort) nftFirewallChain() string { return nftFirewallPrefix + sp.nftBase }
func (e *Endpoint) nftChain() string             { return nftEndpointPrefix + e.nftBase }
func (e *Endpoint) nftAffinitySet() string       { return nftAffinityPrefix + e.nftBase }

func (sp *ServicePort) nftInternalChain() string {
	if sp.InternalPolicyLocal {
		return sp.nftLocalChain()
	}
	return sp.nftClusterChain()
}

func (sp *ServicePort) nftExternalPolicyChain() string {
	if sp.ExternalPolicyLocal {
		return sp.nftLocalChain()
	}
	return sp.nftClusterChain()
}

// RenderNFTables writes the ruleset kube-proxy in nftables mode programs for the given objects,
// as an nft script of "add" commands (knftables syntax, loadable with `nft -f`).
func RenderNFTables(w io.Writer, cfg Config, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) error {
	cfg.Mode = ModeNFTables
	idx, err := NewIndex(cfg, svcs, slices)
	if err != nil {
		return err
	}
	return idx.RenderNFTables(w)
}

// RenderNFTables writes the nftables ruleset for the index (see the package function).
func (idx *Index) RenderNFTables(w io.Writer) error {
	decl, body := idx.nftTransactions()
	if _, err := io.WriteString(w, decl.String()); err != nil {
		return fmt.Errorf("writing nftables rules: %w", err)
	}
	if _, err := io.WriteString(w, body.String()); err != nil {
		return fmt.Errorf("writing nftables rules: %w", err)
	}
	return nil
}

// nftTransactions builds the ruleset as two transactions: declarations (table, sets, maps,
// chains) and contents (rules, elements), so that every reference resolves when nft reads
// the script top to bottom.
func (idx *Index) nftTransactions() (decl, body *knftables.Transaction) {
	cfg := &idx.cfg
	family := knftables.IPv4Family
	ipX, addrType, noLocalhost := "ip", "ipv4_addr", "ip daddr != 127.0.0.0/8"
	if cfg.isV6() {
		family = knftables.IPv6Family
		ipX, addrType, noLocalhost = "ip6", "ipv6_addr", "ip6 daddr != ::1"
	}
	fake := knftables.NewFake(family, nftTable)
	decl, body = fake.NewTransaction(), fake.NewTransaction()
	mark := cfg.masqMark()
	str := func(s string) *string { return &s }

	decl.Add(&knftables.Table{Comment: str("rules for kube-proxy")})
	decl.Add(&knftables.Set{Name: nftClusterIPsSet, Type: addrType, Comment: str("Active ClusterIPs")})
	decl.Add(&knftables.Set{Name: nftNodePortIPsSet, Type: addrType, Comment: str("IPs that accept NodePort traffic")})
	decl.Add(&knftables.Set{Name: nftHairpinSet, Type: addrType + " . " + addrType + " . inet_proto . inet_service", Comment: str("service hairpin connections")})
	decl.Add(&knftables.Map{Name: nftFirewallIPsMap, Type: addrType + " . inet_proto . inet_service : verdict", Comment: str("destinations that are subject to LoadBalancerSourceRanges")})
	decl.Add(&knftables.Map{Name: nftNoEndpointNPMap, Type: "inet_proto . inet_service : verdict", Comment: str("vmap to drop or reject packets to service nodeports with no endpoints")})
	decl.Add(&knftables.Map{Name: nftNoEndpointSvcMap, Type: addrType + " . inet_proto . inet_service : verdict", Comment: str("vmap to drop or reject packets to services with no endpoints")})
	decl.Add(&knftables.Map{Name: nftServiceIPsMap, Type: addrType + " . inet_proto . inet_service : verdict", Comment: str("ClusterIP, ExternalIP and LoadBalancer IP traffic")})
	decl.Add(&knftables.Map{Name: nftServiceNodePorts, Type: "inet_proto . inet_service : verdict", Comment: str("NodePort traffic")})
	for _, bc := range nftBaseChains {
		typ, hook, prio := bc.typ, bc.hook, bc.priority
		decl.Add(&knftables.Chain{Name: bc.name, Type: &typ, Hook: &hook, Priority: &prio})
	}
	for _, c := range []string{nftClusterIPsCheck, nftFirewallCheck, nftMasqueradingChain, nftNodePortEPCheck, nftServicesChain, nftServiceEPCheck} {
		decl.Add(&knftables.Chain{Name: c})
	}
	decl.Add(&knftables.Chain{Name: nftRejectChain, Comment: str("helper for @no-endpoint-services / @no-endpoint-nodeports")})

	rule := func(chain string, comment string, parts ...any) {
		r := &knftables.Rule{Chain: chain, Rule: knftables.Concat(parts...)}
		if comment != "" {
			r.Comment = str(comment)
		}
		body.Add(r)
	}
	for _, j := range nftJumps {
		rule(j.from, "", j.extra, "jump", j.to)
	}
	rule(nftClusterIPsCheck, "Reject traffic to invalid ports of ClusterIPs", ipX, "daddr", "@", nftClusterIPsSet, "reject")
	var cidrs []string
	for _, p := range cfg.ServiceCIDRs {
		if p.Addr().Is6() == cfg.isV6() {
			cidrs = append(cidrs, p.Masked().String())
		}
	}
	if len(cidrs) > 0 {
		rule(nftClusterIPsCheck, "Drop traffic to unallocated ClusterIPs", ipX, "daddr", "{", strings.Join(cidrs, ","), "}", "drop")
	}
	rule(nftFirewallCheck, "", ipX, "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", nftFirewallIPsMap)
	rule(nftMasqueradingChain, "", "mark and", mark, "!= 0", "mark set mark xor", mark, "masquerade fully-random")
	rule(nftMasqueradingChain, "", "ct status dnat", ipX, "saddr .", ipX, "daddr . meta l4proto . th dport", "@"+nftHairpinSet, "masquerade fully-random")
	rule(nftRejectChain, "", "reject")
	rule(nftServiceEPCheck, "", ipX, "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", nftNoEndpointSvcMap)
	if cfg.MasqueradeAll {
		rule(nftServicesChain, "masquerade all clusterIP traffic", ipX, "daddr", "@"+nftClusterIPsSet, "mark set mark or", mark)
	} else if cfg.hasLocalDetector() {
		rule(nftServicesChain, "masquerade clusterIP traffic from outside cluster", ipX, "daddr", "@"+nftClusterIPsSet, ipX, "saddr !=", cfg.PodCIDR.Masked().String(), "mark set mark or", mark)
	}
	rule(nftServicesChain, "", ipX, "daddr", ".", "meta l4proto", ".", "th dport", "vmap", "@", nftServiceIPsMap)
	if cfg.nodePortMatchAll() {
		rule(nftServicesChain, "", "fib daddr type local", noLocalhost, "meta l4proto . th dport", "vmap", "@", nftServiceNodePorts)
		rule(nftNodePortEPCheck, "", noLocalhost, "meta l4proto . th dport", "vmap", "@", nftNoEndpointNPMap)
	} else {
		rule(nftServicesChain, "", ipX, "daddr @"+nftNodePortIPsSet, "meta l4proto . th dport", "vmap", "@", nftServiceNodePorts)
		rule(nftNodePortEPCheck, "", ipX, "daddr", "@"+nftNodePortIPsSet, "meta l4proto . th dport", "vmap", "@", nftNoEndpointNPMap)
		for _, a := range cfg.nodePortIPs() {
			if a.IsLoopback() {
				continue // localhost NodePorts are not supported in nftables mode
			}
			body.Add(&knftables.Element{Set: nftNodePortIPsSet, Key: []string{a.String()}})
		}
	}

	clusterIPSeen := map[netip.Addr]bool{}
	hairpinSeen := map[string]bool{}
	for _, sp := range idx.ServicePorts() {
		idx.nftServicePort(sp, decl, body, ipX, addrType, mark, clusterIPSeen, hairpinSeen)
	}
	return decl, body
}

func (idx *Index) nftServicePort(sp *ServicePort, decl, body *knftables.Transaction, ipX, addrType, mark string, clusterIPSeen map[netip.Addr]bool, hairpinSeen map[string]bool) {
	cfg := &idx.cfg
	str := func(s string) *string { return &s }
	port := strconv.Itoa(sp.Port)
	spn := sp.spn
	rule := func(chain string, comment string, parts ...any) {
		r := &knftables.Rule{Chain: chain, Rule: knftables.Concat(parts...)}
		if comment != "" {
			r.Comment = str(comment)
		}
		body.Add(r)
	}
	elem := func(m string, key []string, value string, comment bool) {
		e := &knftables.Element{Map: m, Key: key, Value: []string{value}}
		if comment {
			e.Comment = str(spn)
		}
		body.Add(e)
	}

	hasInternal, hasExternal := sp.hasInternalEndpoints(), sp.hasExternalEndpoints()
	internalVerdict, externalVerdict := "", ""
	if !sp.HasEndpoints {
		internalVerdict, externalVerdict = "goto "+nftRejectChain, "goto "+nftRejectChain
	} else {
		if !hasInternal {
			internalVerdict = "drop"
		}
		if !hasExternal {
			externalVerdict = "drop"
		}
	}

	if !clusterIPSeen[sp.ClusterIP] {
		clusterIPSeen[sp.ClusterIP] = true
		body.Add(&knftables.Element{Set: nftClusterIPsSet, Key: []string{sp.ClusterIP.String()}})
	}
	if hasInternal {
		elem(nftServiceIPsMap, []string{sp.ClusterIP.String(), sp.proto, port}, "goto "+sp.nftInternalChain(), false)
	} else {
		elem(nftNoEndpointSvcMap, []string{sp.ClusterIP.String(), sp.proto, port}, internalVerdict, true)
	}
	for _, eip := range sp.ExternalIPs {
		if sp.HasEndpoints {
			elem(nftServiceIPsMap, []string{eip.String(), sp.proto, port}, "goto "+sp.nftExternalChain(), false)
		}
		if !hasExternal {
			elem(nftNoEndpointSvcMap, []string{eip.String(), sp.proto, port}, externalVerdict, true)
		}
	}
	usesFW := len(sp.LoadBalancerVIPs) > 0 && len(sp.SourceRanges) > 0
	for _, lb := range sp.LoadBalancerVIPs {
		if sp.HasEndpoints {
			elem(nftServiceIPsMap, []string{lb.String(), sp.proto, port}, "goto "+sp.nftExternalChain(), false)
		}
		if usesFW {
			elem(nftFirewallIPsMap, []string{lb.String(), sp.proto, port}, "goto "+sp.nftFirewallChain(), false)
		}
	}
	if !hasExternal {
		for _, lb := range sp.LoadBalancerVIPs {
			elem(nftNoEndpointSvcMap, []string{lb.String(), sp.proto, port}, externalVerdict, true)
		}
	}
	if sp.NodePort != 0 {
		np := strconv.Itoa(sp.NodePort)
		if sp.HasEndpoints {
			elem(nftServiceNodePorts, []string{sp.proto, np}, "goto "+sp.nftExternalChain(), false)
		}
		if !hasExternal {
			elem(nftNoEndpointNPMap, []string{sp.proto, np}, externalVerdict, true)
		}
	}

	// Chains.
	if sp.usesClusterChain() {
		decl.Add(&knftables.Chain{Name: sp.nftClusterChain()})
		idx.nftEndpointDispatch(body, sp, sp.nftClusterChain(), sp.ClusterEndpoints, ipX)
	}
	if sp.usesLocalChain() {
		decl.Add(&knftables.Chain{Name: sp.nftLocalChain()})
		idx.nftEndpointDispatch(body, sp, sp.nftLocalChain(), sp.LocalEndpoints, ipX)
	}
	if sp.usesExternalChain() {
		ext := sp.nftExternalChain()
		decl.Add(&knftables.Chain{Name: ext})
		if !sp.ExternalPolicyLocal {
			rule(ext, "masquerade", "mark set mark or", mark)
		} else {
			if cfg.hasLocalDetector() {
				rule(ext, "short-circuit pod traffic", ipX, "saddr", cfg.PodCIDR.Masked().String(), "goto", sp.nftClusterChain())
			}
			rule(ext, "masquerade local traffic", "fib saddr type local mark set mark or", mark)
			rule(ext, "short-circuit local traffic", "fib saddr type local goto", sp.nftClusterChain())
		}
		if hasExternal {
			rule(ext, "", "goto", sp.nftExternalPolicyChain())
		}
	}
	if usesFW {
		fw := sp.nftFirewallChain()
		decl.Add(&knftables.Chain{Name: fw})
		var sources []string
		allowFromNode := false
		for _, c := range sp.SourceRanges {
			if len(sources) > 0 {
				sources = append(sources, ",")
			}
			sources = append(sources, c.String())
			if cfg.NodeIP.IsValid() && c.Contains(cfg.NodeIP.Unmap()) {
				allowFromNode = true
			}
		}
		if allowFromNode {
			for _, lb := range sp.LoadBalancerVIPs {
				sources = append(sources, ",", lb.String())
			}
		}
		rule(fw, "", ipX, "saddr", "!=", "{", sources, "}", "drop")
	}
	if sp.SessionAffinity {
		timeout := time.Duration(sp.StickySeconds) * time.Second
		for _, e := range sp.Reachable {
			decl.Add(&knftables.Set{
				Name:    e.nftAffinitySet(),
				Type:    addrType,
				Flags:   []knftables.SetFlag{knftables.DynamicFlag, knftables.TimeoutFlag},
				Timeout: &timeout,
			})
			decl.Add(&knftables.Chain{Name: e.nftChain()})
			rule(e.nftChain(), "", "update", "@", e.nftAffinitySet(), "{", ipX, "saddr", "}")
			rule(e.nftChain(), "", "meta l4proto", sp.proto, "dnat to", e.str)
		}
	}
	for _, e := range sp.Reachable {
		if !e.Local {
			continue
		}
		key := e.Addr.String() + " . " + e.Addr.String() + " . " + sp.proto + " . " + strconv.Itoa(e.Port)
		if hairpinSeen[key] {
			continue
		}
		hairpinSeen[key] = true
		body.Add(&knftables.Element{Set: nftHairpinSet, Key: []string{e.Addr.String(), e.Addr.String(), sp.proto, strconv.Itoa(e.Port)}})
	}
}

// nftEndpointDispatch writes the load-balancing rule(s) of a service/local chain.
func (idx *Index) nftEndpointDispatch(body *knftables.Transaction, sp *ServicePort, chain string, eps []*Endpoint, ipX string) {
	n := strconv.Itoa(len(eps))
	if sp.SessionAffinity {
		for _, e := range eps {
			body.Add(&knftables.Rule{Chain: chain, Rule: knftables.Concat(ipX, "saddr", "@", e.nftAffinitySet(), "goto", e.nftChain())})
		}
		var b strings.Builder
		for i, e := range eps {
			if i > 0 {
				b.WriteString(" , ")
			}
			fmt.Fprintf(&b, "%d : goto %s", i, e.nftChain())
		}
		body.Add(&knftables.Rule{Chain: chain, Rule: "numgen random mod " + n + " vmap { " + b.String() + " }"})
		return
	}
	var b strings.Builder
	for i, e := range eps {
		if i > 0 {
			b.WriteString(" , ")
		}
		fmt.Fprintf(&b, "%d : %s . %d", i, e.Addr, e.Port)
	}
	body.Add(&knftables.Rule{Chain: chain, Rule: "meta l4proto " + sp.proto + " dnat " + ipX + " addr . port to numgen random mod " + n + " map { " + b.String() + " }"})
}
