package trace_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

var update = flag.Bool("update", false, "rewrite golden files")

func demoSnapshot(t testing.TB, extra ...string) *cluster.Snapshot {
	t.Helper()
	var srcs []cluster.Source
	for _, f := range demo.Files() {
		srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
	}
	for i, e := range extra {
		srcs = append(srcs, cluster.BytesSource("extra-"+string(rune('a'+i))+".yaml", []byte(e)))
	}
	s, err := cluster.Load(srcs, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func engine(t testing.TB, s *cluster.Snapshot) *trace.Engine {
	t.Helper()
	e, err := trace.New(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// nodeLocalDNS adds NodeLocal DNSCache to the demo (a hostNetwork DaemonSet on every node).
const nodeLocalDNS = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-local-dns, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: node-local-dns}}
  template:
    metadata: {labels: {k8s-app: node-local-dns}}
    spec:
      hostNetwork: true
      tolerations: [{operator: Exists}]
      containers:
      - name: node-cache
        image: registry.k8s.io/dns/k8s-dns-node-cache:1.23.1
        args: [-localip, "169.254.20.10,10.96.0.10", -conf, /etc/Corefile]
        ports: [{containerPort: 53, protocol: UDP, name: dns}, {containerPort: 53, protocol: TCP, name: dns-tcp}]
`

func TestDemoJourneys(t *testing.T) {
	s := demoSnapshot(t)
	e := engine(t, s)
	cases := []struct {
		name, from, to string
		proto          packet.Protocol
		verdict        trace.Verdict
		golden         string
	}{
		{"a pod reaches a pod on the same node over the bridge without encapsulation",
			"pod/shop/frontend-qtcslb7hb7-gxkmd", "pod/shop/cart-lkv2s5jbq5-hcxf4:8080", packet.TCP, trace.Delivered, "same-node"},
		{"a pod reaches a Service whose chosen endpoint is on another node through the VXLAN overlay",
			"deploy/shop/frontend", "http://cart.shop:8080/", packet.TCP, trace.Delivered, "cross-node"},
		{"a headless Service name resolves to pod IPs, no kube-proxy DNAT happens, and db's policy drops netshoot",
			"tools/netshoot", "db.shop:5432", packet.TCP, trace.Dropped, "headless"},
		{"checkout to cart is dropped at cart's ingress because no policy allows it past the default deny",
			"shop/checkout", "cart.shop:8080", packet.TCP, trace.Dropped, "policy-drop"},
		{"a StatefulSet pod's stable name resolves to that pod and cart may reach db",
			"shop/cart", "db-1.db.shop:5432", packet.TCP, trace.Delivered, "statefulset-hostname"},
		{"an ExternalName Service answers with a CNAME that leaves the cluster",
			"tools/netshoot", "payments-api.shop:443", packet.TCP, trace.Unknown, "externalname"},
		{"a Service with no ready endpoints is rejected by kube-proxy and the crash-looping pods are named",
			"shop/checkout", "payments.shop:443", packet.TCP, trace.Rejected, "no-endpoints"},
		{"a NodePort with externalTrafficPolicy Local is dropped on a node without a local endpoint",
			"external:203.0.113.7", "node/kpath-worker2:30080", packet.TCP, trace.Dropped, "etp-local-drop"},
		{"a name with fewer dots than ndots walks the whole search list before the absolute name",
			"tools/netshoot", "api.stripe.example.com:443", packet.TCP, trace.Unknown, "ndots"},
		{"a UDP DNS query to the kube-dns VIP reaches a CoreDNS pod",
			"tools/netshoot", "kube-dns.kube-system:53", packet.UDP, trace.Delivered, "dns-vip"},
		{"a name that does not exist is rejected at DNS and nothing is sent",
			"tools/netshoot", "nosuch.shop.svc.cluster.local:80", packet.TCP, trace.Rejected, "nxdomain"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, err := e.Trace(tc.from, tc.to, trace.Options{Protocol: tc.proto})
			if err != nil {
				t.Fatal(err)
			}
			checkJourney(t, j, tc.verdict, tc.golden)
		})
	}
}

func checkJourney(t *testing.T, j *trace.Journey, verdict trace.Verdict, golden string) {
	t.Helper()
	if err := j.Validate(); err != nil {
		t.Errorf("journey does not validate: %v", err)
	}
	if j.Verdict != verdict {
		t.Errorf("verdict = %s (%s), want %s", j.Verdict, j.VerdictReason, verdict)
	}
	data, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	var back trace.Journey
	if err := json.Unmarshal(data, &back); err != nil || back.Verdict != j.Verdict {
		t.Errorf("JSON round trip: %v", err)
	}
	var buf bytes.Buffer
	trace.WriteText(&buf, j, 1)
	path := filepath.Join("testdata", golden+".golden")
	if *update {
		os.WriteFile(path, buf.Bytes(), 0o644)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./trace -update)", err)
	}
	if buf.String() != string(want) {
		t.Errorf("journey differs from %s (run go test ./trace -update and review the diff):\n%s", path, diffLines(string(want), buf.String()))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			out = append(out, "- "+a, "+ "+b)
			if len(out) > 20 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func TestNodeLocalDNSAnswersOnTheNode(t *testing.T) {
	s := demoSnapshot(t, nodeLocalDNS)
	e := engine(t, s)
	j, err := e.Trace("tools/netshoot", "10.96.0.10:53", trace.Options{Protocol: packet.UDP})
	if err != nil {
		t.Fatal(err)
	}
	checkJourney(t, j, trace.Delivered, "nodelocal-dns")
	src, _ := trace.ResolveSource(s, "tools/netshoot")
	if j.Backend == nil || j.Backend.Node != src.Pod.Spec.NodeName || !strings.Contains(j.Backend.Pod, "node-local-dns") {
		t.Errorf("backend = %+v, want node-local-dns on the source's node %s", j.Backend, src.Pod.Spec.NodeName)
	}
	for _, h := range j.Hops {
		for _, st := range h.Steps {
			if st.Action == trace.ActionDNAT {
				t.Errorf("NodeLocal DNSCache's NOTRACK should keep kube-proxy from DNATing: %+v", st)
			}
		}
	}
}

func TestHairpinToOwnServiceIsMasqueraded(t *testing.T) {
	s := demoSnapshot(t)
	e := engine(t, s)
	js, err := e.TraceAll("pod/shop/cart-lkv2s5jbq5-hcxf4", "svc/shop/cart:http", trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 2 {
		t.Fatalf("want one journey per cart endpoint, got %d", len(js))
	}
	found := false
	for _, j := range js {
		if err := j.Validate(); err != nil {
			t.Error(err)
		}
		if j.Backend == nil || j.Backend.Pod != "shop/cart-lkv2s5jbq5-hcxf4" {
			continue
		}
		found = true
		masq := false
		for _, h := range j.Hops {
			for _, st := range h.Steps {
				if st.Action == trace.ActionMasquerade {
					masq = true
				}
			}
		}
		if !masq {
			t.Errorf("the hairpin branch (pod → its own Service → itself) must be masqueraded so the reply returns through the node")
		}
	}
	if !found {
		t.Errorf("no branch chose the source pod itself")
	}
}

func TestQuestionsThatCannotBeAskedAreUsageErrors(t *testing.T) {
	e := engine(t, demoSnapshot(t))
	for _, tc := range []struct{ name, from, to string }{
		{"an unknown namespace", "nope/x", "cart.shop:8080"},
		{"an unknown pod", "pod/shop/nope", "cart.shop:8080"},
		{"an unknown node", "node/nope", "cart.shop:8080"},
		{"an external source that is not an IP", "external:example.com", "cart.shop:8080"},
		{"a Service port that does not exist", "tools/netshoot", "svc/shop/cart:9999"},
		{"an IP without a port", "tools/netshoot", "10.96.0.10"},
	} {
		t.Run(tc.name+" is a usage error", func(t *testing.T) {
			_, err := e.Trace(tc.from, tc.to, trace.Options{})
			var qe *trace.QuestionError
			if err == nil || !errorsAs(err, &qe) {
				t.Errorf("err = %v, want a QuestionError", err)
			}
		})
	}
}

func TestNodeSources(t *testing.T) {
	e := engine(t, demoSnapshot(t))
	t.Run("a node's own resolver is not the cluster DNS, so a cluster name is unknown there", func(t *testing.T) {
		j, err := e.Trace("node/kpath-worker2", "cart.shop.svc.cluster.local:8080", trace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if j.Verdict != trace.Unknown || j.DNS == nil || j.DNS.Queries[0].Rcode != "unknown" {
			t.Errorf("verdict %s, dns %+v", j.Verdict, j.DNS)
		}
	})
	t.Run("a node reaching a ClusterIP across nodes is masqueraded to its flannel.1 address and policy sees that node", func(t *testing.T) {
		j, err := e.TraceAll("node/kpath-worker2", "svc/shop/cart:http", trace.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range j {
			if b.Backend == nil || b.Backend.Node == "kpath-worker2" {
				continue
			}
			var masq *trace.Step
			for _, h := range b.Hops {
				for i := range h.Steps {
					if h.Steps[i].Action == trace.ActionMasquerade {
						masq = &h.Steps[i]
					}
				}
			}
			if masq == nil || masq.After.Src.Addr().String() != "10.244.2.0" {
				t.Fatalf("want masquerade to 10.244.2.0 (flannel.1 of kpath-worker2), got %+v", masq)
			}
			if !strings.Contains(b.VerdictReason, "kpath-worker2") {
				t.Errorf("policy should name the source node, got: %s", b.VerdictReason)
			}
		}
	})
}

func TestPoliciesThatNothingEnforcesDropNothing(t *testing.T) {
	var srcs []cluster.Source
	for _, f := range demo.Files() {
		srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
	}
	s, err := cluster.Load(srcs, cluster.Options{Overrides: cluster.Overrides{PolicyEnforcer: cluster.PolicyNone}})
	if err != nil {
		t.Fatal(err)
	}
	j, err := engine(t, s).Trace("shop/checkout", "cart.shop:8080", trace.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if j.Verdict != trace.Delivered {
		t.Fatalf("verdict %s (%s): with no NetworkPolicy implementation the default-deny drops nothing", j.Verdict, j.VerdictReason)
	}
	noted := false
	for _, n := range j.Notes {
		noted = noted || strings.Contains(n, "not enforced")
	}
	if !noted {
		t.Errorf("the journey must say the policy that would deny is not enforced; notes: %v", j.Notes)
	}
}
