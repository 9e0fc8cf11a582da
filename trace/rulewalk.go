package trace

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/netfilter"
)

// NodeRules is the ruleset kube-proxy would program on one node, rendered from the snapshot, parsed back like a
// real dump, and ready to walk.
type NodeRules struct {
	Node    *corev1.Node
	Mode    kubeproxy.Mode
	Index   *kubeproxy.Index
	Text    string // nft -f script (nftables) or iptables-save text (iptables)
	Ruleset *netfilter.Ruleset
	Model   *netfilter.Node
	// Assumed lists what the node model guessed (interface names, routes) because a snapshot does not record it.
	Assumed []string
}

// RenderNodeRules renders node n's kube-proxy ruleset in mode (empty: the mode the snapshot's profile implies) and
// parses it with the same parser that reads real dumps, so a walk of it is a walk of what the kernel would hold.
func RenderNodeRules(snap *cluster.Snapshot, n *corev1.Node, mode kubeproxy.Mode) (*NodeRules, error) {
	cfg := kubeproxy.ConfigFor(snap, n)
	if mode != "" {
		cfg.Mode = mode
	}
	idx, err := kubeproxy.NewIndex(cfg, snap.Services, snap.EndpointSlices)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy model for node %s: %w", n.Name, err)
	}
	var b bytes.Buffer
	var rs *netfilter.Ruleset
	switch cfg.Mode {
	case kubeproxy.ModeIPTables:
		err = idx.RenderIPTables(&b)
		if err == nil {
			fam := netfilter.FamilyIP
			if cfg.NodeIP.Is6() {
				fam = netfilter.FamilyIP6
			}
			rs = netfilter.ParseIPTables(b.String(), fam)
		}
	default:
		err = idx.RenderNFTables(&b)
		if err == nil {
			rs = netfilter.ParseNFT(b.String())
		}
	}
	if err != nil {
		return nil, fmt.Errorf("rendering %s rules for node %s: %w", cfg.Mode, n.Name, err)
	}
	model, assumed := NodeModel(snap, n)
	return &NodeRules{Node: n, Mode: cfg.Mode, Index: idx, Text: b.String(), Ruleset: rs, Model: model, Assumed: assumed}, nil
}

// Interface names the node model uses.
const (
	UnderlayIf = "eth0" // the node's primary interface (its InternalIP)
	BridgeIf   = "cni0" // the bridge CNI / flannel bridge holding the pod veths
)

// NodeModel describes node n to the netfilter walk: its own addresses (fib daddr type local), routes (pod CIDR of
// this node → the CNI's device, other nodes' pod CIDRs → the overlay or underlay, default → eth0) and interface
// addresses (masquerade sources). A snapshot holds no interface names, so they follow the CNI's conventions; the
// second result says so.
func NodeModel(snap *cluster.Snapshot, n *corev1.Node) (*netfilter.Node, []string) {
	m := &netfilter.Node{IfAddrs: map[string]netip.Addr{}}
	var assumed []string
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			m.LocalAddrs = append(m.LocalAddrs, ip)
		}
	}
	if ip := cluster.NodeIP(n); ip.IsValid() {
		if len(m.LocalAddrs) == 0 {
			m.LocalAddrs = append(m.LocalAddrs, ip)
		}
		m.IfAddrs[UnderlayIf] = ip
	}
	cni := snap.Profile.CNI
	bridged := cni == cluster.CNIFlannelVXLAN || cni == cluster.CNIFlannelHostGW || cni == cluster.CNIBridge || cni == ""
	overlay := ""
	switch cni {
	case cluster.CNIFlannelVXLAN:
		overlay = "flannel.1"
	case cluster.CNICalicoIPIP:
		overlay = "tunl0"
	case cluster.CNICalicoVXLAN:
		overlay = "vxlan.calico"
	case cluster.CNICiliumVXLAN:
		overlay = "cilium_vxlan"
	case cluster.CNICiliumGeneve:
		overlay = "cilium_geneve"
	}
	if own, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
		own = own.Masked()
		gw := own.Addr().Next()
		if bridged {
			m.Routes = append(m.Routes, netfilter.Route{Dst: own, Oif: BridgeIf})
			m.IfAddrs[BridgeIf] = gw
			m.LocalAddrs = append(m.LocalAddrs, gw)
			assumed = append(assumed, fmt.Sprintf("pods of %s sit behind bridge %s (%s), as the %s CNI sets it up", n.Name, BridgeIf, gw, whyOr(string(cni), "bridge")))
		} else {
			for _, p := range snap.PodsOnNode(n.Name) {
				ip, err := netip.ParseAddr(p.Status.PodIP)
				if err != nil || p.Spec.HostNetwork {
					continue
				}
				m.Routes = append(m.Routes, netfilter.Route{Dst: netip.PrefixFrom(ip, ip.BitLen()), Oif: vethName(cni, p)})
			}
			assumed = append(assumed, fmt.Sprintf("each pod of %s has a /32 route to its host veth (%s CNI)", n.Name, cni))
		}
	}
	for _, o := range snap.Nodes {
		if o.Name == n.Name {
			continue
		}
		p, err := netip.ParsePrefix(o.Spec.PodCIDR)
		if err != nil {
			continue
		}
		dev := UnderlayIf
		if overlay != "" {
			dev = overlay
			if cni == cluster.CNIFlannelVXLAN {
				if own, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
					m.IfAddrs[overlay] = own.Masked().Addr() // flannel gives flannel.1 the network address of the node's pod CIDR
				}
			}
		}
		m.Routes = append(m.Routes, netfilter.Route{Dst: p.Masked(), Oif: dev})
	}
	if overlay != "" {
		assumed = append(assumed, "other nodes' pod CIDRs route through "+overlay)
	}
	def := netip.MustParsePrefix("0.0.0.0/0")
	if ip := cluster.NodeIP(n); ip.Is6() {
		def = netip.MustParsePrefix("::/0")
	}
	m.Routes = append(m.Routes, netfilter.Route{Dst: def, Oif: UnderlayIf})
	assumed = append(assumed, "the default route and the node's InternalIP are on "+UnderlayIf)
	return m, assumed
}

