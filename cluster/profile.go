package cluster

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// ProxyMode is how Service VIPs are implemented on nodes.
type ProxyMode string

const (
	ProxyIPTables   ProxyMode = "iptables"    // kube-proxy, iptables-save style chains; linear KUBE-SERVICES walk
	ProxyIPVS       ProxyMode = "ipvs"        // kube-proxy IPVS (needs the ip_vs kernel module)
	ProxyNFTables   ProxyMode = "nftables"    // kube-proxy nftables (GA in 1.33); one verdict-map lookup
	ProxyCiliumEBPF ProxyMode = "cilium-ebpf" // Cilium kube-proxy replacement: DNAT at connect() in the socket layer
	ProxyNone       ProxyMode = "none"        // no Service proxy found
)

// CNI is the pod network implementation, named by plugin and routing mode.
type CNI string

const (
	CNIBridge        CNI = "bridge"          // plain bridge plugin, host-local IPAM; cross-node needs routes someone else installs
	CNIFlannelVXLAN  CNI = "flannel-vxlan"   // flannel vxlan backend: flannel.1, VNI 1, UDP 8472
	CNIFlannelHostGW CNI = "flannel-host-gw" // flannel host-gw: native routes via node IPs
	CNICalicoIPIP    CNI = "calico-ipip"     // Calico IP-in-IP (tunl0)
	CNICalicoVXLAN   CNI = "calico-vxlan"    // Calico VXLAN (vxlan.calico, VNI 4096, UDP 4789)
	CNICalicoBGP     CNI = "calico-bgp"      // Calico native routing with BGP
	CNICiliumVXLAN   CNI = "cilium-vxlan"    // Cilium tunnel mode, VXLAN UDP 8472
	CNICiliumGeneve  CNI = "cilium-geneve"   // Cilium tunnel mode, Geneve UDP 6081
	CNICiliumNative  CNI = "cilium-native"   // Cilium native routing
	CNIAWSVPC        CNI = "aws-vpc"         // AWS VPC CNI: pod IPs are VPC addresses
	CNIKindnet       CNI = "kindnet"         // kind's kindnetd: ptp veths + node routes
)

// Mesh is the service mesh in the data path.
type Mesh string

const (
	MeshNone         Mesh = "none"
	MeshLinkerd      Mesh = "linkerd"
	MeshIstioSidecar Mesh = "istio-sidecar"
	MeshIstioAmbient Mesh = "istio-ambient"
	MeshCilium       Mesh = "cilium"
)

// Encryption is node-to-node transparent encryption.
type Encryption string

const (
	EncryptionNone      Encryption = "none"
	EncryptionWireGuard Encryption = "wireguard"
	EncryptionIPsec     Encryption = "ipsec"
)

// How a profile setting was decided.
const (
	FromDetected = "detected" // an object in the snapshot says so
	FromOverride = "flag"     // a command-line flag
	FromDefault  = "default"  // nothing said so; the upstream default was assumed
)

// Evidence explains one profile setting: its value, how it was decided, and the object (with its source location)
// that said so.
type Evidence struct {
	Setting string `json:"setting"`
	Value   string `json:"value"`
	How     string `json:"how"`              // detected | flag | default
	Object  string `json:"object,omitempty"` // e.g. ConfigMap kube-system/kube-proxy
	Source  string `json:"source,omitempty"` // file:line of that object
	Detail  string `json:"detail"`           // e.g. `data[config.conf]: mode: nftables`
}

// Overlay describes encapsulation between nodes.
type Overlay struct {
	Type     string `json:"type"` // vxlan | geneve | ipip | none
	VNI      int    `json:"vni,omitempty"`
	UDPPort  int    `json:"udpPort,omitempty"`
	Overhead int    `json:"overheadBytes,omitempty"` // bytes added per packet (outer headers)
	Device   string `json:"device,omitempty"`
}

