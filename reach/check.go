package reach

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/netpol"
)

// Intents is the file `kpath check` reads:
//
//	intents:
//	- from: shop/frontend          # NAMESPACE/WORKLOAD, NAMESPACE/* or *
//	  to: shop/cart
//	  port: 8080                   # the pod's port (policy runs after Service DNAT); omit for "any port"
//	  protocol: TCP                # default TCP
//	  expect: allowed              # allowed | denied
//	- from: "*"
//	  to: shop/db
//	  port: 5432
//	  expect: denied
//	  except: [shop/cart]          # these sources must be allowed instead
//	- dns: true                    # every workload of every namespace reaches kube-dns on UDP 53
type Intents struct {
	Intents []Intent `json:"intents"`
}

// Intent is one expectation.
type Intent struct {
	Name     string          `json:"name,omitempty"`
	From     string          `json:"from,omitempty"`
	To       string          `json:"to,omitempty"`
	Port     int32           `json:"port,omitempty"`
	Protocol corev1.Protocol `json:"protocol,omitempty"`
	Expect   string          `json:"expect,omitempty"`
	Except   []string        `json:"except,omitempty"`
	DNS      bool            `json:"dns,omitempty"`
}

// ParseIntents reads an intents file; errors name the intent.
func ParseIntents(data []byte) (*Intents, error) {
	var in Intents
	if err := yaml.UnmarshalStrict(data, &in); err != nil {
		return nil, fmt.Errorf("reading intents: %w", err)
	}
	for i, x := range in.Intents {
		where := fmt.Sprintf("intents[%d]", i)
		if x.DNS {
			continue
		}
		if x.From == "" || x.To == "" {
			return nil, fmt.Errorf("%s: needs from and to (or dns: true)", where)
		}
		if x.Expect != "allowed" && x.Expect != "denied" {
			return nil, fmt.Errorf("%s: expect must be allowed or denied, got %q", where, x.Expect)
		}
		if x.Port < 0 || x.Port > 65535 {
			return nil, fmt.Errorf("%s: port %d is not within 1-65535", where, x.Port)
		}
		switch x.Protocol {
		case "", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			return nil, fmt.Errorf("%s: protocol must be TCP, UDP or SCTP, got %q", where, x.Protocol)
		}
	}
	return &in, nil
}

// Violation is one pair that contradicts an intent.
type Violation struct {
	Intent string `json:"intent"`
	Src    string `json:"src"`
	Dst    string `json:"dst"`
	Want   string `json:"want"`
	Got    string `json:"got"`
	Why    string `json:"why"`
}

// CheckResult is the outcome of every intent.
type CheckResult struct {
	Checked    int         `json:"checked"` // pairs checked
	Intents    int         `json:"intents"`
	Violations []Violation `json:"violations"`
	Notes      []string    `json:"notes,omitempty"`
}

// OK reports whether no intent was violated.
func (r *CheckResult) OK() bool { return len(r.Violations) == 0 }

type wl struct {
	label string
	ns    string
	name  string
	pod   *corev1.Pod
}

func workloads(s *cluster.Snapshot) []wl {
	seen := map[string]bool{}
	var out []wl
	for _, p := range s.Pods {
		r := s.WorkloadOf(p)
		l := workloadLabel(s, p)
		if !seen[l] {
			seen[l] = true
			out = append(out, wl{label: l, ns: r.Namespace, name: r.Name, pod: p})
		}
	}
	return out
}

// matches reports whether a workload matches a pattern: "*", "ns/*", "ns/name" (workload or pod name).
func (w wl) matches(pat string) bool {
	if pat == "*" {
		return true
	}
	ns, n, ok := strings.Cut(pat, "/")
	if !ok {
		return false
	}
	if ns != "*" && ns != w.ns {
		return false
	}
	return n == "*" || n == w.name || n == w.pod.Name || strings.TrimSuffix(pat, "]") == strings.TrimSuffix(w.label, "]")
}

