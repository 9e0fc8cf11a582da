package dns

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PodMode is the kubernetes plugin's `pods` option.
type PodMode string

// The three pod modes (CoreDNS plugin/kubernetes README).
const (
	PodsDisabled PodMode = "disabled" // default: every *.pod.<zone> name is NXDOMAIN
	PodsInsecure PodMode = "insecure" // a-b-c-d.ns.pod.<zone> answers a.b.c.d without checking the cluster
	PodsVerified PodMode = "verified" // answered only if a pod in ns has that IP
)

// Kubernetes DNS-based service discovery constants (kubernetes/dns docs/specification.md, CoreDNS kubernetes.go).
const (
	DefaultTTL       = 5       // kubernetes plugin default TTL
	MaxTTL           = 3600    // `ttl` upper bound
	DNSSchemaVersion = "1.1.0" // answered for TXT dns-version.<zone>
	zonalLabel       = "_zone" // topozone.pin|prefer._zone.svc.ns.svc.<zone> (the `zonal` option)
)

// KubernetesOptions is a parsed `kubernetes` plugin stanza.
type KubernetesOptions struct {
	// Zones the plugin is authoritative for, lower-case and fully qualified ("cluster.local.").
	Zones []string `json:"zones"`
	// Namespaces exposed (`namespaces`); empty means all.
	Namespaces []string `json:"namespaces,omitempty"`
	// NamespaceLabels is the `namespace_labels` selector, normalised.
	NamespaceLabels string `json:"namespaceLabels,omitempty"`
	// Labels is the `labels` selector on Services and EndpointSlices, normalised.
	Labels string `json:"labels,omitempty"`
	// Pods is the `pods` mode.
	Pods PodMode `json:"pods"`
	// EndpointPodNames: `endpoint_pod_names`.
	EndpointPodNames bool `json:"endpointPodNames,omitempty"`
	// TTL of every answer (`ttl`, default 5, 0..3600).
	TTL uint32 `json:"ttl"`
	// NoEndpoints: `noendpoints` (no endpoint watch: headless and endpoint names are NXDOMAIN).
	NoEndpoints bool `json:"noEndpoints,omitempty"`
	// Fallthrough zones (`fallthrough [ZONES...]`); nil means off, ["."] means every zone.
	Fallthrough []string `json:"fallthrough,omitempty"`
	// IgnoreEmptyService: `ignore empty_service`.
	IgnoreEmptyService bool `json:"ignoreEmptyService,omitempty"`
	// Multicluster zones (`multicluster`).
	Multicluster []string `json:"multicluster,omitempty"`
	// Zonal: `zonal` (topozone.pin|prefer._zone names for headless Services).
	Zonal bool `json:"zonal,omitempty"`
	// StartupTimeout: `startup_timeout` (default 5s).
	StartupTimeout time.Duration `json:"startupTimeout"`
	// Connection settings, kept for display only.
	Endpoint             []string `json:"endpoint,omitempty"`
	TLS                  []string `json:"tls,omitempty"`
	KubeConfig           []string `json:"kubeconfig,omitempty"`
	APIServerQPS         float64  `json:"apiserverQPS,omitempty"`
	APIServerBurst       int      `json:"apiserverBurst,omitempty"`
	APIServerMaxInflight int      `json:"apiserverMaxInflight,omitempty"`
}

// Upstream answers names outside the plugin's zones, as CoreDNS's upstream lookup (the server's own plugin chain,
// usually `forward`) does for ExternalName targets. A nil Upstream means those answers are unknown.
type Upstream interface {
	Lookup(name string, qtype uint16) (*miekg.Msg, error)
}

// Kubernetes models one CoreDNS `kubernetes` plugin instance answering from a Cluster.
type Kubernetes struct {
	Opts    KubernetesOptions
	Cluster Cluster
	// LocalIPs are the CoreDNS pod's own addresses (used for NS records of the zone apex).
	LocalIPs []netip.Addr
	// Serial is the SOA serial (CoreDNS uses the time of the last API change).
	Serial uint32
	// NotSynced models CoreDNS serving before its informers synced: name errors become SERVFAIL.
	NotSynced bool
	// Upstream resolves ExternalName targets outside the zones; nil means unknown.
	Upstream Upstream

	nsFilter map[string]bool
	labelSel labels.Selector
	primary  string
	soaNames sync.Map // zone → [ns.dns.zone, hostmaster.zone]
}

// NewKubernetes validates opts and returns a plugin model.
func NewKubernetes(opts KubernetesOptions, c Cluster) (*Kubernetes, error) {
	k := &Kubernetes{Opts: opts, Cluster: c}
	if k.Opts.Pods == "" {
		k.Opts.Pods = PodsDisabled
	}
	if len(k.Opts.Zones) == 0 {
		return nil, fmt.Errorf("kubernetes plugin: no zones")
	}
	for i, z := range k.Opts.Zones {
		k.Opts.Zones[i] = strings.ToLower(miekg.Fqdn(z))
	}
	for _, z := range k.Opts.Zones {
		if reverseKind(z) == 0 {
			k.primary = z
			break
		}
	}
	if k.primary == "" {
		k.primary = k.Opts.Zones[0]
	}
	if len(k.Opts.Namespaces) > 0 {
		k.nsFilter = map[string]bool{}
		for _, n := range k.Opts.Namespaces {
			k.nsFilter[n] = true
		}
	}
	if k.Opts.Labels != "" {
		sel, err := labels.Parse(k.Opts.Labels)
		if err != nil {
			return nil, fmt.Errorf("kubernetes plugin: labels %q: %w", k.Opts.Labels, err)
		}
		k.labelSel = sel
	}
	return k, nil
}

