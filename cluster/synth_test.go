package cluster

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

const workloads = `apiVersion: v1
kind: Node
metadata: {name: n1, labels: {topology.kubernetes.io/zone: a}}
spec: {podCIDR: 10.244.1.0/24}
status: {addresses: [{type: InternalIP, address: 172.18.0.3}]}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {topology.kubernetes.io/zone: b, disk: ssd}}
spec: {podCIDR: 10.244.2.0/24}
status: {addresses: [{type: InternalIP, address: 172.18.0.4}]}
---
apiVersion: v1
kind: Node
metadata: {name: cp, labels: {topology.kubernetes.io/zone: a}}
spec:
  podCIDR: 10.244.0.0/24
  taints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]
status: {addresses: [{type: InternalIP, address: 172.18.0.2}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      nodeSelector: {disk: ssd}
      containers: [{name: c, image: x, ports: [{name: pg, containerPort: 5432}]}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      containers: [{name: c, image: x}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{port: 5432, targetPort: pg}]
---
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: shop}
spec:
  type: LoadBalancer
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 443, targetPort: 8080}]
`

func TestSynthesisFillsRuntimeStateLikeTheControllers(t *testing.T) {
	s := mustLoad(t, "w.yaml", workloads)
	if errs := diagsWith(s, SeverityError); len(errs) > 0 {
		t.Fatal(errs)
	}
	web := s.PodsMatching("shop", labels.SelectorFromSet(labels.Set{"app": "web"}))
	db := s.PodsMatching("shop", labels.SelectorFromSet(labels.Set{"app": "db"}))
	agents := s.PodsIn("kube-system")

	t.Run("a Deployment with 3 replicas gets 3 pods named like ReplicaSet pods, owned through a ReplicaSet", func(t *testing.T) {
		if len(web) != 3 {
			t.Fatalf("web pods = %d", len(web))
		}
		for _, p := range web {
			if !strings.HasPrefix(p.Name, "web-") || len(strings.Split(p.Name, "-")) != 3 {
				t.Errorf("pod name %q is not <deploy>-<rs hash>-<suffix>", p.Name)
			}
			if w := s.WorkloadOf(p); w != (Ref{"Deployment", "shop", "web"}) {
				t.Errorf("WorkloadOf(%s) = %v", p.Name, w)
			}
			if !IsSynthesized(p, "*") {
				t.Errorf("%s not marked synthesized", p.Name)
			}
		}
	})
	t.Run("replicas avoid the tainted control-plane node and spread over both workers", func(t *testing.T) {
		nodes := map[string]int{}
		for _, p := range web {
			nodes[p.Spec.NodeName]++
		}
		if nodes["cp"] != 0 || nodes["n1"] == 0 || nodes["n2"] == 0 {
			t.Errorf("placement = %v", nodes)
		}
	})
	t.Run("StatefulSet pods are name-ordinal with hostname and subdomain, placed by nodeSelector", func(t *testing.T) {
		if len(db) != 2 || db[0].Name != "db-0" || db[1].Name != "db-1" {
			t.Fatalf("db pods = %v", podNames(db))
		}
		for _, p := range db {
			if p.Spec.Hostname != p.Name || p.Spec.Subdomain != "db" || p.Spec.NodeName != "n2" {
				t.Errorf("%s: hostname %q subdomain %q node %q", p.Name, p.Spec.Hostname, p.Spec.Subdomain, p.Spec.NodeName)
			}
		}
	})
	t.Run("a DaemonSet runs on every node it tolerates, hostNetwork pods use the node IP", func(t *testing.T) {
		if len(agents) != 2 {
			t.Fatalf("agent pods = %v (control-plane taint is not tolerated)", podNames(agents))
		}
		for _, p := range agents {
			if p.Status.PodIP != NodeIP(s.Node(p.Spec.NodeName)).String() {
				t.Errorf("%s IP %s on node %s", p.Name, p.Status.PodIP, p.Spec.NodeName)
			}
		}
	})
	t.Run("pod IPs come from the node's pod CIDR, from .2 upward, without duplicates", func(t *testing.T) {
		seen := map[string]bool{}
		for _, p := range s.Pods {
			if p.Spec.HostNetwork {
				continue
			}
			ip := netip.MustParseAddr(p.Status.PodIP)
			cidr := netip.MustParsePrefix(s.Node(p.Spec.NodeName).Spec.PodCIDR)
			if !cidr.Contains(ip) || ip == cidr.Addr() || ip == cidr.Addr().Next() {
				t.Errorf("%s IP %s not a host address of %s", p.Name, ip, cidr)
			}
			if seen[p.Status.PodIP] {
				t.Errorf("duplicate IP %s", ip)
			}
			seen[p.Status.PodIP] = true
		}
	})
	t.Run("Services get ClusterIPs inside the service CIDR, NodePorts, a health check port and an LB IP", func(t *testing.T) {
		cidr := s.Profile.ServiceCIDRs[0]
		for _, name := range []string{"web", "lb"} {
			svc := s.Service("shop", name)
			if !cidr.Contains(netip.MustParseAddr(svc.Spec.ClusterIP)) || !IsSynthesized(svc, "spec.clusterIP") {
				t.Errorf("%s clusterIP %s", name, svc.Spec.ClusterIP)
			}
		}
		lb := s.Service("shop", "lb")
		if lb.Spec.Ports[0].NodePort < 30000 || lb.Spec.HealthCheckNodePort < 30000 || len(lb.Status.LoadBalancer.Ingress) != 1 {
			t.Errorf("lb = %+v %+v", lb.Spec, lb.Status)
		}
		if s.Service("shop", "db").Spec.ClusterIP != "None" {
			t.Errorf("headless service got a VIP")
		}
	})
	t.Run("EndpointSlices resolve named target ports per pod and carry zone, node and hostname", func(t *testing.T) {
		sl := s.SlicesFor("shop", "web")
		if len(sl) != 1 || len(sl[0].Endpoints) != 3 || *sl[0].Ports[0].Port != 8080 {
			t.Fatalf("web slices = %+v", sl)
		}
		for _, ep := range sl[0].Endpoints {
			if ep.Zone == nil || ep.NodeName == nil || !*ep.Conditions.Ready {
				t.Errorf("endpoint %+v", ep)
			}
		}
		dbs := s.SlicesFor("shop", "db")
		if len(dbs) != 1 || *dbs[0].Ports[0].Port != 5432 || dbs[0].Endpoints[0].Hostname == nil || *dbs[0].Endpoints[0].Hostname != "db-0" {
			t.Fatalf("db slices = %+v", dbs)
		}
	})
}

