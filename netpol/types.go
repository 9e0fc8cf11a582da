package netpol

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
)

// PeerKind says what kind of endpoint a Peer is.
type PeerKind string

const (
	// PeerPod is a pod on the pod network: policy can select it and it can be a policy subject.
	PeerPod PeerKind = "pod"
	// PeerHost is a node address: the node itself or a hostNetwork pod on it. NetworkPolicy does not apply to it as
	// a subject, pod/namespace selectors never match it; only ipBlock/networks and ANP/CNP nodes peers do.
	PeerHost PeerKind = "host"
	// PeerExternal is an address the snapshot does not own: outside the cluster, or a Service VIP that was not
	// translated. Only ipBlock/networks peers match it.
	PeerExternal PeerKind = "external"
)

// Peer is one end of a connection.
type Peer struct {
	Kind PeerKind
	IP   netip.Addr
	// Pod is the pod for PeerPod; for PeerHost the hostNetwork pod when the address was given as a pod.
	Pod *corev1.Pod
	// Node is the node for PeerHost, and the pod's node for PeerPod when it is known.
	Node *corev1.Node
}

// String names the peer: "shop/cart-0 (10.244.1.5)", "node worker-1 (172.18.0.3)", "203.0.113.9 (external)".
func (p Peer) String() string {
	ip := ""
	if p.IP.IsValid() {
		ip = " (" + p.IP.String() + ")"
	}
	switch p.Kind {
	case PeerPod:
		if p.Pod != nil {
			return p.Pod.Namespace + "/" + p.Pod.Name + ip
		}
	case PeerHost:
		if p.Pod != nil {
			return p.Pod.Namespace + "/" + p.Pod.Name + " on the host network of node " + nodeName(p.Node) + ip
		}
		return "node " + nodeName(p.Node) + ip
	}
	if p.IP.IsValid() {
		return p.IP.String() + " (external)"
	}
	return "unknown peer"
}

func nodeName(n *corev1.Node) string {
	if n == nil {
		return "?"
	}
	return n.Name
}

// PeerFor classifies an address with the snapshot: a pod-network pod, a node (or hostNetwork pod), or external.
func PeerFor(s *cluster.Snapshot, ip netip.Addr) Peer {
	ip = ip.Unmap()
	pr := Peer{Kind: PeerExternal, IP: ip}
	for _, o := range s.IPOwners(ip) {
		switch o.Kind {
		case cluster.OwnerPod:
			if p := s.Pod(o.Ref.Namespace, o.Ref.Name); p != nil {
				return PodPeer(s, p)
			}
		case cluster.OwnerNode, cluster.OwnerNodeCNI:
			pr.Kind = PeerHost
			pr.Node = s.Node(o.Ref.Name)
		case cluster.OwnerHostNetworkPod:
			if pr.Kind != PeerHost {
				if p := s.Pod(o.Ref.Namespace, o.Ref.Name); p != nil {
					pr.Kind = PeerHost
					pr.Node = s.Node(p.Spec.NodeName)
				}
			}
		}
	}
	return pr
}

// PodPeer is the peer of a pod: PeerPod, or PeerHost for a hostNetwork pod (its node's address).
func PodPeer(s *cluster.Snapshot, p *corev1.Pod) Peer {
	pr := Peer{Kind: PeerPod, Pod: p, Node: s.Node(p.Spec.NodeName)}
	if p.Spec.HostNetwork {
		pr.Kind = PeerHost
		if pr.Node != nil {
			pr.IP = cluster.NodeIP(pr.Node)
		}
	}
	if !pr.IP.IsValid() {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			pr.IP = ip.Unmap()
		}
	}
	return pr
}

// Conn is one connection attempt as policy sees it: after Service DNAT, so Dst is the endpoint (pod) and Port the
// endpoint's port, not the Service's.
type Conn struct {
	Src, Dst Peer
	Port     int32
	Protocol corev1.Protocol
}

// Verdict is the outcome of one direction.
type Verdict string

const (
	VerdictAllowed     Verdict = "allowed"
	VerdictDenied      Verdict = "denied"
	VerdictNotSelected Verdict = "not-selected" // no policy selects the pod for this direction: allowed
	VerdictUnknown     Verdict = "unknown"      // a deciding rule cannot be evaluated offline (FQDN peers)
)

// Tier is where a verdict was decided.
type Tier string

const (
	TierAdmin         Tier = "admin"         // AdminNetworkPolicy, ClusterNetworkPolicy tier Admin
	TierNetworkPolicy Tier = "networkpolicy" // NetworkPolicy v1
	TierBaseline      Tier = "baseline"      // BaselineAdminNetworkPolicy, ClusterNetworkPolicy tier Baseline
)

// Direction is the verdict of one side: egress at the source pod or ingress at the destination pod.
type Direction struct {
	Verdict Verdict `json:"verdict"`
	Tier    Tier    `json:"tier,omitempty"`
	// Policies lists every policy that selects the pod for this direction, in evaluation order.
	Policies []string `json:"policies,omitempty"`
	// Rule is the rule that decided, as "NetworkPolicy shop/allow-frontend ingress[0] from[1] ports[0]: <text>";
	// empty when no rule decided (not selected, or isolated with no matching rule).
	Rule string `json:"rule,omitempty"`
	// Why says it in a sentence.
	Why string `json:"why"`
}

// Blocker is one reason a connection is denied.
type Blocker struct {
	Direction string   `json:"direction"` // egress | ingress
	Tier      Tier     `json:"tier"`
	Policies  []string `json:"policies,omitempty"`
	Rule      string   `json:"rule,omitempty"`
	Why       string   `json:"why"`
}

// Decision is the policy verdict for one connection.
type Decision struct {
	Allowed  bool      `json:"allowed"`
	Verdict  Verdict   `json:"verdict"` // allowed | denied | unknown
	Egress   Direction `json:"egress"`
	Ingress  Direction `json:"ingress"`
	Blockers []Blocker `json:"blockers,omitempty"`
}
