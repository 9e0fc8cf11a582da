package netpol

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kpath/kpath/cluster"
)

// Engine evaluates policy over one snapshot. Build it once with New (it compiles every policy and shares identical
// peers); it is read-only afterwards and safe for concurrent use.
type Engine struct {
	snap     *cluster.Snapshot
	opts     Options
	npByNS   map[string][]*policy
	admin    []*policy // AdminNetworkPolicy + ClusterNetworkPolicy tier Admin, in evaluation order
	baseline []*policy // BaselineAdminNetworkPolicy + ClusterNetworkPolicy tier Baseline, in evaluation order
	all      []*policy
	peers    []*peerSel // interned peers; peerSel.id indexes this
	notes    []string
	nsLabels map[string]labels.Set
}

// Options choose between behaviours the Kubernetes documentation leaves to the network plugin.
type Options struct {
	// HostNetworkAsPods applies policy to hostNetwork pods as to pod-network pods: they can be selected as subjects
	// and matched by pod/namespace selectors (the documentation's first option for hostNetwork pods; what
	// netpol-analyzer does). The default is the documentation's "most common implementation": a hostNetwork pod is
	// its node's address, never selected, matched only by ipBlock/networks/nodes peers.
	HostNetworkAsPods bool
	// IPBlockExternalOnly makes NetworkPolicy ipBlocks match only addresses outside the cluster (not pods, not
	// nodes), as netpol-analyzer reads them. The default matches any address in the block, pod IPs included: that is
	// what the upstream e2e conformance tests require ("should enforce except clause while egress access to server in
	// CIDR block" builds its CIDRs from pod IPs). ANP/CNP networks peers always match any address, as their API says.
	IPBlockExternalOnly bool
}

// New compiles the snapshot's NetworkPolicies, AdminNetworkPolicies, BaselineAdminNetworkPolicies and
// ClusterNetworkPolicies with default Options. Problems in them (invalid selectors, CIDRs, actions) are Notes,
// never errors: a broken piece selects or matches nothing, as the API server would have refused it.
func New(s *cluster.Snapshot) *Engine { return NewWithOptions(s, Options{}) }

// NewWithOptions is New with explicit Options.
func NewWithOptions(s *cluster.Snapshot, o Options) *Engine {
	e := &Engine{snap: s, opts: o, npByNS: map[string][]*policy{}, nsLabels: make(map[string]labels.Set, len(s.Namespaces))}
	for _, n := range s.Namespaces {
		e.nsLabels[n.Name] = labels.Set(n.Labels)
	}
	c := &compiler{peers: map[string]*peerSel{}}
	for _, np := range s.NetworkPolicies {
		p := c.networkPolicy(np)
		e.npByNS[p.ns] = append(e.npByNS[p.ns], p)
		e.all = append(e.all, p)
	}
	for _, o := range s.AdminNetworkPolicies {
		p := c.adminNetworkPolicy(o)
		e.admin = append(e.admin, p)
	}
	for _, o := range s.BaselineAdminNetworkPolicies {
		e.baseline = append(e.baseline, c.baselineAdminNetworkPolicy(o))
	}
	for _, o := range s.ClusterNetworkPolicies {
		p := c.clusterNetworkPolicy(o)
		if p == nil {
			continue
		}
		if p.tier == TierAdmin {
			e.admin = append(e.admin, p)
		} else {
			e.baseline = append(e.baseline, p)
		}
	}
	sortTier(e.admin, c)
	sortTier(e.baseline, c)
	e.all = append(append(e.all, e.admin...), e.baseline...)
	for _, p := range e.all {
		for _, r := range p.ingress {
			r.compilePorts()
		}
		for _, r := range p.egress {
			r.compilePorts()
		}
		for _, n := range p.notes {
			c.note("%s: %s", p.id, n)
		}
	}
	e.peers = c.list
	e.notes = c.notes
	return e
}

