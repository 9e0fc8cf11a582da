package capture

import (
	"errors"
	"fmt"
	"io"
	"net/netip"

	"sigs.k8s.io/knftables"
)

// Istio ambient (ztunnel) in-pod redirection constants (istio cni/pkg/iptables).
const (
	AmbientInpodTProxyMark  = 0x111 // connmark of connections ztunnel accepted
	AmbientInpodTProxyMask  = 0xfff
	AmbientInpodMark        = 1337 // packet mark ztunnel sets on its own sockets (0x539)
	AmbientInpodMask        = 0xfff
	AmbientZtunnelInbound   = "15008" // HBONE, never redirected
	AmbientZtunnelOutbound  = "15001"
	AmbientZtunnelPlaintext = "15006"
	AmbientDNSCapturePort   = "15053"
	AmbientProbeIPSet       = "istio-inpod-probes"

	ChainAmbientPrerouting  = "ISTIO_PRERT"
	ChainAmbientOutput      = "ISTIO_OUTPUT"
	ChainAmbientPostrouting = "ISTIO_POSTRT"

	NFTAmbientNatTable    = "istio-ambient-nat"
	NFTAmbientMangleTable = "istio-ambient-mangle"
)

// PodDNSOverride is a pod-level override of ambient DNS capture.
type PodDNSOverride int

const (
	// PodDNSUnset follows the node-wide RedirectDNS setting.
	PodDNSUnset PodDNSOverride = iota
	// PodDNSEnabled forces DNS capture on for the pod.
	PodDNSEnabled
	// PodDNSDisabled forces DNS capture off for the pod.
	PodDNSDisabled
)

// AmbientConfig is the Istio CNI agent's configuration for one ambient pod's in-pod rules.
type AmbientConfig struct {
	HostProbeSNATAddress   netip.Addr // SNAT source of kubelet probes (default 169.254.7.127)
	HostProbeV6SNATAddress netip.Addr // IPv6 SNAT source of kubelet probes
	EnableIPv6             bool
	RedirectDNS            bool // node-wide DNS capture
	// Pod-level overrides.
	VirtualInterfaces []string
	IngressMode       bool
	DNSProxy          PodDNSOverride
}

// Mesh implements Config.
func (AmbientConfig) Mesh() Mesh { return MeshIstioAmbient }

// DefaultAmbientConfig returns the CNI agent's default addresses.
func DefaultAmbientConfig() AmbientConfig {
	return AmbientConfig{
		HostProbeSNATAddress:   netip.MustParseAddr("169.254.7.127"),
		HostProbeV6SNATAddress: netip.MustParseAddr("fd16:9254:7127:1337:ffff:ffff:ffff:ffff"),
	}
}

func (c AmbientConfig) dns() bool {
	switch c.DNSProxy {
	case PodDNSEnabled:
		return true
	case PodDNSDisabled:
		return false
	}
	return c.RedirectDNS
}

