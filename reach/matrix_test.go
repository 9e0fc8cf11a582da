package reach

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/gen"
	"github.com/kpath/kpath/internal/oracle"
	"github.com/kpath/kpath/netpol"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func demoSnapshot(t testing.TB) *cluster.Snapshot {
	var srcs []cluster.Source
	for _, f := range demo.Files() {
		srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
	}
	s, err := cluster.Load(srcs, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkAgainstPairs verifies that the class-based matrix equals pair-by-pair evaluation of the workloads' first pods.
func checkAgainstPairs(t *testing.T, s *cluster.Snapshot, e *netpol.Engine) {
	t.Helper()
	m := Build(e, Options{})
	for i, a := range m.Workloads {
		for j, b := range m.Workloads {
			if i == j {
				continue
			}
			pa, pb := e.PodPeer(a.rep), e.PodPeer(b.rep)
			if (pa.Kind == netpol.PeerHost && pa.Node != nil && b.rep.Spec.NodeName == pa.Node.Name) ||
				(pb.Kind == netpol.PeerHost && pb.Node != nil && a.rep.Spec.NodeName == pb.Node.Name) {
				continue // node-local exemption: placement, not policy
			}
			want := e.Conns(pa, pb)
			if got := m.Conns(i, j); !got.Equal(want) {
				t.Fatalf("%s => %s: matrix %q, pairs %q", a.Label(), b.Label(), got, want)
			}
		}
	}
}

func TestMatrixMatchesPairEvaluation(t *testing.T) {
	t.Run("the demo cluster's matrix equals pair-by-pair evaluation", func(t *testing.T) {
		s := demoSnapshot(t)
		checkAgainstPairs(t, s, netpol.New(s))
	})
	t.Run("a generated cluster's matrix equals pair-by-pair evaluation", func(t *testing.T) {
		s := genSnapshot(t, gen.Options{Nodes: 6, Pods: 240, Services: 60, Policies: 80, Namespaces: 5, Seed: 7})
		checkAgainstPairs(t, s, netpol.New(s))
	})
	root := oracle.Dir(t, "netpol-analyzer", "tests")
	for _, dir := range []string{"onlineboutique", "anp_banp_blog_demo", "ipblockstest", "anp_test_4_with_priority_chang_pass_to_banp", "netpol_named_port_test"} {
		t.Run("the "+dir+" matrix equals pair-by-pair evaluation", func(t *testing.T) {
			srcs, err := cluster.FileSources([]string{filepath.Join(root, dir)}, true, nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := cluster.Load(srcs, cluster.Options{})
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstPairs(t, s, netpol.NewWithOptions(s, netpol.Options{HostNetworkAsPods: true, IPBlockExternalOnly: true}))
		})
	}
}

func TestRenderersGolden(t *testing.T) {
	s := demoSnapshot(t)
	m := Build(netpol.New(s), Options{External: true})
	for _, f := range Formats {
		t.Run("the demo matrix renders as "+f, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, m, f); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "demo."+f), buf.Bytes())
		})
	}
	t.Run("checkout to cart is explained with the blocking policy", func(t *testing.T) {
		x, err := Explain(netpol.New(s), "shop/checkout", "shop/cart", netpol.ConnSet{})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		WriteExplainText(&buf, x)
		golden(t, filepath.Join("testdata", "explain-checkout-cart.txt"), buf.Bytes())
		if x.Allowed() || !strings.Contains(buf.String(), "default-deny-ingress") {
			t.Errorf("checkout → cart should be denied by shop/default-deny-ingress:\n%s", buf.String())
		}
	})
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reach -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (run go test ./reach -update and review the diff):\n%s", path, got)
	}
}

func TestParsePorts(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"tcp/80,udp/53", "TCP 80,UDP 53"},
		{"8080", "TCP 8080"},
		{"tcp/8000-8100,sctp", "SCTP 1-65535,TCP 8000-8100"},
	} {
		got, err := ParsePorts(c.in)
		if err != nil || got.String() != c.want {
			t.Errorf("ParsePorts(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"icmp/1", "tcp/0", "tcp/x", "tcp/90-80"} {
		if _, err := ParsePorts(bad); err == nil {
			t.Errorf("ParsePorts(%q): want an error", bad)
		}
	}
}