// recordRequest is CoreDNS's parsed query name (plugin/kubernetes/parse.go).
type recordRequest struct {
	port, protocol, endpoint, cluster, zone, directive, service, namespace, podOrSvc string
}

// String renders the request the way CoreDNS's tests do: port.protocol.endpoint.cluster.service.namespace.kind.
func (r recordRequest) String() string {
	return strings.Join([]string{r.port, r.protocol, r.endpoint, r.cluster, r.service, r.namespace, r.podOrSvc}, ".")
}

// parseRequest splits name (lower-case, inside zone) into its DNS-spec parts. invalid means "too long or not
// svc/pod", which CoreDNS answers NXDOMAIN.
func parseRequest(name, zone string, multicluster, zonal bool) (r recordRequest, invalid bool) {
	base := strings.TrimSuffix(strings.TrimSuffix(name, zone), ".")
	if name == zone {
		base = ""
	}
	if base == "" || base == "svc" || base == "pod" {
		return r, false
	}
	segs := miekg.SplitDomainName(base)
	last := len(segs) - 1
	if last < 0 {
		return r, false
	}
	r.podOrSvc = segs[last]
	if r.podOrSvc != "pod" && r.podOrSvc != "svc" {
		return r, true
	}
	if last--; last < 0 {
		return r, false
	}
	r.namespace = segs[last]
	if last--; last < 0 {
		return r, false
	}
	r.service = segs[last]
	if last--; last < 0 {
		return r, false
	}
	switch {
	case last == 0:
		r.endpoint = segs[0]
	case last == 1:
		if !multicluster || strings.HasPrefix(segs[1], "_") || strings.HasPrefix(segs[0], "_") {
			r.protocol = strings.TrimPrefix(segs[1], "_")
			r.port = strings.TrimPrefix(segs[0], "_")
		} else {
			r.cluster = segs[1]
			r.endpoint = segs[0]
		}
	case zonal && !multicluster && r.podOrSvc == "svc" && segs[last] == zonalLabel &&
		(segs[last-1] == "pin" || segs[last-1] == "prefer"):
		r.directive = segs[last-1]
		r.zone = strings.Join(segs[:last-1], ".")
	default:
		return r, true
	}
	return r, false
}

// record is CoreDNS's msg.Service: one candidate answer.
type record struct {
	host   string // IP address, or a name for ExternalName (CNAME)
	port   int    // -1: no ports
	target string // owner name used as the SRV target / NS name (fully qualified)
	ttl    uint32
	text   string // TXT
}

func (r record) ip() (netip.Addr, bool) {
	a, err := netip.ParseAddr(r.host)
	return a, err == nil
}

type lookup struct {
	recs    []record
	nameErr bool   // NXDOMAIN (errNoItems, errNsNotExposed, errInvalidRequest)
	why     string // reason for the outcome
}

func (k *Kubernetes) ttl() uint32 { return k.Opts.TTL }

// namespaceConfigured: listed in `namespaces`, or no list.
func (k *Kubernetes) namespaceConfigured(ns string) bool { return k.nsFilter == nil || k.nsFilter[ns] }

// namespaceExposed: configured and the namespace exists.
func (k *Kubernetes) namespaceExposed(ns string) bool {
	return k.namespaceConfigured(ns) && k.Cluster.NamespaceExists(ns)
}

func (k *Kubernetes) nsWhy(ns string) string {
	if k.nsFilter != nil && !k.nsFilter[ns] {
		return fmt.Sprintf("namespace %s is not in the plugin's `namespaces` list → NXDOMAIN", ns)
	}
	return fmt.Sprintf("namespace %s does not exist → NXDOMAIN", ns)
}

func (k *Kubernetes) isMulticluster(zone string) bool {
	return matchZone(k.Opts.Multicluster, strings.ToLower(zone)) != ""
}

// records is CoreDNS's Kubernetes.Records.
func (k *Kubernetes) records(name, zone string) lookup {
	multicluster := k.isMulticluster(zone)
	r, invalid := parseRequest(name, strings.ToLower(zone), multicluster, k.Opts.Zonal)
	if invalid {
		return lookup{nameErr: true, why: fmt.Sprintf("%s is not a <svc>.<ns>.svc or <pod>.<ns>.pod name the plugin understands → NXDOMAIN", name)}
	}
	if r.podOrSvc == "" {
		return lookup{why: fmt.Sprintf("%s is a zone-level name with no records → NODATA", name)}
	}
	if reverseKind(name) > 0 {
		return lookup{nameErr: true, why: "reverse-zone name is not a service name → NXDOMAIN"}
	}
	if !k.namespaceExposed(r.namespace) {
		return lookup{nameErr: true, why: k.nsWhy(r.namespace)}
	}
	if r.podOrSvc == "pod" {
		return k.findPods(r, zone)
	}
	if multicluster {
		return lookup{nameErr: true, why: "multicluster (MCS-API ServiceImport) zones are not modelled → treated as NXDOMAIN"}
	}
	return k.findServices(r, zone)
}

