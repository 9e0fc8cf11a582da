package netpol

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kpath/kpath/internal/oracle"
)

// TestClassesAgreeWithPairs checks the equivalence classes against the pair-by-pair engine on every
// netpol-analyzer input: for every ordered pod pair, Classes.Conns of their classes equals Engine.Conns (leaving out
// pairs the node-local exemption decides, which classes do not model).
func TestClassesAgreeWithPairs(t *testing.T) {
	root := oracle.Dir(t, "netpol-analyzer", "tests")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range entries {
		if !ent.IsDir() || intentionallyBroken[ent.Name()] {
			continue
		}
		t.Run("classes of "+ent.Name()+" give the same connections as pairs", func(t *testing.T) {
			s := loadSnap(t, filepath.Join(root, ent.Name()))
			if len(s.Pods) > 120 {
				t.Skipf("%d pods: kept out to bound the test's time (pairs are quadratic)", len(s.Pods))
			}
			for _, opts := range []Options{{}, {HostNetworkAsPods: true, IPBlockExternalOnly: true}} {
				e := NewWithOptions(s, opts)
				c := e.Classes()
				for _, a := range s.Pods {
					for _, b := range s.Pods {
						if a == b {
							continue
						}
						pa, pb := e.PodPeer(a), e.PodPeer(b)
						if (pa.Kind == PeerHost && sameNode(b, pa.Node)) || (pb.Kind == PeerHost && sameNode(a, pb.Node)) {
							continue
						}
						want := e.Conns(pa, pb)
						got := c.Conns(c.Of(a), c.Of(b))
						if !got.Equal(want) {
							t.Fatalf("%+v: %s/%s → %s/%s: classes %q, pairs %q", opts, a.Namespace, a.Name, b.Namespace, b.Name, got, want)
						}
					}
				}
			}
		})
	}
}

// Error-path inputs of netpol-analyzer that do not load cleanly.
var intentionallyBroken = map[string]bool{
	"bad_netpols": true, "dirty": true, "document_with_syntax_error": true, "malformed-pod-example-2": true,
	"malformed-pod-example-3": true, "malformed-pod-example-5": true, "malformed_pod_example": true,
	"onlineboutique_with_pods_severe_error": true,
}
