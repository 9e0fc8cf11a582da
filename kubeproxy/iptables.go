package kubeproxy

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// kube-proxy's iptables chains (pkg/proxy/iptables, v1.36).
const (
	iptServices         = "KUBE-SERVICES"
	iptExternalServices = "KUBE-EXTERNAL-SERVICES"
	iptNodePorts        = "KUBE-NODEPORTS"
	iptPostrouting      = "KUBE-POSTROUTING"
	iptMarkMasq         = "KUBE-MARK-MASQ"
	iptForward          = "KUBE-FORWARD"
	iptProxyFirewall    = "KUBE-PROXY-FIREWALL"
	iptFirewall         = "KUBE-FIREWALL" // "block incoming localnet connections"

	// Above this many endpoints kube-proxy stops writing per-endpoint comments.
	largeClusterEndpointsThreshold = 1000
)

// iptJumps are the rules kube-proxy ensures in the built-in chains, in the order they end up
// (kube-proxy prepends them).
var iptJumps = []struct{ table, chain, rule string }{
	{"filter", "INPUT", "-j " + iptFirewall},
	{"filter", "INPUT", `-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j ` + iptProxyFirewall},
	{"filter", "INPUT", `-m comment --comment "kubernetes health check service ports" -j ` + iptNodePorts},
	{"filter", "INPUT", `-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j ` + iptExternalServices},
	{"filter", "FORWARD", `-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j ` + iptProxyFirewall},
	{"filter", "FORWARD", `-m comment --comment "kubernetes forwarding rules" -j ` + iptForward},
	{"filter", "FORWARD", `-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j ` + iptServices},
	{"filter", "FORWARD", `-m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j ` + iptExternalServices},
	{"filter", "OUTPUT", "-j " + iptFirewall},
	{"filter", "OUTPUT", `-m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" -j ` + iptProxyFirewall},
	{"filter", "OUTPUT", `-m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j ` + iptServices},
	{"nat", "PREROUTING", `-m comment --comment "kubernetes service portals" -j ` + iptServices},
	{"nat", "OUTPUT", `-m comment --comment "kubernetes service portals" -j ` + iptServices},
	{"nat", "POSTROUTING", `-m comment --comment "kubernetes postrouting rules" -j ` + iptPostrouting},
}

func (sp *ServicePort) iptSVC() string { return iptSVCPrefix + sp.iptHash }
func (sp *ServicePort) iptSVL() string { return iptSVLPrefix + sp.iptHash }
func (sp *ServicePort) iptEXT() string { return iptEXTPrefix + sp.iptHash }
func (sp *ServicePort) iptFW() string  { return iptFWPrefix + sp.iptHash }

func (sp *ServicePort) iptInternalChain() string {
	if sp.InternalPolicyLocal {
		return sp.iptSVL()
	}
	return sp.iptSVC()
}

func (sp *ServicePort) iptExternalPolicyChain() string {
	if sp.ExternalPolicyLocal {
		return sp.iptSVL()
	}
	return sp.iptSVC()
}

// iptUsesFW: LoadBalancerSourceRanges are enforced (nat KUBE-FW-* + filter KUBE-PROXY-FIREWALL).
func (sp *ServicePort) iptUsesFW() bool {
	return sp.HasEndpoints && len(sp.LoadBalancerVIPs) > 0 && len(sp.SourceRanges) > 0
}

// RenderIPTables writes what kube-proxy in iptables mode programs, in iptables-save format
// (tables filter and nat, each with the built-in chains' jump rules and all KUBE-* chains), ready
// for `iptables-restore` / `ip6tables-restore`.
func RenderIPTables(w io.Writer, cfg Config, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) error {
	cfg.Mode = ModeIPTables
	idx, err := NewIndex(cfg, svcs, slices)
	if err != nil {
		return err
	}
	return idx.RenderIPTables(w)
}

type lineBuf struct{ strings.Builder }

func (b *lineBuf) line(parts ...string) {
	for i, p := range parts {
		if p == "" {
			continue
		}
		if i > 0 && b.Len() > 0 {
			last := b.String()[b.Len()-1]
			if last != '\n' {
				b.WriteByte(' ')
			}
		}
		b.WriteString(p)
	}
	b.WriteByte('\n')
}

