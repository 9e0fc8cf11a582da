package trace

import (
	"fmt"
	"net/netip"
	"net/url"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/packet"
)

// SourceKind says what sends the packet.
type SourceKind string

const (
	FromPod      SourceKind = "pod"
	FromNode     SourceKind = "node"
	FromExternal SourceKind = "external"
)

// Source is the resolved sender.
type Source struct {
	Kind   SourceKind
	Pod    *corev1.Pod
	Node   *corev1.Node
	IP     netip.Addr
	Picked string // how a workload or prefix was narrowed to one pod
}

// TargetKind says how the destination was written.
type TargetKind string

const (
	ToName    TargetKind = "name"    // resolved through DNS from the source
	ToIP      TargetKind = "ip"      // an address as given
	ToService TargetKind = "service" // svc/NS/NAME:PORT
	ToPod     TargetKind = "pod"
	ToNode    TargetKind = "node"
)

// Target is the parsed destination.
type Target struct {
	Kind     TargetKind
	Name     string // DNS name for ToName
	IP       netip.Addr
	Port     int
	PortName string // svc/NS/NAME:PORTNAME, resolved by the engine
	Service  *corev1.Service
	Pod      *corev1.Pod
	Node     *corev1.Node
	L7       *packet.L7
}

var workloadKinds = map[string]string{
	"deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
	"sts": "StatefulSet", "statefulset": "StatefulSet", "statefulsets": "StatefulSet",
	"ds": "DaemonSet", "daemonset": "DaemonSet", "daemonsets": "DaemonSet",
	"rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
	"job": "Job", "jobs": "Job", "cronjob": "CronJob", "cj": "CronJob",
	"rc": "ReplicationController", "replicationcontroller": "ReplicationController",
}

// QuestionError is a question that cannot be asked of this snapshot (a usage error, not a finding).
type QuestionError struct{ Msg string }

func (e *QuestionError) Error() string { return e.Msg }

func qerr(format string, a ...any) error { return &QuestionError{fmt.Sprintf(format, a...)} }

// ResolveSource parses FROM: pod/NS/NAME, <workload>/NS/NAME, NS/NAME, node/NAME, external:IP.
func ResolveSource(s *cluster.Snapshot, from string) (Source, error) {
	if ipStr, ok := strings.CutPrefix(from, "external:"); ok {
		ip, err := netip.ParseAddr(ipStr)
		if err != nil {
			return Source{}, qerr("FROM %q: %q is not an IP address", from, ipStr)
		}
		return Source{Kind: FromExternal, IP: ip}, nil
	}
	parts := strings.Split(from, "/")
	if len(parts) == 2 && (parts[0] == "node" || parts[0] == "no" || parts[0] == "nodes") {
		n := s.Node(parts[1])
		if n == nil {
			return Source{}, qerr("FROM %q: no node %q (nodes: %s)", from, parts[1], nodeNames(s))
		}
		return Source{Kind: FromNode, Node: n, IP: cluster.NodeIP(n)}, nil
	}
	var kind, ns, name string
	switch len(parts) {
	case 2:
		ns, name = parts[0], parts[1]
	case 3:
		kind, ns, name = strings.ToLower(parts[0]), parts[1], parts[2]
	default:
		return Source{}, qerr("FROM %q: want pod/NS/NAME, deploy/NS/NAME, NS/NAME, node/NAME or external:IP", from)
	}
	if !s.NamespaceExists(ns) {
		return Source{}, qerr("FROM %q: no namespace %q", from, ns)
	}
	pick := func(p *corev1.Pod, how string) (Source, error) {
		src := Source{Kind: FromPod, Pod: p, Node: s.Node(p.Spec.NodeName), Picked: how}
		if p.Status.PodIP != "" {
			src.IP, _ = netip.ParseAddr(p.Status.PodIP)
		}
		return src, nil
	}
	if kind == "" || kind == "pod" || kind == "po" || kind == "pods" {
		if p := s.Pod(ns, name); p != nil {
			return pick(p, "")
		}
		if kind != "" {
			// A prefix of a pod name (frontend- for frontend-6d9f…) is accepted when it picks one workload.
			if p, how := podByPrefixOrWorkload(s, ns, name); p != nil {
				return pick(p, how)
			}
			return Source{}, qerr("FROM %q: no pod %s/%s (pods in %s: %s)", from, ns, name, ns, podNames(s, ns))
		}
	}
	wk := ""
	if kind != "" {
		var ok bool
		if wk, ok = workloadKinds[kind]; !ok {
			return Source{}, qerr("FROM %q: unknown kind %q (pod, deploy, sts, ds, rs, job, rc, node)", from, kind)
		}
	}
	var cands []*corev1.Pod
	for _, p := range s.PodsIn(ns) {
		w := s.WorkloadOf(p)
		if w.Name == name && (wk == "" || w.Kind == wk) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		if kind == "" {
			if p, how := podByPrefixOrWorkload(s, ns, name); p != nil {
				return pick(p, how)
			}
		}
		return Source{}, qerr("FROM %q: no pod or workload %s/%s has pods (pods in %s: %s)", from, ns, name, ns, podNames(s, ns))
	}
	p := firstRunning(cands)
	w := s.WorkloadOf(p)
	return pick(p, fmt.Sprintf("%s %s/%s has %d pod(s); picked %s (first running pod by name)", w.Kind, ns, name, len(cands), p.Name))
}

