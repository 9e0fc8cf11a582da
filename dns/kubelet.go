package dns

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Kubelet limits on a pod's resolver configuration (k8s.io/kubernetes/pkg/apis/core/validation, ExpandedDNSConfig,
// GA and always on since Kubernetes 1.28).
const (
	MaxDNSNameservers        = 3    // validation.MaxDNSNameservers
	MaxDNSSearchPaths        = 32   // validation.MaxDNSSearchPathsExpanded
	MaxDNSSearchListChars    = 2048 // validation.MaxDNSSearchListCharsExpanded
	MaxDNSSearchPathLength   = 253  // utilvalidation.DNS1123SubdomainMaxLength: longer paths abort glibc 2.28
	DefaultClusterDomain     = "cluster.local"
	NodeLocalDNSCacheAddress = "169.254.20.10" // NodeLocal DNSCache's conventional link-local listen address
)

// DNSType is kubelet's podDNSType: where a pod's resolver settings come from.
type DNSType string

// The three pod DNS types.
const (
	DNSCluster DNSType = "cluster" // cluster DNS server + cluster search domains + ndots:5
	DNSHost    DNSType = "host"    // the node's resolv.conf (kubelet --resolv-conf)
	DNSNone    DNSType = "none"    // only what pod.spec.dnsConfig says
)

// PodDNSType mirrors kubelet's getPodDNSType. An empty policy is treated as ClusterFirst, the API server's default.
// ClusterFirst on a hostNetwork pod falls back to the host's resolv.conf; ClusterFirstWithHostNet does not.
func PodDNSType(policy corev1.DNSPolicy, hostNetwork bool) (DNSType, error) {
	switch policy {
	case corev1.DNSNone:
		return DNSNone, nil
	case corev1.DNSClusterFirstWithHostNet:
		return DNSCluster, nil
	case corev1.DNSClusterFirst, "":
		if !hostNetwork {
			return DNSCluster, nil
		}
		return DNSHost, nil
	case corev1.DNSDefault:
		return DNSHost, nil
	}
	return DNSCluster, fmt.Errorf("invalid dnsPolicy %q: want ClusterFirst, ClusterFirstWithHostNet, Default or None (kubelet falls back to ClusterFirst)", policy)
}

// Kubelet is the node-side DNS configuration kubelet applies to pods: --cluster-dns, --cluster-domain, --resolv-conf.
type Kubelet struct {
	// ClusterDNS is kubelet's clusterDNS list: usually the kube-dns Service ClusterIP, or 169.254.20.10 when
	// NodeLocal DNSCache runs with kube-proxy in IPVS mode. See ClusterDNSFor.
	ClusterDNS []string
	// ClusterDomain is --cluster-domain; empty means no cluster search domains are added.
	ClusterDomain string
	// HostResolvConf is the parsed --resolv-conf file of the node. Nil means --resolv-conf="" (kubelet then gives
	// host-DNS pods 127.0.0.1 / ::1 and search ".").
	HostResolvConf *ResolvConf
	// NodeIPs are used only when HostResolvConf is nil, to pick 127.0.0.1 or ::1.
	NodeIPs []string
}

// PodDNS is the result of Kubelet.PodResolvConf: the file plus how it was built.
type PodDNS struct {
	Type       DNSType    `json:"type"`
	ResolvConf ResolvConf `json:"resolvConf"`
	// Events are the warnings kubelet records on the pod (DNSConfigForming, MissingClusterDNS), verbatim.
	Events []string `json:"events,omitempty"`
	Why    string   `json:"why"`
}

