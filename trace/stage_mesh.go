package trace

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/mesh/capture"
	"github.com/kpath/kpath/packet"
)

// MeshModel returns the engine's mesh model: pod membership, identities and decoded mesh policy (built on first
// use, so journeys that meet no meshed pod never pay for it).
func (e *Engine) MeshModel() *mesh.Model {
	e.meshOnce.Do(func() { e.mesh = mesh.New(e.snap) })
	return e.mesh
}

// meshStage runs the mesh's part of the journey for pod p: dir "outbound" in the source pod (interception, the
// outbound proxy's route, endpoint choice and mTLS), "inbound" in the destination pod (interception, mTLS
// termination, authorization, the hop to the application). It returns true when the walk stops.
func (r *run) meshStage(p *corev1.Pod, dir string, choice int) (stop bool) {
	m := r.e.MeshModel()
	if dir == mesh.Inbound {
		if gw := mesh.WaypointGateway(p); gw != "" {
			return r.waypointInbound(m, p, gw)
		}
	}
	mb := m.Member(p)
	if mb.Mesh == "" {
		return false
	}
	if mb.Capture == nil {
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: "Pod " + podRef(p),
			Why: fmt.Sprintf("%s opts into %s (%s) but gets no interception rules: %s; traffic is not proxied", podRef(p), mb.Mesh, mb.Why, mb.NotCaptured)})
		return false
	}
	switch mb.Mesh {
	case cluster.MeshLinkerd, cluster.MeshIstioSidecar:
		if dir == mesh.Outbound {
			return r.sidecarOutbound(m, p, mb, choice)
		}
		return r.sidecarInbound(m, p, mb)
	case cluster.MeshIstioAmbient:
		if dir == mesh.Outbound {
			return r.ambientOutbound(m, p, mb, choice)
		}
		return r.ambientInbound(m, p, mb)
	}
	return r.meshUnknown(p, dir)
}

func (r *run) sidecarCost(mb mesh.Member) Estimate {
	e, _ := r.e.lat.m.SidecarHop(string(mb.Mesh))
	return conv(e)
}

// appUID is the uid the application's socket runs as (securityContext.runAsUser of its first container, else the
// pod's; root when unset). The interception rules exempt only the proxy's uid.
func appUID(p *corev1.Pod) uint32 {
	for _, c := range p.Spec.Containers {
		if c.Name == "linkerd-proxy" || c.Name == "istio-proxy" {
			continue
		}
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			return uint32(*c.SecurityContext.RunAsUser)
		}
		break
	}
	if sc := p.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		return uint32(*sc.RunAsUser)
	}
	return 0
}

func proxyUID(cfg capture.Config) uint32 {
	switch c := cfg.(type) {
	case capture.LinkerdConfig:
		return uint32(c.ProxyUID)
	case capture.IstioConfig:
		first, _, _ := strings.Cut(c.ProxyUID, ",")
		if n, err := strconv.Atoi(first); err == nil {
			return uint32(n)
		}
	}
	return 1337
}

func initName(mb mesh.Member) string {
	switch c := mb.Capture.(type) {
	case capture.LinkerdConfig:
		if c.InstalledBy == "linkerd-cni" {
			return "linkerd-cni"
		}
		return "linkerd-init"
	case capture.IstioConfig:
		return "istio-init"
	}
	return "istio-cni"
}

func proxyLoc(p *corev1.Pod, mb mesh.Member, dir string) Location {
	return Location{Kind: InProxy, Name: podRef(p) + " " + mb.ProxyName() + " (" + dir + ")", Node: p.Spec.NodeName, IP: p.Status.PodIP}
}

func (r *run) interceptStep(m *mesh.Model, p *corev1.Pod, mb mesh.Member, dir string, uid uint32) (mesh.Interception, bool) {
	ic := m.Intercept(p, dir, string(r.pkt.Proto), r.pkt.Src, r.pkt.Dst, uid)
	obj := "Pod " + podRef(p) + " (" + initName(mb) + " rules)"
	if ic.Unknown != "" {
		why := "the walk through " + podRef(p) + "'s interception rules is undecided: " + ic.Unknown
		r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: obj, Rule: ic.Rule, Why: why})
		r.finish(Unknown, why)
		return ic, false
	}
	hook := "nat OUTPUT"
	if dir == mesh.Inbound {
		hook = "nat PREROUTING"
	}
	if !ic.Redirected {
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: obj, Rule: ic.Rule,
			Why: fmt.Sprintf("%s (%s) does not redirect this %s connection: the %s never sees it", hook, strings.Join(ic.Chains, " → "),
				strings.ToLower(string(r.pkt.Proto)), mb.ProxyName())})
		return ic, true
	}
	why := fmt.Sprintf("%s (%s) REDIRECTs the new connection to the %s's %s listener %s; the proxy reads the original destination %s with SO_ORIGINAL_DST",
		hook, strings.Join(ic.Chains, " → "), mb.ProxyName(), dir, ic.To, r.pkt.Dst)
	r.rewrite(Step{Layer: LayerMesh, Action: ActionRedirect, Object: obj, Rule: ic.Rule, Why: why, LatencyEstimate: r.e.lat.Conntrack()},
		r.pkt.WithDst(ic.To))
	return ic, true
}

