package lab

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/gen"
)

// BenchmarkUpDown builds and removes a lab of 10 nodes, 100 pods and 1,000 Services (gen, seed 1) in nftables
// mode, without the agent. Targets: up ≤ 15 s, down ≤ 5 s (reported as up-ms / down-ms).
func BenchmarkUpDown(b *testing.B) {
	requireRoot(b)
	b.Setenv("KPATH_LAB_DIR", testStateDir)
	var buf bytes.Buffer
	if err := gen.WriteJSON(&buf, gen.Options{Nodes: 10, Pods: 100, Services: 1000, Policies: 0, Namespaces: 5, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	snap, err := cluster.Load([]cluster.Source{cluster.BytesSource("gen.json", buf.Bytes())}, cluster.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var up, down time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		claimTestLab(b, fmt.Sprintf("bn%d", i))
		st, err := Up(context.Background(), snap, Options{Name: fmt.Sprintf("bn%d", i), NoPolicy: true})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := Down(context.Background(), st); err != nil {
			b.Fatal(err)
		}
		up += t1.Sub(t0)
		down += time.Since(t1)
		if i == 0 {
			b.Logf("%d nodes, %d pods in netns, mode %s", len(st.Plan.Nodes), len(st.Plan.Pods), st.Plan.Mode)
		}
	}
	b.ReportMetric(float64(up.Milliseconds())/float64(b.N), "up-ms")
	b.ReportMetric(float64(down.Milliseconds())/float64(b.N), "down-ms")
}
