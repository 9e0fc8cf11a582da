package trace

import (
	"fmt"
	"net/netip"
	"strconv"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/packet"
)

// podGateway is the pod's default route as the CNI programs it.
func (r *run) podGateway(p *corev1.Pod, n *corev1.Node) (gw, dev string) {
	switch r.e.prof.CNI {
	case cluster.CNICalicoBGP, cluster.CNICalicoIPIP, cluster.CNICalicoVXLAN:
		return "169.254.1.1", "eth0" // Calico: a link-local next hop answered by proxy-ARP on the host veth
	case cluster.CNICiliumNative, cluster.CNICiliumVXLAN, cluster.CNICiliumGeneve:
		if gwIP, ok := firstHost(n); ok {
			return gwIP.String() + " (cilium_host)", "eth0"
		}
	}
	if gwIP, ok := firstHost(n); ok {
		return gwIP.String() + " (the node's cni0 bridge)", "eth0"
	}
	return "(unknown: the node has no pod CIDR)", "eth0"
}

// firstHost is the .1 of the node's pod CIDR: the bridge (cni0) or cilium_host address.
func firstHost(n *corev1.Node) (netip.Addr, bool) {
	if n == nil || n.Spec.PodCIDR == "" {
		return netip.Addr{}, false
	}
	p, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil {
		return netip.Addr{}, false
	}
	return p.Masked().Addr().Next(), true
}

// tunnelAddr is the address of the overlay device (flannel.1 takes the .0 of the node's pod CIDR).
func tunnelAddr(n *corev1.Node) netip.Addr {
	p, err := netip.ParsePrefix(n.Spec.PodCIDR)
	if err != nil {
		return cluster.NodeIP(n)
	}
	return p.Masked().Addr()
}

func (r *run) bridged() bool {
	switch r.e.prof.CNI {
	case cluster.CNIFlannelVXLAN, cluster.CNIFlannelHostGW, cluster.CNIBridge:
		return true
	}
	return false
}

func (r *run) hostVeth(p *corev1.Pod) string {
	prefix := "veth"
	switch r.e.prof.CNI {
	case cluster.CNICalicoBGP, cluster.CNICalicoIPIP, cluster.CNICalicoVXLAN:
		prefix = "cali"
	case cluster.CNICiliumNative, cluster.CNICiliumVXLAN, cluster.CNICiliumGeneve:
		prefix = "lxc"
	}
	ref := podRef(p)
	h := strconv.FormatUint(uint64(uint32(hashPick(1<<31, ref))), 16)
	return prefix + "00000000"[len(h):] + h + " (host end of " + ref + "'s eth0)"
}

func (r *run) hostLinkRule() string {
	if r.bridged() {
		return "veth enslaved to bridge cni0"
	}
	return "routed veth (no bridge)"
}

// routeFrom decides where the packet goes from node n after Service translation, and follows it to delivery.
func (r *run) routeFrom(n *corev1.Node, local bool) {
	dst := r.pkt.Dst.Addr()
	s := r.e.snap
	for _, o := range s.IPOwners(dst) {
		switch o.Kind {
		case cluster.OwnerPod:
			dp := s.Pod(o.Ref.Namespace, o.Ref.Name)
			r.toPod(n, dp)
			return
		case cluster.OwnerNode, cluster.OwnerNodeCNI, cluster.OwnerHostNetworkPod:
			r.toNodeAddr(n, s.NodeByIP(dst))
			return
		}
	}
	for _, o := range s.IPOwners(dst) {
		if o.Kind == cluster.OwnerClusterIP || o.Kind == cluster.OwnerExternalIP || o.Kind == cluster.OwnerLoadBalancerIP {
			why := fmt.Sprintf("%s is a %s of %s, but no Service port %d/%s matched: no interface owns a virtual IP, so nothing answers",
				dst, o.Kind, o.Ref, r.pkt.Dst.Port(), r.pkt.Proto)
			r.step(Step{Layer: LayerRoute, Action: ActionDrop, Object: o.Ref.String(), Why: why})
			r.block(LayerRoute, o.Ref.String(), why)
			r.finish(Dropped, why)
			return
		}
	}
	for _, c := range r.e.prof.PodCIDRs {
		if c.Contains(dst) {
			why := fmt.Sprintf("%s is inside the pod CIDR %s but no pod in the snapshot has it: the destination node's bridge gets no ARP reply", dst, c)
			r.step(Step{Layer: LayerRoute, Action: ActionDrop, Object: "pod CIDR " + c.String(), Why: why})
			r.block(LayerRoute, dst.String(), "no pod has this IP")
			r.finish(Dropped, why)
			return
		}
	}
	r.toOutside(n)
}

