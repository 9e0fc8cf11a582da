package netpol

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/internal/oracle"
)

// analyzerCase is one row of netpol-analyzer's cases.json.
type analyzerCase struct {
	Kind               string   `json:"kind"`
	ID                 string   `json:"id"`
	InputDir           string   `json:"input_dir"`
	OutputFormat       string   `json:"output_format"`
	FocusWorkloads     []string `json:"focus_workloads"`
	FocusWorkloadPeers []string `json:"focus_workload_peers"`
	FocusDirection     string   `json:"focus_direction"`
	FocusConn          string   `json:"focus_conn"`
	Exposure           bool     `json:"exposure_analysis"`
	MultipleNetworks   bool     `json:"multiple_networks"`
	ExpectedOutput     string   `json:"expected_output"`
}

func (c analyzerCase) plain() bool {
	return c.Kind == "connlist" && c.OutputFormat == "txt" && len(c.FocusWorkloads) == 0 &&
		len(c.FocusWorkloadPeers) == 0 && c.FocusDirection == "" && c.FocusConn == "" && !c.Exposure && !c.MultipleNetworks
}

// analyzerSkips are plain connlist cases kpath does not reproduce, one line each with the reason.
var analyzerSkips = map[string]string{}

func loadSnap(t testing.TB, paths ...string) *cluster.Snapshot {
	t.Helper()
	srcs, err := cluster.FileSources(paths, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := cluster.Load(srcs, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// workloadKey names a pod's workload as netpol-analyzer does: ns/name[Kind].
func workloadKey(s *cluster.Snapshot, p *corev1.Pod) string {
	w := s.WorkloadOf(p)
	if w.Kind == "" { // an ownerReference without a kind: netpol-analyzer calls it a Pod
		w.Kind = "Pod"
	}
	return fmt.Sprintf("%s/%s[%s]", w.Namespace, w.Name, w.Kind)
}

// aliases are the other names netpol-analyzer may give a pod's workload: its direct controller (a ReplicaSet whose
// Deployment is not in the input) or the pod itself.
func aliases(s *cluster.Snapshot, p *corev1.Pod) []string {
	out := []string{workloadKey(s, p), fmt.Sprintf("%s/%s[Pod]", p.Namespace, p.Name)}
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			out = append(out, fmt.Sprintf("%s/%s[%s]", p.Namespace, o.Name, o.Kind))
		}
	}
	return out
}

type ipRange struct{ lo, hi netip.Addr }

func parseRange(s string) (ipRange, bool) {
	s = strings.TrimSuffix(s, "[External]")
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return ipRange{}, false
	}
	lo, err1 := netip.ParseAddr(a)
	hi, err2 := netip.ParseAddr(b)
	if err1 != nil || err2 != nil {
		return ipRange{}, false
	}
	return ipRange{lo, hi}, true
}

type extExpect struct {
	r    ipRange
	conn ConnSet
}