func (k *Kubernetes) findPods(r recordRequest, zone string) lookup {
	if k.Opts.Pods == PodsDisabled {
		return lookup{nameErr: true, why: "`pods disabled` (the default): pod names are NXDOMAIN"}
	}
	podname := r.service
	if podname == "" {
		return lookup{why: fmt.Sprintf("namespace %s exists; %s.pod has no records → NODATA", r.namespace, r.namespace)}
	}
	var ipStr string
	if strings.Count(podname, "-") == 3 && !strings.Contains(podname, "--") {
		ipStr = strings.ReplaceAll(podname, "-", ".")
	} else {
		ipStr = strings.ReplaceAll(podname, "-", ":")
	}
	target := podname + "." + r.namespace + ".pod." + zone
	ip, err := netip.ParseAddr(ipStr)
	if k.Opts.Pods == PodsInsecure {
		if err != nil || ip.Zone() != "" {
			return lookup{nameErr: true, why: fmt.Sprintf("`pods insecure`: %s is not an IP in dashed form → NXDOMAIN", podname)}
		}
		return lookup{recs: []record{{host: ipStr, target: target, ttl: k.ttl()}}, why: fmt.Sprintf("`pods insecure`: %s answered from the name without checking the cluster", ipStr)}
	}
	if err != nil {
		return lookup{nameErr: true, why: fmt.Sprintf("`pods verified`: %s is not an IP in dashed form → NXDOMAIN", podname)}
	}
	var out []record
	var names []string
	for _, p := range k.Cluster.PodsByIP(ip) {
		if p.Status.PodIP == ipStr && strings.EqualFold(p.Namespace, r.namespace) {
			out = append(out, record{host: ipStr, target: target, ttl: k.ttl()})
			names = append(names, p.Namespace+"/"+p.Name)
		}
	}
	if len(out) == 0 {
		return lookup{nameErr: true, why: fmt.Sprintf("`pods verified`: no pod in namespace %s has IP %s → NXDOMAIN", r.namespace, ipStr)}
	}
	return lookup{recs: out, why: fmt.Sprintf("`pods verified`: pod %s has IP %s", strings.Join(names, ","), ipStr)}
}

// endpointAddr is CoreDNS's object.EndpointAddress: one ready address of an EndpointSlice.
type endpointAddr struct {
	ip, hostname, targetRef, zone string
}

type endpointPort struct {
	name, protocol string
	port           int
}

type endpointSet struct {
	slice string
	addrs []endpointAddr
	ports []endpointPort
}

// endpoints converts the Service's EndpointSlices the way CoreDNS's EndpointSliceToEndpoints does: only ready
// addresses (a nil `ready` counts as ready), a port -1 sentinel when the slice has no ports.
func (k *Kubernetes) endpoints(ns, svc string) []endpointSet {
	if k.Opts.NoEndpoints {
		return nil
	}
	var out []endpointSet
	for _, s := range k.Cluster.EndpointSlices(ns, svc) {
		if s == nil || s.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		if k.labelSel != nil && !k.labelSel.Matches(labels.Set(s.Labels)) {
			continue
		}
		es := endpointSet{slice: s.Name}
		if len(s.Ports) == 0 {
			es.ports = []endpointPort{{port: -1}}
		}
		for _, p := range s.Ports {
			ep := endpointPort{port: -1}
			if p.Port != nil {
				ep.port = int(*p.Port)
			}
			if p.Name != nil {
				ep.name = *p.Name
			}
			if p.Protocol != nil {
				ep.protocol = string(*p.Protocol)
			}
			es.ports = append(es.ports, ep)
		}
		for _, e := range s.Endpoints {
			if e.Conditions.Ready != nil && !*e.Conditions.Ready {
				continue
			}
			for _, a := range e.Addresses {
				ea := endpointAddr{ip: a}
				if e.Hostname != nil {
					ea.hostname = *e.Hostname
				}
				if e.TargetRef != nil && len(e.TargetRef.Name) < 64 {
					ea.targetRef = e.TargetRef.Name
				}
				if e.Zone != nil {
					ea.zone = *e.Zone
				}
				es.addrs = append(es.addrs, ea)
			}
		}
		out = append(out, es)
	}
	return out
}

// EndpointHostname is the DNS label CoreDNS gives an endpoint: its hostname, else (with endpoint_pod_names) the
// target pod name, else the dashed IP ("10-1-2-3", "fd00--1"; a trailing "-" gets a "0").
func EndpointHostname(ip, hostname, podName string, endpointPodNames bool) string {
	if hostname != "" {
		return hostname
	}
	if endpointPodNames && podName != "" {
		return podName
	}
	if strings.Contains(ip, ".") {
		return strings.ReplaceAll(ip, ".", "-")
	}
	if strings.Contains(ip, ":") {
		h := strings.ReplaceAll(ip, ":", "-")
		if strings.HasSuffix(h, "-") {
			h += "0"
		}
		return h
	}
	return ""
}

func (k *Kubernetes) epHostname(a endpointAddr) string {
	return EndpointHostname(a.ip, a.hostname, a.targetRef, k.Opts.EndpointPodNames)
}

