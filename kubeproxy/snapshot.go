package kubeproxy

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
)

// ConfigFor is the proxier configuration kube-proxy would run with on node n of the snapshot: its mode (nftables
// unless the profile says iptables), node name, addresses and zone, the cluster CIDR as local-traffic detector,
// masqueradeAll, and the service CIDRs.
func ConfigFor(s *cluster.Snapshot, n *corev1.Node) Config {
	p := &s.Profile
	cfg := Config{NodeName: n.Name, Zone: n.Labels[corev1.LabelTopologyZone], MasqueradeAll: p.MasqueradeAll, Mode: ModeNFTables}
	if p.ProxyMode == cluster.ProxyIPTables {
		cfg.Mode = ModeIPTables
	}
	cfg.Family = corev1.IPv4Protocol
	if ip := cluster.NodeIP(n); ip.IsValid() {
		cfg.NodeIP = ip
		cfg.NodeIPs = []netip.Addr{ip}
		if ip.Is6() {
			cfg.Family = corev1.IPv6Protocol
		}
	}
	v6 := cfg.Family == corev1.IPv6Protocol
	switch cfg.Mode {
	case ModeNFTables:
		// --nodeport-addresses unset: nftables mode accepts NodePorts on the node's primary IP only (the "primary"
		// default since v1.29), where iptables mode accepts them on every local address.
		if cfg.NodeIP.IsValid() {
			cfg.NodePortAddresses = []netip.Prefix{netip.PrefixFrom(cfg.NodeIP, cfg.NodeIP.BitLen())}
		}
	case ModeIPTables:
		// kube-proxy adds --random-fully to MASQUERADE whenever iptables supports it (≥ 1.6.2: every current distro).
		cfg.RandomFully = true
	}
	for _, c := range p.PodCIDRs {
		if c.Addr().Is6() == v6 {
			cfg.PodCIDR = c
			break
		}
	}
	for _, c := range p.ServiceCIDRs {
		if c.Addr().Is6() == v6 {
			cfg.ServiceCIDRs = append(cfg.ServiceCIDRs, c)
		}
	}
	return cfg
}