// Profile is the dataplane the snapshot runs on.
type Profile struct {
	ProxyMode     ProxyMode      `json:"proxyMode"`
	CNI           CNI            `json:"cni"`
	Overlay       Overlay        `json:"overlay"`
	Mesh          Mesh           `json:"mesh"`
	Encryption    Encryption     `json:"encryption"`
	ClusterDomain string         `json:"clusterDomain"`
	PodCIDRs      []netip.Prefix `json:"podCIDRs"`
	ServiceCIDRs  []netip.Prefix `json:"serviceCIDRs"`
	// ClusterDNS is the kube-dns Service ClusterIP that kubelet writes into pods' resolv.conf.
	ClusterDNS netip.Addr `json:"clusterDNS,omitzero"`
	// NodeLocalDNS is the link-local address of NodeLocal DNSCache when it runs (169.254.20.10), else invalid.
	NodeLocalDNS netip.Addr `json:"nodeLocalDNS,omitzero"`
	// MTU is the underlay MTU; PodMTU what the CNI gives pod interfaces (MTU minus overlay/encryption overhead).
	MTU    int `json:"mtu"`
	PodMTU int `json:"podMTU"`
	// MasqueradeAll is kube-proxy's masqueradeAll; ClusterCIDR its local-traffic detector (clusterCIDR).
	MasqueradeAll bool `json:"masqueradeAll,omitempty"`
	// PolicyEnforcer is what implements NetworkPolicy on the nodes (calico, cilium, kube-network-policies, …), or
	// "none" when nothing does (flannel alone): then policies exist in the API but drop nothing.
	PolicyEnforcer string     `json:"policyEnforcer"`
	Evidence       []Evidence `json:"evidence"`
}

// Setting returns the evidence for one setting name ("proxyMode", "cni", ...).
func (p *Profile) Setting(name string) (Evidence, bool) {
	for _, e := range p.Evidence {
		if e.Setting == name {
			return e, true
		}
	}
	return Evidence{}, false
}

// Overrides are profile settings forced from the command line. Empty fields keep what was detected.
type Overrides struct {
	ProxyMode string
	// PolicyEnforcer: a NetworkPolicy implementation name, or "none".
	PolicyEnforcer string
	CNI            string
	Mesh           string
	Encryption     string
	ClusterDomain  string
	PodCIDR        string
	ServiceCIDR    string
}

var (
	validProxyModes = []ProxyMode{ProxyIPTables, ProxyIPVS, ProxyNFTables, ProxyCiliumEBPF, ProxyNone}
	validCNIs       = []CNI{CNIBridge, CNIFlannelVXLAN, CNIFlannelHostGW, CNICalicoIPIP, CNICalicoVXLAN, CNICalicoBGP,
		CNICiliumVXLAN, CNICiliumGeneve, CNICiliumNative, CNIAWSVPC, CNIKindnet}
	validMeshes      = []Mesh{MeshNone, MeshLinkerd, MeshIstioSidecar, MeshIstioAmbient, MeshCilium}
	validEncryptions = []Encryption{EncryptionNone, EncryptionWireGuard, EncryptionIPsec}
)

func oneOf[T ~string](v string, valid []T) bool {
	for _, x := range valid {
		if string(x) == v {
			return true
		}
	}
	return false
}

func names[T ~string](valid []T) string {
	var s []string
	for _, x := range valid {
		s = append(s, string(x))
	}
	return strings.Join(s, "|")
}

// Validate checks override values before loading, so a typo fails fast with the accepted values.
func (o Overrides) Validate() error {
	switch {
	case o.ProxyMode != "" && !oneOf(o.ProxyMode, validProxyModes):
		return fmt.Errorf("--proxy-mode %q: want one of %s", o.ProxyMode, names(validProxyModes))
	case o.CNI != "" && !oneOf(o.CNI, validCNIs):
		return fmt.Errorf("--cni %q: want one of %s", o.CNI, names(validCNIs))
	case o.Mesh != "" && !oneOf(o.Mesh, validMeshes):
		return fmt.Errorf("--mesh %q: want one of %s", o.Mesh, names(validMeshes))
	case o.Encryption != "" && !oneOf(o.Encryption, validEncryptions):
		return fmt.Errorf("--encryption %q: want one of %s", o.Encryption, names(validEncryptions))
	}
	for flag, v := range map[string]string{"--pod-cidr": o.PodCIDR, "--service-cidr": o.ServiceCIDR} {
		if v == "" {
			continue
		}
		for _, c := range strings.Split(v, ",") {
			if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil {
				return fmt.Errorf("%s %q: not a CIDR: %v", flag, v, err)
			}
		}
	}
	return nil
}

