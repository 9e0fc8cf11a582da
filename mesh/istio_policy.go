package mesh

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// PeerMode is the mTLS mode a workload accepts (security.istio.io PeerAuthentication).
type PeerMode struct {
	Mode   string // STRICT | PERMISSIVE | DISABLE
	Object string // the deciding PeerAuthentication ("" for the default)
	Rule   string // the field that decided (spec.mtls.mode, spec.portLevelMtls[8080].mode)
	Why    string
}

func wlSelects(sel *WorkloadSelector, l map[string]string) bool {
	if sel == nil || len(sel.MatchLabels) == 0 {
		return true
	}
	for k, v := range sel.MatchLabels {
		if l[k] != v {
			return false
		}
	}
	return true
}

func oldest[T metaer](xs []T) T {
	var best T
	for i, x := range xs {
		if i == 0 || x.meta().CreationTimestamp.Before(&best.meta().CreationTimestamp) {
			best = x
		}
	}
	return best
}

// IstioPeerMode resolves the mTLS mode of pod p's port (docs: istio.io PeerAuthentication: workload-specific
// port-level > workload > namespace > mesh (root namespace); UNSET inherits; the default is PERMISSIVE).
func (m *Model) IstioPeerMode(p *corev1.Pod, port int) PeerMode {
	var wl, nsw, meshw []*PeerAuthentication
	for _, pa := range m.Res.PeerAuthentications {
		hasSel := pa.Spec.Selector != nil && len(pa.Spec.Selector.MatchLabels) > 0
		switch {
		case pa.Namespace == p.Namespace && hasSel && wlSelects(pa.Spec.Selector, p.Labels):
			wl = append(wl, pa)
		case pa.Namespace == p.Namespace && !hasSel:
			nsw = append(nsw, pa)
		case pa.Namespace == m.IstioRootNamespace && !hasSel:
			meshw = append(meshw, pa)
		}
	}
	mode := func(pa *PeerAuthentication) string {
		if pa.Spec.MTLS == nil {
			return ""
		}
		m := strings.ToUpper(pa.Spec.MTLS.Mode)
		if m == "UNSET" {
			return ""
		}
		return m
	}
	if len(wl) > 0 {
		pa := oldest(wl)
		if pl, ok := pa.Spec.PortLevelMTLS[strconv.Itoa(port)]; ok && pl.Mode != "" && !strings.EqualFold(pl.Mode, "UNSET") {
			return PeerMode{Mode: strings.ToUpper(pl.Mode), Object: pa.Ref(), Rule: fmt.Sprintf("spec.portLevelMtls[%d].mode %s", port, strings.ToUpper(pl.Mode)),
				Why: fmt.Sprintf("the workload PeerAuthentication sets port %d's mode", port)}
		}
		if md := mode(pa); md != "" {
			return PeerMode{Mode: md, Object: pa.Ref(), Rule: "spec.mtls.mode " + md, Why: "the workload PeerAuthentication selects the pod"}
		}
	}
	if len(nsw) > 0 {
		pa := oldest(nsw)
		if md := mode(pa); md != "" {
			return PeerMode{Mode: md, Object: pa.Ref(), Rule: "spec.mtls.mode " + md, Why: "the namespace-wide PeerAuthentication of " + p.Namespace}
		}
	}
	if len(meshw) > 0 {
		pa := oldest(meshw)
		if md := mode(pa); md != "" {
			return PeerMode{Mode: md, Object: pa.Ref(), Rule: "spec.mtls.mode " + md, Why: "the mesh-wide PeerAuthentication in the root namespace " + m.IstioRootNamespace}
		}
	}
	return PeerMode{Mode: "PERMISSIVE", Why: "no PeerAuthentication applies: Istio's default is PERMISSIVE (mTLS and plaintext both accepted)"}
}

