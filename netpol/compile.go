package netpol

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	anpv1a1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	cnpv1a2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

type action uint8

const (
	actAllow action = iota
	actDeny
	actPass
)

func (a action) String() string {
	switch a {
	case actAllow:
		return "Allow"
	case actDeny:
		return "Deny"
	}
	return "Pass"
}

type dirKind uint8

const (
	dirIngress dirKind = iota
	dirEgress
)

func (d dirKind) String() string {
	if d == dirIngress {
		return "ingress"
	}
	return "egress"
}

// peerKind is the shape of one compiled peer.
type peerKind uint8

const (
	pkPods     peerKind = iota // pods (never hostNetwork) in some namespaces matching a pod selector
	pkCIDR                     // NetworkPolicy ipBlock (cidr minus except) or ANP/CNP networks: any address
	pkNodes                    // ANP/CNP nodes: node addresses (nodes and hostNetwork pods)
	pkDomains                  // ANP/CNP domainNames: cannot be decided from an address
	pkNothing                  // an invalid peer that matches nothing (reported as a note)
	pkAnything                 // an invalid CNP Deny/Pass peer that fails closed: matches everything
)

// peerSel is one compiled peer; identical peers across policies share one (its id is a predicate id for classes).
type peerSel struct {
	kind    peerKind
	sameNS  string          // pkPods: the policy's own namespace (NetworkPolicy podSelector without namespaceSelector)
	nsSel   labels.Selector // pkPods: namespaces (nil with sameNS)
	podSel  labels.Selector // pkPods: pods (nil = every pod)
	cidrs   []netip.Prefix  // pkCIDR: union of these …
	except  []netip.Prefix  // … minus these
	ipBlock bool            // pkCIDR from a NetworkPolicy ipBlock (Options.IPBlockExternalOnly applies)
	nodes   labels.Selector // pkNodes
	text    string
	id      int32
}

// portSel is one compiled port entry.
type portSel struct {
	proto    corev1.Protocol // "" for an ANP/CNP named port (the container port's protocol)
	lo, hi   int32           // 0,0: every port of proto
	named    string
	anyProto bool // CNP protocol entry with every port of every protocol (not produced by valid input)
	text     string
}

type rule struct {
	pol      *policy
	dir      dirKind
	idx      int
	name     string // ANP/CNP rule name
	action   action
	allPeers bool // NetworkPolicy rule with no from/to
	peers    []*peerSel
	allPorts bool
	ports    []portSel
	text     string
	fixed    ConnSet // the numeric ports (every port when allPorts)
	hasNamed bool
}

type policy struct {
	kind     string // NetworkPolicy | AdminNetworkPolicy | BaselineAdminNetworkPolicy | ClusterNetworkPolicy
	ns, name string
	tier     Tier
	priority int32
	id       string // "NetworkPolicy shop/x"
	// subject
	podSel   labels.Selector // NetworkPolicy: pods of ns; ANP/CNP pods subject: pod selector (nil = all pods)
	subjNS   labels.Selector // ANP/CNP: namespaces
	nothing  bool            // invalid subject: selects nothing
	ingOn    bool
	egOn     bool
	ingress  []*rule
	egress   []*rule
	seq      int32 // index in its tier's order
	notes    []string
	validSel bool
}

func (p *policy) rules(d dirKind) []*rule {
	if d == dirIngress {
		return p.ingress
	}
	return p.egress
}

func (p *policy) on(d dirKind) bool {
	if d == dirIngress {
		return p.ingOn
	}
	return p.egOn
}

// compiler turns API objects into policies, sharing identical peers.
type compiler struct {
	peers map[string]*peerSel
	list  []*peerSel
	notes []string
}

func (c *compiler) intern(p *peerSel) *peerSel {
	k := p.key()
	if q, ok := c.peers[k]; ok {
		return q
	}
	p.id = int32(len(c.list))
	c.peers[k] = p
	c.list = append(c.list, p)
	return p
}

