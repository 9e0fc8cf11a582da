package mesh

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/mesh/capture"
	"github.com/kpath/kpath/netfilter"
)

// Interception is what the pod's interception rules (rendered exactly as the mesh's init container or CNI agent
// installs them, then walked like a kernel dump) do to one new connection.
type Interception struct {
	// Redirected is true when a nat REDIRECT sent the connection to a proxy port.
	Redirected bool
	// To is the destination after the rules: 127.0.0.1:4140 / :15001 for outbound, POD_IP:4143 / :15006 inbound.
	To netip.AddrPort
	// Rule is the deciding rule, quoted as the rules text has it, with its chain and line.
	Rule string
	// Chains is the path through the chains (e.g. OUTPUT → PROXY_INIT_OUTPUT).
	Chains []string
	// Why explains the outcome in a sentence.
	Why string
	// Unknown is set when the walk could not decide (the reason).
	Unknown string
	// Hits is the full walk, one line per rule met.
	Hits []string
}

type ruleKey struct {
	pod *corev1.Pod
}

type podRules struct {
	rs   *netfilter.Ruleset
	node *netfilter.Node
	err  error
}

// Direction of a connection relative to a pod.
const (
	Outbound = "outbound" // the app connects out (nat OUTPUT)
	Inbound  = "inbound"  // a connection arrives on eth0 (nat PREROUTING)
)

// Intercept walks one new connection through pod p's interception rules. dir is Outbound (src is the pod, uid is
// the socket owner) or Inbound (arriving on eth0).
func (m *Model) Intercept(p *corev1.Pod, dir string, proto string, src, dst netip.AddrPort, uid uint32) Interception {
	return m.intercept(p, dir, proto, src, dst, uid, 0)
}

// InterceptMark is Intercept for a socket that carries packet mark mark (Istio ambient: ztunnel marks its own
// sockets 0x539, which the in-pod rules exempt).
func (m *Model) InterceptMark(p *corev1.Pod, dir string, proto string, src, dst netip.AddrPort, mark uint32) Interception {
	return m.intercept(p, dir, proto, src, dst, 0, mark)
}

func (m *Model) intercept(p *corev1.Pod, dir string, proto string, src, dst netip.AddrPort, uid, mark uint32) Interception {
	mb := m.Member(p)
	if mb.Capture == nil {
		return Interception{To: dst, Why: "the pod has no interception rules: " + whyOr(mb.NotCaptured, mb.Why)}
	}
	pr := m.podRules(p, mb.Capture)
	if pr.err != nil {
		return Interception{To: dst, Unknown: pr.err.Error()}
	}
	pkt := netfilter.Packet{Src: src, Dst: dst, Mark: mark}
	switch strings.ToUpper(proto) {
	case "UDP":
		pkt.Proto = netfilter.ProtoUDP
	case "SCTP":
		pkt.Proto = netfilter.ProtoSCTP
	default:
		pkt.Proto = netfilter.ProtoTCP
	}
	if dir == Outbound {
		pkt.Path = netfilter.PathLocal
		pkt.Owner = &netfilter.Owner{UID: uid, GID: uid}
	} else {
		pkt.Path = netfilter.PathInput
		pkt.Iif = "eth0"
	}
	res := netfilter.Eval(pr.rs, pkt, pr.node, netfilter.Options{})
	if len(res.Branches) != 1 {
		return Interception{To: dst, Unknown: fmt.Sprintf("the walk of the interception rules forked into %d branches", len(res.Branches))}
	}
	b := res.Branches[0]
	out := Interception{To: b.Packet.Dst}
	for _, h := range b.Hits {
		out.Hits = append(out.Hits, h.String())
		if h.Rule != "" && (len(out.Chains) == 0 || out.Chains[len(out.Chains)-1] != h.Chain) {
			out.Chains = append(out.Chains, h.Chain)
		}
	}
	if b.Verdict == netfilter.VerdictUnknown {
		out.Unknown = b.Unknown
		return out
	}
	if b.Verdict != netfilter.VerdictAccept {
		out.Unknown = "the interception rules " + b.Verdict + " the connection"
		return out
	}
	// The deciding rule: the redirect, else the last rule that ended the walk of the mesh chains (a RETURN), else
	// the end of the chains.
	var decide *netfilter.Hit
	for i := range b.Hits {
		h := &b.Hits[i]
		if h.Rule == "" {
			continue
		}
		if b.DNAT && (strings.Contains(h.Rule, "REDIRECT") || strings.Contains(h.Rule, "redirect")) {
			decide = h
		}
	}
	if decide == nil {
		for i := len(b.Hits) - 1; i >= 0; i-- {
			h := &b.Hits[i]
			if h.Rule != "" && (h.Verdict == "return" || h.Verdict == "accept") && isMeshChain(h.Chain) {
				decide = h
				break
			}
		}
	}
	if decide != nil {
		out.Rule = fmt.Sprintf("%s %s: %s", h2table(decide), decide.Chain, decide.Rule)
		if decide.Line > 0 {
			out.Rule += fmt.Sprintf("  [line %d]", decide.Line)
		}
	} else if len(out.Chains) > 0 {
		out.Rule = "end of " + strings.Join(out.Chains, " → ") + " (no rule matched)"
	} else {
		out.Rule = "no interception rule matched"
	}
	out.Redirected = b.DNAT
	return out
}

