package trace

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/packet"
)

// run is one walk through the stages.
type run struct {
	e       *Engine
	src     Source
	tgt     Target
	opt     Options
	j       *Journey
	pkt     packet.Packet
	hop     *Hop
	choices []kubeproxy.Choice
	depth   int
	done    bool
	masq    masqPending
}

// masqPending is a masquerade decided in PREROUTING/OUTPUT (kube-proxy's mark) and applied in POSTROUTING.
type masqPending struct {
	why, rule string
}

func (e *Engine) newRun(src Source, tgt Target, opt Options, q Question) *run {
	p := e.prof
	why := e.profileWhy()
	j := &Journey{Schema: Schema, Question: q, Blockers: []Blocker{}, Hops: []Hop{},
		Profile: ProfileSummary{ProxyMode: string(p.ProxyMode), CNI: string(p.CNI), Mesh: e.meshSummary(),
			Encryption: string(p.Encryption), Why: why}}
	switch src.Kind {
	case FromPod:
		j.Source = Endpoint{Pod: podRef(src.Pod), Node: src.Pod.Spec.NodeName, IP: src.IP.String(),
			Synthesized: cluster.IsSynthesized(src.Pod, "")}
		if src.Picked != "" {
			j.Notes = append(j.Notes, src.Picked)
		}
	case FromNode:
		j.Source = Endpoint{Node: src.Node.Name, IP: src.IP.String()}
	case FromExternal:
		j.Source = Endpoint{IP: src.IP.String()}
	}
	return &run{e: e, src: src, tgt: tgt, opt: opt, j: j}
}

// meshSummary names every mesh the profile detected ("linkerd+istio-sidecar+istio-ambient"): a cluster can run
// several, and membership is decided per pod on the journey.
func (e *Engine) meshSummary() string {
	var out []string
	seen := map[string]bool{}
	for _, ev := range e.prof.Evidence {
		if ev.Setting == "mesh" && !seen[ev.Value] {
			seen[ev.Value] = true
			out = append(out, ev.Value)
		}
	}
	if len(out) == 0 {
		return string(e.prof.Mesh)
	}
	return strings.Join(out, "+")
}

// profileWhy is the reason for each profile setting, built once per engine: every journey shares the (read-only) map.
func (e *Engine) profileWhy() map[string]string {
	e.profWhyOnce.Do(func() {
		why := map[string]string{}
		for _, ev := range e.prof.Evidence {
			if _, ok := why[ev.Setting]; ok {
				continue
			}
			w := ev.How + ": " + ev.Detail
			if ev.Object != "" {
				w += " (" + ev.Object + ")"
			}
			why[ev.Setting] = w
		}
		e.profWhy = why
	})
	return e.profWhy
}

// ---- journey building ----

func (r *run) enter(loc Location) {
	if r.hop != nil && r.hop.Location == loc {
		return // still in the same place (e.g. DNS then connect, both in the source pod)
	}
	if r.j.Hops == nil || cap(r.j.Hops) == 0 {
		r.j.Hops = make([]Hop, 0, 6) // a typical journey has 3–6 locations
	}
	r.j.Hops = append(r.j.Hops, Hop{Location: loc, Steps: make([]Step, 0, 4)})
	r.hop = &r.j.Hops[len(r.j.Hops)-1]
}

func (r *run) step(s Step) {
	r.hop.Steps = append(r.hop.Steps, s)
}

// rewrite records a step that changes the packet.
func (r *run) rewrite(s Step, after packet.Packet) {
	before := r.pkt
	s.Before, s.After = &before, &after
	r.pkt = after
	r.step(s)
}

func (r *run) block(layer Layer, object, reason string) {
	r.j.Blockers = append(r.j.Blockers, Blocker{Layer: layer, Object: object, Reason: reason})
}

func (r *run) finish(v Verdict, reason string) {
	if r.done {
		return
	}
	r.done = true
	r.j.Verdict, r.j.VerdictReason = v, reason
}

func podLoc(p *corev1.Pod) Location {
	return Location{Kind: InPod, Name: podRef(p), Node: p.Spec.NodeName, IP: p.Status.PodIP}
}

func nodeLoc(n *corev1.Node) Location {
	return Location{Kind: OnNode, Name: n.Name, IP: cluster.NodeIP(n).String()}
}

// ---- the walk ----

// run walks the stages; choice ≥ 0 forces that backend branch.
func (r *run) run(choice int) {
	defer r.finalize()
	dstIP := r.tgt.IP
	if r.tgt.Kind == ToName {
		ip, ok := r.dnsStage()
		if !ok {
			return
		}
		dstIP = ip
	}
	if r.tgt.Port == 0 {
		r.finish(Unknown, "no destination port: give NAME:PORT or a URL")
		return
	}
	sport := uint16(32768 + hashPick(28000, r.j.Question.From, r.j.Question.To))
	r.pkt = packet.Packet{Proto: r.opt.Protocol, Src: netip.AddrPortFrom(r.src.IP, sport),
		Dst: netip.AddrPortFrom(dstIP, uint16(r.tgt.Port))}
	if r.tgt.L7 != nil {
		l7 := *r.tgt.L7
		r.pkt.L7 = &l7
	}
	r.j.Destination = r.pkt.Dst.String()
	switch r.src.Kind {
	case FromPod:
		r.fromPod(choice)
	case FromNode:
		r.fromNode(choice)
	case FromExternal:
		r.fromExternal(choice)
	}
}

