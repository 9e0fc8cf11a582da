package capture

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// podTemplates extracts every pod (template) from a multi-document manifest: Pods, workload templates,
// CronJob job templates and List items, in document order.
func podTemplates(t *testing.T, data string) []*corev1.Pod {
	t.Helper()
	var pods []*corev1.Pod
	var walk func(obj map[string]any)
	toPod := func(meta, spec any, ns string) {
		b, _ := json.Marshal(map[string]any{"metadata": meta, "spec": spec})
		p := &corev1.Pod{}
		if err := json.Unmarshal(b, p); err != nil {
			t.Fatalf("decoding pod template: %v", err)
		}
		if p.Namespace == "" {
			p.Namespace = ns
		}
		pods = append(pods, p)
	}
	walk = func(obj map[string]any) {
		kind, _ := obj["kind"].(string)
		md, _ := obj["metadata"].(map[string]any)
		ns, _ := md["namespace"].(string)
		spec, _ := obj["spec"].(map[string]any)
		switch {
		case kind == "Pod":
			toPod(obj["metadata"], obj["spec"], ns)
		case kind == "List":
			items, _ := obj["items"].([]any)
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					walk(m)
				}
			}
		case kind == "CronJob":
			jt, _ := spec["jobTemplate"].(map[string]any)
			js, _ := jt["spec"].(map[string]any)
			tpl, _ := js["template"].(map[string]any)
			toPod(tpl["metadata"], tpl["spec"], ns)
		case spec != nil && spec["template"] != nil:
			tpl, _ := spec["template"].(map[string]any)
			toPod(tpl["metadata"], tpl["spec"], ns)
		}
	}
	for _, doc := range strings.Split(data, "\n---") {
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatalf("decoding manifest: %v", err)
		}
		if obj != nil {
			walk(obj)
		}
	}
	return pods
}

// initArgsOf returns the istio-init / istio-validation args of each pod ("" entry: none).
func initArgsOf(pods []*corev1.Pod) [][]string {
	var out [][]string
	for _, p := range pods {
		var args []string
		for _, c := range p.Spec.InitContainers {
			if c.Name == "istio-init" || c.Name == "istio-validation" {
				args = c.Args
			}
		}
		out = append(out, args)
	}
	return out
}

// injectSetting is one upstream inject_test.go case: which input produced the golden and with which
// chart values / mesh config. Cases not listed use "<golden minus .injected>" with the defaults.
type injectSetting struct {
	in  string
	mod func(*IstioDefaults)
}

var (
	withCNI       = func(d *IstioDefaults) { d.CNIEnabled = true }
	withTProxy    = func(d *IstioDefaults) { d.InterceptionMode = InterceptTProxy }
	withStatus123 = func(d *IstioDefaults) { d.StatusPort = "123" }
	withOpenShift = func(d *IstioDefaults) { d.CNIEnabled, d.OpenShift = true, true }
)

var injectSettings = map[string]injectSetting{
	"hello.yaml.cni.injected":                          {"hello.yaml", withCNI},
	"hello.yaml.proxyImageName.injected":               {"hello.yaml", nil},
	"hello.yaml.proxyInitImageName.injected":           {"hello.yaml", nil},
	"hello-tproxy.yaml.injected":                       {"hello.yaml", withTProxy},
	"hello-always.yaml.injected":                       {"hello.yaml", nil},
	"hello-never.yaml.injected":                        {"hello.yaml", nil},
	"hello-fips-140-3.yaml.injected":                   {"hello.yaml", nil},
	"hello-image-secrets-in-values.yaml.injected":      {"hello.yaml", nil},
	"hello-multiple-image-secrets.yaml.injected":       {"hello-image-pull-secret.yaml", nil},
	"hello-template-in-values.yaml.injected":           {"hello.yaml", nil},
	"hello-mount-mtls-certs.yaml.injected":             {"hello.yaml", nil},
	"hello-cncf-networks.yaml.injected":                {"hello.yaml", withCNI},
	"hello-existing-cncf-networks.yaml.injected":       {"hello-existing-cncf-networks.yaml", withCNI},
	"hello-existing-cncf-networks-json.yaml.injected":  {"hello-existing-cncf-networks-json.yaml", withCNI},
	"hello.proxyHoldsApplication.yaml.injected":        {"hello.yaml", nil},
	"hello-probes.proxyHoldsApplication.yaml.injected": {"hello-probes.yaml", nil},
	"proxy-override-runas.yaml.cni.injected":           {"proxy-override-runas.yaml", withCNI},
	"proxy-override-runas.yaml.tproxy.injected":        {"proxy-override-runas.yaml", withTProxy},
	"proxy-override-args-native.yaml.injected":         {"proxy-override-args.yaml", nil},
	"status_params.yaml.injected":                      {"status_params.yaml", withStatus123},
	"kubevirtInterfaces.yaml.injected":                 {"kubevirtInterfaces.yaml", withStatus123},
	"reroute-virtual-interfaces.yaml.injected":         {"reroute-virtual-interfaces.yaml", withStatus123},
	"hello-openshift.yaml.injected":                    {"hello-openshift.yaml", withOpenShift},
	"hello-openshift-custom-injection.yaml.injected":   {"hello-openshift-custom-injection.yaml", withOpenShift},
	"hello-openshift-tproxy.yaml.injected":             {"hello-openshift-tproxy.yaml", withOpenShift},
	"traffic-params.yaml.injected": {"traffic-params.yaml", func(d *IstioDefaults) {
		d.IncludeIPRanges, d.ExcludeIPRanges = "127.0.0.1/24,10.96.0.1/24", "10.96.0.2/24,10.96.0.3/24"
		d.ExcludeInboundPorts, d.StatusPort = "4,5,6", "0"
	}},
	"traffic-params-empty-includes.yaml.injected": {"traffic-params-empty-includes.yaml", nil},
}