func overlayFor(c CNI) Overlay {
	switch c {
	case CNIFlannelVXLAN:
		return Overlay{Type: "vxlan", VNI: 1, UDPPort: 8472, Overhead: 50, Device: "flannel.1"}
	case CNICalicoVXLAN:
		return Overlay{Type: "vxlan", VNI: 4096, UDPPort: 4789, Overhead: 50, Device: "vxlan.calico"}
	case CNICiliumVXLAN:
		return Overlay{Type: "vxlan", VNI: 0, UDPPort: 8472, Overhead: 50, Device: "cilium_vxlan"}
	case CNICiliumGeneve:
		return Overlay{Type: "geneve", UDPPort: 6081, Overhead: 50, Device: "cilium_geneve"}
	case CNICalicoIPIP:
		return Overlay{Type: "ipip", Overhead: 20, Device: "tunl0"}
	}
	return Overlay{Type: "none"}
}

// kubeProxyConfig is the part of KubeProxyConfiguration kpath reads.
type kubeProxyConfig struct {
	Mode        string `json:"mode"`
	ClusterCIDR string `json:"clusterCIDR"`
	IPTables    struct {
		MasqueradeAll bool `json:"masqueradeAll"`
	} `json:"iptables"`
	MasqueradeAll bool `json:"masqueradeAll"`
}

var corefileZoneRE = regexp.MustCompile(`(?m)^\s*kubernetes\s+([^\s{]+)`)

