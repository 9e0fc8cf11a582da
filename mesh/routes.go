package mesh

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/packet"
)

// Backend is one weighted destination of an L7 route.
type Backend struct {
	Namespace, Service string
	Port               int
	Subset             string            // Istio DestinationRule subset
	SubsetLabels       map[string]string // the subset's pod labels
	Weight             int
}

// Route is the L7 routing decision of a client-side proxy for one HTTP request.
type Route struct {
	Object   string // "HTTPRoute ns/name" | "VirtualService ns/name" | "" (default route)
	Rule     string // which rule matched and how
	Backends []Backend
	Picked   int    // index into Backends
	Timeout  string // the request timeout that applies ("none" when unset)
	Retries  string // the retry policy that applies
	Why      string
	// NoMatch is set when routes exist for the Service but none matches: the proxy answers 404.
	NoMatch bool
}

// matchHTTPRoute returns the first rule of r matching the request, with a description.
func matchHTTPRoute(r *HTTPRoute, l7 *packet.L7) (int, bool) {
	i, _, ok := bestRule([]*HTTPRoute{r}, l7)
	if !ok {
		return 0, false
	}
	return i.rule, true
}

type ruleRef struct {
	route *HTTPRoute
	rule  int
}

// bestRule applies the Gateway API precedence among matching rules: exact path, then the longest prefix, then a
// method match, then the oldest route, then namespace/name.
func bestRule(routes []*HTTPRoute, l7 *packet.L7) (ruleRef, string, bool) {
	type cand struct {
		ref           ruleRef
		exact, method bool
		prefix        int
		desc          string
	}
	var cs []cand
	path, method := "/", "GET"
	if l7 != nil {
		path, method = whyOr(l7.Path, "/"), whyOr(l7.Method, "GET")
	}
	for _, r := range routes {
		for ri, rule := range r.Spec.Rules {
			if len(rule.Matches) == 0 {
				cs = append(cs, cand{ref: ruleRef{r, ri}, prefix: 1, desc: fmt.Sprintf("rules[%d] (no matches: PathPrefix /)", ri)})
				continue
			}
			for mi, mt := range rule.Matches {
				c := cand{ref: ruleRef{r, ri}}
				ok := true
				desc := []string{}
				if mt.Path != nil {
					t := whyOr(mt.Path.Type, "PathPrefix")
					v := whyOr(mt.Path.Value, "/")
					switch t {
					case "Exact":
						ok, c.exact = path == v, true
					case "PathPrefix":
						ok = pathPrefix(path, v)
						c.prefix = len(v)
					case "RegularExpression":
						re, err := regexp.Compile("^(?:" + v + ")$")
						ok = err == nil && re.MatchString(path)
					}
					desc = append(desc, t+" "+v)
				} else {
					c.prefix = 1
					desc = append(desc, "PathPrefix /")
				}
				if mt.Method != nil {
					ok = ok && strings.EqualFold(*mt.Method, method)
					c.method = true
					desc = append(desc, "method "+*mt.Method)
				}
				if len(mt.Headers) > 0 || len(mt.Query) > 0 {
					ok = false // the question carries no headers or query parameters
				}
				if ok {
					c.desc = fmt.Sprintf("rules[%d].matches[%d] (%s)", ri, mi, strings.Join(desc, ", "))
					cs = append(cs, c)
					break
				}
			}
		}
	}
	if len(cs) == 0 {
		return ruleRef{}, "", false
	}
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.exact != b.exact {
			return a.exact
		}
		if a.prefix != b.prefix {
			return a.prefix > b.prefix
		}
		if a.method != b.method {
			return a.method
		}
		return a.ref.route.CreationTimestamp.Before(&b.ref.route.CreationTimestamp)
	})
	return cs[0].ref, cs[0].desc, true
}

