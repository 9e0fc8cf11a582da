package mesh

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/mesh/capture"
)

// Member says whether a pod is in a mesh, which one, and how kpath knows.
type Member struct {
	// Mesh is the pod's data plane: linkerd, istio-sidecar, istio-ambient, or "" (not meshed).
	Mesh cluster.Mesh
	// Why is the evidence for Mesh (a container, an annotation or label, and where it sits).
	Why string
	// Proxy is true when the pod spec holds the proxy container (an injected pod, as kubectl returns it); false
	// when membership comes from an injection opt-in only (a manifest before the injector's admission webhook).
	Proxy bool
	// Capture is the pod's resolved interception configuration (nil when nothing is captured).
	Capture capture.Config
	// Evidence lists where each interception setting came from.
	Evidence []capture.Evidence
	// NotCaptured says why a pod with a mesh opt-in gets no interception (e.g. inject disabled, hostNetwork).
	NotCaptured string
	// ServiceAccount and Identity are the pod's workload identity: Linkerd
	// SA.NS.serviceaccount.identity.linkerd.TRUST_DOMAIN, Istio spiffe://TRUST_DOMAIN/ns/NS/sa/SA.
	ServiceAccount string
	Identity       string
	// Waypoint names the ambient waypoint serving the pod ("" when none).
	Waypoint string
}

// Meshed reports whether the pod's traffic goes through a mesh proxy.
func (m Member) Meshed() bool { return m.Mesh != "" && m.Capture != nil }

// Sidecar reports whether the pod has its own proxy (Linkerd or Istio sidecar).
func (m Member) Sidecar() bool {
	return m.Meshed() && (m.Mesh == cluster.MeshLinkerd || m.Mesh == cluster.MeshIstioSidecar)
}

// ProxyName is the proxy container's name ("linkerd-proxy", "istio-proxy", "ztunnel").
func (m Member) ProxyName() string {
	switch m.Mesh {
	case cluster.MeshLinkerd:
		return "linkerd-proxy"
	case cluster.MeshIstioSidecar:
		return "istio-proxy"
	case cluster.MeshIstioAmbient:
		return "ztunnel"
	}
	return ""
}

// Model is the mesh view of one snapshot: pod membership (cached), the decoded mesh resources and the control
// planes' settings. It is safe for concurrent use.
type Model struct {
	snap *cluster.Snapshot
	// LinkerdTrustDomain is the identity trust domain (linkerd-config identityTrustDomain, else the cluster domain).
	LinkerdTrustDomain string
	// LinkerdDefaultPolicy is proxy.defaultInboundPolicy (all-unauthenticated unless linkerd-config says otherwise).
	LinkerdDefaultPolicy string
	// LinkerdClusterNetworks is clusterNetworks: the "cluster" in cluster-authenticated / cluster-unauthenticated.
	LinkerdClusterNetworks []netip.Prefix
	// IstioTrustDomain is meshConfig.trustDomain (cluster.local by default).
	IstioTrustDomain string
	// IstioRootNamespace is meshConfig.rootNamespace (istio-system): policies there apply mesh-wide.
	IstioRootNamespace string
	// IstioOutboundPolicy is meshConfig.outboundTrafficPolicy.mode: ALLOW_ANY (default) or REGISTRY_ONLY.
	IstioOutboundPolicy string
	// Settings records where each control-plane setting came from.
	Settings []string

	Res Resources

	mu      sync.Mutex
	members map[*corev1.Pod]Member
	rules   map[ruleKey]*podRules
}

