package lab

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/dns"
	"github.com/kpath/kpath/kubeproxy"
)

// Plan is what `lab up` builds for a snapshot: pure data, computed without touching the kernel.
type Plan struct {
	Name       string          `json:"name"`
	Prefix     string          `json:"prefix"`
	Mode       kubeproxy.Mode  `json:"mode"`
	Underlay   netip.Prefix    `json:"underlay"`
	Gateway    netip.Addr      `json:"gateway"` // the underlay's default gateway, in the external namespace
	UnderlayNS string          `json:"underlayNS"`
	ExternalNS string          `json:"externalNS"`
	Overlay    cluster.Overlay `json:"overlay"`
	MTU        int             `json:"mtu"`
	PodMTU     int             `json:"podMTU"`
	Nodes      []NodePlan      `json:"nodes"`
	Pods       []PodPlan       `json:"pods"`
	// Notes say what the lab does not build and why (skipped pods, unmodelled features).
	Notes []string `json:"notes,omitempty"`
}

// NodePlan is one node namespace.
type NodePlan struct {
	Name       string       `json:"name"`
	NS         string       `json:"ns"`
	IP         netip.Addr   `json:"ip"`
	PodCIDR    netip.Prefix `json:"podCIDR"`
	BridgeIP   netip.Addr   `json:"bridgeIP"`   // the pod CIDR's .1 on cni0: the pods' gateway
	TunnelIP   netip.Addr   `json:"tunnelIP"`   // the pod CIDR's .0 on the VXLAN device (flannel's VTEP address)
	VtepMAC    string       `json:"vtepMAC"`    // flannel's backend-data VtepMAC, or a stable made-up one
	ULPort     string       `json:"ulPort"`     // the node's port on the underlay bridge
	HostListen []ListenPort `json:"hostListen"` // ports of hostNetwork pods: echo servers in the node namespace
}

// PodPlan is one pod namespace (hostNetwork pods have none: they live in their node's namespace).
type PodPlan struct {
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Node      string       `json:"node"`
	NS        string       `json:"ns"`
	IP        netip.Addr   `json:"ip"`
	HostVeth  string       `json:"hostVeth"`
	Listen    []ListenPort `json:"listen"`
	// DNS says the pod is a kube-dns endpoint: port 53 answers with the model's CoreDNS.
	DNS        bool   `json:"dns,omitempty"`
	ResolvConf string `json:"resolvConf"`
	// Silent says no process listens (the pod's containers are not running), and why.
	Silent string `json:"silent,omitempty"`
	// Mesh is set for a pod with a sidecar proxy: its interception rules, proxy and identity (lab/mesh.go).
	Mesh *PodMesh `json:"mesh,omitempty"`
}

// ListenPort is a declared container port.
type ListenPort struct {
	Proto string `json:"proto"` // TCP | UDP
	Port  int    `json:"port"`
}

// Ref is ns/name.
func (p PodPlan) Ref() string { return p.Namespace + "/" + p.Name }

