package kubeproxy

import (
	"io"
	"net/netip"
	"strconv"
	"testing"
)

// 10,000 Services / 100,000 endpoints, rendered in each mode (target: <= 1 s per render).
func benchmarkRender(b *testing.B, mode Mode) {
	svcs, slices := synthCluster(10000, 10)
	cfg := synthConfig(mode)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if mode == ModeNFTables {
			err = RenderNFTables(io.Discard, cfg, svcs, slices)
		} else {
			err = RenderIPTables(io.Discard, cfg, svcs, slices)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderNFTables10kServices100kEndpoints(b *testing.B) { benchmarkRender(b, ModeNFTables) }
func BenchmarkRenderIPTables10kServices100kEndpoints(b *testing.B) { benchmarkRender(b, ModeIPTables) }

func BenchmarkNewIndex10kServices100kEndpoints(b *testing.B) {
	svcs, slices := synthCluster(10000, 10)
	cfg := synthConfig(ModeNFTables)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := NewIndex(cfg, svcs, slices); err != nil {
			b.Fatal(err)
		}
	}
}

// Translate of one packet on the 10k-service index: map lookups only.
func BenchmarkTranslate(b *testing.B) {
	svcs, slices := synthCluster(10000, 10)
	for _, mode := range []Mode{ModeNFTables, ModeIPTables} {
		idx, err := NewIndex(synthConfig(mode), svcs, slices)
		if err != nil {
			b.Fatal(err)
		}
		f := Flow{Src: netip.MustParseAddr("10.9.9.9"), Dst: netip.MustParseAddr("172.30.39.12"), DstPort: 80}
		b.Run(string(mode), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if r := idx.Translate(f); r.Verdict != VerdictDNAT {
					b.Fatalf("unexpected verdict %s: %s", r.Verdict, r.Why)
				}
			}
		})
	}
}

// NewShared parses the objects once for every node (compare NewIndex, which also categorises).
func BenchmarkNewShared10kServices100kEndpoints(b *testing.B) {
	svcs, slices := synthCluster(10000, 10)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := NewShared(ModeNFTables, "", svcs, slices); err != nil {
			b.Fatal(err)
		}
	}
}

// A node view of the shared index: "cold" takes a fresh view per packet (node config + the
// port's categorisation for that node), "warm" reuses one.
func BenchmarkNodeViewTranslate(b *testing.B) {
	svcs, slices := synthCluster(10000, 10)
	sh, err := NewShared(ModeNFTables, "", svcs, slices)
	if err != nil {
		b.Fatal(err)
	}
	f := Flow{Src: netip.MustParseAddr("10.9.9.9"), Dst: netip.MustParseAddr("172.30.39.12"), DstPort: 80}
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			cfg := synthConfig(ModeNFTables)
			cfg.NodeName = "node-" + strconv.Itoa(i%20)
			idx, err := sh.Node(cfg)
			if err != nil {
				b.Fatal(err)
			}
			if r := idx.Translate(f); r.Verdict != VerdictDNAT {
				b.Fatalf("unexpected verdict %s: %s", r.Verdict, r.Why)
			}
		}
	})
	b.Run("warm", func(b *testing.B) {
		idx, _ := sh.Node(synthConfig(ModeNFTables))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if r := idx.Translate(f); r.Verdict != VerdictDNAT {
				b.Fatalf("unexpected verdict %s: %s", r.Verdict, r.Why)
			}
		}
	})
}