func TestNetpolAnalyzerConnlist(t *testing.T) {
	root := oracle.Dir(t, "netpol-analyzer")
	data, err := os.ReadFile(filepath.Join(root, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []analyzerCase
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cases {
		if !c.plain() {
			continue
		}
		n++
		c := c
		t.Run("connlist of "+filepath.Base(c.InputDir)+" matches netpol-analyzer", func(t *testing.T) {
			if why, ok := analyzerSkips[filepath.Base(c.InputDir)]; ok {
				t.Skip(why)
			}
			want, err := os.ReadFile(filepath.Join(root, c.ExpectedOutput))
			if err != nil {
				t.Fatal(err)
			}
			checkConnlist(t, loadSnap(t, filepath.Join(root, c.InputDir)), string(want))
		})
	}
	if n != 75 {
		t.Errorf("expected 75 plain connlist txt cases, found %d", n)
	}
}

func checkConnlist(t *testing.T, s *cluster.Snapshot, want string) {
	// netpol-analyzer applies policy to hostNetwork pods like to any pod: the documentation's first option.
	// It also reads ipBlocks as cluster-external only, where the upstream e2e suite (k8s-e2e-netpol, the conformance
	// authority) matches pod IPs too; the Kubernetes docs say ipBlocks "should be cluster-external IPs" but define no
	// exclusion, so kpath's default follows e2e and this test asks for netpol-analyzer's reading.
	e := NewWithOptions(s, Options{HostNetworkAsPods: true, IPBlockExternalOnly: true})
	// Workloads: the first pod of each (pods of one workload share labels in these inputs).
	rep := map[string]*corev1.Pod{}
	alias := map[string]string{}
	var names []string
	for _, p := range s.Pods {
		k := workloadKey(s, p)
		if _, ok := rep[k]; !ok {
			rep[k] = p
			names = append(names, k)
		}
		for _, a := range aliases(s, p) {
			if _, ok := alias[a]; !ok {
				alias[a] = k
			}
		}
	}
	sort.Strings(names)
	pairs := map[[2]string]ConnSet{}
	extIn := map[string][]extExpect{}  // dst workload → ranges
	extOut := map[string][]extExpect{} // src workload → ranges
	v6 := false
	for _, line := range strings.Split(want, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.Contains(line, "{ingress-controller}") {
			continue
		}
		lhs, connStr, ok := strings.Cut(line, " : ")
		if !ok {
			t.Fatalf("cannot read expected line %q", line)
		}
		src, dst, ok := strings.Cut(lhs, " => ")
		if !ok {
			t.Fatalf("cannot read expected line %q", line)
		}
		conn, err := ParseConnSet(connStr)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(src, "[External]"):
			r, ok := parseRange(src)
			if !ok {
				t.Fatalf("bad range in %q", line)
			}
			v6 = v6 || r.lo.Is6()
			d, ok := alias[dst]
			if !ok {
				t.Errorf("expected workload %s not found in the snapshot", dst)
				continue
			}
			extIn[d] = append(extIn[d], extExpect{r, conn})
		case strings.HasSuffix(dst, "[External]"):
			r, ok := parseRange(dst)
			if !ok {
				t.Fatalf("bad range in %q", line)
			}
			v6 = v6 || r.lo.Is6()
			sw, ok := alias[src]
			if !ok {
				t.Errorf("expected workload %s not found in the snapshot", src)
				continue
			}
			extOut[sw] = append(extOut[sw], extExpect{r, conn})
		default:
			sw, ok1 := alias[src]
			dw, ok2 := alias[dst]
			if !ok1 || !ok2 {
				t.Errorf("expected workloads %s, %s: not found in the snapshot", src, dst)
				continue
			}
			pairs[[2]string{sw, dw}] = conn
		}
	}
	bad := 0
	for _, a := range names {
		for _, b := range names {
			if a == b {
				continue
			}
			got := e.Conns(e.PodPeer(rep[a]), e.PodPeer(rep[b]))
			w := pairs[[2]string{a, b}]
			if !got.Equal(w) && bad < 20 {
				bad++
				t.Errorf("%s => %s: got %q, want %q", a, b, got, w)
			}
		}
	}
	// External addresses: compare on every atom of the address space cut at our CIDR boundaries and theirs.
	cuts := e.CIDRBoundaries()
	for _, exps := range [](map[string][]extExpect){extIn, extOut} {
		for _, xs := range exps {
			for _, x := range xs {
				cuts = append(cuts, x.r.lo, x.r.hi.Next())
			}
		}
	}
	fams := []netip.Addr{netip.IPv4Unspecified()}
	if v6 {
		fams = append(fams, netip.IPv6Unspecified())
	}
	for _, w := range names {
		for _, dir := range []string{"in", "out"} {
			exps := extIn[w]
			if dir == "out" {
				exps = extOut[w]
			}
			for _, fam := range fams {
				for _, ip := range atomStarts(fam, cuts) {
					var want ConnSet
					for _, x := range exps {
						if x.r.lo.Compare(ip) <= 0 && ip.Compare(x.r.hi) <= 0 {
							want = x.conn
						}
					}
					ext := Peer{Kind: PeerExternal, IP: ip}
					var got ConnSet
					if dir == "in" {
						got = e.Conns(ext, e.PodPeer(rep[w]))
					} else {
						got = e.Conns(e.PodPeer(rep[w]), ext)
					}
					if !got.Equal(want) && bad < 40 {
						bad++
						if dir == "in" {
							t.Errorf("%s[External] => %s: got %q, want %q", ip, w, got, want)
						} else {
							t.Errorf("%s => %s[External]: got %q, want %q", w, ip, got, want)
						}
					}
				}
			}
		}
	}
}

// atomStarts returns the sorted distinct cut points within fam's address family, starting with the family's first
// address.
func atomStarts(fam netip.Addr, cuts []netip.Addr) []netip.Addr {
	out := []netip.Addr{fam}
	for _, c := range cuts {
		if c.IsValid() && c.Is4() == fam.Is4() {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	k := 0
	for i := range out {
		if i == 0 || out[i] != out[k-1] {
			out[k] = out[i]
			k++
		}
	}
	return out[:k]
}
