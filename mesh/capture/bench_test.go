package capture

import (
	"io"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func benchPod() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n", Annotations: map[string]string{
		AnnoIstioIncludeInboundPorts: "1,2,3", AnnoIstioExcludeOutboundPorts: "7,8,9",
		AnnoIstioIncludeOutboundIPs: "10.0.0.0/8,fd00::/8", AnnoLinkerdInject: "enabled", AnnoLinkerdSkipInboundPorts: "25,587,3306-3310"}},
		Status: corev1.PodStatus{PodIPs: []corev1.PodIP{{IP: "10.1.2.3"}, {IP: "fd00::3"}}}}
}

func BenchmarkIstioFromPodAndRenderIPTables(b *testing.B) {
	pod, d := benchPod(), DefaultIstioDefaults()
	for b.Loop() {
		c, _, err := IstioFromPod(pod, nil, d)
		if err != nil {
			b.Fatal(err)
		}
		if err := RenderIstioIPTables(io.Discard, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIstioRenderNFTables(b *testing.B) {
	c, _, _ := IstioFromPod(benchPod(), nil, DefaultIstioDefaults())
	for b.Loop() {
		if err := RenderIstioNFTables(io.Discard, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLinkerdFromPodAndRender(b *testing.B) {
	pod, d := benchPod(), DefaultLinkerdDefaults()
	for b.Loop() {
		c, _, err := LinkerdFromPod(pod, nil, d)
		if err != nil {
			b.Fatal(err)
		}
		if err := RenderLinkerdIPTables(io.Discard, c); err != nil {
			b.Fatal(err)
		}
	}
}