func vethName(cni cluster.CNI, p *corev1.Pod) string {
	prefix := "veth"
	switch cni {
	case cluster.CNICalicoBGP, cluster.CNICalicoIPIP, cluster.CNICalicoVXLAN:
		prefix = "cali"
	case cluster.CNICiliumNative, cluster.CNICiliumVXLAN, cluster.CNICiliumGeneve:
		prefix = "lxc"
	}
	return fmt.Sprintf("%s%08x", prefix, uint32(hashPick(1<<31, podRef(p))))
}

// ruleCache keeps each node's parsed ruleset for the engine's lifetime; safe for concurrent use (a parsed Ruleset
// is read-only during Eval).
type ruleCache struct {
	mu sync.Mutex
	m  map[string]*NodeRules
}

func (c *ruleCache) get(snap *cluster.Snapshot, n *corev1.Node) (*NodeRules, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nr, ok := c.m[n.Name]; ok {
		return nr, nil
	}
	nr, err := RenderNodeRules(snap, n, "")
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*NodeRules{}
	}
	c.m[n.Name] = nr
	return nr, nil
}

// nodeRules returns node n's parsed ruleset, rendered and parsed once per engine.
func (e *Engine) nodeRules(n *corev1.Node) (*NodeRules, error) { return e.rules.get(e.snap, n) }

// ruleWalk returns, when Options.Rules is set, the rule-by-rule walk of the packet through the ruleset kube-proxy
// would program on node n, as a nested journey of netfilter steps. Nil otherwise.
func (r *run) ruleWalk(n *corev1.Node) *Journey {
	if !r.opt.Rules {
		return nil
	}
	mode := r.e.prof.ProxyMode
	j := &Journey{Schema: Schema, Profile: r.j.Profile, Source: r.j.Source, Destination: r.pkt.Dst.String(),
		Blockers: []Blocker{}, Hops: []Hop{},
		Question: Question{From: "node/" + n.Name + " (kube-proxy " + string(mode) + " rules)", To: r.pkt.Dst.String(), Protocol: r.pkt.Proto}}
	j.Latency = Latency{ByHop: []Estimate{{}}, Note: "not estimated per rule: the enclosing kube-proxy step carries the cost"}
	j.Hops = append(j.Hops, Hop{Location: nodeLoc(n), Steps: []Step{}})
	hop := &j.Hops[0]
	unknown := func(why string) *Journey {
		hop.Steps = append(hop.Steps, Step{Layer: LayerKubeProxy, Action: ActionUnknown, Object: "Node " + n.Name, Why: why})
		j.Verdict, j.VerdictReason = Unknown, why
		return j
	}
	if mode != cluster.ProxyNFTables && mode != cluster.ProxyIPTables {
		return unknown(fmt.Sprintf("kube-proxy mode %s programs no nftables/iptables Service rules kpath renders; the rule walk covers nftables and iptables modes", mode))
	}
	nr, err := r.e.nodeRules(n)
	if err != nil {
		return unknown(err.Error())
	}
	pkt := r.netfilterPacket(n)
	res := netfilter.Eval(nr.Ruleset, pkt, nr.Model, netfilter.Options{})
	j.Notes = append(j.Notes, res.Notes...)
	for _, p := range nr.Ruleset.Problems {
		j.Notes = append(j.Notes, "rendered ruleset: "+p.String())
	}
	if len(res.Branches) == 0 {
		return unknown("the walk produced no branch")
	}
	// Follow the branch that reaches the model's chosen backend; the others are alternatives.
	pick := 0
	if b := r.j.Backend; b != nil {
		want := b.IP + ":" + fmt.Sprint(b.Port)
		for i, br := range res.Branches {
			if br.DNAT && hostPort(br.Packet.Dst) == want {
				pick = i
				break
			}
		}
	}
	br := res.Branches[pick]
	for _, h := range br.Hits {
		hop.Steps = append(hop.Steps, hitStep(h))
	}
	if br.DNAT {
		j.Backend = r.endpointAt(br.Packet.Dst)
	}
	for i, o := range res.Branches {
		if i == pick {
			continue
		}
		a := Alternative{Probability: o.Probability, Why: "another branch of the walk: " + o.Summary()}
		if o.DNAT {
			a.Endpoint = *r.endpointAt(o.Packet.Dst)
		} else {
			a.Endpoint = Endpoint{IP: o.Packet.Dst.Addr().String(), Port: int(o.Packet.Dst.Port())}
		}
		j.Alternatives = append(j.Alternatives, a)
	}
	why := fmt.Sprintf("branch %d of %d (p=%.3g): %s", pick+1, len(res.Branches), br.Probability, br.Summary())
	switch br.Verdict {
	case netfilter.VerdictAccept:
		j.Verdict = Delivered
	case netfilter.VerdictDrop:
		j.Verdict = Dropped
		j.Blockers = append(j.Blockers, Blocker{Layer: LayerKubeProxy, Object: lastChain(br), Reason: why})
	case netfilter.VerdictReject:
		j.Verdict = Rejected
		j.Blockers = append(j.Blockers, Blocker{Layer: LayerKubeProxy, Object: lastChain(br), Reason: why})
	default:
		j.Verdict = Unknown
		why += " (" + br.Unknown + ")"
	}
	j.VerdictReason = why
	return j
}

