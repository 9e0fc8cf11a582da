package dns

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestCandidates(t *testing.T) {
	k8s := []string{"shop.svc.cluster.local", "svc.cluster.local", "cluster.local"}
	cases := []struct {
		name string
		s    ResolverSettings
		in   string
		want []string
	}{
		{"glibc tries the search list then the bare name for a dotless name", ResolverSettings{Libc: Glibc, Ndots: 5, Searches: k8s}, "cart",
			[]string{"cart.shop.svc.cluster.local.", "cart.svc.cluster.local.", "cart.cluster.local.", "cart."}},
		{"glibc with no-tld-query never sends a dotless name as-is", ResolverSettings{Libc: Glibc, Ndots: 5, Searches: k8s, NoTLDQuery: true}, "cart",
			[]string{"cart.shop.svc.cluster.local.", "cart.svc.cluster.local.", "cart.cluster.local."}},
		{"glibc tries a name with ndots dots as-is first and then still searches", ResolverSettings{Libc: Glibc, Ndots: 1, Searches: k8s}, "api.example.com",
			[]string{"api.example.com.", "api.example.com.shop.svc.cluster.local.", "api.example.com.svc.cluster.local.", "api.example.com.cluster.local."}},
		{"glibc treats a root search domain as the as-is try", ResolverSettings{Libc: Glibc, Ndots: 5, Searches: []string{"a.local", "."}}, "x",
			[]string{"x.a.local.", "x."}},
		{"musl tries search domains then the name for a name below ndots", ResolverSettings{Libc: Musl, Ndots: 5, Searches: k8s}, "db.shop",
			[]string{"db.shop.shop.svc.cluster.local.", "db.shop.svc.cluster.local.", "db.shop.cluster.local.", "db.shop."}},
		{"musl never searches a name with ndots dots", ResolverSettings{Libc: Musl, Ndots: 1, Searches: k8s}, "db.shop",
			[]string{"db.shop."}},
		{"a trailing dot means one absolute name for both libraries", ResolverSettings{Libc: Glibc, Ndots: 5, Searches: k8s}, "cart.",
			[]string{"cart."}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Candidates(tc.s, tc.in)
			var names []string
			for _, c := range got {
				names = append(names, c.name)
			}
			if !sameStrings(names, tc.want) || why == "" {
				t.Errorf("Candidates = %q (why %q), want %q", names, why, tc.want)
			}
		})
	}
}

func TestResolverSettings(t *testing.T) {
	long := strings.Repeat("a", 60)
	cases := []struct {
		name     string
		conf     string
		lib      Libc
		ndots    int
		searches int
		single   string
		note     string
	}{
		{"kubelet's ClusterFirst file gives ndots 5 to both libraries", "search a.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n", Musl, 5, 3, "", ""},
		{"ndots above 15 is clamped", "options ndots:20\n", Glibc, 15, 0, "", "clamped to 15"},
		{"glibc honours single-request-reopen", "options single-request-reopen\n", Glibc, 1, 0, "single-request-reopen", ""},
		{"musl ignores single-request", "options single-request\n", Musl, 1, 0, "", "musl ignores option single-request"},
		{"musl drops a search line of 255 bytes or more", "search " + strings.Join([]string{long, long, long, long, long}, " ") + "\n", Musl, 1, 0, "", "no search list"},
		{"glibc keeps a long search line", "search " + strings.Join([]string{long, long, long, long, long}, " ") + "\n", Glibc, 1, 5, "", ""},
		{"only three nameservers are used", "nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\n", Glibc, 1, 0, "", "first 3 of 4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := ParseResolvConf(tc.conf)
			if err != nil {
				t.Fatal(err)
			}
			s := rc.Settings(tc.lib)
			if s.Ndots != tc.ndots || len(s.Searches) != tc.searches || s.SingleRequest != tc.single || (tc.note != "" && !strings.Contains(strings.Join(s.Notes, ";"), tc.note)) {
				t.Errorf("settings = %+v", s)
			}
		})
	}
}