// applyMasq performs a pending masquerade (or the CNI's own outbound masquerade) as the packet leaves via dev.
func (r *run) applyMasq(n *corev1.Node, to netip.Addr, dev string) {
	if r.masq.why == "" {
		return
	}
	after := r.pkt.WithSrc(netip.AddrPortFrom(to, r.pkt.Src.Port()))
	r.rewrite(Step{Layer: LayerNAT, Action: ActionMasquerade, Object: "Node " + n.Name, Rule: r.masq.rule,
		Why:             r.masq.why + "; MASQUERADE takes the address of the outgoing interface " + dev + " (" + to.String() + ")",
		LatencyEstimate: r.e.lat.Conntrack()}, after)
	r.masq = masqPending{}
}

func (r *run) toPod(n *corev1.Node, dp *corev1.Pod) {
	dn := r.e.snap.Node(dp.Spec.NodeName)
	if dn == nil {
		r.step(Step{Layer: LayerRoute, Action: ActionUnknown, Object: "Pod " + podRef(dp), Why: "the destination pod's node is unknown"})
		r.finish(Unknown, "destination pod has no node")
		return
	}
	if dn.Name == n.Name {
		dev := "cni0"
		if !r.bridged() {
			dev = "the pod's host veth"
		}
		r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Node " + n.Name, Rule: n.Spec.PodCIDR + " dev " + dev,
			Why: "the destination pod runs on this node: local delivery, no encapsulation", LatencyEstimate: r.e.lat.Route()})
		if gw, ok := firstHost(n); ok {
			r.applyMasq(n, gw, dev)
		}
		if r.bridged() {
			r.step(Step{Layer: LayerLink, Action: ActionBridge, Object: "bridge cni0 on " + n.Name, Rule: "fdb: " + dp.Status.PodIP + "'s MAC → its veth port",
				Why: "the bridge forwards the frame to the destination pod's veth (br_netfilter runs the bridged packet through iptables/nftables too)", LatencyEstimate: r.e.lat.Bridge()})
		}
		r.deliverPod(dp)
		return
	}
	r.crossNode(n, dn, func() {
		dev := "cni0"
		if !r.bridged() {
			dev = "host veth"
		}
		r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Node " + dn.Name, Rule: dn.Spec.PodCIDR + " dev " + dev,
			Why: "the destination pod's subnet is local on this node", LatencyEstimate: r.e.lat.Route()})
		if r.bridged() {
			r.step(Step{Layer: LayerLink, Action: ActionBridge, Object: "bridge cni0 on " + dn.Name, Rule: "fdb: " + dp.Status.PodIP + "'s MAC → its veth port",
				Why: "the bridge forwards the frame to the destination pod's veth", LatencyEstimate: r.e.lat.Bridge()})
		}
		r.deliverPod(dp)
	})
}

