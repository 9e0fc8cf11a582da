package mesh

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kpath/kpath/packet"
)

// Client is who opens a connection to a meshed pod, as the server-side proxy sees it.
type Client struct {
	IP  netip.Addr
	Pod *corev1.Pod // nil for nodes and external clients
	// Identity is the mTLS identity the client presented ("" for plaintext).
	Identity string
	// Namespace and ServiceAccount of a meshed client (from its identity).
	Namespace, ServiceAccount string
}

// MTLS reports whether the client presented an mTLS identity.
func (c Client) MTLS() bool { return c.Identity != "" }

// Request is one connection (and, when known, one HTTP request) arriving at a meshed pod's port.
type Request struct {
	Client Client
	Port   int        // destination container port
	L7     *packet.L7 // nil when the question has no HTTP attributes
	// Opaque is true when the proxy does no protocol detection on this port (the request is plain TCP to it).
	Opaque bool
}

// Decision verdicts.
const (
	Allow   = "allow"
	Deny    = "deny"
	Unknown = "unknown"
)

// Decision is an authorization outcome: the verdict, the object and rule that decided it, and why.
type Decision struct {
	Verdict string
	Object  string
	Rule    string
	Why     string
	// Audit is set when the request is allowed but flagged (Linkerd audit, Istio AUDIT).
	Audit bool
	// Response is what the client sees when denied (e.g. "HTTP 403", "connection reset").
	Response string
}

// LinkerdOpaque reports whether port is opaque on pod p (no protocol detection): a Server's proxyProtocol opaque,
// else config.linkerd.io/opaque-ports on the pod or its namespace, else the install default.
func (m *Model) LinkerdOpaque(p *corev1.Pod, port int) (bool, string) {
	if s := m.linkerdServer(p, port); s != nil && s.Spec.ProxyProtocol != "" {
		return strings.EqualFold(s.Spec.ProxyProtocol, "opaque"), fmt.Sprintf("%s proxyProtocol %s", s.Ref(), s.Spec.ProxyProtocol)
	}
	list, src := "25,587,3306,4444,5432,6379,9300,11211", "the install default opaque ports (proxy.opaquePorts)"
	if v, ok := p.Annotations["config.linkerd.io/opaque-ports"]; ok {
		list, src = v, "pod annotation config.linkerd.io/opaque-ports: "+v
	} else if ns := m.snap.Namespace(p.Namespace); ns != nil {
		if v, ok := ns.Annotations["config.linkerd.io/opaque-ports"]; ok {
			list, src = v, "namespace annotation config.linkerd.io/opaque-ports: "+v
		}
	}
	return portInList(list, port), src
}

func portInList(list string, port int) bool {
	for _, e := range strings.Split(list, ",") {
		e = strings.TrimSpace(e)
		lo, hi, rng := strings.Cut(e, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		if !rng {
			if a == port {
				return true
			}
			continue
		}
		if b, err := strconv.Atoi(hi); err == nil && port >= a && port <= b {
			return true
		}
	}
	return false
}

// linkerdServer finds the Server that selects pod p's port (the oldest, then by name, when several overlap).
func (m *Model) linkerdServer(p *corev1.Pod, port int) *Server {
	var best *Server
	for _, s := range m.Res.Servers {
		if s.Namespace != p.Namespace || !selects(s.Spec.PodSelector, p.Labels) || !serverPort(s, p, port) {
			continue
		}
		if best == nil || s.CreationTimestamp.Before(&best.CreationTimestamp) {
			best = s
		}
	}
	return best
}

func selects(sel *metav1.LabelSelector, l map[string]string) bool {
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(l))
}