// sidecarOutbound: the application's connection is redirected to the local proxy, which picks the endpoint itself
// and opens a new connection straight to the pod IP (kube-proxy's DNAT is not on this path).
func (r *run) sidecarOutbound(m *mesh.Model, p *corev1.Pod, mb mesh.Member, choice int) bool {
	orig := r.pkt
	ic, ok := r.interceptStep(m, p, mb, mesh.Outbound, appUID(p))
	if !ok {
		return true
	}
	if !ic.Redirected {
		if r.pkt.Proto == packet.TCP {
			r.hop.Steps[len(r.hop.Steps)-1].Why += "; it leaves without mTLS and kube-proxy translates any Service address as in a cluster without a mesh"
		}
		return false
	}
	r.enter(proxyLoc(p, mb, mesh.Outbound))
	dst := orig.Dst
	var svc *corev1.Service
	for _, sp := range r.e.snap.ServicePortsAt(dst.Addr(), int32(dst.Port()), corev1.Protocol(orig.Proto)) {
		if sp.Via == cluster.OwnerClusterIP {
			svc = sp.Service
			break
		}
	}
	proxyObj := "Pod " + podRef(p) + " " + mb.ProxyName()
	cost := r.sidecarCost(mb)
	// Istio: a Sidecar resource may hide the Service from this proxy.
	if mb.Mesh == cluster.MeshIstioSidecar && svc != nil {
		eg := m.IstioEgress(p, svc.Namespace, svc.Name, int(dst.Port()))
		if !eg.Known {
			if strings.EqualFold(eg.Mode, "REGISTRY_ONLY") {
				why := eg.Why + "; outboundTrafficPolicy REGISTRY_ONLY sends unknown destinations to the BlackHoleCluster: the proxy resets the connection"
				r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: whyOr(eg.Object, proxyObj), Rule: eg.Rule + "; BlackHoleCluster", Why: why, LatencyEstimate: cost})
				r.block(LayerMesh, whyOr(eg.Object, proxyObj), why)
				r.finish(Rejected, why)
				return true
			}
			r.proxyConnect(m, p, mb, svc, proxyObj, whyOr(eg.Rule, "PassthroughCluster"), dst,
				eg.Why+"; outboundTrafficPolicy ALLOW_ANY: the PassthroughCluster forwards to the original destination "+dst.String()+
					" in plaintext, so kube-proxy's DNAT still translates the Service address", cost)
			return false
		}
	}
	target := svc
	port := int(dst.Port())
	var subset map[string]string
	routeNote := ""
	// union is set when a route splits over several weighted backends: every endpoint any backend reaches, with
	// probability weight_b/Σweights × 1/n_b, so --all-backends walks them all (the 90/10 canary included).
	var union *backendUnion
	followed := 0 // the route backend this journey follows
	if r.pkt.L7 != nil && svc != nil && !r.linkerdOpaque(m, svc, port, mb) {
		pickW := func(ws []int) int { return weightedPick(ws, r.pkt.Src.String(), r.j.Question.To) }
		rt := m.RouteOutbound(mb.Mesh, p.Namespace, svc.Namespace, svc.Name, port, r.pkt.L7, pickW)
		if rt != nil && rt.NoMatch {
			r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: rt.Object, Why: rt.Why, LatencyEstimate: cost})
			r.block(LayerMesh, rt.Object, rt.Why)
			r.finish(Rejected, rt.Why)
			return true
		}
		if rt != nil {
			picked := rt.Picked
			if len(rt.Backends) > 1 {
				union = r.routeUnion(rt.Backends)
				if choice >= 0 && choice < len(union.eps) {
					picked = union.owner[choice]
				}
			}
			followed = picked
			b := rt.Backends[picked]
			var ws []string
			total := 0
			for _, x := range rt.Backends {
				total += x.Weight
			}
			for i, x := range rt.Backends {
				s := fmt.Sprintf("%s/%s:%d", x.Namespace, x.Service, x.Port)
				if x.Subset != "" {
					s += " subset " + x.Subset
				}
				if len(rt.Backends) > 1 {
					s += fmt.Sprintf(" weight %d", x.Weight)
					if i == picked {
						s += " ← kpath follows this one"
					}
				}
				ws = append(ws, s)
			}
			rule := whyOr(rt.Rule, "default route")
			why := fmt.Sprintf("%s; backends %s; request timeout %s; retries %s", rt.Why, strings.Join(ws, ", "), rt.Timeout, rt.Retries)
			if len(rt.Backends) > 1 && total > 0 {
				why += fmt.Sprintf(" (the proxy splits requests by weight: this one has p=%.2f", float64(b.Weight)/float64(total))
				if union != nil {
					why += fmt.Sprintf("; the alternatives list all %d endpoints of every backend, each with weight/Σweights × 1/endpoints", len(union.eps))
					if union.missing != "" {
						why += "; " + union.missing
					}
				}
				why += ")"
			}
			r.step(Step{Layer: LayerMesh, Action: ActionRoute, Object: whyOr(rt.Object, "Service "+svc.Namespace+"/"+svc.Name), Rule: rule, Why: why})
			if s := r.e.snap.Service(b.Namespace, b.Service); s != nil {
				target = s
			} else {
				why := fmt.Sprintf("route backend Service %s/%s does not exist: the proxy answers 500", b.Namespace, b.Service)
				r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: rt.Object, Why: why})
				r.block(LayerMesh, rt.Object, why)
				r.finish(Rejected, why)
				if union != nil {
					r.choices = union.eps
				}
				return true
			}
			port, subset = b.Port, b.SubsetLabels
			routeNote = " for route backend " + b.Namespace + "/" + b.Service
		}
	}
	if target == nil {
		// Not a Service: the proxy forwards to the original destination.
		why := "the original destination " + dst.String() + " is not a Service address: the proxy forwards the connection to it as is"
		if mb.Mesh == cluster.MeshIstioSidecar {
			why = "the original destination " + dst.String() + " is not a Service this sidecar knows: Envoy's PassthroughCluster forwards to it as is"
		}
		r.proxyConnect(m, p, mb, nil, proxyObj, "original destination", dst, why, cost)
		return false
	}
	// Endpoint choice: the proxy balances over the Service's endpoints (from EndpointSlices, as the Linkerd
	// destination controller / istiod EDS serve them).
	vip, _ := netip.ParseAddr(target.Spec.ClusterIP)
	if !vip.IsValid() {
		r.proxyConnect(m, p, mb, target, proxyObj, "original destination", dst, "Service "+target.Namespace+"/"+target.Name+" is headless: the proxy forwards to the pod address the application resolved", cost)
		return false
	}
	eps, res, err := r.meshEndpoints(target, port, subset)
	if err != nil {
		r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: proxyObj, Why: "endpoints of " + svcName(target) + ": " + err.Error()})
		r.finish(Unknown, err.Error())
		return true
	}
	if len(eps) == 0 {
		if union != nil {
			r.choices = union.eps
		}
		why := fmt.Sprintf("%s%s has no ready endpoint%s: the %s has nowhere to send the connection and fails it", svcName(target), routeNote,
			map[bool]string{true: " in the route's subset", false: ""}[len(subset) > 0], mb.ProxyName())
		if mb.Mesh == cluster.MeshLinkerd {
			why += " (HTTP 503 / connection refused after the proxy's failfast timeout)"
		} else {
			why += " (Envoy: 503 no healthy upstream)"
		}
		why += r.notReadyDetail(res.Service)
		r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: svcName(target), Why: why, LatencyEstimate: cost})
		r.block(LayerMesh, svcName(target), why)
		r.finish(Rejected, why)
		return true
	}
	nEps := len(eps)
	i := choice
	pickWhy := ""
	if union != nil {
		// The branch index is over the union; i becomes the endpoint's index in the union.
		all := union.eps
		if i < 0 || i >= len(all) {
			k := hashPick(len(eps), r.pkt.Src.String(), dst.String())
			i = union.offset[followed] + k
			pickWhy = fmt.Sprintf("kpath follows endpoint %d of this backend's %d (a stable choice per source; --all-backends walks all %d endpoints of every backend)", k+1, len(eps), len(all))
		} else {
			pickWhy = fmt.Sprintf("--all-backends: branch %d of %d over every route backend's endpoints (p=%.3g)", i+1, len(all), all[i].Probability)
		}
		eps = all
	} else if i < 0 || i >= len(eps) {
		i = hashPick(len(eps), r.pkt.Src.String(), dst.String())
		pickWhy = fmt.Sprintf("kpath follows endpoint %d of %d (a stable choice per source; --all-backends walks every one)", i+1, len(eps))
	} else {
		pickWhy = fmt.Sprintf("--all-backends: branch %d of %d", i+1, len(eps))
	}
	r.choices = eps
	r.setBackend(eps[i], eps, i)
	algo := "Linkerd balances requests with EWMA latency (power of two choices), per request for HTTP, per connection for TCP"
	if mb.Mesh == cluster.MeshIstioSidecar {
		algo = "Envoy's default LEAST_REQUEST load balancing over the EDS endpoints istiod pushes"
	}
	why := fmt.Sprintf("the %s resolves %s%s to its %d endpoint(s) itself (%s); %s. It connects straight to the pod IP, so the Service VIP never leaves the pod and kube-proxy's DNAT is not on this path",
		mb.ProxyName(), svcName(target), routeNote, nEps, algo, pickWhy)
	r.proxyConnect(m, p, mb, target, svcName(target), "endpoint "+eps[i].Endpoint.String(), eps[i].Endpoint, why, cost)
	return false
}

