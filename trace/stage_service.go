package trace

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
)

// serviceStage translates a Service address the way the profile's proxy does. It returns false when the journey
// ends here (reject, drop, unknown). inSocket is true for Cilium's connect()-time translation in the pod.
func (r *run) serviceStage(n *corev1.Node, choice int, inSocket bool) bool {
	dst := r.pkt.Dst
	if r.nodeLocalDNS(n) {
		return false // answered on the node
	}
	mode := r.e.prof.ProxyMode
	if mode == cluster.ProxyNone {
		if sps := r.e.snap.ServicePortsAt(dst.Addr(), int32(dst.Port()), corev1.Protocol(r.pkt.Proto)); len(sps) > 0 {
			r.step(Step{Layer: LayerKubeProxy, Action: ActionUnknown, Object: svcName(sps[0].Service),
				Why: "no Service proxy was found in the snapshot (no kube-proxy, no Cilium kube-proxy replacement): nothing translates this VIP"})
			r.finish(Unknown, "no Service proxy in the profile; use --proxy-mode to say which runs")
			return false
		}
		return true
	}
	idx, err := r.e.proxyIndex(n)
	if err != nil {
		r.step(Step{Layer: LayerKubeProxy, Action: ActionUnknown, Object: "Node " + n.Name, Why: err.Error()})
		r.finish(Unknown, err.Error())
		return false
	}
	res := idx.Translate(kubeproxy.Flow{Src: r.pkt.Src.Addr(), Dst: dst.Addr(), Protocol: corev1.Protocol(r.pkt.Proto), DstPort: dst.Port()})
	obj := "kube-proxy (" + string(mode) + ")"
	if res.Service != "" {
		obj = "Service " + res.Service
	}
	rule := strings.Join(res.Chains, " → ")
	cost := r.serviceCost(idx, res)
	why := res.Why
	switch mode {
	case cluster.ProxyCiliumEBPF:
		rule = "cgroup/connect4 bpf_sock → lb4 service map (" + rule + ")"
		why = "Cilium's socket-level load balancer rewrites the destination at connect(): the packet never carries the VIP. " + why
	case cluster.ProxyIPVS:
		why = "IPVS (modelled with kube-proxy's Service semantics; the virtual server lives on kube-ipvs0). " + why
	}
	switch res.Verdict {
	case kubeproxy.VerdictNone:
		r.step(Step{Layer: LayerKubeProxy, Action: ActionNone, Object: obj, Rule: rule, Why: whyOr(why, "no Service owns "+dst.String()+": kube-proxy leaves the packet alone"),
			LatencyEstimate: cost})
		return true
	case kubeproxy.VerdictAccept:
		r.step(Step{Layer: LayerKubeProxy, Action: ActionAllow, Object: obj, Rule: rule, Why: why, LatencyEstimate: cost})
		return true
	case kubeproxy.VerdictReject:
		why += r.notReadyDetail(res.Service)
		r.step(Step{Layer: LayerKubeProxy, Action: ActionReject, Object: obj, Rule: rule, Why: why, LatencyEstimate: cost})
		r.block(LayerKubeProxy, obj, why)
		r.finish(Rejected, why)
		return false
	case kubeproxy.VerdictDrop:
		r.step(Step{Layer: LayerKubeProxy, Action: ActionDrop, Object: obj, Rule: rule, Why: why, LatencyEstimate: cost})
		r.block(LayerKubeProxy, obj, why)
		r.finish(Dropped, why)
		return false
	case kubeproxy.VerdictUnknown:
		r.step(Step{Layer: LayerKubeProxy, Action: ActionUnknown, Object: obj, Rule: rule, Why: why, LatencyEstimate: cost})
		r.finish(Unknown, why)
		return false
	}
	// DNAT: pick one endpoint deterministically; the rest are alternatives.
	r.choices = res.Endpoints
	if len(res.Endpoints) == 0 {
		r.step(Step{Layer: LayerKubeProxy, Action: ActionUnknown, Object: obj, Rule: rule, Why: "DNAT without endpoints: " + why})
		r.finish(Unknown, "the Service model returned no endpoint")
		return false
	}
	i := choice
	pickWhy := ""
	if i < 0 || i >= len(res.Endpoints) {
		i = hashPick(len(res.Endpoints), r.pkt.Src.String(), dst.String())
		pickWhy = fmt.Sprintf("kube-proxy picks at random; kpath follows endpoint %d of %d (a stable choice per source; --all-backends walks every one)",
			i+1, len(res.Endpoints))
	} else {
		pickWhy = fmt.Sprintf("--all-backends: branch %d of %d", i+1, len(res.Endpoints))
	}
	c := res.Endpoints[i]
	r.setBackend(c, res.Endpoints, i)
	if c.Chain != "" {
		rule += " → " + c.Chain
	}
	after := r.pkt.WithDst(c.Endpoint)
	if res.SessionAffinity != "" {
		pickWhy += "; sessionAffinity " + res.SessionAffinity
	}
	r.rewrite(Step{Layer: LayerKubeProxy, Action: ActionDNAT, Object: obj, Rule: rule, Why: why + ". " + pickWhy, LatencyEstimate: cost,
		Nested: r.ruleWalk(n)}, after)
	if c.Masquerade {
		why := res.MasqueradeWhy
		if why == "" {
			why = "kube-proxy marked the connection for masquerade"
		}
		r.masq = masqPending{why: why, rule: masqRule(mode)}
	}
	return true
}