// PodPeer is the peer of a pod under the engine's Options (see PodPeer and Options.HostNetworkAsPods).
func (e *Engine) PodPeer(p *corev1.Pod) Peer {
	pr := PodPeer(e.snap, p)
	if e.opts.HostNetworkAsPods && p.Spec.HostNetwork {
		pr.Kind = PeerPod
	}
	return pr
}

// Snapshot returns the snapshot the engine was built from.
func (e *Engine) Snapshot() *cluster.Snapshot { return e.snap }

// Notes lists what the engine noticed about the policies: invalid pieces and how they were read, equal ANP
// priorities, ignored rules.
func (e *Engine) Notes() []string { return e.notes }

// PolicyCount is the number of policies of every kind.
func (e *Engine) PolicyCount() int { return len(e.all) }

func (e *Engine) nsSet(ns string) labels.Set {
	if l, ok := e.nsLabels[ns]; ok {
		return l
	}
	return labels.Set{"kubernetes.io/metadata.name": ns}
}

// ---- matching ----

func (e *Engine) selects(p *policy, pod *corev1.Pod) bool {
	if p.kind == "NetworkPolicy" {
		return pod.Namespace == p.ns && p.podSel.Matches(labels.Set(pod.Labels))
	}
	if p.nothing || !p.subjNS.Matches(e.nsSet(pod.Namespace)) {
		return false
	}
	return p.podSel == nil || p.podSel.Matches(labels.Set(pod.Labels))
}

// match says whether a peer selector matches a peer; unknown is set for FQDN peers against external addresses.
func (e *Engine) match(ps *peerSel, pr Peer) (ok, unknown bool) {
	switch ps.kind {
	case pkPods:
		if pr.Kind != PeerPod || pr.Pod == nil {
			return false, false
		}
		if ps.sameNS != "" {
			if pr.Pod.Namespace != ps.sameNS {
				return false, false
			}
		} else if !ps.nsSel.Matches(e.nsSet(pr.Pod.Namespace)) {
			return false, false
		}
		return ps.podSel == nil || ps.podSel.Matches(labels.Set(pr.Pod.Labels)), false
	case pkCIDR:
		if ps.ipBlock && e.opts.IPBlockExternalOnly && pr.Kind != PeerExternal {
			return false, false
		}
		return cidrMatch(ps, pr.IP), false
	case pkNodes:
		return pr.Kind == PeerHost && pr.Node != nil && ps.nodes.Matches(labels.Set(pr.Node.Labels)), false
	case pkDomains:
		return false, pr.Kind == PeerExternal
	case pkAnything:
		return true, false
	}
	return false, false
}

func cidrMatch(ps *peerSel, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	in := false
	for _, c := range ps.cidrs {
		if c.Contains(ip) {
			in = true
			break
		}
	}
	if !in {
		return false
	}
	for _, x := range ps.except {
		if x.Contains(ip) {
			return false
		}
	}
	return true
}

// ---- ports ----

// compilePorts precomputes the numeric part of a rule's ports; named ports resolve per destination pod.
func (r *rule) compilePorts() {
	// stored in the first portSel-independent cache fields below
	if r.allPorts {
		r.fixed = AllConns()
		return
	}
	for _, p := range r.ports {
		switch {
		case p.named != "":
			r.hasNamed = true
		case p.lo == 0:
			r.fixed = r.fixed.Union(ProtoConns(p.proto))
		default:
			r.fixed = r.fixed.Union(PortConns(p.proto, p.lo, p.hi))
		}
	}
}

// namedPort resolves a named port on the destination pod: with a protocol (NetworkPolicy) the container port must
// have both; without (ANP/CNP) the container port's protocol is used.
func namedPort(dst *corev1.Pod, name string, proto corev1.Protocol) (corev1.Protocol, int32, bool) {
	if dst == nil {
		return "", 0, false
	}
	for i := range dst.Spec.Containers {
		for _, cp := range dst.Spec.Containers[i].Ports {
			if cp.Name != name {
				continue
			}
			cpProto := orTCP(cp.Protocol)
			if proto != "" && cpProto != proto {
				continue
			}
			return cpProto, cp.ContainerPort, true
		}
	}
	return "", 0, false
}