// injectSkip lists goldens that are not a pod-annotation → istio-init case, with the reason.
var injectSkip = map[string]string{}

// testNamespace is the namespace upstream's inject test registers (OpenShift uid/supplemental ranges).
var testNamespace = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test-ns", Annotations: map[string]string{
	AnnoOpenShiftUIDRange:                     "1000620000/10000",
	"openshift.io/sa.scc.supplemental-groups": "1000620000/10000",
}}}

func TestIstioInjectorInitArgs(t *testing.T) {
	dir := filepath.Join(oraclesDir(t), "istio-iptables", "pkg", "kube", "inject", "testdata", "inject")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var goldens []string
	inputs := map[string]bool{}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".injected") {
			goldens = append(goldens, e.Name())
		} else if strings.HasSuffix(e.Name(), ".yaml") && !strings.HasSuffix(e.Name(), ".iop.yaml") {
			inputs[e.Name()] = true
		}
	}
	sort.Strings(goldens)
	covered := map[string]bool{}
	for _, g := range goldens {
		s, ok := injectSettings[g]
		if !ok {
			s.in = strings.TrimSuffix(g, ".injected")
			if base, found := strings.CutSuffix(s.in, "-old-version.yaml"); found {
				// produced by upstream's compatibility test from the current input with an older template
				s.in = base + ".yaml"
			}
		}
		covered[s.in] = true
		t.Run(fmt.Sprintf("injector gives %s the istio-init args of %s", s.in, g), func(t *testing.T) {
			if why, skip := injectSkip[g]; skip {
				t.Skip(why)
			}
			if !inputs[s.in] {
				t.Fatalf("input %s for %s is not in the oracle", s.in, g)
			}
			d := DefaultIstioDefaults()
			if s.mod != nil {
				s.mod(&d)
			}
			inPods := podTemplates(t, readOracle(t, "istio-iptables", "pkg/kube/inject/testdata/inject", s.in))
			want := initArgsOf(podTemplates(t, readOracle(t, "istio-iptables", "pkg/kube/inject/testdata/inject", g)))
			if len(inPods) != len(want) {
				t.Fatalf("input has %d pod templates, golden %d", len(inPods), len(want))
			}
			for i, p := range inPods {
				args, ev, err := IstioInitArgs(p, testNamespace, d)
				if want[i] == nil {
					if !IsNotCaptured(err) {
						t.Errorf("pod %d: golden has no istio-init; got args %q err %v", i, args, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("pod %d: %v (evidence %v)", i, err, ev)
				}
				if strings.Join(args, "\x00") != strings.Join(want[i], "\x00") {
					t.Errorf("pod %d:\n want %q\n got  %q", i, want[i], args)
				}
			}
		})
	}
	// Inputs without a golden are the injector's expected-error cases.
	for in := range inputs {
		if covered[in] {
			continue
		}
		t.Run(fmt.Sprintf("injector refuses %s", in), func(t *testing.T) {
			if !strings.Contains(in, "-bad-") {
				t.Skipf("%s has no golden and is not an error case (used with a custom .iop values file)", in)
			}
			for _, p := range podTemplates(t, readOracle(t, "istio-iptables", "pkg/kube/inject/testdata/inject", in)) {
				_, _, err := IstioInitArgs(p, testNamespace, DefaultIstioDefaults())
				if err == nil || IsNotCaptured(err) {
					t.Errorf("want an annotation validation error, got %v", err)
				}
				if err != nil && !strings.Contains(err.Error(), "traffic.sidecar.istio.io/") {
					t.Errorf("error %q does not name the offending annotation", err)
				}
			}
		})
	}
}

func TestIstioFromPodResolvesTheInjectedPodsRules(t *testing.T) {
	pods := podTemplates(t, readOracle(t, "istio-iptables", "pkg/kube/inject/testdata/inject", "traffic-annotations.yaml"))
	cfg, ev, err := IstioFromPod(pods[0], nil, DefaultIstioDefaults())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.InboundPortsInclude != "1,2,3" || cfg.InboundPortsExclude != "15090,15021,4,5,6,15020" || cfg.OutboundPortsExclude != "7,8,9" ||
		cfg.OutboundIPRangesInclude != "127.0.0.1/24,10.96.0.1/24" || cfg.ProxyGID != "1337" {
		t.Errorf("unexpected config %+v", cfg)
	}
	found := false
	for _, e := range ev {
		found = found || (e.Key == AnnoIstioIncludeInboundPorts && e.Source == SourcePodAnnotation)
	}
	if !found {
		t.Errorf("evidence does not name the includeInboundPorts annotation: %v", ev)
	}
	_, _, err = IstioFromPod(&corev1.Pod{Spec: corev1.PodSpec{HostNetwork: true}}, nil, DefaultIstioDefaults())
	if !errors.Is(err, ErrNotCaptured) {
		t.Errorf("host-network pod: want ErrNotCaptured, got %v", err)
	}
}