func headless(s *corev1.Service) bool {
	return s.Spec.ClusterIP == corev1.ClusterIPNone
}

func (k *Kubernetes) visibleService(ns, name string) *corev1.Service {
	s := k.Cluster.Service(ns, name)
	if s == nil {
		return nil
	}
	if k.labelSel != nil && !k.labelSel.Matches(labels.Set(s.Labels)) {
		return nil
	}
	return s
}

func matchPortProto(aPort, bPort, aProto, bProto string) bool {
	return (aPort == "" || strings.EqualFold(aPort, bPort)) && (aProto == "" || strings.EqualFold(aProto, bProto))
}

func (k *Kubernetes) findServices(r recordRequest, zone string) lookup {
	if r.service == "" {
		return lookup{why: fmt.Sprintf("namespace %s exists; %s.svc has no records → NODATA", r.namespace, r.namespace)}
	}
	svc := k.visibleService(r.namespace, r.service)
	if svc == nil {
		why := fmt.Sprintf("no Service %s in namespace %s → NXDOMAIN", r.service, r.namespace)
		if k.labelSel != nil && k.Cluster.Service(r.namespace, r.service) != nil {
			why = fmt.Sprintf("Service %s/%s does not match the plugin's `labels %s` → NXDOMAIN", r.namespace, r.service, k.Opts.Labels)
		}
		return lookup{nameErr: true, why: why}
	}
	id := svc.Namespace + "/" + svc.Name
	var eps []endpointSet
	epsLoaded := false
	loadEps := func() []endpointSet {
		if !epsLoaded {
			eps, epsLoaded = k.endpoints(svc.Namespace, svc.Name), true
		}
		return eps
	}
	if k.Opts.IgnoreEmptyService && svc.Spec.Type != corev1.ServiceTypeExternalName && !headless(svc) {
		n := 0
		for _, e := range loadEps() {
			n += len(e.addrs)
		}
		if n == 0 {
			return lookup{nameErr: true, why: fmt.Sprintf("Service %s has no ready endpoints and `ignore empty_service` is set → NXDOMAIN", id)}
		}
	}
	if r.zone != "" && !headless(svc) {
		return lookup{nameErr: true, why: fmt.Sprintf("zonal names exist only for headless Services; %s is not headless → NXDOMAIN", id)}
	}
	zonePath := svc.Name + "." + svc.Namespace + ".svc." + zone
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		if r.endpoint != "" || r.port != "" || r.protocol != "" {
			return lookup{nameErr: true, why: fmt.Sprintf("ExternalName Service %s has no endpoint or port names → NXDOMAIN", id)}
		}
		if _, err := netip.ParseAddr(svc.Spec.ExternalName); err == nil || svc.Spec.ExternalName == "" {
			return lookup{nameErr: true, why: fmt.Sprintf("ExternalName Service %s has externalName %q, which is not a DNS name → NXDOMAIN", id, svc.Spec.ExternalName)}
		}
		return lookup{recs: []record{{host: svc.Spec.ExternalName, target: zonePath, ttl: k.ttl()}},
			why: fmt.Sprintf("ExternalName Service %s → CNAME %s", id, miekg.Fqdn(svc.Spec.ExternalName))}
	}
	if headless(svc) || r.endpoint != "" {
		var out []record
		sets := loadEps()
		ready := 0
		for _, e := range sets {
			ready += len(e.addrs)
		}
		preferAll := false
		if r.zone != "" && r.directive == "prefer" {
			preferAll = true
			for _, e := range sets {
				for _, a := range e.addrs {
					if a.zone == r.zone {
						preferAll = false
					}
				}
			}
		}
		for _, e := range sets {
			for _, a := range e.addrs {
				if r.zone != "" && !preferAll && a.zone != r.zone {
					continue
				}
				h := k.epHostname(a)
				if r.endpoint != "" && !strings.EqualFold(r.endpoint, h) {
					continue
				}
				for _, p := range e.ports {
					if !matchPortProto(r.port, p.name, r.protocol, p.protocol) {
						continue
					}
					out = append(out, record{host: a.ip, port: p.port, target: h + "." + zonePath, ttl: k.ttl()})
				}
			}
		}
		kind := "headless Service " + id
		if !headless(svc) {
			kind = "Service " + id
		}
		switch {
		case r.zone != "" && len(out) == 0:
			return lookup{why: fmt.Sprintf("%s has no ready endpoints in zone %s (%s) → NODATA", kind, r.zone, r.directive)}
		case r.zone != "":
			how := "endpoints in zone " + r.zone
			if preferAll {
				how = "no endpoints in zone " + r.zone + ", `prefer` widens to all endpoints"
			}
			return lookup{recs: out, why: fmt.Sprintf("%s: %s", kind, how)}
		case len(out) == 0 && r.endpoint != "":
			return lookup{nameErr: true, why: fmt.Sprintf("%s has no ready endpoint named %s → NXDOMAIN", kind, r.endpoint)}
		case len(out) == 0 && (r.port != "" || r.protocol != ""):
			return lookup{nameErr: true, why: fmt.Sprintf("%s has no ready endpoint with port _%s._%s → NXDOMAIN", kind, r.port, r.protocol)}
		case len(out) == 0:
			why := fmt.Sprintf("%s has no ready endpoints → NXDOMAIN", kind)
			if k.Opts.NoEndpoints {
				why = fmt.Sprintf("%s: `noendpoints` disables endpoint records → NXDOMAIN", kind)
			}
			return lookup{nameErr: true, why: why}
		case r.endpoint != "":
			return lookup{recs: out, why: fmt.Sprintf("%s: endpoint %s", kind, r.endpoint)}
		}
		return lookup{recs: out, why: fmt.Sprintf("%s: %d ready endpoint address(es)", kind, ready)}
	}
	var out []record
	matched := false
	for _, p := range svc.Spec.Ports {
		if !matchPortProto(r.port, p.Name, r.protocol, string(p.Protocol)) {
			continue
		}
		matched = true
		for _, ip := range clusterIPs(svc) {
			out = append(out, record{host: ip, port: int(p.Port), target: zonePath, ttl: k.ttl()})
		}
	}
	if !matched {
		if r.port != "" || r.protocol != "" {
			return lookup{nameErr: true, why: fmt.Sprintf("Service %s has no port _%s._%s → NXDOMAIN", id, r.port, r.protocol)}
		}
		return lookup{nameErr: true, why: fmt.Sprintf("Service %s has no ports, so CoreDNS publishes no ClusterIP record → NXDOMAIN", id)}
	}
	return lookup{recs: out, why: fmt.Sprintf("Service %s: ClusterIP %s", id, strings.Join(clusterIPs(svc), ","))}
}