// meshEndpoints is what a proxy balances over for Service target:port: its ready endpoints (as the Linkerd
// destination controller / istiod EDS / ztunnel's workload discovery serve them), narrowed to a route subset.
func (r *run) meshEndpoints(target *corev1.Service, port int, subset map[string]string) ([]kubeproxy.Choice, kubeproxy.Result, error) {
	vip, _ := netip.ParseAddr(target.Spec.ClusterIP)
	idx, err := r.e.proxyIndex(r.src.Node)
	if err != nil {
		return nil, kubeproxy.Result{}, err
	}
	res := idx.Translate(kubeproxy.Flow{Src: r.pkt.Src.Addr(), Dst: vip, Protocol: corev1.Protocol(r.pkt.Proto), DstPort: uint16(port)})
	eps := res.Endpoints
	if len(subset) > 0 {
		var keep []kubeproxy.Choice
		for _, c := range eps {
			for _, pp := range r.e.snap.PodsByIP(c.Endpoint.Addr()) {
				if labelsMatch(subset, pp.Labels) {
					keep = append(keep, c)
					break
				}
			}
		}
		eps = keep
	}
	return eps, res, nil
}

// backendUnion is every endpoint of every weighted route backend, in backend order.
type backendUnion struct {
	eps     []kubeproxy.Choice // Probability = weight_b/Σweights × 1/n_b
	owner   []int              // backend index of each endpoint
	offset  []int              // first union index of each backend
	missing string             // backends that contribute no endpoint, and why
}

// routeUnion builds the union of the route backends' endpoints. A backend whose Service is missing, headless or
// without ready endpoints contributes none (its share of requests fails; the route step says so).
func (r *run) routeUnion(bs []mesh.Backend) *backendUnion {
	u := &backendUnion{}
	total := 0
	for _, b := range bs {
		if b.Weight > 0 {
			total += b.Weight
		}
	}
	var missing []string
	for bi, b := range bs {
		u.offset = append(u.offset, len(u.eps))
		if b.Weight <= 0 || total == 0 {
			continue
		}
		s := r.e.snap.Service(b.Namespace, b.Service)
		if s == nil {
			missing = append(missing, b.Namespace+"/"+b.Service+" does not exist")
			continue
		}
		if v, _ := netip.ParseAddr(s.Spec.ClusterIP); !v.IsValid() {
			missing = append(missing, b.Namespace+"/"+b.Service+" is headless")
			continue
		}
		eps, _, err := r.meshEndpoints(s, b.Port, b.SubsetLabels)
		if err != nil || len(eps) == 0 {
			missing = append(missing, b.Namespace+"/"+b.Service+" has no ready endpoint")
			continue
		}
		share := float64(b.Weight) / float64(total) / float64(len(eps))
		for _, c := range eps {
			c.Probability = share
			u.eps = append(u.eps, c)
			u.owner = append(u.owner, bi)
		}
	}
	if len(missing) > 0 {
		u.missing = "no branch for " + strings.Join(missing, ", ") + " (that share of requests fails)"
	}
	return u
}

func labelsMatch(sel, l map[string]string) bool {
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return true
}

// weightedPick chooses an index proportionally to the weights, stably per source and question.
func weightedPick(ws []int, parts ...string) int {
	total := 0
	for _, w := range ws {
		if w > 0 {
			total += w
		}
	}
	if total == 0 {
		return 0
	}
	x := hashPick(total, parts...)
	for i, w := range ws {
		if w <= 0 {
			continue
		}
		if x < w {
			return i
		}
		x -= w
	}
	return len(ws) - 1
}

func (r *run) linkerdOpaque(m *mesh.Model, svc *corev1.Service, port int, mb mesh.Member) bool {
	if mb.Mesh != cluster.MeshLinkerd {
		return false
	}
	if v, ok := svc.Annotations["config.linkerd.io/opaque-ports"]; ok {
		for _, s := range strings.Split(v, ",") {
			if strings.TrimSpace(s) == strconv.Itoa(port) {
				return true
			}
		}
	}
	return false
}