// portSet is every connection the rule's ports allow towards dst.
func (r *rule) portSet(dst *corev1.Pod) ConnSet {
	if !r.hasNamed {
		return r.fixed
	}
	out := r.fixed
	for _, p := range r.ports {
		if p.named == "" {
			continue
		}
		if proto, n, ok := namedPort(dst, p.named, p.proto); ok {
			out = out.Union(PortConns(proto, n, n))
		}
	}
	return out
}

// portIndex returns the index of the ports[] entry that admits (proto, port) towards dst, or -1; -2 when the rule
// has no ports (all ports).
func (r *rule) portIndex(dst *corev1.Pod, proto corev1.Protocol, port int32) int {
	if r.allPorts {
		return -2
	}
	for i, p := range r.ports {
		switch {
		case p.named != "":
			if pr, n, ok := namedPort(dst, p.named, p.proto); ok && pr == proto && n == port {
				return i
			}
		case orTCP(p.proto) != proto:
		case p.lo == 0:
			return i
		case port >= p.lo && port <= max(p.hi, p.lo):
			return i
		}
	}
	return -1
}

// ---- which policies apply ----

type applied struct {
	dir                 dirKind
	admin, np, baseline []*policy
}

func (a *applied) empty() bool { return len(a.admin) == 0 && len(a.np) == 0 && len(a.baseline) == 0 }

// appliedTo lists the policies that select pod for direction d, in evaluation order.
func (e *Engine) appliedTo(pod *corev1.Pod, d dirKind) applied {
	a := applied{dir: d}
	for _, p := range e.admin {
		if p.on(d) && e.selects(p, pod) {
			a.admin = append(a.admin, p)
		}
	}
	for _, p := range e.npByNS[pod.Namespace] {
		if p.on(d) && e.selects(p, pod) {
			a.np = append(a.np, p)
		}
	}
	for _, p := range e.baseline {
		if p.on(d) && e.selects(p, pod) {
			a.baseline = append(a.baseline, p)
		}
	}
	return a
}

func (a *applied) ids() []string {
	var out []string
	for _, ps := range [][]*policy{a.admin, a.np, a.baseline} {
		for _, p := range ps {
			out = append(out, p.id)
		}
	}
	return out
}

// ---- whole-direction connection sets ----

func sameNode(a *corev1.Pod, n *corev1.Node) bool {
	return a != nil && n != nil && a.Spec.NodeName != "" && a.Spec.NodeName == n.Name
}

// dirConns computes every connection the direction allows: subj is the pod the policies select (destination for
// ingress, source for egress), peer the other end, dst the destination pod for named ports.
func (e *Engine) dirConns(a *applied, subj *corev1.Pod, peer Peer, dst *corev1.Pod) ConnSet {
	local := peer.Kind == PeerHost && sameNode(subj, peer.Node)
	return dirConnsWith(a, func(r *rule) bool { return e.ruleMatchesPeer(r, peer) }, local, dst)
}