func podByPrefixOrWorkload(s *cluster.Snapshot, ns, prefix string) (*corev1.Pod, string) {
	prefix = strings.TrimRight(prefix, "-…")
	var cands []*corev1.Pod
	for _, p := range s.PodsIn(ns) {
		if strings.HasPrefix(p.Name, prefix) {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		return nil, ""
	}
	owner := s.WorkloadOf(cands[0])
	for _, p := range cands[1:] {
		if s.WorkloadOf(p) != owner {
			return nil, ""
		}
	}
	p := firstRunning(cands)
	return p, fmt.Sprintf("%q matches %d pod(s) of %s; picked %s (first running pod by name)", prefix, len(cands), owner, p.Name)
}

func firstRunning(ps []*corev1.Pod) *corev1.Pod {
	for _, p := range ps {
		if p.Status.Phase == corev1.PodRunning && cluster.PodReady(p) {
			return p
		}
	}
	for _, p := range ps {
		if p.Status.Phase == corev1.PodRunning {
			return p
		}
	}
	return ps[0]
}

func podNames(s *cluster.Snapshot, ns string) string {
	var out []string
	for _, p := range s.PodsIn(ns) {
		out = append(out, p.Name)
		if len(out) == 8 {
			out = append(out, "…")
			break
		}
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

func nodeNames(s *cluster.Snapshot) string {
	var out []string
	for _, n := range s.Nodes {
		out = append(out, n.Name)
	}
	return strings.Join(out, ", ")
}

// ResolveTarget parses TO: a URL, NAME[:PORT], IP:PORT, svc/NS/NAME:PORT|PORTNAME, pod/NS/NAME:PORT, node/NAME:PORT.
func ResolveTarget(s *cluster.Snapshot, to string, proto packet.Protocol) (Target, error) {
	if strings.Contains(to, "://") {
		u, err := url.Parse(to)
		if err != nil {
			return Target{}, qerr("TO %q: %v", to, err)
		}
		port := 0
		switch u.Scheme {
		case "http", "ws", "grpc":
			port = 80
		case "https", "wss", "grpcs":
			port = 443
		}
		if p := u.Port(); p != "" {
			port, err = strconv.Atoi(p)
			if err != nil {
				return Target{}, qerr("TO %q: bad port %q", to, p)
			}
		}
		if port == 0 {
			return Target{}, qerr("TO %q: scheme %q has no default port; give one", to, u.Scheme)
		}
		path := u.Path
		if path == "" {
			path = "/"
		}
		t := Target{Kind: ToName, Name: u.Hostname(), Port: port,
			L7: &packet.L7{Scheme: u.Scheme, Host: u.Host, Method: "GET", Path: path}}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			t.Kind, t.IP, t.Name = ToIP, ip, ""
		}
		return t, nil
	}
	if ap, err := netip.ParseAddrPort(to); err == nil {
		return Target{Kind: ToIP, IP: ap.Addr(), Port: int(ap.Port())}, nil
	}
	if ip, err := netip.ParseAddr(to); err == nil {
		return Target{}, qerr("TO %q: give a port (%s:PORT)", to, ip)
	}
	parts := strings.Split(to, "/")
	hostPort := func(s string) (string, string) {
		if i := strings.LastIndex(s, ":"); i >= 0 {
			return s[:i], s[i+1:]
		}
		return s, ""
	}
	switch {
	case len(parts) == 3 && (parts[0] == "svc" || parts[0] == "service" || parts[0] == "services"):
		name, port := hostPort(parts[2])
		svc := s.Service(parts[1], name)
		if svc == nil {
			return Target{}, qerr("TO %q: no Service %s/%s", to, parts[1], name)
		}
		t := Target{Kind: ToService, Service: svc}
		sp, err := servicePort(svc, port, proto)
		if err != nil {
			return Target{}, qerr("TO %q: %v", to, err)
		}
		t.Port, t.PortName = int(sp.Port), sp.Name
		if svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
			t.IP, _ = netip.ParseAddr(svc.Spec.ClusterIP)
		}
		return t, nil
	case len(parts) == 3 && (parts[0] == "pod" || parts[0] == "po" || parts[0] == "pods"):
		name, port := hostPort(parts[2])
		p := s.Pod(parts[1], name)
		if p == nil {
			if pp, _ := podByPrefixOrWorkload(s, parts[1], name); pp != nil {
				p = pp
			} else {
				return Target{}, qerr("TO %q: no pod %s/%s", to, parts[1], name)
			}
		}
		n, err := portNumberOnPod(p, port, proto)
		if err != nil {
			return Target{}, qerr("TO %q: %v", to, err)
		}
		ip, _ := netip.ParseAddr(p.Status.PodIP)
		return Target{Kind: ToPod, Pod: p, IP: ip, Port: n}, nil
	case len(parts) == 2 && (parts[0] == "node" || parts[0] == "no"):
		name, port := hostPort(parts[1])
		n := s.Node(name)
		if n == nil {
			return Target{}, qerr("TO %q: no node %q (nodes: %s)", to, name, nodeNames(s))
		}
		pn, err := strconv.Atoi(port)
		if err != nil || pn <= 0 || pn > 65535 {
			return Target{}, qerr("TO %q: give a port number (node/NAME:PORT)", to)
		}
		return Target{Kind: ToNode, Node: n, IP: cluster.NodeIP(n), Port: pn}, nil
	case len(parts) == 1:
		name, port := hostPort(to)
		t := Target{Kind: ToName, Name: name}
		if port != "" {
			pn, err := strconv.Atoi(port)
			if err != nil || pn <= 0 || pn > 65535 {
				return Target{}, qerr("TO %q: bad port %q", to, port)
			}
			t.Port = pn
		}
		return t, nil
	}
	return Target{}, qerr("TO %q: want a URL, NAME[:PORT], IP:PORT, svc/NS/NAME:PORT, pod/NS/NAME:PORT or node/NAME:PORT", to)
}

func servicePort(svc *corev1.Service, port string, proto packet.Protocol) (*corev1.ServicePort, error) {
	var names []string
	for i := range svc.Spec.Ports {
		sp := &svc.Spec.Ports[i]
		names = append(names, fmt.Sprintf("%s:%d/%s", sp.Name, sp.Port, sp.Protocol))
		if string(sp.Protocol) != string(proto) {
			continue
		}
		if port == "" && len(svc.Spec.Ports) == 1 {
			return sp, nil
		}
		if port == sp.Name || port == strconv.Itoa(int(sp.Port)) {
			return sp, nil
		}
	}
	sort.Strings(names)
	if port == "" {
		return nil, fmt.Errorf("Service %s/%s has several ports (%s); give one", svc.Namespace, svc.Name, strings.Join(names, ", "))
	}
	return nil, fmt.Errorf("Service %s/%s has no %s port %q (ports: %s)", svc.Namespace, svc.Name, proto, port, strings.Join(names, ", "))
}

func portNumberOnPod(p *corev1.Pod, port string, proto packet.Protocol) (int, error) {
	if port == "" {
		return 0, fmt.Errorf("give a port (pod/%s/%s:PORT)", p.Namespace, p.Name)
	}
	if n, err := strconv.Atoi(port); err == nil {
		return n, nil
	}
	n, ok := cluster.FindPort(p, corev1.ServicePort{TargetPort: intstr.FromString(port), Protocol: corev1.Protocol(proto)})
	if !ok {
		return 0, fmt.Errorf("pod %s/%s has no %s container port named %q", p.Namespace, p.Name, proto, port)
	}
	return int(n), nil
}