// IstioClientTLS decides whether an Istio client sidecar originates mTLS to a destination pod (auto mTLS: only to
// endpoints that run a sidecar or ztunnel, and not when the destination's PeerAuthentication is DISABLE; a
// DestinationRule's trafficPolicy.tls.mode overrides).
func (m *Model) IstioClientTLS(dst *corev1.Pod, dstMeshed bool, svcNS, svcName string, port int) (bool, string) {
	for _, dr := range m.Res.DestinationRules {
		ns, name := m.resolveHost(dr.Spec.Host, dr.Namespace)
		if svcName == "" || ns != svcNS || name != svcName || dr.Spec.TrafficPolicy == nil || dr.Spec.TrafficPolicy.TLS == nil {
			continue
		}
		switch strings.ToUpper(dr.Spec.TrafficPolicy.TLS.Mode) {
		case "ISTIO_MUTUAL":
			return true, dr.Ref() + " sets trafficPolicy.tls.mode ISTIO_MUTUAL"
		case "DISABLE":
			return false, dr.Ref() + " sets trafficPolicy.tls.mode DISABLE: plaintext"
		}
	}
	if !dstMeshed {
		return false, "auto mTLS: the destination pod has no Istio sidecar or ztunnel (no security.istio.io/tlsMode=istio endpoint label), so the proxy sends plaintext"
	}
	if pm := m.IstioPeerMode(dst, port); pm.Mode == "DISABLE" {
		return false, "auto mTLS: the destination's PeerAuthentication is DISABLE (" + whyOr(pm.Object, "default") + "), so istiod tells the client to send plaintext"
	}
	return true, "auto mTLS: the destination endpoint runs an Istio proxy"
}

// IstioInbound evaluates AuthorizationPolicies for req at pod dst, in Istio's order: CUSTOM, DENY, ALLOW (AUDIT
// only flags). Docs: istio.io/latest/docs/reference/config/security/authorization-policy/.
func (m *Model) IstioInbound(dst *corev1.Pod, req Request) Decision {
	return m.istioEvaluate("Pod "+dst.Namespace+"/"+dst.Name, "HTTP 403 \"RBAC: access denied\" from Envoy", req, func(ap *IstioAuthorizationPolicy) bool {
		if ap.Namespace != dst.Namespace && ap.Namespace != m.IstioRootNamespace {
			return false
		}
		if len(ap.Spec.TargetRefs) > 0 || ap.Spec.TargetRef != nil {
			return false // targetRefs attach to gateways/waypoints/Services, not to sidecars
		}
		return wlSelects(ap.Spec.Selector, dst.Labels)
	})
}

// IstioWaypoint evaluates the AuthorizationPolicies an ambient waypoint (Gateway gwNS/gw) enforces for a request
// to Service svcNS/svc: those whose targetRefs name the Gateway or the Service (istio.io/latest/docs/ambient/usage/l7-features/,
// "Security authorization"), in the same CUSTOM → DENY → ALLOW order.
func (m *Model) IstioWaypoint(gwNS, gw, svcNS, svc string, req Request) Decision {
	return m.istioEvaluate("waypoint "+gwNS+"/"+gw, "HTTP 403 \"RBAC: access denied\" from the waypoint", req, func(ap *IstioAuthorizationPolicy) bool {
		refs := ap.Spec.TargetRefs
		if ap.Spec.TargetRef != nil {
			refs = append(refs, *ap.Spec.TargetRef)
		}
		for _, r := range refs {
			ns := whyOr(r.Namespace, ap.Namespace)
			if (r.Kind == "Gateway" && ns == gwNS && r.Name == gw) || (r.Kind == "Service" && ns == svcNS && r.Name == svc) {
				return true
			}
		}
		return false
	})
}