// crossNode carries the packet from node n to node dn per the CNI profile and runs arrive on dn.
func (r *run) crossNode(n, dn *corev1.Node, arrive func()) {
	p := r.e.prof
	srcIP, dstIP := cluster.NodeIP(n), cluster.NodeIP(dn)
	ov := p.Overlay
	switch ov.Type {
	case "vxlan", "geneve", "ipip":
		rule := dn.Spec.PodCIDR + " via " + tunnelAddr(dn).String() + " dev " + ov.Device + " onlink"
		if ov.Type == "ipip" {
			rule = dn.Spec.PodCIDR + " via " + dstIP.String() + " dev " + ov.Device + " onlink"
		}
		r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Node " + n.Name, Rule: rule,
			Why: "the destination pod is on " + dn.Name + ": its pod subnet is routed into the " + ov.Type + " overlay", LatencyEstimate: r.e.lat.Route()})
		r.applyMasq(n, tunnelAddr(n), ov.Device)
		e := packet.Encap{Type: ov.Type, Src: netip.AddrPortFrom(srcIP, 0), Dst: netip.AddrPortFrom(dstIP, uint16(ov.UDPPort)), VNI: ov.VNI}
		cost := r.e.lat.VXLAN()
		rule2 := ov.Device + ": fdb " + dn.Name + "'s VTEP MAC → dst " + dstIP.String() + ", UDP " + strconv.Itoa(int(ov.UDPPort)) + ", VNI " + strconv.Itoa(int(ov.VNI))
		switch ov.Type {
		case "geneve":
			cost = r.e.lat.Geneve()
		case "ipip":
			cost, rule2 = r.e.lat.IPIP(), fmt.Sprintf("%s: IP protocol 4 to %s", ov.Device, dstIP)
		}
		r.rewrite(Step{Layer: LayerOverlay, Action: ActionEncapsulate, Object: ov.Device + " on " + n.Name, Rule: rule2,
			Why: "wrapped in " + ov.Type + " between the node addresses: +" + strconv.Itoa(int(ov.Overhead)) + " bytes, so pods get MTU " +
				strconv.Itoa(int(p.PodMTU)) + " on a " + strconv.Itoa(int(p.MTU)) + "-byte underlay",
			LatencyEstimate: cost}, r.pkt.Encapsulated(e))
	case "none":
		via := "via " + dstIP.String() + " dev eth0"
		why := "native routing: " + dn.Name + "'s pod subnet is reachable through its node address"
		switch p.CNI {
		case cluster.CNIAWSVPC:
			via, why = "via the VPC (eth0)", "pod IPs are VPC addresses: the VPC routes them to "+dn.Name+"'s ENI"
		case cluster.CNICalicoBGP:
			why = "native routing learned over BGP (BIRD): " + dn.Name + "'s block is routed via its node address"
		case cluster.CNIBridge:
			why = "bridge CNI: assumed the cluster installs routes to each node's pod CIDR via its node address (kpath cannot see them)"
		}
		r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Node " + n.Name, Rule: dn.Spec.PodCIDR + " " + via, Why: why, LatencyEstimate: r.e.lat.Route()})
		r.applyMasq(n, srcIP, "eth0")
	}
	if p.Encryption != cluster.EncryptionNone {
		cost := r.e.lat.WireGuard()
		dev, port := "wg0", 51820
		if p.Encryption == cluster.EncryptionIPsec {
			cost, dev, port = r.e.lat.IPsec(), "xfrm (ESP)", 0
		} else if p.CNI == cluster.CNICiliumNative || p.CNI == cluster.CNICiliumVXLAN || p.CNI == cluster.CNICiliumGeneve {
			dev, port = "cilium_wg0", 51871
		}
		e := packet.Encap{Type: string(p.Encryption), Src: netip.AddrPortFrom(srcIP, uint16(port)), Dst: netip.AddrPortFrom(dstIP, uint16(port))}
		r.rewrite(Step{Layer: LayerEncrypt, Action: ActionEncrypt, Object: dev + " on " + n.Name,
			Why: string(p.Encryption) + " encrypts node-to-node traffic (detected from the CNI configuration)", LatencyEstimate: cost}, r.pkt.Encapsulated(e))
	}
	r.enter(Location{Kind: OnUnderlay, Name: "underlay " + srcIP.String() + " → " + dstIP.String()})
	r.step(Step{Layer: LayerRoute, Action: ActionForward, Object: "node network",
		Why: "the node network carries the packet between " + n.Name + " and " + dn.Name, LatencyEstimate: r.e.lat.Underlay()})
	r.enter(nodeLoc(dn))
	if p.Encryption != cluster.EncryptionNone {
		r.rewrite(Step{Layer: LayerEncrypt, Action: ActionDecrypt, Object: "Node " + dn.Name, Why: "decrypted on arrival"}, r.pkt.Decapsulated())
	}
	if len(r.pkt.Encap) > 0 {
		r.rewrite(Step{Layer: LayerOverlay, Action: ActionDecapsulate, Object: ov.Device + " on " + dn.Name,
			Why: "the kernel's " + ov.Type + " receive path strips the outer headers and hands the inner packet to " + ov.Device}, r.pkt.Decapsulated())
	}
	arrive()
}

