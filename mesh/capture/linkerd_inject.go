package capture

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Linkerd annotations (pod or namespace; the pod wins) read by the proxy injector.
const (
	AnnoLinkerdInject            = "linkerd.io/inject"
	AnnoLinkerdSkipInboundPorts  = "config.linkerd.io/skip-inbound-ports"
	AnnoLinkerdSkipOutboundPorts = "config.linkerd.io/skip-outbound-ports"
	AnnoLinkerdSkipSubnets       = "config.linkerd.io/skip-subnets"
	AnnoLinkerdProxyUID          = "config.linkerd.io/proxy-uid"
	AnnoLinkerdProxyGID          = "config.linkerd.io/proxy-gid"
	AnnoLinkerdInboundPort       = "config.linkerd.io/proxy-inbound-port"
	AnnoLinkerdOutboundPort      = "config.linkerd.io/proxy-outbound-port"
	AnnoLinkerdAdminPort         = "config.linkerd.io/proxy-admin-port"
	AnnoLinkerdControlPort       = "config.linkerd.io/proxy-control-port"
	AnnoLinkerdOpaquePorts       = "config.linkerd.io/opaque-ports"
)

// LinkerdDefaults is the linkerd control plane's install-time configuration (chart values).
type LinkerdDefaults struct {
	InboundPort         int    // proxy.ports.inbound (4143)
	OutboundPort        int    // proxy.ports.outbound (4140)
	AdminPort           int    // proxy.ports.admin (4191): always skipped inbound
	ControlPort         int    // proxy.ports.control (4190): always skipped inbound
	ProxyUID            int    // proxy.uid (2102)
	ProxyGID            int    // proxy.gid (-1: no gid rule)
	IgnoreInboundPorts  string // proxyInit.ignoreInboundPorts ("4567,4568")
	IgnoreOutboundPorts string // proxyInit.ignoreOutboundPorts ("4567,4568")
	SkipSubnets         string // proxyInit.skipSubnets ("")
	IPTablesMode        string // proxyInit.iptablesMode: legacy or nft
	IPv6                bool   // !disableIPv6
	CNIEnabled          bool   // linkerd-cni applies the same rules instead of linkerd-init
	// InjectByDefault treats pods as injected without a linkerd.io/inject annotation (when the caller
	// already knows the pod is meshed, e.g. it has a linkerd-proxy container).
	InjectByDefault bool
}

func (LinkerdDefaults) mesh() Mesh { return MeshLinkerd }

// DefaultLinkerdDefaults returns the linkerd2 chart defaults.
func DefaultLinkerdDefaults() LinkerdDefaults {
	return LinkerdDefaults{InboundPort: LinkerdInboundPort, OutboundPort: LinkerdOutboundPort, AdminPort: LinkerdAdminPort,
		ControlPort: LinkerdControlPort, ProxyUID: LinkerdProxyUID, ProxyGID: -1,
		IgnoreInboundPorts: "4567,4568", IgnoreOutboundPorts: "4567,4568", IPTablesMode: "legacy"}
}