func podNames(ps []*corev1.Pod) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Name)
	}
	return out
}

func TestSynthesisIsDeterministicAndIndependentOfInputOrder(t *testing.T) {
	docs := strings.Split(workloads, "\n---\n")
	reversed := make([]string, len(docs))
	for i, d := range docs {
		reversed[len(docs)-1-i] = d
	}
	a := mustLoad(t, "w.yaml", workloads)
	b := mustLoad(t, "w.yaml", workloads)
	c := mustLoad(t, "w.yaml", strings.Join(reversed, "\n---\n"))
	dump := func(s *Snapshot) string {
		out, _ := json.Marshal([]any{s.Nodes, s.Pods, s.Services, s.EndpointSlices})
		return string(out)
	}
	if dump(a) != dump(b) {
		t.Errorf("two loads of the same input differ")
	}
	if dump(a) != dump(c) {
		t.Errorf("reordering the input changed the synthesized state")
	}
}

func TestGivenRuntimeStateIsNeverOverwritten(t *testing.T) {
	s := mustLoad(t, "in", `apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop, labels: {app: web}}
spec: {nodeName: worker-7, containers: [{name: c, image: x}]}
status:
  phase: Running
  podIP: 10.9.9.9
  conditions: [{type: Ready, status: "False"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec: {clusterIP: 10.100.0.5, selector: {app: web}, ports: [{port: 80, nodePort: 31000}], type: NodePort}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 5
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: x}]}
`)
	p := s.Pod("shop", "p")
	if p.Status.PodIP != "10.9.9.9" || p.Spec.NodeName != "worker-7" || PodReady(p) {
		t.Errorf("given pod state changed: %+v", p.Status)
	}
	if s.Node("worker-7") == nil || !IsSynthesized(s.Node("worker-7"), "*") {
		t.Errorf("node named by the pod should be synthesized")
	}
	if len(s.PodsIn("shop")) != 1 {
		t.Errorf("a Deployment whose pods are given must not get synthesized pods; got %v", podNames(s.PodsIn("shop")))
	}
	svc := s.Service("shop", "web")
	if svc.Spec.ClusterIP != "10.100.0.5" || svc.Spec.Ports[0].NodePort != 31000 || IsSynthesized(svc, "spec.clusterIP") {
		t.Errorf("given service state changed: %+v", svc.Spec)
	}
	sl := s.SlicesFor("shop", "web")
	if len(sl) != 1 || len(sl[0].Endpoints) != 1 || *sl[0].Endpoints[0].Conditions.Ready {
		t.Errorf("the not-ready pod should be a not-ready endpoint: %+v", sl)
	}
}

