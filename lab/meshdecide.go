package lab

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/packet"
)

// The lab proxies take every decision from package mesh (routes, Sidecar egress, TLS, authorization), the same
// calls the trace engine's mesh stage makes; what they add is the real thing: the original destination from the
// kernel (SO_ORIGINAL_DST), a random endpoint choice, a real TLS handshake and real sockets.

// meshView is the agent's read-only view for the proxies.
type meshView struct {
	snap *cluster.Snapshot
	m    *mesh.Model
	mu   sync.Mutex
	kp   map[string]*kubeproxy.Index // by node
}

func newMeshView(snap *cluster.Snapshot) *meshView {
	return &meshView{snap: snap, m: mesh.New(snap), kp: map[string]*kubeproxy.Index{}}
}

func (v *meshView) index(node string) (*kubeproxy.Index, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if idx, ok := v.kp[node]; ok {
		return idx, nil
	}
	idx, err := kubeproxy.NewIndex(kubeproxy.ConfigFor(v.snap, v.snap.Node(node)), v.snap.Services, v.snap.EndpointSlices)
	if err != nil {
		return nil, err
	}
	v.kp[node] = idx
	return idx, nil
}

// podAt returns the (non-hostNetwork) pod with address ip, or nil.
func (v *meshView) podAt(ip netip.Addr) *corev1.Pod {
	for _, p := range v.snap.PodsByIP(ip) {
		if !p.Spec.HostNetwork {
			return p
		}
	}
	return nil
}

// outboundPlan is what a client proxy does with one intercepted connection.
type outboundPlan struct {
	Service     string // "Service ns/name" the original destination belongs to ("" when none)
	RouteObject string
	RouteRule   string
	RouteWhy    string
	Passthrough bool   // forward to the original destination as is (not a Service, headless, or hidden by a Sidecar)
	Why         string // how the target was chosen
	Target      netip.AddrPort
	// Reject is set when the proxy fails the connection itself (REGISTRY_ONLY, no endpoints, no route match).
	Reject, RejectObject string
	TLS                  bool
	TLSWhy               string
	ServerPod            string // ns/name of the target pod
	ServerIdentity       string // the identity the client proxy requires of the server ("" without TLS)
}

// decideOutbound mirrors the trace engine's sidecar outbound stage for one connection of pod p to orig.
func (v *meshView) decideOutbound(p *corev1.Pod, orig netip.AddrPort, l7 *packet.L7) outboundPlan {
	mb := v.m.Member(p)
	var op outboundPlan
	var svc *corev1.Service
	for _, sp := range v.snap.ServicePortsAt(orig.Addr(), int32(orig.Port()), corev1.ProtocolTCP) {
		if sp.Via == cluster.OwnerClusterIP {
			svc = sp.Service
			break
		}
	}
	if svc != nil {
		op.Service = "Service " + svc.Namespace + "/" + svc.Name
	}
	if mb.Mesh == cluster.MeshIstioSidecar && svc != nil {
		eg := v.m.IstioEgress(p, svc.Namespace, svc.Name, int(orig.Port()))
		if !eg.Known {
			if strings.EqualFold(eg.Mode, "REGISTRY_ONLY") {
				op.Reject, op.RejectObject = eg.Why+"; REGISTRY_ONLY: BlackHoleCluster", whyOr(eg.Object, "Pod "+p.Namespace+"/"+p.Name+" istio-proxy")
				return op
			}
			op.Passthrough, op.Target = true, orig
			op.Why = eg.Why + "; PassthroughCluster to the original destination " + orig.String()
			v.decideTLS(&op, p, mb, nil)
			return op
		}
	}
	target, port := svc, int(orig.Port())
	var subset map[string]string
	if l7 != nil && svc != nil && !linkerdOpaqueSvc(svc, port, mb) {
		rt := v.m.RouteOutbound(mb.Mesh, p.Namespace, svc.Namespace, svc.Name, port, l7, randomWeighted)
		if rt != nil && rt.NoMatch {
			op.Reject, op.RejectObject = rt.Why, rt.Object
			return op
		}
		if rt != nil {
			b := rt.Backends[rt.Picked]
			op.RouteObject, op.RouteRule, op.RouteWhy = whyOr(rt.Object, "Service "+svc.Namespace+"/"+svc.Name), whyOr(rt.Rule, "default route"), rt.Why
			target = v.snap.Service(b.Namespace, b.Service)
			if target == nil {
				op.Reject, op.RejectObject = fmt.Sprintf("route backend Service %s/%s does not exist", b.Namespace, b.Service), rt.Object
				return op
			}
			port, subset = b.Port, b.SubsetLabels
		}
	}
	if target == nil {
		op.Passthrough, op.Target, op.Why = true, orig, "not a Service address: forwarded as is"
		v.decideTLS(&op, p, mb, nil)
		return op
	}
	vip, _ := netip.ParseAddr(target.Spec.ClusterIP)
	if !vip.IsValid() {
		op.Passthrough, op.Target, op.Why = true, orig, "headless Service: forwarded to the resolved pod address"
		v.decideTLS(&op, p, mb, target)
		return op
	}
	idx, err := v.index(p.Spec.NodeName)
	if err != nil {
		op.Reject, op.RejectObject = "endpoints: "+err.Error(), "Service "+target.Namespace+"/"+target.Name
		return op
	}
	src, _ := netip.ParseAddr(p.Status.PodIP)
	res := idx.Translate(kubeproxy.Flow{Src: src, Dst: vip, Protocol: corev1.ProtocolTCP, DstPort: uint16(port)})
	var eps []netip.AddrPort
	for _, c := range res.Endpoints {
		if len(subset) > 0 {
			ok := false
			for _, pp := range v.snap.PodsByIP(c.Endpoint.Addr()) {
				if labelsSubset(subset, pp.Labels) {
					ok = true
				}
			}
			if !ok {
				continue
			}
		}
		eps = append(eps, c.Endpoint)
	}
	svcRef := "Service " + target.Namespace + "/" + target.Name
	if len(eps) == 0 {
		op.Reject, op.RejectObject = svcRef+" has no ready endpoint", svcRef
		return op
	}
	i := rand.IntN(len(eps))
	op.Target = eps[i]
	op.Why = fmt.Sprintf("picked endpoint %d of %d of %s at random (the real proxy balances with EWMA / LEAST_REQUEST)", i+1, len(eps), svcRef)
	v.decideTLS(&op, p, mb, target)
	return op
}