func (r *run) toNodeAddr(n, dn *corev1.Node) {
	if dn == nil {
		r.finish(Unknown, "address owner not found")
		return
	}
	if dn.Name != n.Name {
		r.cniMasq(n)
		r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Node " + n.Name, Rule: cluster.NodeIP(dn).String() + " dev eth0",
			Why: "the destination is another node's address, on the node network", LatencyEstimate: r.e.lat.Route()})
		r.applyMasq(n, cluster.NodeIP(n), "eth0")
		r.enter(Location{Kind: OnUnderlay, Name: "underlay " + cluster.NodeIP(n).String() + " → " + cluster.NodeIP(dn).String()})
		r.step(Step{Layer: LayerRoute, Action: ActionForward, Object: "node network", Why: "node to node", LatencyEstimate: r.e.lat.Underlay()})
		r.enter(nodeLoc(dn))
	}
	r.deliverHost(dn)
}

// cniMasq notes the CNI's masquerade of pod traffic that leaves the pod network (flannel/calico natOutgoing/cilium).
func (r *run) cniMasq(n *corev1.Node) {
	if r.src.Kind != FromPod || r.src.Pod.Spec.HostNetwork || r.masq.why != "" {
		return
	}
	src := r.pkt.Src.Addr()
	dst := r.pkt.Dst.Addr()
	for _, c := range r.e.prof.PodCIDRs {
		if c.Contains(src) && !c.Contains(dst) {
			rule := "-s " + c.String() + " ! -d " + c.String() + " -j MASQUERADE"
			switch r.e.prof.CNI {
			case cluster.CNIFlannelVXLAN, cluster.CNIFlannelHostGW:
				rule = "FLANNEL-POSTRTG: " + rule
			case cluster.CNICalicoBGP, cluster.CNICalicoIPIP, cluster.CNICalicoVXLAN:
				rule = "cali-nat-outgoing (IPPool natOutgoing: true)"
			}
			r.masq = masqPending{why: "traffic from the pod network to an address outside it is masqueraded by the CNI", rule: rule}
			return
		}
	}
}

func (r *run) toOutside(n *corev1.Node) {
	r.cniMasq(n)
	r.step(Step{Layer: LayerRoute, Action: ActionRoute, Object: "Node " + n.Name, Rule: "default via the node's gateway dev eth0",
		Why: r.pkt.Dst.Addr().String() + " belongs to nothing in the cluster: it leaves through the node's default route", LatencyEstimate: r.e.lat.Route()})
	r.applyMasq(n, cluster.NodeIP(n), "eth0")
	r.enter(Location{Kind: Outside, Name: r.pkt.Dst.Addr().String(), IP: r.pkt.Dst.Addr().String()})
	r.step(Step{Layer: LayerRoute, Action: ActionUnknown, Object: r.pkt.Dst.Addr().String(),
		Why: "outside the cluster: kpath does not model the network beyond the nodes (firewalls, NAT gateways, the server)"})
	r.finish(Unknown, "the packet leaves the cluster toward "+r.pkt.Dst.String()+"; what happens there is not in the snapshot")
}

