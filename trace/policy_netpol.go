package trace

import (
	"net/netip"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"

	"github.com/kpath/kpath/netpol"
)

// netpolEvaluator decides policy with package netpol (NetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy,
// ClusterNetworkPolicy). It is built on first use: traces that never meet a policy step do not pay for compiling
// the policies.
type netpolEvaluator struct {
	e    *Engine
	once sync.Once
	eng  *netpol.Engine

	// last memoises the previous evaluation: a journey asks for egress and then ingress of the same connection,
	// and netpol.Evaluate decides both directions at once.
	mu   sync.Mutex
	last struct {
		conn netpol.Conn
		dec  netpol.Decision
		ok   bool
	}
}

func (n *netpolEvaluator) evaluate(c netpol.Conn) netpol.Decision {
	n.mu.Lock()
	if n.last.ok && n.last.conn == c {
		d := n.last.dec
		n.mu.Unlock()
		return d
	}
	n.mu.Unlock()
	d := n.eng.Evaluate(c)
	n.mu.Lock()
	n.last.conn, n.last.dec, n.last.ok = c, d, true
	n.mu.Unlock()
	return d
}

func (n *netpolEvaluator) Decide(dir, srcIP, dstIP string, port int, proto string) PolicyDecision {
	if why := policyUnlisted(n.e.snap); why != "" {
		return PolicyDecision{Verdict: "unknown", Object: "NetworkPolicy", Why: why}
	}
	n.once.Do(func() { n.eng = netpol.New(n.e.snap) })
	s, err1 := netip.ParseAddr(srcIP)
	d, err2 := netip.ParseAddr(dstIP)
	if err1 != nil || err2 != nil {
		return PolicyDecision{Verdict: "unknown", Why: "policy needs IP addresses: " + srcIP + " → " + dstIP}
	}
	dec := n.evaluate(netpol.Conn{Src: netpol.PeerFor(n.e.snap, s), Dst: netpol.PeerFor(n.e.snap, d),
		Port: int32(port), Protocol: corev1.Protocol(proto)})
	side := dec.Egress
	if dir == "ingress" {
		side = dec.Ingress
	}
	out := PolicyDecision{Rule: side.Rule, Why: side.Why}
	switch side.Verdict {
	case netpol.VerdictAllowed, netpol.VerdictNotSelected:
		out.Verdict = "allowed"
	case netpol.VerdictDenied:
		out.Verdict = "denied"
	default:
		out.Verdict = "unknown"
	}
	if side.Rule != "" {
		out.Object, _, _ = strings.Cut(side.Rule, ":")
		// "NetworkPolicy shop/x ingress[0] …" → the policy itself.
		if f := strings.Fields(out.Object); len(f) >= 2 {
			out.Object = f[0] + " " + f[1]
		}
	} else if len(side.Policies) > 0 {
		out.Object = strings.Join(side.Policies, ", ")
	}
	if out.Verdict == "denied" {
		for _, b := range dec.Blockers {
			if b.Direction != dir {
				continue
			}
			obj := strings.Join(b.Policies, ", ")
			if obj == "" {
				obj = out.Object
			}
			out.Blockers = append(out.Blockers, Blocker{Layer: LayerPolicy, Object: obj, Reason: b.Why})
		}
	}
	return out
}

// policyUnlisted says why policy cannot be decided when a policy kind could not be listed ("" when all were): an
// unreadable kind is unknown, not empty, so "no policy selects this pod" would be a guess.
func policyUnlisted(s *cluster.Snapshot) string {
	var kinds []string
	for _, k := range []string{"AdminNetworkPolicy", "NetworkPolicy", "BaselineAdminNetworkPolicy", "ClusterNetworkPolicy"} {
		if r, ok := s.Unlisted[k]; ok {
			kinds = append(kinds, k+" ("+r+")")
		}
	}
	if len(kinds) == 0 {
		return ""
	}
	return "kpath could not list " + strings.Join(kinds, ", ") + ", so it cannot tell whether policy allows this; grant list on them (kpath rbac)"
}