// proxyConnect records the proxy's own connection to to (a new socket, source port chosen by the kernel), the TLS
// decision for it, and its pass back through nat OUTPUT (the uid exemption), then returns to the pod's netns.
func (r *run) proxyConnect(m *mesh.Model, p *corev1.Pod, mb mesh.Member, svc *corev1.Service, obj, rule string, to netip.AddrPort, why string, cost Estimate) {
	sport := uint16(32768 + hashPick(28000, "proxy", r.j.Question.From, r.j.Question.To))
	src := netip.AddrPortFrom(r.src.IP, sport)
	before := r.pkt
	after := packet.Packet{Proto: before.Proto, Src: src, Dst: to, L7: before.L7}
	r.rewrite(Step{Layer: LayerMesh, Action: ActionForward, Object: obj, Rule: rule, Why: why, LatencyEstimate: cost}, after)
	r.tlsStep(m, p, mb, svc, to)
	r.enter(podLoc(p))
	ic := m.Intercept(p, mesh.Outbound, string(r.pkt.Proto), r.pkt.Src, r.pkt.Dst, proxyUID(mb.Capture))
	switch {
	case ic.Unknown != "":
		r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: "Pod " + podRef(p) + " (" + initName(mb) + " rules)", Why: "the proxy's own connection: " + ic.Unknown})
	case ic.Redirected:
		r.step(Step{Layer: LayerMesh, Action: ActionRedirect, Object: "Pod " + podRef(p) + " (" + initName(mb) + " rules)", Rule: ic.Rule,
			Why: "the proxy's own connection is redirected again (a loop): the rules do not exempt its uid"})
	default:
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: "Pod " + podRef(p) + " (" + initName(mb) + " rules)", Rule: ic.Rule,
			Why: fmt.Sprintf("the proxy's own connection (uid %d) passes nat OUTPUT untouched: this exemption is what keeps the proxy from redirecting itself in a loop", proxyUID(mb.Capture))})
	}
}

// tlsStep decides whether the client proxy originates mTLS to the endpoint at to, and says why.
func (r *run) tlsStep(m *mesh.Model, p *corev1.Pod, mb mesh.Member, svc *corev1.Service, to netip.AddrPort) {
	var dp *corev1.Pod
	for _, x := range r.e.snap.PodsByIP(to.Addr()) {
		if !x.Spec.HostNetwork {
			dp = x
		}
	}
	var dm mesh.Member
	if dp != nil {
		dm = m.Member(dp)
	}
	tls, why := false, ""
	switch {
	case dp == nil:
		why = to.Addr().String() + " is not a meshed pod (no pod in the snapshot has it)"
	case mb.Mesh == cluster.MeshLinkerd:
		switch {
		case dm.Mesh != cluster.MeshLinkerd || dm.Capture == nil:
			why = podRef(dp) + " has no Linkerd proxy (" + whyOr(dm.NotCaptured, dm.Why) + "): the destination controller gives no identity for it"
		default:
			ic := m.Intercept(dp, mesh.Inbound, string(r.pkt.Proto), r.pkt.Src, to, 0)
			if !ic.Redirected {
				why = fmt.Sprintf("port %d is skipped by %s's inbound interception: the destination controller gives no identity for it", to.Port(), podRef(dp))
			} else {
				tls = true
				why = "the destination controller returned " + podRef(dp) + "'s identity with the endpoint"
			}
		}
	case mb.Mesh == cluster.MeshIstioSidecar:
		meshed := dm.Capture != nil && (dm.Mesh == cluster.MeshIstioSidecar || dm.Mesh == cluster.MeshIstioAmbient)
		ns, name := "", ""
		if svc != nil {
			ns, name = svc.Namespace, svc.Name
		}
		tls, why = m.IstioClientTLS(dp, meshed, ns, name, int(to.Port()))
		if !meshed && dm.Mesh != "" {
			why += " (it is meshed by " + string(dm.Mesh) + ", a different mesh)"
		}
	}
	if tls {
		server := dm.Identity
		r.step(Step{Layer: LayerMesh, Action: ActionEncrypt, Object: "Pod " + podRef(p) + " " + mb.ProxyName(),
			Rule: "mTLS client " + mb.Identity + " → server " + server,
			Why:  "the connection is wrapped in mutual TLS: the client proxy presents its certificate for " + mb.Identity + " and verifies the server's; " + why})
		return
	}
	r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: "Pod " + podRef(p) + " " + mb.ProxyName(), Rule: "plaintext",
		Why: "no mTLS: " + why})
}

// clientIdentity reads the mTLS identity the client proxy presented from the journey so far.
func (r *run) clientIdentity() string {
	for i := len(r.j.Hops) - 1; i >= 0; i-- {
		for _, s := range r.j.Hops[i].Steps {
			if s.Layer == LayerMesh && s.Action == ActionEncrypt {
				if rest, ok := strings.CutPrefix(s.Rule, "mTLS client "); ok {
					id, _, _ := strings.Cut(rest, " → ")
					return id
				}
			}
		}
	}
	return ""
}

// meshClient describes the connecting side as the server proxy sees it.
func (r *run) meshClient(id string) mesh.Client {
	c := mesh.Client{IP: r.pkt.Src.Addr(), Identity: id}
	if r.src.Kind == FromPod {
		c.Pod = r.src.Pod
	}
	if id != "" {
		if rest, ok := strings.CutPrefix(id, "spiffe://"); ok {
			parts := strings.Split(rest, "/")
			if len(parts) == 5 {
				c.Namespace, c.ServiceAccount = parts[2], parts[4]
			}
		} else if sa, rest, ok := strings.Cut(id, "."); ok {
			ns, _, _ := strings.Cut(rest, ".")
			c.Namespace, c.ServiceAccount = ns, sa
		}
	}
	return c
}

