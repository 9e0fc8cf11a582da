package reach

import (
	"bytes"
	"testing"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/gen"
	"github.com/kpath/kpath/netpol"
)

// genSnapshot builds a generated cluster (package gen: N namespaces × deployments × replicas with gen's policy mix:
// default-deny, tier-to-tier, cross-namespace, DNS egress, ipBlock with except, endPort).
func genSnapshot(tb testing.TB, o gen.Options) *cluster.Snapshot {
	tb.Helper()
	var buf bytes.Buffer
	if err := gen.WriteJSON(&buf, o); err != nil {
		tb.Fatal(err)
	}
	s, err := cluster.Load([]cluster.Source{cluster.BytesSource("gen.json", buf.Bytes())}, cluster.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// benchSizes: "600" is netpol-analyzer's 600 workloads / 600 policies case (1,800 pods at 3 replicas);
// "100k" is 100,000 pods / 10,000 policies.
var benchSizes = []struct {
	name string
	o    gen.Options
}{
	{"600w-600p", gen.Options{Nodes: 20, Pods: 1800, Services: 600, Policies: 600, Namespaces: 20, Seed: 1}},
	{"100kpods-10kp", gen.Options{Nodes: 1000, Pods: 100_000, Services: 10_000, Policies: 10_000, Namespaces: 200, Seed: 1}},
}

// BenchmarkMatrix measures the full workload × workload matrix from a loaded snapshot: compiling policies
// (netpol.New), equivalence classes and every workload pair.
func BenchmarkMatrix(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			if testing.Short() && sz.o.Pods > 10_000 {
				b.Skip("large size skipped in -short")
			}
			s := genSnapshot(b, sz.o)
			var m *Matrix
			for b.Loop() {
				m = Build(netpol.New(s), Options{})
			}
			b.ReportMetric(float64(len(m.Workloads)), "workloads")
			b.ReportMetric(float64(m.Classes), "classes")
			b.ReportMetric(float64(m.ClassPair), "classpairs")
			b.ReportMetric(float64(len(m.Cells)), "allowedpairs")
		})
	}
}

// BenchmarkExplain measures one pair's explanation on the large cluster (engine built once, as the CLI and the
// trace engine do): name resolution, every allowed connection, and a full decision per destination port.
func BenchmarkExplain(b *testing.B) {
	sz := benchSizes[1]
	if testing.Short() {
		sz = benchSizes[0]
	}
	s := genSnapshot(b, sz.o)
	e := netpol.New(s)
	// a pair in one application namespace: the first two workloads of the namespace of the 1000th pod
	p := s.Pods[len(s.Pods)/2]
	pods := s.PodsIn(p.Namespace)
	src, dst := pods[0], pods[len(pods)-1]
	for b.Loop() {
		if _, err := Explain(e, src.Namespace+"/"+src.Name, dst.Namespace+"/"+dst.Name, netpol.ConnSet{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluate measures one Evaluate call (the trace engine's per-hop policy step) on the large cluster.
func BenchmarkEvaluate(b *testing.B) {
	sz := benchSizes[1]
	if testing.Short() {
		sz = benchSizes[0]
	}
	s := genSnapshot(b, sz.o)
	e := netpol.New(s)
	p := s.Pods[len(s.Pods)/2]
	pods := s.PodsIn(p.Namespace)
	a, c := netpol.PodPeer(s, pods[0]), netpol.PodPeer(s, pods[len(pods)-1])
	for b.Loop() {
		e.Evaluate(netpol.Conn{Src: a, Dst: c, Port: 8080, Protocol: "TCP"})
	}
}