// hostPort prints an address the way Endpoint's ip:port does (no brackets for IPv6).
func hostPort(a netip.AddrPort) string { return a.Addr().String() + ":" + fmt.Sprint(a.Port()) }

func (r *run) endpointAt(a netip.AddrPort) *Endpoint {
	ep := Endpoint{IP: a.Addr().String(), Port: int(a.Port())}
	for _, p := range r.e.snap.PodsByIP(a.Addr()) {
		ep.Pod, ep.Node, ep.Synthesized = podRef(p), p.Spec.NodeName, cluster.IsSynthesized(p, "")
		break
	}
	return &ep
}

func lastChain(b netfilter.Branch) string {
	if n := len(b.Hits); n > 0 {
		h := b.Hits[n-1]
		return fmt.Sprintf("%s %s %s", h.Family, h.Table, h.Chain)
	}
	return "netfilter"
}

// netfilterPacket is the packet as node n's hooks see it: from a pod it arrives on the CNI's device, from the node
// itself (or a hostNetwork pod) it starts in OUTPUT, from outside it arrives on eth0.
func (r *run) netfilterPacket(n *corev1.Node) netfilter.Packet {
	p := netfilter.Packet{Src: r.pkt.Src, Dst: r.pkt.Dst, Mark: r.pkt.Mark}
	switch r.pkt.Proto {
	case "UDP":
		p.Proto = netfilter.ProtoUDP
	case "SCTP":
		p.Proto = netfilter.ProtoSCTP
	default:
		p.Proto = netfilter.ProtoTCP
	}
	switch r.src.Kind {
	case FromPod:
		if r.src.Pod.Spec.HostNetwork {
			p.Path = netfilter.PathLocal
		} else if c := r.e.prof.CNI; c == cluster.CNIFlannelVXLAN || c == cluster.CNIFlannelHostGW || c == cluster.CNIBridge || c == "" {
			p.Iif = BridgeIf
		} else {
			p.Iif = vethName(c, r.src.Pod)
		}
	case FromNode:
		p.Path = netfilter.PathLocal
	default:
		p.Iif = UnderlayIf
	}
	return p
}

// hitStep turns one rule hit into a step: the rule with its table and chain, what it did, and why.
func hitStep(h netfilter.Hit) Step {
	s := Step{Layer: LayerKubeProxy, Object: fmt.Sprintf("%s hook, %s %s chain %s", h.Hook, h.Family, h.Table, h.Chain)}
	if h.Rule == "" {
		s.Rule = fmt.Sprintf("%s %s %s: %s", h.Family, h.Table, h.Chain, h.Verdict)
		s.Why = "no rule ended the base chain: its " + h.Verdict
	} else {
		s.Rule = fmt.Sprintf("%s %s %s: %s", h.Family, h.Table, h.Chain, h.Rule)
		if h.Line > 0 {
			s.Rule += fmt.Sprintf(" [line %d]", h.Line)
		}
		s.Why = "matched (verdict " + h.Verdict + ")"
	}
	if h.Note != "" {
		s.Why += " — " + h.Note
	}
	note := strings.ToLower(h.Note)
	switch {
	case strings.HasPrefix(note, "dnat") || strings.HasPrefix(note, "redirect"):
		s.Action = ActionDNAT
	case strings.HasPrefix(note, "masquerade"):
		s.Action = ActionMasquerade
	case strings.HasPrefix(note, "snat"):
		s.Action = ActionSNAT
	case strings.Contains(note, "reject:"):
		s.Action = ActionReject // the kernel traces a reject as drop; the note says what was sent
	case h.Verdict == "drop" || h.Verdict == "policy drop":
		s.Action = ActionDrop
	case h.Verdict == "accept" || h.Verdict == "policy accept":
		s.Action = ActionAllow
	case h.Verdict == "unknown":
		s.Action = ActionUnknown
	default:
		s.Action = ActionPass // continue, jump, goto, return
	}
	return s
}
