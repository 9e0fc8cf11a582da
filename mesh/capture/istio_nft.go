package capture

import (
	"fmt"
	"io"

	"sigs.k8s.io/knftables"
)

// istio-nftables table and chain names (tools/istio-nftables/pkg/constants).
const (
	NFTIstioNatTable    = "istio-proxy-nat"
	NFTIstioMangleTable = "istio-proxy-mangle"
	NFTIstioRawTable    = "istio-proxy-raw"

	nftPrerouting     = "prerouting"
	nftOutput         = "output"
	nftPostrouting    = "postrouting"
	nftIstioInbound   = "istio-inbound"
	nftIstioRedirect  = "istio-redirect"
	nftIstioInRedir   = "istio-in-redirect"
	nftIstioOutput    = "istio-output"
	nftIstioOutputDNS = "istio-output-dns"
	nftIstioDivert    = "istio-divert"
	nftIstioTProxy    = "istio-tproxy"
	nftIstioDrop      = "istio-drop"
)

// istioNFTTables builds the three istio-nftables tables. Base chains (type, hook, priority):
//   - nat: prerouting/output, type nat, priority dstnat (-100): after conntrack, where DNAT/REDIRECT belongs.
//   - mangle: prerouting type filter, output type route, priority mangle (-150): marks set in output must
//     trigger a rerouting lookup (type route), and must happen before nat.
//   - raw: prerouting/output type filter, priority raw (-300): before conntrack, so "ct zone set" applies.
func istioNFTTables(c IstioConfig) ([]*nftTable, error) {
	nat := &nftTable{name: NFTIstioNatTable,
		baseChains: []nftBaseChain{
			{nftPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
			{nftOutput, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
		},
		chains: []string{nftIstioInbound, nftIstioRedirect, nftIstioInRedir, nftIstioOutput, nftIstioOutputDNS},
	}
	mangle := &nftTable{name: NFTIstioMangleTable,
		baseChains: []nftBaseChain{
			{nftPrerouting, knftables.FilterType, knftables.PreroutingHook, knftables.ManglePriority},
			{nftOutput, knftables.RouteType, knftables.OutputHook, knftables.ManglePriority},
		},
		chains: []string{nftIstioDivert, nftIstioTProxy, nftIstioInbound, nftIstioDrop},
	}
	raw := &nftTable{name: NFTIstioRawTable,
		baseChains: []nftBaseChain{
			{nftPrerouting, knftables.FilterType, knftables.PreroutingHook, knftables.RawPriority},
			{nftOutput, knftables.FilterType, knftables.OutputHook, knftables.RawPriority},
		},
		chains: []string{nftIstioInbound, nftIstioOutputDNS},
	}
	v6 := c.EnableIPv6
	add6 := func(t *nftTable, chain, text string) {
		if v6 {
			t.add(chain, text)
		}
	}
	tproxy := c.InboundInterceptionMode == InterceptTProxy
	lo4 := c.HostIPv4LoopbackCidr

	ex4, ex6, _ := separateV4V6(c.OutboundIPRangesExclude)
	if ex4.wildcard {
		return nil, fmt.Errorf("invalid value for OUTBOUND_IP_RANGES_EXCLUDE (-x): %q, a wildcard is not allowed", c.OutboundIPRangesExclude)
	}
	in4, in6, _ := separateV4V6(c.OutboundIPRangesInclude)
	redirectDNS := c.RedirectDNS && (c.CaptureAllDNS || len(c.DNSServersV4) > 0 || len(c.DNSServersV6) > 0)

	for _, ifc := range splitList(c.ExcludeInterfaces) {
		nat.add(nftPrerouting, withCounter("iifname "+ifc, "return"))
		nat.add(nftOutput, withCounter("oifname "+ifc, "return"))
	}
	if tproxy {
		for _, ifc := range splitList(c.ExcludeInterfaces) {
			mangle.add(nftPrerouting, withCounter("iifname "+ifc, "return"))
			mangle.add(nftOutput, withCounter("oifname "+ifc, "return"))
		}
	}
	for _, ifc := range splitList(c.RerouteVirtualInterfaces) {
		nat.insert(nftPrerouting, 0, withCounter("iifname "+ifc, "return"))
	}
	if c.DropInvalid {
		mangle.add(nftPrerouting, withCounter("meta l4proto tcp ct state invalid", "jump "+nftIstioDrop))
		mangle.add(nftIstioDrop, withCounter("", "drop"))
	}
	nat.add(nftIstioInbound, withCounter("meta l4proto tcp tcp dport "+c.InboundTunnelPort, "return"))
	nat.add(nftIstioRedirect, withCounter("meta l4proto tcp", "redirect to :"+c.ProxyPort))
	nat.add(nftIstioInRedir, withCounter("meta l4proto tcp", "redirect to :"+c.InboundCapturePort))

	if c.InboundPortsInclude != "" {
		t := nat
		if tproxy {
			mangle.add(nftIstioDivert, withCounter("", "meta mark set "+c.InboundTProxyMark))
			mangle.add(nftIstioDivert, withCounter("", "accept"))
			mangle.add(nftIstioTProxy, withCounter("meta l4proto tcp ip daddr != "+lo4,
				"tproxy ip to :"+c.InboundCapturePort, "meta mark set "+c.InboundTProxyMark, "accept"))
			add6(mangle, nftIstioTProxy, withCounter("meta l4proto tcp ip6 daddr != ::1/128",
				"tproxy ip6 to :"+c.InboundCapturePort, "meta mark set "+c.InboundTProxyMark, "accept"))
			t = mangle
		}
		t.add(nftPrerouting, withCounter("meta l4proto tcp", "jump "+nftIstioInbound))
		if c.InboundPortsInclude == "*" {
			for _, port := range splitList(c.InboundPortsExclude) {
				t.add(nftIstioInbound, withCounter("meta l4proto tcp tcp dport "+port, "return"))
			}
			if tproxy {
				mangle.add(nftIstioInbound, withCounter("meta l4proto tcp ct state related,established", "jump "+nftIstioDivert))
				mangle.add(nftIstioInbound, withCounter("meta l4proto tcp", "jump "+nftIstioTProxy))
			} else {
				nat.add(nftIstioInbound, withCounter("meta l4proto tcp", "jump "+nftIstioInRedir))
			}
		} else {
			for _, port := range splitList(c.InboundPortsInclude) {
				if tproxy {
					mangle.add(nftIstioInbound, withCounter("meta l4proto tcp ct state related,established tcp dport "+port, "jump "+nftIstioDivert))
					mangle.add(nftIstioInbound, withCounter("meta l4proto tcp tcp dport "+port, "jump "+nftIstioTProxy))
				} else {
					nat.add(nftIstioInbound, withCounter("meta l4proto tcp tcp dport "+port, "jump "+nftIstioInRedir))
				}
			}
		}
	}

	nat.add(nftOutput, withCounter("", "jump "+nftIstioOutput))
	for _, port := range splitList(c.OutboundPortsExclude) {
		nat.add(nftIstioOutput, withCounter("tcp dport "+port, "return"))
		nat.add(nftIstioOutput, withCounter("udp dport "+port, "return"))
	}
	nat.add(nftIstioOutput, withCounter("oifname lo ip saddr "+IstioInboundSourceIPv4, "return"))
	add6(nat, nftIstioOutput, withCounter("oifname lo ip6 saddr "+IstioInboundSourceIPv6, "return"))
	keepLoopbackReturn := !in4.hasLoopback && !in6.hasLoopback
	tunnel := c.InboundTunnelPort
	dportNot := tunnel
	if redirectDNS {
		dportNot = "{ 53, " + tunnel + " }"
	}
	for _, uid := range splitList(c.ProxyUID) {
		nat.add(nftIstioOutput, withCounter("oifname lo meta l4proto tcp ip daddr != "+lo4+" tcp dport != "+dportNot+" skuid "+uid, "jump "+nftIstioInRedir))
		add6(nat, nftIstioOutput, withCounter("oifname lo meta l4proto tcp ip6 daddr != ::1/128 tcp dport != "+dportNot+" skuid "+uid, "jump "+nftIstioInRedir))
		if keepLoopbackReturn {
			if redirectDNS {
				nat.add(nftIstioOutput, withCounter("oifname lo meta l4proto tcp tcp dport != 53 skuid != "+uid, "return"))
			} else {
				nat.add(nftIstioOutput, withCounter("oifname lo skuid != "+uid, "return"))
			}
		}
		nat.add(nftIstioOutput, withCounter("skuid "+uid, "return"))
	}
	for _, gid := range splitList(c.ProxyGID) {
		nat.add(nftIstioOutput, withCounter("oifname lo meta l4proto tcp ip daddr != "+lo4+" tcp dport != "+tunnel+" skgid "+gid, "jump "+nftIstioInRedir))
		add6(nat, nftIstioOutput, withCounter("oifname lo meta l4proto tcp ip6 daddr != ::1/128 tcp dport != "+tunnel+" skgid "+gid, "jump "+nftIstioInRedir))
		if keepLoopbackReturn {
			if redirectDNS {
				nat.add(nftIstioOutput, withCounter("oifname lo meta l4proto tcp tcp dport != 53 skgid != "+gid, "return"))
			} else {
				nat.add(nftIstioOutput, withCounter("oifname lo skgid != "+gid, "return"))
			}
		}
		nat.add(nftIstioOutput, withCounter("skgid "+gid, "return"))
	}
	owner := parseOwnerFilter(c.OwnerGroupsInclude, c.OwnerGroupsExclude)
	if owner.except {
		for _, g := range owner.values {
			nat.add(nftIstioOutput, withCounter("skgid "+g, "return"))
		}
	} else {
		m := ""
		for i, g := range owner.values {
			if i > 0 {
				m += " "
			}
			m += "skgid != " + g
		}
		nat.add(nftIstioOutput, withCounter(m, "return"))
	}
	if redirectDNS {
		istioDNSNFT(c, nat, raw)
	}
	nat.add(nftIstioOutput, withCounter("ip daddr "+lo4, "return"))
	add6(nat, nftIstioOutput, withCounter("ip6 daddr ::1/128", "return"))
	for _, p := range ex4.cidrs {
		nat.add(nftIstioOutput, withCounter("ip daddr "+p.String(), "return"))
	}
	for _, p := range ex6.cidrs {
		add6(nat, nftIstioOutput, withCounter("ip6 daddr "+p.String(), "return"))
	}
	for _, port := range splitList(c.OutboundPortsInclude) {
		nat.add(nftIstioOutput, withCounter("tcp dport "+port, "jump "+nftIstioRedirect))
	}
	if in4.wildcard || in6.wildcard {
		nat.add(nftIstioOutput, withCounter("", "jump "+nftIstioRedirect))
		for _, ifc := range splitList(c.RerouteVirtualInterfaces) {
			nat.insert(nftPrerouting, 0, withCounter("iifname "+ifc, "jump "+nftIstioRedirect))
		}
	} else {
		for _, p := range in4.cidrs {
			for _, ifc := range splitList(c.RerouteVirtualInterfaces) {
				nat.insert(nftPrerouting, 0, withCounter("iifname "+ifc+" ip daddr "+p.String(), "jump "+nftIstioRedirect))
			}
			nat.add(nftIstioOutput, withCounter("ip daddr "+p.String(), "jump "+nftIstioRedirect))
		}
		if v6 {
			for _, p := range in6.cidrs {
				for _, ifc := range splitList(c.RerouteVirtualInterfaces) {
					nat.insert(nftPrerouting, 0, withCounter("iifname "+ifc+" ip6 daddr "+p.String(), "jump "+nftIstioRedirect))
				}
				nat.add(nftIstioOutput, withCounter("ip6 daddr "+p.String(), "jump "+nftIstioRedirect))
			}
		}
	}
	if tproxy {
		mangle.add(nftPrerouting, withCounter("meta l4proto tcp mark "+c.InboundTProxyMark, "ct mark set mark"))
		mangle.add(nftOutput, withCounter("oifname lo meta l4proto tcp mark "+c.InboundTProxyMark, "return"))
		for _, uid := range splitList(c.ProxyUID) {
			mangle.add(nftOutput, withCounter("oifname lo meta l4proto tcp ip daddr != "+lo4+" skuid "+uid, "meta mark set "+IstioOutboundMark))
			add6(mangle, nftOutput, withCounter("oifname lo meta l4proto tcp ip6 daddr != ::1/128 skuid "+uid, "meta mark set "+IstioOutboundMark))
		}
		for _, gid := range splitList(c.ProxyGID) {
			mangle.add(nftOutput, withCounter("oifname lo meta l4proto tcp ip daddr != "+lo4+" skgid "+gid, "meta mark set "+IstioOutboundMark))
			add6(mangle, nftOutput, withCounter("oifname lo meta l4proto tcp ip6 daddr != ::1/128 skgid "+gid, "meta mark set "+IstioOutboundMark))
		}
		mangle.add(nftOutput, withCounter("meta l4proto tcp ct mark "+c.InboundTProxyMark, "meta mark set ct mark"))
		mangle.insert(nftIstioInbound, 0, withCounter("meta l4proto tcp mark "+c.InboundTProxyMark, "return"))
		mangle.insert(nftIstioInbound, 1, withCounter("iifname lo meta l4proto tcp ip saddr "+IstioInboundSourceIPv4, "return"))
		if v6 {
			mangle.insert(nftIstioInbound, 1, withCounter("iifname lo meta l4proto tcp ip6 saddr "+IstioInboundSourceIPv6, "return"))
		}
		mangle.insert(nftIstioInbound, 2, withCounter("iifname lo meta l4proto tcp mark != "+IstioOutboundMark, "return"))
	}
	return []*nftTable{nat, mangle, raw}, nil
}

func istioDNSNFT(c IstioConfig, nat, raw *nftTable) {
	v6 := c.EnableIPv6
	raw.add(nftOutput, withCounter("", "jump "+nftIstioOutputDNS))
	nat.add(nftIstioOutput, withCounter("", "jump "+nftIstioOutputDNS))
	redir := "redirect to :" + IstioDNSListenerPort
	if c.CaptureAllDNS {
		nat.add(nftIstioOutputDNS, withCounter("meta l4proto tcp tcp dport 53", redir))
	} else {
		for _, s := range c.DNSServersV4 {
			nat.add(nftIstioOutputDNS, withCounter("ip daddr "+s+"/32 tcp dport 53", redir))
		}
		if v6 {
			for _, s := range c.DNSServersV6 {
				nat.add(nftIstioOutputDNS, withCounter("ip6 daddr "+s+"/128 tcp dport 53", redir))
			}
		}
	}
	if c.CaptureAllDNS {
		nat.add(nftIstioOutputDNS, withCounter("udp dport 53", redir))
	} else {
		for _, s := range c.DNSServersV4 {
			nat.add(nftIstioOutputDNS, withCounter("ip daddr "+s+"/32 udp dport 53", redir))
		}
		if v6 {
			for _, s := range c.DNSServersV6 {
				nat.add(nftIstioOutputDNS, withCounter("ip6 daddr "+s+"/128 udp dport 53", redir))
			}
		}
	}
	for _, uid := range splitList(c.ProxyUID) {
		raw.add(nftIstioOutputDNS, withCounter("udp dport 53 meta skuid "+uid, "ct zone set 1"))
		raw.add(nftIstioOutputDNS, withCounter("udp sport "+IstioDNSListenerPort+" meta skuid "+uid, "ct zone set 2"))
	}
	for _, gid := range splitList(c.ProxyGID) {
		raw.add(nftIstioOutputDNS, withCounter("udp dport 53 meta skgid "+gid, "ct zone set 1"))
		raw.add(nftIstioOutputDNS, withCounter("udp sport "+IstioDNSListenerPort+" meta skgid "+gid, "ct zone set 2"))
	}
	if c.CaptureAllDNS {
		raw.add(nftPrerouting, withCounter("", "jump "+nftIstioInbound))
		raw.add(nftIstioOutputDNS, withCounter("udp dport 53", "ct zone set 2"))
		raw.add(nftIstioInbound, withCounter("udp sport 53", "ct zone set 1"))
		return
	}
	if len(c.DNSServersV4) > 0 || len(c.DNSServersV6) > 0 {
		raw.add(nftPrerouting, withCounter("", "jump "+nftIstioInbound))
	}
	for _, s := range c.DNSServersV4 {
		raw.add(nftIstioOutputDNS, withCounter("udp dport 53 ip daddr "+s+"/32", "ct zone set 2"))
		raw.add(nftIstioInbound, withCounter("udp sport 53 ip saddr "+s+"/32", "ct zone set 1"))
	}
	if v6 {
		for _, s := range c.DNSServersV6 {
			raw.add(nftIstioOutputDNS, withCounter("udp dport 53 ip6 daddr "+s+"/128", "ct zone set 2"))
			raw.add(nftIstioInbound, withCounter("udp sport 53 ip6 saddr "+s+"/128", "ct zone set 1"))
		}
	}
}

// RenderIstioNFTables writes the nft script istio-nftables applies (tables inet istio-proxy-nat,
// istio-proxy-mangle, istio-proxy-raw), byte-for-byte as its knftables transaction.
func RenderIstioNFTables(w io.Writer, c IstioConfig) error {
	tables, err := istioNFTTables(c)
	if err != nil {
		return fmt.Errorf("rendering istio nftables: %w", err)
	}
	return writeTx(w, nftTransaction(tables...))
}
