package netfilter

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The kernel differential test loads a ruleset into fresh network namespaces, sends one packet, reads
// `nft monitor trace` and compares the chain/rule sequence with the walk. It never touches the root namespace.

const traceTable = "kpathtrace"

type kernelLab struct {
	t          *testing.T
	node, peer string // namespace names
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func requireKernel(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("kernel differential test needs root (network namespaces, nft)")
	}
	for _, b := range []string{"ip", "nft", "bash", "timeout", "stdbuf", "setpriv"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("kernel differential test needs %s", b)
		}
	}
}

// newKernelLab creates two namespaces joined by a veth pair created directly inside them:
// peer (10.180.0.2/16, a pod or outside client) —veth— node (10.180.255.254/16 on veth-n, node IPs on lo).
func newKernelLab(t *testing.T, nodeIPs []string) *kernelLab {
	requireKernel(t)
	id := fmt.Sprintf("%06x", rand.Intn(1<<24))
	l := &kernelLab{t: t, node: "kpathnf-" + id + "-n", peer: "kpathnf-" + id + "-p"}
	run(t, "ip", "netns", "add", l.node)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.node).Run() })
	run(t, "ip", "netns", "add", l.peer)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.peer).Run() })
	run(t, "ip", "-n", l.node, "link", "add", "veth-n", "type", "veth", "peer", "name", "veth-p", "netns", l.peer)
	run(t, "ip", "-n", l.node, "addr", "add", "10.180.255.254/16", "dev", "veth-n")
	for _, ip := range nodeIPs {
		run(t, "ip", "-n", l.node, "addr", "add", ip+"/32", "dev", "lo")
	}
	run(t, "ip", "-n", l.node, "link", "set", "lo", "up")
	run(t, "ip", "-n", l.node, "link", "set", "veth-n", "up")
	run(t, "ip", "netns", "exec", l.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	run(t, "ip", "-n", l.node, "route", "add", "default", "dev", "veth-n")
	run(t, "ip", "-n", l.peer, "addr", "add", "10.180.0.2/16", "dev", "veth-p")
	run(t, "ip", "-n", l.peer, "link", "set", "lo", "up")
	run(t, "ip", "-n", l.peer, "link", "set", "veth-p", "up")
	run(t, "ip", "-n", l.peer, "route", "add", "default", "via", "10.180.255.254")
	return l
}

func (l *kernelLab) nodeModel(nodeIPs []string) *Node {
	n := &Node{Routes: []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Oif: "veth-n"}},
		IfAddrs: map[string]netip.Addr{"veth-n": netip.MustParseAddr("10.180.255.254")}}
	n.LocalAddrs = append(n.LocalAddrs, netip.MustParseAddr("10.180.255.254"))
	for _, ip := range nodeIPs {
		n.LocalAddrs = append(n.LocalAddrs, netip.MustParseAddr(ip))
	}
	return n
}

// load applies an nft ruleset plus the trace table inside the node namespace and returns `nft list ruleset` from
// there, which is what the walk parses (its rule text is what the kernel trace prints).
func (l *kernelLab) load(ruleset string) string {
	f := filepath.Join(l.t.TempDir(), "rules.nft")
	trace := fmt.Sprintf("table inet %s {\n chain pre { type filter hook prerouting priority -400; meta nftrace set 1; }\n"+
		" chain out { type filter hook output priority -400; meta nftrace set 1; }\n}\n", traceTable)
	if err := os.WriteFile(f, []byte(ruleset+"\n"+trace), 0o600); err != nil {
		l.t.Fatal(err)
	}
	run(l.t, "ip", "netns", "exec", l.node, "nft", "-f", f)
	return run(l.t, "ip", "netns", "exec", l.node, "nft", "-a", "list", "ruleset")
}

type traceLine struct{ table, chain, rule, verdict string }

func (x traceLine) String() string {
	if x.rule == "" {
		return x.table + " " + x.chain + " " + x.verdict
	}
	return x.table + " " + x.chain + " rule " + x.rule + " (verdict " + x.verdict + ")"
}

// traceSend starts `nft monitor trace` in the node namespace, runs send, and returns the trace lines of the first
// traced packet whose header line contains match.
func (l *kernelLab) traceSend(send []string, match string) []traceLine {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mon := exec.CommandContext(ctx, "ip", "netns", "exec", l.node, "stdbuf", "-oL", "nft", "monitor", "trace")
	var out bytes.Buffer
	mon.Stdout = &out
	mon.Stderr = &out
	if err := mon.Start(); err != nil {
		l.t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond)
	_ = exec.Command(send[0], send[1:]...).Run() // connection failures are expected: nobody answers
	time.Sleep(400 * time.Millisecond)
	cancel()
	_ = mon.Wait()
	var id string
	var lines []traceLine
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[0] != "trace" || f[1] != "id" {
			continue
		}
		tid, fam, table, chain, kind := f[2], f[3], f[4], f[5], ""
		if len(f) > 6 {
			kind = f[6]
		}
		if id == "" {
			if kind == "packet:" && strings.Contains(sc.Text(), match) {
				id = tid
			}
			continue
		}
		if tid != id || table == traceTable {
			continue
		}
		switch kind {
		case "rule":
			rest := strings.Join(f[7:], " ")
			i := strings.LastIndex(rest, " (verdict ")
			if i < 0 {
				continue
			}
			lines = append(lines, traceLine{fam + " " + table, chain, rest[:i], strings.TrimSuffix(rest[i+len(" (verdict "):], ")")})
		case "policy":
			lines = append(lines, traceLine{fam + " " + table, chain, "", "policy " + f[7]})
		}
	}
	return lines
}

