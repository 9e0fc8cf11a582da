package mesh

import (
	"net/netip"
	"testing"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/packet"
)

func meshSnapshot(t testing.TB, extra string) *Model {
	t.Helper()
	var srcs []cluster.Source
	for _, f := range demo.Files() {
		srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
	}
	for _, f := range DemoFiles() {
		srcs = append(srcs, cluster.BytesSource("mesh/demo/"+f.Name, f.Data))
	}
	if extra != "" {
		srcs = append(srcs, cluster.BytesSource("extra.yaml", []byte(extra)))
	}
	s, err := cluster.Load(srcs, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := New(s)
	if len(m.Res.Problems) > 0 {
		t.Fatalf("mesh resources do not decode: %v", m.Res.Problems)
	}
	return m
}

var (
	plain       = Client{IP: netip.MustParseAddr("10.244.1.8")}
	external    = Client{IP: netip.MustParseAddr("203.0.113.7")}
	webClient   = Client{IP: netip.MustParseAddr("10.244.1.200"), Identity: "web.linkerd-shop.serviceaccount.identity.linkerd.cluster.local", Namespace: "linkerd-shop", ServiceAccount: "web"}
	apiClient   = Client{IP: netip.MustParseAddr("10.244.2.200"), Identity: "api.linkerd-shop.serviceaccount.identity.linkerd.cluster.local", Namespace: "linkerd-shop", ServiceAccount: "api"}
	revClient   = Client{IP: netip.MustParseAddr("10.244.2.210"), Identity: "spiffe://cluster.local/ns/istio-shop/sa/bookinfo-reviews", Namespace: "istio-shop", ServiceAccount: "bookinfo-reviews"}
	ppageClient = Client{IP: netip.MustParseAddr("10.244.1.210"), Identity: "spiffe://cluster.local/ns/istio-shop/sa/bookinfo-productpage", Namespace: "istio-shop", ServiceAccount: "bookinfo-productpage"}
)

// Linkerd scenarios. Expected verdicts follow linkerd.io/2/reference/authorization-policy (sections named in each
// case) and linkerd.io/2/features/server-policy.
const linkerdExtra = `
apiVersion: v1
kind: Namespace
metadata: {name: l5d-policy, annotations: {linkerd.io/inject: enabled, config.linkerd.io/default-inbound-policy: all-authenticated}}
---
apiVersion: v1
kind: Pod
metadata: {name: authd, namespace: l5d-policy, labels: {app: authd}}
spec:
  nodeName: kpath-worker
  containers: [{name: authd, image: x, ports: [{name: http, containerPort: 8080}, {name: admin, containerPort: 9000}, {name: metrics, containerPort: 9100}]}]
status: {phase: Running, podIP: 10.244.1.230, podIPs: [{ip: 10.244.1.230}]}
---
apiVersion: v1
kind: Pod
metadata: {name: cluster-only, namespace: l5d-policy, labels: {app: cluster-only}, annotations: {config.linkerd.io/default-inbound-policy: cluster-unauthenticated}}
spec:
  nodeName: kpath-worker
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.244.1.231, podIPs: [{ip: 10.244.1.231}]}
---
apiVersion: v1
kind: Pod
metadata: {name: closed, namespace: l5d-policy, labels: {app: closed}, annotations: {config.linkerd.io/default-inbound-policy: deny}}
spec:
  nodeName: kpath-worker
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.244.1.232, podIPs: [{ip: 10.244.1.232}]}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: authd-admin, namespace: l5d-policy}
spec: {podSelector: {matchLabels: {app: authd}}, port: admin, accessPolicy: audit}
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: authd-metrics, namespace: l5d-policy}
spec: {podSelector: {matchLabels: {app: authd}}, port: metrics}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: nodes, namespace: l5d-policy}
spec: {networks: [{cidr: 172.18.0.0/16}, {cidr: 10.244.0.0/16, except: [10.244.3.0/24]}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: metrics-from-nodes, namespace: l5d-policy}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: authd-metrics}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: nodes}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: authd-http, namespace: l5d-policy}
spec: {podSelector: {matchLabels: {app: authd}}, port: http, proxyProtocol: HTTP/1}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: authd-public, namespace: l5d-policy}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: authd-http}]
  rules: [{matches: [{path: {type: PathPrefix, value: /public}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: public-for-all, namespace: l5d-policy}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: authd-public}
  requiredAuthenticationRefs: []
`

func TestLinkerdAuthorization(t *testing.T) {
	m := meshSnapshot(t, linkerdExtra)
	pod := func(ns, name string) string { return ns + "/" + name }
	cases := []struct {
		name   string
		pod    string
		port   int
		client Client
		l7     *packet.L7
		want   string
	}{
		{"Default policies: all-unauthenticated (the cluster default) lets a plaintext client reach a port no Server selects",
			pod("linkerd-shop", "web-7d4b9c6f5-abcde"), 8080, plain, nil, Allow},
		{"Default policies: all-authenticated (namespace annotation) refuses a plaintext client on an unselected port",
			pod("l5d-policy", "authd"), 7777, plain, nil, Deny},
		{"Default policies: all-authenticated admits a meshed client",
			pod("l5d-policy", "authd"), 7777, webClient, nil, Allow},
		{"Default policies: cluster-unauthenticated (pod annotation) admits a plaintext client from the pod network",
			pod("l5d-policy", "cluster-only"), 8080, plain, nil, Allow},
		{"Default policies: cluster-unauthenticated refuses a client outside clusterNetworks",
			pod("l5d-policy", "cluster-only"), 8080, external, nil, Deny},
		{"Default policies: deny refuses even a meshed client",
			pod("l5d-policy", "closed"), 8080, webClient, nil, Deny},
		{"Server: once a Server selects a port, traffic no authorization allows is denied (accessPolicy defaults to deny)",
			pod("linkerd-shop", "api-6c8f7d9b4-fghij"), 8080, apiClient, nil, Deny},
		{"Server accessPolicy audit: unauthorized traffic is allowed and flagged",
			pod("l5d-policy", "authd"), 9000, plain, nil, Allow},
		{"AuthorizationPolicy + MeshTLSAuthentication (identityRefs ServiceAccount): web's identity is authorized",
			pod("linkerd-shop", "api-6c8f7d9b4-fghij"), 8080, webClient, nil, Allow},
		{"AuthorizationPolicy + MeshTLSAuthentication: a plaintext client cannot satisfy an mTLS authentication",
			pod("linkerd-shop", "api-6c8f7d9b4-fghij"), 8080, plain, nil, Deny},
		{"NetworkAuthentication: a client inside the networks is authorized",
			pod("l5d-policy", "authd"), 9100, Client{IP: netip.MustParseAddr("172.18.0.3")}, nil, Allow},
		{"NetworkAuthentication: an address in the except list is not",
			pod("l5d-policy", "authd"), 9100, Client{IP: netip.MustParseAddr("10.244.3.9")}, nil, Deny},
		{"ServerAuthorization meshTLS.serviceAccounts: api's ServiceAccount may reach db",
			pod("linkerd-shop", "db-0"), 5432, apiClient, nil, Allow},
		{"ServerAuthorization meshTLS.serviceAccounts: web's ServiceAccount may not",
			pod("linkerd-shop", "db-0"), 5432, webClient, nil, Deny},
		{"HTTPRoute-targeted AuthorizationPolicy: a request on the route is authorized for every client",
			pod("l5d-policy", "authd"), 8080, plain, &packet.L7{Method: "GET", Path: "/public/x"}, Allow},
		{"HTTPRoute: a request matching no route attached to the Server gets 404",
			pod("l5d-policy", "authd"), 8080, plain, &packet.L7{Method: "GET", Path: "/private"}, Deny},
		{"HTTPRoute: without the HTTP request, a route-level authorization cannot be decided",
			pod("l5d-policy", "authd"), 8080, plain, nil, Unknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, name := splitRef(tc.pod)
			p := m.Snapshot().Pod(ns, name)
			if p == nil {
				t.Fatalf("no pod %s", tc.pod)
			}
			if !m.Member(p).Meshed() {
				t.Fatalf("pod %s is not meshed: %+v", tc.pod, m.Member(p))
			}
			d := m.LinkerdInbound(p, Request{Client: tc.client, Port: tc.port, L7: tc.l7})
			if d.Verdict != tc.want {
				t.Errorf("verdict %s (%s: %s), want %s", d.Verdict, d.Object, d.Why, tc.want)
			}
			if d.Why == "" || d.Object == "" {
				t.Errorf("decision without object or why: %+v", d)
			}
		})
	}
}