// dirConnsWith is the tier walk over whole connection sets. match says whether a rule's peers match the other end;
// local is the node-local exemption (the peer is the subject pod's own node).
func dirConnsWith(a *applied, match func(*rule) bool, local bool, dst *corev1.Pod) ConnSet {
	if a.empty() {
		return AllConns()
	}
	undecided := AllConns()
	var allowed ConnSet
	if len(a.admin) > 0 {
		var passed ConnSet
	admin:
		for _, p := range a.admin {
			for _, r := range p.rules(a.dir) {
				if !match(r) {
					continue
				}
				m := undecided.Intersect(r.portSet(dst))
				if m.IsEmpty() {
					continue
				}
				switch r.action {
				case actAllow:
					allowed = allowed.Union(m)
				case actPass:
					passed = passed.Union(m)
				}
				undecided = undecided.Subtract(m)
				if undecided.IsEmpty() {
					break admin
				}
			}
		}
		undecided = undecided.Union(passed)
	}
	if undecided.IsEmpty() {
		return allowed
	}
	if local {
		return allowed.Union(undecided)
	}
	if len(a.np) > 0 {
		var npAllowed ConnSet
		for _, p := range a.np {
			for _, r := range p.rules(a.dir) {
				if r.allPeers || match(r) {
					npAllowed = npAllowed.Union(r.portSet(dst))
				}
			}
		}
		return allowed.Union(undecided.Intersect(npAllowed))
	}
	for _, p := range a.baseline {
		for _, r := range p.rules(a.dir) {
			if !match(r) {
				continue
			}
			m := undecided.Intersect(r.portSet(dst))
			if m.IsEmpty() {
				continue
			}
			if r.action != actDeny {
				allowed = allowed.Union(m) // Allow, or Pass: the next tier is the default, allow
			}
			undecided = undecided.Subtract(m)
			if undecided.IsEmpty() {
				return allowed
			}
		}
	}
	return allowed.Union(undecided)
}

func (e *Engine) ruleMatchesPeer(r *rule, peer Peer) bool {
	if r.allPeers {
		return true
	}
	for _, ps := range r.peers {
		if ok, _ := e.match(ps, peer); ok {
			return true
		}
	}
	return false
}

// Conns returns every connection policy allows from src to dst (egress at src ∩ ingress at dst), with dst's
// container ports resolving named ports. Self-connections are always allowed.
func (e *Engine) Conns(src, dst Peer) ConnSet {
	if src.Kind == PeerPod && dst.Kind == PeerPod && src.Pod == dst.Pod {
		return AllConns()
	}
	out := AllConns()
	if src.Kind == PeerPod {
		a := e.appliedTo(src.Pod, dirEgress)
		out = e.dirConns(&a, src.Pod, dst, dst.Pod)
	}
	if dst.Kind == PeerPod && !out.IsEmpty() {
		a := e.appliedTo(dst.Pod, dirIngress)
		out = out.Intersect(e.dirConns(&a, dst.Pod, src, dst.Pod))
	}
	return out
}

// ---- single connection with explanation ----

// Evaluate decides one connection and explains both directions. Egress is checked at Src against Dst as given:
// the trace engine passes the endpoint after Service DNAT, so a rule naming the Service's port (rather than the
// pod's targetPort) does not match, exactly as in the kernel where policy runs after kube-proxy's DNAT.
func (e *Engine) Evaluate(c Conn) Decision {
	proto := orTCP(c.Protocol)
	var dec Decision
	if c.Src.Kind == PeerPod && c.Dst.Kind == PeerPod && c.Src.Pod != nil && c.Src.Pod == c.Dst.Pod {
		why := "a pod can always reach itself: policy never blocks a pod's traffic to its own address"
		dec.Egress = Direction{Verdict: VerdictAllowed, Why: why}
		dec.Ingress = Direction{Verdict: VerdictAllowed, Why: why}
	} else {
		dec.Egress = e.explain(dirEgress, c.Src, c.Dst, c.Dst.Pod, proto, c.Port)
		dec.Ingress = e.explain(dirIngress, c.Dst, c.Src, c.Dst.Pod, proto, c.Port)
	}
	dec.Verdict = VerdictAllowed
	for _, x := range []struct {
		name string
		d    Direction
	}{{"egress", dec.Egress}, {"ingress", dec.Ingress}} {
		switch x.d.Verdict {
		case VerdictDenied:
			dec.Verdict = VerdictDenied
			dec.Blockers = append(dec.Blockers, Blocker{Direction: x.name, Tier: x.d.Tier, Policies: x.d.Policies, Rule: x.d.Rule, Why: x.d.Why})
		case VerdictUnknown:
			if dec.Verdict != VerdictDenied {
				dec.Verdict = VerdictUnknown
			}
		}
	}
	dec.Allowed = dec.Verdict == VerdictAllowed
	return dec
}