// LinkerdInitArgs returns the args the linkerd injector gives linkerd-init for pod.
func LinkerdInitArgs(pod *corev1.Pod, ns *corev1.Namespace, d LinkerdDefaults) ([]string, []Evidence, error) {
	if pod == nil {
		return nil, nil, fmt.Errorf("linkerd init args: pod is nil")
	}
	var ev []Evidence
	get := func(setting, key, def string) (string, bool) {
		if v, ok := pod.Annotations[key]; ok {
			ev = append(ev, Evidence{Setting: setting, Value: v, Source: SourcePodAnnotation, Key: key})
			return v, true
		}
		if ns != nil {
			if v, ok := ns.Annotations[key]; ok {
				ev = append(ev, Evidence{Setting: setting, Value: v, Source: SourceNamespaceAnnotation, Key: key})
				return v, true
			}
		}
		ev = append(ev, Evidence{Setting: setting, Value: def, Source: SourceDefault})
		return def, false
	}
	if pod.Spec.HostNetwork {
		return nil, ev, fmt.Errorf("pod %s/%s uses host networking, linkerd does not inject it: %w", pod.Namespace, pod.Name, ErrNotCaptured)
	}
	inj, set := get("linkerd.io/inject", AnnoLinkerdInject, "")
	switch {
	case inj == "enabled" || inj == "ingress":
	case inj == "disabled":
		return nil, ev, fmt.Errorf("pod %s/%s has %s=disabled: %w", pod.Namespace, pod.Name, AnnoLinkerdInject, ErrNotCaptured)
	case !set && d.InjectByDefault:
	default:
		return nil, ev, fmt.Errorf("pod %s/%s has no %s=enabled (pod or namespace): %w", pod.Namespace, pod.Name, AnnoLinkerdInject, ErrNotCaptured)
	}
	atoi := func(setting, key string, def int) (int, error) {
		v, _ := get(setting, key, strconv.Itoa(def))
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("annotation %s=%q is not a number", key, v)
		}
		return n, nil
	}
	in, err := atoi("--incoming-proxy-port", AnnoLinkerdInboundPort, d.InboundPort)
	if err != nil {
		return nil, ev, err
	}
	out, err := atoi("--outgoing-proxy-port", AnnoLinkerdOutboundPort, d.OutboundPort)
	if err != nil {
		return nil, ev, err
	}
	uid, err := atoi("--proxy-uid", AnnoLinkerdProxyUID, d.ProxyUID)
	if err != nil {
		return nil, ev, err
	}
	gid, err := atoi("--proxy-gid", AnnoLinkerdProxyGID, d.ProxyGID)
	if err != nil {
		return nil, ev, err
	}
	admin, err := atoi("admin port", AnnoLinkerdAdminPort, d.AdminPort)
	if err != nil {
		return nil, ev, err
	}
	control, err := atoi("control port", AnnoLinkerdControlPort, d.ControlPort)
	if err != nil {
		return nil, ev, err
	}
	args := []string{"--incoming-proxy-port", strconv.Itoa(in), "--outgoing-proxy-port", strconv.Itoa(out), "--proxy-uid", strconv.Itoa(uid)}
	if gid >= 0 {
		args = append(args, "--proxy-gid", strconv.Itoa(gid))
	}
	ignIn, _ := get("skip inbound ports", AnnoLinkerdSkipInboundPorts, d.IgnoreInboundPorts)
	inPorts := fmt.Sprintf("%d,%d", control, admin)
	if ignIn != "" {
		inPorts += "," + ignIn
	}
	args = append(args, "--inbound-ports-to-ignore", inPorts)
	if ignOut, _ := get("--outbound-ports-to-ignore", AnnoLinkerdSkipOutboundPorts, d.IgnoreOutboundPorts); ignOut != "" {
		args = append(args, "--outbound-ports-to-ignore", ignOut)
	}
	if subnets, _ := get("--subnets-to-ignore", AnnoLinkerdSkipSubnets, d.SkipSubnets); subnets != "" {
		args = append(args, "--subnets-to-ignore", subnets)
	}
	if v, ok := pod.Annotations[AnnoLinkerdOpaquePorts]; ok {
		ev = append(ev, Evidence{Setting: "opaque ports", Value: v, Source: SourcePodAnnotation, Key: AnnoLinkerdOpaquePorts,
			Why: "changes protocol detection in the proxy, not the iptables capture"})
	}
	mode := d.IPTablesMode
	if mode == "" {
		mode = "legacy"
	}
	args = append(args, "--iptables-mode="+mode, "--ipv6="+strconv.FormatBool(d.IPv6))
	return args, ev, nil
}

// LinkerdFromPod resolves the proxy-init configuration of pod. A pod that already carries a
// linkerd-init container (an injected manifest) is read from that container's args instead.
func LinkerdFromPod(pod *corev1.Pod, ns *corev1.Namespace, d LinkerdDefaults) (LinkerdConfig, []Evidence, error) {
	if pod == nil {
		return LinkerdConfig{}, nil, fmt.Errorf("linkerd config: pod is nil")
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == "linkerd-init" {
			o, ev, err := ParseLinkerdArgs(c.Args)
			if err != nil {
				return LinkerdConfig{}, ev, err
			}
			ev = append(ev, Evidence{Setting: "args", Value: strings.Join(c.Args, " "), Source: SourceContainer, Key: "initContainers[linkerd-init].args"})
			cfg, err := BuildLinkerdConfig(o)
			return cfg, ev, err
		}
	}
	args, ev, err := LinkerdInitArgs(pod, ns, d)
	if err != nil {
		return LinkerdConfig{}, ev, err
	}
	o, pev, err := ParseLinkerdArgs(args)
	ev = append(ev, pev...)
	if err != nil {
		return LinkerdConfig{}, ev, err
	}
	cfg, err := BuildLinkerdConfig(o)
	if d.CNIEnabled {
		cfg.InstalledBy = "linkerd-cni"
	}
	return cfg, ev, err
}