func pathPrefix(path, prefix string) bool {
	if prefix == "/" {
		return true
	}
	p := strings.TrimSuffix(prefix, "/")
	return path == p || strings.HasPrefix(path, p+"/")
}

// RouteOutbound decides the L7 route the client proxy of mesh applies to a request for Service ns/name:port. It
// returns nil when no route resource targets the Service (the proxy then balances over the Service's own
// endpoints). clientNS selects Linkerd consumer routes. pick chooses an index among n weighted backends.
func (m *Model) RouteOutbound(mesh cluster.Mesh, clientNS, ns, name string, port int, l7 *packet.L7, pick func(weights []int) int) *Route {
	// GAMMA: HTTPRoutes whose parentRef is the Service (honoured by Linkerd and Istio).
	var producer, consumer []*HTTPRoute
	for _, r := range m.Res.LinkerdHTTPRoutes {
		for _, pr := range r.Spec.ParentRefs {
			kind, group := "", ""
			if pr.Kind != nil {
				kind = *pr.Kind
			}
			if pr.Group != nil {
				group = *pr.Group
			}
			pns := r.Namespace
			if pr.Namespace != nil {
				pns = *pr.Namespace
			}
			if kind != "Service" || (group != "" && group != "core") || pr.Name != name || pns != ns {
				continue
			}
			if pr.Port != nil && int(*pr.Port) != port {
				continue
			}
			if r.Namespace == clientNS && clientNS != ns {
				consumer = append(consumer, r)
			} else if r.Namespace == ns {
				producer = append(producer, r)
			}
		}
	}
	routes := producer
	scope := "producer route (in the Service's namespace)"
	if len(consumer) > 0 {
		routes, scope = consumer, "consumer route (in the client's namespace, which takes precedence)"
	}
	if len(routes) > 0 {
		ref, desc, ok := bestRule(routes, l7)
		if !ok {
			return &Route{Object: routes[0].Ref(), NoMatch: true,
				Why: fmt.Sprintf("%d HTTPRoute(s) attach to Service %s/%s but none matches %s %s: the proxy answers 404", len(routes), ns, name, l7.Method, l7.Path)}
		}
		rule := ref.route.Spec.Rules[ref.rule]
		rt := &Route{Object: ref.route.Ref(), Rule: desc}
		for _, b := range rule.BackendRefs {
			w := 1
			if b.Weight != nil {
				w = int(*b.Weight)
			}
			bns := ref.route.Namespace
			if b.Namespace != nil {
				bns = *b.Namespace
			}
			bp := port
			if b.Port != nil {
				bp = int(*b.Port)
			}
			rt.Backends = append(rt.Backends, Backend{Namespace: bns, Service: b.Name, Port: bp, Weight: w})
		}
		if len(rt.Backends) == 0 {
			rt.Backends = []Backend{{Namespace: ns, Service: name, Port: port, Weight: 1}}
		}
		rt.Picked = pickWeighted(rt.Backends, pick)
		rt.Timeout, rt.Retries = "none", "none"
		if mesh == cluster.MeshIstioSidecar {
			rt.Retries = istioDefaultRetries
		}
		if rule.Timeouts != nil && rule.Timeouts.Request != "" {
			rt.Timeout = rule.Timeouts.Request + " (rules[].timeouts.request)"
		}
		if rule.Retry != nil && rule.Retry.Attempts != nil {
			rt.Retries = fmt.Sprintf("%d attempts (rules[].retry)", *rule.Retry.Attempts)
		}
		if mesh == cluster.MeshLinkerd {
			rt.Timeout, rt.Retries = m.linkerdAnnotations(ref.route, ns, name, rt.Timeout, rt.Retries)
		}
		rt.Why = fmt.Sprintf("%s is a %s for Service %s/%s; %s", ref.route.Ref(), scope, ns, name, desc)
		return rt
	}
	if mesh == cluster.MeshIstioSidecar {
		return m.virtualServiceRoute(clientNS, ns, name, port, l7, pick)
	}
	if mesh == cluster.MeshLinkerd {
		t, r := m.linkerdAnnotations(nil, ns, name, "none", "none")
		if t != "none" || r != "none" {
			return &Route{Backends: []Backend{{Namespace: ns, Service: name, Port: port, Weight: 1}}, Timeout: t, Retries: r,
				Why: "no HTTPRoute targets the Service: the default route with the Service's timeout/retry annotations"}
		}
	}
	return nil
}

