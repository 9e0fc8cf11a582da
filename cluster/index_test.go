package cluster

import (
	"fmt"
	"math/rand"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// TestSelectorIndexAgreesWithBruteForce checks the inverted label index against matching every pod, over random
// labels and random selectors with every operator.
func TestSelectorIndexAgreesWithBruteForce(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	keys := []string{"app", "tier", "env", "team"}
	vals := []string{"a", "b", "c"}
	var b strings.Builder
	for i := 0; i < 300; i++ {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p%d\n  namespace: ns%d\n  labels:\n", i, i%3)
		for _, k := range keys {
			if r.Intn(3) > 0 {
				fmt.Fprintf(&b, "    %s: %s\n", k, vals[r.Intn(len(vals))])
			}
		}
		b.WriteString("spec: {containers: [{name: c, image: x}]}\n")
	}
	s := mustLoad(t, "pods.yaml", b.String())
	ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
	for i := 0; i < 200; i++ {
		ls := &metav1.LabelSelector{}
		for j := r.Intn(3); j > 0; j-- {
			if r.Intn(2) == 0 {
				if ls.MatchLabels == nil {
					ls.MatchLabels = map[string]string{}
				}
				ls.MatchLabels[keys[r.Intn(len(keys))]] = vals[r.Intn(len(vals))]
			} else {
				op := ops[r.Intn(len(ops))]
				e := metav1.LabelSelectorRequirement{Key: keys[r.Intn(len(keys))], Operator: op}
				if op == metav1.LabelSelectorOpIn || op == metav1.LabelSelectorOpNotIn {
					e.Values = []string{vals[r.Intn(len(vals))], vals[r.Intn(len(vals))]}
				}
				ls.MatchExpressions = append(ls.MatchExpressions, e)
			}
		}
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil {
			t.Fatal(err)
		}
		for _, ns := range []string{"", "ns1"} {
			var want []string
			for _, p := range s.Pods {
				if (ns == "" || p.Namespace == ns) && sel.Matches(labels.Set(p.Labels)) {
					want = append(want, p.Namespace+"/"+p.Name)
				}
			}
			var got []string
			for _, p := range s.PodsMatching(ns, sel) {
				got = append(got, p.Namespace+"/"+p.Name)
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("selector %s in %q: index gave %d pods, brute force %d", sel, ns, len(got), len(want))
			}
		}
	}
}

func TestAddressIndexes(t *testing.T) {
	s := mustLoad(t, "w.yaml", workloads)
	web := s.Service("shop", "web")
	vip := netip.MustParseAddr(web.Spec.ClusterIP)
	cases := []struct {
		name  string
		check func() bool
	}{
		{"a ClusterIP, port and protocol find the Service port", func() bool {
			sp := s.ServicePortsAt(vip, 80, corev1.ProtocolTCP)
			return len(sp) == 1 && sp[0].Service == web && sp[0].Via == OwnerClusterIP
		}},
		{"the wrong protocol finds nothing", func() bool { return len(s.ServicePortsAt(vip, 80, corev1.ProtocolUDP)) == 0 }},
		{"a LoadBalancer ingress IP finds its Service", func() bool {
			lb := s.Service("shop", "lb")
			sp := s.ServicePortsAt(netip.MustParseAddr(lb.Status.LoadBalancer.Ingress[0].IP), 443, corev1.ProtocolTCP)
			return len(sp) == 1 && sp[0].Via == OwnerLoadBalancerIP
		}},
		{"a NodePort finds its Service", func() bool {
			lb := s.Service("shop", "lb")
			sp, ok := s.ServiceByNodePort(lb.Spec.Ports[0].NodePort, corev1.ProtocolTCP)
			return ok && sp.Service == lb
		}},
		{"a pod IP finds the pod", func() bool {
			p := s.Pod("shop", "db-0")
			got := s.PodsByIP(netip.MustParseAddr(p.Status.PodIP))
			return len(got) == 1 && got[0] == p
		}},
		{"a node IP finds the node and its hostNetwork pods", func() bool {
			ip := netip.MustParseAddr("172.18.0.3")
			return s.NodeByIP(ip).Name == "n1" && len(s.PodsByIP(ip)) == 1
		}},
		{"a ClusterIP finds its Service for reverse lookups", func() bool { return s.ServiceByIP(vip) == web }},
		{"an unknown address has no owner", func() bool { return len(s.IPOwners(netip.MustParseAddr("192.0.2.1"))) == 0 }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.check() {
				t.Error("failed")
			}
		})
	}
}