func splitRef(s string) (string, string) {
	for i := range s {
		if s[i] == '/' {
			return s[:i], s[i+1:]
		}
	}
	return "", s
}

// Istio scenarios. Expected verdicts follow istio.io/latest/docs/reference/config/security/peer_authentication/
// and .../authorization-policy/ (sections named in each case).
const istioExtra = `
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: ratings-metrics, namespace: istio-shop}
spec:
  selector: {matchLabels: {app: ratings}}
  mtls: {mode: UNSET}
  portLevelMtls: {"9100": {mode: DISABLE}}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-open, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: open, namespace: istio-open, labels: {app: open}}
spec:
  nodeName: kpath-worker
  containers: [{name: open, image: x, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.244.1.240, podIPs: [{ip: 10.244.1.240}]}
---
apiVersion: v1
kind: Pod
metadata: {name: locked, namespace: istio-open, labels: {app: locked}}
spec:
  nodeName: kpath-worker
  containers: [{name: locked, image: x, ports: [{name: http, containerPort: 8080}]}]
status: {phase: Running, podIP: 10.244.1.241, podIPs: [{ip: 10.244.1.241}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-nothing, namespace: istio-open}
spec: {selector: {matchLabels: {app: locked}}, action: ALLOW}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ext, namespace: istio-open}
spec:
  selector: {matchLabels: {app: open}}
  action: CUSTOM
  provider: {name: opa}
  rules: [{to: [{operation: {paths: [/ext*]}}]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-all, namespace: istio-open}
spec: {selector: {matchLabels: {app: open}}, action: AUDIT, rules: [{}]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: get-only, namespace: istio-open}
spec:
  selector: {matchLabels: {app: open}}
  action: ALLOW
  rules: [{to: [{operation: {methods: [GET]}}]}]
`