// NewPlan computes the lab for snap. mode overrides the profile's kube-proxy mode ("" keeps it). Features the lab
// cannot build on this machine are refused with an error that says so; features it does not build at all are
// listed in Plan.Notes.
func NewPlan(snap *cluster.Snapshot, name string, mode kubeproxy.Mode) (*Plan, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	prof := &snap.Profile
	pre := Prefix(name)
	p := &Plan{Name: name, Prefix: pre, UnderlayNS: underlayNS(pre), ExternalNS: externalNS(pre), Overlay: prof.Overlay,
		MTU: prof.MTU, PodMTU: prof.PodMTU}
	if p.MTU == 0 {
		p.MTU = 1500
	}
	if p.PodMTU == 0 {
		p.PodMTU = p.MTU
	}
	switch {
	case mode != "":
		p.Mode = mode
	case prof.ProxyMode == cluster.ProxyNFTables:
		p.Mode = kubeproxy.ModeNFTables
	case prof.ProxyMode == cluster.ProxyIPTables:
		p.Mode = kubeproxy.ModeIPTables
	case prof.ProxyMode == cluster.ProxyNone:
		p.Mode = ""
		p.Notes = append(p.Notes, "the profile has no Service proxy: no kube-proxy rules are loaded")
	default:
		return nil, fmt.Errorf("the profile's Service proxy is %s: the lab loads kube-proxy's nftables or iptables rules only (IPVS and eBPF are not available on this kernel or not rendered by kpath); pass --mode nftables|iptables to build the lab with kube-proxy instead", prof.ProxyMode)
	}
	switch p.Overlay.Type {
	case "vxlan", "none", "":
	default:
		return nil, fmt.Errorf("the profile's overlay is %s (CNI %s): this lab builds VXLAN or native routing only; %s is detected as missing on this kernel and is never faked", p.Overlay.Type, prof.CNI, p.Overlay.Type)
	}
	if prof.Encryption != "" && prof.Encryption != cluster.EncryptionNone {
		return nil, fmt.Errorf("the profile encrypts node-to-node traffic with %s: the lab cannot build it here (WireGuard and IPsec ESP are not available on this kernel) and never fakes it; pass --encryption none to build the unencrypted dataplane", prof.Encryption)
	}
	// The underlay: the smallest common prefix of the node addresses, at most a /24 wide… at least a /16.
	var ips []netip.Addr
	for _, n := range snap.Nodes {
		ip := cluster.NodeIP(n)
		if !ip.Is4() {
			p.Notes = append(p.Notes, fmt.Sprintf("node %s has no IPv4 InternalIP: not built", n.Name))
			continue
		}
		ips = append(ips, ip)
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("no node has an IPv4 InternalIP: nothing to build (the lab builds IPv4 clusters)")
	}
	bits := 24
	for _, ip := range ips[1:] {
		for bits > 8 && !netip.PrefixFrom(ips[0], bits).Masked().Contains(ip) {
			bits--
		}
	}
	p.Underlay = netip.PrefixFrom(ips[0], bits).Masked()
	p.Gateway = p.Underlay.Addr().Next()
	if snap.NodeByIP(p.Gateway) != nil {
		return nil, fmt.Errorf("node address %s is the first address of the underlay %s, which the lab reserves for the external gateway", p.Gateway, p.Underlay)
	}
	kubelet := kubeletFor(snap)
	nodeIdx := map[string]bool{}
	for i, n := range snap.Nodes {
		ip := cluster.NodeIP(n)
		if !ip.Is4() {
			continue
		}
		np := NodePlan{Name: n.Name, NS: nodeNS(pre, n.Name), IP: ip, ULPort: underlayPort(i), VtepMAC: vtepMAC(n)}
		if c, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil && c.Addr().Is4() {
			np.PodCIDR = c.Masked()
			np.TunnelIP = np.PodCIDR.Addr()
			np.BridgeIP = np.TunnelIP.Next()
		} else {
			p.Notes = append(p.Notes, fmt.Sprintf("node %s has no IPv4 pod CIDR: no bridge, its pods are not built", n.Name))
		}
		p.Nodes = append(p.Nodes, np)
		nodeIdx[n.Name] = np.PodCIDR.IsValid()
	}
	dnsPods := map[string]bool{}
	for _, dp := range snap.PodsMatching("kube-system", kubeDNSSelector) {
		dnsPods[dp.Namespace+"/"+dp.Name] = true
	}
	for _, pod := range snap.Pods {
		ref := pod.Namespace + "/" + pod.Name
		ip, err := netip.ParseAddr(pod.Status.PodIP)
		if err != nil || pod.Spec.NodeName == "" {
			p.Notes = append(p.Notes, fmt.Sprintf("pod %s has no IP or node: not built", ref))
			continue
		}
		if !nodeIdx[pod.Spec.NodeName] {
			p.Notes = append(p.Notes, fmt.Sprintf("pod %s: its node %s is not built", ref, pod.Spec.NodeName))
			continue
		}
		ports := declaredPorts(pod)
		if pod.Spec.HostNetwork {
			for i := range p.Nodes {
				if p.Nodes[i].Name == pod.Spec.NodeName {
					p.Nodes[i].HostListen = mergePorts(p.Nodes[i].HostListen, ports)
				}
			}
			continue
		}
		pp := PodPlan{Namespace: pod.Namespace, Name: pod.Name, Node: pod.Spec.NodeName, NS: podNS(pre, pod.Namespace, pod.Name),
			IP: ip, HostVeth: hostVethName(pod.Namespace, pod.Name), Listen: ports, DNS: dnsPods[ref]}
		pd := kubelet.PodResolvConf(pod)
		pp.ResolvConf = pd.ResolvConf.Render()
		if why := notRunning(pod); why != "" {
			pp.Silent = why
		}
		p.Pods = append(p.Pods, pp)
	}
	planMesh(snap, p)
	seen := map[string]string{}
	for _, pp := range p.Pods {
		k := pp.Node + "/" + pp.HostVeth
		if o, dup := seen[k]; dup {
			return nil, fmt.Errorf("pods %s and %s hash to the same host veth name %s on %s", o, pp.Ref(), pp.HostVeth, pp.Node)
		}
		seen[k] = pp.Ref()
	}
	return p, nil
}

