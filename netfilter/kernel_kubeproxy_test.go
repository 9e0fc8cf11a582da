package netfilter

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kpath/kpath/internal/oracle"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/mesh/capture"
)

// The kube-proxy and mesh kernel differential: rules are RENDERED by kpath (kubeproxy from the oracle's recorded
// Services/EndpointSlices, mesh/capture from istio-nftables' configuration), loaded with `nft -f` into a fresh
// network namespace, and one packet is sent while `nft monitor trace` watches. The chain/rule sequence and the
// final verdict the kernel reports must equal one branch of netfilter.Eval's walk over `nft list ruleset` from that
// namespace. Where the oracle records what kube-proxy does with the flow, the walk must agree with it too.
// Helpers (newKernelLab, load, traceSend, walkLines) live in kernel_test.go.

// kpOracleInput reads an oracle input.yaml: the fake proxier's configuration (first-line comment) and the objects.
func kpOracleInput(t *testing.T, path string, nodeIPs []string) (kubeproxy.Config, []*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading oracle input: %v", err)
	}
	first, rest, _ := strings.Cut(string(data), "\n")
	const prefix = "# kube-proxy fake-proxier config: "
	if !strings.HasPrefix(first, prefix) {
		t.Fatalf("%s: the first line is not the proxier config", path)
	}
	var h struct {
		IPFamily                 string   `json:"ipFamily"`
		LocalDetectorIfLocal     []string `json:"localDetectorIfLocal"`
		LocalDetectorImplemented bool     `json:"localDetectorImplemented"`
		MasqueradeAll            bool     `json:"masqueradeAll"`
		MasqueradeMark           string   `json:"masqueradeMark"`
		NodeIP                   string   `json:"nodeIP"`
		NodeName                 string   `json:"nodeName"`
		NodePortAddresses        string   `json:"nodePortAddresses"`
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(first, prefix)), &h); err != nil {
		t.Fatalf("%s: proxier config: %v", path, err)
	}
	cfg := kubeproxy.Config{Mode: kubeproxy.ModeNFTables, NodeName: h.NodeName, MasqueradeAll: h.MasqueradeAll,
		Family: corev1.IPFamily(h.IPFamily), NodeIP: netip.MustParseAddr(h.NodeIP),
		ServiceCIDRs: []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")}} // the fake proxier's ServiceCIDR
	for _, s := range nodeIPs {
		cfg.NodeIPs = append(cfg.NodeIPs, netip.MustParseAddr(s))
	}
	if h.LocalDetectorImplemented && len(h.LocalDetectorIfLocal) == 2 {
		cfg.PodCIDR = netip.MustParsePrefix(h.LocalDetectorIfLocal[1])
	}
	var mark uint32
	if _, err := fmt.Sscanf(h.MasqueradeMark, "0x%x", &mark); err != nil {
		t.Fatalf("%s: masquerade mark %q", path, h.MasqueradeMark)
	}
	for b := 0; b < 32; b++ {
		if mark == 1<<b {
			bit := b
			cfg.MasqueradeBit = &bit
		}
	}
	for _, s := range strings.Fields(strings.Trim(h.NodePortAddresses, "[]")) {
		cfg.NodePortAddresses = append(cfg.NodePortAddresses, netip.MustParsePrefix(s))
	}
	svcs, slices := oracle.KubeProxyObjects(t, path, rest)
	return cfg, svcs, slices
}

// rootNetnsState is what must not change in the root network namespace while the tests run.
func rootNetnsState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range [][]string{{"nft", "list", "ruleset"}, {"ip", "-o", "link"}, {"ip", "-o", "addr"}, {"ip", "route"}, {"ip", "rule"}} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
		b.WriteString("$ " + strings.Join(argv, " ") + "\n" + string(out))
	}
	return b.String()
}

// guardRootNetns fails the test if the root namespace's ruleset, links, addresses, routes or rules changed by the
// time the test (and every cleanup registered after this call) has finished.
func guardRootNetns(t *testing.T) {
	t.Helper()
	before := rootNetnsState(t)
	t.Cleanup(func() {
		if after := rootNetnsState(t); after != before {
			t.Errorf("the root network namespace changed during the test:\n--- before ---\n%s\n--- after ---\n%s", before, after)
		}
	})
}

