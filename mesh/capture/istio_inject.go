package capture

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// Istio pod annotations read by the sidecar injector to build the istio-init arguments.
const (
	AnnoIstioInject               = "sidecar.istio.io/inject"
	AnnoIstioTemplates            = "inject.istio.io/templates"
	AnnoIstioInterceptionMode     = "sidecar.istio.io/interceptionMode"
	AnnoIstioIncludeOutboundIPs   = "traffic.sidecar.istio.io/includeOutboundIPRanges"
	AnnoIstioExcludeOutboundIPs   = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	AnnoIstioIncludeInboundPorts  = "traffic.sidecar.istio.io/includeInboundPorts"
	AnnoIstioExcludeInboundPorts  = "traffic.sidecar.istio.io/excludeInboundPorts"
	AnnoIstioIncludeOutboundPorts = "traffic.sidecar.istio.io/includeOutboundPorts"
	AnnoIstioExcludeOutboundPorts = "traffic.sidecar.istio.io/excludeOutboundPorts"
	AnnoIstioKubevirtInterfaces   = "traffic.sidecar.istio.io/kubevirtInterfaces"
	AnnoIstioRerouteVirtualIfaces = "istio.io/reroute-virtual-interfaces"
	AnnoIstioExcludeInterfaces    = "traffic.sidecar.istio.io/excludeInterfaces"
	AnnoIstioStatusPort           = "status.sidecar.istio.io/port"
	AnnoIstioAgentLogLevel        = "sidecar.istio.io/agentLogLevel"
	AnnoIstioProxyConfig          = "proxy.istio.io/config"
	AnnoOpenShiftUIDRange         = "openshift.io/sa.scc.uid-range"
)

// IstioDefaults is the injector's install-time configuration (Helm values and mesh config) that
// annotations override. Zero values are not defaults: start from DefaultIstioDefaults.
type IstioDefaults struct {
	InterceptionMode     InterceptionMode  // meshConfig.defaultConfig.interceptionMode
	IncludeIPRanges      string            // values.global.proxy.includeIPRanges ("*")
	ExcludeIPRanges      string            // values.global.proxy.excludeIPRanges ("")
	IncludeInboundPorts  string            // values.global.proxy.includeInboundPorts ("*")
	ExcludeInboundPorts  string            // values.global.proxy.excludeInboundPorts ("")
	IncludeOutboundPorts string            // values.global.proxy.includeOutboundPorts ("")
	ExcludeOutboundPorts string            // values.global.proxy.excludeOutboundPorts ("")
	StatusPort           string            // values.global.proxy.statusPort ("15020")
	LogLevel             string            // values.global.logging.level ("default:info")
	CNIEnabled           bool              // pilot.cni.enabled: istio-validation instead of istio-init
	NativeNftables       bool              // values.global.nativeNftables: --native-nftables
	OpenShift            bool              // platform: proxy uid from the namespace's uid range
	ProxyMetadata        map[string]string // meshConfig.defaultConfig.proxyMetadata (e.g. ISTIO_META_DNS_CAPTURE)
	EnableIPv6           bool              // used when the pod has no status IPs to decide from
	ClusterDNS           []string          // kube-dns ClusterIP(s): what a ClusterFirst pod's resolv.conf lists
}

func (IstioDefaults) mesh() Mesh { return MeshIstioSidecar }

// DefaultIstioDefaults returns the chart defaults of the sidecar injector.
func DefaultIstioDefaults() IstioDefaults {
	return IstioDefaults{
		InterceptionMode:    InterceptRedirect,
		IncludeIPRanges:     "*",
		IncludeInboundPorts: "*",
		StatusPort:          IstioStatusPort,
		LogLevel:            "default:info",
	}
}

type annoLookup struct {
	anno map[string]string
	ev   *[]Evidence
}

// get returns the annotation when present (even empty), else the default, recording where it came from.
func (a annoLookup) get(setting, key, def string) string {
	if v, ok := a.anno[key]; ok {
		*a.ev = append(*a.ev, Evidence{Setting: setting, Value: v, Source: SourcePodAnnotation, Key: key})
		return v
	}
	*a.ev = append(*a.ev, Evidence{Setting: setting, Value: def, Source: SourceDefault})
	return def
}

func validatePorts(key, v string, wildcard bool) error {
	if wildcard && v == "*" {
		return nil
	}
	for _, p := range splitList(v) {
		n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("annotation %s=%q: %q is not a port in 1-65535", key, v, p)
		}
	}
	return nil
}

