package live_test

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/internal/apiserver"
	"github.com/kpath/kpath/live"
)

const (
	benchNodes      = 50
	benchNamespaces = 10
	benchServices   = 1000
	benchPodsPerSvc = 10 // 10,000 pods
)

// populate creates nodes, 1,000 Services, their EndpointSlices and 10,000 Running pods with IPs, as a cluster's
// controllers and kubelets would have them.
func populate(b *testing.B, srv *apiserver.Server) {
	cfg := srv.Config(apiserver.Admin)
	cfg.QPS, cfg.Burst = 2000, 4000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	start := time.Now()
	for i := 0; i < benchNamespaces; i++ {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i)}}
		if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	for n := 0; n < benchNodes; n++ {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("node-%d", n)},
			Spec: corev1.NodeSpec{PodCIDR: fmt.Sprintf("10.244.%d.0/24", n), PodCIDRs: []string{fmt.Sprintf("10.244.%d.0/24", n)}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("172.18.0.%d", n+2)}},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range work {
				if err := createService(ctx, cs, s); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for s := 0; s < benchServices; s++ {
		work <- s
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	b.Logf("created %d services, %d pods in %s", benchServices, benchServices*benchPodsPerSvc, time.Since(start).Round(time.Second))
}

func createService(ctx context.Context, cs *kubernetes.Clientset, s int) error {
	ns := fmt.Sprintf("bench-%d", s%benchNamespaces)
	name := fmt.Sprintf("svc-%d", s)
	labels := map[string]string{"app": name}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return err
	}
	slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: name + "-abcde", Namespace: ns,
		Labels: map[string]string{discoveryv1.LabelServiceName: name}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080), Protocol: ptr.To(corev1.ProtocolTCP)}}}
	for p := 0; p < benchPodsPerSvc; p++ {
		i := s*benchPodsPerSvc + p
		node := i % benchNodes
		ip := fmt.Sprintf("10.244.%d.%d", node, 2+i/benchNodes%250)
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", name, p), Namespace: ns, Labels: labels},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("node-%d", node), Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}}
		got, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		got.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
			HostIP: fmt.Sprintf("172.18.0.%d", node+2), Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return err
		}
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr.To(pod.Spec.NodeName),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name}})
	}
	_, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{})
	return err
}

// peakHeap samples the live heap every 5 ms until stop is called and returns the highest value seen.
func peakHeap() func() uint64 {
	stop := make(chan struct{})
	done := make(chan uint64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak {
				peak = v
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(stop); return <-done }
}

// BenchmarkLiveSnapshot lists a real kube-apiserver holding 10,000 pods and 1,000 Services: "list" is listing only
// (raw pages, no decoding), "load" is listing streamed into the loader (the snapshot every live command builds).
func BenchmarkLiveSnapshot(b *testing.B) {
	srv := apiserver.Start(b, apiserver.Options{})
	populate(b, srv)
	cfg := srv.Config(apiserver.Admin)
	ctx := context.Background()
	b.Run("list", func(b *testing.B) {
		var items int
		for b.Loop() {
			rep, err := live.Start(ctx, cfg, "live:bench", live.Options{})
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range rep.Sources() {
				rc, _ := s.Open()
				buf := make([]byte, 1<<20)
				for {
					if _, err := rc.Read(buf); err != nil {
						break
					}
				}
				rc.Close()
			}
			if err := rep.Wait(); err != nil {
				b.Fatal(err)
			}
			items = rep.Items()
		}
		b.ReportMetric(float64(items), "objects")
	})
	b.Run("load", func(b *testing.B) {
		var peak uint64
		var snap *cluster.Snapshot
		for b.Loop() {
			runtime.GC()
			stop := peakHeap()
			var err error
			snap, _, err = live.Load(ctx, cfg, "live:bench", live.Options{}, cluster.Options{})
			if err != nil {
				b.Fatal(err)
			}
			if p := stop(); p > peak {
				peak = p
			}
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
		b.ReportMetric(float64(len(snap.Pods)), "pods")
		b.ReportMetric(float64(len(snap.Services)), "services")
	})
}