// New builds the mesh model of snap: it reads the control planes' ConfigMaps and decodes every mesh resource kept
// in snap.Custom. Resources that do not decode are reported in Res.Problems, not as errors.
func New(snap *cluster.Snapshot) *Model {
	m := &Model{snap: snap, members: map[*corev1.Pod]Member{}, rules: map[ruleKey]*podRules{}}
	m.LinkerdTrustDomain = whyOr(snap.Profile.ClusterDomain, "cluster.local")
	m.LinkerdDefaultPolicy = "all-unauthenticated"
	for _, c := range strings.Split("10.0.0.0/8,100.64.0.0/10,172.16.0.0/12,192.168.0.0/16,fd00::/8", ",") {
		m.LinkerdClusterNetworks = append(m.LinkerdClusterNetworks, netip.MustParsePrefix(c))
	}
	m.IstioTrustDomain, m.IstioRootNamespace, m.IstioOutboundPolicy = "cluster.local", "istio-system", "ALLOW_ANY"
	if cm := snap.ConfigMap("linkerd", "linkerd-config"); cm != nil {
		var v struct {
			IdentityTrustDomain string `json:"identityTrustDomain"`
			ClusterNetworks     string `json:"clusterNetworks"`
			Proxy               struct {
				DefaultInboundPolicy string `json:"defaultInboundPolicy"`
			} `json:"proxy"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["values"]), &v); err == nil {
			if v.IdentityTrustDomain != "" {
				m.LinkerdTrustDomain = v.IdentityTrustDomain
				m.Settings = append(m.Settings, "linkerd identityTrustDomain "+v.IdentityTrustDomain+" (ConfigMap linkerd/linkerd-config)")
			}
			if v.Proxy.DefaultInboundPolicy != "" {
				m.LinkerdDefaultPolicy = v.Proxy.DefaultInboundPolicy
				m.Settings = append(m.Settings, "linkerd proxy.defaultInboundPolicy "+v.Proxy.DefaultInboundPolicy+" (ConfigMap linkerd/linkerd-config)")
			}
			if v.ClusterNetworks != "" {
				var nets []netip.Prefix
				for _, c := range strings.Split(v.ClusterNetworks, ",") {
					if p, err := netip.ParsePrefix(strings.TrimSpace(c)); err == nil {
						nets = append(nets, p)
					}
				}
				if len(nets) > 0 {
					m.LinkerdClusterNetworks = nets
					m.Settings = append(m.Settings, "linkerd clusterNetworks "+v.ClusterNetworks+" (ConfigMap linkerd/linkerd-config)")
				}
			}
		}
	}
	for _, ns := range []string{"istio-system"} {
		cm := snap.ConfigMap(ns, "istio")
		if cm == nil {
			continue
		}
		var v struct {
			TrustDomain           string `json:"trustDomain"`
			RootNamespace         string `json:"rootNamespace"`
			OutboundTrafficPolicy struct {
				Mode string `json:"mode"`
			} `json:"outboundTrafficPolicy"`
		}
		if err := yaml.Unmarshal([]byte(cm.Data["mesh"]), &v); err == nil {
			if v.TrustDomain != "" {
				m.IstioTrustDomain = v.TrustDomain
				m.Settings = append(m.Settings, "istio trustDomain "+v.TrustDomain+" (ConfigMap "+ns+"/istio)")
			}
			if v.RootNamespace != "" {
				m.IstioRootNamespace = v.RootNamespace
			}
			if v.OutboundTrafficPolicy.Mode != "" {
				m.IstioOutboundPolicy = v.OutboundTrafficPolicy.Mode
				m.Settings = append(m.Settings, "istio outboundTrafficPolicy "+v.OutboundTrafficPolicy.Mode+" (ConfigMap "+ns+"/istio)")
			}
		}
	}
	m.Res = Decode(snap)
	return m
}

// Snapshot returns the snapshot the model reads.
func (m *Model) Snapshot() *cluster.Snapshot { return m.snap }

// Member returns (and caches) the mesh membership of pod p.
func (m *Model) Member(p *corev1.Pod) Member {
	m.mu.Lock()
	if mb, ok := m.members[p]; ok {
		m.mu.Unlock()
		return mb
	}
	m.mu.Unlock()
	mb := m.member(p)
	m.mu.Lock()
	m.members[p] = mb
	m.mu.Unlock()
	return mb
}

// Detect decides which mesh, if any, pod p belongs to, from (in order) its proxy or init containers, its own
// injection opt-in or opt-out, and its namespace's. A cluster's control plane alone meshes nothing: injection is
// opt-in in both Linkerd and Istio.
func Detect(p *corev1.Pod, ns *corev1.Namespace) (cluster.Mesh, string, bool) {
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		switch c.Name {
		case "linkerd-proxy", "linkerd-init", "linkerd-network-validator":
			return cluster.MeshLinkerd, "the pod has a " + c.Name + " container", true
		case "istio-proxy", "istio-init", "istio-validation":
			return cluster.MeshIstioSidecar, "the pod has an " + c.Name + " container", true
		}
	}
	if p.Spec.HostNetwork {
		return "", "hostNetwork pods are never injected", false
	}
	if v, ok := p.Annotations[capture.AnnoLinkerdInject]; ok {
		if v == "disabled" {
			return "", "pod annotation linkerd.io/inject: disabled", false
		}
		return cluster.MeshLinkerd, "pod annotation linkerd.io/inject: " + v + " (manifest before injection: the proxy container is added at admission)", false
	}
	if v, ok := p.Labels["istio.io/dataplane-mode"]; ok {
		if v == "ambient" {
			return cluster.MeshIstioAmbient, "pod label istio.io/dataplane-mode: ambient", false
		}
		return "", "pod label istio.io/dataplane-mode: " + v + " opts it out of ambient", false
	}
	for _, src := range []map[string]string{p.Labels, p.Annotations} {
		if v, ok := src[capture.AnnoIstioInject]; ok {
			if v == "false" {
				return "", "pod sidecar.istio.io/inject: \"false\"", false
			}
			if ns == nil || (ns.Labels["istio-injection"] != "disabled") {
				return cluster.MeshIstioSidecar, "pod sidecar.istio.io/inject: \"" + v + "\" (manifest before injection)", false
			}
		}
	}
	if ns == nil {
		return "", "no proxy container and no injection opt-in on the pod", false
	}
	if v, ok := ns.Annotations[capture.AnnoLinkerdInject]; ok {
		if v == "disabled" {
			return "", "namespace " + ns.Name + " annotation linkerd.io/inject: disabled", false
		}
		return cluster.MeshLinkerd, "namespace " + ns.Name + " annotation linkerd.io/inject: " + v + " (the proxy container is added at admission)", false
	}
	if ns.Labels["istio.io/dataplane-mode"] == "ambient" {
		return cluster.MeshIstioAmbient, "namespace " + ns.Name + " label istio.io/dataplane-mode: ambient", false
	}
	if v := ns.Labels["istio-injection"]; v == "enabled" {
		return cluster.MeshIstioSidecar, "namespace " + ns.Name + " label istio-injection: enabled (the proxy container is added at admission)", false
	} else if v != "" {
		return "", "namespace " + ns.Name + " label istio-injection: " + v, false
	}
	if r := ns.Labels["istio.io/rev"]; r != "" {
		return cluster.MeshIstioSidecar, "namespace " + ns.Name + " label istio.io/rev: " + r, false
	}
	return "", "no proxy container and no injection opt-in on the pod or namespace " + ns.Name, false
}

func (m *Model) member(p *corev1.Pod) Member {
	ns := m.snap.Namespace(p.Namespace)
	mesh, why, proxy := Detect(p, ns)
	mb := Member{Mesh: mesh, Why: why, Proxy: proxy, ServiceAccount: whyOr(p.Spec.ServiceAccountName, "default")}
	if mesh == "" {
		return mb
	}
	var err error
	switch mesh {
	case cluster.MeshLinkerd:
		d := capture.DefaultLinkerdDefaults()
		d.InjectByDefault = proxy
		mb.Capture, mb.Evidence, err = capture.FromPod(p, ns, d)
		mb.Identity = LinkerdIdentity(mb.ServiceAccount, p.Namespace, m.LinkerdTrustDomain)
	case cluster.MeshIstioSidecar:
		d := capture.DefaultIstioDefaults()
		if m.snap.Profile.ClusterDNS.IsValid() {
			d.ClusterDNS = []string{m.snap.Profile.ClusterDNS.String()}
		}
		mb.Capture, mb.Evidence, err = capture.FromPod(p, ns, d)
		mb.Identity = IstioIdentity(mb.ServiceAccount, p.Namespace, m.IstioTrustDomain)
	case cluster.MeshIstioAmbient:
		c := capture.DefaultAmbientConfig()
		for _, ip := range p.Status.PodIPs {
			if a, e := netip.ParseAddr(ip.IP); e == nil && a.Is6() {
				c.EnableIPv6 = true
			}
		}
		mb.Capture = c
		mb.Identity = IstioIdentity(mb.ServiceAccount, p.Namespace, m.IstioTrustDomain)
		mb.Waypoint = m.waypointFor(p, ns)
	}
	if err != nil {
		mb.Capture = nil
		if capture.IsNotCaptured(err) {
			mb.NotCaptured = strings.TrimSuffix(err.Error(), ": "+capture.ErrNotCaptured.Error())
		} else {
			mb.NotCaptured = "interception settings do not resolve: " + err.Error()
		}
	}
	return mb
}

// waypointFor names the waypoint (istio.io/use-waypoint on the pod, else its namespace).
func (m *Model) waypointFor(p *corev1.Pod, ns *corev1.Namespace) string {
	if w := p.Labels["istio.io/use-waypoint"]; w != "" {
		return p.Namespace + "/" + w
	}
	if ns != nil {
		if w := ns.Labels["istio.io/use-waypoint"]; w != "" {
			return ns.Name + "/" + w
		}
	}
	return ""
}

// LinkerdIdentity is the TLS identity the Linkerd identity controller issues to a proxy running as
// ServiceAccount sa in namespace ns.
func LinkerdIdentity(sa, ns, trustDomain string) string {
	return fmt.Sprintf("%s.%s.serviceaccount.identity.linkerd.%s", sa, ns, trustDomain)
}

// IstioIdentity is the SPIFFE ID istiod issues to a workload running as ServiceAccount sa in namespace ns.
func IstioIdentity(sa, ns, trustDomain string) string {
	return fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", trustDomain, ns, sa)
}

func whyOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// WaypointGateway returns the Gateway name when pod p is an Istio ambient waypoint proxy (the pod istiod deploys
// for a Gateway of class istio-waypoint carries gateway.networking.k8s.io/gateway-name and
// gateway.istio.io/managed: istio.io-mesh-controller), else "".
func WaypointGateway(p *corev1.Pod) string {
	if p == nil || p.Labels["gateway.istio.io/managed"] != "istio.io-mesh-controller" {
		return ""
	}
	return p.Labels["gateway.networking.k8s.io/gateway-name"]
}

// ServiceWaypoint names the waypoint ("ns/name") a Service's traffic goes through: istio.io/use-waypoint on the
// Service, else on its namespace ("" when none; the value "none" opts out).
func (m *Model) ServiceWaypoint(svc *corev1.Service) string {
	if svc == nil {
		return ""
	}
	w := svc.Labels["istio.io/use-waypoint"]
	if w == "" {
		if ns := m.snap.Namespace(svc.Namespace); ns != nil {
			w = ns.Labels["istio.io/use-waypoint"]
		}
	}
	if w == "" || w == "none" {
		return ""
	}
	wns := svc.Namespace
	if v := svc.Labels["istio.io/use-waypoint-namespace"]; v != "" {
		wns = v
	}
	return wns + "/" + w
}
