package kubeproxy

import (
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// Mode is the kube-proxy proxy mode being modelled.
type Mode string

const (
	// ModeNFTables is `--proxy-mode=nftables`: one table "kube-proxy", verdict-map dispatch.
	ModeNFTables Mode = "nftables"
	// ModeIPTables is `--proxy-mode=iptables`: KUBE-* chains in the nat and filter tables.
	ModeIPTables Mode = "iptables"
)

// DefaultMasqueradeBit is kube-proxy's default --iptables-masquerade-bit (mark 0x4000).
const DefaultMasqueradeBit = 14

// Config is what kube-proxy knows about its node: the proxier configuration of one IP family.
type Config struct {
	// Mode selects the rule dialect; Translate reports the chain names of that mode.
	Mode Mode
	// Family is the IP family of this proxier (kube-proxy runs one proxier per family).
	// Empty means: derived from NodeIP, else IPv4.
	Family corev1.IPFamily
	// NodeName is the node kube-proxy runs on (--hostname-override); endpoints whose
	// nodeName equals it are "local".
	NodeName string
	// NodeIP is the node's primary IP of this family; a LoadBalancer source range that
	// contains it also admits traffic sourced from the LB IPs (VIP loopback case).
	NodeIP netip.Addr
	// NodeIPs are all addresses configured on the node (what `fib saddr type local` /
	// `-m addrtype --src-type LOCAL` match). Loopback addresses are always local.
	NodeIPs []netip.Addr
	// Zone is the node's topology.kubernetes.io/zone label (topology hints / trafficDistribution).
	Zone string
	// PodCIDR is the local traffic detector: the cluster CIDR (--detect-local-mode=ClusterCIDR)
	// or this node's pod CIDR (NodeCIDR). The zero Prefix means no detector is configured.
	PodCIDR netip.Prefix
	// MasqueradeAll is --masquerade-all: SNAT all traffic to cluster IPs.
	MasqueradeAll bool
	// MasqueradeBit is --iptables-masquerade-bit / --nftables-masquerade-bit; nil means 14.
	MasqueradeBit *int
	// NodePortAddresses is --nodeport-addresses. Empty means every local address accepts
	// NodePort traffic (upstream's behaviour when the flag is unset).
	NodePortAddresses []netip.Prefix
	// ServiceCIDRs are the ServiceCIDR ranges of this family; nftables mode drops traffic to
	// unallocated IPs inside them. Empty means no such rule (as upstream before it learns any).
	ServiceCIDRs []netip.Prefix

	// DisableLocalhostNodePorts is --iptables-localhost-nodeports=false (iptables, IPv4 only).
	DisableLocalhostNodePorts bool
	// NoNFAcct omits the `-m nfacct` counters (kube-proxy does so when the kernel lacks nfacct).
	NoNFAcct bool
	// RandomFully adds --random-fully to the iptables MASQUERADE rule (kube-proxy does when
	// iptables supports it; its unit tests run without).
	RandomFully bool
	// ConntrackTCPBeLiberal drops the KUBE-FORWARD "ctstate INVALID" rule, as kube-proxy does
	// when nf_conntrack_tcp_be_liberal=1.
	ConntrackTCPBeLiberal bool
}

func (c *Config) normalize() error {
	if c.Mode == "" {
		c.Mode = ModeNFTables
	}
	if c.Mode != ModeNFTables && c.Mode != ModeIPTables {
		return fmt.Errorf("kubeproxy config: unknown mode %q: use %q or %q", c.Mode, ModeNFTables, ModeIPTables)
	}
	if c.Family == "" {
		c.Family = corev1.IPv4Protocol
		if c.NodeIP.Is6() && !c.NodeIP.Is4In6() {
			c.Family = corev1.IPv6Protocol
		}
	}
	if c.Family != corev1.IPv4Protocol && c.Family != corev1.IPv6Protocol {
		return fmt.Errorf("kubeproxy config: unknown IP family %q: use IPv4 or IPv6", c.Family)
	}
	if c.MasqueradeBit != nil && (*c.MasqueradeBit < 0 || *c.MasqueradeBit > 31) {
		return fmt.Errorf("kubeproxy config: masquerade bit %d out of range 0..31", *c.MasqueradeBit)
	}
	if c.PodCIDR.IsValid() && c.PodCIDR.Addr().Is6() != c.isV6() {
		return fmt.Errorf("kubeproxy config: local-detector CIDR %s is not %s", c.PodCIDR, c.Family)
	}
	return nil
}

func (c *Config) isV6() bool { return c.Family == corev1.IPv6Protocol }

func (c *Config) masqMark() string {
	bit := DefaultMasqueradeBit
	if c.MasqueradeBit != nil {
		bit = *c.MasqueradeBit
	}
	// Real kube-proxy formats it with "%#08x" (0x00004000); its tests (and our oracle) use
	// the equivalent short form, and nft/iptables read both as the same number.
	return fmt.Sprintf("0x%x", 1<<uint(bit))
}

func (c *Config) hasLocalDetector() bool { return c.PodCIDR.IsValid() }

// nodePortMatchAll reports whether every local address accepts NodePorts.
func (c *Config) nodePortMatchAll() bool {
	if len(c.NodePortAddresses) == 0 {
		return true
	}
	for _, p := range c.NodePortAddresses {
		if p.Bits() == 0 && p.Addr().Is6() == c.isV6() {
			return true
		}
	}
	return false
}

// containsIPv4Loopback mirrors NodePortAddresses.ContainsIPv4Loopback for this family.
func (c *Config) containsIPv4Loopback() bool {
	if c.isV6() {
		return false
	}
	if len(c.NodePortAddresses) == 0 {
		return true
	}
	lo := netip.MustParseAddr("127.0.0.1")
	for _, p := range c.NodePortAddresses {
		if p.Addr().Is4() && p.Contains(lo) {
			return true
		}
	}
	return false
}

// nodePortIPs mirrors NodePortAddresses.GetNodeIPs: the local addresses inside NodePortAddresses
// (loopback included, as the node's "lo" always carries it), in a stable order.
func (c *Config) nodePortIPs() []netip.Addr {
	cands := append([]netip.Addr(nil), c.NodeIPs...)
	if c.isV6() {
		cands = append(cands, netip.IPv6Loopback())
	} else {
		cands = append(cands, netip.MustParseAddr("127.0.0.1"))
	}
	var out []netip.Addr
	seen := map[netip.Addr]bool{}
	for _, p := range c.NodePortAddresses {
		if p.Addr().Is6() != c.isV6() {
			continue
		}
		for _, a := range cands {
			a = a.Unmap()
			if a.Is6() != c.isV6() || seen[a] || !p.Contains(a) {
				continue
			}
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// isLocalAddr is `fib saddr type local` / `-m addrtype --src-type LOCAL`.
func (c *Config) isLocalAddr(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	for _, n := range c.NodeIPs {
		if n.Unmap() == a {
			return true
		}
	}
	return false
}
