package capture

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
)

// Istio interception constants (istio tools/istio-iptables/pkg/constants).
const (
	IstioProxyPort          = "15001" // Envoy outbound listener (-p)
	IstioInboundCapturePort = "15006" // Envoy inbound listener (-z)
	IstioInboundTunnelPort  = "15008" // HBONE tunnel port, never redirected
	IstioProxyUID           = "1337"  // istio-proxy user and group
	IstioDNSListenerPort    = "15053" // istio-agent DNS proxy
	IstioPrometheusPort     = "15090" // Envoy prometheus, always in -d
	IstioHealthPort         = "15021" // Envoy health, always in -d
	IstioStatusPort         = "15020" // pilot-agent status port (default values.global.proxy.statusPort)
	IstioTProxyMark         = "1337"  // inbound TPROXY mark
	IstioTProxyRouteTable   = "133"   // policy routing table used with TPROXY
	IstioOutboundMark       = "1338"  // mark on proxy->app packets over lo in TPROXY mode
	IstioLoopbackCIDR       = "127.0.0.1/32"
	IstioInboundSourceIPv4  = "127.0.0.6/32" // inbound passthrough bind address
	IstioInboundSourceIPv6  = "::6/128"
)

// Istio chain names (iptables) and their nftables equivalents.
const (
	ChainIstioInbound    = "ISTIO_INBOUND"
	ChainIstioRedirect   = "ISTIO_REDIRECT"
	ChainIstioInRedirect = "ISTIO_IN_REDIRECT"
	ChainIstioOutput     = "ISTIO_OUTPUT"
	ChainIstioOutputDNS  = "ISTIO_OUTPUT_DNS"
	ChainIstioDivert     = "ISTIO_DIVERT"
	ChainIstioTProxy     = "ISTIO_TPROXY"
	ChainIstioDrop       = "ISTIO_DROP"
)

// InterceptionMode is the sidecar's inbound interception mode (-m).
type InterceptionMode string

const (
	// InterceptRedirect uses nat REDIRECT (the default): the app sees the proxy's address as source.
	InterceptRedirect InterceptionMode = "REDIRECT"
	// InterceptTProxy uses mangle TPROXY + policy routing: the original source address is preserved.
	InterceptTProxy InterceptionMode = "TPROXY"
	// InterceptNone installs no rules at all.
	InterceptNone InterceptionMode = "NONE"
)

// IstioConfig is the resolved istio-iptables / istio-nftables configuration (the fields of istio's
// tools/common/config.Config that shape the rules). String-typed lists keep the exact text the tool
// receives, because the tool splits them itself (empty elements dropped).
type IstioConfig struct {
	ProxyPort                string           // -p
	InboundCapturePort       string           // -z
	InboundTunnelPort        string           // always 15008
	ProxyUID                 string           // -u, comma-separated
	ProxyGID                 string           // -g, comma-separated; the tool defaults it to ProxyUID
	InboundInterceptionMode  InterceptionMode // -m
	InboundTProxyMark        string           // -t
	InboundTProxyRouteTable  string           // -r
	InboundPortsInclude      string           // -b: "*", "" or a port list
	InboundPortsExclude      string           // -d
	OwnerGroupsInclude       string           // --capture-by-owner-groups-include? default "*"
	OwnerGroupsExclude       string
	OutboundPortsInclude     string // -q
	OutboundPortsExclude     string // -o
	OutboundIPRangesInclude  string // -i: "*", "" or CIDRs
	OutboundIPRangesExclude  string // -x
	RerouteVirtualInterfaces string // -k
	ExcludeInterfaces        string // -c
	EnableIPv6               bool
	RedirectDNS              bool     // ISTIO_META_DNS_CAPTURE
	CaptureAllDNS            bool     // capture port 53 to any server (CNI case)
	DNSServersV4             []string // from the pod's resolv.conf at runtime
	DNSServersV6             []string
	DropInvalid              bool   // INVALID_DROP
	HostIPv4LoopbackCidr     string // default 127.0.0.1/32

	// InstalledBy says who applies the rules: "istio-init" (init container) or "istio-cni" (CNI plugin,
	// the init container only validates). The rules are the same.
	InstalledBy string
	// NativeNftables is set when the injector passed --native-nftables (istio-nftables instead of iptables).
	NativeNftables bool
}

// Mesh implements Config.
func (IstioConfig) Mesh() Mesh { return MeshIstioSidecar }