func masqRule(mode cluster.ProxyMode) string {
	if mode == cluster.ProxyIPTables {
		return "KUBE-POSTROUTING: -m mark --mark 0x4000/0x4000 -j MASQUERADE"
	}
	return "kube-proxy nat-postrouting → masquerading: meta mark & 0x4000 == 0x4000 masquerade"
}

func whyOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func svcName(s *corev1.Service) string { return "Service " + s.Namespace + "/" + s.Name }

// serviceCost is the modelled lookup cost: iptables walks KUBE-SERVICES linearly (on average half the Service
// ports before the match, all of them for a miss); nftables is one verdict-map lookup.
func (r *run) serviceCost(idx *kubeproxy.Index, res kubeproxy.Result) Estimate {
	switch r.e.prof.ProxyMode {
	case cluster.ProxyIPTables:
		n := idx.NumPorts() // node views (kubeproxy.Shared) leave Ports nil
		walked := n
		if res.Verdict == kubeproxy.VerdictDNAT {
			walked = (n + 1) / 2
		}
		e := r.e.lat.IPTablesRules(walked)
		e.Source = fmt.Sprintf("%s (~%d of %d KUBE-SERVICES rules walked)", e.Source, walked, n)
		return e
	case cluster.ProxyIPVS:
		return r.e.lat.IPVSLookup()
	case cluster.ProxyCiliumEBPF:
		return r.e.lat.EBPFSocketLB()
	}
	return r.e.lat.NFTablesLookup()
}

func (r *run) setBackend(c kubeproxy.Choice, all []kubeproxy.Choice, picked int) {
	ep := r.endpointFor(c)
	r.j.Backend = &ep
	r.j.Alternatives = nil
	if r.depth > 0 || r.opt.skipAlternatives {
		return // a nested journey (the DNS query's) names its backend; the step says how many it chose from
	}
	r.j.Alternatives = make([]Alternative, 0, len(all)-1)
	for i, o := range all {
		if i == picked {
			continue
		}
		a := Alternative{Endpoint: r.endpointFor(o), Probability: o.Probability}
		if o.Local {
			a.Why = "on the same node"
		}
		r.j.Alternatives = append(r.j.Alternatives, a)
	}
}

func (r *run) endpointFor(c kubeproxy.Choice) Endpoint {
	ep := r.e.endpointPod(c.Endpoint.Addr())
	ep.Port, ep.Node = int(c.Endpoint.Port()), c.NodeName
	return ep
}

// endpointPod names the pod at an endpoint address (its IP string, pod and synthesis), cached per engine: the same
// endpoints (CoreDNS's above all) come back in trace after trace.
func (e *Engine) endpointPod(a netip.Addr) Endpoint {
	if v, ok := e.podAt.Load(a); ok {
		return v.(Endpoint)
	}
	ep := Endpoint{IP: a.String()}
	pods := e.snap.PodsByIP(a)
	for _, p := range pods {
		if !p.Spec.HostNetwork || len(pods) == 1 {
			ep.Pod = podRef(p)
			ep.Synthesized = cluster.IsSynthesized(p, "")
			break
		}
	}
	e.podAt.Store(a, ep)
	return ep
}

