package cluster

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// finish runs after every source is decoded: profile detection, synthesis, validation, indexes.
func (b *builder) finish() {
	s := b.snap
	b.detectProfile()
	b.synthesize()
	b.buildSlices()
	b.validatePolicies()

	s.Namespaces = sortedValues(b.namespaces)
	s.Nodes = sortedValues(b.nodes)
	s.Pods = b.podList()
	s.Services = sortedValues(b.services)
	s.EndpointSlices = sortedValues(b.slices)
	s.Endpoints = sortedValues(b.endpoints)
	s.NetworkPolicies = sortedValues(b.netpols)
	s.ConfigMaps = sortedValues(b.configMaps)
	s.ServiceAccounts = sortedValues(b.sas)
	s.Deployments = sortedValues(b.deployments)
	s.ReplicaSets = sortedValues(b.replicaSets)
	s.StatefulSets = sortedValues(b.statefulSets)
	s.DaemonSets = sortedValues(b.daemonSets)
	s.ReplicationControllers = sortedValues(b.rcs)
	s.Jobs = sortedValues(b.jobs)
	s.CronJobs = sortedValues(b.cronJobs)
	sortByKey(s.GatewayClasses)
	sortByKey(s.Gateways)
	sortByKey(s.HTTPRoutes)
	sortByKey(s.GRPCRoutes)
	sortByKey(s.ReferenceGrants)
	sortByKey(s.TCPRoutes)
	sortByKey(s.TLSRoutes)
	sortByKey(s.UDPRoutes)
	sortByKey(s.AdminNetworkPolicies)
	sortByKey(s.BaselineAdminNetworkPolicies)
	sortByKey(s.ClusterNetworkPolicies)
	sort.Slice(s.Custom, func(i, j int) bool {
		a, c := s.Custom[i], s.Custom[j]
		if a.GetKind() != c.GetKind() {
			return a.GetKind() < c.GetKind()
		}
		return key(a.GetNamespace(), a.GetName()) < key(c.GetNamespace(), c.GetName())
	})
	sort.SliceStable(s.Ignored, func(i, j int) bool {
		a, c := s.Ignored[i].Ref, s.Ignored[j].Ref
		if a.Kind != c.Kind {
			return a.Kind < c.Kind
		}
		return a.Key() < c.Key()
	})
	s.buildIndex()
	b.finishDNS()

	for r, from := range b.synthIndex {
		var m metav1.Object
		switch r.Kind {
		case "Namespace":
			m = b.namespaces[r.Name]
		case "Node":
			m = b.nodes[r.Name]
		case "Pod":
			m = b.pods[r.Key()]
		case "Service":
			m = b.services[r.Key()]
		case "EndpointSlice":
			m = b.slices[r.Key()]
		case "ReplicaSet":
			m = b.replicaSets[r.Key()]
		}
		if m == nil {
			continue
		}
		s.Synthesized = append(s.Synthesized, Synthesis{Ref: r, Fields: splitComma(m.GetAnnotations()[SynthesizedAnnotation]), From: from})
	}
	sort.Slice(s.Synthesized, func(i, j int) bool {
		a, c := s.Synthesized[i].Ref, s.Synthesized[j].Ref
		if a.Kind != c.Kind {
			return a.Kind < c.Kind
		}
		return a.Key() < c.Key()
	})
}

// finishDNS records the cluster DNS address kubelet would hand to pods, and NodeLocal DNSCache when it runs.
func (b *builder) finishDNS() {
	s := b.snap
	p := &s.Profile
	ev := func(setting, value, how string, obj Ref, detail string) {
		e := Evidence{Setting: setting, Value: value, How: how, Detail: detail}
		if obj.Kind != "" {
			e.Object = obj.String()
			if loc, ok := s.sources[obj]; ok {
				e.Source = loc.String()
			}
		}
		p.Evidence = append(p.Evidence, e)
	}
	for _, name := range []string{"kube-dns", "coredns"} {
		if svc := s.Service("kube-system", name); svc != nil && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != "None" {
			if ip, err := netip.ParseAddr(svc.Spec.ClusterIP); err == nil {
				p.ClusterDNS = ip
				how := FromDetected
				detail := "spec.clusterIP " + svc.Spec.ClusterIP
				if IsSynthesized(svc, "spec.clusterIP") {
					detail += " (synthesized)"
				}
				ev("clusterDNS", ip.String(), how, refOf("Service", svc), detail)
				break
			}
		}
	}
	if !p.ClusterDNS.IsValid() {
		if len(p.ServiceCIDRs) > 0 {
			p.ClusterDNS = addrAdd(p.ServiceCIDRs[0].Masked().Addr(), 10)
		}
		ev("clusterDNS", p.ClusterDNS.String(), FromDefault, Ref{}, "no kube-dns Service in the input; assumed the tenth address of the service CIDR (kubeadm's choice), with no CoreDNS behind it")
	}
	for _, ds := range s.DaemonSets {
		if ds.Name != "node-local-dns" && ds.Name != "nodelocaldns" {
			continue
		}
		ip := netip.MustParseAddr("169.254.20.10")
		detail := "NodeLocal DNSCache DaemonSet; default link-local address"
		for _, c := range ds.Spec.Template.Spec.Containers {
			for i, a := range c.Args {
				if (a == "-localip" || a == "--localip") && i+1 < len(c.Args) {
					if v, err := netip.ParseAddr(strings.Split(c.Args[i+1], ",")[0]); err == nil {
						ip, detail = v, fmt.Sprintf("container arg %s %s", a, c.Args[i+1])
					}
				}
			}
		}
		p.NodeLocalDNS = ip
		ev("nodeLocalDNS", ip.String(), FromDetected, refOf("DaemonSet", ds), detail)
	}
}