// sidecarInbound: the connection is redirected to the inbound proxy, which terminates mTLS, authorizes, and opens
// a new connection to the application.
func (r *run) sidecarInbound(m *mesh.Model, dp *corev1.Pod, mb mesh.Member) bool {
	id := r.clientIdentity()
	port := int(r.pkt.Dst.Port())
	ic, ok := r.interceptStep(m, dp, mb, mesh.Inbound, 0)
	if !ok {
		return true
	}
	if !ic.Redirected {
		st := &r.hop.Steps[len(r.hop.Steps)-1]
		st.Why += ": no mTLS termination and no mesh authorization on this port"
		if id != "" {
			st.Why += "; but the client proxy originated mTLS, so the application receives a TLS handshake it does not expect"
			r.j.Notes = append(r.j.Notes, fmt.Sprintf("mesh: the client sends mTLS to %s port %d, which the server's interception skips: the application sees TLS bytes", podRef(dp), port))
		}
		return false
	}
	r.enter(proxyLoc(dp, mb, mesh.Inbound))
	proxyObj := "Pod " + podRef(dp) + " " + mb.ProxyName()
	client := r.meshClient(id)
	if id != "" {
		r.step(Step{Layer: LayerMesh, Action: ActionDecrypt, Object: proxyObj, Rule: "mTLS server " + mb.Identity + " ← client " + id,
			Why: "the inbound proxy terminates mutual TLS and verifies the client certificate: the client is " + id})
	} else {
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: proxyObj, Rule: "plaintext",
			Why: "the connection arrives without mTLS: the client has no identity the server can verify"})
	}
	req := mesh.Request{Client: client, Port: port, L7: r.pkt.L7}
	var d mesh.Decision
	switch mb.Mesh {
	case cluster.MeshLinkerd:
		opaque, why := m.LinkerdOpaque(dp, port)
		req.Opaque = opaque
		if opaque {
			r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: proxyObj, Rule: "opaque port " + strconv.Itoa(port),
				Why: "protocol detection is skipped (" + why + "): the proxy forwards raw TCP, so only connection-level authorization applies"})
		} else if r.pkt.L7 != nil {
			why2 := "the proxy detects HTTP on the first bytes and authorizes each request"
			if strings.Contains(why, "proxyProtocol") {
				why2 = "no detection needed: " + why + "; the proxy authorizes each request"
			}
			r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: proxyObj, Rule: "protocol detection", Why: why2})
		}
		d = m.LinkerdInbound(dp, req)
	case cluster.MeshIstioSidecar:
		pm := m.IstioPeerMode(dp, port)
		obj := whyOr(pm.Object, "Istio default (no PeerAuthentication)")
		switch {
		case pm.Mode == "STRICT" && id == "":
			why := fmt.Sprintf("%s; mode STRICT accepts only mTLS and this client is plaintext (not meshed, or its proxy sent plaintext): the sidecar resets the connection", pm.Why)
			r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: obj, Rule: pm.Rule, Why: why, LatencyEstimate: r.sidecarCost(mb)})
			r.block(LayerMesh, obj, "PeerAuthentication STRICT refuses plaintext from "+r.pkt.Src.Addr().String())
			r.finish(Rejected, "the destination's sidecar requires mTLS (STRICT) and the client sent plaintext")
			return true
		case pm.Mode == "DISABLE" && id != "":
			why := pm.Why + "; mode DISABLE expects plaintext but the client originated mTLS: the handshake fails"
			r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: obj, Rule: pm.Rule, Why: why})
			r.block(LayerMesh, obj, why)
			r.finish(Rejected, why)
			return true
		}
		r.step(Step{Layer: LayerMesh, Action: ActionAllow, Object: obj, Rule: whyOr(pm.Rule, "mode "+pm.Mode),
			Why: fmt.Sprintf("%s; mode %s accepts this %s connection", pm.Why, pm.Mode, map[bool]string{true: "mTLS", false: "plaintext"}[id != ""])})
		d = m.IstioInbound(dp, req)
	}
	action := ActionAllow
	switch d.Verdict {
	case mesh.Deny:
		action = ActionReject
	case mesh.Unknown:
		action = ActionUnknown
	}
	why := d.Why
	if d.Audit {
		why += " (audited)"
	}
	r.step(Step{Layer: LayerMesh, Action: action, Object: d.Object, Rule: d.Rule, Why: why})
	switch d.Verdict {
	case mesh.Deny:
		r.block(LayerMesh, d.Object, d.Why)
		r.finish(Rejected, "refused by "+podRef(dp)+"'s "+mb.ProxyName()+": "+d.Response)
		return true
	case mesh.Unknown:
		r.finish(Unknown, d.Why)
		return true
	}
	// The hop to the application.
	var after packet.Packet
	var why2 string
	sport := uint16(32768 + hashPick(28000, "inbound", r.j.Question.From, r.j.Question.To))
	if mb.Mesh == cluster.MeshLinkerd {
		lo := netip.MustParseAddr("127.0.0.1")
		after = packet.Packet{Proto: r.pkt.Proto, Src: netip.AddrPortFrom(lo, sport), Dst: netip.AddrPortFrom(lo, uint16(port)), L7: r.pkt.L7}
		why2 = "the inbound proxy opens a new connection to the application over localhost"
	} else {
		src := netip.MustParseAddr("127.0.0.6")
		after = packet.Packet{Proto: r.pkt.Proto, Src: netip.AddrPortFrom(src, sport), Dst: netip.AddrPortFrom(netip.MustParseAddr(dp.Status.PodIP), uint16(port)), L7: r.pkt.L7}
		why2 = "Envoy's inbound passthrough cluster connects to the application at the pod IP from 127.0.0.6 (the ISTIO_OUTPUT rules return traffic from 127.0.0.6 untouched)"
	}
	r.rewrite(Step{Layer: LayerMesh, Action: ActionForward, Object: proxyObj, Rule: "connect " + after.Dst.String(), Why: why2, LatencyEstimate: r.sidecarCost(mb)}, after)
	r.enter(podLoc(dp))
	return false
}

// Istio ambient (istio.io/latest/docs/ambient/architecture/data-plane/ and traffic-redirection/): no sidecar; the
// Istio CNI agent installs in-pod redirect rules, and the node's ztunnel opens listeners inside the pod's netns
// (15001 outbound, 15008 HBONE inbound, 15006 plaintext inbound). Between ztunnels (or via a waypoint) traffic is
// HBONE: HTTP CONNECT over mTLS to port 15008, identities spiffe://TRUST_DOMAIN/ns/NS/sa/SA.

const hbonePort = 15008

func ztunnelLoc(p *corev1.Pod, dir string) Location {
	return Location{Kind: InProxy, Name: "ztunnel on " + p.Spec.NodeName + " (" + dir + ", in " + podRef(p) + "'s netns)", Node: p.Spec.NodeName, IP: p.Status.PodIP}
}

func (r *run) ztunnelCost() Estimate { return conv(r.e.lat.m.ZtunnelHop()) }