func clusterIPs(s *corev1.Service) []string {
	if len(s.Spec.ClusterIPs) > 0 {
		return s.Spec.ClusterIPs
	}
	if s.Spec.ClusterIP != "" {
		return []string{s.Spec.ClusterIP}
	}
	return nil
}

// services is CoreDNS's Kubernetes.Services (the ServiceBackend entry point).
func (k *Kubernetes) services(name, qname, zone string, qtype uint16) lookup {
	switch qtype {
	case miekg.TypeTXT:
		t := strings.TrimSuffix(strings.TrimSuffix(name, strings.ToLower(zone)), ".")
		if t == "dns-version" {
			return lookup{recs: []record{{text: DNSSchemaVersion, ttl: 28800}}, why: "dns-version TXT: Kubernetes DNS schema " + DNSSchemaVersion}
		}
		l := k.records(name, zone)
		if len(l.recs) > 0 {
			return lookup{why: l.why + "; no TXT records → NODATA"}
		}
		if !l.nameErr && k.Opts.Zonal {
			if r, inv := parseRequest(name, strings.ToLower(zone), k.isMulticluster(zone), true); !inv && r.zone != "" {
				return lookup{why: l.why}
			}
		}
		l.nameErr = true
		return l
	case miekg.TypeNS:
		return k.nsRecords(zone, "", 0)
	}
	if isDefaultNS(name, strings.ToLower(zone)) {
		return k.nsRecords(zone, qname, qtype)
	}
	l := k.records(name, zone)
	if qtype == miekg.TypeSRV {
		kept := l.recs[:0:0]
		for _, r := range l.recs {
			if _, ok := r.ip(); ok {
				kept = append(kept, r)
			}
		}
		l.recs = kept
	}
	return l
}

func isDefaultNS(name, zone string) bool {
	return strings.HasPrefix(name, "ns.dns.") && name[len("ns.dns."):] == zone
}

// nsRecords is CoreDNS's nsAddrs: the Services whose endpoints include the CoreDNS pod's own IPs; failing that,
// ns.dns.<zone> with the local IPs. With qname set, only the addresses of qtype are kept, owned by qname.
func (k *Kubernetes) nsRecords(zone, qname string, qtype uint16) lookup {
	var out []record
	for _, lip := range k.LocalIPs {
		for _, s := range k.Cluster.EndpointSlicesByAddress(lip) {
			svc := k.visibleService(s.Namespace, s.Labels[discoveryv1.LabelServiceName])
			if svc == nil {
				continue
			}
			svcName := svc.Name + "." + svc.Namespace + ".svc." + zone
			if headless(svc) {
				for _, e := range k.endpoints(svc.Namespace, svc.Name) {
					if e.slice != s.Name {
						continue
					}
					for _, a := range e.addrs {
						out = append(out, record{host: a.ip, target: k.epHostname(a) + "." + svcName, ttl: k.ttl()})
					}
				}
				continue
			}
			out = append(out, record{host: svc.Spec.ClusterIP, target: svcName, ttl: k.ttl()})
		}
	}
	why := "CoreDNS pod IPs are behind a Service: NS names it"
	if len(out) == 0 {
		for _, lip := range k.LocalIPs {
			out = append(out, record{host: lip.String(), target: "ns.dns." + zone, ttl: k.ttl()})
		}
		why = "CoreDNS's own addresses as ns.dns." + zone
		if len(k.LocalIPs) == 0 {
			why = "CoreDNS pod IPs unknown: no NS addresses"
		}
	}
	if qname != "" {
		kept := out[:0:0]
		for _, r := range out {
			ip, ok := r.ip()
			if ok && ((qtype == miekg.TypeA && ip.Is4()) || (qtype == miekg.TypeAAAA && !ip.Is4())) {
				r.target = qname
				kept = append(kept, r)
			}
		}
		out = kept
	}
	return lookup{recs: out, why: why}
}