// RenderIPTables writes the iptables ruleset for the index (see the package function).
func (idx *Index) RenderIPTables(w io.Writer) error {
	cfg := &idx.cfg
	mark := cfg.masqMark()
	large := idx.totalEps > largeClusterEndpointsThreshold
	var filterChains, filterRules, natChains, natRules lineBuf
	chain := func(b *lineBuf, name string) { b.WriteString(":" + name + " - [0:0]\n") }

	for _, c := range []string{iptNodePorts, iptServices, iptExternalServices, iptForward, iptProxyFirewall, iptFirewall} {
		chain(&filterChains, c)
	}
	for _, c := range []string{iptNodePorts, iptServices, iptPostrouting, iptMarkMasq} {
		chain(&natChains, c)
	}
	natRules.line("-A", iptPostrouting, "-m mark !", "--mark", mark+"/"+mark, "-j RETURN")
	natRules.line("-A", iptPostrouting, "-j MARK --xor-mark", mark)
	masq := `-A ` + iptPostrouting + ` -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE`
	if cfg.RandomFully {
		masq += " --random-fully"
	}
	natRules.line(masq)
	natRules.line("-A", iptMarkMasq, "-j MARK --or-mark", mark)
	if !cfg.ConntrackTCPBeLiberal {
		if cfg.NoNFAcct {
			filterRules.line("-A", iptForward, "-m conntrack --ctstate INVALID -j DROP")
		} else {
			filterRules.line("-A", iptForward, "-m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP")
		}
	}
	filterRules.line("-A", iptForward, `-m comment --comment "kubernetes forwarding rules" -m mark --mark`, mark+"/"+mark, "-j ACCEPT")
	filterRules.line("-A", iptForward, `-m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
	localhostNPs := !cfg.DisableLocalhostNodePorts && cfg.containsIPv4Loopback()
	if localhostNPs {
		filterRules.line("-A", iptFirewall, `-m comment --comment "block incoming localnet connections" -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP`)
	}

	for _, sp := range idx.ServicePorts() {
		idx.iptServicePort(sp, large, localhostNPs, &filterRules, &natChains, &natRules)
	}

	// The NodePorts jump must be the last rule of KUBE-SERVICES.
	const npComment = `-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain"`
	if cfg.nodePortMatchAll() {
		dst := "-m addrtype --dst-type LOCAL"
		if cfg.isV6() {
			dst += " ! -d ::1/128"
		} else if cfg.DisableLocalhostNodePorts {
			dst += " ! -d 127.0.0.0/8"
		}
		natRules.line("-A", iptServices, npComment, dst, "-j", iptNodePorts)
	} else {
		for _, a := range cfg.nodePortIPs() {
			if a.IsLoopback() && (cfg.isV6() || cfg.DisableLocalhostNodePorts) {
				continue
			}
			natRules.line("-A", iptServices, npComment, "-d", a.String(), "-j", iptNodePorts)
		}
	}

	var out strings.Builder
	builtin := func(table string, chains ...string) {
		for _, c := range chains {
			out.WriteString(":" + c + " ACCEPT [0:0]\n")
		}
		_ = table
	}
	out.WriteString("*filter\n")
	builtin("filter", "INPUT", "FORWARD", "OUTPUT")
	out.WriteString(filterChains.String())
	for _, j := range iptJumps {
		if j.table == "filter" {
			out.WriteString("-A " + j.chain + " " + j.rule + "\n")
		}
	}
	out.WriteString(filterRules.String())
	out.WriteString("COMMIT\n*nat\n")
	builtin("nat", "PREROUTING", "INPUT", "OUTPUT", "POSTROUTING")
	out.WriteString(natChains.String())
	for _, j := range iptJumps {
		if j.table == "nat" {
			out.WriteString("-A " + j.chain + " " + j.rule + "\n")
		}
	}
	out.WriteString(natRules.String())
	out.WriteString("COMMIT\n")
	if _, err := io.WriteString(w, out.String()); err != nil {
		return fmt.Errorf("writing iptables rules: %w", err)
	}
	return nil
}

func quoted(s string) string { return `"` + s + `"` }

func (idx *Index) iptServicePort(sp *ServicePort, large, localhostNPs bool, filterRules, natChains, natRules *lineBuf) {
	cfg := &idx.cfg
	proto, port, spn := sp.proto, strconv.Itoa(sp.Port), sp.spn
	mp := "-m " + proto + " -p " + proto
	hasInternal, hasExternal := sp.hasInternalEndpoints(), sp.hasExternalEndpoints()

	var intTarget, intComment, extTarget, extComment string
	if !sp.HasEndpoints {
		intTarget, intComment = "REJECT", quoted(spn+" has no endpoints")
		extTarget, extComment = intTarget, intComment
	} else {
		if !hasInternal {
			intTarget, intComment = "DROP", quoted(spn+" has no local endpoints")
		}
		if !hasExternal {
			extTarget, extComment = "DROP", quoted(spn+" has no local endpoints")
		}
	}
	cm := func(c string) string { return "-m comment --comment " + c }
	svcComment := func() string {
		if large {
			return ""
		}
		return cm(spn)
	}

	ext := sp.iptEXT()
	lbTarget := ext
	usesFW := sp.iptUsesFW()
	if usesFW {
		lbTarget = sp.iptFW()
	}

	if hasInternal {
		natRules.line("-A", iptServices, cm(quoted(spn+" cluster IP")), mp, "-d", sp.ClusterIP.String(), "--dport", port, "-j", sp.iptInternalChain())
	} else {
		filterRules.line("-A", iptServices, cm(intComment), mp, "-d", sp.ClusterIP.String(), "--dport", port, "-j", intTarget)
	}
	for _, eip := range sp.ExternalIPs {
		if sp.HasEndpoints {
			natRules.line("-A", iptServices, cm(quoted(spn+" external IP")), mp, "-d", eip.String(), "--dport", port, "-j", ext)
		}
		if !hasExternal {
			filterRules.line("-A", iptExternalServices, cm(extComment), mp, "-d", eip.String(), "--dport", port, "-j", extTarget)
		}
	}
	for _, lb := range sp.LoadBalancerVIPs {
		if sp.HasEndpoints {
			natRules.line("-A", iptServices, cm(quoted(spn+" loadbalancer IP")), mp, "-d", lb.String(), "--dport", port, "-j", lbTarget)
		}
		if usesFW {
			filterRules.line("-A", iptProxyFirewall, cm(quoted(spn+" traffic not accepted by "+sp.iptFW())), mp, "-d", lb.String(), "--dport", port, "-j DROP")
		}
	}
	if !hasExternal {
		for _, lb := range sp.LoadBalancerVIPs {
			filterRules.line("-A", iptExternalServices, cm(extComment), mp, "-d", lb.String(), "--dport", port, "-j", extTarget)
		}
	}
	if sp.NodePort != 0 {
		np := strconv.Itoa(sp.NodePort)
		if sp.HasEndpoints {
			if localhostNPs {
				acct := "-m nfacct --nfacct-name localhost_nps_accepted_pkts"
				if cfg.NoNFAcct {
					acct = ""
				}
				natRules.line("-A", iptNodePorts, cm(spn), mp, "-d 127.0.0.0/8 --dport", np, acct, "-j", ext)
			}
			natRules.line("-A", iptNodePorts, cm(spn), mp, "--dport", np, "-j", ext)
		}
		if !hasExternal {
			filterRules.line("-A", iptExternalServices, cm(extComment), "-m addrtype --dst-type LOCAL", mp, "--dport", np, "-j", extTarget)
		}
	}
	if sp.HealthCheckNodePort != 0 {
		filterRules.line("-A", iptNodePorts, cm(quoted(spn+" health check node port")), "-m tcp -p tcp --dport", strconv.Itoa(sp.HealthCheckNodePort), "-j ACCEPT")
	}

	// Service chains.
	usesCluster, usesLocal := sp.usesClusterChain(), sp.usesLocalChain()
	if usesCluster {
		natChains.line(":" + sp.iptSVC() + " - [0:0]")
	}
	if usesLocal {
		natChains.line(":" + sp.iptSVL() + " - [0:0]")
	}
	if hasInternal {
		match := []string{"-A", sp.iptInternalChain(), cm(quoted(spn + " cluster IP")), mp, "-d", sp.ClusterIP.String(), "--dport", port}
		if cfg.MasqueradeAll {
			natRules.line(append(match, "-j", iptMarkMasq)...)
		} else if cfg.hasLocalDetector() {
			natRules.line(append(match, "!", "-s", cfg.PodCIDR.Masked().String(), "-j", iptMarkMasq)...)
		}
	}
	if sp.usesExternalChain() {
		natChains.line(":" + ext + " - [0:0]")
		if !sp.ExternalPolicyLocal {
			natRules.line("-A", ext, cm(quoted("masquerade traffic for "+spn+" external destinations")), "-j", iptMarkMasq)
		} else {
			if cfg.hasLocalDetector() {
				natRules.line("-A", ext, cm(quoted("pod traffic for "+spn+" external destinations")), "-s", cfg.PodCIDR.Masked().String(), "-j", sp.iptSVC())
			}
			natRules.line("-A", ext, cm(quoted("masquerade LOCAL traffic for "+spn+" external destinations")), "-m addrtype --src-type LOCAL -j", iptMarkMasq)
			natRules.line("-A", ext, cm(quoted("route LOCAL traffic for "+spn+" external destinations")), "-m addrtype --src-type LOCAL -j", sp.iptSVC())
		}
		if hasExternal {
			natRules.line("-A", ext, "-j", sp.iptExternalPolicyChain())
		}
	}
	if usesFW {
		fw := sp.iptFW()
		natChains.line(":" + fw + " - [0:0]")
		args := "-A " + fw + " " + cm(quoted(spn+" loadbalancer IP"))
		allowFromNode := false
		for _, c := range sp.SourceRanges {
			natRules.line(args, "-s", c.String(), "-j", ext)
			if cfg.NodeIP.IsValid() && c.Contains(cfg.NodeIP.Unmap()) {
				allowFromNode = true
			}
		}
		if allowFromNode {
			for _, lb := range sp.LoadBalancerVIPs {
				natRules.line(args, "-s", lb.String(), "-j", ext)
			}
		}
		natRules.line("-A", fw, cm(quoted("other traffic to "+spn+" will be dropped by KUBE-PROXY-FIREWALL")))
	}
	if usesCluster {
		iptEndpointRules(natRules, sp, sp.iptSVC(), sp.ClusterEndpoints, large)
	}
	if usesLocal {
		iptEndpointRules(natRules, sp, sp.iptSVL(), sp.LocalEndpoints, large)
	}
	for _, e := range sp.Reachable {
		natChains.line(":" + e.iptSEP + " - [0:0]")
		natRules.line("-A", e.iptSEP, svcComment(), "-s", e.Addr.String(), "-j", iptMarkMasq)
		aff := ""
		if sp.SessionAffinity {
			aff = "-m recent --name " + e.iptSEP + " --set"
		}
		natRules.line("-A", e.iptSEP, svcComment(), aff, mp, "-j DNAT --to-destination", e.str)
	}
}

// iptEndpointRules is writeServiceToEndpointRules: affinity checks, then a cascade of
// "statistic random" rules giving every endpoint the same overall probability.
func iptEndpointRules(b *lineBuf, sp *ServicePort, chain string, eps []*Endpoint, large bool) {
	comment := func(e *Endpoint) string {
		if large {
			return ""
		}
		return "-m comment --comment " + quoted(sp.spn+" -> "+e.str)
	}
	if sp.SessionAffinity {
		for _, e := range eps {
			b.line("-A", chain, comment(e), "-m recent --name", e.iptSEP, "--rcheck --seconds", strconv.Itoa(sp.StickySeconds), "--reap -j", e.iptSEP)
		}
	}
	n := len(eps)
	for i, e := range eps {
		if i < n-1 {
			b.line("-A", chain, comment(e), "-m statistic --mode random --probability", fmt.Sprintf("%0.10f", 1.0/float64(n-i)), "-j", e.iptSEP)
		} else {
			b.line("-A", chain, comment(e), "-j", e.iptSEP)
		}
	}
}