// ambientOutbound: in-pod redirect to ztunnel :15001; ztunnel resolves the Service itself and opens an HBONE tunnel
// from the pod's own address to the endpoint's (or the Service's waypoint's) port 15008.
func (r *run) ambientOutbound(m *mesh.Model, p *corev1.Pod, mb mesh.Member, choice int) bool {
	orig := r.pkt
	ic, ok := r.interceptStep(m, p, mb, mesh.Outbound, appUID(p))
	if !ok {
		return true
	}
	if !ic.Redirected {
		return false
	}
	if orig.Proto != packet.TCP {
		return false
	}
	r.enter(ztunnelLoc(p, mesh.Outbound))
	obj := "ztunnel on " + p.Spec.NodeName
	cost := r.ztunnelCost()
	dst := orig.Dst
	var svc *corev1.Service
	for _, sp := range r.e.snap.ServicePortsAt(dst.Addr(), int32(dst.Port()), corev1.Protocol(orig.Proto)) {
		if sp.Via == cluster.OwnerClusterIP {
			svc = sp.Service
			break
		}
	}
	// A waypoint on the destination Service: ztunnel sends the connection to the waypoint instead.
	if wp := m.ServiceWaypoint(svc); wp != "" {
		wns, wname, _ := strings.Cut(wp, "/")
		wsvc := r.e.snap.Service(wns, wname)
		var eps []kubeproxy.Choice
		if wsvc != nil {
			eps, _, _ = r.meshEndpoints(wsvc, hbonePort, nil)
		}
		if len(eps) == 0 {
			why := fmt.Sprintf("%s uses waypoint %s (istio.io/use-waypoint) but no ready waypoint endpoint on port %d exists: ztunnel cannot forward the connection", svcName(svc), wp, hbonePort)
			r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: svcName(svc), Why: why, LatencyEstimate: cost})
			r.block(LayerMesh, svcName(svc), why)
			r.finish(Rejected, why)
			return true
		}
		k := hashPick(len(eps), orig.Src.String(), dst.String())
		wpod := r.e.snap.PodsByIP(eps[k].Endpoint.Addr())
		wid := ""
		if len(wpod) > 0 {
			wid = mesh.IstioIdentity(whyOr(wpod[0].Spec.ServiceAccountName, "default"), wpod[0].Namespace, m.IstioTrustDomain)
		}
		why := fmt.Sprintf("%s is labelled istio.io/use-waypoint → %s: ztunnel does no L7 work itself and tunnels the connection to the waypoint (one of %d) over HBONE, CONNECT authority %s (the Service address: the waypoint routes)",
			svcName(svc), wp, len(eps), dst)
		r.hbone(m, p, mb, obj, eps[k].Endpoint.Addr(), dst, wid, why, cost)
		return false
	}
	to := dst
	note := "the original destination " + dst.String() + " is not a Service address: ztunnel forwards to it"
	if svc != nil {
		eps, res, err := r.meshEndpoints(svc, int(dst.Port()), nil)
		if err != nil {
			r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: obj, Why: "endpoints of " + svcName(svc) + ": " + err.Error()})
			r.finish(Unknown, err.Error())
			return true
		}
		if len(eps) == 0 {
			why := svcName(svc) + " has no ready endpoint: ztunnel has nowhere to send the connection and closes it" + r.notReadyDetail(res.Service)
			r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: svcName(svc), Why: why, LatencyEstimate: cost})
			r.block(LayerMesh, svcName(svc), why)
			r.finish(Rejected, why)
			return true
		}
		r.choices = eps
		i := choice
		pick := ""
		if i < 0 || i >= len(eps) {
			i = hashPick(len(eps), orig.Src.String(), dst.String())
			pick = fmt.Sprintf("kpath follows endpoint %d of %d (a stable choice per source; --all-backends walks every one)", i+1, len(eps))
		} else {
			pick = fmt.Sprintf("--all-backends: branch %d of %d", i+1, len(eps))
		}
		r.setBackend(eps[i], eps, i)
		to = eps[i].Endpoint
		note = fmt.Sprintf("ztunnel resolves %s to its %d endpoint(s) itself from istiod's workload discovery; %s. kube-proxy's DNAT is not on this path", svcName(svc), len(eps), pick)
	}
	var dp *corev1.Pod
	for _, x := range r.e.snap.PodsByIP(to.Addr()) {
		if !x.Spec.HostNetwork {
			dp = x
		}
	}
	if dp != nil {
		if dm := m.Member(dp); dm.Mesh == cluster.MeshIstioAmbient && dm.Capture != nil {
			r.hbone(m, p, mb, obj, to.Addr(), to, dm.Identity, note+"; the destination is in ambient mode, so ztunnel tunnels over HBONE", cost)
			return false
		} else if dm.Mesh != "" {
			why := note + "; the destination " + podRef(dp) + " is meshed by " + string(dm.Mesh) + ", not ambient: ztunnel → sidecar interoperation is not modelled"
			r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: obj, Why: why, LatencyEstimate: cost})
			r.finish(Unknown, why)
			return true
		}
	}
	sport := uint16(32768 + hashPick(28000, "ztunnel", r.j.Question.From, r.j.Question.To))
	after := packet.Packet{Proto: orig.Proto, Src: netip.AddrPortFrom(r.src.IP, sport), Dst: to, L7: orig.L7}
	r.rewrite(Step{Layer: LayerMesh, Action: ActionForward, Object: obj, Rule: "passthrough " + to.String(),
		Why: note + "; the destination is not in the ambient mesh: ztunnel connects in plaintext (no HBONE, no identity)", LatencyEstimate: cost}, after)
	r.ztunnelOwnSocket(m, p, mb)
	return false
}

// hbone records ztunnel's HBONE connection from the pod's address to peer:15008 carrying CONNECT authority.
func (r *run) hbone(m *mesh.Model, p *corev1.Pod, mb mesh.Member, obj string, peer netip.Addr, authority netip.AddrPort, serverID, why string, cost Estimate) {
	src := r.pkt.Src
	if r.src.Kind == FromPod && r.src.Pod == p {
		src = netip.AddrPortFrom(r.src.IP, uint16(32768+hashPick(28000, "hbone", r.j.Question.From, r.j.Question.To)))
	} else {
		src = netip.AddrPortFrom(netip.MustParseAddr(p.Status.PodIP), uint16(32768+hashPick(28000, "hbone", p.Name, r.j.Question.To)))
	}
	after := packet.Packet{Proto: packet.TCP, Src: src, Dst: netip.AddrPortFrom(peer, hbonePort), L7: r.pkt.L7}
	r.rewrite(Step{Layer: LayerMesh, Action: ActionForward, Object: obj, Rule: "HBONE CONNECT " + authority.String(), Why: why, LatencyEstimate: cost}, after)
	r.step(Step{Layer: LayerMesh, Action: ActionEncrypt, Object: obj, Rule: "mTLS client " + mb.Identity + " → server " + whyOr(serverID, "unknown"),
		Why: "HBONE is HTTP/2 CONNECT inside mutual TLS to port 15008: ztunnel presents the workload's certificate " + mb.Identity + " (it holds one per local ServiceAccount) and verifies the peer's"})
	r.ztunnelOwnSocket(m, p, mb)
}