func validateCIDRs(key, v string, wildcard bool) error {
	if wildcard && v == "*" {
		return nil
	}
	for _, c := range splitList(v) {
		if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil {
			return fmt.Errorf("annotation %s=%q: %q is not a CIDR", key, v, c)
		}
	}
	return nil
}

// validateIstioAnnotations rejects annotations the injector rejects (pod injection then fails).
func validateIstioAnnotations(anno map[string]string) error {
	checks := []struct {
		key      string
		cidr     bool
		wildcard bool
	}{
		{AnnoIstioIncludeOutboundIPs, true, true},
		{AnnoIstioExcludeOutboundIPs, true, false},
		{AnnoIstioIncludeInboundPorts, false, true},
		{AnnoIstioExcludeInboundPorts, false, false},
		{AnnoIstioIncludeOutboundPorts, false, false},
		{AnnoIstioExcludeOutboundPorts, false, false},
	}
	for _, c := range checks {
		v, ok := anno[c.key]
		if !ok {
			continue
		}
		var err error
		if c.cidr {
			err = validateCIDRs(c.key, v, c.wildcard)
		} else {
			err = validatePorts(c.key, v, c.wildcard)
		}
		if err != nil {
			return fmt.Errorf("invalid pod annotation (the injector refuses the pod): %w", err)
		}
	}
	return nil
}

// excludeInboundPort appends the status port to the excluded inbound ports, like the injector's
// template function of the same name ("0" or empty: no status port).
func excludeInboundPort(status, excluded string) string {
	s := strings.TrimSpace(status)
	if s == "" || s == "0" {
		return excluded
	}
	var out []string
	for _, p := range splitList(excluded) {
		if strings.TrimSpace(p) != s {
			out = append(out, p)
		}
	}
	return strings.Join(append(out, s), ",")
}

type istioProxyConfigAnno struct {
	InterceptionMode string            `json:"interceptionMode"`
	ProxyMetadata    map[string]string `json:"proxyMetadata"`
}