func h2table(h *netfilter.Hit) string { return h.Table }

func isMeshChain(c string) bool {
	return strings.HasPrefix(c, "ISTIO") || strings.HasPrefix(c, "PROXY_INIT") || strings.HasPrefix(c, "istio") ||
		strings.HasPrefix(c, "prerouting") || strings.HasPrefix(c, "output") || c == "OUTPUT" || c == "PREROUTING"
}

// RulesText renders the pod's interception rules (IPv4 or IPv6 iptables-restore input).
func RulesText(cfg capture.Config, v6 bool) (string, error) {
	var v4t, v6t string
	var err error
	switch c := cfg.(type) {
	case capture.IstioConfig:
		v4t, v6t, err = capture.IstioIPTablesRestore(c)
	case capture.AmbientConfig:
		v4t, v6t = capture.AmbientIPTablesRestore(c)
	default:
		var b bytes.Buffer
		err = capture.RenderIPTables(&b, cfg)
		v4t, v6t = b.String(), b.String()
	}
	if v6 {
		return v6t, err
	}
	return v4t, err
}

func (m *Model) podRules(p *corev1.Pod, cfg capture.Config) *podRules {
	k := ruleKey{p}
	m.mu.Lock()
	pr, ok := m.rules[k]
	m.mu.Unlock()
	if ok {
		return pr
	}
	pr = &podRules{}
	ip, _ := netip.ParseAddr(p.Status.PodIP)
	text, err := RulesText(cfg, ip.Is6())
	if err != nil {
		pr.err = fmt.Errorf("rendering %s interception rules for %s/%s: %w", cfg.Mesh(), p.Namespace, p.Name, err)
	} else {
		fam := netfilter.FamilyIP
		if ip.Is6() {
			fam = netfilter.FamilyIP6
		}
		pr.rs = netfilter.ParseIPTables(text, fam)
		if len(pr.rs.Problems) > 0 {
			pr.err = fmt.Errorf("the rendered interception rules of %s/%s do not parse: %s", p.Namespace, p.Name, pr.rs.Problems[0])
		}
		pr.node = podNetns(ip)
		netfilter.Eval(pr.rs, netfilter.Packet{Proto: netfilter.ProtoTCP, Src: netip.AddrPortFrom(ip, 1), Dst: netip.AddrPortFrom(ip, 1), Path: netfilter.PathLocal}, pr.node, netfilter.Options{})
	}
	m.mu.Lock()
	m.rules[k] = pr
	m.mu.Unlock()
	return pr
}

// podNetns is a pod's network namespace as the walk sees it: lo and eth0 (the pod IP), default route on eth0.
func podNetns(ip netip.Addr) *netfilter.Node {
	n := &netfilter.Node{IfAddrs: map[string]netip.Addr{}}
	lo, def := netip.MustParseAddr("127.0.0.1"), netip.MustParsePrefix("0.0.0.0/0")
	loNet := netip.MustParsePrefix("127.0.0.0/8")
	if ip.Is6() {
		lo, def, loNet = netip.IPv6Loopback(), netip.MustParsePrefix("::/0"), netip.MustParsePrefix("::1/128")
	}
	if ip.IsValid() {
		n.LocalAddrs = []netip.Addr{ip}
		n.IfAddrs["eth0"] = ip
	}
	n.IfAddrs["lo"] = lo
	n.Routes = []netfilter.Route{{Dst: loNet, Oif: "lo"}, {Dst: def, Oif: "eth0"}}
	return n
}