func (r *run) ztunnelOwnSocket(m *mesh.Model, p *corev1.Pod, mb mesh.Member) {
	r.enter(podLoc(p))
	ic := m.InterceptMark(p, mesh.Outbound, string(r.pkt.Proto), r.pkt.Src, r.pkt.Dst, capture.AmbientInpodMark)
	obj := "Pod " + podRef(p) + " (istio-cni in-pod rules)"
	switch {
	case ic.Unknown != "":
		r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: obj, Why: "ztunnel's own connection: " + ic.Unknown})
	case ic.Redirected:
		r.step(Step{Layer: LayerMesh, Action: ActionRedirect, Object: obj, Rule: ic.Rule, Why: "ztunnel's own connection is redirected again (a loop): the rules do not exempt its mark"})
	default:
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: obj, Rule: ic.Rule,
			Why: fmt.Sprintf("ztunnel's socket carries mark 0x%x: the in-pod rules leave it alone, so it leaves eth0 with the pod's own source address", capture.AmbientInpodMark)})
	}
}

// hboneAuthority reads the CONNECT authority of the last HBONE hop on the journey.
func (r *run) hboneAuthority() (netip.AddrPort, bool) {
	for i := len(r.j.Hops) - 1; i >= 0; i-- {
		st := r.j.Hops[i].Steps
		for k := len(st) - 1; k >= 0; k-- {
			if a, ok := strings.CutPrefix(st[k].Rule, "HBONE CONNECT "); ok && st[k].Layer == LayerMesh {
				ap, err := netip.ParseAddrPort(a)
				return ap, err == nil
			}
		}
	}
	return netip.AddrPort{}, false
}

// ambientInbound: HBONE arrives at ztunnel's in-pod :15008 (never redirected); plaintext from outside the mesh is
// redirected to :15006. ztunnel enforces L4 AuthorizationPolicy (istio.io/latest/docs/ambient/usage/l4-policy/) and
// connects to the application from inside the pod's netns.
func (r *run) ambientInbound(m *mesh.Model, dp *corev1.Pod, mb mesh.Member) bool {
	id := r.clientIdentity()
	hbone := r.pkt.Dst.Port() == hbonePort && id != ""
	port := int(r.pkt.Dst.Port())
	clientIP := r.pkt.Src.Addr()
	if hbone {
		auth, ok := r.hboneAuthority()
		if !ok {
			why := "HBONE arrives at " + podRef(dp) + " but the CONNECT authority is not on the journey"
			r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: "Pod " + podRef(dp), Why: why})
			r.finish(Unknown, why)
			return true
		}
		port = int(auth.Port())
		ic := m.Intercept(dp, mesh.Inbound, string(r.pkt.Proto), r.pkt.Src, r.pkt.Dst, 0)
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: "Pod " + podRef(dp) + " (istio-cni in-pod rules)", Rule: ic.Rule,
			Why: "port 15008 is excluded from the in-pod redirect: the HBONE connection reaches ztunnel's listener inside the pod's netns directly"})
	} else {
		ic, ok := r.interceptStep(m, dp, mb, mesh.Inbound, 0)
		if !ok {
			return true
		}
		if !ic.Redirected {
			r.hop.Steps[len(r.hop.Steps)-1].Why += ": no ztunnel on this connection"
			return false
		}
	}
	r.enter(ztunnelLoc(dp, mesh.Inbound))
	obj := "ztunnel on " + dp.Spec.NodeName
	if hbone {
		r.step(Step{Layer: LayerMesh, Action: ActionDecrypt, Object: obj, Rule: "mTLS server " + mb.Identity + " ← client " + id,
			Why: "the destination ztunnel terminates HBONE (mutual TLS on 15008) with " + podRef(dp) + "'s certificate and verifies the client: " + id})
	} else {
		pm := m.IstioPeerMode(dp, port)
		if pm.Mode == "STRICT" {
			why := pm.Why + "; mode STRICT: ztunnel refuses plaintext arriving on 15006"
			o := whyOr(pm.Object, "PeerAuthentication")
			r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: o, Rule: pm.Rule, Why: why, LatencyEstimate: r.ztunnelCost()})
			r.block(LayerMesh, o, why)
			r.finish(Rejected, why)
			return true
		}
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: obj, Rule: "plaintext :15006",
			Why: "plaintext from outside the ambient mesh arrives on ztunnel's 15006 listener: the client has no identity (" + whyOr(pm.Why, "mode "+pm.Mode) + ")"})
		id = ""
	}
	// ztunnel is L4: AuthorizationPolicy HTTP fields cannot be checked there (an ALLOW rule with them never
	// matches, a DENY rule drops them and matches more), as the l4-policy page says.
	d := m.IstioInbound(dp, mesh.Request{Client: r.meshClient(id), Port: port})
	action := ActionAllow
	switch d.Verdict {
	case mesh.Deny:
		action = ActionReject
	case mesh.Unknown:
		action = ActionUnknown
	}
	r.step(Step{Layer: LayerMesh, Action: action, Object: d.Object, Rule: d.Rule, Why: "ztunnel (L4) authorization: " + d.Why, LatencyEstimate: r.ztunnelCost()})
	switch d.Verdict {
	case mesh.Deny:
		r.block(LayerMesh, d.Object, d.Why)
		r.finish(Rejected, "refused by the ztunnel on "+dp.Spec.NodeName+" for "+podRef(dp)+": the connection is closed")
		return true
	case mesh.Unknown:
		r.finish(Unknown, d.Why)
		return true
	}
	after := packet.Packet{Proto: r.pkt.Proto, Src: netip.AddrPortFrom(clientIP, r.pkt.Src.Port()), Dst: netip.AddrPortFrom(netip.MustParseAddr(dp.Status.PodIP), uint16(port)), L7: r.pkt.L7}
	r.rewrite(Step{Layer: LayerMesh, Action: ActionForward, Object: obj, Rule: "connect " + after.Dst.String(),
		Why: "ztunnel connects to the application from inside the pod's netns in plaintext, keeping the client's source address (a transparent socket, marked so the in-pod rules let it pass)"}, after)
	r.enter(podLoc(dp))
	return false
}

