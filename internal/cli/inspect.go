package cli

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kpath/kpath/cluster"
)

// InspectSchema versions the JSON/YAML form of `kpath inspect`.
const InspectSchema = "kpath.dev/inspect/v1"

// InspectReport is what `kpath inspect -o json` prints.
type InspectReport struct {
	Schema      string               `json:"schema"`
	Sources     []string             `json:"sources"`
	LoadTimeMS  float64              `json:"loadTimeMs"`
	Counts      []KindCounts         `json:"counts"`
	Namespaces  []NamespaceSummary   `json:"namespaces"`
	Nodes       []NodeSummary        `json:"nodes"`
	Zones       []string             `json:"zones"`
	Profile     cluster.Profile      `json:"profile"`
	Services    []ServiceSummary     `json:"services"`
	Findings    []string             `json:"findings"`
	Synthesized []cluster.Synthesis  `json:"synthesized"`
	Custom      []cluster.Ref        `json:"customResources"`
	Ignored     []cluster.Ignored    `json:"ignored"`
	Diagnostics []cluster.Diagnostic `json:"diagnostics"`
}

// KindCounts splits a kind's objects into given and synthesized.
type KindCounts struct {
	Kind        string `json:"kind"`
	Given       int    `json:"given"`
	Synthesized int    `json:"synthesized"`
}

// NamespaceSummary is one namespace row.
type NamespaceSummary struct {
	Name        string `json:"name"`
	Pods        int    `json:"pods"`
	Services    int    `json:"services"`
	Synthesized bool   `json:"synthesized,omitempty"`
}

// NodeSummary is one node row.
type NodeSummary struct {
	Name        string   `json:"name"`
	Zone        string   `json:"zone,omitempty"`
	IP          string   `json:"ip,omitempty"`
	PodCIDRs    []string `json:"podCIDRs,omitempty"`
	Pods        int      `json:"pods"`
	Taints      []string `json:"taints,omitempty"`
	Synthesized []string `json:"synthesized,omitempty"`
}

// ServiceSummary is one Service row.
type ServiceSummary struct {
	Namespace    string   `json:"namespace"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	ClusterIP    string   `json:"clusterIP,omitempty"`
	External     []string `json:"external,omitempty"` // external IPs, LB ingress, ExternalName target
	Ports        []string `json:"ports"`
	Ready        int      `json:"readyEndpoints"`
	Total        int      `json:"totalEndpoints"`
	Notes        []string `json:"notes,omitempty"`
	Synthesized  []string `json:"synthesized,omitempty"`
	headless     bool
	externalName bool
}

func newInspectCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "inspect [-f FILE|DIR|- ... | --demo]",
		Short: "Show what was loaded: objects, nodes and zones, the dataplane profile and its evidence, what was synthesized, every warning",
		Example: `  kpath inspect --demo
  kubectl get -A -o yaml pods,services,endpointslices,networkpolicies,nodes,namespaces,configmaps,daemonsets > dump.yaml
  kpath inspect -f dump.yaml
  kpath inspect -f manifests/ -R -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			snap, err := g.load()
			if err != nil {
				return err
			}
			r := buildInspect(snap, g.namespace)
			if g.output == "json" || g.output == "yaml" {
				return writeStructured(g.stdout, g.output, r)
			}
			writeInspectText(g.stdout, r, g.verbose)
			return nil
		},
	}
}

func synthFields(a map[string]string) []string {
	v, ok := a[cluster.SynthesizedAnnotation]
	if !ok {
		return nil
	}
	return strings.Split(v, ",")
}

