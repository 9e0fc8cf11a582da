package demo_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	sigyaml "sigs.k8s.io/yaml"

	"github.com/kpath/kpath/demo"
)

// doc is one decoded manifest with where it came from.
type doc struct {
	file  string
	index int // 0-based document index within the file, counting only non-empty documents
	obj   runtime.Object
}

func (d doc) String() string {
	m, _ := metaOf(d.obj)
	return d.file + "#" + itoa(d.index) + " " + d.obj.GetObjectKind().GroupVersionKind().Kind + " " + m.GetNamespace() + "/" + m.GetName()
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func metaOf(o runtime.Object) (metav1.Object, bool) {
	m, ok := o.(metav1.Object)
	return m, ok
}

func newScheme(t testing.TB) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme,
		discoveryv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			t.Fatalf("building scheme: %v", err)
		}
	}
	return s
}

// decodeAll decodes every document of every demo file with the universal deserializer in strict
// mode (unknown or duplicated fields are errors) and fails the test on the first problem.
func decodeAll(t *testing.T) []doc {
	t.Helper()
	codecs := serializer.NewCodecFactory(newScheme(t), serializer.EnableStrict)
	deser := codecs.UniversalDeserializer()
	var out []doc
	for _, f := range demo.Files() {
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(f.Data)))
		index := 0
		for {
			raw, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: splitting YAML documents: %v", f.Name, err)
			}
			j, err := sigyaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatalf("%s document %d: not YAML: %v", f.Name, index, err)
			}
			if s := strings.TrimSpace(string(j)); s == "null" || s == "" {
				continue // a comment-only document, e.g. the file header
			}
			obj, gvk, err := deser.Decode(raw, nil, nil)
			if err != nil {
				t.Fatalf("%s document %d: decoding with the k8s.io/api types: %v", f.Name, index, err)
			}
			if gvk == nil || gvk.Kind == "" {
				t.Fatalf("%s document %d: no kind", f.Name, index)
			}
			if m, ok := metaOf(obj); !ok || m.GetName() == "" {
				t.Fatalf("%s document %d (%s): no metadata.name", f.Name, index, gvk.Kind)
			}
			out = append(out, doc{file: f.Name, index: index, obj: obj})
			index++
		}
	}
	return out
}

func TestFilesAreSortedAndExplainThemselves(t *testing.T) {
	files := demo.Files()
	if len(files) < 4 {
		t.Fatalf("want at least 4 demo files, got %d", len(files))
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
		if !bytes.HasPrefix(f.Data, []byte("# "+f.Name+" — ")) {
			t.Errorf("%s: must open with a comment line \"# %s — <what it shows>\"", f.Name, f.Name)
		}
		if !bytes.Contains(f.Data, []byte("# Try:")) {
			t.Errorf("%s: header comment must suggest a trace to try (\"# Try:\")", f.Name)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("Files() not sorted by name: %v", names)
	}
	again := demo.Files()
	again[0].Data[0] = 'X'
	if demo.Files()[0].Data[0] == 'X' {
		t.Errorf("Files() returns shared bytes; callers could corrupt the embedded demo")
	}
}

func TestEveryDocumentDecodesWithTheKubernetesTypes(t *testing.T) {
	docs := decodeAll(t)
	kinds := map[string]int{}
	seen := map[string]string{}
	for _, d := range docs {
		kinds[d.obj.GetObjectKind().GroupVersionKind().Kind]++
		m, _ := metaOf(d.obj)
		key := d.obj.GetObjectKind().GroupVersionKind().Kind + " " + m.GetNamespace() + "/" + m.GetName()
		if prev, dup := seen[key]; dup {
			t.Errorf("%s is defined twice (%s and %s)", key, prev, d)
		}
		seen[key] = d.String()
	}
	t.Logf("decoded %d objects: %v", len(docs), kinds)
	for _, want := range []string{"Namespace", "Node", "Service", "Deployment", "StatefulSet", "DaemonSet", "ConfigMap", "NetworkPolicy", "Pod", "EndpointSlice", "ReplicaSet"} {
		if kinds[want] == 0 {
			t.Errorf("no %s in the demo", want)
		}
	}
}

func TestDecodingRejectsWhatTheTestMustCatch(t *testing.T) {
	codecs := serializer.NewCodecFactory(newScheme(t), serializer.EnableStrict)
	deser := codecs.UniversalDeserializer()
	for _, tc := range []struct{ name, yaml string }{
		{"an unknown kind is an error", "apiVersion: v1\nkind: Potato\nmetadata: {name: x}\n"},
		{"a kind outside the scheme's groups is an error", "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: x}\n"},
		{"a misspelled field is an error", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: 10.96.0.5}\n"},
		{"a wrongly typed field is an error", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := deser.Decode([]byte(tc.yaml), nil, nil); err == nil {
				t.Errorf("decoded without error:\n%s", tc.yaml)
			}
		})
	}
}