func (p *peerSel) key() string {
	var b strings.Builder
	b.WriteByte(byte('0' + p.kind))
	if p.ipBlock {
		b.WriteString("ipb")
	}
	b.WriteString("|" + p.sameNS + "|")
	if p.nsSel != nil {
		b.WriteString("ns:" + p.nsSel.String())
	}
	b.WriteByte('|')
	if p.podSel != nil {
		b.WriteString("pod:" + p.podSel.String())
	}
	b.WriteByte('|')
	for _, c := range p.cidrs {
		b.WriteString(c.String() + ",")
	}
	b.WriteByte('-')
	for _, c := range p.except {
		b.WriteString(c.String() + ",")
	}
	if p.nodes != nil {
		b.WriteString("|nodes:" + p.nodes.String())
	}
	if p.kind == pkDomains || p.kind == pkNothing || p.kind == pkAnything {
		b.WriteString("|" + p.text)
	}
	return b.String()
}

func (c *compiler) note(format string, a ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, a...))
}

// selector compiles a label selector; an invalid one selects nothing and is noted.
func (c *compiler) selector(where string, s *metav1.LabelSelector) labels.Selector {
	if s == nil {
		return labels.Nothing()
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		c.note("%s: invalid label selector (%v); it selects nothing", where, err)
		return labels.Nothing()
	}
	return sel
}

func selText(s labels.Selector) string {
	if s == nil {
		return "{}"
	}
	t := s.String()
	if t == "" {
		return "{}"
	}
	return "{" + t + "}"
}

func parsePrefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		if a, err2 := netip.ParseAddr(strings.TrimSpace(s)); err2 == nil {
			return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
		}
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// ---- NetworkPolicy v1 ----

func (c *compiler) networkPolicy(np *networkingv1.NetworkPolicy) *policy {
	p := &policy{kind: "NetworkPolicy", ns: np.Namespace, name: np.Name, tier: TierNetworkPolicy,
		id: "NetworkPolicy " + np.Namespace + "/" + np.Name}
	p.podSel = c.selector(p.id+" spec.podSelector", &np.Spec.PodSelector)
	// policyTypes defaulting: Ingress always; Egress when there are egress rules.
	if len(np.Spec.PolicyTypes) == 0 {
		p.ingOn = true
		p.egOn = len(np.Spec.Egress) > 0
	} else {
		for _, t := range np.Spec.PolicyTypes {
			switch t {
			case networkingv1.PolicyTypeIngress:
				p.ingOn = true
			case networkingv1.PolicyTypeEgress:
				p.egOn = true
			default:
				c.note("%s: unknown policyType %q ignored", p.id, t)
			}
		}
	}
	if p.ingOn {
		for i, r := range np.Spec.Ingress {
			p.ingress = append(p.ingress, c.npRule(p, dirIngress, i, r.From, r.Ports))
		}
	} else if len(np.Spec.Ingress) > 0 {
		p.notes = append(p.notes, "ingress rules are ignored: policyTypes does not list Ingress")
	}
	if p.egOn {
		for i, r := range np.Spec.Egress {
			p.egress = append(p.egress, c.npRule(p, dirEgress, i, r.To, r.Ports))
		}
	} else if len(np.Spec.Egress) > 0 {
		p.notes = append(p.notes, "egress rules are ignored: policyTypes does not list Egress")
	}
	return p
}

func (c *compiler) npRule(p *policy, d dirKind, i int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) *rule {
	r := &rule{pol: p, dir: d, idx: i, action: actAllow}
	where := fmt.Sprintf("%s %s[%d]", p.id, d, i)
	if len(peers) == 0 {
		r.allPeers = true
	}
	for j, pe := range peers {
		r.peers = append(r.peers, c.npPeer(p, fmt.Sprintf("%s %s[%d]", where, fromTo(d), j), pe))
	}
	if len(ports) == 0 {
		r.allPorts = true
	}
	for _, pt := range ports {
		ps := portSel{proto: corev1.ProtocolTCP}
		if pt.Protocol != nil {
			ps.proto = *pt.Protocol
		}
		switch {
		case pt.Port == nil:
			ps.text = string(ps.proto)
		case pt.Port.Type == intstr.String:
			ps.named = pt.Port.StrVal
			ps.text = string(ps.proto) + "/" + ps.named
			if pt.EndPort != nil {
				c.note("%s: endPort with a named port %q is invalid; endPort ignored", where, ps.named)
			}
		default:
			ps.lo, ps.hi = pt.Port.IntVal, pt.Port.IntVal
			ps.text = string(ps.proto) + "/" + strconv.Itoa(int(ps.lo))
			if pt.EndPort != nil {
				if *pt.EndPort < ps.lo {
					c.note("%s: endPort %d < port %d is invalid; only port %d is used", where, *pt.EndPort, ps.lo, ps.lo)
				} else {
					ps.hi = *pt.EndPort
					ps.text += "-" + strconv.Itoa(int(ps.hi))
				}
			}
		}
		r.ports = append(r.ports, ps)
	}
	r.text = ruleText(r)
	return r
}