// DefaultIstioConfig returns istio-iptables' configuration with the injector's default arguments
// (-p 15001 -z 15006 -u 1337 -m REDIRECT -i '*' -x ” -b '*' -d 15090,15021,15020).
func DefaultIstioConfig() IstioConfig {
	return IstioConfig{
		ProxyPort:               IstioProxyPort,
		InboundCapturePort:      IstioInboundCapturePort,
		InboundTunnelPort:       IstioInboundTunnelPort,
		ProxyUID:                IstioProxyUID,
		ProxyGID:                IstioProxyUID,
		InboundInterceptionMode: InterceptRedirect,
		InboundTProxyMark:       IstioTProxyMark,
		InboundTProxyRouteTable: IstioTProxyRouteTable,
		InboundPortsInclude:     "*",
		InboundPortsExclude:     IstioPrometheusPort + "," + IstioHealthPort + "," + IstioStatusPort,
		OwnerGroupsInclude:      "*",
		OutboundIPRangesInclude: "*",
		HostIPv4LoopbackCidr:    IstioLoopbackCIDR,
		InstalledBy:             "istio-init",
	}
}

// istioNetworkRange is one family's part of an include/exclude CIDR list.
type istioNetworkRange struct {
	wildcard    bool
	cidrs       []netip.Prefix
	hasLoopback bool
}

// separateV4V6 splits a CIDR list by family like istio's SeparateV4V6; unparsable entries are skipped
// (istio prints "Ignoring error for bug compatibility") and reported through bad.
func separateV4V6(list string) (v4, v6 istioNetworkRange, bad []string) {
	if list == "*" {
		return istioNetworkRange{wildcard: true}, istioNetworkRange{wildcard: true}, nil
	}
	for _, s := range splitList(list) {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			bad = append(bad, s)
			continue
		}
		if p.Addr().Is4() {
			v4.cidrs = append(v4.cidrs, p)
			v4.hasLoopback = v4.hasLoopback || p.Addr().IsLoopback()
		} else {
			v6.cidrs = append(v6.cidrs, p)
			v6.hasLoopback = v6.hasLoopback || p.Addr().IsLoopback()
		}
	}
	return v4, v6, bad
}

// istioOwnerFilter is istio's InterceptFilter: capture only these groups, or all except these.
type istioOwnerFilter struct {
	values []string
	except bool
}

func parseOwnerFilter(include, exclude string) istioOwnerFilter {
	if include == "*" {
		return istioOwnerFilter{values: splitList(exclude), except: true}
	}
	return istioOwnerFilter{values: splitList(include)}
}