func podName(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

func ruleRef(r *rule, peerIdx, portIdx int) string {
	s := fmt.Sprintf("%s %s[%d]", r.pol.id, r.dir, r.idx)
	if peerIdx >= 0 {
		s += fmt.Sprintf(" %s[%d]", fromTo(r.dir), peerIdx)
	}
	if portIdx >= 0 {
		s += fmt.Sprintf(" ports[%d]", portIdx)
	}
	return s + ": " + r.text
}

// matchIdx returns the index of the first peer that matches (-2 for a rule with no peers: everything; -1 none)
// and whether an unknown (FQDN) peer was met before any match.
func (e *Engine) matchIdx(r *rule, peer Peer) (int, bool) {
	if r.allPeers {
		return -2, false
	}
	unknown := false
	for i, ps := range r.peers {
		ok, unk := e.match(ps, peer)
		if ok {
			return i, unknown
		}
		unknown = unknown || unk
	}
	return -1, unknown
}

func connText(proto corev1.Protocol, port int32) string { return fmt.Sprintf("%s %d", proto, port) }

// explain walks the tiers for one port and says which rule decided.
func (e *Engine) explain(dir dirKind, subj, peer Peer, dst *corev1.Pod, proto corev1.Protocol, port int32) Direction {
	conn := connText(proto, port)
	if subj.Kind != PeerPod || subj.Pod == nil {
		who := subj.String()
		why := ""
		switch {
		case subj.Kind == PeerHost:
			why = fmt.Sprintf("%s is a host-network endpoint: NetworkPolicy, AdminNetworkPolicy and ClusterNetworkPolicy do not select it → %s not restricted", who, dir)
		default:
			why = fmt.Sprintf("%s is not a pod in the snapshot: no policy selects it → %s not restricted", who, dir)
		}
		return Direction{Verdict: VerdictNotSelected, Why: why}
	}
	who := podName(subj.Pod)
	a := e.appliedTo(subj.Pod, dir)
	out := Direction{Policies: a.ids()}
	verb := "to"
	if dir == dirIngress {
		verb = "from"
	}
	// Admin tier: first matching rule in priority order.
	var passedBy string
	for _, p := range a.admin {
		stop := false
		for _, r := range p.rules(dir) {
			pi, unk := e.matchIdx(r, peer)
			if pi == -1 {
				if unk && r.portIndex(dst, proto, port) != -1 {
					out.Verdict, out.Tier, out.Rule = VerdictUnknown, TierAdmin, ruleRef(r, -1, -1)
					out.Why = fmt.Sprintf("%s rule %s[%d] names domain names; whether %s is one of them cannot be known from the snapshot", p.id, dir, r.idx, peer)
					return out
				}
				continue
			}
			qi := r.portIndex(dst, proto, port)
			if qi == -1 {
				continue
			}
			out.Tier, out.Rule = TierAdmin, ruleRef(r, pi, qi)
			switch r.action {
			case actAllow:
				out.Verdict = VerdictAllowed
				out.Why = fmt.Sprintf("%s selects %s; its %s rule %s[%d] allows %s %s on %s (admin tier: decided before any NetworkPolicy)", p.id, who, dir, dir, r.idx, verb, peer, conn)
				return out
			case actDeny:
				out.Verdict = VerdictDenied
				out.Why = fmt.Sprintf("%s selects %s; its %s rule %s[%d] denies %s %s on %s (admin tier: NetworkPolicies cannot override it)", p.id, who, dir, dir, r.idx, verb, peer, conn)
				return out
			}
			passedBy = fmt.Sprintf("%s %s[%d] passes %s to the NetworkPolicy tier", p.id, dir, r.idx, conn)
			stop = true
			break
		}
		if stop {
			break
		}
	}
	prefix := ""
	if passedBy != "" {
		prefix = passedBy + "; "
		out.Rule = ""
	}
	// NetworkPolicy tier.
	if peer.Kind == PeerHost && sameNode(subj.Pod, peer.Node) {
		out.Verdict, out.Tier = VerdictAllowed, TierNetworkPolicy
		out.Why = prefix + fmt.Sprintf("%s is %s's own node: traffic between a pod and its node (kubelet probes) is always allowed by NetworkPolicy", peer, who)
		return out
	}
	if len(a.np) > 0 {
		out.Tier = TierNetworkPolicy
		for _, p := range a.np {
			for _, r := range p.rules(dir) {
				pi, _ := e.matchIdx(r, peer)
				if pi == -1 {
					continue
				}
				qi := r.portIndex(dst, proto, port)
				if qi == -1 {
					continue
				}
				out.Verdict, out.Rule = VerdictAllowed, ruleRef(r, pi, qi)
				out.Why = prefix + fmt.Sprintf("%s selects %s and its %s rule %s[%d] allows %s %s on %s", p.id, who, dir, dir, r.idx, verb, peer, conn)
				return out
			}
		}
		out.Verdict = VerdictDenied
		var ids []string
		for _, p := range a.np {
			ids = append(ids, "'"+strings.TrimPrefix(p.id, "NetworkPolicy ")+"'")
		}
		what := "NetworkPolicy " + ids[0] + " selects"
		if len(ids) > 1 {
			what = "NetworkPolicies " + strings.Join(ids, ", ") + " select"
		}
		out.Why = prefix + fmt.Sprintf("%s %s for %s, but %s %s on %s is not allowed by any of their %s rules%s", what, who, dir, verb, peer, conn, dir, e.namedHint(a.np, dir, dst))
		return out
	}
	// Baseline tier.
	for _, p := range a.baseline {
		for _, r := range p.rules(dir) {
			pi, _ := e.matchIdx(r, peer)
			if pi == -1 {
				continue
			}
			qi := r.portIndex(dst, proto, port)
			if qi == -1 {
				continue
			}
			out.Tier, out.Rule = TierBaseline, ruleRef(r, pi, qi)
			switch r.action {
			case actDeny:
				out.Verdict = VerdictDenied
				out.Why = prefix + fmt.Sprintf("no NetworkPolicy selects %s for %s, so the baseline decides: %s %s[%d] denies %s %s on %s", who, dir, p.id, dir, r.idx, verb, peer, conn)
			case actAllow:
				out.Verdict = VerdictAllowed
				out.Why = prefix + fmt.Sprintf("no NetworkPolicy selects %s for %s, so the baseline decides: %s %s[%d] allows %s %s on %s", who, dir, p.id, dir, r.idx, verb, peer, conn)
			default:
				out.Verdict = VerdictAllowed
				out.Why = prefix + fmt.Sprintf("%s %s[%d] passes %s past the baseline tier: nothing else decides → allowed", p.id, dir, r.idx, conn)
			}
			return out
		}
	}
	out.Verdict, out.Rule = VerdictAllowed, ""
	if len(out.Policies) == 0 {
		out.Verdict = VerdictNotSelected
		out.Why = fmt.Sprintf("no policy selects %s for %s → allowed", who, dir)
		return out
	}
	out.Why = prefix + fmt.Sprintf("%s is selected by %s, but no rule matches %s %s on %s and no NetworkPolicy isolates it → allowed", who, strings.Join(out.Policies, ", "), verb, peer, conn)
	return out
}

// namedHint explains a miss caused by a named port that the destination does not define.
func (e *Engine) namedHint(ps []*policy, dir dirKind, dst *corev1.Pod) string {
	for _, p := range ps {
		for _, r := range p.rules(dir) {
			for _, q := range r.ports {
				if q.named != "" {
					if _, _, ok := namedPort(dst, q.named, q.proto); !ok {
						return fmt.Sprintf(" (%s %s[%d] names port %q, which the destination pod does not define)", p.id, dir, r.idx, q.named)
					}
				}
			}
		}
	}
	return ""
}