func fromTo(d dirKind) string {
	if d == dirIngress {
		return "from"
	}
	return "to"
}

func (c *compiler) npPeer(p *policy, where string, pe networkingv1.NetworkPolicyPeer) *peerSel {
	if pe.IPBlock != nil {
		ps := &peerSel{kind: pkCIDR, ipBlock: true}
		cidr, err := parsePrefix(pe.IPBlock.CIDR)
		if err != nil {
			c.note("%s: ipBlock cidr %q is invalid (%v); the peer matches nothing", where, pe.IPBlock.CIDR, err)
			return c.intern(&peerSel{kind: pkNothing, text: "invalid ipBlock " + pe.IPBlock.CIDR})
		}
		ps.cidrs = []netip.Prefix{cidr}
		for _, e := range pe.IPBlock.Except {
			x, err := parsePrefix(e)
			if err != nil {
				c.note("%s: ipBlock except %q is invalid (%v); ignored", where, e, err)
				continue
			}
			ps.except = append(ps.except, x)
		}
		ps.text = "ipBlock " + cidr.String()
		if len(ps.except) > 0 {
			var xs []string
			for _, x := range ps.except {
				xs = append(xs, x.String())
			}
			ps.text += " except " + strings.Join(xs, ",")
		}
		return c.intern(ps)
	}
	if pe.PodSelector == nil && pe.NamespaceSelector == nil {
		c.note("%s: a peer with neither podSelector, namespaceSelector nor ipBlock is invalid; it matches nothing", where)
		return c.intern(&peerSel{kind: pkNothing, text: "empty peer"})
	}
	ps := &peerSel{kind: pkPods}
	if pe.PodSelector != nil {
		ps.podSel = c.selector(where+" podSelector", pe.PodSelector)
	}
	if pe.NamespaceSelector != nil {
		ps.nsSel = c.selector(where+" namespaceSelector", pe.NamespaceSelector)
		ps.text = "namespaceSelector " + selText(ps.nsSel)
		if ps.podSel != nil {
			ps.text += " podSelector " + selText(ps.podSel)
		}
	} else {
		ps.sameNS = p.ns
		ps.text = "podSelector " + selText(ps.podSel) + " in " + p.ns
	}
	if ps.podSel != nil && ps.podSel.Empty() {
		ps.podSel = nil
	}
	return c.intern(ps)
}

// ---- AdminNetworkPolicy / BaselineAdminNetworkPolicy v1alpha1 ----

func (c *compiler) anpSubject(p *policy, s anpv1a1.AdminNetworkPolicySubject) {
	switch {
	case s.Namespaces != nil && s.Pods == nil:
		p.subjNS = c.selector(p.id+" subject.namespaces", s.Namespaces)
	case s.Pods != nil && s.Namespaces == nil:
		p.subjNS = c.selector(p.id+" subject.pods.namespaceSelector", &s.Pods.NamespaceSelector)
		p.podSel = c.selector(p.id+" subject.pods.podSelector", &s.Pods.PodSelector)
		if p.podSel.Empty() {
			p.podSel = nil
		}
	default:
		c.note("%s: subject must set exactly one of namespaces or pods; the policy selects nothing", p.id)
		p.nothing = true
	}
}

func (c *compiler) anpPods(where string, ns *metav1.LabelSelector, pods *anpv1a1.NamespacedPod) *peerSel {
	if pods != nil {
		ps := &peerSel{kind: pkPods, nsSel: c.selector(where+" pods.namespaceSelector", &pods.NamespaceSelector),
			podSel: c.selector(where+" pods.podSelector", &pods.PodSelector)}
		ps.text = "pods namespaceSelector " + selText(ps.nsSel) + " podSelector " + selText(ps.podSel)
		if ps.podSel.Empty() {
			ps.podSel = nil
		}
		return c.intern(ps)
	}
	ps := &peerSel{kind: pkPods, nsSel: c.selector(where+" namespaces", ns)}
	ps.text = "namespaces " + selText(ps.nsSel)
	return c.intern(ps)
}