func ambientIPTRules(c AmbientConfig) (v4, v6 *iptBuilder) {
	v4, v6 = &iptBuilder{}, &iptBuilder{}
	both := func(chain, table string, p ...string) {
		v4.appendRule(chain, table, p...)
		if c.EnableIPv6 {
			v6.appendRule(chain, table, p...)
		}
	}
	versioned := func(ip4, ip6, chain, table string, p ...string) {
		v4.appendRule(chain, table, subst(p, ip4)...)
		if c.EnableIPv6 {
			v6.appendRule(chain, table, subst(p, ip6)...)
		}
	}
	dns := c.dns()
	inpodMark := fmt.Sprintf("0x%x/0x%x", AmbientInpodMark, AmbientInpodMask)
	inpodTproxyMark := fmt.Sprintf("0x%x/0x%x", AmbientInpodTProxyMark, AmbientInpodTProxyMask)
	probe4, probe6 := c.HostProbeSNATAddress.String(), c.HostProbeV6SNATAddress.String()

	both("PREROUTING", "mangle", "-j", ChainAmbientPrerouting)
	both("OUTPUT", "mangle", "-j", ChainAmbientOutput)
	both("OUTPUT", "nat", "-j", ChainAmbientOutput)
	if dns {
		both("PREROUTING", "raw", "-j", ChainAmbientPrerouting)
		both("OUTPUT", "raw", "-j", ChainAmbientOutput)
	}
	both("PREROUTING", "nat", "-j", ChainAmbientPrerouting)
	for _, ifc := range c.VirtualInterfaces {
		both(ChainAmbientPrerouting, "nat", "-i", ifc, "-p", "tcp", "-j", "REDIRECT", "--to-ports", AmbientZtunnelOutbound)
		both(ChainAmbientPrerouting, "nat", "-i", ifc, "-p", "tcp", "-j", "RETURN")
	}
	// The connmark rule is installed in ingress mode too (oracle goldens at istio 86c9f01).
	both(ChainAmbientPrerouting, "mangle", "-m", "mark", "--mark", inpodMark, "-j", "CONNMARK", "--set-xmark", inpodTproxyMark)
	if !c.IngressMode {
		versioned(probe4, probe6, ChainAmbientPrerouting, "nat", "-s", "@IP@", "-p", "tcp", "-m", "tcp", "-j", "ACCEPT")
	}
	versioned(probe4, probe6, ChainAmbientOutput, "nat", "-d", "@IP@", "-p", "tcp", "-m", "tcp", "-j", "ACCEPT")
	if !c.IngressMode {
		versioned("127.0.0.1/32", "::1/128", ChainAmbientPrerouting, "nat", "!", "-d", "@IP@", "-p", "tcp",
			"!", "--dport", AmbientZtunnelInbound, "-m", "mark", "!", "--mark", inpodMark, "-j", "REDIRECT", "--to-ports", AmbientZtunnelPlaintext)
	}
	both(ChainAmbientOutput, "mangle", "-m", "connmark", "--mark", inpodTproxyMark, "-j", "CONNMARK", "--restore-mark",
		"--nfmask", "0xffffffff", "--ctmask", "0xffffffff")
	if dns {
		// Not covered by the oracle goldens: follows istio cni/pkg/iptables (DNS to ztunnel's 15053).
		both(ChainAmbientOutput, "nat", "!", "-o", "lo", "-p", "udp", "-m", "mark", "!", "--mark", inpodMark,
			"-m", "udp", "--dport", "53", "-j", "REDIRECT", "--to-port", AmbientDNSCapturePort)
		versioned("127.0.0.1/32", "::1/128", ChainAmbientOutput, "nat", "!", "-d", "@IP@", "-p", "tcp", "--dport", "53",
			"-m", "mark", "!", "--mark", inpodMark, "-j", "REDIRECT", "--to-ports", AmbientDNSCapturePort)
		both(ChainAmbientOutput, "raw", "-p", "udp", "-m", "mark", "--mark", inpodMark, "-m", "udp", "--dport", "53", "-j", "CT", "--zone", "1")
		both(ChainAmbientPrerouting, "raw", "-p", "udp", "-m", "mark", "!", "--mark", inpodMark, "-m", "udp", "--sport", "53", "-j", "CT", "--zone", "1")
	}
	both(ChainAmbientOutput, "nat", "-p", "tcp", "-m", "mark", "--mark", inpodTproxyMark, "-j", "ACCEPT")
	versioned("127.0.0.1/32", "::1/128", ChainAmbientOutput, "nat", "!", "-d", "@IP@", "-o", "lo", "-j", "ACCEPT")
	versioned("127.0.0.1/32", "::1/128", ChainAmbientOutput, "nat", "!", "-d", "@IP@", "-p", "tcp", "-m", "mark", "!", "--mark", inpodMark,
		"-j", "REDIRECT", "--to-ports", AmbientZtunnelOutbound)
	return v4, v6
}

// AmbientIPTablesRestore returns the in-pod iptables-restore inputs (v4, and v6 when EnableIPv6).
func AmbientIPTablesRestore(c AmbientConfig) (v4, v6 string) {
	b4, b6 := ambientIPTRules(c)
	return b4.restore(), b6.restore()
}