const istioDefaultRetries = "2 attempts on connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes (Istio's default retry policy)"

func (m *Model) linkerdAnnotations(r *HTTPRoute, ns, name, timeout, retries string) (string, string) {
	var sources []map[string]string
	var where []string
	if r != nil {
		sources, where = append(sources, r.Annotations), append(where, r.Ref())
	}
	if svc := m.snap.Service(ns, name); svc != nil {
		sources, where = append(sources, svc.Annotations), append(where, "Service "+ns+"/"+name)
	}
	for i, a := range sources {
		if v := a["timeout.linkerd.io/request"]; v != "" && timeout == "none" {
			timeout = v + " (annotation timeout.linkerd.io/request on " + where[i] + ")"
		}
		if v := a["retry.linkerd.io/http"]; v != "" && retries == "none" {
			lim := whyOr(a["retry.linkerd.io/limit"], "1")
			retries = fmt.Sprintf("on %s, limit %s (annotations retry.linkerd.io/http, retry.linkerd.io/limit on %s)", v, lim, where[i])
		}
	}
	return timeout, retries
}

func pickWeighted(bs []Backend, pick func([]int) int) int {
	if len(bs) <= 1 || pick == nil {
		return 0
	}
	ws := make([]int, len(bs))
	for i, b := range bs {
		ws[i] = b.Weight
	}
	return pick(ws)
}

// hostMatches reports whether an Istio host (short name, FQDN, wildcard) names Service ns/name from namespace from.
func (m *Model) hostMatches(host, from, ns, name string) bool {
	dom := whyOr(m.snap.Profile.ClusterDomain, "cluster.local")
	fqdn := name + "." + ns + ".svc." + dom
	if host == "*" {
		return true
	}
	if s, ok := strings.CutPrefix(host, "*"); ok {
		return strings.HasSuffix(fqdn, s)
	}
	if !strings.Contains(host, ".") {
		return host == name && from == ns
	}
	return host == fqdn || host == name+"."+ns || host == name+"."+ns+".svc"
}

func (m *Model) resolveHost(host, from string) (ns, name string) {
	dom := whyOr(m.snap.Profile.ClusterDomain, "cluster.local")
	h := strings.TrimSuffix(strings.TrimSuffix(host, "."+dom), ".svc")
	parts := strings.Split(h, ".")
	if len(parts) == 1 {
		return from, parts[0]
	}
	return parts[1], parts[0]
}