// waypointInbound: a waypoint (Envoy deployed for a Gateway of class istio-waypoint) terminates HBONE, applies L7
// AuthorizationPolicy (targetRefs) and routes (GAMMA HTTPRoute), picks an endpoint and tunnels to its ztunnel
// (istio.io/latest/docs/ambient/usage/waypoint/ and l7-features/).
func (r *run) waypointInbound(m *mesh.Model, wp *corev1.Pod, gw string) bool {
	id := r.clientIdentity()
	auth, ok := r.hboneAuthority()
	loc := Location{Kind: InProxy, Name: podRef(wp) + " waypoint", Node: wp.Spec.NodeName, IP: wp.Status.PodIP}
	r.enter(loc)
	obj := "waypoint " + wp.Namespace + "/" + gw
	if !ok || id == "" || r.pkt.Dst.Port() != hbonePort {
		why := "a waypoint only accepts HBONE from ztunnel; this connection is not HBONE, which kpath does not model"
		r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: obj, Why: why})
		r.finish(Unknown, why)
		return true
	}
	wid := mesh.IstioIdentity(whyOr(wp.Spec.ServiceAccountName, "default"), wp.Namespace, m.IstioTrustDomain)
	r.step(Step{Layer: LayerMesh, Action: ActionDecrypt, Object: obj, Rule: "mTLS server " + wid + " ← client " + id,
		Why: "the waypoint terminates HBONE and sees the client's identity " + id + " and the CONNECT authority " + auth.String()})
	var svc *corev1.Service
	for _, sp := range r.e.snap.ServicePortsAt(auth.Addr(), int32(auth.Port()), corev1.Protocol(r.pkt.Proto)) {
		if sp.Via == cluster.OwnerClusterIP {
			svc = sp.Service
		}
	}
	if svc == nil {
		why := "the CONNECT authority " + auth.String() + " is not a Service address: waypoint handling of workload addresses is not modelled"
		r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: obj, Why: why})
		r.finish(Unknown, why)
		return true
	}
	d := m.IstioWaypoint(wp.Namespace, gw, svc.Namespace, svc.Name, mesh.Request{Client: r.meshClient(id), Port: int(auth.Port()), L7: r.pkt.L7})
	action := ActionAllow
	switch d.Verdict {
	case mesh.Deny:
		action = ActionReject
	case mesh.Unknown:
		action = ActionUnknown
	}
	cost := conv(r.e.lat.m.WaypointHop())
	r.step(Step{Layer: LayerMesh, Action: action, Object: d.Object, Rule: d.Rule, Why: "waypoint (L7) authorization: " + d.Why, LatencyEstimate: cost})
	switch d.Verdict {
	case mesh.Deny:
		r.block(LayerMesh, d.Object, d.Why)
		r.finish(Rejected, "refused by "+obj+": "+d.Response)
		return true
	case mesh.Unknown:
		r.finish(Unknown, d.Why)
		return true
	}
	target, port := svc, int(auth.Port())
	if r.pkt.L7 != nil {
		rt := m.RouteOutbound(cluster.MeshIstioAmbient, id2ns(r.meshClient(id)), svc.Namespace, svc.Name, port, r.pkt.L7,
			func(ws []int) int { return weightedPick(ws, r.j.Question.From, r.j.Question.To) })
		if rt != nil && rt.NoMatch {
			r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: rt.Object, Why: rt.Why})
			r.block(LayerMesh, rt.Object, rt.Why)
			r.finish(Rejected, rt.Why)
			return true
		}
		if rt != nil {
			b := rt.Backends[rt.Picked]
			r.step(Step{Layer: LayerMesh, Action: ActionRoute, Object: whyOr(rt.Object, svcName(svc)), Rule: whyOr(rt.Rule, "default route"),
				Why: fmt.Sprintf("%s; backend %s/%s:%d; request timeout %s (the waypoint applies GAMMA routes attached to the Service)", rt.Why, b.Namespace, b.Service, b.Port, rt.Timeout)})
			if s := r.e.snap.Service(b.Namespace, b.Service); s != nil {
				target, port = s, b.Port
			}
		}
	} else {
		r.step(Step{Layer: LayerMesh, Action: ActionPass, Object: obj, Rule: "TCP",
			Why: "the question has no HTTP attributes: the waypoint proxies the connection as TCP (no L7 route)"})
	}
	eps, _, err := r.meshEndpoints(target, port, nil)
	if err != nil || len(eps) == 0 {
		why := svcName(target) + " has no ready endpoint: the waypoint answers 503 no healthy upstream"
		r.step(Step{Layer: LayerMesh, Action: ActionReject, Object: svcName(target), Why: why})
		r.block(LayerMesh, svcName(target), why)
		r.finish(Rejected, why)
		return true
	}
	i := hashPick(len(eps), r.j.Question.From, auth.String())
	r.setBackend(eps[i], eps, i)
	var dp *corev1.Pod
	for _, x := range r.e.snap.PodsByIP(eps[i].Endpoint.Addr()) {
		if !x.Spec.HostNetwork {
			dp = x
		}
	}
	dm := mesh.Member{}
	if dp != nil {
		dm = m.Member(dp)
	}
	wmb := mesh.Member{Mesh: cluster.MeshIstioAmbient, Identity: wid}
	why := fmt.Sprintf("the waypoint picks endpoint %d of %d of %s (Envoy LEAST_REQUEST) and tunnels to its ztunnel over HBONE; the destination ztunnel sees the waypoint's identity, not the original client's",
		i+1, len(eps), svcName(target))
	src := netip.AddrPortFrom(netip.MustParseAddr(wp.Status.PodIP), uint16(32768+hashPick(28000, "waypoint", r.j.Question.From, r.j.Question.To)))
	after := packet.Packet{Proto: packet.TCP, Src: src, Dst: netip.AddrPortFrom(eps[i].Endpoint.Addr(), hbonePort), L7: r.pkt.L7}
	r.rewrite(Step{Layer: LayerMesh, Action: ActionForward, Object: obj, Rule: "HBONE CONNECT " + eps[i].Endpoint.String(), Why: why}, after)
	r.step(Step{Layer: LayerMesh, Action: ActionEncrypt, Object: obj, Rule: "mTLS client " + wmb.Identity + " → server " + whyOr(dm.Identity, "unknown"),
		Why: "the waypoint originates HBONE (mutual TLS on 15008) with its own certificate"})
	n := r.e.snap.Node(wp.Spec.NodeName)
	if n == nil {
		why := "the waypoint's node " + wp.Spec.NodeName + " is not in the snapshot"
		r.step(Step{Layer: LayerRoute, Action: ActionUnknown, Object: obj, Why: why})
		r.finish(Unknown, why)
		return true
	}
	gwy, dev := r.podGateway(wp, n)
	r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Pod " + podRef(wp) + " eth0", Rule: "default via " + gwy + " dev " + dev,
		Why: "the waypoint pod's route leads out through its veth (egress NetworkPolicy of the waypoint pod is not evaluated here)", LatencyEstimate: r.e.lat.Route()})
	r.enter(nodeLoc(n))
	r.step(Step{Layer: LayerLink, Action: ActionForward, Object: r.hostVeth(wp), Rule: r.hostLinkRule(), Why: "the veth pair delivers the packet to the node's network namespace", LatencyEstimate: r.e.lat.Veth()})
	r.routeFrom(n, false)
	return true
}

func id2ns(c mesh.Client) string { return c.Namespace }