func TestIstioPeerAuthentication(t *testing.T) {
	m := meshSnapshot(t, istioExtra)
	s := m.Snapshot()
	cases := []struct {
		name, ns, pod string
		port          int
		want, obj     string
	}{
		{"PeerAuthentication: a namespace-wide policy beats the mesh-wide one", "istio-shop", "reviews-v1-545db77b95-2ps7q", 9080, "STRICT", "PeerAuthentication istio-shop/default"},
		{"PeerAuthentication: a workload policy's port-level mode applies to that port", "istio-shop", "ratings-v1-85cc46b6d4-6tqv7", 9100, "DISABLE", "PeerAuthentication istio-shop/ratings-metrics"},
		{"PeerAuthentication: UNSET inherits from the namespace on other ports", "istio-shop", "ratings-v1-85cc46b6d4-6tqv7", 9080, "STRICT", "PeerAuthentication istio-shop/default"},
		{"PeerAuthentication: the root namespace's policy is mesh-wide", "istio-open", "open", 8080, "STRICT", "PeerAuthentication istio-system/default"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pm := m.IstioPeerMode(s.Pod(tc.ns, tc.pod), tc.port)
			if pm.Mode != tc.want || pm.Object != tc.obj {
				t.Errorf("got %s from %q, want %s from %q", pm.Mode, pm.Object, tc.want, tc.obj)
			}
		})
	}
	t.Run("PeerAuthentication: without any policy the mode is PERMISSIVE", func(t *testing.T) {
		m := meshSnapshot(t, "")
		if pm := m.IstioPeerMode(m.Snapshot().Pod("shop", "cart-lkv2s5jbq5-hcxf4"), 8080); pm.Mode != "PERMISSIVE" {
			t.Errorf("got %s", pm.Mode)
		}
	})
}

