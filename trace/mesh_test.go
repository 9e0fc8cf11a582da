package trace_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/trace"
)

func meshDemo(t testing.TB) *trace.Engine {
	t.Helper()
	var extra []string
	for _, f := range mesh.DemoFiles() {
		extra = append(extra, string(f.Data))
	}
	return engine(t, demoSnapshot(t, extra...))
}

func TestMeshJourneys(t *testing.T) {
	e := meshDemo(t)
	cases := []struct {
		name, from, to string
		verdict        trace.Verdict
		golden         string
	}{
		{"a Linkerd-meshed pod's request is redirected to its proxy, routed by an HTTPRoute, sent over mTLS to a pod the proxy picked, and authorized by identity",
			"linkerd-shop/web", "http://api.linkerd-shop:8080/api/items", trace.Delivered, "mesh-linkerd-route"},
		{"a plaintext client is refused by a Linkerd Server that only authorizes web's identity",
			"tools/netshoot", "api.linkerd-shop:8080", trace.Rejected, "mesh-linkerd-plaintext-refused"},
		{"an opaque port is proxied as TCP and authorized by a ServerAuthorization",
			"pod/linkerd-shop/api-6c8f7d9b4-fghij", "db.linkerd-shop:5432", trace.Delivered, "mesh-linkerd-opaque"},
		{"an Istio VirtualService splits by subset and the destination's STRICT PeerAuthentication accepts the mTLS connection",
			"istio-shop/productpage", "http://reviews.istio-shop:9080/reviews/1", trace.Delivered, "mesh-istio-route"},
		{"a DENY AuthorizationPolicy refuses /admin before any ALLOW is considered",
			"istio-shop/productpage", "http://reviews.istio-shop:9080/admin", trace.Rejected, "mesh-istio-deny"},
		{"a non-meshed client is refused by a STRICT PeerAuthentication",
			"tools/netshoot", "productpage.istio-shop:9080", trace.Rejected, "mesh-istio-strict"},
		{"a Sidecar that does not list the destination sends it through the PassthroughCluster in plaintext, and the Linkerd Server refuses it",
			"istio-shop/productpage", "api.linkerd-shop:8080", trace.Rejected, "mesh-istio-passthrough"},
		{"a meshed client reaches a non-meshed server in plaintext",
			"linkerd-shop/web", "cart.shop:8080", trace.Dropped, "mesh-linkerd-to-unmeshed"},
		// Istio ambient: istio.io/latest/docs/ambient/architecture/traffic-redirection/ (in-pod redirect to ztunnel
		// 15001/15006/15008), architecture/hbone/ (HTTP CONNECT over mTLS on 15008), usage/l4-policy/ (ztunnel
		// enforces selector-bound policies at L4), usage/waypoint/ + usage/l7-features/ (istio.io/use-waypoint on the
		// Service; targetRefs policies and GAMMA routes at the waypoint).
		{"ambient traffic-redirection and HBONE: ztunnel tunnels sleep to httpbin and the destination ztunnel's L4 policy allows sleep's principal",
			"ambient-shop/sleep", "httpbin.ambient-shop:8000", trace.Delivered, "mesh-ambient-l4-allowed"},
		{"ambient l4-policy: the destination ztunnel refuses a principal the ALLOW policy does not list",
			"ambient-shop/curl", "httpbin.ambient-shop:8000", trace.Rejected, "mesh-ambient-l4-denied"},
		{"ambient waypoint and l7-features: a Service with istio.io/use-waypoint goes through the waypoint, which authorizes the method and applies the HTTPRoute",
			"ambient-shop/sleep", "http://ledger.ambient-shop:8080/api/entries", trace.Delivered, "mesh-ambient-waypoint-route"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, err := e.Trace(tc.from, tc.to, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkJourney(t, j, tc.verdict, tc.golden)
		})
	}
}