// detect fills the profile from the snapshot's objects, then applies overrides. It runs before synthesis (the CIDRs
// decide synthesized addresses); ClusterDNS is filled after synthesis by finishDNS.
func (b *builder) detectProfile() {
	p := &b.snap.Profile
	o := b.opts.Overrides
	ev := func(setting, value, how string, obj Ref, detail string) {
		e := Evidence{Setting: setting, Value: value, How: how, Detail: detail}
		if obj.Kind != "" {
			e.Object = obj.String()
			if loc, ok := b.snap.sources[obj]; ok {
				e.Source = loc.String()
			}
		}
		p.Evidence = append(p.Evidence, e)
	}
	cm := func(ns, name string) *corev1.ConfigMap { return b.configMaps[key(ns, name)] }

	// --- kube-proxy mode ---
	var kpc kubeProxyConfig
	kpRef := Ref{Kind: "ConfigMap", Namespace: "kube-system", Name: "kube-proxy"}
	kpField, haveKPConfig := "", false
	if c := cm("kube-system", "kube-proxy"); c != nil {
		for _, k := range []string{"config.conf", "config"} {
			data, ok := c.Data[k]
			if !ok {
				continue
			}
			kpField = k
			if err := yaml.Unmarshal([]byte(data), &kpc); err != nil {
				b.diag(Diagnostic{Severity: SeverityWarning, Location: b.snap.sources[kpRef], Object: kpRef.String(),
					Field: "data[" + k + "]", Message: "cannot parse KubeProxyConfiguration: " + err.Error()})
			} else {
				haveKPConfig = true
			}
			break
		}
	}
	kpDS := b.daemonSets[key("kube-system", "kube-proxy")]
	ciliumCfg := cm("kube-system", "cilium-config")
	switch {
	case o.ProxyMode != "":
		p.ProxyMode = ProxyMode(o.ProxyMode)
		ev("proxyMode", o.ProxyMode, FromOverride, Ref{}, "--proxy-mode")
	case haveKPConfig:
		mode := kpc.Mode
		detail := fmt.Sprintf("data[%s]: mode: %s", kpField, mode)
		if mode == "" {
			mode = string(ProxyIPTables)
			detail = fmt.Sprintf("data[%s] has no mode; kube-proxy's default on Linux is iptables", kpField)
		}
		p.ProxyMode = ProxyMode(mode)
		ev("proxyMode", mode, FromDetected, kpRef, detail)
	case kpDS != nil:
		mode, detail := string(ProxyIPTables), "no --proxy-mode flag and no kube-proxy ConfigMap; kube-proxy's default is iptables"
		for _, c := range kpDS.Spec.Template.Spec.Containers {
			for _, a := range append(append([]string{}, c.Command...), c.Args...) {
				if v, ok := strings.CutPrefix(a, "--proxy-mode="); ok {
					mode, detail = v, "container arg "+a
				}
			}
		}
		p.ProxyMode = ProxyMode(mode)
		ev("proxyMode", mode, FromDetected, Ref{Kind: "DaemonSet", Namespace: "kube-system", Name: "kube-proxy"}, detail)
	case ciliumCfg != nil && (ciliumCfg.Data["kube-proxy-replacement"] == "true" || ciliumCfg.Data["kube-proxy-replacement"] == "strict"):
		p.ProxyMode = ProxyCiliumEBPF
		ev("proxyMode", string(ProxyCiliumEBPF), FromDetected, Ref{Kind: "ConfigMap", Namespace: "kube-system", Name: "cilium-config"},
			"kube-proxy-replacement: "+ciliumCfg.Data["kube-proxy-replacement"]+" and no kube-proxy DaemonSet")
	default:
		p.ProxyMode = ProxyIPTables
		ev("proxyMode", string(ProxyIPTables), FromDefault, Ref{}, "no kube-proxy ConfigMap or DaemonSet in the input; assumed kube-proxy's default mode")
	}
	p.MasqueradeAll = kpc.MasqueradeAll || kpc.IPTables.MasqueradeAll

	// --- CNI ---
	var podCIDRHint, podCIDRHintDetail string
	var podCIDRRef Ref
	encryption, encRef, encDetail := "", Ref{}, ""
	detected := false
	if o.CNI != "" {
		p.CNI = CNI(o.CNI)
		ev("cni", o.CNI, FromOverride, Ref{}, "--cni")
		detected = true
	}
	if c := b.findConfigMap("kube-flannel-cfg"); c != nil {
		var nc struct {
			Network string `json:"Network"`
			Backend struct {
				Type string `json:"Type"`
				VNI  int    `json:"VNI"`
				Port int    `json:"Port"`
			} `json:"Backend"`
		}
		ref := refOf("ConfigMap", c)
		if err := json.Unmarshal([]byte(c.Data["net-conf.json"]), &nc); err != nil {
			b.diag(Diagnostic{Severity: SeverityWarning, Location: b.snap.sources[ref], Object: ref.String(),
				Field: "data[net-conf.json]", Message: "cannot parse flannel net-conf.json: " + err.Error()})
		} else {
			podCIDRHint, podCIDRHintDetail, podCIDRRef = nc.Network, "data[net-conf.json] Network: "+nc.Network, ref
			typ := strings.ToLower(nc.Backend.Type)
			if typ == "" {
				typ = "vxlan"
			}
			if !detected {
				switch typ {
				case "host-gw":
					p.CNI = CNIFlannelHostGW
				case "wireguard":
					p.CNI = CNIFlannelHostGW
					encryption, encRef, encDetail = string(EncryptionWireGuard), ref, "flannel backend wireguard"
				default:
					p.CNI = CNIFlannelVXLAN
				}
				ev("cni", string(p.CNI), FromDetected, ref, "data[net-conf.json] Backend.Type: "+typ)
				detected = true
				p.Overlay = overlayFor(p.CNI)
				if nc.Backend.VNI != 0 {
					p.Overlay.VNI = nc.Backend.VNI
				}
				if nc.Backend.Port != 0 {
					p.Overlay.UDPPort = nc.Backend.Port
				}
			}
		}
	}
	if c := cm("kube-system", "cilium-config"); c != nil {
		ref := refOf("ConfigMap", c)
		if !detected {
			mode, detail := CNICiliumVXLAN, "tunnel mode (default vxlan)"
			if c.Data["routing-mode"] == "native" || c.Data["tunnel"] == "disabled" {
				mode, detail = CNICiliumNative, "routing-mode: native"
			} else if c.Data["tunnel-protocol"] == "geneve" || c.Data["tunnel"] == "geneve" {
				mode, detail = CNICiliumGeneve, "tunnel-protocol: geneve"
			}
			p.CNI = mode
			ev("cni", string(mode), FromDetected, ref, detail)
			detected = true
		}
		if c.Data["enable-wireguard"] == "true" {
			encryption, encRef, encDetail = string(EncryptionWireGuard), ref, "enable-wireguard: true"
		} else if c.Data["enable-ipsec"] == "true" {
			encryption, encRef, encDetail = string(EncryptionIPsec), ref, "enable-ipsec: true"
		}
		if v := c.Data["cluster-pool-ipv4-cidr"]; v != "" && podCIDRHint == "" {
			podCIDRHint, podCIDRHintDetail, podCIDRRef = v, "cluster-pool-ipv4-cidr: "+v, ref
		}
	}
	if ds := b.findDaemonSet("calico-node"); ds != nil {
		ref := refOf("DaemonSet", ds)
		env := map[string]string{}
		for _, c := range ds.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				env[e.Name] = e.Value
			}
		}
		if !detected {
			mode, detail := CNICalicoBGP, "calico-node with no IPIP/VXLAN pool encapsulation"
			if v := env["CALICO_IPV4POOL_VXLAN"]; v == "Always" || v == "CrossSubnet" {
				mode, detail = CNICalicoVXLAN, "env CALICO_IPV4POOL_VXLAN="+v
			} else if v := env["CALICO_IPV4POOL_IPIP"]; v == "Always" || v == "CrossSubnet" {
				mode, detail = CNICalicoIPIP, "env CALICO_IPV4POOL_IPIP="+v
			}
			p.CNI = mode
			ev("cni", string(mode), FromDetected, ref, detail)
			detected = true
		}
		if env["FELIX_WIREGUARDENABLED"] == "true" {
			encryption, encRef, encDetail = string(EncryptionWireGuard), ref, "env FELIX_WIREGUARDENABLED=true"
		}
		if v := env["CALICO_IPV4POOL_CIDR"]; v != "" && podCIDRHint == "" {
			podCIDRHint, podCIDRHintDetail, podCIDRRef = v, "env CALICO_IPV4POOL_CIDR="+v, ref
		}
	}
	for _, cand := range []struct {
		name string
		cni  CNI
	}{{"aws-node", CNIAWSVPC}, {"kindnet", CNIKindnet}} {
		if ds := b.findDaemonSet(cand.name); ds != nil && !detected {
			p.CNI = cand.cni
			ev("cni", string(cand.cni), FromDetected, refOf("DaemonSet", ds), "DaemonSet "+cand.name)
			detected = true
		}
	}
	if !detected {
		p.CNI = CNIBridge
		ev("cni", string(CNIBridge), FromDefault, Ref{}, "no CNI DaemonSet or config in the input (flannel, calico, cilium, aws-node, kindnet); assumed a bridge per node with routed pod CIDRs")
	}
	if p.Overlay.Type == "" {
		p.Overlay = overlayFor(p.CNI)
	}

	// --- encryption ---
	switch {
	case o.Encryption != "":
		p.Encryption = Encryption(o.Encryption)
		ev("encryption", o.Encryption, FromOverride, Ref{}, "--encryption")
	case encryption != "":
		p.Encryption = Encryption(encryption)
		ev("encryption", encryption, FromDetected, encRef, encDetail)
	default:
		p.Encryption = EncryptionNone
		ev("encryption", "none", FromDefault, Ref{}, "no WireGuard/IPsec setting found in CNI config")
	}
	p.MTU = 1500
	p.PodMTU = p.MTU - p.Overlay.Overhead
	if p.Encryption == EncryptionWireGuard {
		p.PodMTU -= 60 // WireGuard adds 60 bytes over IPv4 (32 header + 16 tag + 20 IP + 8 UDP, rounded by wg-quick's 80 for v6)
	}

	// --- mesh ---
	b.detectMesh(ev)
	b.detectPolicyEnforcer(ev)

	// --- cluster domain ---
	switch {
	case o.ClusterDomain != "":
		p.ClusterDomain = strings.TrimSuffix(o.ClusterDomain, ".")
		ev("clusterDomain", p.ClusterDomain, FromOverride, Ref{}, "--cluster-domain")
	default:
		p.ClusterDomain = "cluster.local"
		found := false
		if c := cm("kube-system", "coredns"); c != nil {
			if m := corefileZoneRE.FindStringSubmatch(c.Data["Corefile"]); m != nil {
				p.ClusterDomain = strings.TrimSuffix(m[1], ".")
				ev("clusterDomain", p.ClusterDomain, FromDetected, refOf("ConfigMap", c), "Corefile: kubernetes "+m[1])
				found = true
			}
		}
		if !found {
			ev("clusterDomain", p.ClusterDomain, FromDefault, Ref{}, "no CoreDNS Corefile with a kubernetes plugin; assumed kubelet's usual clusterDomain")
		}
	}

	// --- CIDRs ---
	p.PodCIDRs = b.cidrSetting("podCIDR", o.PodCIDR, "--pod-cidr", []cidrHint{
		{kpc.ClusterCIDR, kpRef, "data[" + kpField + "]: clusterCIDR: " + kpc.ClusterCIDR},
		{podCIDRHint, podCIDRRef, podCIDRHintDetail},
		b.nodePodCIDRSummary(),
	}, "10.244.0.0/16", "the flannel/kubeadm convention", ev)
	svcHint := cidrHint{}
	for _, pod := range b.pods {
		if pod.Namespace != "kube-system" || !strings.HasPrefix(pod.Name, "kube-apiserver") {
			continue
		}
		for _, c := range pod.Spec.Containers {
			for _, a := range append(append([]string{}, c.Command...), c.Args...) {
				if v, ok := strings.CutPrefix(a, "--service-cluster-ip-range="); ok {
					svcHint = cidrHint{v, refOf("Pod", pod), "container arg " + a}
				}
			}
		}
	}
	p.ServiceCIDRs = b.cidrSetting("serviceCIDR", o.ServiceCIDR, "--service-cidr", []cidrHint{svcHint, b.kubernetesServiceHint()},
		"10.96.0.0/12", "the kubeadm default", ev)
}