// PodResolvConf computes the resolver configuration kubelet gives pod (kubelet GetPodDNS). An invalid dnsPolicy is
// reported in Events and treated as ClusterFirst, as kubelet does.
func (k Kubelet) PodResolvConf(pod *corev1.Pod) PodDNS {
	var out PodDNS
	if pod == nil {
		out.Why = "no pod: unknown"
		return out
	}
	base := ResolvConf{}
	if k.HostResolvConf != nil {
		base = cloneResolvConf(*k.HostResolvConf)
	}
	dnsType, err := PodDNSType(pod.Spec.DNSPolicy, pod.Spec.HostNetwork)
	if err != nil {
		out.Events = append(out.Events, "Failed to get DNS type for pod, falling back to DNSClusterFirst policy: "+err.Error())
	}
	var why []string
	switch dnsType {
	case DNSNone:
		base = ResolvConf{}
		why = append(why, "dnsPolicy None: starts empty, only dnsConfig applies")
	case DNSCluster:
		if len(k.ClusterDNS) != 0 {
			base.Nameservers = append([]string(nil), k.ClusterDNS...)
			base.Searches = k.clusterSearches(base.Searches, pod.Namespace)
			base.Options = []string{"ndots:5"}
			why = append(why, fmt.Sprintf("dnsPolicy %s: nameserver %s (kubelet --cluster-dns), cluster search domains + node search domains, ndots:5", policyName(pod), strings.Join(k.ClusterDNS, ",")))
			break
		}
		msg := fmt.Sprintf("kubelet does not have ClusterDNS IP configured and cannot create Pod using %q policy. Falling back to %q policy.", corev1.DNSClusterFirst, corev1.DNSDefault)
		out.Events = append(out.Events, msg)
		why = append(why, "no --cluster-dns on the kubelet: falls back to the node's resolv.conf")
		dnsType = DNSHost
		fallthrough
	case DNSHost:
		if dnsType == DNSHost && len(why) == 0 {
			if pod.Spec.HostNetwork && (pod.Spec.DNSPolicy == corev1.DNSClusterFirst || pod.Spec.DNSPolicy == "") {
				why = append(why, "dnsPolicy ClusterFirst on a hostNetwork pod falls back to Default: the node's resolv.conf (use ClusterFirstWithHostNet for cluster DNS)")
			} else {
				why = append(why, "dnsPolicy Default: the node's resolv.conf (kubelet --resolv-conf)")
			}
		}
		if k.HostResolvConf == nil {
			for _, ip := range k.NodeIPs {
				if strings.Contains(ip, ":") {
					base.Nameservers = append(base.Nameservers, "::1")
				} else {
					base.Nameservers = append(base.Nameservers, "127.0.0.1")
				}
			}
			if len(base.Nameservers) == 0 {
				base.Nameservers = []string{"127.0.0.1"}
			}
			base.Searches = []string{"."}
			why = append(why, "kubelet --resolv-conf is empty: localhost nameserver, search \".\"")
		}
	}
	out.Type = dnsType
	if dc := pod.Spec.DNSConfig; dc != nil {
		base.Nameservers = omitDuplicates(append(base.Nameservers, dc.Nameservers...))
		base.Searches = omitDuplicates(append(base.Searches, dc.Searches...))
		base.Options = MergeDNSOptions(base.Options, dc.Options)
		why = append(why, "merged with pod dnsConfig")
	}
	var ev []string
	base.Nameservers, ev = FitNameservers(base.Nameservers)
	out.Events = append(out.Events, ev...)
	base.Searches, ev = FitSearches(base.Searches)
	out.Events = append(out.Events, ev...)
	if base.Nameservers == nil {
		base.Nameservers = []string{}
	}
	if base.Searches == nil {
		base.Searches = []string{}
	}
	if base.Options == nil {
		base.Options = []string{}
	}
	out.ResolvConf = base
	out.Why = strings.Join(why, "; ")
	return out
}

func policyName(pod *corev1.Pod) string {
	if pod.Spec.DNSPolicy == "" {
		return string(corev1.DNSClusterFirst) + " (default)"
	}
	return string(pod.Spec.DNSPolicy)
}

func (k Kubelet) clusterSearches(hostSearch []string, namespace string) []string {
	if k.ClusterDomain == "" {
		return hostSearch
	}
	s := []string{namespace + ".svc." + k.ClusterDomain, "svc." + k.ClusterDomain, k.ClusterDomain}
	return omitDuplicates(append(s, hostSearch...))
}

func cloneResolvConf(rc ResolvConf) ResolvConf {
	return ResolvConf{
		Nameservers: append([]string(nil), rc.Nameservers...),
		Searches:    append([]string(nil), rc.Searches...),
		Options:     append([]string(nil), rc.Options...),
	}
}