// KubernetesAnswer is the plugin's decision for one question.
type KubernetesAnswer struct {
	Answer
	// Handled is false when the name is outside the plugin's zones or falls through to the next plugin.
	Handled bool
	// FellThrough is true when a name error was passed on by `fallthrough`.
	FellThrough bool
}

// Answer answers q as CoreDNS's kubernetes plugin ServeDNS does. It is safe for concurrent use.
func (k *Kubernetes) Answer(q miekg.Question) KubernetesAnswer {
	qname := miekg.Fqdn(q.Name)
	name := strings.ToLower(qname)
	zl := matchZone(k.Opts.Zones, name)
	if zl == "" {
		return KubernetesAnswer{Answer: Answer{Why: fmt.Sprintf("%s is outside the kubernetes plugin's zones %s", qname, strings.Join(k.Opts.Zones, " "))}}
	}
	zone := qname[len(qname)-len(zl):]
	req := new(miekg.Msg)
	req.SetQuestion(qname, q.Qtype)

	var (
		recs, extra []miekg.RR
		l           lookup
		truncated   bool
		partial     string
	)
	switch q.Qtype {
	case miekg.TypeA, miekg.TypeAAAA:
		recs, truncated, partial, l = k.addressRecords(name, qname, zone, zl, q.Qtype, nil)
	case miekg.TypeTXT:
		l = k.services(name, qname, zone, q.Qtype)
		for _, r := range l.recs {
			if r.text != "" {
				recs = append(recs, &miekg.TXT{Hdr: hdr(qname, miekg.TypeTXT, r.ttl), Txt: []string{r.text}})
			}
		}
	case miekg.TypeCNAME:
		l = k.services(name, qname, zone, q.Qtype)
		if len(l.recs) > 0 {
			if _, ok := l.recs[0].ip(); !ok {
				recs = append(recs, &miekg.CNAME{Hdr: hdr(qname, miekg.TypeCNAME, l.recs[0].ttl), Target: miekg.Fqdn(l.recs[0].host)})
			}
		}
	case miekg.TypePTR:
		l = k.reverse(name, zone)
		seen := map[string]bool{}
		for _, r := range l.recs {
			if _, isIP := r.ip(); !isIP && !seen[r.host] {
				seen[r.host] = true
				recs = append(recs, &miekg.PTR{Hdr: hdr(qname, miekg.TypePTR, r.ttl), Ptr: miekg.Fqdn(r.host)})
			}
		}
	case miekg.TypeSRV:
		l = k.services(name, qname, zone, q.Qtype)
		recs, extra = srvRecords(qname, l.recs)
	case miekg.TypeSOA:
		l = lookup{why: "SOA exists only at the zone apex → NODATA"}
		if qname == zone {
			recs = []miekg.RR{k.soa(zone)}
			l.why = "zone apex SOA"
		}
	case miekg.TypeAXFR, miekg.TypeIXFR:
		m := new(miekg.Msg)
		m.SetRcode(req, miekg.RcodeRefused)
		return KubernetesAnswer{Handled: true, Answer: finishAnswer(Answer{Msg: m, Known: true, Plugin: "kubernetes", Why: "zone transfers are refused by the kubernetes plugin (the transfer plugin serves them)"})}
	case miekg.TypeNS:
		if name == zl {
			l = k.services(name, qname, zone, q.Qtype)
			seen := map[string]bool{}
			for _, r := range l.recs {
				ip, ok := r.ip()
				if !ok {
					continue
				}
				extra = append(extra, addrRR(r.target, ip, r.ttl))
				if !seen[r.target] {
					seen[r.target] = true
					recs = append(recs, &miekg.NS{Hdr: hdr(qname, miekg.TypeNS, r.ttl), Ns: r.target})
				}
			}
			break
		}
		fallthrough
	default:
		// CoreDNS does a fake A lookup to tell NODATA from NXDOMAIN.
		_, _, _, l = k.addressRecords(name, qname, zone, zl, miekg.TypeA, nil)
		if !l.nameErr {
			l.why += "; no " + typeName(q.Qtype) + " records → NODATA"
		}
	}

	if l.nameErr {
		if matchZone(k.Opts.Fallthrough, name) != "" {
			return KubernetesAnswer{FellThrough: true, Answer: Answer{Why: l.why + "; `fallthrough` passes it to the next plugin"}}
		}
		rc := miekg.RcodeNameError
		why := l.why
		if k.NotSynced {
			rc = miekg.RcodeServerFailure
			why += "; CoreDNS has not synced with the API yet → SERVFAIL instead"
		}
		return KubernetesAnswer{Handled: true, Answer: finishAnswer(Answer{Msg: k.negative(req, zone, rc), Known: true, Plugin: "kubernetes", Why: why})}
	}
	if len(recs) == 0 {
		return KubernetesAnswer{Handled: true, Answer: finishAnswer(Answer{Msg: k.negative(req, zone, miekg.RcodeSuccess), Known: true, Plugin: "kubernetes", Why: nodataWhy(l.why)})}
	}
	m := new(miekg.Msg)
	m.SetReply(req)
	m.Authoritative = true
	m.Truncated = truncated
	m.Answer = dedupRRs(recs)
	m.Extra = dedupRRs(extra)
	a := Answer{Msg: m, Known: partial == "", Plugin: "kubernetes", Why: l.why}
	if partial != "" {
		a.Why += "; " + partial
		a.Rcode = "unknown"
	}
	return KubernetesAnswer{Handled: true, Answer: finishAnswer(a)}
}

