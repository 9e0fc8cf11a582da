package lab

import (
	"context"
	"strings"
	"testing"

	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/trace"
)

func TestPlanOfTheDemo(t *testing.T) {
	p, err := NewPlan(demoSnapshot(t, ""), "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ok   bool
	}{
		{"every namespace carries the lab's prefix", func() bool {
			for _, ns := range p.NamespaceNames() {
				if !strings.HasPrefix(ns, "kp-demo-") {
					return false
				}
			}
			return true
		}()},
		{"the mode follows the profile (nftables)", p.Mode == kubeproxy.ModeNFTables},
		{"the underlay holds every node address and reserves .1 for the external gateway", p.Underlay.String() == "172.18.0.0/24" && p.Gateway.String() == "172.18.0.1"},
		{"four nodes, each with its pod CIDR's .1 on cni0 and .0 on flannel.1", len(p.Nodes) == 4 && p.Nodes[1].BridgeIP.String() == "10.244.1.1" && p.Nodes[1].TunnelIP.String() == "10.244.1.0"},
		{"flannel's VtepMAC annotation is used", p.Node("kpath-worker").VtepMAC == "b2:71:4d:0e:9a:21"},
		{"pods get MTU 1450 under VXLAN", p.PodMTU == 1450 && p.MTU == 1500},
		{"the CoreDNS pods serve DNS", func() bool {
			n := 0
			for _, pp := range p.Pods {
				if pp.DNS {
					n++
				}
			}
			return n == 2
		}()},
		{"crash-looping payments pods run no echo server", func() bool {
			for _, pp := range p.Pods {
				if strings.HasPrefix(pp.Name, "payments-") && pp.Silent == "" {
					return false
				}
			}
			return true
		}()},
		{"a pod's resolv.conf is what kubelet writes (cluster DNS, search list, ndots:5)", strings.Contains(p.Pod("tools/netshoot").ResolvConf, "nameserver 10.96.0.10") &&
			strings.Contains(p.Pod("tools/netshoot").ResolvConf, "search tools.svc.cluster.local svc.cluster.local cluster.local") &&
			strings.Contains(p.Pod("tools/netshoot").ResolvConf, "ndots:5")},
		{"host veth names are the ones the trace engine prints", strings.HasPrefix(p.Pod("tools/netshoot").HostVeth, "veth") && len(p.Pod("tools/netshoot").HostVeth) == 12},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if !c.ok {
				t.Errorf("plan: %+v", p)
			}
		})
	}
}

func TestPlanRefusesWhatThisKernelCannotBuild(t *testing.T) {
	cases := []struct{ name, cni, enc, want string }{
		{"a Geneve overlay is refused, not faked", "cilium-geneve", "", "geneve"},
		{"WireGuard encryption is refused, not faked", "", "wireguard", "WireGuard"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := demoSnapshot(t, "")
			if c.cni != "" {
				s.Profile.Overlay.Type = "geneve"
			}
			if c.enc != "" {
				s.Profile.Encryption = "wireguard"
			}
			_, err := NewPlan(s, "x", "")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s", err, c.want)
			}
		})
	}
}

func TestParseTraceReadsHeadersRulesAndPolicies(t *testing.T) {
	text := `trace id f641fc4b ip kpath-trace pre packet: iif "cni0" ether saddr 82:4c:91:60:87:94 ip saddr 10.244.1.6 ip daddr 10.96.45.12 ip id 18105 ip length 60 tcp sport 40002 tcp dport 8080 tcp flags == syn tcp window 64860
trace id f641fc4b ip kube-proxy nat-prerouting rule jump services (verdict jump services)
trace id f641fc4b ip kube-proxy services rule ip daddr . meta l4proto . th dport vmap @service-ips (verdict goto service-242WI43H-shop/cart/tcp/http)
trace id f641fc4b ip kube-proxy service-242WI43H-shop/cart/tcp/http rule meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.244.1.2 . 8080, 1 : 10.244.3.4 . 8080 } (verdict accept)
trace id f641fc4b ip kube-proxy filter-prerouting-pre-dnat policy accept
`
	evs := parseTrace("ns", text)
	if len(evs) != 5 {
		t.Fatalf("%d events, want 5", len(evs))
	}
	h := evs[3].Hdr
	if h.Src != "10.244.1.6" || h.Dst != "10.96.45.12" || h.SPort != 40002 || h.DPort != 8080 || h.IPID != 18105 || !h.SYN || h.IIF != "cni0" || h.Proto != "tcp" {
		t.Errorf("rule lines inherit the packet header: %+v", h)
	}
	st := kubeProxyStep(evs, nil)
	if st.Action != trace.ActionDNAT || st.Object != "Service shop/cart:http" {
		t.Errorf("kube-proxy step: %+v", st)
	}
	if got := serviceChains(st.Rule); got != "service-242WI43H-shop/cart/tcp/http" {
		t.Errorf("service chains %q", got)
	}
}

func TestDiffSaysMatchOnlyWhenTheKernelAgrees(t *testing.T) {
	j := func(v trace.Verdict, node, chains string) *trace.Journey {
		return &trace.Journey{Verdict: v, Hops: []trace.Hop{
			{Location: trace.Location{Kind: trace.InPod, Name: "a/b"}},
			{Location: trace.Location{Kind: trace.OnNode, Name: node}, Steps: []trace.Step{{Layer: trace.LayerKubeProxy, Action: trace.ActionDNAT, Rule: chains}}}}}
	}
	pred := j(trace.Delivered, "n1", "nat-prerouting → services → service-X-a/b/tcp/p")
	cases := []struct {
		name  string
		obs   *trace.Journey
		diffs int
	}{
		{"the same hops, verdict and a superset of hook chains match", j(trace.Delivered, "n1", "filter-prerouting-pre-dnat → nat-prerouting → services → service-X-a/b/tcp/p → filter-forward"), 0},
		{"a different verdict is a difference", j(trace.Dropped, "n1", "nat-prerouting → services → service-X-a/b/tcp/p"), 1},
		{"a different Service chain is a difference", j(trace.Delivered, "n1", "nat-prerouting → services → service-Y-a/b/tcp/p"), 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if d := Diff(pred, c.obs, nil); len(d) != c.diffs {
				t.Errorf("%d differences, want %d: %+v", len(d), c.diffs, d)
			}
		})
	}
}

func TestUpCleansUpWhenInterrupted(t *testing.T) {
	requireRoot(t)
	guardRootNetns(t)
	t.Setenv("KPATH_LAB_DIR", testStateDir)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // Ctrl-C before the first step
	claimTestLab(t, "ptcancel")
	_, err := Up(ctx, demoSnapshot(t, ""), Options{Name: "ptcancel"})
	if err == nil {
		t.Fatal("Up succeeded after cancellation")
	}
	if _, err := LoadState("ptcancel"); err == nil {
		t.Error("the state file survived the cleanup")
	}
	for _, ns := range (&Plan{}).NamespaceNames() {
		if strings.HasPrefix(ns, "kp-ptcancel-") && netnsExists(ns) {
			t.Errorf("namespace %s survived", ns)
		}
	}
}