// kernelFlow is one packet sent through rendered rules in a fresh namespace.
type kernelFlow struct {
	name   string
	rules  func(t *testing.T) string // the nft script to load
	src    string                    // source address; the peer (or, when local, the node) sends from it
	local  bool                      // sent by the node namespace itself (OUTPUT) instead of arriving from the peer
	proto  string                    // tcp | udp
	dst    string                    // ip:port
	owner  string                    // "uid gid" for locally generated packets, or ""
	expect string                    // the oracle's output for the flow ("" to skip), compared with flowOutput
	masq   bool                      // the oracle's masquerade flag
}

func (f kernelFlow) packet() string {
	p := fmt.Sprintf("%s %s:40000 -> %s", f.proto, f.src, f.dst)
	if !f.local {
		p += " iif veth-n"
	}
	if f.owner != "" {
		var uid, gid string
		fmt.Sscan(f.owner, &uid, &gid)
		p += " uid " + uid + " gid " + gid
	}
	return p
}

// sendArgv sends the flow's first packet from the right namespace (%s replaced by namespace names later).
func (f kernelFlow) sendArgv() []string {
	host, port, _ := strings.Cut(f.dst, ":")
	dev := "/dev/tcp/"
	script := "exec 3<>" + dev + host + "/" + port
	if f.proto == "udp" {
		script = "echo kpath > /dev/udp/" + host + "/" + port
	}
	ns := "{peer}"
	if f.local {
		ns = "{node}"
	}
	argv := []string{"ip", "netns", "exec", ns}
	if f.owner != "" {
		var uid, gid string
		fmt.Sscan(f.owner, &uid, &gid)
		argv = append(argv, "setpriv", "--reuid", uid, "--regid", gid, "--clear-groups")
	}
	return append(argv, "timeout", "1", "bash", "-c", script)
}

// runKernelFlow loads the flow's rules in a fresh lab, routes the source address, sends, and compares.
func runKernelFlow(t *testing.T, f kernelFlow, nodeIPs []string) {
	l := newKernelLab(t, nodeIPs)
	listed := l.load(f.rules(t))
	rs := ParseNFT(listed)
	for _, p := range rs.Problems {
		t.Errorf("parsing nft list ruleset from the kernel: %s", p)
	}
	dstHost, _, _ := strings.Cut(f.dst, ":")
	switch {
	case f.local:
		// the node sends from f.src (one of its own addresses) toward dst
		run(t, "ip", "-n", l.node, "route", "replace", dstHost+"/32", "dev", "veth-n", "src", f.src)
	case f.src != "10.180.0.2":
		run(t, "ip", "-n", l.peer, "addr", "add", f.src+"/32", "dev", "veth-p")
		run(t, "ip", "-n", l.peer, "route", "replace", "default", "via", "10.180.255.254", "src", f.src)
	}
	pkt, err := ParsePacket(f.packet())
	if err != nil {
		t.Fatal(err)
	}
	res := Eval(rs, pkt, l.nodeModel(nodeIPs), Options{})
	if f.expect != "" || f.masq {
		out, masq := flowOutput(res)
		if sortedList(out) != sortedList(f.expect) || masq != f.masq {
			t.Errorf("the walk of the rendered rules gives %q masq=%v; kube-proxy's recorded flow says %q masq=%v", out, masq, f.expect, f.masq)
		}
	}
	send := f.sendArgv()
	for i, s := range send {
		send[i] = strings.NewReplacer("{peer}", l.peer, "{node}", l.node).Replace(s)
	}
	got := l.traceSend(send, "ip daddr "+dstHost+" ")
	if len(got) == 0 {
		t.Fatalf("no kernel trace for the packet %s", f.packet())
	}
	for _, b := range res.Branches {
		if sameLines(walkLines(b), got) {
			t.Logf("kernel took the branch with p=%.3g (%s %s): %d trace lines match", b.Probability, b.Verdict, b.Packet.Dst, len(got))
			return
		}
	}
	var sb strings.Builder
	sb.WriteString("kernel trace:\n")
	for _, x := range got {
		sb.WriteString("  " + x.String() + "\n")
	}
	for i, b := range res.Branches {
		fmt.Fprintf(&sb, "walk branch %d (p=%.3g, %s):\n", i, b.Probability, b.Verdict)
		for _, x := range walkLines(b) {
			sb.WriteString("  " + x.String() + "\n")
		}
	}
	t.Errorf("no branch of the walk matches the kernel trace\n%s", sb.String())
}