func TestIstioAuthorization(t *testing.T) {
	m := meshSnapshot(t, istioExtra)
	s := m.Snapshot()
	get := &packet.L7{Method: "GET", Path: "/reviews/1", Host: "reviews"}
	cases := []struct {
		name, ns, pod string
		client        Client
		l7            *packet.L7
		want          string
		audit         bool
	}{
		{"ALLOW: a principal listed in the ALLOW rule is allowed", "istio-shop", "ratings-v1-85cc46b6d4-6tqv7", revClient, nil, Allow, false},
		{"ALLOW: when ALLOW policies apply and none matches, the request is denied", "istio-shop", "ratings-v1-85cc46b6d4-6tqv7", ppageClient, nil, Deny, false},
		{"ALLOW: a plaintext client has no principal, so a principals rule cannot match", "istio-shop", "ratings-v1-85cc46b6d4-6tqv7", plain, nil, Deny, false},
		{"DENY: a matching DENY policy denies before any ALLOW is looked at", "istio-shop", "reviews-v1-545db77b95-2ps7q", ppageClient, &packet.L7{Method: "GET", Path: "/admin/x"}, Deny, false},
		{"DENY: a DENY rule's HTTP-only fields are ignored for TCP, so it matches more (plain TCP is denied)", "istio-shop", "reviews-v1-545db77b95-2ps7q", ppageClient, nil, Deny, false},
		{"no ALLOW policy for the workload: allowed when no DENY matches", "istio-shop", "reviews-v1-545db77b95-2ps7q", ppageClient, get, Allow, false},
		{"ALLOW with no rules (allow-nothing) denies every request", "istio-open", "locked", ppageClient, get, Deny, false},
		{"CUSTOM is evaluated first: a matching CUSTOM policy leaves the verdict to the external authorizer", "istio-open", "open", ppageClient, &packet.L7{Method: "GET", Path: "/ext/a"}, Unknown, false},
		{"AUDIT does not change the verdict but flags the request", "istio-open", "open", ppageClient, get, Allow, true},
		{"ALLOW with an HTTP-only field never matches TCP traffic (deny)", "istio-open", "open", ppageClient, nil, Deny, false},
		{"ALLOW methods: a POST does not match a GET-only rule", "istio-open", "open", ppageClient, &packet.L7{Method: "POST", Path: "/"}, Deny, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := s.Pod(tc.ns, tc.pod)
			if p == nil {
				t.Fatalf("no pod %s/%s", tc.ns, tc.pod)
			}
			d := m.IstioInbound(p, Request{Client: tc.client, Port: 9080, L7: tc.l7})
			if d.Verdict != tc.want || d.Audit != tc.audit {
				t.Errorf("verdict %s audit %v (%s: %s), want %s audit %v", d.Verdict, d.Audit, d.Object, d.Why, tc.want, tc.audit)
			}
		})
	}
}

func TestIstioSidecarEgress(t *testing.T) {
	m := meshSnapshot(t, `
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: istio-open}
spec:
  egress: [{hosts: [./*]}]
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
---
apiVersion: v1
kind: Namespace
metadata: {name: istio-open, labels: {istio-injection: enabled}}
---
apiVersion: v1
kind: Pod
metadata: {name: open, namespace: istio-open, labels: {app: open}}
spec:
  nodeName: kpath-worker
  containers: [{name: open, image: x}]
status: {phase: Running, podIP: 10.244.1.240, podIPs: [{ip: 10.244.1.240}]}
`)
	s := m.Snapshot()
	pp := s.Pod("istio-shop", "productpage-v1-6b746f74dc-9stvs")
	open := s.Pod("istio-open", "open")
	cases := []struct {
		name  string
		eg    Egress
		known bool
		mode  string
	}{
		{"Sidecar egress ./*: a Service in the sidecar's namespace is known", m.IstioEgress(pp, "istio-shop", "reviews", 9080), true, "ALLOW_ANY"},
		{"Sidecar egress ./*: a Service in another namespace is unknown (ALLOW_ANY: passthrough)", m.IstioEgress(pp, "linkerd-shop", "api", 8080), false, "ALLOW_ANY"},
		{"Sidecar outboundTrafficPolicy REGISTRY_ONLY: an unknown Service goes to the BlackHoleCluster", m.IstioEgress(open, "shop", "cart", 8080), false, "REGISTRY_ONLY"},
		{"no Sidecar resource: every Service is known", m.IstioEgress(s.Pod("istio-shop", "reviews-v1-545db77b95-2ps7q"), "shop", "cart", 8080), true, "ALLOW_ANY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.eg.Known != tc.known || tc.eg.Mode != tc.mode {
				t.Errorf("got known=%v mode=%s (%s), want known=%v mode=%s", tc.eg.Known, tc.eg.Mode, tc.eg.Why, tc.known, tc.mode)
			}
		})
	}
}