func (m *Model) virtualServiceRoute(clientNS, ns, name string, port int, l7 *packet.L7, pick func([]int) int) *Route {
	path, method := "/", "GET"
	if l7 != nil {
		path, method = whyOr(l7.Path, "/"), whyOr(l7.Method, "GET")
	}
	for _, vs := range m.Res.VirtualServices {
		meshGW := len(vs.Spec.Gateways) == 0
		for _, g := range vs.Spec.Gateways {
			if g == "mesh" {
				meshGW = true
			}
		}
		if !meshGW {
			continue
		}
		hit := false
		for _, h := range vs.Spec.Hosts {
			if m.hostMatches(h, vs.Namespace, ns, name) {
				hit = true
			}
		}
		if !hit {
			continue
		}
		for hi, h := range vs.Spec.HTTP {
			desc := ""
			ok := len(h.Match) == 0
			if ok {
				desc = fmt.Sprintf("http[%d] (no match: every request)", hi)
			}
			for mi, mt := range h.Match {
				good := true
				var d []string
				if mt.URI != nil {
					good = good && stringMatch(*mt.URI, path)
					d = append(d, "uri "+smDesc(*mt.URI))
				}
				if mt.Method != nil {
					good = good && stringMatch(*mt.Method, method)
					d = append(d, "method "+smDesc(*mt.Method))
				}
				if mt.Port != 0 {
					good = good && mt.Port == port
					d = append(d, fmt.Sprintf("port %d", mt.Port))
				}
				if len(mt.Header) > 0 {
					good = false
				}
				if good {
					ok, desc = true, fmt.Sprintf("http[%d].match[%d] (%s)", hi, mi, strings.Join(d, ", "))
					break
				}
			}
			if !ok {
				continue
			}
			rt := &Route{Object: vs.Ref(), Rule: desc, Timeout: "none", Retries: istioDefaultRetries}
			for _, r := range h.Route {
				bns, bname := m.resolveHost(r.Destination.Host, vs.Namespace)
				bp := port
				if r.Destination.Port != nil {
					bp = r.Destination.Port.Number
				}
				b := Backend{Namespace: bns, Service: bname, Port: bp, Subset: r.Destination.Subset, Weight: r.Weight}
				if b.Weight == 0 && len(h.Route) == 1 {
					b.Weight = 100
				}
				if b.Subset != "" {
					b.SubsetLabels = m.subsetLabels(bns, bname, b.Subset)
				}
				rt.Backends = append(rt.Backends, b)
			}
			if len(rt.Backends) == 0 {
				rt.Backends = []Backend{{Namespace: ns, Service: name, Port: port, Weight: 100}}
			}
			rt.Picked = pickWeighted(rt.Backends, pick)
			if h.Timeout != "" {
				rt.Timeout = h.Timeout + " (http[].timeout)"
			}
			if h.Retries != nil {
				rt.Retries = fmt.Sprintf("%d attempts", h.Retries.Attempts)
				if h.Retries.PerTryTimeout != "" {
					rt.Retries += ", perTryTimeout " + h.Retries.PerTryTimeout
				}
				if h.Retries.RetryOn != "" {
					rt.Retries += ", retryOn " + h.Retries.RetryOn
				}
				rt.Retries += " (http[].retries)"
			}
			if len(h.Fault) > 0 {
				rt.Why = "fault injection is configured on this route and not modelled; "
			}
			rt.Why += fmt.Sprintf("%s routes host %s.%s: %s", vs.Ref(), name, ns, desc)
			return rt
		}
		return &Route{Object: vs.Ref(), NoMatch: true,
			Why: fmt.Sprintf("%s holds the routes for %s.%s and none matches %s %s: Envoy answers 404 (no route)", vs.Ref(), name, ns, method, path)}
	}
	return nil
}

func (m *Model) subsetLabels(ns, name, subset string) map[string]string {
	for _, dr := range m.Res.DestinationRules {
		dns, dname := m.resolveHost(dr.Spec.Host, dr.Namespace)
		if dns != ns || dname != name {
			continue
		}
		for _, s := range dr.Spec.Subsets {
			if s.Name == subset {
				return s.Labels
			}
		}
	}
	return nil
}

func stringMatch(sm StringMatch, v string) bool {
	switch {
	case sm.Exact != "":
		return v == sm.Exact
	case sm.Prefix != "":
		return strings.HasPrefix(v, sm.Prefix)
	case sm.Regex != "":
		re, err := regexp.Compile("^(?:" + sm.Regex + ")$")
		return err == nil && re.MatchString(v)
	}
	return true
}

func smDesc(sm StringMatch) string {
	switch {
	case sm.Exact != "":
		return "exact " + sm.Exact
	case sm.Prefix != "":
		return "prefix " + sm.Prefix
	case sm.Regex != "":
		return "regex " + sm.Regex
	}
	return "any"
}