func TestEndpointsAreMirroredWhenNoSlicesExist(t *testing.T) {
	s := mustLoad(t, "in", `apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {ports: [{port: 5432}]}
---
apiVersion: v1
kind: Endpoints
metadata: {name: ext, namespace: shop}
subsets:
- addresses: [{ip: 192.0.2.10}]
  notReadyAddresses: [{ip: 192.0.2.11}]
  ports: [{port: 5432}]
`)
	sl := s.SlicesFor("shop", "ext")
	if len(sl) != 1 || len(sl[0].Endpoints) != 2 {
		t.Fatalf("slices = %+v", sl)
	}
	if !*sl[0].Endpoints[0].Conditions.Ready || *sl[0].Endpoints[1].Conditions.Ready {
		t.Errorf("ready conditions not mirrored: %+v", sl[0].Endpoints)
	}
}

func TestUnschedulablePodsStayPendingWithAReason(t *testing.T) {
	s := mustLoad(t, "in", `apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Pod
metadata: {name: gpu, namespace: ml}
spec:
  nodeSelector: {gpu: "true"}
  containers: [{name: c, image: x}]
`)
	p := s.Pod("ml", "gpu")
	if p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" {
		t.Fatalf("pod = %+v", p.Status)
	}
	if w := diagsWith(s, SeverityWarning); len(w) != 1 || !strings.Contains(w[0], "nodeSelector gpu=true") {
		t.Errorf("warnings = %v", w)
	}
}

func TestNoNodesGivesThreeSyntheticNodesInTwoZones(t *testing.T) {
	s := mustLoad(t, "in", pod("a"))
	zones := map[string]bool{}
	for _, n := range s.Nodes {
		zones[n.Labels[corev1.LabelTopologyZone]] = true
		if !IsSynthesized(n, "*") {
			t.Errorf("node %s not marked", n.Name)
		}
	}
	if len(s.Nodes) != 3 || len(zones) != 2 {
		t.Errorf("nodes = %d zones = %v", len(s.Nodes), zones)
	}
}

func TestNthSubnet(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bits int
		i    int
		want string
	}{
		{"10.244.0.0/16", 24, 0, "10.244.0.0/24"},
		{"10.244.0.0/16", 24, 255, "10.244.255.0/24"},
		{"10.0.0.0/8", 24, 256, "10.1.0.0/24"},
		{"fd00::/48", 64, 3, "fd00:0:0:3::/64"},
	} {
		t.Run(fmt.Sprintf("subnet %d of %s as /%d is %s", tc.i, tc.in, tc.bits, tc.want), func(t *testing.T) {
			got, ok := nthSubnet(netip.MustParsePrefix(tc.in), tc.bits, tc.i)
			if !ok || got.String() != tc.want {
				t.Errorf("got %v %v", got, ok)
			}
		})
	}
	if _, ok := nthSubnet(netip.MustParsePrefix("10.244.0.0/16"), 24, 256); ok {
		t.Errorf("subnet past the end should fail")
	}
}