func (c *compiler) networks(where string, nets []string) *peerSel {
	ps := &peerSel{kind: pkCIDR}
	var txt []string
	for _, n := range nets {
		pfx, err := parsePrefix(n)
		if err != nil {
			c.note("%s: network %q is invalid (%v); ignored", where, n, err)
			continue
		}
		ps.cidrs = append(ps.cidrs, pfx)
		txt = append(txt, pfx.String())
	}
	ps.text = "networks " + strings.Join(txt, ",")
	return c.intern(ps)
}

func (c *compiler) nodes(where string, s *metav1.LabelSelector) *peerSel {
	ps := &peerSel{kind: pkNodes, nodes: c.selector(where+" nodes", s)}
	ps.text = "nodes " + selText(ps.nodes)
	return c.intern(ps)
}

func (c *compiler) domains(ds []string) *peerSel {
	return c.intern(&peerSel{kind: pkDomains, text: "domainNames " + strings.Join(ds, ",")})
}

func (c *compiler) anpPorts(r *rule, ports *[]anpv1a1.AdminNetworkPolicyPort) {
	if ports == nil || len(*ports) == 0 {
		r.allPorts = true
		return
	}
	for _, pt := range *ports {
		var ps portSel
		switch {
		case pt.PortNumber != nil:
			ps.proto = orTCP(pt.PortNumber.Protocol)
			ps.lo, ps.hi = pt.PortNumber.Port, pt.PortNumber.Port
			ps.text = string(ps.proto) + "/" + strconv.Itoa(int(ps.lo))
		case pt.PortRange != nil:
			ps.proto = orTCP(pt.PortRange.Protocol)
			ps.lo, ps.hi = pt.PortRange.Start, pt.PortRange.End
			ps.text = fmt.Sprintf("%s/%d-%d", ps.proto, ps.lo, ps.hi)
		case pt.NamedPort != nil:
			ps.named = *pt.NamedPort
			ps.text = "namedPort " + ps.named
		default:
			continue
		}
		r.ports = append(r.ports, ps)
	}
}

