package capture

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestLinkerdFromPodAnnotations(t *testing.T) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Annotations: map[string]string{
		AnnoLinkerdInject: "enabled", AnnoLinkerdSkipOutboundPorts: "3306"}}}
	cases := []struct {
		name string
		anno map[string]string
		want func(LinkerdConfig) bool
		why  string
	}{
		{"a namespace-injected pod gets the chart defaults plus the namespace's skip-outbound-ports", nil,
			func(c LinkerdConfig) bool {
				return c.ProxyInboundPort == 4143 && c.ProxyOutgoingPort == 4140 && c.ProxyUID == 2102 &&
					strings.Join(c.InboundPortsToIgnore, ",") == "4190,4191,4567,4568" && strings.Join(c.OutboundPortsToIgnore, ",") == "3306"
			}, "defaults"},
		{"the pod's skip-inbound-ports replace the chart's ignore list but keep the proxy's own ports",
			map[string]string{AnnoLinkerdSkipInboundPorts: "25,8000-8100", AnnoLinkerdProxyUID: "1234"},
			func(c LinkerdConfig) bool {
				return strings.Join(c.InboundPortsToIgnore, ",") == "4190,4191,25,8000-8100" && c.ProxyUID == 1234
			}, "pod annotations"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "shop", Annotations: tc.anno}}
			cfg, ev, err := FromPod(pod, ns, DefaultLinkerdDefaults())
			if err != nil {
				t.Fatal(err)
			}
			if !tc.want(cfg.(LinkerdConfig)) {
				t.Errorf("unexpected config %+v\nevidence %v", cfg, ev)
			}
			var sb strings.Builder
			if err := RenderIPTables(&sb, cfg); err != nil {
				t.Fatal(err)
			}
			if err := RenderNFTables(&sb, cfg); err == nil {
				t.Error("linkerd has no nft variant; want ErrNoNFTVariant")
			}
		})
	}
	t.Run("a pod with linkerd.io/inject=disabled is not captured", func(t *testing.T) {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Annotations: map[string]string{AnnoLinkerdInject: "disabled"}}}
		if _, _, err := LinkerdFromPod(pod, ns, DefaultLinkerdDefaults()); !IsNotCaptured(err) {
			t.Errorf("want ErrNotCaptured, got %v", err)
		}
	})
}