// Check evaluates every intent with the engine (Evaluate per pair, so each violation carries its reason).
func Check(eng *netpol.Engine, in *Intents) *CheckResult {
	s := eng.Snapshot()
	ws := workloads(s)
	res := &CheckResult{Intents: len(in.Intents), Violations: []Violation{}}
	for i, x := range in.Intents {
		name := x.Name
		if name == "" {
			name = describe(x)
		}
		if x.DNS {
			checkDNS(eng, ws, name, res)
			continue
		}
		proto := x.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		var srcs, dsts []wl
		for _, w := range ws {
			if w.matches(x.From) {
				srcs = append(srcs, w)
			}
			if w.matches(x.To) {
				dsts = append(dsts, w)
			}
		}
		if len(srcs) == 0 || len(dsts) == 0 {
			res.Notes = append(res.Notes, fmt.Sprintf("intents[%d] %s: matches no workload (from %d, to %d)", i, name, len(srcs), len(dsts)))
		}
		for _, a := range srcs {
			want := x.Expect
			for _, e := range x.Except {
				if a.matches(e) {
					want = flip(want)
				}
			}
			for _, b := range dsts {
				if a.label == b.label {
					continue
				}
				res.Checked++
				got, why := decide(eng, a.pod, b.pod, x.Port, proto)
				if got != want {
					res.Violations = append(res.Violations, Violation{Intent: name, Src: a.label, Dst: b.label, Want: want, Got: got, Why: why})
				}
			}
		}
	}
	return res
}

func flip(s string) string {
	if s == "allowed" {
		return "denied"
	}
	return "allowed"
}

func describe(x Intent) string {
	if x.DNS {
		return "DNS reachable from every namespace"
	}
	port := "any port"
	if x.Port != 0 {
		p := x.Protocol
		if p == "" {
			p = corev1.ProtocolTCP
		}
		port = fmt.Sprintf("%s %d", p, x.Port)
	}
	s := fmt.Sprintf("%s → %s (%s) %s", x.From, x.To, port, x.Expect)
	if len(x.Except) > 0 {
		s += " except " + strings.Join(x.Except, ", ")
	}
	return s
}

// decide says allowed/denied for a pair on one port (port 0: any connection), with the reason.
func decide(eng *netpol.Engine, a, b *corev1.Pod, port int32, proto corev1.Protocol) (string, string) {
	pa, pb := eng.PodPeer(a), eng.PodPeer(b)
	if port == 0 {
		c := eng.Conns(pa, pb)
		if c.IsEmpty() {
			return "denied", "no connection is allowed (check a port for the deciding rule)"
		}
		return "allowed", "allowed: " + c.String()
	}
	d := eng.Evaluate(netpol.Conn{Src: pa, Dst: pb, Port: port, Protocol: proto})
	if d.Allowed {
		return "allowed", "egress: " + d.Egress.Why + "; ingress: " + d.Ingress.Why
	}
	var why []string
	for _, bl := range d.Blockers {
		why = append(why, bl.Direction+": "+bl.Why)
	}
	if len(why) == 0 {
		why = append(why, "unknown: "+d.Egress.Why+"; "+d.Ingress.Why)
	}
	return "denied", strings.Join(why, "; ")
}

// checkDNS: every pod-network workload must reach at least one kube-dns pod on UDP 53.
func checkDNS(eng *netpol.Engine, ws []wl, name string, res *CheckResult) {
	s := eng.Snapshot()
	dns := s.PodsMatching("kube-system", labels.SelectorFromSet(labels.Set{"k8s-app": "kube-dns"}))
	if len(dns) == 0 {
		res.Violations = append(res.Violations, Violation{Intent: name, Src: "*", Dst: "kube-system/kube-dns", Want: "allowed", Got: "denied",
			Why: "no pod labelled k8s-app=kube-dns in kube-system"})
		return
	}
	sort.Slice(dns, func(i, j int) bool { return dns[i].Name < dns[j].Name })
	for _, w := range ws {
		if w.pod.Spec.HostNetwork {
			continue
		}
		res.Checked++
		var lastWhy string
		ok := false
		for _, d := range dns {
			got, why := decide(eng, w.pod, d, 53, corev1.ProtocolUDP)
			if got == "allowed" {
				ok = true
				break
			}
			lastWhy = why
		}
		if !ok {
			res.Violations = append(res.Violations, Violation{Intent: name, Src: w.label, Dst: workloadLabel(s, dns[0]) + " UDP 53",
				Want: "allowed", Got: "denied", Why: lastWhy})
		}
	}
}

// WriteCheckText prints the result for people: one block per violation, then a summary line.
func WriteCheckText(w interface{ Write([]byte) (int, error) }, r *CheckResult) {
	for _, v := range r.Violations {
		fmt.Fprintf(w, "VIOLATION %s\n  %s => %s: want %s, got %s\n  why: %s\n", v.Intent, v.Src, v.Dst, v.Want, v.Got, v.Why)
	}
	for _, n := range r.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	status := "OK"
	if !r.OK() {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%s: %d intents, %d pairs checked, %d violations\n", status, r.Intents, r.Checked, len(r.Violations))
}
