package reach

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/netpol"
)

// PortCheck is the decision for one port of an explained pair.
type PortCheck struct {
	Port     int32           `json:"port"`
	Protocol corev1.Protocol `json:"protocol"`
	Decision netpol.Decision `json:"decision"`
}

// Explanation says why a pair can or cannot talk.
type Explanation struct {
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	SrcPod string `json:"srcPod"`
	DstPod string `json:"dstPod"`
	// Conns is every allowed connection, in netpol-analyzer's notation ("TCP 8080", "All Connections").
	Conns string `json:"conns"`
	// Checks decides each port of interest: the --ports given, else the destination's container ports.
	Checks []PortCheck `json:"checks"`
	Notes  []string    `json:"notes,omitempty"`
	conns  netpol.ConnSet
}

// Allowed reports whether any connection is allowed.
func (x *Explanation) Allowed() bool { return !x.conns.IsEmpty() }

// ResolvePod finds the pod a name stands for: a pod "ns/pod", or the first pod of a workload "ns/name" or
// "ns/name[Kind]". It looks only at the namespace's pods.
func ResolvePod(s *cluster.Snapshot, name string) (*corev1.Pod, error) {
	id, kind, _ := strings.Cut(strings.TrimSuffix(name, "]"), "[")
	ns, n, ok := strings.Cut(id, "/")
	if !ok || ns == "" || n == "" {
		return nil, fmt.Errorf("%q: want NAMESPACE/NAME (a workload or a pod)", name)
	}
	if kind == "" || kind == "Pod" {
		if p := s.Pod(ns, n); p != nil {
			return p, nil
		}
	}
	for _, p := range s.PodsIn(ns) {
		r := s.WorkloadOf(p)
		if r.Name == n && (kind == "" || r.Kind == kind) {
			return p, nil
		}
	}
	var names []string
	seen := map[string]bool{}
	for _, p := range s.PodsIn(ns) {
		r := s.WorkloadOf(p)
		if !seen[r.Name] {
			seen[r.Name] = true
			names = append(names, r.Name)
		}
	}
	sort.Strings(names)
	if len(names) > 8 {
		names = append(names[:8], "…")
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%q: namespace %s has no pods", name, ns)
	}
	return nil, fmt.Errorf("%q: no pod or workload of that name in %s (workloads there: %s)", name, ns, strings.Join(names, ", "))
}

func workloadLabel(s *cluster.Snapshot, p *corev1.Pod) string {
	r := s.WorkloadOf(p)
	if r.Kind == "" {
		r.Kind = "Pod"
	}
	return fmt.Sprintf("%s/%s[%s]", r.Namespace, r.Name, r.Kind)
}

// Explain decides a pair with the engine alone (no matrix needed): every allowed connection, and a full decision
// with the deciding rule for each port of interest. ports limits the ports checked; when empty, the destination's
// container ports are checked (TCP 80 when it declares none).
func Explain(eng *netpol.Engine, src, dst string, ports netpol.ConnSet) (*Explanation, error) {
	s := eng.Snapshot()
	sp, err := ResolvePod(s, src)
	if err != nil {
		return nil, fmt.Errorf("source %w", err)
	}
	dp, err := ResolvePod(s, dst)
	if err != nil {
		return nil, fmt.Errorf("destination %w", err)
	}
	x := &Explanation{Src: workloadLabel(s, sp), Dst: workloadLabel(s, dp), SrcPod: sp.Namespace + "/" + sp.Name, DstPod: dp.Namespace + "/" + dp.Name}
	a, b := eng.PodPeer(sp), eng.PodPeer(dp)
	x.conns = eng.Conns(a, b)
	x.Conns = x.conns.String()
	type pp struct {
		port  int32
		proto corev1.Protocol
	}
	var want []pp
	if !ports.IsEmpty() {
		for _, proto := range netpol.Protocols {
			for _, r := range ports.Ranges(proto) {
				if r.Hi-r.Lo > 16 {
					want = append(want, pp{r.Lo, proto})
					x.Notes = append(x.Notes, fmt.Sprintf("%s %d-%d checked at its first port only", proto, r.Lo, r.Hi))
					continue
				}
				for p := r.Lo; p <= r.Hi; p++ {
					want = append(want, pp{p, proto})
				}
			}
		}
	} else {
		for i := range dp.Spec.Containers {
			for _, cp := range dp.Spec.Containers[i].Ports {
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				want = append(want, pp{cp.ContainerPort, proto})
			}
		}
		if len(want) == 0 {
			want = append(want, pp{80, corev1.ProtocolTCP})
			x.Notes = append(x.Notes, "the destination declares no container ports; TCP 80 checked")
		}
	}
	for _, w := range want {
		d := eng.Evaluate(netpol.Conn{Src: a, Dst: b, Port: w.port, Protocol: w.proto})
		x.Checks = append(x.Checks, PortCheck{Port: w.port, Protocol: w.proto, Decision: d})
	}
	if a.Kind == netpol.PeerHost || b.Kind == netpol.PeerHost {
		x.Notes = append(x.Notes, "a host-network endpoint is involved: policy sees its node's address")
	}
	return x, nil
}

// ParsePorts reads "tcp/80,udp/53,8080,tcp/8000-8100,sctp" into a connection set (a bare number is TCP).
func ParsePorts(s string) (netpol.ConnSet, error) {
	var out netpol.ConnSet
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		proto, rng, ok := strings.Cut(tok, "/")
		if !ok {
			if _, err := fmt.Sscanf(tok, "%d", new(int)); err == nil {
				proto, rng = "TCP", tok
			} else {
				proto, rng = tok, ""
			}
		}
		pr := corev1.Protocol(strings.ToUpper(proto))
		if pr != corev1.ProtocolTCP && pr != corev1.ProtocolUDP && pr != corev1.ProtocolSCTP {
			return out, fmt.Errorf("--ports %q: protocol %q is not tcp, udp or sctp (want e.g. tcp/80,udp/53,8080-8090)", s, proto)
		}
		if rng == "" {
			out = out.Union(netpol.ProtoConns(pr))
			continue
		}
		var lo, hi int
		lohi := strings.SplitN(rng, "-", 2)
		if _, err := fmt.Sscanf(lohi[0], "%d", &lo); err != nil {
			return out, fmt.Errorf("--ports %q: %q is not a port number", s, lohi[0])
		}
		hi = lo
		if len(lohi) == 2 {
			if _, err := fmt.Sscanf(lohi[1], "%d", &hi); err != nil {
				return out, fmt.Errorf("--ports %q: %q is not a port number", s, lohi[1])
			}
		}
		if lo < 1 || hi > 65535 || hi < lo {
			return out, fmt.Errorf("--ports %q: %s is not a port range within 1-65535", s, rng)
		}
		out = out.Union(netpol.PortConns(pr, int32(lo), int32(hi)))
	}
	return out, nil
}