func buildInspect(s *cluster.Snapshot, onlyNS string) *InspectReport {
	r := &InspectReport{Schema: InspectSchema, Sources: s.Sources, LoadTimeMS: float64(s.LoadTime.Microseconds()) / 1000,
		Profile: s.Profile, Synthesized: s.Synthesized, Ignored: s.Ignored, Diagnostics: s.Diagnostics}
	synthCount := map[string]int{}
	for _, syn := range s.Synthesized {
		if len(syn.Fields) == 1 && syn.Fields[0] == "*" {
			synthCount[syn.Ref.Kind]++
		}
	}
	for _, c := range s.Counts() {
		r.Counts = append(r.Counts, KindCounts{Kind: c.Kind, Given: c.Count - synthCount[c.Kind], Synthesized: synthCount[c.Kind]})
	}
	if len(s.Custom) > 0 {
		byKind := map[string]int{}
		for _, u := range s.Custom {
			byKind[u.GetKind()]++
			r.Custom = append(r.Custom, cluster.Ref{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()})
		}
	}
	inNS := func(ns string) bool { return onlyNS == "" || ns == onlyNS }
	for _, ns := range s.Namespaces {
		if !inNS(ns.Name) {
			continue
		}
		r.Namespaces = append(r.Namespaces, NamespaceSummary{Name: ns.Name, Pods: len(s.PodsIn(ns.Name)),
			Services: len(s.ServicesIn(ns.Name)), Synthesized: cluster.IsSynthesized(ns, "*")})
	}
	zones := map[string]bool{}
	for _, n := range s.Nodes {
		ns := NodeSummary{Name: n.Name, Zone: n.Labels[corev1.LabelTopologyZone], PodCIDRs: n.Spec.PodCIDRs,
			Pods: len(s.PodsOnNode(n.Name)), Synthesized: synthFields(n.Annotations)}
		if ip := cluster.NodeIP(n); ip.IsValid() {
			ns.IP = ip.String()
		}
		for _, t := range n.Spec.Taints {
			ns.Taints = append(ns.Taints, t.ToString())
		}
		if ns.Zone != "" {
			zones[ns.Zone] = true
		}
		r.Nodes = append(r.Nodes, ns)
	}
	for z := range zones {
		r.Zones = append(r.Zones, z)
	}
	sort.Strings(r.Zones)
	for _, svc := range s.Services {
		if !inNS(svc.Namespace) {
			continue
		}
		r.Services = append(r.Services, serviceSummary(s, svc))
	}
	r.Findings = findings(s, r, onlyNS)
	return r
}

func serviceSummary(s *cluster.Snapshot, svc *corev1.Service) ServiceSummary {
	ss := ServiceSummary{Namespace: svc.Namespace, Name: svc.Name, Type: string(svc.Spec.Type), ClusterIP: svc.Spec.ClusterIP,
		Synthesized: synthFields(svc.Annotations)}
	ss.headless = svc.Spec.ClusterIP == corev1.ClusterIPNone
	ss.externalName = svc.Spec.Type == corev1.ServiceTypeExternalName
	if ss.externalName {
		ss.External = append(ss.External, svc.Spec.ExternalName)
	}
	ss.External = append(ss.External, svc.Spec.ExternalIPs...)
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ing.IP != "" {
			ss.External = append(ss.External, ing.IP)
		} else if ing.Hostname != "" {
			ss.External = append(ss.External, ing.Hostname)
		}
	}
	for _, p := range svc.Spec.Ports {
		txt := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.Name != "" {
			txt = p.Name + ":" + txt
		}
		if p.TargetPort.String() != fmt.Sprint(p.Port) {
			txt += "→" + p.TargetPort.String()
		}
		if p.NodePort != 0 {
			txt += fmt.Sprintf(" (node :%d)", p.NodePort)
		}
		ss.Ports = append(ss.Ports, txt)
	}
	seen := map[string]bool{}
	for _, sl := range s.SlicesFor(svc.Namespace, svc.Name) {
		for _, ep := range sl.Endpoints {
			if len(ep.Addresses) == 0 || seen[ep.Addresses[0]] {
				continue
			}
			seen[ep.Addresses[0]] = true
			ss.Total++
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				ss.Ready++
			}
		}
	}
	switch {
	case ss.externalName:
		ss.Notes = append(ss.Notes, "ExternalName: DNS CNAME to "+svc.Spec.ExternalName+", no proxying")
	case ss.headless:
		ss.Notes = append(ss.Notes, "headless: DNS returns pod IPs, no VIP")
	}
	if !ss.externalName && svc.Spec.Selector != nil && ss.Ready == 0 {
		if ss.Total == 0 {
			ss.Notes = append(ss.Notes, "no endpoints: selector matches no running pod")
		} else {
			ss.Notes = append(ss.Notes, fmt.Sprintf("no ready endpoints (%d not ready)", ss.Total))
		}
	}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		ss.Notes = append(ss.Notes, "externalTrafficPolicy: Local")
	}
	if svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal {
		ss.Notes = append(ss.Notes, "internalTrafficPolicy: Local")
	}
	if td := svc.Spec.TrafficDistribution; td != nil {
		ss.Notes = append(ss.Notes, "trafficDistribution: "+*td)
	}
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		ss.Notes = append(ss.Notes, "sessionAffinity: ClientIP")
	}
	return ss
}