func (m *Model) istioEvaluate(target, httpResp string, req Request, applies func(*IstioAuthorizationPolicy) bool) Decision {
	var custom, deny, allow, audit []*IstioAuthorizationPolicy
	for _, ap := range m.Res.IstioAuthzPolicies {
		if !applies(ap) {
			continue
		}
		switch strings.ToUpper(whyOr(ap.Spec.Action, "ALLOW")) {
		case "CUSTOM":
			custom = append(custom, ap)
		case "DENY":
			deny = append(deny, ap)
		case "AUDIT":
			audit = append(audit, ap)
		default:
			allow = append(allow, ap)
		}
	}
	http := req.L7 != nil && !req.Opaque
	resp := "connection closed by the proxy (TCP)"
	if http {
		resp = httpResp
	}
	for _, ap := range custom {
		if i, ok := m.istioPolicyMatches(ap, req, false); ok {
			prov := "an external authorizer"
			if ap.Spec.Provider != nil {
				prov = "extension provider " + ap.Spec.Provider.Name
			}
			return Decision{Verdict: Unknown, Object: ap.Ref(), Rule: fmt.Sprintf("CUSTOM rules[%d]", i),
				Why: fmt.Sprintf("%s (CUSTOM, evaluated first) matches and delegates the decision to %s, which kpath cannot see", ap.Ref(), prov)}
		}
	}
	for _, ap := range deny {
		if i, ok := m.istioPolicyMatches(ap, req, true); ok {
			return Decision{Verdict: Deny, Object: ap.Ref(), Rule: fmt.Sprintf("DENY rules[%d]", i), Response: resp,
				Why: fmt.Sprintf("%s (DENY) matches the request; DENY is evaluated before ALLOW", ap.Ref())}
		}
	}
	audited := ""
	for _, ap := range audit {
		if _, ok := m.istioPolicyMatches(ap, req, false); ok {
			audited = ap.Ref()
		}
	}
	if len(allow) == 0 {
		d := Decision{Verdict: Allow, Object: target, Rule: "no ALLOW policy",
			Why: "no CUSTOM or DENY policy matches and no ALLOW policy applies to the workload: allowed"}
		if audited != "" {
			d.Audit, d.Why = true, d.Why+"; "+audited+" (AUDIT) flags it"
		}
		return d
	}
	for _, ap := range allow {
		if i, ok := m.istioPolicyMatches(ap, req, false); ok {
			d := Decision{Verdict: Allow, Object: ap.Ref(), Rule: fmt.Sprintf("ALLOW rules[%d]", i), Why: fmt.Sprintf("%s (ALLOW) matches the request", ap.Ref())}
			if audited != "" {
				d.Audit, d.Why = true, d.Why+"; "+audited+" (AUDIT) flags it"
			}
			return d
		}
	}
	var names []string
	for _, ap := range allow {
		names = append(names, ap.Ref())
	}
	why := fmt.Sprintf("ALLOW policies apply to the workload (%s) and none matches", strings.Join(names, ", "))
	if !req.Client.MTLS() {
		why += " (the client is plaintext: principals and namespaces need mTLS, so source identity rules cannot match)"
	}
	return Decision{Verdict: Deny, Object: names[0], Rule: "no ALLOW rule matched", Why: why, Response: resp}
}

// istioPolicyMatches returns the first matching rule. For TCP traffic, HTTP-only fields make an ALLOW rule never
// match and are dropped from a DENY rule (so it matches more), as Istio documents.
func (m *Model) istioPolicyMatches(ap *IstioAuthorizationPolicy, req Request, denyRule bool) (int, bool) {
	for i, r := range ap.Spec.Rules {
		if m.istioRuleMatches(r, req, denyRule) {
			return i, true
		}
	}
	return 0, false
}

