package gen_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kpath/kpath/gen"
)

// sizes used by the tests: small enough to run in well under a second each.
var testSizes = []struct {
	name string
	opts gen.Options
}{
	{"a tiny cluster", mustPreset("tiny")},
	{"the default cluster", gen.DefaultOptions()},
	{"a cluster with more than 256 nodes uses the large pod CIDR", gen.Options{Nodes: 300, Pods: 400, Services: 60, Policies: 40, Namespaces: 12, Seed: 7}},
	{"a cluster with no services, pods or policies", gen.Options{Nodes: 2, Namespaces: 1, Seed: 3}},
	{"a cluster with fewer pods than workloads", gen.Options{Nodes: 4, Pods: 5, Services: 40, Policies: 30, Namespaces: 3, Seed: 4}},
	{"a full cluster: every node at its application pod limit", gen.Options{Nodes: 3, Pods: 3 * gen.AppPodsPerNode, Services: 20, Policies: 10, Namespaces: 2, Seed: 5}},
}

func mustPreset(name string) gen.Options {
	o, ok := gen.PresetByName(name)
	if !ok {
		panic("no preset " + name)
	}
	return o
}

func writeJSON(t testing.TB, o gen.Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gen.WriteJSON(&buf, o); err != nil {
		t.Fatalf("WriteJSON(%v): %v", o, err)
	}
	return buf.Bytes()
}

func writeYAML(t testing.TB, o gen.Options) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gen.WriteYAML(&buf, o); err != nil {
		t.Fatalf("WriteYAML(%v): %v", o, err)
	}
	return buf.Bytes()
}

func TestTheSameSeedGivesByteIdenticalOutput(t *testing.T) {
	o := gen.Options{Nodes: 40, Pods: 1500, Services: 120, Policies: 60, Namespaces: 5, Seed: 42}
	for _, tc := range []struct {
		name  string
		write func(testing.TB, gen.Options) []byte
	}{
		{"JSON is byte-identical across runs and CPU counts", writeJSON},
		{"YAML is byte-identical across runs and CPU counts", writeYAML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tc.write(t, o)
			prev := runtime.GOMAXPROCS(1)
			b := tc.write(t, o)
			runtime.GOMAXPROCS(4)
			c := tc.write(t, o)
			runtime.GOMAXPROCS(prev)
			if !bytes.Equal(a, b) || !bytes.Equal(a, c) {
				t.Fatalf("output differs between runs (%d, %d, %d bytes)", len(a), len(b), len(c))
			}
			o2 := o
			o2.Seed++
			if bytes.Equal(a, tc.write(t, o2)) {
				t.Errorf("seed %d and %d gave the same output", o.Seed, o2.Seed)
			}
		})
	}
}

func newDecoder(t testing.TB) kruntime.Decoder {
	s := kruntime.NewScheme()
	for _, add := range []func(*kruntime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, discoveryv1.AddToScheme, networkingv1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}

// decodeJSONList decodes WriteJSON's List strictly, item by item, with the Kubernetes types.
func decodeJSONList(t testing.TB, data []byte) []kruntime.Object {
	t.Helper()
	var list struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
		Metadata   map[string]any    `json:"metadata"`
	}
	if err := json.Unmarshal(data, &list); err != nil {
		t.Fatalf("output is not one JSON document: %v", err)
	}
	if list.APIVersion != "v1" || list.Kind != "List" {
		t.Fatalf("top level is %s/%s, want v1/List", list.APIVersion, list.Kind)
	}
	dec := newDecoder(t)
	out := make([]kruntime.Object, 0, len(list.Items))
	for i, raw := range list.Items {
		obj, _, err := dec.Decode(raw, nil, nil)
		if err != nil {
			t.Fatalf("item %d does not decode with the Kubernetes types: %v\n%.400s", i, err, raw)
		}
		out = append(out, obj)
	}
	return out
}

