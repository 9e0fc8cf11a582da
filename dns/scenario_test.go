package dns

import (
	"bytes"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// shopServer is the testdata/shop.yaml world behind kubeadm's default Corefile.
func shopServer(t testing.TB) (*Server, *MapCluster) {
	t.Helper()
	f, err := os.Open("testdata/shop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	objs, err := DecodeObjects(f)
	if err != nil {
		t.Fatal(err)
	}
	c := NewMapCluster(objs...)
	src, err := os.ReadFile("testdata/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	cf, err := ParseCorefile(string(src))
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(cf, c, ServerOptions{LocalIPs: []netip.Addr{netip.MustParseAddr("10.244.0.2")}, Serial: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func shopPodResolvConf(t testing.TB, policy corev1.DNSPolicy, dnsConfig *corev1.PodDNSConfig) ResolvConf {
	host, err := ParseResolvConf("nameserver 10.0.0.2\nsearch ec2.internal\n")
	if err != nil {
		t.Fatal(err)
	}
	k := Kubelet{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", HostResolvConf: &host}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop"}}
	pod.Spec.DNSPolicy, pod.Spec.DNSConfig = policy, dnsConfig
	return k.PodResolvConf(pod).ResolvConf
}

func renderResolution(r Resolution) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s resolving %q (ndots:%d, search %s)\n", r.Settings.Libc, r.Name, r.Settings.Ndots, strings.Join(r.Settings.Searches, " "))
	for _, n := range r.Settings.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	for _, q := range r.Queries {
		cond := ""
		if q.Conditional {
			cond = " (only if the unknown reply failed)"
		}
		if !q.Parallel && q.Type == "AAAA" {
			cond += " (sent after the A reply: single-request)"
		}
		fmt.Fprintf(&b, "  %d. %-5s %s → %s%s\n", q.Step, q.Type, q.Name, q.Answer.Rcode, cond)
		for _, rec := range q.Answer.Records() {
			fmt.Fprintf(&b, "       %s\n", rec)
		}
		fmt.Fprintf(&b, "       why: %s\n", q.Answer.Why)
	}
	fmt.Fprintf(&b, "  result: %s", r.Result)
	if r.AnsweredBy != "" {
		fmt.Fprintf(&b, " by %s %v", r.AnsweredBy, r.Addresses)
	}
	fmt.Fprintf(&b, "\n  why: %s\n\n", r.Why)
	return b.String()
}

func TestResolveScenarios(t *testing.T) {
	srv, _ := shopServer(t)
	clusterFirst := shopPodResolvConf(t, corev1.DNSClusterFirst, nil)
	two := "2"
	ndots2 := shopPodResolvConf(t, corev1.DNSClusterFirst, &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "single-request"}}})
	cases := []struct {
		name       string
		rc         ResolvConf
		lib        Libc
		query      string
		result     string
		answeredBy string
		sent, nx   int
	}{
		{"a short Service name resolves on the first search domain", clusterFirst, Glibc, "cart", "answered", "cart.shop.svc.cluster.local.", 2, 0},
		{"service.namespace costs one NXDOMAIN round before svc.cluster.local answers", clusterFirst, Glibc, "db.shop", "answered", "db.shop.svc.cluster.local.", 4, 2},
		{"a StatefulSet pod hostname resolves through the headless Service", clusterFirst, Glibc, "db-0.db", "answered", "db-0.db.shop.svc.cluster.local.", 2, 0},
		{"a full cluster name without trailing dot walks the whole search list, node domains included, under ndots:5", clusterFirst, Glibc, "cart.shop.svc.cluster.local", "unknown", "", 8, 6},
		{"a trailing dot sends exactly one name", clusterFirst, Glibc, "cart.shop.svc.cluster.local.", "answered", "cart.shop.svc.cluster.local.", 2, 0},
		{"an external name pays three cluster NXDOMAINs before it leaves the cluster", clusterFirst, Glibc, "google.com", "unknown", "", 8, 6},
		{"a headless Service with no ready endpoints is NXDOMAIN and the search goes on", clusterFirst, Glibc, "broken", "unknown", "", 8, 6},
		{"glibc searches on past a NODATA reply", clusterFirst, Glibc, "svc", "unknown", "", 8, 4},
		{"musl stops at a NODATA reply", clusterFirst, Musl, "svc", "NODATA", "", 6, 4},
		{"musl tries only the name itself once it has ndots dots", ndots2, Musl, "db.shop.svc", "unknown", "", 2, 0},
		{"glibc tries the name as-is first once it has ndots dots, then searches", ndots2, Glibc, "db.shop.svc", "unknown", "", 2, 0},
		{"an ExternalName Service answers a CNAME whose target is resolved upstream", clusterFirst, Glibc, "payments", "unknown", "", 2, 0},
		{"pods insecure answers a dashed pod IP name", clusterFirst, Musl, "10-244-1-5.shop.pod.cluster.local.", "answered", "10-244-1-5.shop.pod.cluster.local.", 2, 0},
	}
	var golden bytes.Buffer
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Resolve(tc.rc, tc.lib, tc.query, FamilyUnspec, srv.Answer)
			golden.WriteString("## " + tc.name + "\n" + renderResolution(r))
			if r.Result != tc.result || r.AnsweredBy != tc.answeredBy || r.QueriesSent != tc.sent || r.NXDomainBeforeAnswer != tc.nx {
				t.Errorf("result %s by %q, %d sent, %d NXDOMAIN; want %s by %q, %d, %d\n%s", r.Result, r.AnsweredBy, r.QueriesSent, r.NXDomainBeforeAnswer, tc.result, tc.answeredBy, tc.sent, tc.nx, renderResolution(r))
			}
		})
	}
	checkGolden(t, "testdata/resolve.golden", golden.Bytes())
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./dns -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output; rerun with -update and review the diff", filepath.Base(path))
	}
}