func omitDuplicates(in []string) []string {
	seen := make(map[string]bool, len(in))
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// MergeDNSOptions merges pod dnsConfig options into existing "name[:value]" options; dnsConfig wins on duplicates
// (kubelet mergeDNSOptions). Kubelet's output order is Go map order (random); ours is first-appearance order.
func MergeDNSOptions(existing []string, add []corev1.PodDNSConfigOption) []string {
	s := make([]string, 0, len(add))
	for _, o := range add {
		if o.Value != nil && *o.Value != "" {
			s = append(s, o.Name+":"+*o.Value)
		} else {
			s = append(s, o.Name)
		}
	}
	// kubelet normalises existing options through the same map, so a duplicated existing option collapses too.
	return mergeOptionStrings(mergeOptionStrings(nil, existing), s)
}

// FitNameservers keeps the first MaxDNSNameservers servers and returns kubelet's event text when it cut any.
func FitNameservers(ns []string) ([]string, []string) {
	if len(ns) <= MaxDNSNameservers {
		return ns, nil
	}
	ns = ns[:MaxDNSNameservers]
	return ns, []string{"Nameserver limits were exceeded, some nameservers have been omitted, the applied nameserver line is: " + strings.Join(ns, " ")}
}

// FitSearches applies kubelet's formDNSSearchFitsLimits: at most 32 paths, drop paths longer than 253 characters,
// then cut paths from the end until the joined line is at most 2048 characters.
func FitSearches(search []string) ([]string, []string) {
	exceeded := false
	if len(search) > MaxDNSSearchPaths {
		search = search[:MaxDNSSearchPaths]
		exceeded = true
	}
	kept := make([]string, 0, len(search))
	for _, s := range search {
		if len(s) > MaxDNSSearchPathLength {
			exceeded = true
			continue
		}
		kept = append(kept, s)
	}
	search = kept
	if n := len(strings.Join(search, " ")); n > MaxDNSSearchListChars {
		cutNum, cutLen := 0, 0
		for i := len(search) - 1; i >= 0; i-- {
			cutLen += len(search[i]) + 1
			cutNum++
			if n-cutLen <= MaxDNSSearchListChars {
				break
			}
		}
		search = search[:len(search)-cutNum]
		exceeded = true
	}
	if !exceeded {
		return search, nil
	}
	return search, []string{"Search Line limits were exceeded, some search paths have been omitted, the applied search line is: " + strings.Join(search, " ")}
}

// ClusterDNSFor explains which nameserver address a kubelet --cluster-dns setting gives pods, given the kube-dns
// Service ClusterIP and whether NodeLocal DNSCache runs. With NodeLocal DNSCache and kube-proxy in iptables or
// nftables mode, kubelet keeps pointing at the kube-dns ClusterIP and node-local-dns answers it on the node (it
// binds the ClusterIP on its dummy interface and NOTRACKs port 53); in IPVS mode it cannot bind the VIP, so
// kubelet is configured with 169.254.20.10 instead.
func ClusterDNSFor(kubeDNSClusterIP string, nodeLocalDNS bool, proxyMode string) ([]string, string) {
	switch {
	case nodeLocalDNS && proxyMode == "ipvs":
		return []string{NodeLocalDNSCacheAddress}, "NodeLocal DNSCache with kube-proxy IPVS: kubelet --cluster-dns=" + NodeLocalDNSCacheAddress
	case nodeLocalDNS && kubeDNSClusterIP != "":
		return []string{kubeDNSClusterIP}, "NodeLocal DNSCache: pods keep nameserver " + kubeDNSClusterIP + ", answered on the node by node-local-dns, which forwards cluster names to CoreDNS"
	case kubeDNSClusterIP != "":
		return []string{kubeDNSClusterIP}, "kubelet --cluster-dns is the kube-dns Service ClusterIP " + kubeDNSClusterIP
	}
	return nil, "no kube-dns Service ClusterIP known: kubelet --cluster-dns unknown"
}