func (r *run) fromPod(choice int) {
	p := r.src.Pod
	if !r.src.IP.IsValid() {
		r.enter(podLoc(p))
		r.step(Step{Layer: LayerSocket, Action: ActionUnknown, Object: "Pod " + podRef(p),
			Why: fmt.Sprintf("the pod has no IP (phase %s): it is not running, so it sends nothing", p.Status.Phase)})
		r.block(LayerSocket, "Pod "+podRef(p), "source pod has no IP (phase "+string(p.Status.Phase)+")")
		r.finish(Dropped, "the source pod is not running")
		return
	}
	n := r.src.Node
	if p.Spec.HostNetwork {
		r.enter(nodeLoc(n))
		r.step(Step{Layer: LayerSocket, Action: ActionSend, Object: "Pod " + podRef(p),
			Why:    "hostNetwork pod: the socket lives in node " + n.Name + "'s network namespace, packets start in OUTPUT",
			Before: ptr(r.pkt), LatencyEstimate: Estimate{}})
		r.nodeStages(n, choice, true)
		return
	}
	r.enter(podLoc(p))
	r.step(Step{Layer: LayerSocket, Action: ActionSend, Object: "Pod " + podRef(p),
		Why:    fmt.Sprintf("the application connects from %s; the kernel picks source port %d", r.pkt.Src.Addr(), r.pkt.Src.Port()),
		Before: ptr(r.pkt)})
	if r.meshStage(p, "outbound", choice) {
		return
	}
	if r.e.prof.ProxyMode == cluster.ProxyCiliumEBPF {
		if !r.serviceStage(n, choice, true) {
			return
		}
	}
	gw, dev := r.podGateway(p, n)
	r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Pod " + podRef(p) + " eth0", Rule: "default via " + gw + " dev " + dev,
		Why:             "the pod's only route leads out through its veth to the node",
		LatencyEstimate: r.e.lat.Route()})
	r.enter(nodeLoc(n))
	r.step(Step{Layer: LayerLink, Action: ActionForward, Object: r.hostVeth(p), Rule: r.hostLinkRule(),
		Why: "the veth pair delivers the packet to the node's network namespace", LatencyEstimate: r.e.lat.Veth()})
	r.nodeStages(n, choice, false)
}

func (r *run) fromNode(choice int) {
	n := r.src.Node
	r.enter(nodeLoc(n))
	r.step(Step{Layer: LayerSocket, Action: ActionSend, Object: "Node " + n.Name,
		Why: "a process in the node's network namespace connects; the packet starts in the OUTPUT hook", Before: ptr(r.pkt)})
	r.nodeStages(n, choice, true)
}

func (r *run) fromExternal(choice int) {
	dst := r.pkt.Dst.Addr()
	r.enter(Location{Kind: Outside, Name: "client " + r.src.IP.String(), IP: r.src.IP.String()})
	r.step(Step{Layer: LayerSocket, Action: ActionSend, Object: "external client",
		Why: "a client outside the cluster sends to " + r.pkt.Dst.String(), Before: ptr(r.pkt)})
	var node *corev1.Node
	if n := r.e.snap.NodeByIP(dst); n != nil {
		node = n
		r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Node " + n.Name, Why: dst.String() + " is node " + n.Name + "'s address",
			LatencyEstimate: r.e.lat.Underlay()})
	} else if sps := r.e.snap.ServicePortsAt(dst, int32(r.pkt.Dst.Port()), corev1.Protocol(r.pkt.Proto)); len(sps) > 0 &&
		(sps[0].Via == cluster.OwnerLoadBalancerIP || sps[0].Via == cluster.OwnerExternalIP) {
		node = r.pickIngressNode(sps[0])
		if node == nil {
			r.block(LayerKubeProxy, "Service "+sps[0].Service.Namespace+"/"+sps[0].Service.Name, "no node can receive the traffic")
			r.finish(Dropped, "no node is eligible to receive load-balancer traffic")
			return
		}
	} else {
		r.step(Step{Layer: LayerRoute, Action: ActionUnknown, Object: dst.String(),
			Why: dst.String() + " is not a node address, LoadBalancer IP or external IP of this cluster: kpath cannot tell where the outside network sends it"})
		r.finish(Unknown, "the destination is not reachable from outside through anything the snapshot declares")
		return
	}
	r.enter(nodeLoc(node))
	r.step(Step{Layer: LayerLink, Action: ActionForward, Object: "Node " + node.Name + " eth0",
		Why: "arrives on the node's underlay interface; PREROUTING runs first", LatencyEstimate: r.e.lat.Veth()})
	r.nodeStages(node, choice, false)
}