func TestServerAnswers(t *testing.T) {
	srv, _ := shopServer(t)
	cases := []struct {
		name, qname string
		qtype       uint16
		rcode       string
		known       bool
		records     []string
		why         string
	}{
		{"a ClusterIP Service answers its VIP with the Corefile's ttl", "cart.shop.svc.cluster.local.", miekg.TypeA, "NOERROR", true, []string{"cart.shop.svc.cluster.local. 30 IN A 10.96.0.20"}, "Service shop/cart: ClusterIP 10.96.0.20"},
		{"a headless Service answers only ready endpoints", "db.shop.svc.cluster.local.", miekg.TypeA, "NOERROR", true, []string{"db.shop.svc.cluster.local. 30 IN A 10.244.1.20", "db.shop.svc.cluster.local. 30 IN A 10.244.2.21"}, "headless Service shop/db: 2 ready endpoint address(es)"},
		{"an SRV query names each endpoint hostname", "_pg._tcp.db.shop.svc.cluster.local.", miekg.TypeSRV, "NOERROR", true, []string{"_pg._tcp.db.shop.svc.cluster.local. 30 IN SRV 0 50 5432 db-0.db.shop.svc.cluster.local.", "_pg._tcp.db.shop.svc.cluster.local. 30 IN SRV 0 50 5432 db-1.db.shop.svc.cluster.local."}, "headless Service shop/db"},
		{"a missing Service is NXDOMAIN", "nope.shop.svc.cluster.local.", miekg.TypeA, "NXDOMAIN", true, nil, "no Service nope in namespace shop → NXDOMAIN"},
		{"a ClusterIP reverse lookup names the Service", "20.0.96.10.in-addr.arpa.", miekg.TypePTR, "NOERROR", true, []string{"20.0.96.10.in-addr.arpa. 30 IN PTR cart.shop.svc.cluster.local."}, "ClusterIP of Service shop/cart"},
		{"an endpoint reverse lookup names the endpoint hostname", "20.1.244.10.in-addr.arpa.", miekg.TypePTR, "NOERROR", true, []string{"20.1.244.10.in-addr.arpa. 30 IN PTR db-0.db.shop.svc.cluster.local."}, "endpoint of shop/db"},
		{"an unknown reverse name falls through to forward", "3.2.1.10.in-addr.arpa.", miekg.TypePTR, "unknown", false, nil, "`fallthrough` passes it to the next plugin"},
		{"an external name is forwarded and its answer is unknown", "example.com.", miekg.TypeA, "unknown", false, nil, "forwarded to /etc/resolv.conf (not modelled: answer unknown)"},
		{"the apex NS record names the kube-dns Service", "cluster.local.", miekg.TypeNS, "NOERROR", true, []string{"cluster.local. 30 IN NS kube-dns.kube-system.svc.cluster.local."}, "CoreDNS pod IPs are behind a Service"},
		{"a namespace name alone is NODATA", "shop.svc.cluster.local.", miekg.TypeA, "NOERROR", true, nil, "NODATA"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := srv.Answer(miekg.Question{Name: tc.qname, Qtype: tc.qtype, Qclass: miekg.ClassINET})
			if a.Rcode != tc.rcode || a.Known != tc.known || !sameSet(a.Records(), tc.records) || !strings.Contains(a.Why, tc.why) {
				t.Errorf("got %s known=%v %q why %q; want %s known=%v %q why containing %q", a.Rcode, a.Known, a.Records(), a.Why, tc.rcode, tc.known, tc.records, tc.why)
			}
		})
	}
}