func walkLines(b Branch) []traceLine {
	var out []traceLine
	for _, h := range b.Hits {
		if h.Table == traceTable {
			continue
		}
		out = append(out, traceLine{string(h.Family) + " " + h.Table, h.Chain, h.Rule, h.Verdict})
	}
	return out
}

func sameLines(a, b []traceLine) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestKernelDifferential(t *testing.T) {
	requireKernel(t)
	kp := filepath.Join(oraclesDir(t), "kube-proxy", "derived", "nftables")
	istio := filepath.Join(oraclesDir(t), "istio-iptables", "tools", "istio-nftables", "pkg", "capture", "testdata")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	nodeIPs := []string{"192.168.0.2"}
	cases := []struct {
		name   string
		rules  string
		packet string
		send   []string // run from the host; %s are replaced by namespace names (node, peer)
		match  string   // text identifying the traced packet's header
	}{
		{"pod to a ClusterIP with two endpoints is DNATed in prerouting and forwarded",
			read(filepath.Join(kp, "packet_flows__TestClusterIPGeneral__L641.ruleset.txt")),
			"tcp 10.180.0.2:40000 -> 172.30.0.42:80 iif veth-n",
			[]string{"ip", "netns", "exec", "{peer}", "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/172.30.0.42/80"},
			"ip daddr 172.30.0.42"},
		{"pod to a ClusterIP port the service does not have is rejected in forward",
			read(filepath.Join(kp, "packet_flows__TestClusterIPGeneral__L641.ruleset.txt")),
			"tcp 10.180.0.2:40000 -> 172.30.0.41:443 iif veth-n",
			[]string{"ip", "netns", "exec", "{peer}", "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/172.30.0.41/443"},
			"ip daddr 172.30.0.41"},
		{"client to a NodePort is DNATed, marked and masqueraded",
			read(filepath.Join(kp, "packet_flows__TestNodePorts_ipv4__L1007.ruleset.txt")),
			"tcp 10.180.0.2:40000 -> 192.168.0.2:3001 iif veth-n",
			[]string{"ip", "netns", "exec", "{peer}", "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/192.168.0.2/3001"},
			"ip daddr 192.168.0.2"},
		{"the node itself to a ClusterIP goes through output and postrouting",
			read(filepath.Join(kp, "packet_flows__TestClusterIPGeneral__L641.ruleset.txt")),
			"tcp 10.180.255.254:40000 -> 172.30.0.41:80",
			[]string{"ip", "netns", "exec", "{node}", "timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/172.30.0.41/80"},
			"ip daddr 172.30.0.41"},
		{"istio: outbound TCP from the app (uid 1000) is redirected to 15001",
			read(filepath.Join(istio, "ipnets.golden")),
			"tcp 10.180.255.254:40000 -> 10.1.2.3:80 uid 1000 gid 1000",
			[]string{"ip", "netns", "exec", "{node}", "setpriv", "--reuid", "1000", "--regid", "1000", "--clear-groups",
				"timeout", "1", "bash", "-c", "exec 3<>/dev/tcp/10.1.2.3/80"},
			"ip daddr 10.1.2.3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(kp, "packet_flows__TestNodePorts_ipv4__L1007.ruleset.txt")); err != nil && strings.Contains(tc.name, "NodePort") {
				t.Skip("ruleset not in this copy of the oracle")
			}
			l := newKernelLab(t, nodeIPs)
			listed := l.load(tc.rules)
			rs := ParseNFT(listed)
			for _, p := range rs.Problems {
				t.Errorf("parsing nft list ruleset from the kernel: %s", p)
			}
			pkt, err := ParsePacket(tc.packet)
			if err != nil {
				t.Fatal(err)
			}
			res := Eval(rs, pkt, l.nodeModel(nodeIPs), Options{})
			send := make([]string, len(tc.send))
			for i, s := range tc.send {
				send[i] = strings.NewReplacer("{peer}", l.peer, "{node}", l.node).Replace(s)
			}
			got := l.traceSend(send, tc.match)
			if len(got) == 0 {
				t.Fatalf("no kernel trace for the packet")
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
		})
	}
}