func serverPort(s *Server, p *corev1.Pod, port int) bool {
	if s.Spec.Port.Type == 0 {
		return int(s.Spec.Port.IntVal) == port
	}
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == s.Spec.Port.StrVal && int(cp.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

// LinkerdDefaultPolicy returns the default inbound policy for pod p and where it comes from: the pod's
// config.linkerd.io/default-inbound-policy, its namespace's, or the cluster's proxy.defaultInboundPolicy.
func (m *Model) LinkerdDefaultPolicyFor(p *corev1.Pod) (string, string) {
	const k = "config.linkerd.io/default-inbound-policy"
	if v := p.Annotations[k]; v != "" {
		return v, "pod annotation " + k + ": " + v
	}
	if ns := m.snap.Namespace(p.Namespace); ns != nil && ns.Annotations[k] != "" {
		return ns.Annotations[k], "namespace " + ns.Name + " annotation " + k + ": " + ns.Annotations[k]
	}
	return m.LinkerdDefaultPolicy, "the cluster default proxy.defaultInboundPolicy: " + m.LinkerdDefaultPolicy
}

// linkerdPolicyAllows evaluates a named default policy (docs: Authorization Policy › Default policies).
func (m *Model) linkerdPolicyAllows(policy string, c Client) (verdict string, audit bool, why string) {
	inCluster := false
	for _, n := range m.LinkerdClusterNetworks {
		if c.IP.IsValid() && n.Contains(c.IP) {
			inCluster = true
		}
	}
	switch policy {
	case "all-unauthenticated":
		return Allow, false, "all-unauthenticated allows every client"
	case "audit":
		return Allow, true, "audit allows every client and flags the request in logs and metrics"
	case "all-authenticated":
		if c.MTLS() {
			return Allow, false, "all-authenticated: the client presented identity " + c.Identity
		}
		return Deny, false, "all-authenticated requires a meshed (mTLS) client; this one connects in plaintext"
	case "cluster-unauthenticated":
		if inCluster {
			return Allow, false, fmt.Sprintf("cluster-unauthenticated: %s is in the cluster networks", c.IP)
		}
		return Deny, false, fmt.Sprintf("cluster-unauthenticated: %s is outside the cluster networks", c.IP)
	case "cluster-authenticated":
		if c.MTLS() && inCluster {
			return Allow, false, "cluster-authenticated: meshed client " + c.Identity + " in the cluster networks"
		}
		if !c.MTLS() {
			return Deny, false, "cluster-authenticated requires a meshed (mTLS) client; this one connects in plaintext"
		}
		return Deny, false, fmt.Sprintf("cluster-authenticated: %s is outside the cluster networks", c.IP)
	case "deny":
		return Deny, false, "deny refuses every client no authorization allows"
	}
	return Unknown, false, fmt.Sprintf("default inbound policy %q is not one Linkerd knows", policy)
}

// LinkerdInbound decides whether the inbound proxy of meshed pod dst admits req (docs: linkerd.io/2/reference/
// authorization-policy: Server, ServerAuthorization, AuthorizationPolicy, MeshTLSAuthentication,
// NetworkAuthentication, HTTPRoute, default policies).
func (m *Model) LinkerdInbound(dst *corev1.Pod, req Request) Decision {
	http := req.L7 != nil && !req.Opaque
	deniedResp := "connection refused by the proxy (TCP reset)"
	if http {
		deniedResp = "HTTP 403 Forbidden from the proxy (gRPC: PERMISSION_DENIED)"
	}
	srv := m.linkerdServer(dst, req.Port)
	if srv == nil {
		pol, src := m.LinkerdDefaultPolicyFor(dst)
		v, audit, why := m.linkerdPolicyAllows(pol, req.Client)
		d := Decision{Verdict: v, Object: "Pod " + dst.Namespace + "/" + dst.Name, Rule: "default inbound policy " + pol + " (" + src + ")",
			Why: fmt.Sprintf("no Server selects port %d, so the default inbound policy applies: %s", req.Port, why), Audit: audit}
		if v == Deny {
			d.Response = deniedResp
		}
		return d
	}
	// Routes attached to the Server: an HTTP request must match one.
	var routes []*HTTPRoute
	for _, r := range m.Res.LinkerdHTTPRoutes {
		for _, pr := range r.Spec.ParentRefs {
			if pr.Kind != nil && *pr.Kind == "Server" && pr.Name == srv.Name && r.Namespace == srv.Namespace {
				routes = append(routes, r)
			}
		}
	}
	var route *HTTPRoute
	if len(routes) > 0 && http {
		for _, r := range routes {
			if _, ok := matchHTTPRoute(r, req.L7); ok {
				route = r
				break
			}
		}
		if route == nil {
			return Decision{Verdict: Deny, Object: srv.Ref(), Rule: fmt.Sprintf("%d HTTPRoute(s) attached to the Server", len(routes)),
				Why:      fmt.Sprintf("%s %s matches no HTTPRoute attached to %s: the proxy answers 404", req.L7.Method, req.L7.Path, srv.Ref()),
				Response: "HTTP 404 Not Found from the proxy"}
		}
	}
	var routeOnly []string
	// ServerAuthorizations.
	for _, sa := range m.Res.ServerAuthorizations {
		if sa.Namespace != srv.Namespace {
			continue
		}
		if sa.Spec.Server.Name != "" && sa.Spec.Server.Name != srv.Name {
			continue
		}
		if sa.Spec.Server.Name == "" && (sa.Spec.Server.Selector == nil || !selects(sa.Spec.Server.Selector, srv.Labels)) {
			continue
		}
		if ok, why := m.serverAuthzMatches(sa, req.Client); ok {
			return Decision{Verdict: Allow, Object: sa.Ref(), Rule: "client " + clientRule(sa), Why: fmt.Sprintf("%s authorizes %s: %s", sa.Ref(), srv.Ref(), why)}
		}
	}
	// AuthorizationPolicies.
	var tried []string
	for _, ap := range m.Res.AuthorizationPolicies {
		t := ap.Spec.TargetRef
		ns := whyOr(t.Namespace, ap.Namespace)
		applies := false
		switch t.Kind {
		case "Server":
			applies = ns == srv.Namespace && t.Name == srv.Name
		case "Namespace":
			applies = t.Name == srv.Namespace && ap.Namespace == srv.Namespace
		case "HTTPRoute":
			if ns != srv.Namespace {
				break
			}
			for _, r := range routes {
				if r.Name == t.Name {
					if !http {
						routeOnly = append(routeOnly, ap.Ref())
					} else if route != nil && route.Name == t.Name {
						applies = true
					}
				}
			}
		}
		if !applies {
			continue
		}
		ok, why := m.requiredAuthn(ap, req.Client)
		if ok {
			return Decision{Verdict: Allow, Object: ap.Ref(), Rule: "targetRef " + t.Kind + " " + t.Name + "; requires " + authnRefs(ap),
				Why: fmt.Sprintf("%s authorizes the client: %s", ap.Ref(), why)}
		}
		tried = append(tried, ap.Ref()+" ("+why+")")
	}
	if len(routeOnly) > 0 {
		return Decision{Verdict: Unknown, Object: srv.Ref(), Rule: strings.Join(routeOnly, ", "),
			Why: fmt.Sprintf("only route-level authorization (%s) could allow this, and it depends on the HTTP request: ask with a URL (http://…/path)", strings.Join(routeOnly, ", "))}
	}
	access := whyOr(srv.Spec.AccessPolicy, "deny")
	v, audit, why := m.linkerdPolicyAllows(access, req.Client)
	obj := srv.Ref()
	rule := "spec.accessPolicy " + access
	if srv.Spec.AccessPolicy == "" {
		rule += " (the default for a Server)"
	}
	msg := fmt.Sprintf("%s selects port %d and no authorization allows this client", srv.Ref(), req.Port)
	if len(tried) > 0 {
		msg += " (tried: " + strings.Join(tried, "; ") + ")"
	}
	d := Decision{Verdict: v, Object: obj, Rule: rule, Why: msg + "; " + why, Audit: audit}
	if v == Deny {
		d.Response = deniedResp
	}
	return d
}

func clientRule(sa *ServerAuthorization) string {
	c := sa.Spec.Client
	var parts []string
	if c.Unauthenticated {
		parts = append(parts, "unauthenticated: true")
	}
	if c.MeshTLS != nil {
		if c.MeshTLS.UnauthenticatedTLS {
			parts = append(parts, "meshTLS.unauthenticatedTLS: true")
		}
		if len(c.MeshTLS.Identities) > 0 {
			parts = append(parts, "meshTLS.identities: "+strings.Join(c.MeshTLS.Identities, ","))
		}
		for _, s := range c.MeshTLS.ServiceAccounts {
			parts = append(parts, "meshTLS.serviceAccounts: "+whyOr(s.Namespace, sa.Namespace)+"/"+s.Name)
		}
	}
	for _, n := range c.Networks {
		parts = append(parts, "networks: "+n.CIDR)
	}
	return strings.Join(parts, "; ")
}

func authnRefs(ap *LinkerdAuthorizationPolicy) string {
	if len(ap.Spec.RequiredAuthenticationRefs) == 0 {
		return "nothing (every client)"
	}
	var out []string
	for _, r := range ap.Spec.RequiredAuthenticationRefs {
		out = append(out, r.Kind+" "+whyOr(r.Namespace, ap.Namespace)+"/"+r.Name)
	}
	return strings.Join(out, " and ")
}

func inNetworks(ip netip.Addr, nets []struct {
	CIDR   string   `json:"cidr"`
	Except []string `json:"except,omitempty"`
}) bool {
	for _, n := range nets {
		p, err := netip.ParsePrefix(n.CIDR)
		if err != nil {
			if a, err2 := netip.ParseAddr(n.CIDR); err2 == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				continue
			}
		}
		if !p.Contains(ip) {
			continue
		}
		excluded := false
		for _, e := range n.Except {
			if ep, err := netip.ParsePrefix(e); err == nil && ep.Contains(ip) {
				excluded = true
			} else if ea, err := netip.ParseAddr(e); err == nil && ea == ip {
				excluded = true
			}
		}
		if !excluded {
			return true
		}
	}
	return false
}

func (m *Model) serverAuthzMatches(sa *ServerAuthorization, c Client) (bool, string) {
	cl := sa.Spec.Client
	if len(cl.Networks) > 0 && !inNetworks(c.IP, cl.Networks) {
		return false, fmt.Sprintf("%s is not in its networks", c.IP)
	}
	if cl.Unauthenticated {
		return true, "it allows unauthenticated clients"
	}
	if cl.MeshTLS == nil {
		return false, "it names no clients"
	}
	if !c.MTLS() {
		return false, "it requires mTLS and the client is plaintext"
	}
	if cl.MeshTLS.UnauthenticatedTLS {
		return true, "it allows any TLS client"
	}
	for _, id := range cl.MeshTLS.Identities {
		if identityMatches(id, c.Identity) {
			return true, "identity " + c.Identity + " matches " + id
		}
	}
	for _, s := range cl.MeshTLS.ServiceAccounts {
		if s.Name == c.ServiceAccount && whyOr(s.Namespace, sa.Namespace) == c.Namespace {
			return true, "ServiceAccount " + c.Namespace + "/" + c.ServiceAccount + " is listed"
		}
	}
	return false, "identity " + c.Identity + " is not listed"
}

// identityMatches matches Linkerd identity patterns: "*" (any), "*.suffix", or exact.
func identityMatches(pattern, id string) bool {
	if pattern == "*" {
		return id != ""
	}
	if s, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(id, "."+s)
	}
	return pattern == id
}