func nodataWhy(w string) string {
	if strings.Contains(w, "NODATA") {
		return w
	}
	return w + "; no records of this type → NODATA"
}

// addressRecords is CoreDNS's plugin.A / plugin.AAAA, including ExternalName CNAME chasing inside the zone and the
// upstream lookup outside it. partial is set when the chain leaves the model.
func (k *Kubernetes) addressRecords(name, qname, zone, zl string, qtype uint16, prev []miekg.RR) (recs []miekg.RR, truncated bool, partial string, l lookup) {
	l = k.services(name, qname, zone, qtype)
	if l.nameErr {
		return nil, false, "", l
	}
	dup := map[string]bool{}
	for _, r := range l.recs {
		ip, isIP := r.ip()
		if !isIP {
			target := miekg.Fqdn(r.host)
			if strings.EqualFold(target, qname) || len(prev) > 7 {
				continue
			}
			cname := &miekg.CNAME{Hdr: hdr(qname, miekg.TypeCNAME, r.ttl), Target: target}
			if dupCNAME(cname, prev) {
				continue
			}
			lt := strings.ToLower(target)
			if inZone(zl, lt) {
				next, tc, p, nl := k.addressRecords(lt, target, target[len(target)-len(zl):], zl, qtype, append(prev, cname))
				if !nl.nameErr && len(next) > 0 {
					recs = append(recs, cname)
					recs = append(recs, next...)
					l.why += "; " + nl.why
				} else {
					l.why += "; CNAME target " + target + ": " + nl.why + " (CoreDNS drops the CNAME)"
				}
				truncated = truncated || tc
				if p != "" {
					partial = p
				}
				continue
			}
			if k.Upstream == nil {
				recs = append(recs, cname)
				partial = fmt.Sprintf("CNAME target %s is outside the zone: CoreDNS resolves it upstream (not modelled: answer unknown)", target)
				continue
			}
			m1, err := k.Upstream.Lookup(target, qtype)
			if err != nil || m1 == nil {
				l.why += fmt.Sprintf("; upstream lookup of %s failed, CoreDNS drops the CNAME", target)
				continue
			}
			truncated = truncated || m1.Truncated
			recs = append(recs, cname)
			recs = append(recs, m1.Answer...)
			l.why += fmt.Sprintf("; %s resolved upstream", target)
			continue
		}
		if (qtype == miekg.TypeA) != ip.Is4() || dup[r.host] {
			continue
		}
		dup[r.host] = true
		recs = append(recs, addrRR(qname, ip, r.ttl))
	}
	return recs, truncated, partial, l
}

func dupCNAME(c *miekg.CNAME, prev []miekg.RR) bool {
	for _, r := range prev {
		if p, ok := r.(*miekg.CNAME); ok && strings.EqualFold(p.Hdr.Name, c.Hdr.Name) && strings.EqualFold(p.Target, c.Target) {
			return true
		}
	}
	return false
}

// srvRecords is CoreDNS's plugin.SRV for address records: weight = 100/total*100 per priority, SRV targets are
// the record owner names, and each target gets one glue address in Extra.
func srvRecords(qname string, recs []record) (answer, extra []miekg.RR) {
	total := 0
	for range recs {
		total += 100
	}
	type key struct {
		name, addr string
		port       int
	}
	dup := map[key]bool{}
	for _, r := range recs {
		if r.port == -1 {
			continue
		}
		w := uint16(math.Floor(100.0 / float64(total) * 100))
		if w == 0 {
			w = 1
		}
		ip, _ := r.ip()
		srv := &miekg.SRV{Hdr: hdr(qname, miekg.TypeSRV, r.ttl), Priority: 0, Weight: w, Port: uint16(r.port), Target: r.target}
		if !dup[key{name: srv.Target, port: r.port}] {
			dup[key{name: srv.Target, port: r.port}] = true
			answer = append(answer, srv)
		}
		if !dup[key{name: srv.Target, addr: r.host}] {
			dup[key{name: srv.Target, addr: r.host}] = true
			extra = append(extra, addrRR(srv.Target, ip, r.ttl))
		}
	}
	return answer, extra
}