type cidrHint struct {
	value  string
	ref    Ref
	detail string
}

func (b *builder) cidrSetting(setting, override, flag string, hints []cidrHint, def, why string,
	ev func(string, string, string, Ref, string)) []netip.Prefix {
	parse := func(v string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for _, c := range strings.Split(v, ",") {
			p, err := netip.ParsePrefix(strings.TrimSpace(c))
			if err != nil {
				return nil, err
			}
			out = append(out, p.Masked())
		}
		return out, nil
	}
	if override != "" {
		ps, _ := parse(override) // validated by Overrides.Validate
		ev(setting, override, FromOverride, Ref{}, flag)
		return ps
	}
	for _, h := range hints {
		if h.value == "" {
			continue
		}
		ps, err := parse(h.value)
		if err != nil {
			b.diag(Diagnostic{Severity: SeverityError, Location: b.snap.sources[h.ref], Object: h.ref.String(),
				Message: fmt.Sprintf("%s: %q is not a CIDR: %v", h.detail, h.value, err)})
			continue
		}
		ev(setting, h.value, FromDetected, h.ref, h.detail)
		return ps
	}
	ps, _ := parse(def)
	ev(setting, def, FromDefault, Ref{}, "not found in the input; assumed "+why)
	return ps
}

// nodePodCIDRSummary derives the cluster pod CIDR from nodes' podCIDRs when they share a /16.
func (b *builder) nodePodCIDRSummary() cidrHint {
	var first netip.Prefix
	var ref Ref
	for _, n := range sortedValues(b.nodes) {
		if n.Spec.PodCIDR == "" {
			continue
		}
		p, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() < 16 {
			continue
		}
		s, _ := p.Addr().Prefix(16)
		if !first.IsValid() {
			first, ref = s, refOf("Node", n)
		} else if s != first {
			return cidrHint{}
		}
	}
	if !first.IsValid() {
		return cidrHint{}
	}
	return cidrHint{first.String(), ref, "the /16 holding every node's spec.podCIDR"}
}