// RenderAmbientIPTables writes the in-pod rules the CNI agent applies in iptables mode.
func RenderAmbientIPTables(w io.Writer, c AmbientConfig) error {
	v4, v6 := AmbientIPTablesRestore(c)
	if _, err := io.WriteString(w, v4); err != nil {
		return err
	}
	if v6 != "" {
		_, err := io.WriteString(w, "# ip6tables-restore\n"+v6)
		return err
	}
	return nil
}

// ErrNotModelled is returned when a configuration is valid upstream but kpath does not render it.
var ErrNotModelled = errors.New("not modelled")

// RenderAmbientNFTables writes the in-pod rules the CNI agent applies in nftables mode.
func RenderAmbientNFTables(w io.Writer, c AmbientConfig) error {
	if c.dns() {
		return fmt.Errorf("rendering ambient nftables with DNS capture: %w (no upstream golden to check the rule text against)", ErrNotModelled)
	}
	nat := &nftTable{name: NFTAmbientNatTable,
		baseChains: []nftBaseChain{
			{nftPrerouting, knftables.NATType, knftables.PreroutingHook, knftables.DNATPriority},
			{nftOutput, knftables.NATType, knftables.OutputHook, knftables.DNATPriority},
		},
		chains:             []string{"istio-prerouting", "istio-output"},
		declareJumpTargets: true,
	}
	mangle := &nftTable{name: NFTAmbientMangleTable,
		baseChains: []nftBaseChain{
			{nftPrerouting, knftables.FilterType, knftables.PreroutingHook, knftables.ManglePriority},
			{nftOutput, knftables.RouteType, knftables.OutputHook, knftables.ManglePriority},
		},
		chains:             []string{"istio-prerouting", "istio-output"},
		declareJumpTargets: true,
	}
	v6 := c.EnableIPv6
	add2 := func(t *nftTable, chain, r4, r6 string) {
		t.add(chain, r4)
		if v6 {
			t.add(chain, r6)
		}
	}
	p4, p6 := c.HostProbeSNATAddress.String(), c.HostProbeV6SNATAddress.String()
	const pre, out = "istio-prerouting", "istio-output"
	// The ambient builder does not count jumps from base chains, and the upstream rule text has
	// "mark and 0xfff  != 0x539" with two spaces in the IPv4 prerouting rule; both are kept verbatim.
	nat.add(nftOutput, "jump "+out)
	nat.add(nftPrerouting, "jump "+pre)
	for _, ifc := range c.VirtualInterfaces {
		nat.add(pre, withCounter("iifname "+ifc+" meta l4proto tcp", "redirect to :"+AmbientZtunnelOutbound))
		nat.add(pre, withCounter("iifname "+ifc+" meta l4proto tcp", "return"))
	}
	if !c.IngressMode {
		add2(nat, pre, withCounter("meta l4proto tcp ip saddr "+p4, "accept"), withCounter("meta l4proto tcp ip6 saddr "+p6, "accept"))
	}
	add2(nat, out, withCounter("meta l4proto tcp ip daddr "+p4, "accept"), withCounter("meta l4proto tcp ip6 daddr "+p6, "accept"))
	if !c.IngressMode {
		add2(nat, pre,
			withCounter("ip daddr != 127.0.0.1/32 tcp dport != "+AmbientZtunnelInbound+" mark and 0xfff  != 0x539", "redirect to :"+AmbientZtunnelPlaintext),
			withCounter("ip6 daddr != ::1/128 tcp dport != "+AmbientZtunnelInbound+" mark and 0xfff != 0x539", "redirect to :"+AmbientZtunnelPlaintext))
	}
	nat.add(out, withCounter("meta l4proto tcp mark and 0xfff == 0x111", "accept"))
	add2(nat, out, withCounter("oifname lo ip daddr != 127.0.0.1/32", "accept"), withCounter("oifname lo ip6 daddr != ::1/128", "accept"))
	add2(nat, out,
		withCounter("meta l4proto tcp ip daddr != 127.0.0.1/32 mark and 0xfff != 0x539", "redirect to :"+AmbientZtunnelOutbound),
		withCounter("meta l4proto tcp ip6 daddr != ::1/128 mark and 0xfff != 0x539", "redirect to :"+AmbientZtunnelOutbound))

	mangle.add(nftPrerouting, "jump "+pre)
	mangle.add(nftOutput, "jump "+out)
	mangle.add(pre, withCounter("meta mark & 0xfff == 0x539", "ct mark set ct mark & 0xfffff000 |  0x111"))
	mangle.add(out, withCounter("ct mark and 0xfff == 0x111", "meta mark set ct mark"))
	return writeTx(w, nftTransaction(nat, mangle))
}

