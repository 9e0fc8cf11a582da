package lab

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/netpol"
)

// policyTable is the nftables table holding the lab's rendered NetworkPolicy rules.
const policyTable = "kpath-policy"

// NetworkPolicy (and AdminNetworkPolicy) is enforced the way the model decides it: package netpol evaluates every
// (source address, destination pod, declared port) the lab can produce, and the allowed tuples become nftables
// sets. Ingress is enforced in the destination pod's namespace (input hook: the source as the pod sees it, after
// any masquerade); egress in the source pod's node namespace (forward hook, priority 10: after kube-proxy's DNAT,
// so the destination is the chosen endpoint), exactly where the model evaluates them.

type policyElem struct {
	addr  netip.Addr
	proto string
	port  int
}

func (e policyElem) String() string {
	return fmt.Sprintf("%s . %s . %d", e.addr, strings.ToLower(e.proto), e.port)
}

func (b *builder) policy(disabled bool) error {
	if disabled {
		b.st.Policy = PolicyState{How: "not enforced: --no-policy"}
		return nil
	}
	if b.snap.Profile.PolicyEnforcer == cluster.PolicyNone {
		// The model predicts that nothing drops traffic for policy; the lab builds the same cluster.
		ev, _ := b.snap.Profile.Setting("policyEnforcer")
		b.st.Policy = PolicyState{How: "not enforced, as in the modelled cluster: " + ev.Detail}
		return nil
	}
	eng := netpol.New(b.snap)
	if eng.PolicyCount() == 0 {
		b.st.Policy = PolicyState{Enforced: true, How: "the snapshot has no policies: everything is allowed"}
		return nil
	}
	p := b.plan
	srcs := labAddresses(p)
	type ingress struct {
		pp    PodPlan
		elems []string
	}
	var ins []ingress
	egress := map[string][]string{} // node → allowed egress tuples
	egressPods := map[string][]string{}
	total := 0
	for _, pp := range p.Pods {
		dst := netpol.PeerFor(b.snap, pp.IP)
		if podSelectedForIngress(eng, b.snap, pp) {
			var elems []string
			for _, lp := range pp.Listen {
				for _, s := range srcs {
					d := eng.Evaluate(netpol.Conn{Src: netpol.PeerFor(b.snap, s), Dst: dst, Port: int32(lp.Port), Protocol: corev1.Protocol(lp.Proto)})
					if d.Ingress.Verdict == netpol.VerdictAllowed || d.Ingress.Verdict == netpol.VerdictNotSelected {
						elems = append(elems, policyElem{s, lp.Proto, lp.Port}.String())
					}
				}
			}
			ins = append(ins, ingress{pp, elems})
			total += len(elems)
		}
		// Egress from pp to every (pod, declared port) of the lab.
		if !podSelectedForEgress(eng, b.snap, pp) {
			continue
		}
		egressPods[pp.Node] = append(egressPods[pp.Node], pp.IP.String())
		src := netpol.PeerFor(b.snap, pp.IP)
		for _, q := range p.Pods {
			for _, lp := range q.Listen {
				d := eng.Evaluate(netpol.Conn{Src: src, Dst: netpol.PeerFor(b.snap, q.IP), Port: int32(lp.Port), Protocol: corev1.Protocol(lp.Proto)})
				if d.Egress.Verdict == netpol.VerdictAllowed || d.Egress.Verdict == netpol.VerdictNotSelected {
					egress[pp.Node] = append(egress[pp.Node], fmt.Sprintf("%s . %s", pp.IP, policyElem{q.IP, lp.Proto, lp.Port}))
					total++
				}
			}
		}
	}
	for _, in := range ins {
		script := fmt.Sprintf("table ip %s {\n  set allow-in { type ipv4_addr . inet_proto . inet_service ;%s }\n"+
			"  chain input { type filter hook input priority 0 ; policy accept ;\n"+
			"    ct state established,related accept\n    iifname \"lo\" accept\n"+
			"    ip saddr . meta l4proto . th dport @allow-in accept comment \"allowed by NetworkPolicy\"\n"+
			"    meta l4proto { tcp, udp } drop comment \"NetworkPolicy: ingress not allowed\"\n  }\n}\n", policyTable, elements(in.elems)) + traceTableScript()
		if _, err := run(b.ctx, script, "ip", "netns", "exec", in.pp.NS, "nft", "-f", "-"); err != nil {
			return fmt.Errorf("pod %s: loading the ingress policy rules: %w", in.pp.Ref(), err)
		}
		b.st.Policy.IngressPods = append(b.st.Policy.IngressPods, in.pp.Ref())
	}
	for node, pods := range egressPods {
		n := p.Node(node)
		script := fmt.Sprintf("table ip %s {\n  set egress-pods { type ipv4_addr ;%s }\n"+
			"  set allow-out { type ipv4_addr . ipv4_addr . inet_proto . inet_service ;%s }\n"+
			"  chain forward { type filter hook forward priority 10 ; policy accept ;\n"+
			"    ct state established,related accept\n    ip saddr != @egress-pods accept\n"+
			"    ip saddr . ip daddr . meta l4proto . th dport @allow-out accept comment \"allowed by NetworkPolicy\"\n"+
			"    meta l4proto { tcp, udp } drop comment \"NetworkPolicy: egress not allowed\"\n  }\n}\n", policyTable, elements(pods), elements(egress[node]))
		if _, err := run(b.ctx, script, "ip", "netns", "exec", n.NS, "nft", "-f", "-"); err != nil {
			return fmt.Errorf("node %s: loading the egress policy rules: %w", node, err)
		}
	}
	b.st.Policy.Enforced = true
	b.st.Policy.Rules = total
	b.st.Policy.How = fmt.Sprintf("nftables table %s rendered from the netpol engine's decisions: ingress in %d pod namespace(s), egress for %d node(s); sources enumerated: every lab address (external clients are added when lab trace uses them); egress to node addresses and outside the lab is not enforced",
		policyTable, len(ins), len(egressPods))
	return nil
}