func TestMeshOutboundReplacesKubeProxyDNAT(t *testing.T) {
	e := meshDemo(t)
	j, err := e.Trace("linkerd-shop/web", "api.linkerd-shop:8080", trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var redirect, proxyPick, kpNone, loopGuard bool
	for _, h := range j.Hops {
		for _, s := range h.Steps {
			switch {
			case s.Layer == trace.LayerKubeProxy && s.Action == trace.ActionDNAT:
				t.Errorf("kube-proxy DNAT on a meshed path: %+v", s)
			case s.Layer == trace.LayerKubeProxy && s.Action == trace.ActionNone:
				kpNone = true
			case s.Layer == trace.LayerMesh && s.Action == trace.ActionRedirect && strings.Contains(s.Rule, "proxy-init/redirect-all-outgoing-to-proxy-port") && s.After.Dst.Port() == 4140:
				redirect = true
			case s.Layer == trace.LayerMesh && s.Action == trace.ActionForward && s.After != nil && s.After.Dst.Addr().String() == j.Backend.IP:
				proxyPick = true
			case s.Layer == trace.LayerMesh && s.Action == trace.ActionPass && strings.Contains(s.Rule, "--uid-owner 2102"):
				loopGuard = true
			}
		}
	}
	if !redirect || !proxyPick || !kpNone || !loopGuard {
		t.Errorf("redirect=%v proxy endpoint choice=%v kube-proxy none=%v uid exemption=%v", redirect, proxyPick, kpNone, loopGuard)
	}
	all, err := e.TraceAll("linkerd-shop/web", "api.linkerd-shop:8080", trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || all[0].Backend.IP == all[1].Backend.IP {
		t.Errorf("--all-backends should walk both api endpoints through the proxy, got %d journeys", len(all))
	}
}

// TestMeshAllBackendsCoversEveryWeightedRouteBackend: a weighted split (GAMMA HTTPRoute backendRefs weights,
// gateway-api.sigs.k8s.io/reference/spec/#httpbackendref; Istio VirtualService route weights,
// istio.io/latest/docs/reference/config/networking/virtual-service/#HTTPRouteDestination) sends a share of requests to
// every backend, so --all-backends must branch to the endpoints of each one with weight/Σweights × 1/endpoints.
func TestMeshAllBackendsCoversEveryWeightedRouteBackend(t *testing.T) {
	e := meshDemo(t)
	cases := []struct {
		name, from, to string
		want           map[string]float64 // backend pod name prefix → summed probability
	}{
		{"a Linkerd HTTPRoute split 90/10 walks both api endpoints and the canary",
			"linkerd-shop/web", "http://api.linkerd-shop:8080/api/items",
			map[string]float64{"linkerd-shop/api-6c8f7d9b4-": 0.9, "linkerd-shop/api-canary-": 0.1}},
		{"an Istio VirtualService split 80/20 over subsets walks reviews v1 and v2",
			"istio-shop/productpage", "http://reviews.istio-shop:9080/reviews/1",
			map[string]float64{"istio-shop/reviews-v1-": 0.8, "istio-shop/reviews-v2-": 0.2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			one, err := e.Trace(tc.from, tc.to, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			again, _ := e.Trace(tc.from, tc.to, trace.Options{})
			if one.Backend == nil || again.Backend == nil || one.Backend.IP != again.Backend.IP {
				t.Fatalf("the default single trace must choose deterministically: %+v vs %+v", one.Backend, again.Backend)
			}
			sum := map[string]float64{}
			seen := map[string]bool{one.Backend.IP: true}
			for _, a := range one.Alternatives {
				seen[a.Endpoint.IP] = true
			}
			all, err := e.TraceAll(tc.from, tc.to, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != len(seen) {
				t.Errorf("--all-backends walked %d journeys, the single trace lists %d endpoints", len(all), len(seen))
			}
			walked := map[string]bool{}
			for _, j := range all {
				if j.Verdict != trace.Delivered || j.Backend == nil {
					t.Fatalf("branch not delivered: %s %v", j.Verdict, j.Backend)
				}
				walked[j.Backend.IP] = true
				if len(j.Alternatives) != len(all)-1 {
					t.Errorf("branch %s lists %d alternatives, want %d", j.Backend.Pod, len(j.Alternatives), len(all)-1)
				}
			}
			for ip := range seen {
				if !walked[ip] {
					t.Errorf("endpoint %s is listed as an alternative but no branch walks it", ip)
				}
			}
			for _, a := range all[0].Alternatives {
				for pre := range tc.want {
					if strings.HasPrefix(a.Endpoint.Pod, pre) {
						sum[pre] += a.Probability
					}
				}
			}
			// Add the first branch's own share: it is the complement within its prefix.
			var listed float64
			for _, v := range sum {
				listed += v
			}
			for pre := range tc.want {
				if strings.HasPrefix(all[0].Backend.Pod, pre) {
					sum[pre] += 1 - listed
				}
			}
			for pre, w := range tc.want {
				if d := sum[pre] - w; d > 1e-9 || d < -1e-9 {
					t.Errorf("probability of %s* = %.3f, want %.2f (all: %v)", pre, sum[pre], w, sum)
				}
			}
		})
	}
}

func TestDiffAfterMesh(t *testing.T) {
	e := meshDemo(t)
	before, err := e.Trace("tools/netshoot", "cart.shop:8080", trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	after, err := e.Trace("linkerd-shop/web", "api.linkerd-shop:8080", trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := trace.Diff(before, after)
	if len(d.HopsAdded) == 0 || d.Identity.After == "" || d.Latency.DeltaNs <= 0 {
		t.Errorf("diff misses the mesh hops, identity or latency: %+v", d.Summary)
	}
	found := false
	for _, s := range d.Summary {
		found = found || strings.HasPrefix(s, "NAT moved")
	}
	if !found {
		t.Errorf("the summary should say kube-proxy's DNAT moved into the proxy: %v", d.Summary)
	}
	same := trace.Diff(before, before)
	if len(same.HopsAdded)+len(same.HopsRemoved)+len(same.Checks.Added)+len(same.Checks.Removed) != 0 || same.Latency.DeltaNs != 0 {
		t.Errorf("a journey compared with itself has differences: %+v", same.Summary)
	}
	data, err := json.Marshal(d)
	if err != nil || !bytes.Contains(data, []byte(`"schema":"`+trace.DiffSchema+`"`)) {
		t.Errorf("JSON: %v", err)
	}
	var buf bytes.Buffer
	trace.WriteDiffText(&buf, d, "netshoot → cart", "web → api")
	path := filepath.Join("testdata", "mesh-diff.golden")
	if *update {
		os.WriteFile(path, buf.Bytes(), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./trace -update)", err)
	}
	if buf.String() != string(want) {
		t.Errorf("diff text differs from %s (run go test ./trace -update):\n%s", path, diffLines(string(want), buf.String()))
	}
}

// BenchmarkMeshJourney is a full meshed journey (DNS, interception, proxy route and endpoint choice, mTLS, overlay,
// inbound authorization) on the demo plus its meshed namespaces.
func BenchmarkMeshJourney(b *testing.B) {
	e := meshDemo(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Trace("linkerd-shop/web", "http://api.linkerd-shop:8080/api/items", trace.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