func (m *Model) istioRuleMatches(r IstioRule, req Request, denyRule bool) bool {
	http := req.L7 != nil && !req.Opaque
	c := req.Client
	principal := strings.TrimPrefix(c.Identity, "spiffe://")
	if len(r.From) > 0 {
		any := false
		for _, f := range r.From {
			s := f.Source
			ok := true
			if len(s.RequestPrincipals)+len(s.NotRequestPrincipals) > 0 {
				if !denyRule {
					ok = false // JWT request principals: not in the question
				}
			}
			if len(s.Principals) > 0 {
				ok = ok && c.MTLS() && istioMatchAny(s.Principals, principal)
			}
			if len(s.NotPrincipals) > 0 {
				ok = ok && !(c.MTLS() && istioMatchAny(s.NotPrincipals, principal))
			}
			if len(s.Namespaces) > 0 {
				ok = ok && c.MTLS() && istioMatchAny(s.Namespaces, c.Namespace)
			}
			if len(s.NotNamespaces) > 0 {
				ok = ok && !(c.MTLS() && istioMatchAny(s.NotNamespaces, c.Namespace))
			}
			if blocks := append(append([]string{}, s.IPBlocks...), s.RemoteIPBlocks...); len(blocks) > 0 {
				ok = ok && ipIn(blocks, c.IP)
			}
			if blocks := append(append([]string{}, s.NotIPBlocks...), s.NotRemoteIPBlocks...); len(blocks) > 0 {
				ok = ok && !ipIn(blocks, c.IP)
			}
			if ok {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	if len(r.To) > 0 {
		any := false
		for _, t := range r.To {
			o := t.Operation
			ok := true
			httpOnly := len(o.Hosts)+len(o.NotHosts)+len(o.Methods)+len(o.NotMethods)+len(o.Paths)+len(o.NotPaths) > 0
			if httpOnly && !http {
				if !denyRule {
					ok = false
				}
			} else if httpOnly {
				path, method, host := whyOr(req.L7.Path, "/"), whyOr(req.L7.Method, "GET"), req.L7.Host
				if len(o.Methods) > 0 {
					ok = ok && istioMatchAny(o.Methods, method)
				}
				if len(o.NotMethods) > 0 {
					ok = ok && !istioMatchAny(o.NotMethods, method)
				}
				if len(o.Paths) > 0 {
					ok = ok && istioMatchAny(o.Paths, path)
				}
				if len(o.NotPaths) > 0 {
					ok = ok && !istioMatchAny(o.NotPaths, path)
				}
				if len(o.Hosts) > 0 {
					ok = ok && istioMatchAny(o.Hosts, host)
				}
				if len(o.NotHosts) > 0 {
					ok = ok && !istioMatchAny(o.NotHosts, host)
				}
			}
			if len(o.Ports) > 0 {
				ok = ok && istioMatchAny(o.Ports, strconv.Itoa(req.Port))
			}
			if len(o.NotPorts) > 0 {
				ok = ok && !istioMatchAny(o.NotPorts, strconv.Itoa(req.Port))
			}
			if ok {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	for _, w := range r.When {
		var v string
		known := true
		switch w.Key {
		case "source.ip", "remote.ip":
			v = c.IP.String()
			if len(w.Values) > 0 && !ipIn(w.Values, c.IP) {
				return false
			}
			if len(w.NotValues) > 0 && ipIn(w.NotValues, c.IP) {
				return false
			}
			continue
		case "source.namespace":
			v = c.Namespace
		case "source.principal":
			v = principal
		case "destination.port":
			v = strconv.Itoa(req.Port)
		default:
			known = false
		}
		if !known {
			if !denyRule {
				return false // a condition on the request kpath does not know (headers, JWT claims): not matched
			}
			continue
		}
		if len(w.Values) > 0 && !istioMatchAny(w.Values, v) {
			return false
		}
		if len(w.NotValues) > 0 && istioMatchAny(w.NotValues, v) {
			return false
		}
	}
	return true
}

// istioMatchAny: exact, "*", prefix "abc*" or suffix "*abc" matches.
func istioMatchAny(patterns []string, v string) bool {
	for _, p := range patterns {
		switch {
		case p == "*":
			if v != "" {
				return true
			}
		case strings.HasSuffix(p, "*") && strings.HasPrefix(v, strings.TrimSuffix(p, "*")):
			return true
		case strings.HasPrefix(p, "*") && strings.HasSuffix(v, strings.TrimPrefix(p, "*")):
			return true
		case strings.EqualFold(p, v):
			return true
		}
	}
	return false
}

func ipIn(blocks []string, ip netip.Addr) bool {
	for _, b := range blocks {
		if p, err := netip.ParsePrefix(b); err == nil && p.Contains(ip) {
			return true
		}
		if a, err := netip.ParseAddr(b); err == nil && a == ip {
			return true
		}
	}
	return false
}

// Egress is an Istio client sidecar's view of one outbound destination.
type Egress struct {
	// Known is true when the sidecar has a cluster for the Service (routes through it to its endpoints).
	Known bool
	// Mode is the outbound traffic policy for unknown destinations: ALLOW_ANY or REGISTRY_ONLY.
	Mode   string
	Object string // the Sidecar that decided, if any
	Rule   string
	Why    string
}

// IstioEgress decides whether the client sidecar of src knows Service ns/name:port (Sidecar egress hosts) and what
// it does otherwise (docs: istio.io Sidecar › egress, OutboundTrafficPolicy).
func (m *Model) IstioEgress(src *corev1.Pod, ns, name string, port int) Egress {
	var sc *Sidecar
	for _, s := range m.Res.Sidecars {
		if s.Namespace == src.Namespace && s.Spec.WorkloadSelector != nil && len(s.Spec.WorkloadSelector.Labels) > 0 && labelsSubset(s.Spec.WorkloadSelector.Labels, src.Labels) {
			sc = s
			break
		}
	}
	if sc == nil {
		for _, s := range m.Res.Sidecars {
			if s.Namespace == src.Namespace && s.Spec.WorkloadSelector == nil {
				sc = s
				break
			}
		}
	}
	if sc == nil {
		for _, s := range m.Res.Sidecars {
			if s.Namespace == m.IstioRootNamespace && s.Spec.WorkloadSelector == nil {
				sc = s
				break
			}
		}
	}
	mode := m.IstioOutboundPolicy
	if sc == nil {
		return Egress{Known: name != "", Mode: mode, Why: "no Sidecar resource limits the client: it knows every Service in the mesh"}
	}
	if sc.Spec.OutboundTrafficPolicy != nil && sc.Spec.OutboundTrafficPolicy.Mode != "" {
		mode = sc.Spec.OutboundTrafficPolicy.Mode
	}
	if len(sc.Spec.Egress) == 0 {
		return Egress{Known: name != "", Mode: mode, Object: sc.Ref(), Why: sc.Ref() + " has no egress section: every Service is known"}
	}
	if name == "" {
		return Egress{Mode: mode, Object: sc.Ref(), Why: "the destination is not a Service"}
	}
	dom := whyOr(m.snap.Profile.ClusterDomain, "cluster.local")
	fqdn := name + "." + ns + ".svc." + dom
	for i, e := range sc.Spec.Egress {
		if e.Port != nil && e.Port.Number != port {
			continue
		}
		for _, h := range e.Hosts {
			hns, hhost, ok := strings.Cut(h, "/")
			if !ok {
				continue
			}
			switch hns {
			case ".":
				hns = sc.Namespace
			case "~":
				continue
			}
			if hns != "*" && hns != ns {
				continue
			}
			if hhost == "*" || hhost == fqdn || (strings.HasPrefix(hhost, "*") && strings.HasSuffix(fqdn, strings.TrimPrefix(hhost, "*"))) {
				return Egress{Known: true, Mode: mode, Object: sc.Ref(), Rule: fmt.Sprintf("egress[%d].hosts %s", i, h),
					Why: fmt.Sprintf("%s egress host %s covers %s", sc.Ref(), h, fqdn)}
			}
		}
	}
	return Egress{Known: false, Mode: mode, Object: sc.Ref(), Rule: "spec.egress",
		Why: fmt.Sprintf("%s's egress hosts do not include %s: the sidecar has no cluster for it", sc.Ref(), fqdn)}
}

func labelsSubset(sel, l map[string]string) bool {
	for k, v := range sel {
		if l[k] != v {
			return false
		}
	}
	return true
}