// cluster is the decoded demo, indexed for the consistency checks below.
type cluster struct {
	namespaces map[string]*corev1.Namespace
	nodes      []*corev1.Node
	services   []*corev1.Service
	pods       []*corev1.Pod
	slices     []*discoveryv1.EndpointSlice
	policies   []*networkingv1.NetworkPolicy
	configMaps map[string]*corev1.ConfigMap // ns/name
	workloads  []workload
	rsByName   map[string]*appsv1.ReplicaSet // ns/name
	depByName  map[string]*appsv1.Deployment // ns/name
}

// workload is anything with a pod template: what a loader synthesizes pods from.
type workload struct {
	kind, namespace, name string
	selector              *metav1.LabelSelector
	template              corev1.PodTemplateSpec
}

func load(t *testing.T) *cluster {
	c := &cluster{namespaces: map[string]*corev1.Namespace{}, configMaps: map[string]*corev1.ConfigMap{},
		rsByName: map[string]*appsv1.ReplicaSet{}, depByName: map[string]*appsv1.Deployment{}}
	for _, d := range decodeAll(t) {
		switch o := d.obj.(type) {
		case *corev1.Namespace:
			c.namespaces[o.Name] = o
		case *corev1.Node:
			c.nodes = append(c.nodes, o)
		case *corev1.Service:
			c.services = append(c.services, o)
		case *corev1.Pod:
			c.pods = append(c.pods, o)
		case *corev1.ConfigMap:
			c.configMaps[o.Namespace+"/"+o.Name] = o
		case *discoveryv1.EndpointSlice:
			c.slices = append(c.slices, o)
		case *networkingv1.NetworkPolicy:
			c.policies = append(c.policies, o)
		case *appsv1.Deployment:
			c.depByName[o.Namespace+"/"+o.Name] = o
			c.workloads = append(c.workloads, workload{"Deployment", o.Namespace, o.Name, o.Spec.Selector, o.Spec.Template})
		case *appsv1.StatefulSet:
			c.workloads = append(c.workloads, workload{"StatefulSet", o.Namespace, o.Name, o.Spec.Selector, o.Spec.Template})
		case *appsv1.DaemonSet:
			c.workloads = append(c.workloads, workload{"DaemonSet", o.Namespace, o.Name, o.Spec.Selector, o.Spec.Template})
		case *appsv1.ReplicaSet:
			c.rsByName[o.Namespace+"/"+o.Name] = o
		}
	}
	// bare pods (no owner) are their own "workload" for selector checks
	for _, p := range c.pods {
		if len(p.OwnerReferences) == 0 {
			c.workloads = append(c.workloads, workload{"Pod", p.Namespace, p.Name, nil, corev1.PodTemplateSpec{ObjectMeta: p.ObjectMeta, Spec: p.Spec}})
		}
	}
	return c
}