func TestPodResolvConf(t *testing.T) {
	host, _ := ParseResolvConf("nameserver 10.0.0.2\nsearch ec2.internal\noptions timeout:2\n")
	k := Kubelet{ClusterDNS: []string{"10.96.0.10"}, ClusterDomain: "cluster.local", HostResolvConf: &host}
	pod := func(policy corev1.DNSPolicy, hostNet bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop"}}
		p.Spec.DNSPolicy, p.Spec.HostNetwork = policy, hostNet
		return p
	}
	cases := []struct {
		name    string
		k       Kubelet
		pod     *corev1.Pod
		want    string
		typ     DNSType
		event   string
		whyPart string
	}{
		{"a ClusterFirst pod gets the cluster nameserver, four search domains and ndots 5", k, pod(corev1.DNSClusterFirst, false),
			"search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:5\n", DNSCluster, "", "ClusterFirst"},
		{"a pod without dnsPolicy is defaulted to ClusterFirst", k, pod("", false),
			"search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:5\n", DNSCluster, "", "(default)"},
		{"a hostNetwork pod with ClusterFirst silently gets the node's file", k, pod(corev1.DNSClusterFirst, true),
			"search ec2.internal\nnameserver 10.0.0.2\noptions timeout:2\n", DNSHost, "", "falls back to Default"},
		{"ClusterFirstWithHostNet gives a hostNetwork pod cluster DNS", k, pod(corev1.DNSClusterFirstWithHostNet, true),
			"search shop.svc.cluster.local svc.cluster.local cluster.local ec2.internal\nnameserver 10.96.0.10\noptions ndots:5\n", DNSCluster, "", "ClusterFirstWithHostNet"},
		{"a kubelet without --cluster-dns falls back to the node's file with an event", Kubelet{ClusterDomain: "cluster.local", HostResolvConf: &host}, pod(corev1.DNSClusterFirst, false),
			"search ec2.internal\nnameserver 10.0.0.2\noptions timeout:2\n", DNSHost, "MissingClusterDNS", ""},
		{"an empty --resolv-conf gives Default pods localhost and search dot", Kubelet{ClusterDNS: []string{"10.96.0.10"}}, pod(corev1.DNSDefault, false),
			"search .\nnameserver 127.0.0.1\n", DNSHost, "", "--resolv-conf is empty"},
	}
	cases[4].event = "kubelet does not have ClusterDNS IP configured"
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.k.PodResolvConf(tc.pod)
			if got.ResolvConf.Render() != tc.want || got.Type != tc.typ {
				t.Errorf("got %s %q, want %s %q", got.Type, got.ResolvConf.Render(), tc.typ, tc.want)
			}
			if tc.event != "" && !strings.Contains(strings.Join(got.Events, "\n"), tc.event) {
				t.Errorf("events %q lack %q", got.Events, tc.event)
			}
			if !strings.Contains(got.Why, tc.whyPart) {
				t.Errorf("why %q lacks %q", got.Why, tc.whyPart)
			}
		})
	}
}

func TestClusterDNSFor(t *testing.T) {
	cases := []struct {
		name      string
		nodeLocal bool
		mode      string
		want      string
	}{
		{"without NodeLocal DNSCache pods use the kube-dns ClusterIP", false, "iptables", "10.96.0.10"},
		{"NodeLocal DNSCache in iptables mode keeps the ClusterIP and answers it on the node", true, "iptables", "10.96.0.10"},
		{"NodeLocal DNSCache in IPVS mode needs the link-local address", true, "ipvs", "169.254.20.10"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, why := ClusterDNSFor("10.96.0.10", tc.nodeLocal, tc.mode)
			if len(got) != 1 || got[0] != tc.want || why == "" {
				t.Errorf("got %v (%s), want %s", got, why, tc.want)
			}
		})
	}
}

func TestCorefileServerBlocks(t *testing.T) {
	src := `cluster.local:53 {
    kubernetes
}
example.local {
    forward . 10.100.0.10:53
}
. {
    hosts /etc/coredns/hosts
    forward . 8.8.8.8:53 {
        except corp.internal
    }
}
`
	cf, err := ParseCorefile(src)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cf, NewMapCluster(), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, qname, plugin, rcode, why string
	}{
		{"a cluster name goes to the block whose kubernetes plugin takes the server zone", "x.y.svc.cluster.local.", "kubernetes", "NXDOMAIN", "namespace y does not exist"},
		{"a stub domain is forwarded to its own nameserver", "db.example.local.", "forward", "unknown", "forwarded to 10.100.0.10:53"},
		{"other names go to the root block and mention its unmodelled plugins", "example.com.", "forward", "unknown", "plugins not modelled in this block: hosts"},
		{"a name excepted from forward gets SERVFAIL", "a.corp.internal.", "", "SERVFAIL", "no plugin"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := srv.Answer(miekg.Question{Name: tc.qname, Qtype: miekg.TypeA, Qclass: miekg.ClassINET})
			if a.Plugin != tc.plugin || a.Rcode != tc.rcode || !strings.Contains(a.Why, tc.why) {
				t.Errorf("got plugin %q rcode %s why %q; want %q %s containing %q", a.Plugin, a.Rcode, a.Why, tc.plugin, tc.rcode, tc.why)
			}
		})
	}
}