func TestEveryObjectDecodesWithTheKubernetesTypes(t *testing.T) {
	for _, tc := range testSizes {
		t.Run(tc.name, func(t *testing.T) {
			fromJSON := decodeJSONList(t, writeJSON(t, tc.opts))
			counts, err := gen.Count(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if len(fromJSON) != counts.Total() {
				t.Errorf("JSON has %d items, Count says %d", len(fromJSON), counts.Total())
			}
			// YAML: every document decodes strictly, and there are as many as in JSON.
			dec := newDecoder(t)
			r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(writeYAML(t, tc.opts))))
			n := 0
			for {
				doc, err := r.Read()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if len(bytes.TrimSpace(doc)) == 0 {
					continue
				}
				obj, _, err := dec.Decode(doc, nil, nil)
				if err != nil {
					t.Fatalf("YAML document %d: %v", n, err)
				}
				if n < len(fromJSON) && !apiequality.Semantic.DeepEqual(obj, fromJSON[n]) {
					t.Fatalf("YAML document %d decodes to a different object than JSON item %d:\n%s", n, n, doc)
				}
				n++
			}
			if n != len(fromJSON) {
				t.Errorf("YAML has %d documents, JSON %d items", n, len(fromJSON))
			}
		})
	}
}

func TestGenerateAndStreamMatchWriteJSON(t *testing.T) {
	o := gen.DefaultOptions()
	objs, err := gen.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON := decodeJSONList(t, writeJSON(t, o))
	if len(objs) != len(fromJSON) {
		t.Fatalf("Generate gave %d objects, WriteJSON %d", len(objs), len(fromJSON))
	}
	i := 0
	err = gen.Stream(o, func(obj kruntime.Object) error {
		a, _ := json.Marshal(obj)
		b, _ := json.Marshal(objs[i])
		if !bytes.Equal(a, b) {
			t.Fatalf("object %d differs between Stream and Generate", i)
		}
		i++
		return nil
	})
	if err != nil || i != len(objs) {
		t.Fatalf("Stream: %d objects, err %v", i, err)
	}
	stop := errors.New("enough")
	n := 0
	if err := gen.Stream(o, func(kruntime.Object) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Errorf("Stream did not stop at the first emit error: n=%d err=%v", n, err)
	}
}

// index is a generated cluster, decoded and indexed for the consistency checks.
type index struct {
	namespaces map[string]*corev1.Namespace
	nodes      map[string]*corev1.Node
	pods       []*corev1.Pod
	services   []*corev1.Service
	slices     []*discoveryv1.EndpointSlice
	policies   []*networkingv1.NetworkPolicy
	uids       map[string]string // uid → kind/ns/name
	deploys    []*appsv1.Deployment
	sts        []*appsv1.StatefulSet
	configMaps map[string]*corev1.ConfigMap
}