// kubernetesServiceHint infers the service CIDR from the default/kubernetes Service, whose ClusterIP is the first
// address of the range (kubeadm's default range is a /12).
func (b *builder) kubernetesServiceHint() cidrHint {
	s := b.services[key("default", "kubernetes")]
	if s == nil || s.Spec.ClusterIP == "" {
		return cidrHint{}
	}
	ip, err := netip.ParseAddr(s.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return cidrHint{}
	}
	p, _ := ip.Prefix(12)
	return cidrHint{p.String(), refOf("Service", s), "Service default/kubernetes ClusterIP " + s.Spec.ClusterIP +
		" is the first address of the service range (/12 assumed, the kubeadm default size)"}
}

func (b *builder) findConfigMap(name string) *corev1.ConfigMap {
	for _, ns := range []string{"kube-flannel", "kube-system"} {
		if c := b.configMaps[key(ns, name)]; c != nil {
			return c
		}
	}
	return nil
}

func (b *builder) findDaemonSet(name string) *appsv1.DaemonSet {
	for _, ds := range sortedValues(b.daemonSets) {
		if ds.Name == name {
			return ds
		}
	}
	return nil
}

// detectMesh looks for a service mesh's control plane, data plane containers and namespace opt-ins.
func (b *builder) detectMesh(ev func(string, string, string, Ref, string)) {
	p := &b.snap.Profile
	if o := b.opts.Overrides.Mesh; o != "" {
		p.Mesh = Mesh(o)
		ev("mesh", o, FromOverride, Ref{}, "--mesh")
		return
	}
	type hit struct {
		mesh   Mesh
		ref    Ref
		detail string
	}
	var hits []hit
	if d := b.deployments[key("linkerd", "linkerd-destination")]; d != nil {
		hits = append(hits, hit{MeshLinkerd, refOf("Deployment", d), "Linkerd control plane (linkerd-destination)"})
	}
	for _, ds := range sortedValues(b.daemonSets) {
		if ds.Name == "ztunnel" {
			hits = append(hits, hit{MeshIstioAmbient, refOf("DaemonSet", ds), "Istio ambient node proxy (ztunnel)"})
		}
	}
	for _, ns := range sortedValues(b.namespaces) {
		if ns.Annotations["linkerd.io/inject"] == "enabled" {
			hits = append(hits, hit{MeshLinkerd, refOf("Namespace", ns), "annotation linkerd.io/inject: enabled"})
		}
		if ns.Labels["istio.io/dataplane-mode"] == "ambient" {
			hits = append(hits, hit{MeshIstioAmbient, refOf("Namespace", ns), "label istio.io/dataplane-mode: ambient"})
		}
		if ns.Labels["istio-injection"] == "enabled" {
			hits = append(hits, hit{MeshIstioSidecar, refOf("Namespace", ns), "label istio-injection: enabled"})
		} else if r := ns.Labels["istio.io/rev"]; r != "" {
			hits = append(hits, hit{MeshIstioSidecar, refOf("Namespace", ns), "label istio.io/rev: " + r})
		}
	}
	for _, d := range sortedValues(b.deployments) {
		if d.Name == "istiod" || strings.HasPrefix(d.Name, "istiod-") {
			hits = append(hits, hit{MeshIstioSidecar, refOf("Deployment", d), "Istio control plane (istiod)"})
		}
	}
	seenPodMesh := map[Mesh]bool{}
	for _, pod := range b.podList() {
		for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
			var m Mesh
			switch c.Name {
			case "linkerd-proxy":
				m = MeshLinkerd
			case "istio-proxy":
				m = MeshIstioSidecar
			}
			if m != "" && !seenPodMesh[m] {
				seenPodMesh[m] = true
				hits = append(hits, hit{m, refOf("Pod", pod), "container " + c.Name})
			}
		}
	}
	if len(hits) == 0 {
		p.Mesh = MeshNone
		ev("mesh", "none", FromDefault, Ref{}, "no Linkerd or Istio control plane, proxy container or namespace opt-in found")
		return
	}
	// Ambient wins over sidecar when both appear (istiod runs in both); otherwise the first found.
	p.Mesh = hits[0].mesh
	for _, h := range hits {
		if h.mesh == MeshIstioAmbient && p.Mesh == MeshIstioSidecar {
			p.Mesh = MeshIstioAmbient
		}
	}
	for _, h := range hits {
		ev("mesh", string(h.mesh), FromDetected, h.ref, h.detail)
	}
}