// IstioInitArgs returns the arguments the sidecar injector gives the istio-init (or, with CNI,
// istio-validation) container for pod, with the evidence of where each value came from.
// A pod that gets no such container yields an error wrapping ErrNotCaptured.
func IstioInitArgs(pod *corev1.Pod, ns *corev1.Namespace, d IstioDefaults) ([]string, []Evidence, error) {
	if pod == nil {
		return nil, nil, fmt.Errorf("istio init args: pod is nil")
	}
	anno := pod.Annotations
	if anno == nil {
		anno = map[string]string{}
	}
	var ev []Evidence
	if pod.Spec.HostNetwork {
		return nil, ev, fmt.Errorf("pod %s/%s uses host networking, the injector skips it: %w", pod.Namespace, pod.Name, ErrNotCaptured)
	}
	for _, m := range []map[string]string{pod.Annotations, pod.Labels} {
		if v, ok := m[AnnoIstioInject]; ok && (v == "false" || v == "n" || v == "no" || v == "off") {
			return nil, ev, fmt.Errorf("pod %s/%s has %s=%q: %w", pod.Namespace, pod.Name, AnnoIstioInject, v, ErrNotCaptured)
		}
	}
	if t, ok := anno[AnnoIstioTemplates]; ok {
		hasSidecar := false
		for _, n := range splitList(t) {
			hasSidecar = hasSidecar || strings.TrimSpace(n) == "sidecar"
		}
		if !hasSidecar {
			return nil, ev, fmt.Errorf("pod %s/%s uses injection templates %q without \"sidecar\": no istio-init (gateway/grpc/custom templates are not modelled): %w", pod.Namespace, pod.Name, t, ErrNotCaptured)
		}
	}
	if err := validateIstioAnnotations(anno); err != nil {
		return nil, ev, err
	}
	// A user-supplied istio-init container in the pod overrides the template's fields (strategic merge).
	for _, c := range pod.Spec.InitContainers {
		if (c.Name == "istio-init" || c.Name == "istio-validation") && len(c.Args) > 0 {
			ev = append(ev, Evidence{Setting: "args", Value: strings.Join(c.Args, " "), Source: SourceContainer,
				Key: "initContainers[" + c.Name + "].args", Why: "the pod's own init container args override the injector template"})
			return append([]string{}, c.Args...), ev, nil
		}
	}
	mode := d.InterceptionMode
	if pc, ok := anno[AnnoIstioProxyConfig]; ok {
		var p istioProxyConfigAnno
		if err := yaml.Unmarshal([]byte(pc), &p); err != nil {
			return nil, ev, fmt.Errorf("annotation %s: %w", AnnoIstioProxyConfig, err)
		}
		if p.InterceptionMode != "" {
			mode = InterceptionMode(p.InterceptionMode)
			ev = append(ev, Evidence{Setting: "InterceptionMode", Value: p.InterceptionMode, Source: SourcePodAnnotation, Key: AnnoIstioProxyConfig})
		}
	}
	a := annoLookup{anno: anno, ev: &ev}
	m := a.get("-m", AnnoIstioInterceptionMode, string(mode))
	if m == string(InterceptNone) {
		return nil, ev, fmt.Errorf("pod %s/%s has interception mode NONE: %w", pod.Namespace, pod.Name, ErrNotCaptured)
	}
	tproxy := m == string(InterceptTProxy)

	uid, uidEv := istioProxyUID(pod, ns, d, tproxy)
	ev = append(ev, uidEv)

	args := []string{"istio-iptables", "-p", IstioProxyPort, "-z", IstioInboundCapturePort, "-u", uid, "-m", m,
		"-i", a.get("-i", AnnoIstioIncludeOutboundIPs, d.IncludeIPRanges),
		"-x", a.get("-x", AnnoIstioExcludeOutboundIPs, d.ExcludeIPRanges),
		"-b", a.get("-b", AnnoIstioIncludeInboundPorts, d.IncludeInboundPorts)}
	excl := excludeInboundPort(a.get("status port", AnnoIstioStatusPort, d.StatusPort), a.get("excluded inbound ports", AnnoIstioExcludeInboundPorts, d.ExcludeInboundPorts))
	if excl != "" {
		args = append(args, "-d", IstioPrometheusPort+","+IstioHealthPort+","+excl)
	} else {
		args = append(args, "-d", IstioPrometheusPort+","+IstioHealthPort)
	}
	if _, ok := anno[AnnoIstioIncludeOutboundPorts]; ok || d.IncludeOutboundPorts != "" {
		args = append(args, "-q", a.get("-q", AnnoIstioIncludeOutboundPorts, d.IncludeOutboundPorts))
	}
	if _, ok := anno[AnnoIstioExcludeOutboundPorts]; ok || d.ExcludeOutboundPorts != "" {
		args = append(args, "-o", a.get("-o", AnnoIstioExcludeOutboundPorts, d.ExcludeOutboundPorts))
	}
	if v, ok := anno[AnnoIstioRerouteVirtualIfaces]; ok {
		args = append(args, "-k", v)
		ev = append(ev, Evidence{Setting: "-k", Value: v, Source: SourcePodAnnotation, Key: AnnoIstioRerouteVirtualIfaces})
	} else if v, ok := anno[AnnoIstioKubevirtInterfaces]; ok {
		args = append(args, "-k", v)
		ev = append(ev, Evidence{Setting: "-k", Value: v, Source: SourcePodAnnotation, Key: AnnoIstioKubevirtInterfaces})
	}
	if v, ok := anno[AnnoIstioExcludeInterfaces]; ok {
		args = append(args, "-c", v)
		ev = append(ev, Evidence{Setting: "-c", Value: v, Source: SourcePodAnnotation, Key: AnnoIstioExcludeInterfaces})
	}
	args = append(args, "--log_output_level="+a.get("--log_output_level", AnnoIstioAgentLogLevel, d.LogLevel))
	if d.CNIEnabled {
		args = append(args, "--run-validation", "--skip-rule-apply")
	}
	if d.NativeNftables {
		args = append(args, "--native-nftables")
	}
	return args, ev, nil
}

