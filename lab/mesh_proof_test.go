package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

// The mesh proof suite: the demo plus its Linkerd- and Istio-meshed namespaces (mesh/demo) built as a real lab,
// with every sidecar pod's rendered interception rules and a lab proxy doing mTLS with lab-CA certificates; each
// question is performed on the kernel and must agree with the prediction on the verdict, the backend, the hops,
// and the mesh steps (redirect chain and port, the owner exemption, the identities from the TLS handshake, who
// allowed or refused).

type meshProofCase struct {
	name     string
	from, to string
	count    int
	verdict  trace.Verdict
	// want are mesh step signatures (meshSig) the observed journey must contain, in order.
	want []string
}

const (
	webID      = "web.linkerd-shop.serviceaccount.identity.linkerd.cluster.local"
	apiID      = "api.linkerd-shop.serviceaccount.identity.linkerd.cluster.local"
	reviewsID  = "spiffe://cluster.local/ns/istio-shop/sa/bookinfo-reviews"
	ratingsID  = "spiffe://cluster.local/ns/istio-shop/sa/bookinfo-ratings"
	productpID = "spiffe://cluster.local/ns/istio-shop/sa/bookinfo-productpage"
)

var meshProofCases = []meshProofCase{
	{"a Linkerd-meshed pod reaches a meshed Service over mTLS between the proxies and both endpoints answer",
		"linkerd-shop/web", "api.linkerd-shop:8080", 24, trace.Delivered, []string{
			"redirect PROXY_INIT_OUTPUT → :4140", "encrypt mTLS client " + webID + " → server " + apiID,
			"pass PROXY_INIT_OUTPUT (owner exemption)", "redirect PROXY_INIT_REDIRECT → :4143",
			"decrypt mTLS server " + apiID + " ← client " + webID, "allow AuthorizationPolicy linkerd-shop/api-from-web"}},
	{"an Istio-meshed pod reaches a meshed Service over mTLS and the ALLOW policy admits its principal",
		"pod/istio-shop/reviews-v1-545db77b95-2ps7q", "ratings.istio-shop:9080", 1, trace.Delivered, []string{
			"redirect ISTIO_REDIRECT → :15001", "encrypt mTLS client " + reviewsID + " → server " + ratingsID,
			"pass ISTIO_OUTPUT (owner exemption)", "redirect ISTIO_IN_REDIRECT → :15006",
			"decrypt mTLS server " + ratingsID + " ← client " + reviewsID, "allow AuthorizationPolicy istio-shop/ratings-from-reviews"}},
	{"a non-meshed client is reset by the Istio sidecar of a STRICT PeerAuthentication namespace",
		"tools/netshoot", "productpage.istio-shop:9080", 1, trace.Rejected, []string{
			"redirect ISTIO_IN_REDIRECT → :15006", "plaintext", "reject PeerAuthentication istio-shop/default"}},
	{"a non-meshed client is refused by a Linkerd Server that authorizes only an identity",
		"tools/netshoot", "api.linkerd-shop:8080", 1, trace.Rejected, []string{
			"redirect PROXY_INIT_REDIRECT → :4143", "plaintext", "reject Server linkerd-shop/api-http"}},
	{"a Linkerd skip port bypasses the proxy: the admin port answers a plaintext client without redirect",
		"tools/netshoot", "pod/linkerd-shop/web-7d4b9c6f5-abcde:4191", 1, trace.Delivered, []string{"pass PROXY_INIT_REDIRECT"}},
	{"an Istio excluded inbound port bypasses a STRICT sidecar",
		"tools/netshoot", "pod/istio-shop/productpage-v1-6b746f74dc-9stvs:15090", 1, trace.Delivered, []string{"pass ISTIO_INBOUND"}},
	{"an Istio ALLOW policy refuses a meshed principal it does not list, after the mTLS handshake",
		"istio-shop/productpage", "ratings.istio-shop:9080", 1, trace.Rejected, []string{
			"encrypt mTLS client " + productpID + " → server " + ratingsID, "reject AuthorizationPolicy istio-shop/ratings-from-reviews"}},
	{"a Linkerd ServerAuthorization refuses a meshed identity it does not list on an opaque port",
		"linkerd-shop/web", "db.linkerd-shop:5432", 1, trace.Rejected, []string{
			"opaque port 5432", "reject Server linkerd-shop/db-postgres"}},
	{"a Linkerd ServerAuthorization admits the identity it lists on an opaque port",
		"pod/linkerd-shop/api-6c8f7d9b4-fghij", "db.linkerd-shop:5432", 1, trace.Delivered, []string{
			"opaque port 5432", "allow ServerAuthorization linkerd-shop/db-from-api"}},
	{"a Linkerd proxy sniffs the HTTP request, routes it by the Service's HTTPRoute and the server's proxy authorizes it by identity",
		"linkerd-shop/web", "http://api.linkerd-shop:8080/other", 24, trace.Delivered, []string{
			"route HTTPRoute linkerd-shop/api-split", "encrypt mTLS client " + webID + " → server " + apiID,
			"protocol detection", "allow AuthorizationPolicy linkerd-shop/api-from-web"}},
	{"a Linkerd-meshed client reaches a non-meshed pod in plaintext and the pod's ingress policy drops it",
		"linkerd-shop/web", "cart.shop:8080", 1, trace.Dropped, []string{
			"redirect PROXY_INIT_OUTPUT → :4140", "plaintext", "pass PROXY_INIT_OUTPUT (owner exemption)"}},
	{"an Istio Sidecar hides another namespace: the PassthroughCluster sends plaintext through kube-proxy and the Linkerd server refuses it",
		"istio-shop/productpage", "api.linkerd-shop:8080", 1, trace.Rejected, []string{
			"redirect ISTIO_REDIRECT → :15001", "plaintext", "pass ISTIO_OUTPUT (owner exemption)",
			"redirect PROXY_INIT_REDIRECT → :4143", "plaintext", "reject Server linkerd-shop/api-http"}},
	{"an Istio DENY policy refuses an HTTP path after the client proxy routed the request by its VirtualService",
		"istio-shop/productpage", "http://reviews.istio-shop:9080/admin", 1, trace.Rejected, []string{
			"route VirtualService istio-shop/reviews", "reject AuthorizationPolicy istio-shop/reviews-no-admin"}},
}