func TestIdentitiesAndMembership(t *testing.T) {
	m := meshSnapshot(t, "")
	s := m.Snapshot()
	cases := []struct {
		name, ns, pod, mesh, identity string
	}{
		{"an injected Linkerd pod gets SA.NS.serviceaccount.identity.linkerd.TRUST_DOMAIN", "linkerd-shop", "web-7d4b9c6f5-abcde", "linkerd", "web.linkerd-shop.serviceaccount.identity.linkerd.cluster.local"},
		{"an injected Istio pod gets spiffe://TRUST_DOMAIN/ns/NS/sa/SA", "istio-shop", "reviews-v1-545db77b95-2ps7q", "istio-sidecar", "spiffe://cluster.local/ns/istio-shop/sa/bookinfo-reviews"},
		{"a pod in a namespace without an opt-in is not meshed", "shop", "cart-lkv2s5jbq5-hcxf4", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mb := m.Member(s.Pod(tc.ns, tc.pod))
			if string(mb.Mesh) != tc.mesh || mb.Identity != tc.identity {
				t.Errorf("got %s %q (%s), want %s %q", mb.Mesh, mb.Identity, mb.Why, tc.mesh, tc.identity)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	m := meshSnapshot(t, "")
	first := func([]int) int { return 0 }
	cases := []struct {
		name             string
		mesh             cluster.Mesh
		ns, svc, path    string
		port             int
		wantObj, backend string
		noMatch          bool
	}{
		{"GAMMA HTTPRoute with a Service parentRef: PathPrefix /api matches and splits by weight", cluster.MeshLinkerd, "linkerd-shop", "api", "/api/items", 8080, "HTTPRoute linkerd-shop/api-split", "api", false},
		{"GAMMA HTTPRoute: a rule without matches catches the rest", cluster.MeshLinkerd, "linkerd-shop", "api", "/other", 8080, "HTTPRoute linkerd-shop/api-split", "api", false},
		{"VirtualService: uri prefix /reviews routes to subset v1 first", cluster.MeshIstioSidecar, "istio-shop", "reviews", "/reviews/1", 9080, "VirtualService istio-shop/reviews", "reviews", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rt := m.RouteOutbound(tc.mesh, "x", tc.ns, tc.svc, tc.port, &packet.L7{Method: "GET", Path: tc.path}, first)
			if rt == nil || rt.Object != tc.wantObj || rt.NoMatch != tc.noMatch || rt.Backends[rt.Picked].Service != tc.backend {
				t.Fatalf("route %+v", rt)
			}
		})
	}
	t.Run("VirtualService subset v2 carries the DestinationRule's labels", func(t *testing.T) {
		rt := m.RouteOutbound(cluster.MeshIstioSidecar, "x", "istio-shop", "reviews", 9080, &packet.L7{Method: "GET", Path: "/reviews/1"}, func([]int) int { return 1 })
		if rt.Backends[1].SubsetLabels["version"] != "v2" || rt.Timeout != "3s (http[].timeout)" {
			t.Errorf("route %+v", rt)
		}
	})
}