// findings are the things a reader should notice first: what will break or surprise a packet.
func findings(s *cluster.Snapshot, r *InspectReport, onlyNS string) []string {
	var out []string
	for _, ss := range r.Services {
		if !ss.externalName && ss.Ready == 0 && ss.Type != "" {
			svc := s.Service(ss.Namespace, ss.Name)
			if svc.Spec.Selector == nil {
				continue
			}
			how := "REJECT (connection refused)"
			if r.Profile.ProxyMode == cluster.ProxyNFTables || r.Profile.ProxyMode == cluster.ProxyIPTables {
				how = "kube-proxy REJECTs the connection (ICMP port unreachable / TCP reset)"
			}
			if ss.headless {
				how = "DNS returns no addresses"
			}
			out = append(out, fmt.Sprintf("Service %s/%s has no ready endpoints (%d endpoint(s) not ready): %s",
				ss.Namespace, ss.Name, ss.Total-ss.Ready, how))
		}
	}
	for _, p := range s.Pods {
		if onlyNS != "" && p.Namespace != onlyNS {
			continue
		}
		if p.Status.Phase == corev1.PodPending {
			msg := ""
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
					msg = ": " + c.Message
				}
			}
			out = append(out, fmt.Sprintf("Pod %s/%s is Pending%s", p.Namespace, p.Name, msg))
		}
	}
	for _, np := range s.NetworkPolicies {
		if onlyNS != "" && np.Namespace != onlyNS {
			continue
		}
		if len(np.Spec.PodSelector.MatchLabels) == 0 && len(np.Spec.PodSelector.MatchExpressions) == 0 {
			for _, t := range np.Spec.PolicyTypes {
				if (t == "Ingress" && len(np.Spec.Ingress) == 0) || (t == "Egress" && len(np.Spec.Egress) == 0) {
					out = append(out, fmt.Sprintf("NetworkPolicy %s/%s denies all %s to every pod in %s unless another policy allows it",
						np.Namespace, np.Name, strings.ToLower(string(t)), np.Namespace))
				}
			}
		}
	}
	for _, ss := range r.Services {
		if ss.externalName {
			out = append(out, fmt.Sprintf("Service %s/%s is ExternalName %s: clients get a CNAME and leave the cluster, kube-proxy is not involved",
				ss.Namespace, ss.Name, ss.External[0]))
		}
		svc := s.Service(ss.Namespace, ss.Name)
		if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			var without []string
			with := map[string]bool{}
			for _, sl := range s.SlicesFor(svc.Namespace, svc.Name) {
				for _, ep := range sl.Endpoints {
					if ep.NodeName != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
						with[*ep.NodeName] = true
					}
				}
			}
			for _, n := range s.Nodes {
				if !with[n.Name] {
					without = append(without, n.Name)
				}
			}
			if len(without) > 0 {
				out = append(out, fmt.Sprintf("Service %s/%s has externalTrafficPolicy Local: NodePort/LoadBalancer traffic arriving at %s is dropped (no local endpoint)",
					ss.Namespace, ss.Name, strings.Join(without, ", ")))
			}
		}
	}
	if r.Profile.Overlay.Type != "none" && r.Profile.Overlay.Overhead > 0 {
		out = append(out, fmt.Sprintf("Cross-node pod traffic is encapsulated (%s, UDP %d, +%d bytes): pod MTU %d on a %d-byte underlay",
			r.Profile.Overlay.Type, r.Profile.Overlay.UDPPort, r.Profile.Overlay.Overhead, r.Profile.PodMTU, r.Profile.MTU))
	}
	var named []string
	for _, ss := range r.Services {
		svc := s.Service(ss.Namespace, ss.Name)
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.Type == intstr.String {
				named = append(named, fmt.Sprintf("%s/%s:%d→%s", ss.Namespace, ss.Name, p.Port, p.TargetPort.StrVal))
			}
		}
	}
	if len(named) > 0 {
		out = append(out, fmt.Sprintf("%d Service port(s) target named container ports, resolved per endpoint pod: %s",
			len(named), strings.Join(named, ", ")))
	}
	return out
}

func addrOrDash(a netip.Addr) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}