func elements(es []string) string {
	if len(es) == 0 {
		return ""
	}
	return " elements = { " + strings.Join(es, ", ") + " } ;"
}

func podSelectedForIngress(eng *netpol.Engine, snap *cluster.Snapshot, pp PodPlan) bool {
	d := eng.Evaluate(netpol.Conn{Src: netpol.PeerFor(snap, netip.MustParseAddr("192.0.2.1")), Dst: netpol.PeerFor(snap, pp.IP), Port: 1, Protocol: corev1.ProtocolTCP})
	return d.Ingress.Verdict != netpol.VerdictNotSelected
}

func podSelectedForEgress(eng *netpol.Engine, snap *cluster.Snapshot, pp PodPlan) bool {
	d := eng.Evaluate(netpol.Conn{Src: netpol.PeerFor(snap, pp.IP), Dst: netpol.PeerFor(snap, netip.MustParseAddr("192.0.2.1")), Port: 1, Protocol: corev1.ProtocolTCP})
	return d.Egress.Verdict != netpol.VerdictNotSelected
}

// labAddresses is every source address a packet can carry inside the lab: pods, nodes, the nodes' bridge and
// tunnel addresses (masquerade sources) and the external gateway.
func labAddresses(p *Plan) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	add := func(a netip.Addr) {
		if a.IsValid() && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	for _, pp := range p.Pods {
		add(pp.IP)
	}
	for _, n := range p.Nodes {
		add(n.IP)
		add(n.BridgeIP)
		add(n.TunnelIP)
	}
	add(p.Gateway)
	return out
}

// allowExternal adds an external client address to every enforced pod's ingress set where policy allows it.
func allowExternal(ctx context.Context, st *State, snap *cluster.Snapshot, ip netip.Addr) error {
	if !st.Policy.Enforced || len(st.Policy.IngressPods) == 0 {
		return nil
	}
	eng := netpol.New(snap)
	src := netpol.PeerFor(snap, ip)
	for _, ref := range st.Policy.IngressPods {
		pp := st.Plan.Pod(ref)
		if pp == nil {
			continue
		}
		var elems []string
		for _, lp := range pp.Listen {
			d := eng.Evaluate(netpol.Conn{Src: src, Dst: netpol.PeerFor(snap, pp.IP), Port: int32(lp.Port), Protocol: corev1.Protocol(lp.Proto)})
			if d.Ingress.Verdict == netpol.VerdictAllowed {
				elems = append(elems, policyElem{ip, lp.Proto, lp.Port}.String())
			}
		}
		if len(elems) == 0 {
			continue
		}
		if _, err := run(ctx, "", "ip", "netns", "exec", pp.NS, "nft", "add", "element", "ip", policyTable, "allow-in", "{ "+strings.Join(elems, ", ")+" }"); err != nil {
			return err
		}
	}
	return nil
}