func (c *cluster) selected(ns string, sel labels.Selector) []workload {
	var out []workload
	for _, w := range c.workloads {
		if w.namespace == ns && sel.Matches(labels.Set(w.template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

func hasPort(tpl corev1.PodTemplateSpec, name string, proto corev1.Protocol) bool {
	for _, ctr := range tpl.Spec.Containers {
		for _, p := range ctr.Ports {
			if p.Name == name && (p.Protocol == proto || (p.Protocol == "" && proto == corev1.ProtocolTCP)) {
				return true
			}
		}
	}
	return false
}

func TestEveryReferenceInTheDemoResolves(t *testing.T) {
	c := load(t)
	t.Run("every object lives in a namespace the demo defines", func(t *testing.T) {
		for _, w := range c.workloads {
			if c.namespaces[w.namespace] == nil {
				t.Errorf("%s %s/%s: namespace %q is not defined", w.kind, w.namespace, w.name, w.namespace)
			}
		}
		for _, s := range c.services {
			if c.namespaces[s.Namespace] == nil {
				t.Errorf("Service %s/%s: namespace not defined", s.Namespace, s.Name)
			}
		}
		for _, ns := range c.namespaces {
			if ns.Labels["kubernetes.io/metadata.name"] != ns.Name {
				t.Errorf("Namespace %s lacks the kubernetes.io/metadata.name label the API server sets (namespaceSelectors rely on it)", ns.Name)
			}
		}
	})
	t.Run("every workload selector matches its own pod template", func(t *testing.T) {
		for _, w := range c.workloads {
			if w.selector == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(w.selector)
			if err != nil || !sel.Matches(labels.Set(w.template.Labels)) {
				t.Errorf("%s %s/%s: selector %v does not match template labels %v (err %v)", w.kind, w.namespace, w.name, w.selector, w.template.Labels, err)
			}
		}
	})
	t.Run("every Service with a selector selects pods that declare its named target ports", func(t *testing.T) {
		for _, s := range c.services {
			if len(s.Spec.Selector) == 0 {
				continue
			}
			ws := c.selected(s.Namespace, labels.SelectorFromSet(s.Spec.Selector))
			if len(ws) == 0 {
				t.Errorf("Service %s/%s selects no workload", s.Namespace, s.Name)
			}
			for _, p := range s.Spec.Ports {
				if p.TargetPort.Type != intstr.String {
					continue
				}
				for _, w := range ws {
					if !hasPort(w.template, p.TargetPort.StrVal, p.Protocol) {
						t.Errorf("Service %s/%s port %s: %s %s has no container port named %q", s.Namespace, s.Name, p.Name, w.kind, w.name, p.TargetPort.StrVal)
					}
				}
			}
		}
	})
	t.Run("every NetworkPolicy selects pods and its named ports exist on them", func(t *testing.T) {
		for _, np := range c.policies {
			sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
			if err != nil {
				t.Fatalf("NetworkPolicy %s/%s: %v", np.Namespace, np.Name, err)
			}
			ws := c.selected(np.Namespace, sel)
			if len(ws) == 0 {
				t.Errorf("NetworkPolicy %s/%s selects no pod", np.Namespace, np.Name)
			}
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					if p.Port == nil || p.Port.Type != intstr.String {
						continue
					}
					proto := corev1.ProtocolTCP
					if p.Protocol != nil {
						proto = *p.Protocol
					}
					for _, w := range ws {
						if !hasPort(w.template, p.Port.StrVal, proto) {
							t.Errorf("NetworkPolicy %s/%s: %s %s has no port named %q", np.Namespace, np.Name, w.kind, w.name, p.Port.StrVal)
						}
					}
				}
			}
		}
	})
}

func TestTheClusterHasNodesInTwoZonesWithDisjointPodCIDRs(t *testing.T) {
	c := load(t)
	clusterCIDR := netip.MustParsePrefix("10.244.0.0/16")
	zones := map[string]int{}
	var cidrs []netip.Prefix
	for _, n := range c.nodes {
		zones[n.Labels["topology.kubernetes.io/zone"]]++
		if n.Labels["kubernetes.io/hostname"] != n.Name {
			t.Errorf("node %s: kubernetes.io/hostname label is %q", n.Name, n.Labels["kubernetes.io/hostname"])
		}
		p, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || p.Bits() != 24 || !clusterCIDR.Contains(p.Addr()) {
			t.Errorf("node %s: podCIDR %q is not a /24 inside %s", n.Name, n.Spec.PodCIDR, clusterCIDR)
		}
		for _, q := range cidrs {
			if q.Overlaps(p) {
				t.Errorf("node %s: podCIDR %s overlaps %s", n.Name, p, q)
			}
		}
		cidrs = append(cidrs, p)
		if internalIP(n) == "" {
			t.Errorf("node %s has no InternalIP", n.Name)
		}
		if !nodeReady(n) {
			t.Errorf("node %s is not Ready", n.Name)
		}
	}
	if len(c.nodes) < 3 || len(zones) != 2 {
		t.Errorf("want ≥3 nodes in 2 zones, got %d nodes in zones %v", len(c.nodes), zones)
	}
}

func internalIP(n *corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func TestTheDataplaneIsDetectableFromKubeSystem(t *testing.T) {
	c := load(t)
	for _, tc := range []struct {
		name, configMap, key string
		want                 []string
	}{
		{"kube-proxy runs in nftables mode with the pod network as clusterCIDR", "kube-system/kube-proxy", "config.conf",
			[]string{"kind: KubeProxyConfiguration", "\nmode: nftables\n", "\nclusterCIDR: 10.244.0.0/16\n"}},
		{"flannel uses a VXLAN backend over 10.244.0.0/16", "kube-flannel/kube-flannel-cfg", "net-conf.json",
			[]string{`"Network": "10.244.0.0/16"`, `"Type": "vxlan"`}},
		{"CoreDNS serves cluster.local and forwards the rest to the node's resolv.conf", "kube-system/coredns", "Corefile",
			[]string{"kubernetes cluster.local in-addr.arpa ip6.arpa {", "pods insecure", "fallthrough in-addr.arpa ip6.arpa", "ttl 30", "forward . /etc/resolv.conf", "cache 30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cm := c.configMaps[tc.configMap]
			if cm == nil {
				t.Fatalf("ConfigMap %s missing", tc.configMap)
			}
			for _, w := range tc.want {
				if !strings.Contains(cm.Data[tc.key], w) {
					t.Errorf("%s[%s] does not contain %q", tc.configMap, tc.key, w)
				}
			}
		})
	}
	t.Run("the flannel net-conf.json is valid JSON", func(t *testing.T) {
		var nc struct {
			Network string
			Backend struct{ Type string }
		}
		if err := json.Unmarshal([]byte(c.configMaps["kube-flannel/kube-flannel-cfg"].Data["net-conf.json"]), &nc); err != nil {
			t.Fatal(err)
		}
		if nc.Network != "10.244.0.0/16" || nc.Backend.Type != "vxlan" {
			t.Errorf("net-conf.json = %+v", nc)
		}
	})
}

func TestTheShopTellsItsStory(t *testing.T) {
	c := load(t)
	svc := map[string]*corev1.Service{}
	for _, s := range c.services {
		svc[s.Namespace+"/"+s.Name] = s
	}
	nodes := map[string]*corev1.Node{}
	for _, n := range c.nodes {
		nodes[n.Name] = n
	}
	t.Run("kube-dns listens on 10.96.0.10 for 53/udp, 53/tcp and 9153/tcp", func(t *testing.T) {
		s := svc["kube-system/kube-dns"]
		if s == nil || s.Spec.ClusterIP != "10.96.0.10" {
			t.Fatalf("kube-dns Service missing or wrong VIP: %+v", s)
		}
		var got []string
		for _, p := range s.Spec.Ports {
			got = append(got, itoa(int(p.Port))+"/"+strings.ToLower(string(p.Protocol)))
		}
		if want := []string{"53/udp", "53/tcp", "9153/tcp"}; !slices.Equal(got, want) {
			t.Errorf("ports %v, want %v", got, want)
		}
	})
	t.Run("the frontend LoadBalancer keeps client IPs and has an external address", func(t *testing.T) {
		s := svc["shop/frontend"]
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal ||
			s.Spec.Ports[0].NodePort == 0 || len(s.Status.LoadBalancer.Ingress) == 0 || s.Status.LoadBalancer.Ingress[0].IP != "172.18.255.200" {
			t.Errorf("frontend Service = %+v", s.Spec)
		}
	})
	t.Run("cart uses a named target port", func(t *testing.T) {
		if tp := svc["shop/cart"].Spec.Ports[0].TargetPort; tp.Type != intstr.String || tp.StrVal != "http" {
			t.Errorf("cart targetPort = %v", tp)
		}
	})
	t.Run("catalog prefers close endpoints", func(t *testing.T) {
		if td := svc["shop/catalog"].Spec.TrafficDistribution; td == nil || *td != corev1.ServiceTrafficDistributionPreferClose {
			t.Errorf("catalog trafficDistribution = %v", td)
		}
	})
	t.Run("db is headless and backs a StatefulSet", func(t *testing.T) {
		if svc["shop/db"].Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("db clusterIP = %q", svc["shop/db"].Spec.ClusterIP)
		}
	})
	t.Run("payments-api is an ExternalName to the provider", func(t *testing.T) {
		if s := svc["shop/payments-api"]; s.Spec.Type != corev1.ServiceTypeExternalName || s.Spec.ExternalName != "api.stripe.example.com" {
			t.Errorf("payments-api = %+v", s.Spec)
		}
	})
	t.Run("the payments pods belong to the payments Deployment and none is ready", func(t *testing.T) {
		dep := c.depByName["shop/payments"]
		sel, _ := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		n := 0
		for _, p := range c.pods {
			if p.Labels["app"] != "payments" {
				continue
			}
			n++
			if !sel.Matches(labels.Set(p.Labels)) {
				t.Errorf("pod %s labels %v do not match the Deployment selector", p.Name, p.Labels)
			}
			owner := metav1.GetControllerOf(p)
			if owner == nil || owner.Kind != "ReplicaSet" {
				t.Fatalf("pod %s: controller %+v is not a ReplicaSet", p.Name, owner)
			}
			rs := c.rsByName[p.Namespace+"/"+owner.Name]
			if rs == nil || rs.UID != owner.UID {
				t.Fatalf("pod %s: controller %+v is not a ReplicaSet in the demo", p.Name, owner)
			}
			if rsOwner := metav1.GetControllerOf(rs); rsOwner == nil || rsOwner.UID != dep.UID {
				t.Errorf("ReplicaSet %s is not controlled by Deployment payments", rs.Name)
			}
			if !strings.HasPrefix(p.Name, rs.Name+"-") || p.Labels["pod-template-hash"] != rs.Labels["pod-template-hash"] {
				t.Errorf("pod %s: name/pod-template-hash inconsistent with ReplicaSet %s", p.Name, rs.Name)
			}
			node := nodes[p.Spec.NodeName]
			if node == nil {
				t.Fatalf("pod %s runs on unknown node %q", p.Name, p.Spec.NodeName)
			}
			if !netip.MustParsePrefix(node.Spec.PodCIDR).Contains(netip.MustParseAddr(p.Status.PodIP)) || p.Status.HostIP != internalIP(node) {
				t.Errorf("pod %s: podIP %s / hostIP %s do not belong to node %s", p.Name, p.Status.PodIP, p.Status.HostIP, node.Name)
			}
			for _, cond := range p.Status.Conditions {
				if cond.Type == corev1.PodReady && cond.Status == corev1.ConditionTrue {
					t.Errorf("pod %s is Ready; the story needs it crash-looping", p.Name)
				}
			}
		}
		if n != int(*dep.Spec.Replicas) {
			t.Errorf("%d payments pods for %d replicas", n, *dep.Spec.Replicas)
		}
	})
	t.Run("the payments EndpointSlice lists the pods but no ready endpoint", func(t *testing.T) {
		podIP := map[string]string{}
		for _, p := range c.pods {
			podIP[p.Name] = p.Status.PodIP
		}
		found := false
		for _, s := range c.slices {
			if s.Labels[discoveryv1.LabelServiceName] != "payments" {
				continue
			}
			found = true
			for _, e := range s.Endpoints {
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					t.Errorf("endpoint %v is ready", e.Addresses)
				}
				if e.TargetRef == nil || podIP[e.TargetRef.Name] != e.Addresses[0] {
					t.Errorf("endpoint %v does not point at its pod", e.Addresses)
				}
			}
		}
		if !found {
			t.Errorf("no EndpointSlice for shop/payments")
		}
	})
	t.Run("checkout to cart is the gap no policy allows", func(t *testing.T) {
		for _, np := range c.policies {
			if np.Namespace != "shop" || np.Spec.PodSelector.MatchLabels["app"] != "cart" {
				continue
			}
			for _, r := range np.Spec.Ingress {
				if len(r.From) == 0 {
					t.Errorf("%s allows cart ingress from anyone", np.Name)
				}
				for _, peer := range r.From {
					if peer.PodSelector != nil && peer.PodSelector.MatchLabels["app"] == "checkout" {
						t.Errorf("%s allows checkout → cart; the demo's story needs that dropped", np.Name)
					}
				}
			}
		}
	})
	t.Run("the debug pod is in the pod network", func(t *testing.T) {
		for _, p := range c.pods {
			if p.Namespace == "tools" && p.Name == "netshoot" {
				if p.Spec.HostNetwork {
					t.Errorf("netshoot uses hostNetwork")
				}
				return
			}
		}
		t.Errorf("tools/netshoot missing")
	})
}