// AmbientHostConfig is the node-level (host netns) rule set of the Istio CNI agent: kubelet probes to
// ambient pods are SNATed to a fixed link-local address so the in-pod rules can exempt them.
type AmbientHostConfig struct {
	HostProbeSNATAddress   netip.Addr
	HostProbeV6SNATAddress netip.Addr
	EnableIPv6             bool
	// KubeletUID is the uid of the kubelet process; the nftables variant matches probe sockets by owner
	// (iptables matches "-m owner --socket-exists" instead). The agent detects it at runtime.
	KubeletUID string
}

// RenderAmbientHostIPTables writes the host-netns probe SNAT rules (nat POSTROUTING → ISTIO_POSTRT).
func RenderAmbientHostIPTables(w io.Writer, c AmbientHostConfig) error {
	v4, v6 := &iptBuilder{}, &iptBuilder{}
	v4.insertRule("POSTROUTING", "nat", 1, "-j", ChainAmbientPostrouting)
	v4.appendRule(ChainAmbientPostrouting, "nat", "-m", "owner", "--socket-exists", "-p", "tcp", "-m", "set", "--match-set", AmbientProbeIPSet+"-v4", "dst",
		"-j", "SNAT", "--to-source", c.HostProbeSNATAddress.String())
	if c.EnableIPv6 {
		v6.insertRule("POSTROUTING", "nat", 1, "-j", ChainAmbientPostrouting)
		v6.appendRule(ChainAmbientPostrouting, "nat", "-m", "owner", "--socket-exists", "-p", "tcp", "-m", "set", "--match-set", AmbientProbeIPSet+"-v6", "dst",
			"-j", "SNAT", "--to-source", c.HostProbeV6SNATAddress.String())
	}
	if _, err := io.WriteString(w, v4.restore()); err != nil {
		return err
	}
	if s := v6.restore(); s != "" {
		_, err := io.WriteString(w, "# ip6tables-restore\n"+s)
		return err
	}
	return nil
}

// RenderAmbientHostNFTables writes the host-netns probe SNAT rules in nftables mode. The probe address
// sets (@istio-inpod-probes-v4/-v6) are maintained by the agent and are not part of this output.
func RenderAmbientHostNFTables(w io.Writer, c AmbientHostConfig) error {
	if c.KubeletUID == "" {
		return fmt.Errorf("rendering ambient host nftables: KubeletUID is unknown (the agent detects the kubelet's uid at runtime); set it")
	}
	nat := &nftTable{name: NFTAmbientNatTable,
		baseChains: []nftBaseChain{{nftPostrouting, knftables.NATType, knftables.PostroutingHook, knftables.SNATPriority}},
	}
	nat.add(nftPostrouting, withCounter("meta l4proto tcp skuid "+c.KubeletUID+" ip daddr @"+AmbientProbeIPSet+"-v4", "snat to "+c.HostProbeSNATAddress.String()))
	if c.EnableIPv6 {
		nat.add(nftPostrouting, withCounter("meta l4proto tcp skuid "+c.KubeletUID+" ip6 daddr @"+AmbientProbeIPSet+"-v6", "snat to "+c.HostProbeV6SNATAddress.String()))
	}
	return writeTx(w, nftTransaction(nat))
}