var kubeDNSSelector = mustSelector("k8s-app=kube-dns")

// kubeletFor is the kubelet DNS configuration the trace engine assumes (trace.New): --cluster-dns from the
// profile, the cluster domain, and a node resolv.conf pointing at the underlay gateway.
func kubeletFor(snap *cluster.Snapshot) dns.Kubelet {
	clusterDNS := ""
	if snap.Profile.ClusterDNS.IsValid() {
		clusterDNS = snap.Profile.ClusterDNS.String()
	}
	servers, _ := dns.ClusterDNSFor(clusterDNS, snap.Profile.NodeLocalDNS.IsValid(), string(snap.Profile.ProxyMode))
	hostRC := dns.ResolvConf{Nameservers: []string{"172.18.0.1"}}
	return dns.Kubelet{ClusterDNS: servers, ClusterDomain: snap.Profile.ClusterDomain, HostResolvConf: &hostRC}
}

// notRunning says why a pod's process would not answer (a waiting or terminated container), or "".
func notRunning(p *corev1.Pod) string {
	if p.Status.Phase != "" && p.Status.Phase != corev1.PodRunning {
		return "phase " + string(p.Status.Phase)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Waiting != nil {
			return "container " + cs.Name + " is waiting (" + cs.State.Waiting.Reason + ")"
		}
		if cs.State.Terminated != nil {
			return "container " + cs.Name + " terminated (" + cs.State.Terminated.Reason + ")"
		}
	}
	return ""
}

func declaredPorts(p *corev1.Pod) []ListenPort {
	var out []ListenPort
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			proto := string(cp.Protocol)
			if proto == "" {
				proto = "TCP"
			}
			if proto != "TCP" && proto != "UDP" {
				continue
			}
			out = mergePorts(out, []ListenPort{{Proto: proto, Port: int(cp.ContainerPort)}})
		}
	}
	return out
}

func mergePorts(a, b []ListenPort) []ListenPort {
	for _, x := range b {
		dup := false
		for _, y := range a {
			if x == y {
				dup = true
			}
		}
		if !dup {
			a = append(a, x)
		}
	}
	sort.Slice(a, func(i, j int) bool {
		if a[i].Port != a[j].Port {
			return a[i].Port < a[j].Port
		}
		return a[i].Proto < a[j].Proto
	})
	return a
}

// vtepMAC is flannel's VtepMAC from the node's backend-data annotation, or a stable locally administered MAC.
func vtepMAC(n *corev1.Node) string {
	var bd struct {
		VtepMAC string
	}
	if s := n.Annotations["flannel.alpha.coreos.com/backend-data"]; s != "" {
		if json.Unmarshal([]byte(s), &bd) == nil {
			if _, err := net.ParseMAC(bd.VtepMAC); err == nil {
				return strings.ToLower(bd.VtepMAC)
			}
		}
	}
	h := fnvSum("vtep/" + n.Name)
	return fmt.Sprintf("0a:6b:%02x:%02x:%02x:%02x", byte(h>>24), byte(h>>16), byte(h>>8), byte(h))
}

// NamespaceNames lists every network namespace of the plan, underlay first.
func (p *Plan) NamespaceNames() []string {
	out := []string{p.UnderlayNS, p.ExternalNS}
	for _, n := range p.Nodes {
		out = append(out, n.NS)
	}
	for _, pp := range p.Pods {
		out = append(out, pp.NS)
	}
	return out
}

// Node returns the node plan by name.
func (p *Plan) Node(name string) *NodePlan {
	for i := range p.Nodes {
		if p.Nodes[i].Name == name {
			return &p.Nodes[i]
		}
	}
	return nil
}

// Pod returns the pod plan by ns/name.
func (p *Plan) Pod(ref string) *PodPlan {
	for i := range p.Pods {
		if p.Pods[i].Ref() == ref {
			return &p.Pods[i]
		}
	}
	return nil
}

// NodeByNS returns the node plan whose namespace is ns.
func (p *Plan) NodeByNS(ns string) *NodePlan {
	for i := range p.Nodes {
		if p.Nodes[i].NS == ns {
			return &p.Nodes[i]
		}
	}
	return nil
}