func TestMeshProofSuite(t *testing.T) {
	l := newMeshTestLab(t, kubeproxy.ModeNFTables)
	for _, c := range meshProofCases {
		t.Run(c.name, func(t *testing.T) {
			res, err := Trace(context.Background(), l.st, l.snap, l.eng, c.from, c.to, TraceOptions{Protocol: packet.TCP, Count: c.count, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			if res.Observed.Verdict != c.verdict {
				t.Errorf("observed verdict %s, want %s (%s)", res.Observed.Verdict, c.verdict, res.Observed.VerdictReason)
			}
			for _, d := range res.Diffs {
				t.Errorf("%s\n  predicted: %s\n  observed:  %s", d.What, d.Predicted, d.Observed)
			}
			var got []string
			for _, h := range res.Observed.Hops {
				for _, s := range h.Steps {
					if sig := meshSig(s); sig != "" {
						got = append(got, sig)
					}
				}
			}
			if !subsequence(c.want, got) {
				t.Errorf("observed mesh steps\n  %s\nwant (in order)\n  %s", strings.Join(got, "\n  "), strings.Join(c.want, "\n  "))
			}
			for _, s := range res.Skipped {
				t.Logf("not compared: %s", s)
			}
			if t.Failed() || testing.Verbose() {
				var b strings.Builder
				WriteResult(&b, res)
				t.Log("\n" + b.String())
			}
		})
	}
}

func newMeshTestLab(t *testing.T, mode kubeproxy.Mode) *testLab {
	t.Helper()
	requireRoot(t)
	guardRootNetns(t)
	t.Setenv("KPATH_LAB_DIR", testStateDir)
	var srcs []cluster.Source
	for _, f := range demo.Files() {
		srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
	}
	for _, f := range mesh.DemoFiles() {
		srcs = append(srcs, cluster.BytesSource("mesh/demo/"+f.Name, f.Data))
	}
	snap, err := cluster.Load(srcs, cluster.Options{Overrides: cluster.Overrides{ProxyMode: string(mode)}})
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 3)
	rand.Read(b)
	name := "pm" + hex.EncodeToString(b)
	ctx, cancel := context.WithCancel(context.Background())
	claimTestLab(t, name)
	st, err := Up(ctx, snap, Options{Name: name, Mode: mode})
	if err != nil {
		cancel()
		t.Fatalf("lab up: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		time.Sleep(50 * time.Millisecond)
		if err := Down(context.Background(), st); err != nil {
			t.Errorf("lab down: %v", err)
		}
		for _, ns := range st.Namespaces {
			if netnsExists(ns) {
				t.Errorf("namespace %s survived lab down", ns)
			}
		}
		if _, err := os.Stat(MeshDir(name)); err == nil {
			t.Errorf("%s survived lab down", MeshDir(name))
		}
	})
	rd, wr, _ := os.Pipe()
	go func() {
		if err := RunAgent(ctx, st, snap, wr); err != nil {
			t.Errorf("agent: %v", err)
			wr.Close()
		}
	}()
	buf := make([]byte, 16)
	n, _ := rd.Read(buf)
	rd.Close()
	if !strings.HasPrefix(string(buf[:n]), "ready") {
		t.Fatalf("agent did not start: %q", buf[:n])
	}
	eng, err := trace.New(snap)
	if err != nil {
		t.Fatal(err)
	}
	return &testLab{st: st, snap: snap, eng: eng}
}