func (m *Model) requiredAuthn(ap *LinkerdAuthorizationPolicy, c Client) (bool, string) {
	if len(ap.Spec.RequiredAuthenticationRefs) == 0 {
		return true, "it requires no authentication"
	}
	var ok []string
	for _, r := range ap.Spec.RequiredAuthenticationRefs {
		ns := whyOr(r.Namespace, ap.Namespace)
		switch r.Kind {
		case "MeshTLSAuthentication":
			var mt *MeshTLSAuthentication
			for _, x := range m.Res.MeshTLSAuthentications {
				if x.Namespace == ns && x.Name == r.Name {
					mt = x
				}
			}
			if mt == nil {
				return false, "MeshTLSAuthentication " + ns + "/" + r.Name + " does not exist"
			}
			if !c.MTLS() {
				return false, mt.Ref() + " requires mTLS and the client is plaintext"
			}
			if !m.meshTLSMatches(mt, c) {
				return false, mt.Ref() + " does not list identity " + c.Identity
			}
			ok = append(ok, mt.Ref()+" lists "+c.Identity)
		case "NetworkAuthentication":
			var na *NetworkAuthentication
			for _, x := range m.Res.NetworkAuthentications {
				if x.Namespace == ns && x.Name == r.Name {
					na = x
				}
			}
			if na == nil {
				return false, "NetworkAuthentication " + ns + "/" + r.Name + " does not exist"
			}
			if !inNetworks(c.IP, na.Spec.Networks) {
				return false, fmt.Sprintf("%s: %s is not in its networks", na.Ref(), c.IP)
			}
			ok = append(ok, fmt.Sprintf("%s contains %s", na.Ref(), c.IP))
		case "ServiceAccount":
			if !c.MTLS() || c.ServiceAccount != r.Name || c.Namespace != ns {
				return false, "requires ServiceAccount " + ns + "/" + r.Name
			}
			ok = append(ok, "ServiceAccount "+ns+"/"+r.Name)
		default:
			return false, "authentication kind " + r.Kind + " is not one Linkerd supports"
		}
	}
	return true, strings.Join(ok, " and ")
}

func (m *Model) meshTLSMatches(mt *MeshTLSAuthentication, c Client) bool {
	for _, id := range mt.Spec.Identities {
		if identityMatches(id, c.Identity) {
			return true
		}
	}
	for _, r := range mt.Spec.IdentityRefs {
		ns := whyOr(r.Namespace, mt.Namespace)
		switch r.Kind {
		case "ServiceAccount":
			if (r.Name == "*" || r.Name == c.ServiceAccount) && ns == c.Namespace {
				return true
			}
		case "Namespace":
			if r.Name == "*" || r.Name == c.Namespace {
				return true
			}
		}
	}
	return false
}