func TestCorefileErrors(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"an unclosed block names the problem", ".:53 {\n kubernetes cluster.local\n", "missing '}'"},
		{"a block without a brace is rejected", ".:53\n", "has no '{'"},
		{"a bad pods value keeps CoreDNS's wording and the line", ".:53 {\n kubernetes cluster.local {\n  pods maybe\n }\n}\n", "Corefile:3 - Error during parsing: wrong value for pods"},
		{"a second kubernetes plugin in one block is refused", ".:53 {\n kubernetes a.local\n kubernetes b.local\n}\n", "only be used once per Server Block"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cf, err := ParseCorefile(tc.src)
			if err == nil {
				_, err = NewServer(cf, NewMapCluster(), ServerOptions{})
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

type recordingWriter struct {
	miekg.ResponseWriter
	msg *miekg.Msg
}

func (w *recordingWriter) WriteMsg(m *miekg.Msg) error { w.msg = m; return nil }

func TestServeDNSHandler(t *testing.T) {
	srv, _ := shopServer(t)
	cases := []struct {
		name  string
		q     string
		rcode int
		n     int
	}{
		{"the handler answers a Service name with the model's records", "cart.shop.svc.cluster.local.", miekg.RcodeSuccess, 1},
		{"the handler answers SERVFAIL when the model does not know the answer", "example.com.", miekg.RcodeServerFailure, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := new(miekg.Msg)
			req.SetQuestion(tc.q, miekg.TypeA)
			w := &recordingWriter{}
			srv.ServeDNS(w, req)
			if w.msg == nil || w.msg.Id != req.Id || w.msg.Rcode != tc.rcode || len(w.msg.Answer) != tc.n {
				t.Errorf("reply %v", w.msg)
			}
		})
	}
}

func TestMapClusterIndexes(t *testing.T) {
	_, c := shopServer(t)
	if c.ServiceByClusterIP(netip.MustParseAddr("10.96.0.20")) == nil || len(c.EndpointSlicesByAddress(netip.MustParseAddr("10.244.1.20"))) != 1 ||
		len(c.PodsByIP(netip.MustParseAddr("10.244.1.5"))) != 1 || !c.NamespaceExists("shop") || c.NamespaceExists("nope") {
		t.Error("MapCluster indexes do not find the shop objects")
	}
}

// TestNoForbiddenDeps guards the stage package's dependency graph: no client-go, no netlink.
func TestNoForbiddenDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list unavailable: %v", err)
	}
	for _, bad := range []string{"k8s.io/client-go", "github.com/vishvananda/netlink"} {
		if strings.Contains(string(out), bad) {
			t.Errorf("package dns depends on %s", bad)
		}
	}
}

func FuzzParsers(f *testing.F) {
	for _, s := range []string{".:53 {\n kubernetes cluster.local {\n pods insecure\n }\n}\n", "search a b\nnameserver 1.2.3.4\noptions ndots:5", "{ } { {", "\"", "a:b:c {\n}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseResolvConf(s)
		if cf, err := ParseCorefile(s); err == nil {
			_, _ = NewServer(cf, NewMapCluster(), ServerOptions{})
		}
		_, _ = ParseKubernetesStanza(s, []string{"."})
	})
}

// TestAnswerAllocations pins the per-query cost: one Service lookup must stay a handful of allocations.
func TestAnswerAllocations(t *testing.T) {
	srv, _ := shopServer(t)
	q := miekg.Question{Name: "cart.shop.svc.cluster.local.", Qtype: miekg.TypeA, Qclass: miekg.ClassINET}
	if n := testing.AllocsPerRun(200, func() { srv.Answer(q) }); n > 25 {
		t.Errorf("Server.Answer allocates %.0f times per query, want ≤ 25", n)
	}
}

func TestForwardWithUpstreamStandIn(t *testing.T) {
	cf, err := ParseCorefile(".:53 {\n forward . 8.8.8.8\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	rr, _ := miekg.NewRR("example.com. 60 IN A 93.184.216.34")
	srv, err := NewServer(cf, NewMapCluster(), ServerOptions{Upstream: stubUpstream{answer: []miekg.RR{rr}}})
	if err != nil {
		t.Fatal(err)
	}
	a := srv.Answer(miekg.Question{Name: "example.com.", Qtype: miekg.TypeA, Qclass: miekg.ClassINET})
	if !a.Known || a.Plugin != "forward" || len(a.Records()) != 1 {
		t.Errorf("a forwarded name with an upstream stand-in is answered by it: got %+v", a)
	}
}