func orTCP(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

func anpAction(a string) (action, bool) {
	switch a {
	case "Allow", "Accept":
		return actAllow, true
	case "Deny":
		return actDeny, true
	case "Pass":
		return actPass, true
	}
	return actDeny, false
}

func (c *compiler) adminNetworkPolicy(o *anpv1a1.AdminNetworkPolicy) *policy {
	p := &policy{kind: "AdminNetworkPolicy", name: o.Name, tier: TierAdmin, priority: o.Spec.Priority,
		id: "AdminNetworkPolicy " + o.Name, ingOn: len(o.Spec.Ingress) > 0, egOn: len(o.Spec.Egress) > 0}
	c.anpSubject(p, o.Spec.Subject)
	for i, r := range o.Spec.Ingress {
		cr := c.anpRule(p, dirIngress, i, r.Name, string(r.Action))
		for j, pe := range r.From {
			cr.peers = append(cr.peers, c.anpPods(fmt.Sprintf("%s ingress[%d] from[%d]", p.id, i, j), pe.Namespaces, pe.Pods))
		}
		c.anpPorts(cr, r.Ports)
		cr.text = ruleText(cr)
		p.ingress = append(p.ingress, cr)
	}
	for i, r := range o.Spec.Egress {
		cr := c.anpRule(p, dirEgress, i, r.Name, string(r.Action))
		for j, pe := range r.To {
			cr.peers = append(cr.peers, c.anpEgressPeer(fmt.Sprintf("%s egress[%d] to[%d]", p.id, i, j),
				pe.Namespaces, pe.Pods, pe.Nodes, cidrStrings(pe.Networks), domainStrings(pe.DomainNames))...)
		}
		c.anpPorts(cr, r.Ports)
		cr.text = ruleText(cr)
		p.egress = append(p.egress, cr)
	}
	return p
}

func (c *compiler) anpRule(p *policy, d dirKind, i int, name, act string) *rule {
	a, ok := anpAction(act)
	if !ok || (p.kind == "BaselineAdminNetworkPolicy" && a == actPass) {
		c.note("%s %s[%d]: action %q is not valid for %s; treated as Deny", p.id, d, i, act, p.kind)
	}
	return &rule{pol: p, dir: d, idx: i, name: name, action: a}
}

func (c *compiler) anpEgressPeer(where string, ns *metav1.LabelSelector, pods *anpv1a1.NamespacedPod, nodes *metav1.LabelSelector,
	nets []string, doms []string) []*peerSel {
	var out []*peerSel
	if ns != nil || pods != nil {
		out = append(out, c.anpPods(where, ns, pods))
	}
	if nodes != nil {
		out = append(out, c.nodes(where, nodes))
	}
	if len(nets) > 0 {
		out = append(out, c.networks(where, nets))
	}
	if len(doms) > 0 {
		out = append(out, c.domains(doms))
	}
	return out
}

func cidrStrings[T ~string](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

func domainStrings[T ~string](xs []T) []string { return cidrStrings(xs) }

func (c *compiler) baselineAdminNetworkPolicy(o *anpv1a1.BaselineAdminNetworkPolicy) *policy {
	p := &policy{kind: "BaselineAdminNetworkPolicy", name: o.Name, tier: TierBaseline,
		id: "BaselineAdminNetworkPolicy " + o.Name, ingOn: len(o.Spec.Ingress) > 0, egOn: len(o.Spec.Egress) > 0}
	if o.Name != "default" {
		p.notes = append(p.notes, "the API accepts only one BaselineAdminNetworkPolicy, named \"default\"; evaluated anyway")
	}
	c.anpSubject(p, o.Spec.Subject)
	for i, r := range o.Spec.Ingress {
		cr := c.anpRule(p, dirIngress, i, r.Name, string(r.Action))
		for j, pe := range r.From {
			cr.peers = append(cr.peers, c.anpPods(fmt.Sprintf("%s ingress[%d] from[%d]", p.id, i, j), pe.Namespaces, pe.Pods))
		}
		c.anpPorts(cr, r.Ports)
		cr.text = ruleText(cr)
		p.ingress = append(p.ingress, cr)
	}
	for i, r := range o.Spec.Egress {
		cr := c.anpRule(p, dirEgress, i, r.Name, string(r.Action))
		for j, pe := range r.To {
			cr.peers = append(cr.peers, c.anpEgressPeer(fmt.Sprintf("%s egress[%d] to[%d]", p.id, i, j),
				pe.Namespaces, pe.Pods, pe.Nodes, cidrStrings(pe.Networks), nil)...)
		}
		c.anpPorts(cr, r.Ports)
		cr.text = ruleText(cr)
		p.egress = append(p.egress, cr)
	}
	return p
}

// ---- ClusterNetworkPolicy v1alpha2 ----

func (c *compiler) clusterNetworkPolicy(o *cnpv1a2.ClusterNetworkPolicy) *policy {
	p := &policy{kind: "ClusterNetworkPolicy", name: o.Name, priority: o.Spec.Priority,
		ingOn: len(o.Spec.Ingress) > 0, egOn: len(o.Spec.Egress) > 0}
	switch o.Spec.Tier {
	case cnpv1a2.AdminTier:
		p.tier = TierAdmin
	case cnpv1a2.BaselineTier:
		p.tier = TierBaseline
	default:
		c.note("ClusterNetworkPolicy %s: tier %q is not Admin or Baseline; the policy is ignored", o.Name, o.Spec.Tier)
		return nil
	}
	p.id = "ClusterNetworkPolicy " + o.Name
	c.anpSubject(p, anpv1a1.AdminNetworkPolicySubject{Namespaces: o.Spec.Subject.Namespaces, Pods: (*anpv1a1.NamespacedPod)(o.Spec.Subject.Pods)})
	for i, r := range o.Spec.Ingress {
		cr := c.anpRule(p, dirIngress, i, r.Name, string(r.Action))
		for j, pe := range r.From {
			where := fmt.Sprintf("%s ingress[%d] from[%d]", p.id, i, j)
			if pe.Namespaces == nil && pe.Pods == nil {
				cr.peers = append(cr.peers, c.failClosed(where, cr.action))
				continue
			}
			cr.peers = append(cr.peers, c.anpPods(where, pe.Namespaces, (*anpv1a1.NamespacedPod)(pe.Pods)))
		}
		c.cnpProtocols(cr, r.Protocols)
		cr.text = ruleText(cr)
		p.ingress = append(p.ingress, cr)
	}
	for i, r := range o.Spec.Egress {
		cr := c.anpRule(p, dirEgress, i, r.Name, string(r.Action))
		for j, pe := range r.To {
			where := fmt.Sprintf("%s egress[%d] to[%d]", p.id, i, j)
			ps := c.anpEgressPeer(where, pe.Namespaces, (*anpv1a1.NamespacedPod)(pe.Pods), pe.Nodes,
				cidrStrings(pe.Networks), domainStrings(pe.DomainNames))
			if len(ps) == 0 {
				ps = []*peerSel{c.failClosed(where, cr.action)}
			}
			cr.peers = append(cr.peers, ps...)
		}
		c.cnpProtocols(cr, r.Protocols)
		cr.text = ruleText(cr)
		p.egress = append(p.egress, cr)
	}
	return p
}

// failClosed is the API's rule for a peer with no known field (a newer CRD): Accept matches nothing, Deny and Pass
// match everything.
func (c *compiler) failClosed(where string, a action) *peerSel {
	c.note("%s: peer sets no known field; failing closed as the API asks", where)
	if a == actAllow {
		return c.intern(&peerSel{kind: pkNothing, text: "unknown peer (fails closed: matches nothing)"})
	}
	return c.intern(&peerSel{kind: pkAnything, text: "unknown peer (fails closed: matches everything)"})
}

func (c *compiler) cnpProtocols(r *rule, ps []cnpv1a2.ClusterNetworkPolicyProtocol) {
	if len(ps) == 0 {
		r.allPorts = true
		return
	}
	add := func(proto corev1.Protocol, dp *cnpv1a2.Port) {
		s := portSel{proto: proto, text: string(proto)}
		switch {
		case dp == nil:
		case dp.Range != nil:
			s.lo, s.hi = dp.Range.Start, dp.Range.End
			s.text = fmt.Sprintf("%s/%d-%d", proto, s.lo, s.hi)
		case dp.Number != 0:
			s.lo, s.hi = dp.Number, dp.Number
			s.text = fmt.Sprintf("%s/%d", proto, s.lo)
		}
		r.ports = append(r.ports, s)
	}
	for _, p := range ps {
		switch {
		case p.TCP != nil:
			add(corev1.ProtocolTCP, p.TCP.DestinationPort)
		case p.UDP != nil:
			add(corev1.ProtocolUDP, p.UDP.DestinationPort)
		case p.SCTP != nil:
			add(corev1.ProtocolSCTP, p.SCTP.DestinationPort)
		case p.DestinationNamedPort != "":
			r.ports = append(r.ports, portSel{named: p.DestinationNamedPort, text: "destinationNamedPort " + p.DestinationNamedPort})
		}
	}
}

// ruleText renders a rule compactly: "Allow from [podSelector {app=frontend} in shop] ports [TCP/8080]".
func ruleText(r *rule) string {
	var b strings.Builder
	if r.pol.kind != "NetworkPolicy" {
		b.WriteString(r.action.String() + " ")
		if r.name != "" {
			b.WriteString(strconv.Quote(r.name) + " ")
		}
	}
	b.WriteString(fromTo(r.dir) + " ")
	if r.allPeers {
		b.WriteString("anywhere")
	} else {
		var ps []string
		for _, p := range r.peers {
			ps = append(ps, p.text)
		}
		b.WriteString("[" + strings.Join(ps, "; ") + "]")
	}
	b.WriteString(" ports ")
	if r.allPorts {
		b.WriteString("all")
	} else {
		var ps []string
		for _, p := range r.ports {
			ps = append(ps, p.text)
		}
		b.WriteString("[" + strings.Join(ps, ", ") + "]")
	}
	return b.String()
}

// sortTier orders admin or baseline policies: by priority (lower first), then BaselineAdminNetworkPolicy and
// AdminNetworkPolicy before ClusterNetworkPolicy at equal priority, then by name. The API leaves equal priorities
// undefined; this order is kpath's deterministic choice and a note is emitted for each tie.
func sortTier(ps []*policy, c *compiler) {
	rank := func(p *policy) int {
		if p.kind == "ClusterNetworkPolicy" {
			return 1
		}
		return 0
	}
	sort.SliceStable(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.priority != b.priority {
			return a.priority < b.priority
		}
		if rank(a) != rank(b) {
			return rank(a) < rank(b)
		}
		return a.name < b.name
	})
	for i := range ps {
		ps[i].seq = int32(i)
		if i > 0 && ps[i].priority == ps[i-1].priority && ps[i].tier == TierAdmin {
			c.note("%s and %s have the same priority %d: their order is undefined in the API; kpath evaluates %s first",
				ps[i-1].id, ps[i].id, ps[i].priority, ps[i-1].id)
		}
	}
}