func build(t *testing.T, o gen.Options) *index {
	t.Helper()
	objs, err := gen.Generate(o)
	if err != nil {
		t.Fatal(err)
	}
	ix := &index{namespaces: map[string]*corev1.Namespace{}, nodes: map[string]*corev1.Node{}, uids: map[string]string{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, obj := range objs {
		m := obj.(metav1.Object)
		key := obj.GetObjectKind().GroupVersionKind().Kind + " " + m.GetNamespace() + "/" + m.GetName()
		if prev, dup := ix.uids[string(m.GetUID())]; dup || m.GetUID() == "" {
			t.Fatalf("%s: UID %q missing or shared with %s", key, m.GetUID(), prev)
		}
		ix.uids[string(m.GetUID())] = key
		switch v := obj.(type) {
		case *corev1.Namespace:
			ix.namespaces[v.Name] = v
		case *corev1.Node:
			ix.nodes[v.Name] = v
		case *corev1.Pod:
			ix.pods = append(ix.pods, v)
		case *corev1.Service:
			ix.services = append(ix.services, v)
		case *discoveryv1.EndpointSlice:
			ix.slices = append(ix.slices, v)
		case *networkingv1.NetworkPolicy:
			ix.policies = append(ix.policies, v)
		case *appsv1.Deployment:
			ix.deploys = append(ix.deploys, v)
		case *appsv1.StatefulSet:
			ix.sts = append(ix.sts, v)
		case *corev1.ConfigMap:
			ix.configMaps[v.Namespace+"/"+v.Name] = v
		}
	}
	return ix
}

func isSystem(ns string) bool { return ns == "default" || strings.HasPrefix(ns, "kube-") }

func TestTheGeneratedClusterIsConsistent(t *testing.T) {
	for _, tc := range testSizes {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			ix := build(t, o)
			// Sizes are what was asked for.
			appPods, appSvcs, appNS := 0, 0, 0
			for _, p := range ix.pods {
				if !isSystem(p.Namespace) {
					appPods++
				}
			}
			for _, s := range ix.services {
				if !isSystem(s.Namespace) {
					appSvcs++
				}
			}
			for name := range ix.namespaces {
				if !isSystem(name) {
					appNS++
				}
			}
			if appPods != o.Pods || appSvcs != o.Services || len(ix.policies) != o.Policies || appNS != o.Namespaces || len(ix.nodes) != o.Nodes {
				t.Errorf("got pods=%d services=%d policies=%d namespaces=%d nodes=%d for %v", appPods, appSvcs, len(ix.policies), appNS, len(ix.nodes), o)
			}

			// Nodes: disjoint /24s inside the cluster CIDR the CNI and kube-proxy are configured with.
			clusterCIDR := netip.MustParsePrefix("10.244.0.0/16")
			if o.Nodes > 256 {
				clusterCIDR = netip.MustParsePrefix("10.128.0.0/9")
			}
			for _, want := range []struct{ cm, key, text string }{
				{"kube-system/kube-proxy", "config.conf", "clusterCIDR: " + clusterCIDR.String() + "\n"},
				{"kube-system/kube-proxy", "config.conf", "mode: nftables\n"},
				{"kube-flannel/kube-flannel-cfg", "net-conf.json", `"Network":"` + clusterCIDR.String() + `"`},
				{"kube-system/coredns", "Corefile", "kubernetes cluster.local in-addr.arpa ip6.arpa {"},
			} {
				if !strings.Contains(ix.configMaps[want.cm].Data[want.key], want.text) {
					t.Errorf("%s[%s] lacks %q", want.cm, want.key, want.text)
				}
			}
			cidrs := map[netip.Prefix]string{}
			nodeIP := map[string]string{}
			for _, n := range ix.nodes {
				p := netip.MustParsePrefix(n.Spec.PodCIDR)
				if p.Bits() != 24 || !clusterCIDR.Contains(p.Addr()) || cidrs[p] != "" {
					t.Errorf("node %s: podCIDR %s outside %s or reused (by %q)", n.Name, p, clusterCIDR, cidrs[p])
				}
				cidrs[p] = n.Name
				nodeIP[n.Name] = n.Status.Addresses[0].Address
				if n.Labels["topology.kubernetes.io/zone"] == "" {
					t.Errorf("node %s has no zone", n.Name)
				}
			}

			// Pods: IPs from their node's CIDR, unique; hostNetwork pods use the node IP; owners exist.
			podIPs := map[string]string{}
			perNode := map[string]int{}
			podByKey := map[string]*corev1.Pod{}
			for _, p := range ix.pods {
				podByKey[p.Namespace+"/"+p.Name] = p
				owner := metav1.GetControllerOf(p)
				if owner == nil || ix.uids[string(owner.UID)] != owner.Kind+" "+p.Namespace+"/"+owner.Name {
					t.Fatalf("pod %s/%s: controller %+v is not an object of the cluster", p.Namespace, p.Name, owner)
				}
				if p.Spec.NodeName == "" {
					if p.Status.Phase != corev1.PodPending || p.Status.PodIP != "" {
						t.Errorf("unscheduled pod %s/%s is %s with IP %q", p.Namespace, p.Name, p.Status.Phase, p.Status.PodIP)
					}
					continue
				}
				perNode[p.Spec.NodeName]++
				n := ix.nodes[p.Spec.NodeName]
				ip := netip.MustParseAddr(p.Status.PodIP)
				if p.Spec.HostNetwork {
					if p.Status.PodIP != nodeIP[n.Name] {
						t.Errorf("hostNetwork pod %s/%s has IP %s, node %s has %s", p.Namespace, p.Name, ip, n.Name, nodeIP[n.Name])
					}
					continue
				}
				if !netip.MustParsePrefix(n.Spec.PodCIDR).Contains(ip) || ip == netip.MustParsePrefix(n.Spec.PodCIDR).Addr() {
					t.Errorf("pod %s/%s IP %s not a host of node %s's %s", p.Namespace, p.Name, ip, n.Name, n.Spec.PodCIDR)
				}
				if other, dup := podIPs[p.Status.PodIP]; dup {
					t.Errorf("pods %s and %s/%s share IP %s", other, p.Namespace, p.Name, ip)
				}
				podIPs[p.Status.PodIP] = p.Namespace + "/" + p.Name
				if sel := p.Spec.NodeSelector["topology.kubernetes.io/zone"]; sel != "" && sel != n.Labels["topology.kubernetes.io/zone"] {
					t.Errorf("pod %s/%s pinned to %s runs in %s", p.Namespace, p.Name, sel, n.Labels["topology.kubernetes.io/zone"])
				}
				if _, ok := p.Labels["pod-template-hash"]; !ok && p.Labels["statefulset.kubernetes.io/pod-name"] == "" && p.Spec.NodeName != "" && !p.Spec.HostNetwork {
					t.Errorf("pod %s/%s has neither pod-template-hash nor StatefulSet labels", p.Namespace, p.Name)
				}
			}
			for name, n := range perNode {
				if n > gen.MaxPodsPerNode {
					t.Errorf("node %s runs %d pods, more than kubelet's %d", name, n, gen.MaxPodsPerNode)
				}
			}

			// Services: unique VIPs in 10.96.0.0/12, unique NodePorts in range; EndpointSlices match the pods.
			svcCIDR := netip.MustParsePrefix("10.96.0.0/12")
			vips, nodePorts := map[string]string{}, map[int32]string{}
			endpoints := map[string]int{}
			svcByKey := map[string]*corev1.Service{}
			for _, s := range ix.services {
				key := s.Namespace + "/" + s.Name
				svcByKey[key] = s
				if s.Spec.Type == corev1.ServiceTypeExternalName {
					continue
				}
				if s.Spec.ClusterIP != corev1.ClusterIPNone {
					if !svcCIDR.Contains(netip.MustParseAddr(s.Spec.ClusterIP)) || vips[s.Spec.ClusterIP] != "" {
						t.Errorf("Service %s: ClusterIP %s outside %s or reused by %s", key, s.Spec.ClusterIP, svcCIDR, vips[s.Spec.ClusterIP])
					}
					vips[s.Spec.ClusterIP] = key
				}
				for _, p := range s.Spec.Ports {
					if p.NodePort == 0 {
						continue
					}
					if p.NodePort < 30000 || p.NodePort > 32767 || nodePorts[p.NodePort] != "" {
						t.Errorf("Service %s: nodePort %d out of range or reused by %s", key, p.NodePort, nodePorts[p.NodePort])
					}
					nodePorts[p.NodePort] = key
				}
			}
			for _, sl := range ix.slices {
				svcName := sl.Labels[discoveryv1.LabelServiceName]
				s := svcByKey[sl.Namespace+"/"+svcName]
				if s == nil {
					t.Fatalf("EndpointSlice %s/%s for unknown Service %q", sl.Namespace, sl.Name, svcName)
				}
				if len(sl.Endpoints) > gen.MaxEndpointsPerSlice {
					t.Errorf("EndpointSlice %s/%s has %d endpoints (> %d)", sl.Namespace, sl.Name, len(sl.Endpoints), gen.MaxEndpointsPerSlice)
				}
				endpoints[sl.Namespace+"/"+svcName] += len(sl.Endpoints)
				sel := labels.SelectorFromSet(s.Spec.Selector)
				for _, ep := range sl.Endpoints {
					if ep.TargetRef == nil {
						continue // the API server
					}
					pod := podByKey[ep.TargetRef.Namespace+"/"+ep.TargetRef.Name]
					if pod == nil || pod.Status.PodIP != ep.Addresses[0] || string(pod.UID) != string(ep.TargetRef.UID) || *ep.NodeName != pod.Spec.NodeName {
						t.Fatalf("EndpointSlice %s/%s: endpoint %v does not match its pod", sl.Namespace, sl.Name, ep.Addresses)
					}
					if !sel.Matches(labels.Set(pod.Labels)) {
						t.Errorf("EndpointSlice %s/%s lists pod %s, which Service %s does not select", sl.Namespace, sl.Name, pod.Name, s.Name)
					}
					if ready := podReady(pod); *ep.Conditions.Ready != ready {
						t.Errorf("endpoint %s ready=%v, pod Ready=%v", pod.Name, *ep.Conditions.Ready, ready)
					}
				}
			}
			for _, s := range ix.services {
				if len(s.Spec.Selector) == 0 {
					continue
				}
				key := s.Namespace + "/" + s.Name
				want := 0
				for _, p := range ix.pods {
					if p.Namespace == s.Namespace && p.Spec.NodeName != "" && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(p.Labels)) {
						want++
					}
				}
				if endpoints[key] != want || want > gen.MaxReplicas {
					t.Errorf("Service %s: %d endpoints in slices, %d scheduled pods selected (max %d)", key, endpoints[key], want, gen.MaxReplicas)
				}
			}

			// NetworkPolicies select something that exists.
			for _, np := range ix.policies {
				if ix.namespaces[np.Namespace] == nil {
					t.Errorf("NetworkPolicy %s/%s in unknown namespace", np.Namespace, np.Name)
				}
				if _, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector); err != nil {
					t.Errorf("NetworkPolicy %s/%s: %v", np.Namespace, np.Name, err)
				}
			}
		})
	}
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestAMidSizedClusterHasTheRealisticMix(t *testing.T) {
	ix := build(t, gen.Options{Nodes: 60, Pods: 3000, Services: 400, Policies: 300, Namespaces: 10, Seed: 1})
	has := map[string]int{}
	for _, s := range ix.services {
		has["service "+string(s.Spec.Type)]++
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			has["headless service"]++
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.StrVal != "" {
				has["named target port"]++
			}
		}
		if s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			has["externalTrafficPolicy Local"]++
		}
		if s.Spec.TrafficDistribution != nil {
			has["trafficDistribution"]++
		}
		if s.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
			has["session affinity"]++
		}
	}
	sizes := map[string]int{}
	for _, sl := range ix.slices {
		sizes[sl.Namespace+"/"+sl.Labels[discoveryv1.LabelServiceName]] += len(sl.Endpoints)
		if len(sl.Endpoints) == gen.MaxEndpointsPerSlice {
			has["full EndpointSlice"]++
		}
	}
	big, small := 0, 0
	for _, n := range sizes {
		if n >= 50 {
			big++
		}
		if n <= 3 {
			small++
		}
	}
	if big > 0 {
		has["service with ≥50 endpoints"]++
	}
	if small > len(sizes)/4 {
		has["many services with ≤3 endpoints"]++
	}
	for _, p := range ix.pods {
		if p.Spec.NodeName != "" && !podReady(p) {
			has["not-ready pod"]++
		}
		if len(p.Spec.NodeSelector) > 0 && !strings.HasPrefix(p.Namespace, "kube-") {
			has["zone-pinned pod"]++
		}
	}
	for _, np := range ix.policies {
		if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 && len(np.Spec.Ingress)+len(np.Spec.Egress) == 0 {
			has["default deny"]++
		}
		for _, r := range np.Spec.Ingress {
			for _, peer := range r.From {
				if peer.NamespaceSelector != nil {
					has["namespaceSelector"]++
				}
				if peer.PodSelector != nil && peer.NamespaceSelector == nil {
					has["same-namespace podSelector"]++
				}
				if peer.IPBlock != nil && len(peer.IPBlock.Except) > 0 {
					has["ipBlock with except"]++
				}
			}
			for _, p := range r.Ports {
				if p.Port != nil && p.Port.StrVal != "" {
					has["named port in a policy"]++
				}
			}
		}
		for _, r := range np.Spec.Egress {
			for _, p := range r.Ports {
				if p.EndPort != nil {
					has["endPort"]++
				}
				if p.Port != nil && p.Port.IntVal == 53 {
					has["DNS egress"]++
				}
			}
		}
	}
	for _, want := range []string{
		"service ClusterIP", "service NodePort", "service LoadBalancer", "service ExternalName", "headless service",
		"named target port", "externalTrafficPolicy Local", "trafficDistribution", "session affinity", "full EndpointSlice",
		"service with ≥50 endpoints", "many services with ≤3 endpoints", "not-ready pod", "zone-pinned pod",
		"default deny", "namespaceSelector", "same-namespace podSelector", "ipBlock with except", "named port in a policy", "endPort", "DNS egress",
	} {
		t.Run("the mix includes "+want, func(t *testing.T) {
			if has[want] == 0 {
				t.Errorf("none found; mix: %v", has)
			}
		})
	}
}

func TestInvalidOptionsAreRejectedWithTheRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts gen.Options
		want string
	}{
		{"zero nodes are rejected", gen.Options{Nodes: 0, Namespaces: 1}, "Nodes must be between 1"},
		{"too many nodes are rejected", gen.Options{Nodes: gen.MaxNodes + 1, Namespaces: 1}, "Nodes must be between 1"},
		{"zero namespaces are rejected", gen.Options{Nodes: 1}, "Namespaces must be between 1"},
		{"negative pods are rejected", gen.Options{Nodes: 1, Namespaces: 1, Pods: -1}, "Pods must not be negative"},
		{"more pods than nodes can run are rejected", gen.Options{Nodes: 2, Namespaces: 1, Pods: 2*gen.AppPodsPerNode + 1}, "add nodes"},
		{"negative services are rejected", gen.Options{Nodes: 1, Namespaces: 1, Services: -5}, "Services must be between 0"},
		{"negative policies are rejected", gen.Options{Nodes: 1, Namespaces: 1, Policies: -1}, "Policies must be between 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if !errors.Is(err, gen.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want an ErrInvalidOptions mentioning %q", err, tc.want)
			}
			if err := gen.WriteJSON(io.Discard, tc.opts); !errors.Is(err, gen.ErrInvalidOptions) {
				t.Errorf("WriteJSON accepted invalid options: %v", err)
			}
		})
	}
	t.Run("every preset is valid", func(t *testing.T) {
		for _, p := range gen.Presets() {
			if err := p.Options.Validate(); err != nil {
				t.Errorf("preset %s: %v", p.Name, err)
			}
		}
	})
}

type failingWriter struct{ after int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.after -= len(p); f.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestWriteErrorsAreReturnedNotSwallowed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(io.Writer, gen.Options) error
	}{
		{"a failing writer fails WriteJSON", gen.WriteJSON},
		{"a failing writer fails WriteYAML", gen.WriteYAML},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.write(&failingWriter{after: 100}, gen.Options{Nodes: 50, Pods: 3000, Services: 100, Namespaces: 3, Seed: 1})
			if err == nil || !strings.Contains(err.Error(), "disk full") {
				t.Errorf("err = %v, want the writer's error", err)
			}
		})
	}
}