// PolicyNone is PolicyEnforcer's value when nothing enforces NetworkPolicy.
const PolicyNone = "none"

// Policy controllers by DaemonSet name. Calico, Cilium, Antrea and kube-router implement NetworkPolicy themselves;
// kube-network-policies is SIG Network's standalone nftables implementation (kind ships it with kindnet); canal runs
// Calico's policy engine beside flannel.
var policyDaemonSets = []struct{ ds, enforcer string }{
	{"calico-node", "calico"}, {"canal", "calico"}, {"cilium", "cilium"}, {"kube-network-policies", "kube-network-policies"},
	{"kube-router", "kube-router"}, {"antrea-agent", "antrea"}, {"weave-net", "weave"}, {"kindnet", "kindnet"},
}

func (b *builder) detectPolicyEnforcer(ev func(string, string, string, Ref, string)) {
	p := &b.snap.Profile
	if o := b.opts.Overrides.PolicyEnforcer; o != "" {
		p.PolicyEnforcer = o
		ev("policyEnforcer", o, FromOverride, Ref{}, "--policy-enforcer")
		return
	}
	for _, c := range policyDaemonSets {
		if ds := b.findDaemonSet(c.ds); ds != nil {
			p.PolicyEnforcer = c.enforcer
			detail := "DaemonSet " + c.ds + " implements NetworkPolicy"
			if c.ds == "kindnet" {
				detail = "kindnet embeds kube-network-policies (kind ≥ v0.24) to implement NetworkPolicy"
			}
			ev("policyEnforcer", c.enforcer, FromDetected, refOf("DaemonSet", ds), detail)
			return
		}
	}
	if ds := b.findDaemonSet("aws-node"); ds != nil {
		for _, c := range ds.Spec.Template.Spec.Containers {
			if c.Name == "aws-network-policy-agent" {
				p.PolicyEnforcer = "aws-network-policy-agent"
				ev("policyEnforcer", p.PolicyEnforcer, FromDetected, refOf("DaemonSet", ds), "container aws-network-policy-agent in aws-node")
				return
			}
		}
	}
	if e, ok := p.Setting("cni"); ok && e.How == FromDetected && (p.CNI == CNIFlannelVXLAN || p.CNI == CNIFlannelHostGW || p.CNI == CNIAWSVPC) {
		p.PolicyEnforcer = PolicyNone
		ev("policyEnforcer", PolicyNone, FromDetected, Ref{}, string(p.CNI)+" does not implement NetworkPolicy and no policy controller "+
			"(calico/canal, cilium, kube-network-policies, kube-router, antrea) was found: policies are stored but drop nothing")
		return
	}
	p.PolicyEnforcer = "assumed"
	ev("policyEnforcer", "assumed", FromDefault, Ref{}, "no CNI or policy controller in the input: assumed NetworkPolicy is enforced (say --policy-enforcer none if it is not)")
}