// deliverHost delivers to a socket in a node's network namespace (a hostNetwork pod or a node daemon).
func (r *run) deliverHost(n *corev1.Node) {
	port := int32(r.pkt.Dst.Port())
	for _, p := range r.e.snap.PodsOnNode(n.Name) {
		if !p.Spec.HostNetwork {
			continue
		}
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				proto := cp.Protocol
				if proto == "" {
					proto = corev1.ProtocolTCP
				}
				if cp.ContainerPort == port && string(proto) == string(r.pkt.Proto) {
					r.step(Step{Layer: LayerApp, Action: ActionDeliver, Object: "Pod " + podRef(p), Rule: fmt.Sprintf("container %s port %d/%s", c.Name, port, proto),
						Why: "a hostNetwork pod on " + n.Name + " declares this port", LatencyEstimate: r.e.lat.Route()})
					if r.j.Backend == nil {
						r.j.Backend = &Endpoint{Pod: podRef(p), Node: n.Name, IP: r.pkt.Dst.Addr().String(), Port: int(port)}
					}
					r.finish(Delivered, "delivered to "+podRef(p)+" on "+n.Name)
					return
				}
			}
		}
	}
	why := fmt.Sprintf("no hostNetwork pod on %s declares %d/%s; node daemons (kubelet 10250, sshd…) may listen, but the snapshot does not say", n.Name, port, r.pkt.Proto)
	r.step(Step{Layer: LayerApp, Action: ActionUnknown, Object: "Node " + n.Name, Why: why})
	r.finish(Unknown, why)
}

// deliverPod runs the destination pod's stages: ingress policy, mesh, the listening socket.
func (r *run) deliverPod(dp *corev1.Pod) {
	r.enter(podLoc(dp))
	r.step(Step{Layer: LayerLink, Action: ActionForward, Object: "Pod " + podRef(dp) + " eth0", Why: "the veth delivers into the pod's network namespace",
		LatencyEstimate: r.e.lat.Veth()})
	if r.j.Backend == nil {
		ep := Endpoint{Pod: podRef(dp), Node: dp.Spec.NodeName, IP: dp.Status.PodIP, Port: int(r.pkt.Dst.Port()), Synthesized: cluster.IsSynthesized(dp, "")}
		r.j.Backend = &ep
	}
	if !r.policyStep(dp, "ingress") {
		return
	}
	if r.meshStage(dp, "inbound", -1) {
		return
	}
	port := int32(r.pkt.Dst.Port())
	for _, c := range dp.Spec.Containers {
		for _, cp := range c.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if cp.ContainerPort == port && string(proto) == string(r.pkt.Proto) {
				name := ""
				if cp.Name != "" {
					name = " (" + cp.Name + ")"
				}
				why := fmt.Sprintf("container %s declares %d/%s%s; the application's socket receives the packet", c.Name, port, proto, name)
				if dp.Status.Phase != corev1.PodRunning {
					why += fmt.Sprintf("; note the pod is %s", dp.Status.Phase)
				} else if !cluster.PodReady(dp) {
					why += "; note the pod is not Ready (its process may still answer)"
				}
				r.step(Step{Layer: LayerApp, Action: ActionDeliver, Object: "Pod " + podRef(dp), Rule: fmt.Sprintf("container %s port %d/%s", c.Name, port, proto), Why: why})
				r.finish(Delivered, "delivered to "+podRef(dp)+" port "+fmt.Sprint(port))
				return
			}
		}
	}
	why := fmt.Sprintf("no container of %s declares %d/%s: containerPort is informational, so the application may still listen, but the snapshot cannot tell (nothing listening → TCP RST)",
		podRef(dp), port, r.pkt.Proto)
	r.step(Step{Layer: LayerApp, Action: ActionUnknown, Object: "Pod " + podRef(dp), Why: why})
	r.finish(Unknown, why)
}