// TestKernelDifferentialRenderedKubeProxy: kube-proxy nftables rules rendered by kpath from the oracle inputs.
func TestKernelDifferentialRenderedKubeProxy(t *testing.T) {
	requireKernel(t)
	guardRootNetns(t)
	dir := filepath.Join(oraclesDir(t), "kube-proxy", "derived", "nftables")
	nodeIPs := []string{"192.168.0.2", "192.168.1.2", "192.168.99.11"} // the fake proxier's IPv4 node addresses
	render := func(input string, edit func(*kubeproxy.Config)) func(t *testing.T) string {
		return func(t *testing.T) string {
			path := filepath.Join(dir, "packet_flows__"+input+".input.yaml")
			if _, err := os.Stat(path); err != nil {
				t.Skipf("oracle input %s is not in this copy of the oracle", input)
			}
			cfg, svcs, slices := kpOracleInput(t, path, nodeIPs)
			if edit != nil {
				edit(&cfg)
			}
			var b strings.Builder
			if err := kubeproxy.RenderNFTables(&b, cfg, svcs, slices); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
	}
	general := render("TestClusterIPGeneral__L641", nil)
	nodePorts := render("TestNodePorts_ipv4__L1007", nil)
	etpLocal := render("TestExternalTrafficPolicyLocal__L1120", nil)
	etpCluster := render("TestExternalTrafficPolicyCluster__L1236", nil)
	itpNoLocal := render("TestInternalTrafficPolicy_internalTrafficPolicy_is_local_and_there_are_no_local_endpoints__L2534", nil)
	itpDeleted := render("TestInternalTrafficPolicy_internalTrafficPolicy_is_cluster__L2474__2", nil)
	masqBase := render("TestInternalExternalMasquerade_base__L3693", nil)
	// Derived (not an oracle flow): the eTP Local input seen from a node that hosts none of the endpoints.
	etpLocalElsewhere := render("TestExternalTrafficPolicyLocal__L1120", func(c *kubeproxy.Config) { c.NodeName = "node-without-endpoints" })

	flows := []kernelFlow{
		{name: "a pod to a ClusterIP is DNATed to its one endpoint", rules: general, src: "10.180.0.2", proto: "tcp", dst: "172.30.0.41:80", expect: "10.180.0.1:80"},
		{name: "a pod to a ClusterIP with two endpoints forks between them", rules: general, src: "10.180.0.2", proto: "tcp", dst: "172.30.0.42:80", expect: "10.180.0.1:80, 10.180.2.1:80"},
		{name: "a UDP packet to a ClusterIP port shared with TCP goes to the UDP endpoints", rules: general, src: "10.180.0.2", proto: "udp", dst: "172.30.0.42:53", expect: "10.180.0.1:53, 10.180.2.1:53"},
		{name: "a ClusterIP port the Service does not have is rejected", rules: general, src: "10.180.0.2", proto: "tcp", dst: "172.30.0.41:443", expect: "REJECT"},
		{name: "an unallocated address in the service CIDR is dropped", rules: general, src: "10.180.0.2", proto: "tcp", dst: "172.30.0.50:80", expect: "DROP"},
		{name: "an external client to a NodePort is DNATed and masqueraded", rules: nodePorts, src: "203.0.113.2", proto: "tcp", dst: "192.168.0.2:3001", expect: "10.180.0.1:80, 10.180.2.1:80", masq: true},
		{name: "an external client to an eTP Local NodePort reaches only the local endpoint, unmasqueraded", rules: etpLocal, src: "203.0.113.2", proto: "tcp", dst: "192.168.0.2:3001", expect: "10.180.2.1:80"},
		{name: "an external client to an eTP Local LoadBalancer IP reaches only the local endpoint", rules: etpLocal, src: "203.0.113.2", proto: "tcp", dst: "1.2.3.4:80", expect: "10.180.2.1:80"},
		{name: "an external client to an eTP Local NodePort on a node without local endpoints is dropped", rules: etpLocalElsewhere, src: "203.0.113.2", proto: "tcp", dst: "192.168.0.2:3001", expect: "DROP"},
		{name: "an external client to an eTP Cluster LoadBalancer IP is masqueraded", rules: etpCluster, src: "203.0.113.2", proto: "tcp", dst: "1.2.3.4:80", expect: "10.180.0.1:80, 10.180.2.1:80", masq: true},
		{name: "a pod to an eTP Cluster NodePort is masqueraded", rules: etpCluster, src: "10.0.0.2", proto: "tcp", dst: "192.168.0.2:3001", expect: "10.180.0.1:80, 10.180.2.1:80", masq: true},
		{name: "a pod to an iTP Local ClusterIP without local endpoints is dropped", rules: itpNoLocal, src: "10.0.0.2", proto: "tcp", dst: "172.30.1.1:80", expect: "DROP"},
		{name: "a pod to a ClusterIP whose endpoints were deleted is rejected", rules: itpDeleted, src: "10.0.0.2", proto: "tcp", dst: "172.30.1.1:80", expect: "REJECT"},
		{name: "the node itself to a ClusterIP goes through output and is masqueraded", rules: masqBase, src: "192.168.0.2", local: true, proto: "tcp", dst: "172.30.0.41:80", expect: "10.180.0.1:80, 10.180.1.1:80", masq: true},
		{name: "an external client to an eTP Local NodePort with a local endpoint keeps its source", rules: masqBase, src: "203.0.113.2", proto: "tcp", dst: "192.168.0.2:3002", expect: "10.180.0.2:80"},
	}
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) { runKernelFlow(t, f, nodeIPs) })
	}
}