// istioProxyUID decides -u. On OpenShift the proxy runs with the namespace's uid range (last uid), except
// in TPROXY mode (1337). Elsewhere the istio-proxy container's own runAsUser override wins (the
// injector must honour it, even with TPROXY), then TPROXY/default 1337.
func istioProxyUID(pod *corev1.Pod, ns *corev1.Namespace, d IstioDefaults, tproxy bool) (string, Evidence) {
	if d.OpenShift {
		if tproxy {
			return IstioProxyUID, Evidence{Setting: "-u", Value: IstioProxyUID, Source: SourceDefault, Why: "TPROXY mode uses 1337"}
		}
		if ns == nil {
			return IstioProxyUID, Evidence{Setting: "-u", Value: IstioProxyUID, Source: SourceUnknown, Warning: true,
				Why: "OpenShift takes the proxy uid from the namespace's uid range, but the namespace is not known; assumed 1337"}
		}
		if r, ok := ns.Annotations[AnnoOpenShiftUIDRange]; ok {
			start, size, ok2 := strings.Cut(r, "/")
			s, e1 := strconv.ParseInt(start, 10, 64)
			n, e2 := strconv.ParseInt(size, 10, 64)
			if ok2 && e1 == nil && e2 == nil && n > 0 {
				u := strconv.FormatInt(s+n-1, 10)
				return u, Evidence{Setting: "-u", Value: u, Source: SourceNamespaceAnnotation, Key: AnnoOpenShiftUIDRange, Why: "last uid of the namespace's range"}
			}
		}
		return IstioProxyUID, Evidence{Setting: "-u", Value: IstioProxyUID, Source: SourceUnknown, Warning: true,
			Why: "OpenShift namespace has no usable " + AnnoOpenShiftUIDRange + "; assumed 1337"}
	}
	for _, cs := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range cs {
			if c.Name == "istio-proxy" && c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
				u := strconv.FormatInt(*c.SecurityContext.RunAsUser, 10)
				return u, Evidence{Setting: "-u", Value: u, Source: SourceContainer, Key: "istio-proxy securityContext.runAsUser"}
			}
		}
	}
	if tproxy {
		return IstioProxyUID, Evidence{Setting: "-u", Value: IstioProxyUID, Source: SourceDefault, Why: "TPROXY mode uses 1337"}
	}
	return IstioProxyUID, Evidence{Setting: "-u", Value: IstioProxyUID, Source: SourceDefault}
}

// ParseIstioIptablesArgs turns istio-iptables arguments into the tool's configuration, applying the
// tool's own defaults for what the arguments leave out (GID = UID, tunnel port 15008, ...).
func ParseIstioIptablesArgs(args []string) (IstioConfig, []Evidence, error) {
	c := DefaultIstioConfig()
	c.ProxyGID = ""
	c.InboundPortsInclude, c.InboundPortsExclude, c.OutboundIPRangesInclude = "", "", ""
	var ev []Evidence
	if len(args) > 0 && args[0] == "istio-iptables" {
		args = args[1:]
	}
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("istio-iptables args: flag %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var dst *string
		switch name {
		case "-p", "--envoy-port":
			dst = &c.ProxyPort
		case "-z", "--inbound-capture-port":
			dst = &c.InboundCapturePort
		case "-e", "--inbound-tunnel-port":
			dst = &c.InboundTunnelPort
		case "-u", "--proxy-uid":
			dst = &c.ProxyUID
		case "-g", "--proxy-gid":
			dst = &c.ProxyGID
		case "-t", "--inbound-tproxy-mark":
			dst = &c.InboundTProxyMark
		case "-r", "--inbound-tproxy-route-table":
			dst = &c.InboundTProxyRouteTable
		case "-b", "--inbound-ports":
			dst = &c.InboundPortsInclude
		case "-d", "--local-exclude-ports":
			dst = &c.InboundPortsExclude
		case "-q", "--outbound-ports":
			dst = &c.OutboundPortsInclude
		case "-o", "--local-outbound-ports-exclude":
			dst = &c.OutboundPortsExclude
		case "-i", "--service-cidr":
			dst = &c.OutboundIPRangesInclude
		case "-x", "--service-exclude-cidr":
			dst = &c.OutboundIPRangesExclude
		case "-k", "--kube-virt-interfaces", "--reroute-virtual-interfaces":
			dst = &c.RerouteVirtualInterfaces
		case "-c", "--exclude-interfaces":
			dst = &c.ExcludeInterfaces
		case "-m", "--istio-inbound-interception-mode":
			v, err := next()
			if err != nil {
				return c, ev, err
			}
			switch InterceptionMode(v) {
			case InterceptRedirect, InterceptTProxy:
				c.InboundInterceptionMode = InterceptionMode(v)
			default:
				return c, ev, fmt.Errorf("istio-iptables args: -m %q: interception mode must be REDIRECT or TPROXY", v)
			}
			continue
		case "--run-validation", "--skip-rule-apply":
			c.InstalledBy = "istio-cni"
			continue
		case "--native-nftables":
			c.NativeNftables = true
			continue
		case "--capture-all-dns":
			c.CaptureAllDNS = true
			continue
		case "--drop-invalid":
			c.DropInvalid = true
			continue
		case "--log_output_level", "--log_as_json", "--force-apply", "--dry-run", "-n", "--reconcile":
			if hasVal {
				ev = append(ev, Evidence{Setting: name, Value: val, Source: SourceContainer, Why: "does not change the rules"})
			}
			continue
		default:
			ev = append(ev, Evidence{Setting: name, Value: args[i], Source: SourceContainer, Warning: true, Why: "unknown istio-iptables flag, ignored"})
			continue
		}
		v, err := next()
		if err != nil {
			return c, ev, err
		}
		*dst = v
	}
	if c.ProxyGID == "" {
		c.ProxyGID = c.ProxyUID
		ev = append(ev, Evidence{Setting: "ProxyGID", Value: c.ProxyGID, Source: SourceDefault, Why: "istio-iptables defaults the proxy gid to the proxy uid"})
	}
	return c, ev, nil
}

