package dns

import (
	"fmt"
	"os"
	"testing"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bigCluster has n Services in 100 namespaces (every tenth headless), each with one 3-endpoint slice.
func bigCluster(b *testing.B, n int) *Server {
	b.Helper()
	c := NewMapCluster()
	port := int32(8080)
	name, proto := "http", corev1.ProtocolTCP
	ready := true
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("ns-%d", i%100)
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Namespace: ns}}
		ip := fmt.Sprintf("10.96.%d.%d", i/250, i%250+1)
		if i%10 == 0 {
			ip = corev1.ClusterIPNone
		}
		svc.Spec.ClusterIP, svc.Spec.ClusterIPs = ip, []string{ip}
		svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
		c.Add(svc)
		s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svc.Name + "-x", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name}},
			AddressType: discoveryv1.AddressTypeIPv4, Ports: []discoveryv1.EndpointPort{{Name: &name, Port: &port, Protocol: &proto}}}
		for j := 0; j < 3; j++ {
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.%d.%d.%d", 100+j, i/250, i%250+1)}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
		}
		c.Add(s)
	}
	src, err := os.ReadFile("testdata/Corefile")
	if err != nil {
		b.Fatal(err)
	}
	cf, err := ParseCorefile(string(src))
	if err != nil {
		b.Fatal(err)
	}
	srv, err := NewServer(cf, c, ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	return srv
}

func BenchmarkResolve10kServices(b *testing.B) { benchResolve(b, 10000) }

// BenchmarkResolve100Services is the same walk against 100 Services: equal timings show the lookups are O(1).
func BenchmarkResolve100Services(b *testing.B) { benchResolve(b, 100) }

func benchResolve(b *testing.B, n int) {
	srv := bigCluster(b, n)
	rc := ResolvConf{Nameservers: []string{"10.96.0.10"}, Searches: []string{"ns-42.svc.cluster.local", "svc.cluster.local", "cluster.local"}, Options: []string{"ndots:5"}}
	cases := []struct{ name, query string }{
		{"short name answered on the first search domain", fmt.Sprintf("svc-%d", n-100+42)},
		{"service.namespace answered on the second search domain", fmt.Sprintf("svc-%d.ns-43", n-100+43)},
		{"headless service.namespace answered with three endpoints", fmt.Sprintf("svc-%d.ns-40", n-100+40)},
		{"missing name walks all three search domains then the bare name", "no-such-svc"},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				r := Resolve(rc, Glibc, tc.query, FamilyUnspec, srv.Answer)
				if r.QueriesSent == 0 || (r.Result != "answered" && tc.query != "no-such-svc") {
					b.Fatalf("%s: %s", tc.query, r.Why)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

func BenchmarkAnswer10kServices(b *testing.B) {
	srv := bigCluster(b, 10000)
	q := miekg.Question{Name: "svc-4242.ns-42.svc.cluster.local.", Qtype: miekg.TypeA, Qclass: miekg.ClassINET}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		if a := srv.Answer(q); a.Rcode != "NOERROR" {
			b.Fatal(a.Why)
		}
	}
	reportCPU(b, cpu)
}