// reverse is CoreDNS's Kubernetes.Reverse: a Service ClusterIP first, else every endpoint with that address.
func (k *Kubernetes) reverse(name, zone string) lookup {
	ip, ok := addrFromReverse(name)
	if !ok {
		l := k.records(name, zone)
		l.recs = nil
		if !l.nameErr {
			l.why += "; not a reverse name → NODATA"
		}
		return l
	}
	if s := k.Cluster.ServiceByClusterIP(ip); s != nil && (k.nsFilter == nil || k.namespaceExposed(s.Namespace)) {
		d := s.Name + "." + s.Namespace + ".svc." + k.primary
		return lookup{recs: []record{{host: d, ttl: k.ttl()}}, why: fmt.Sprintf("%s is the ClusterIP of Service %s/%s", ip, s.Namespace, s.Name)}
	}
	var out []record
	var from []string
	for _, s := range k.Cluster.EndpointSlicesByAddress(ip) {
		if k.nsFilter != nil && !k.namespaceExposed(s.Namespace) {
			continue
		}
		svc := s.Labels[discoveryv1.LabelServiceName]
		for _, e := range k.endpoints(s.Namespace, svc) {
			if e.slice != s.Name {
				continue
			}
			for _, a := range e.addrs {
				if a.ip != ip.String() {
					continue
				}
				out = append(out, record{host: k.epHostname(a) + "." + svc + "." + s.Namespace + ".svc." + k.primary, ttl: k.ttl()})
				from = append(from, s.Namespace+"/"+svc)
			}
		}
	}
	if len(out) == 0 {
		return lookup{nameErr: true, why: fmt.Sprintf("%s is neither a Service ClusterIP nor a ready endpoint address → NXDOMAIN", ip)}
	}
	return lookup{recs: out, why: fmt.Sprintf("%s is an endpoint of %s", ip, strings.Join(omitDuplicates(from), ", "))}
}

// addrFromReverse parses a full in-addr.arpa or ip6.arpa name.
func addrFromReverse(name string) (netip.Addr, bool) {
	switch reverseKind(name) {
	case 4:
		labels := miekg.SplitDomainName(strings.TrimSuffix(name, "in-addr.arpa."))
		if len(labels) != 4 {
			return netip.Addr{}, false
		}
		var b [4]byte
		for i, l := range labels {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 || n > 255 {
				return netip.Addr{}, false
			}
			b[3-i] = byte(n)
		}
		return netip.AddrFrom4(b), true
	case 6:
		labels := miekg.SplitDomainName(strings.TrimSuffix(name, "ip6.arpa."))
		if len(labels) != 32 {
			return netip.Addr{}, false
		}
		var b [16]byte
		for i, l := range labels {
			n, err := strconv.ParseUint(l, 16, 8)
			if err != nil || len(l) != 1 {
				return netip.Addr{}, false
			}
			pos := 31 - i
			if pos%2 == 0 {
				b[pos/2] |= byte(n) << 4
			} else {
				b[pos/2] |= byte(n)
			}
		}
		return netip.AddrFrom16(b), true
	}
	return netip.Addr{}, false
}

// reverseKind is 4 for in-addr.arpa names, 6 for ip6.arpa names, else 0.
func reverseKind(name string) int {
	n := strings.ToLower(miekg.Fqdn(name))
	switch {
	case n == "in-addr.arpa." || strings.HasSuffix(n, ".in-addr.arpa."):
		return 4
	case n == "ip6.arpa." || strings.HasSuffix(n, ".ip6.arpa."):
		return 6
	}
	return 0
}

func (k *Kubernetes) soa(zone string) *miekg.SOA {
	ttl := k.ttl()
	if ttl > 300 {
		ttl = 300
	}
	names, ok := k.soaNames.Load(zone)
	if !ok {
		names, _ = k.soaNames.LoadOrStore(zone, [2]string{"ns.dns." + zone, "hostmaster." + zone})
	}
	n := names.([2]string)
	return &miekg.SOA{Hdr: hdr(zone, miekg.TypeSOA, ttl), Ns: n[0], Mbox: n[1],
		Serial: k.Serial, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: k.ttl()}
}

func (k *Kubernetes) negative(req *miekg.Msg, zone string, rcode int) *miekg.Msg {
	m := new(miekg.Msg)
	m.SetRcode(req, rcode)
	m.Authoritative = true
	m.Ns = []miekg.RR{k.soa(zone)}
	return m
}

func hdr(name string, t uint16, ttl uint32) miekg.RR_Header {
	return miekg.RR_Header{Name: name, Rrtype: t, Class: miekg.ClassINET, Ttl: ttl}
}

func addrRR(name string, ip netip.Addr, ttl uint32) miekg.RR {
	if ip.Is4() {
		return &miekg.A{Hdr: hdr(name, miekg.TypeA, ttl), A: ip.AsSlice()}
	}
	return &miekg.AAAA{Hdr: hdr(name, miekg.TypeAAAA, ttl), AAAA: ip.AsSlice()}
}

func dedupRRs(rrs []miekg.RR) []miekg.RR {
	if len(rrs) < 2 {
		return rrs
	}
	seen := make(map[string]bool, len(rrs))
	out := rrs[:0:0]
	for _, rr := range rrs {
		s := strings.ToLower(rr.String())
		if !seen[s] {
			seen[s] = true
			out = append(out, rr)
		}
	}
	return out
}

// matchZone returns the longest zone in zones that name (lower-case FQDN) is in, or "".
func matchZone(zones []string, name string) string {
	best := ""
	for _, z := range zones {
		if inZone(z, name) && len(z) > len(best) {
			best = z
		}
	}
	return best
}

// inZone reports whether name is zone or below it; both are lower-case FQDNs. (miekg.IsSubDomain does the same
// case-insensitively but allocates; this runs on every query.)
func inZone(zone, name string) bool {
	if zone == "." || zone == name {
		return true
	}
	return len(name) > len(zone) && name[len(name)-len(zone)-1] == '.' && name[len(name)-len(zone):] == zone
}