// nodeLocalDNS handles NodeLocal DNSCache: in iptables/nftables mode it binds the kube-dns ClusterIP on the node's
// nodelocaldns dummy interface and NOTRACKs port 53, so queries never reach kube-proxy's DNAT.
func (r *run) nodeLocalDNS(n *corev1.Node) bool {
	p := r.e.prof
	if !p.NodeLocalDNS.IsValid() || r.pkt.Dst.Port() != 53 {
		return false
	}
	dst := r.pkt.Dst.Addr()
	if dst != p.ClusterDNS && dst != p.NodeLocalDNS {
		return false
	}
	var cache string
	for _, pod := range r.e.snap.PodsOnNode(n.Name) {
		if strings.Contains(pod.Name, "node-local-dns") || strings.Contains(pod.Name, "nodelocaldns") {
			cache = podRef(pod)
		}
	}
	why := fmt.Sprintf("NodeLocal DNSCache listens on %s and %s on every node (dummy interface nodelocaldns); its NOTRACK rules for port 53 skip conntrack and kube-proxy, so the query is answered on %s", p.NodeLocalDNS, p.ClusterDNS, n.Name)
	r.step(Step{Layer: LayerKubeProxy, Action: ActionNone, Object: "DaemonSet node-local-dns", Rule: "raw PREROUTING: ip daddr " + dst.String() + " udp dport 53 notrack", Why: why,
		LatencyEstimate: r.e.lat.Route()})
	ep := Endpoint{Pod: cache, Node: n.Name, IP: cluster.NodeIP(n).String(), Port: 53}
	if cache == "" {
		r.step(Step{Layer: LayerApp, Action: ActionUnknown, Object: "node-local-dns", Why: "no node-local-dns pod is scheduled on " + n.Name + " in the snapshot"})
		r.finish(Unknown, "NodeLocal DNSCache is configured but has no pod on "+n.Name)
		return true
	}
	r.j.Backend = &ep
	r.step(Step{Layer: LayerApp, Action: ActionDeliver, Object: "Pod " + cache, Rule: "socket " + dst.String() + ":53",
		Why: "delivered to node-local-dns (hostNetwork) on the same node; cache misses for cluster names go on to CoreDNS over TCP", LatencyEstimate: r.e.lat.Route()})
	r.finish(Delivered, "answered by NodeLocal DNSCache on "+n.Name)
	return true
}

var _ = netip.Addr{}

// notReadyDetail explains an endpoint-less Service from its EndpointSlices and pods: which endpoints exist and why
// none is ready.
func (r *run) notReadyDetail(spn string) string {
	nsName, _, _ := strings.Cut(spn, ":")
	ns, name, ok := strings.Cut(nsName, "/")
	if !ok {
		return ""
	}
	svc := r.e.snap.Service(ns, name)
	if svc == nil {
		return ""
	}
	var parts []string
	total := 0
	for _, sl := range r.e.snap.SlicesFor(ns, name) {
		for _, ep := range sl.Endpoints {
			total++
			if len(parts) >= 3 || ep.TargetRef == nil {
				continue
			}
			p := r.e.snap.Pod(ep.TargetRef.Namespace, ep.TargetRef.Name)
			if p == nil {
				continue
			}
			state := string(p.Status.Phase)
			for _, cs := range p.Status.ContainerStatuses {
				if cs.State.Waiting != nil && cs.State.Waiting.Reason != "" {
					state = cs.State.Waiting.Reason
				}
			}
			parts = append(parts, fmt.Sprintf("%s is %s, not Ready", p.Name, state))
		}
	}
	if total == 0 {
		if len(svc.Spec.Selector) == 0 {
			return " (the Service has no selector and no EndpointSlice names an endpoint)"
		}
		return fmt.Sprintf(" (selector %v matches no running pod)", svc.Spec.Selector)
	}
	return fmt.Sprintf(" (%d endpoint(s), none ready: %s)", total, strings.Join(parts, "; "))
}