// pickIngressNode chooses where a load balancer delivers: any node for externalTrafficPolicy Cluster; only nodes
// with a ready local endpoint (the LB health-checks healthCheckNodePort) for Local.
func (r *run) pickIngressNode(sp cluster.ServicePort) *corev1.Node {
	svc := sp.Service
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	var cands []*corev1.Node
	with := map[string]bool{}
	if local {
		for _, sl := range r.e.snap.SlicesFor(svc.Namespace, svc.Name) {
			for _, ep := range sl.Endpoints {
				if ep.NodeName != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
					with[*ep.NodeName] = true
				}
			}
		}
	}
	for _, n := range r.e.snap.Nodes {
		if n.Spec.Unschedulable || (local && !with[n.Name]) {
			continue
		}
		cands = append(cands, n)
	}
	if len(cands) == 0 {
		return nil
	}
	n := cands[hashPick(len(cands), r.src.IP.String(), svc.Name)]
	why := fmt.Sprintf("the load balancer sends %s to one of %d node(s); kpath follows %s", sp.Via, len(cands), n.Name)
	if local {
		why = fmt.Sprintf("externalTrafficPolicy Local: the load balancer health-checks healthCheckNodePort %d and only sends to the %d node(s) with a ready local endpoint; kpath follows %s",
			svc.Spec.HealthCheckNodePort, len(cands), n.Name)
	}
	r.enter(Location{Kind: Outside, Name: "load balancer " + r.pkt.Dst.Addr().String(), IP: r.pkt.Dst.Addr().String()})
	r.step(Step{Layer: LayerRoute, Action: ActionForward, Object: "Service " + svc.Namespace + "/" + svc.Name,
		Rule: "status.loadBalancer.ingress " + r.pkt.Dst.Addr().String(), Why: why, LatencyEstimate: r.e.lat.Underlay()})
	return n
}

// nodeStages runs what happens on a node: Service translation, egress policy, routing, and delivery.
// local says the packet was generated on this node (OUTPUT) rather than arriving (PREROUTING).
func (r *run) nodeStages(n *corev1.Node, choice int, local bool) {
	if r.e.prof.ProxyMode != cluster.ProxyCiliumEBPF || r.src.Kind != FromPod {
		if !r.serviceStage(n, choice, false) {
			return
		}
	}
	if r.src.Kind == FromPod && !r.src.Pod.Spec.HostNetwork {
		if !r.policyStep(r.src.Pod, "egress") {
			return
		}
	}
	r.routeFrom(n, local)
}

func ptr[T any](v T) *T { return &v }

// finalize closes the journey: a verdict if none was reached, the latency budget, the return path.
func (r *run) finalize() {
	if !r.done {
		r.finish(Unknown, "the walk ended without reaching a verdict")
	}
	var total int64
	r.j.Latency.ByHop = make([]Estimate, len(r.j.Hops))
	for i, h := range r.j.Hops {
		var sum int64
		var srcs []string
		for _, s := range h.Steps {
			sum += s.LatencyEstimate.Nanos
			if s.LatencyEstimate.Source != "" {
				srcs = append(srcs, s.LatencyEstimate.Source)
			}
		}
		r.j.Latency.ByHop[i] = Estimate{Nanos: sum, Source: strings.Join(srcs, " + ")}
		total += sum
	}
	r.j.Latency.Total = Estimate{Nanos: total, Source: "sum of steps"}
	r.j.Latency.Note = "ESTIMATE from the latency model (docs/latency-model.md): first packet only, no queueing"
	if r.j.Verdict == Delivered && r.depth == 0 && r.j.Backend != nil {
		r.returnPath()
	}
}

// returnPath summarises the reply's way back: conntrack reverses every NAT the request got.
func (r *run) returnPath() {
	var rp []string
	b := r.j.Backend
	rp = append(rp, fmt.Sprintf("the reply leaves %s from %s:%d", whyOr(b.Pod, b.IP), b.IP, b.Port))
	for _, h := range r.j.Hops {
		for _, s := range h.Steps {
			switch s.Action {
			case ActionMasquerade, ActionSNAT:
				rp = append(rp, fmt.Sprintf("conntrack on %s reverses the masquerade (destination back to %s)", h.Location.Name, s.Before.Src))
			case ActionDNAT:
				rp = append(rp, fmt.Sprintf("conntrack on %s reverses the DNAT: the source becomes %s again, so the client sees the address it dialled", h.Location.Name, s.Before.Dst))
				if r.e.prof.ProxyMode != "cilium-ebpf" && r.src.Kind == FromPod && r.j.Backend.Node == r.src.Pod.Spec.NodeName && r.bridged() {
					rp = append(rp, "same-node reply crosses the bridge: br_netfilter (bridge-nf-call-iptables=1) must send it through netfilter, or the un-DNAT is skipped and the client drops the reply")
				}
			case ActionEncapsulate:
				rp = append(rp, "re-encapsulated in the other direction between the nodes")
			}
		}
	}
	rp = append(rp, "delivered back to the client's socket")
	r.j.ReturnPath = rp
}