// istioIPTRules builds the v4 and v6 rule lists exactly in istio-iptables' call order.
func istioIPTRules(c IstioConfig) (v4, v6 *iptBuilder, err error) {
	v4, v6 = &iptBuilder{}, &iptBuilder{}
	both := func(chain, table string, p ...string) {
		v4.appendRule(chain, table, p...)
		if c.EnableIPv6 {
			v6.appendRule(chain, table, p...)
		}
	}
	only6 := func(chain, table string, p ...string) {
		if c.EnableIPv6 {
			v6.appendRule(chain, table, p...)
		}
	}
	insBoth := func(chain, table string, pos int, p ...string) {
		v4.insertRule(chain, table, pos, p...)
		if c.EnableIPv6 {
			v6.insertRule(chain, table, pos, p...)
		}
	}
	// versioned substitutes the family-specific address for the placeholder "@IP@".
	versioned := func(ip4, ip6, chain, table string, p ...string) {
		v4.appendRule(chain, table, subst(p, ip4)...)
		if c.EnableIPv6 {
			v6.appendRule(chain, table, subst(p, ip6)...)
		}
	}
	tproxy := c.InboundInterceptionMode == InterceptTProxy
	lo4 := c.HostIPv4LoopbackCidr

	ex4, ex6, _ := separateV4V6(c.OutboundIPRangesExclude)
	if ex4.wildcard {
		return nil, nil, fmt.Errorf("invalid value for OUTBOUND_IP_RANGES_EXCLUDE (-x): %q, a wildcard is not allowed", c.OutboundIPRangesExclude)
	}
	in4, in6, _ := separateV4V6(c.OutboundIPRangesInclude)

	redirectDNS := c.RedirectDNS && (c.CaptureAllDNS || len(c.DNSServersV4) > 0 || len(c.DNSServersV6) > 0)

	// Interfaces excluded from capture.
	for _, ifc := range splitList(c.ExcludeInterfaces) {
		both("PREROUTING", "nat", "-i", ifc, "-j", "RETURN")
		both("OUTPUT", "nat", "-o", ifc, "-j", "RETURN")
	}
	if tproxy {
		for _, ifc := range splitList(c.ExcludeInterfaces) {
			both("PREROUTING", "mangle", "-i", ifc, "-j", "RETURN")
			both("OUTPUT", "mangle", "-o", ifc, "-j", "RETURN")
		}
	}
	// Virtual (KubeVirt) interfaces are not captured inbound.
	for _, ifc := range splitList(c.RerouteVirtualInterfaces) {
		insBoth("PREROUTING", "nat", 1, "-i", ifc, "-j", "RETURN")
	}
	if c.DropInvalid {
		both("PREROUTING", "mangle", "-m", "conntrack", "--ctstate", "INVALID", "-j", ChainIstioDrop)
		both(ChainIstioDrop, "mangle", "-j", "DROP")
	}
	both(ChainIstioInbound, "nat", "-p", "tcp", "--dport", c.InboundTunnelPort, "-j", "RETURN")
	both(ChainIstioRedirect, "nat", "-p", "tcp", "-j", "REDIRECT", "--to-ports", c.ProxyPort)
	both(ChainIstioInRedirect, "nat", "-p", "tcp", "-j", "REDIRECT", "--to-ports", c.InboundCapturePort)

	// Inbound.
	if c.InboundPortsInclude != "" {
		table := "nat"
		if tproxy {
			both(ChainIstioDivert, "mangle", "-j", "MARK", "--set-mark", c.InboundTProxyMark)
			both(ChainIstioDivert, "mangle", "-j", "ACCEPT")
			versioned(lo4, "::1/128", ChainIstioTProxy, "mangle", "!", "-d", "@IP@", "-p", "tcp", "-j", "TPROXY",
				"--tproxy-mark", c.InboundTProxyMark+"/0xffffffff", "--on-port", c.InboundCapturePort)
			table = "mangle"
		}
		both("PREROUTING", table, "-p", "tcp", "-j", ChainIstioInbound)
		if c.InboundPortsInclude == "*" {
			for _, port := range splitList(c.InboundPortsExclude) {
				both(ChainIstioInbound, table, "-p", "tcp", "--dport", port, "-j", "RETURN")
			}
			if tproxy {
				both(ChainIstioInbound, "mangle", "-p", "tcp", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", ChainIstioDivert)
				both(ChainIstioInbound, "mangle", "-p", "tcp", "-j", ChainIstioTProxy)
			} else {
				both(ChainIstioInbound, "nat", "-p", "tcp", "-j", ChainIstioInRedirect)
			}
		} else {
			for _, port := range splitList(c.InboundPortsInclude) {
				if tproxy {
					both(ChainIstioInbound, "mangle", "-p", "tcp", "--dport", port, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", ChainIstioDivert)
					both(ChainIstioInbound, "mangle", "-p", "tcp", "--dport", port, "-j", ChainIstioTProxy)
				} else {
					both(ChainIstioInbound, "nat", "-p", "tcp", "--dport", port, "-j", ChainIstioInRedirect)
				}
			}
		}
	}

	// Outbound.
	both("OUTPUT", "nat", "-j", ChainIstioOutput)
	for _, port := range splitList(c.OutboundPortsExclude) {
		both(ChainIstioOutput, "nat", "-p", "tcp", "--dport", port, "-j", "RETURN")
		both(ChainIstioOutput, "nat", "-p", "udp", "--dport", port, "-j", "RETURN")
	}
	versioned(IstioInboundSourceIPv4, IstioInboundSourceIPv6, ChainIstioOutput, "nat", "-o", "lo", "-s", "@IP@", "-j", "RETURN")
	keepLoopbackReturn := !in4.hasLoopback && !in6.hasLoopback
	for _, uid := range splitList(c.ProxyUID) {
		if redirectDNS {
			versioned(lo4, "::1/128", ChainIstioOutput, "nat", "-o", "lo", "!", "-d", "@IP@", "-p", "tcp",
				"-m", "multiport", "!", "--dports", "53,"+c.InboundTunnelPort, "-m", "owner", "--uid-owner", uid, "-j", ChainIstioInRedirect)
		} else {
			versioned(lo4, "::1/128", ChainIstioOutput, "nat", "-o", "lo", "!", "-d", "@IP@", "-p", "tcp",
				"!", "--dport", c.InboundTunnelPort, "-m", "owner", "--uid-owner", uid, "-j", ChainIstioInRedirect)
		}
		if keepLoopbackReturn {
			if redirectDNS {
				both(ChainIstioOutput, "nat", "-o", "lo", "-p", "tcp", "!", "--dport", "53", "-m", "owner", "!", "--uid-owner", uid, "-j", "RETURN")
			} else {
				both(ChainIstioOutput, "nat", "-o", "lo", "-m", "owner", "!", "--uid-owner", uid, "-j", "RETURN")
			}
		}
		both(ChainIstioOutput, "nat", "-m", "owner", "--uid-owner", uid, "-j", "RETURN")
	}
	for _, gid := range splitList(c.ProxyGID) {
		versioned(lo4, "::1/128", ChainIstioOutput, "nat", "-o", "lo", "!", "-d", "@IP@", "-p", "tcp",
			"!", "--dport", c.InboundTunnelPort, "-m", "owner", "--gid-owner", gid, "-j", ChainIstioInRedirect)
		if keepLoopbackReturn {
			if redirectDNS {
				both(ChainIstioOutput, "nat", "-o", "lo", "-p", "tcp", "!", "--dport", "53", "-m", "owner", "!", "--gid-owner", gid, "-j", "RETURN")
			} else {
				both(ChainIstioOutput, "nat", "-o", "lo", "-m", "owner", "!", "--gid-owner", gid, "-j", "RETURN")
			}
		}
		both(ChainIstioOutput, "nat", "-m", "owner", "--gid-owner", gid, "-j", "RETURN")
	}
	owner := parseOwnerFilter(c.OwnerGroupsInclude, c.OwnerGroupsExclude)
	if owner.except {
		for _, g := range owner.values {
			both(ChainIstioOutput, "nat", "-m", "owner", "--gid-owner", g, "-j", "RETURN")
		}
	} else {
		var p []string
		for _, g := range owner.values {
			p = append(p, "-m", "owner", "!", "--gid-owner", g)
		}
		both(ChainIstioOutput, "nat", append(p, "-j", "RETURN")...)
	}
	if redirectDNS {
		istioDNSIPTables(c, v4, v6, both)
	}
	versioned(lo4, "::1/128", ChainIstioOutput, "nat", "-d", "@IP@", "-j", "RETURN")
	for _, p := range ex4.cidrs {
		v4.appendRule(ChainIstioOutput, "nat", "-d", p.String(), "-j", "RETURN")
	}
	for _, p := range ex6.cidrs {
		only6(ChainIstioOutput, "nat", "-d", p.String(), "-j", "RETURN")
	}
	for _, port := range splitList(c.OutboundPortsInclude) {
		both(ChainIstioOutput, "nat", "-p", "tcp", "--dport", port, "-j", ChainIstioRedirect)
	}
	outboundInclude := func(r istioNetworkRange, b *iptBuilder) {
		if r.wildcard {
			b.appendRule(ChainIstioOutput, "nat", "-j", ChainIstioRedirect)
			for _, ifc := range splitList(c.RerouteVirtualInterfaces) {
				b.insertRule("PREROUTING", "nat", 1, "-i", ifc, "-j", ChainIstioRedirect)
			}
			return
		}
		for _, p := range r.cidrs {
			for _, ifc := range splitList(c.RerouteVirtualInterfaces) {
				b.insertRule("PREROUTING", "nat", 1, "-i", ifc, "-d", p.String(), "-j", ChainIstioRedirect)
			}
			b.appendRule(ChainIstioOutput, "nat", "-d", p.String(), "-j", ChainIstioRedirect)
		}
	}
	outboundInclude(in4, v4)
	if c.EnableIPv6 {
		outboundInclude(in6, v6)
	}

	if tproxy {
		both("PREROUTING", "mangle", "-p", "tcp", "-m", "mark", "--mark", c.InboundTProxyMark, "-j", "CONNMARK", "--save-mark")
		both("OUTPUT", "mangle", "-p", "tcp", "-o", "lo", "-m", "mark", "--mark", c.InboundTProxyMark, "-j", "RETURN")
		for _, uid := range splitList(c.ProxyUID) {
			versioned(lo4, "::1/128", "OUTPUT", "mangle", "!", "-d", "@IP@", "-p", "tcp", "-o", "lo",
				"-m", "owner", "--uid-owner", uid, "-j", "MARK", "--set-mark", IstioOutboundMark)
		}
		for _, gid := range splitList(c.ProxyGID) {
			versioned(lo4, "::1/128", "OUTPUT", "mangle", "!", "-d", "@IP@", "-p", "tcp", "-o", "lo",
				"-m", "owner", "--gid-owner", gid, "-j", "MARK", "--set-mark", IstioOutboundMark)
		}
		both("OUTPUT", "mangle", "-p", "tcp", "-m", "connmark", "--mark", c.InboundTProxyMark, "-j", "CONNMARK", "--restore-mark")
		insBoth(ChainIstioInbound, "mangle", 1, "-p", "tcp", "-m", "mark", "--mark", c.InboundTProxyMark, "-j", "RETURN")
		v4.insertRule(ChainIstioInbound, "mangle", 2, "-p", "tcp", "-s", IstioInboundSourceIPv4, "-i", "lo", "-j", "RETURN")
		if c.EnableIPv6 {
			v6.insertRule(ChainIstioInbound, "mangle", 2, "-p", "tcp", "-s", IstioInboundSourceIPv6, "-i", "lo", "-j", "RETURN")
		}
		insBoth(ChainIstioInbound, "mangle", 3, "-p", "tcp", "-i", "lo", "-m", "mark", "!", "--mark", IstioOutboundMark, "-j", "RETURN")
	}
	return v4, v6, nil
}

func istioDNSIPTables(c IstioConfig, v4, v6 *iptBuilder, both func(chain, table string, p ...string)) {
	both("OUTPUT", "raw", "-j", ChainIstioOutputDNS)
	if c.CaptureAllDNS || len(c.DNSServersV4) > 0 {
		v4.appendRule(ChainIstioOutput, "nat", "-j", ChainIstioOutputDNS)
	}
	if c.EnableIPv6 && (c.CaptureAllDNS || len(c.DNSServersV6) > 0) {
		v6.appendRule(ChainIstioOutput, "nat", "-j", ChainIstioOutputDNS)
	}
	v6rule := func(chain, table string, p ...string) {
		if c.EnableIPv6 {
			v6.appendRule(chain, table, p...)
		}
	}
	if c.CaptureAllDNS {
		both(ChainIstioOutputDNS, "nat", "-p", "tcp", "--dport", "53", "-j", "REDIRECT", "--to-ports", IstioDNSListenerPort)
	} else {
		for _, s := range c.DNSServersV4 {
			v4.appendRule(ChainIstioOutputDNS, "nat", "-p", "tcp", "--dport", "53", "-d", s+"/32", "-j", "REDIRECT", "--to-ports", IstioDNSListenerPort)
		}
		for _, s := range c.DNSServersV6 {
			v6rule(ChainIstioOutputDNS, "nat", "-p", "tcp", "--dport", "53", "-d", s+"/128", "-j", "REDIRECT", "--to-ports", IstioDNSListenerPort)
		}
	}
	if c.CaptureAllDNS {
		both(ChainIstioOutputDNS, "nat", "-p", "udp", "--dport", "53", "-j", "REDIRECT", "--to-port", IstioDNSListenerPort)
	} else {
		for _, s := range c.DNSServersV4 {
			v4.appendRule(ChainIstioOutputDNS, "nat", "-p", "udp", "--dport", "53", "-d", s+"/32", "-j", "REDIRECT", "--to-port", IstioDNSListenerPort)
		}
		for _, s := range c.DNSServersV6 {
			v6rule(ChainIstioOutputDNS, "nat", "-p", "udp", "--dport", "53", "-d", s+"/128", "-j", "REDIRECT", "--to-port", IstioDNSListenerPort)
		}
	}
	// Conntrack zones: proxy<->upstream resolver in zone 1, app<->proxy in zone 2.
	for _, uid := range splitList(c.ProxyUID) {
		both(ChainIstioOutputDNS, "raw", "-p", "udp", "--dport", "53", "-m", "owner", "--uid-owner", uid, "-j", "CT", "--zone", "1")
		both(ChainIstioOutputDNS, "raw", "-p", "udp", "--sport", IstioDNSListenerPort, "-m", "owner", "--uid-owner", uid, "-j", "CT", "--zone", "2")
	}
	for _, gid := range splitList(c.ProxyGID) {
		both(ChainIstioOutputDNS, "raw", "-p", "udp", "--dport", "53", "-m", "owner", "--gid-owner", gid, "-j", "CT", "--zone", "1")
		both(ChainIstioOutputDNS, "raw", "-p", "udp", "--sport", IstioDNSListenerPort, "-m", "owner", "--gid-owner", gid, "-j", "CT", "--zone", "2")
	}
	if c.CaptureAllDNS {
		both("PREROUTING", "raw", "-j", ChainIstioInbound)
		both(ChainIstioOutputDNS, "raw", "-p", "udp", "--dport", "53", "-j", "CT", "--zone", "2")
		both(ChainIstioInbound, "raw", "-p", "udp", "--sport", "53", "-j", "CT", "--zone", "1")
		return
	}
	if len(c.DNSServersV4) > 0 {
		v4.appendRule("PREROUTING", "raw", "-j", ChainIstioInbound)
	}
	for _, s := range c.DNSServersV4 {
		v4.appendRule(ChainIstioOutputDNS, "raw", "-p", "udp", "--dport", "53", "-d", s+"/32", "-j", "CT", "--zone", "2")
		v4.appendRule(ChainIstioInbound, "raw", "-p", "udp", "--sport", "53", "-s", s+"/32", "-j", "CT", "--zone", "1")
	}
	if len(c.DNSServersV6) > 0 {
		v6rule("PREROUTING", "raw", "-j", ChainIstioInbound)
	}
	for _, s := range c.DNSServersV6 {
		v6rule(ChainIstioOutputDNS, "raw", "-p", "udp", "--dport", "53", "-d", s+"/128", "-j", "CT", "--zone", "2")
		v6rule(ChainIstioInbound, "raw", "-p", "udp", "--sport", "53", "-s", s+"/128", "-j", "CT", "--zone", "1")
	}
}

func subst(p []string, ip string) []string {
	out := make([]string, len(p))
	for i, s := range p {
		if s == "@IP@" {
			s = ip
		}
		out[i] = s
	}
	return out
}

// IstioIPTablesRestore returns the iptables-restore input istio-iptables feeds to iptables-restore
// --noflush (v4) and ip6tables-restore --noflush (v6; empty unless EnableIPv6).
func IstioIPTablesRestore(c IstioConfig) (v4, v6 string, err error) {
	b4, b6, err := istioIPTRules(c)
	if err != nil {
		return "", "", err
	}
	return b4.restore(), b6.restore(), nil
}

// RenderIstioIPTables writes the IPv4 iptables-restore input, followed (when EnableIPv6) by a comment line
// "# ip6tables-restore" and the IPv6 input. Both are accepted by iptables-restore --noflush.
func RenderIstioIPTables(w io.Writer, c IstioConfig) error {
	v4, v6, err := IstioIPTablesRestore(c)
	if err != nil {
		return fmt.Errorf("rendering istio iptables: %w", err)
	}
	if _, err := io.WriteString(w, v4); err != nil {
		return err
	}
	if v6 != "" {
		if _, err := io.WriteString(w, "# ip6tables-restore\n"+v6); err != nil {
			return err
		}
	}
	return nil
}

// Validate reports the settings istio-iptables would reject or silently ignore.
func (c IstioConfig) Validate() []Evidence {
	var out []Evidence
	for _, f := range []struct{ name, val string }{{"OutboundIPRangesInclude", c.OutboundIPRangesInclude}, {"OutboundIPRangesExclude", c.OutboundIPRangesExclude}} {
		if _, _, bad := separateV4V6(f.val); len(bad) > 0 {
			out = append(out, Evidence{Setting: f.name, Value: strings.Join(bad, ","), Source: SourceUnknown, Warning: true,
				Why: "not a CIDR; istio-iptables skips it for bug compatibility"})
		}
	}
	for _, g := range append(splitList(c.OwnerGroupsInclude), splitList(c.OwnerGroupsExclude)...) {
		if g != "*" && !isNumeric(g) {
			out = append(out, Evidence{Setting: "OwnerGroups", Value: g, Source: SourceUnknown, Warning: true,
				Why: "group names are resolved against the istio-init image's /etc/group when the rules load; loading fails if it is missing"})
		}
	}
	if c.RedirectDNS && !c.CaptureAllDNS && len(c.DNSServersV4) == 0 && len(c.DNSServersV6) == 0 {
		out = append(out, Evidence{Setting: "RedirectDNS", Value: "true", Source: SourceUnknown, Warning: true,
			Why: "DNS capture is on but no DNS server is known (the tool reads them from the pod's resolv.conf); no DNS rules rendered"})
	}
	return out
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