// TestKernelDifferentialRenderedMesh: istio-nftables rules rendered by kpath for a sidecar pod; the lab's node
// namespace plays the pod's network namespace.
func TestKernelDifferentialRenderedMesh(t *testing.T) {
	requireKernel(t)
	guardRootNetns(t)
	istio := func(edit func(*capture.IstioConfig)) func(t *testing.T) string {
		return func(t *testing.T) string {
			c := capture.DefaultIstioConfig()
			if edit != nil {
				edit(&c)
			}
			var b strings.Builder
			if err := capture.RenderIstioNFTables(&b, c); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
	}
	def := istio(nil)
	excluded := istio(func(c *capture.IstioConfig) { c.OutboundIPRangesExclude = "10.1.0.0/16" })
	flows := []kernelFlow{
		{name: "istio: the app's outbound TCP (uid 1000) is redirected to Envoy's 15001", rules: def, src: "10.180.255.254", local: true, proto: "tcp", dst: "10.1.2.3:80", owner: "1000 1000"},
		{name: "istio: Envoy's own outbound TCP (uid 1337) bypasses the redirect", rules: def, src: "10.180.255.254", local: true, proto: "tcp", dst: "10.1.2.3:80", owner: "1337 1337"},
		{name: "istio: inbound TCP to the pod is redirected to Envoy's 15006", rules: def, src: "10.180.0.2", proto: "tcp", dst: "10.180.255.254:8080"},
		{name: "istio: inbound TCP to an excluded port (15020) is not redirected", rules: def, src: "10.180.0.2", proto: "tcp", dst: "10.180.255.254:15020"},
		{name: "istio: outbound TCP to an excluded CIDR is not redirected", rules: excluded, src: "10.180.255.254", local: true, proto: "tcp", dst: "10.1.2.3:80", owner: "1000 1000"},
	}
	for _, f := range flows {
		t.Run(f.name, func(t *testing.T) { runKernelFlow(t, f, nil) })
	}
}
