package cluster

import (
	"strings"
	"testing"
)

func TestProfileDetectionNamesItsEvidence(t *testing.T) {
	kubeProxyCM := func(mode string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-proxy, namespace: kube-system}\ndata:\n  config.conf: |\n    apiVersion: kubeproxy.config.k8s.io/v1alpha1\n    kind: KubeProxyConfiguration\n    mode: \"" + mode + "\"\n    clusterCIDR: 10.42.0.0/16\n"
	}
	cases := []struct {
		name      string
		input     string
		overrides Overrides
		setting   string
		value     string
		how       string
		object    string
	}{
		{"kube-proxy ConfigMap mode nftables is detected", kubeProxyCM("nftables"), Overrides{}, "proxyMode", "nftables", FromDetected, "ConfigMap kube-system/kube-proxy"},
		{"kube-proxy ConfigMap with empty mode means iptables", kubeProxyCM(""), Overrides{}, "proxyMode", "iptables", FromDetected, "ConfigMap kube-system/kube-proxy"},
		{"kube-proxy clusterCIDR gives the pod CIDR", kubeProxyCM("ipvs"), Overrides{}, "podCIDR", "10.42.0.0/16", FromDetected, "ConfigMap kube-system/kube-proxy"},
		{"a kube-proxy DaemonSet flag gives the mode",
			"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-proxy, namespace: kube-system}\nspec:\n  selector: {matchLabels: {k: p}}\n  template:\n    metadata: {labels: {k: p}}\n    spec: {containers: [{name: kube-proxy, image: x, command: [kube-proxy, --proxy-mode=ipvs]}]}\n",
			Overrides{}, "proxyMode", "ipvs", FromDetected, "DaemonSet kube-system/kube-proxy"},
		{"Cilium kube-proxy replacement without kube-proxy is eBPF service handling",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cilium-config, namespace: kube-system}\ndata: {kube-proxy-replacement: \"true\", routing-mode: native, enable-wireguard: \"true\"}\n",
			Overrides{}, "proxyMode", "cilium-ebpf", FromDetected, "ConfigMap kube-system/cilium-config"},
		{"Cilium native routing is detected",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cilium-config, namespace: kube-system}\ndata: {routing-mode: native}\n",
			Overrides{}, "cni", "cilium-native", FromDetected, "ConfigMap kube-system/cilium-config"},
		{"Cilium WireGuard is detected as encryption",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cilium-config, namespace: kube-system}\ndata: {enable-wireguard: \"true\"}\n",
			Overrides{}, "encryption", "wireguard", FromDetected, "ConfigMap kube-system/cilium-config"},
		{"flannel net-conf.json host-gw backend is detected",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-flannel-cfg, namespace: kube-flannel}\ndata:\n  net-conf.json: '{\"Network\": \"10.50.0.0/16\", \"Backend\": {\"Type\": \"host-gw\"}}'\n",
			Overrides{}, "cni", "flannel-host-gw", FromDetected, "ConfigMap kube-flannel/kube-flannel-cfg"},
		{"calico-node with IPIP pools is detected",
			"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: calico-node, namespace: kube-system}\nspec:\n  selector: {matchLabels: {k: c}}\n  template:\n    metadata: {labels: {k: c}}\n    spec: {containers: [{name: calico-node, image: x, env: [{name: CALICO_IPV4POOL_IPIP, value: Always}]}]}\n",
			Overrides{}, "cni", "calico-ipip", FromDetected, "DaemonSet kube-system/calico-node"},
		{"the Corefile's kubernetes zone is the cluster domain",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: coredns, namespace: kube-system}\ndata:\n  Corefile: |\n    .:53 {\n        kubernetes corp.example in-addr.arpa {\n        }\n    }\n",
			Overrides{}, "clusterDomain", "corp.example", FromDetected, "ConfigMap kube-system/coredns"},
		{"a Linkerd-injected namespace is a Linkerd mesh",
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, annotations: {linkerd.io/inject: enabled}}\n",
			Overrides{}, "mesh", "linkerd", FromDetected, "Namespace shop"},
		{"an ambient namespace is Istio ambient",
			"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {istio.io/dataplane-mode: ambient}}\n",
			Overrides{}, "mesh", "istio-ambient", FromDetected, "Namespace shop"},
		{"flannel alone enforces no NetworkPolicy",
			"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: kube-flannel-cfg, namespace: kube-flannel}\ndata:\n  net-conf.json: '{\"Network\": \"10.50.0.0/16\", \"Backend\": {\"Type\": \"vxlan\"}}'\n",
			Overrides{}, "policyEnforcer", "none", FromDetected, ""},
		{"kube-network-policies beside flannel enforces NetworkPolicy",
			"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: kube-network-policies, namespace: kube-system}\nspec:\n  selector: {matchLabels: {k: p}}\n  template:\n    metadata: {labels: {k: p}}\n    spec: {containers: [{name: c, image: x}]}\n",
			Overrides{}, "policyEnforcer", "kube-network-policies", FromDetected, "DaemonSet kube-system/kube-network-policies"},
		{"with nothing to go on the defaults say so",
			pod("a"), Overrides{}, "proxyMode", "iptables", FromDefault, ""},
		{"a flag overrides what was detected",
			kubeProxyCM("nftables"), Overrides{ProxyMode: "iptables"}, "proxyMode", "iptables", FromOverride, ""},
		{"the service CIDR flag overrides the default",
			pod("a"), Overrides{ServiceCIDR: "10.0.0.0/16"}, "serviceCIDR", "10.0.0.0/16", FromOverride, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := load(t, Options{Overrides: tc.overrides}, "in.yaml", tc.input)
			if err != nil {
				t.Fatal(err)
			}
			e, ok := s.Profile.Setting(tc.setting)
			if !ok {
				t.Fatalf("no evidence for %s: %+v", tc.setting, s.Profile.Evidence)
			}
			if e.Value != tc.value || e.How != tc.how || e.Object != tc.object {
				t.Errorf("%s = %+v, want value %q how %q object %q", tc.setting, e, tc.value, tc.how, tc.object)
			}
			if e.Object != "" && !strings.HasPrefix(e.Source, "in.yaml:") {
				t.Errorf("evidence source %q does not name the file and line", e.Source)
			}
		})
	}
}

func TestOverridesAreValidated(t *testing.T) {
	for _, o := range []Overrides{{ProxyMode: "userspace"}, {CNI: "weave"}, {PodCIDR: "10.0.0.0"}, {Mesh: "consul"}} {
		if err := o.Validate(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