func randomWeighted(ws []int) int {
	total := 0
	for _, w := range ws {
		if w > 0 {
			total += w
		}
	}
	if total == 0 {
		return 0
	}
	x := rand.IntN(total)
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

func labelsSubset(sel, l map[string]string) bool {
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return true
}

func linkerdOpaqueSvc(svc *corev1.Service, port int, mb mesh.Member) bool {
	if mb.Mesh != cluster.MeshLinkerd {
		return false
	}
	for _, s := range strings.Split(svc.Annotations["config.linkerd.io/opaque-ports"], ",") {
		if strings.TrimSpace(s) == strconv.Itoa(port) {
			return true
		}
	}
	return false
}

// decideTLS: Linkerd originates mTLS when the destination controller returns an identity for the endpoint (a
// Linkerd-meshed pod whose inbound rules redirect that port); Istio asks IstioClientTLS (auto mTLS).
func (v *meshView) decideTLS(op *outboundPlan, p *corev1.Pod, mb mesh.Member, svc *corev1.Service) {
	dp := v.podAt(op.Target.Addr())
	if dp == nil {
		op.TLSWhy = op.Target.Addr().String() + " is not a pod in the snapshot"
		return
	}
	op.ServerPod = dp.Namespace + "/" + dp.Name
	dm := v.m.Member(dp)
	switch mb.Mesh {
	case cluster.MeshLinkerd:
		switch {
		case dm.Mesh != cluster.MeshLinkerd || dm.Capture == nil:
			op.TLSWhy = op.ServerPod + " has no Linkerd proxy: no identity for it"
		default:
			src := netip.AddrPortFrom(netip.MustParseAddr(p.Status.PodIP), 40000)
			if ic := v.m.Intercept(dp, mesh.Inbound, "TCP", src, op.Target, 0); !ic.Redirected {
				op.TLSWhy = fmt.Sprintf("port %d is skipped by %s's inbound interception: no identity for it", op.Target.Port(), op.ServerPod)
			} else {
				op.TLS, op.TLSWhy = true, "the destination is a Linkerd-meshed pod: "+dm.Identity
			}
		}
	case cluster.MeshIstioSidecar:
		meshed := dm.Capture != nil && (dm.Mesh == cluster.MeshIstioSidecar || dm.Mesh == cluster.MeshIstioAmbient)
		ns, name := "", ""
		if svc != nil {
			ns, name = svc.Namespace, svc.Name
		}
		op.TLS, op.TLSWhy = v.m.IstioClientTLS(dp, meshed, ns, name, int(op.Target.Port()))
	}
	if op.TLS {
		op.ServerIdentity = dm.Identity
	}
}

// inboundDecision is what a server proxy decided for one connection.
type inboundDecision struct {
	PeerMode, PeerObject, PeerRule string // Istio PeerAuthentication
	PeerReject                     string // set when the PeerAuthentication refuses the connection
	Opaque                         bool
	OpaqueWhy                      string
	Decision                       mesh.Decision
}

// decideInbound mirrors the trace engine's sidecar inbound stage.
func (v *meshView) decideInbound(dp *corev1.Pod, peer netip.Addr, identity string, port int, l7 *packet.L7) inboundDecision {
	mb := v.m.Member(dp)
	c := mesh.Client{IP: peer, Identity: identity, Pod: v.podAt(peer)}
	if rest, ok := strings.CutPrefix(identity, "spiffe://"); ok {
		if parts := strings.Split(rest, "/"); len(parts) == 5 {
			c.Namespace, c.ServiceAccount = parts[2], parts[4]
		}
	} else if sa, rest, ok := strings.Cut(identity, "."); ok {
		ns, _, _ := strings.Cut(rest, ".")
		c.Namespace, c.ServiceAccount = ns, sa
	}
	var d inboundDecision
	req := mesh.Request{Client: c, Port: port, L7: l7}
	switch mb.Mesh {
	case cluster.MeshLinkerd:
		d.Opaque, d.OpaqueWhy = v.m.LinkerdOpaque(dp, port)
		req.Opaque = d.Opaque
		d.Decision = v.m.LinkerdInbound(dp, req)
	case cluster.MeshIstioSidecar:
		pm := v.m.IstioPeerMode(dp, port)
		d.PeerMode, d.PeerObject, d.PeerRule = pm.Mode, whyOr(pm.Object, "Istio default (no PeerAuthentication)"), whyOr(pm.Rule, "mode "+pm.Mode)
		switch {
		case pm.Mode == "STRICT" && identity == "":
			d.PeerReject = "PeerAuthentication STRICT refuses plaintext from " + peer.String()
			return d
		case pm.Mode == "DISABLE" && identity != "":
			d.PeerReject = "PeerAuthentication DISABLE expects plaintext but the client originated mTLS"
			return d
		}
		d.Decision = v.m.IstioInbound(dp, req)
	default:
		d.Decision = mesh.Decision{Verdict: mesh.Unknown, Why: string(mb.Mesh) + " is not a sidecar mesh"}
	}
	return d
}

func whyOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