// IstioFromPod resolves the sidecar capture configuration of pod: the injector's istio-init arguments,
// parsed as istio-iptables parses them, plus what the tool learns at runtime (IPv6 from the pod's IPs,
// DNS capture from ISTIO_META_DNS_CAPTURE, DNS servers from the pod's resolv.conf).
func IstioFromPod(pod *corev1.Pod, ns *corev1.Namespace, d IstioDefaults) (IstioConfig, []Evidence, error) {
	args, ev, err := IstioInitArgs(pod, ns, d)
	if err != nil {
		return IstioConfig{}, ev, err
	}
	c, pev, err := ParseIstioIptablesArgs(args)
	ev = append(ev, pev...)
	if err != nil {
		return c, ev, err
	}
	// IPv6 capture is enabled when the pod has an IPv6 address.
	decided := false
	for _, ip := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			decided = true
			if a.Is6() && !a.Is4In6() {
				c.EnableIPv6 = true
			}
		}
	}
	if decided {
		ev = append(ev, Evidence{Setting: "EnableIPv6", Value: strconv.FormatBool(c.EnableIPv6), Source: SourceContainer, Key: "status.podIPs"})
	} else {
		c.EnableIPv6 = d.EnableIPv6
		ev = append(ev, Evidence{Setting: "EnableIPv6", Value: strconv.FormatBool(c.EnableIPv6), Source: SourceMeshDefaults, Why: "pod has no status IPs"})
	}
	// DNS capture: proxyMetadata from mesh defaults, overridden by the pod's proxy.istio.io/config.
	meta := map[string]string{}
	for k, v := range d.ProxyMetadata {
		meta[k] = v
	}
	if pc, ok := pod.Annotations[AnnoIstioProxyConfig]; ok {
		var p istioProxyConfigAnno
		if err := yaml.Unmarshal([]byte(pc), &p); err == nil {
			for k, v := range p.ProxyMetadata {
				meta[k] = v
			}
		}
	}
	if meta["ISTIO_META_DNS_CAPTURE"] == "true" {
		c.RedirectDNS = true
		ev = append(ev, Evidence{Setting: "RedirectDNS", Value: "true", Source: SourceMeshDefaults, Key: "proxyMetadata.ISTIO_META_DNS_CAPTURE"})
		c.DNSServersV4, c.DNSServersV6 = podResolvers(pod, d, &ev)
	}
	ev = append(ev, c.Validate()...)
	return c, ev, nil
}

// podResolvers predicts the nameservers of the pod's resolv.conf (which istio-iptables reads).
func podResolvers(pod *corev1.Pod, d IstioDefaults, ev *[]Evidence) (v4, v6 []string) {
	var servers []string
	switch pod.Spec.DNSPolicy {
	case corev1.DNSNone:
	case corev1.DNSDefault:
		*ev = append(*ev, Evidence{Setting: "DNSServers", Source: SourceUnknown, Warning: true,
			Why: "dnsPolicy Default inherits the node's resolv.conf, which kpath does not know"})
	case corev1.DNSClusterFirstWithHostNet, corev1.DNSClusterFirst, "":
		if pod.Spec.HostNetwork && pod.Spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
			break
		}
		servers = append(servers, d.ClusterDNS...)
		if len(d.ClusterDNS) == 0 {
			*ev = append(*ev, Evidence{Setting: "DNSServers", Source: SourceUnknown, Warning: true,
				Why: "the cluster DNS service IP is not known (set IstioDefaults.ClusterDNS)"})
		}
	}
	if pod.Spec.DNSConfig != nil {
		servers = append(servers, pod.Spec.DNSConfig.Nameservers...)
	}
	for _, s := range servers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			continue
		}
		if a.Is4() {
			v4 = append(v4, s)
		} else {
			v6 = append(v6, s)
		}
	}
	*ev = append(*ev, Evidence{Setting: "DNSServers", Value: strings.Join(servers, ","), Source: SourceMeshDefaults, Why: "predicted resolv.conf nameservers"})
	return v4, v6
}
