package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/trace"
)

// The proof suite in --real mode: the demo lab is programmed by the real components (kube-apiserver + etcd in the
// control-plane namespace, the EndpointSlice controller, kube-proxy in every node, CoreDNS in the kube-dns pods),
// the same questions as the kpath-rules suite are performed, and on top: the rules real kube-proxy programmed on
// every node versus `kpath rules`, real CoreDNS's answers versus the model's over a census of names, and the real
// controller's EndpointSlices versus the snapshot's.
//
// Every disagreement is either fixed or listed below with its reason (one line each).

// realSkips are differences the real components show that are bugs or simplifications in packages the lab does not
// own (reported, not fixed here), keyed by "<mode>|<what>" (rules: "<mode>|rules|+ line" for a line only real
// kube-proxy programmed, "- line" for one only `kpath rules` renders); a key ending in "*" matches a prefix. Each is
// logged with both sides.
var realSkips = map[string]string{
	// (Fixed in kubeproxy.ConfigFor after the lab found them: nftables mode's --nodeport-addresses "primary" default,
	// and iptables mode's MASQUERADE --random-fully.)
	// Lab bug, open: for the multi-send UDP DNS question the traced (first) packet and the backend the lab attributes
	// the answer to can come from different sends when real CoreDNS answers, so hops/outer header are compared
	// against another branch's prediction. The verdict and the backend set are still compared.
	"nftables|hops|tools/netshoot kube-dns.kube-system:53":                                           udpAttribution,
	"iptables|hops|tools/netshoot kube-dns.kube-system:53":                                           udpAttribution,
	"nftables|overlay outer header (capture on the underlay)|tools/netshoot kube-dns.kube-system:53": udpAttribution,
	"iptables|overlay outer header (capture on the underlay)|tools/netshoot kube-dns.kube-system:53": udpAttribution,
	// kube-proxy creates empty KUBE-PROXY-CANARY chains (mangle, nat, filter) to notice a flush; the renderer does
	// not. Never jumped to: no packet is affected.
	"iptables|rules|+ filter: :KUBE-PROXY-CANARY -": canary,
	"iptables|rules|+ nat: :KUBE-PROXY-CANARY -":    canary,
	"iptables|rules|+ mangle: :KUBE-PROXY-CANARY -": canary,
	"iptables|rules|+ mangle: :*":                   canary + " (the mangle table exists only because of it)",
}

const (
	canary         = "kube-proxy's KUBE-PROXY-CANARY chains are not rendered by kubeproxy (empty, never jumped to)"
	udpAttribution = "lab: with real CoreDNS the multi-send UDP question's traced packet and attributed backend can belong to different sends (open lab bug)"
)

func realSkip(mode kubeproxy.Mode, what string) (string, bool) {
	for _, k := range []string{string(mode) + "|" + what, "*|" + what} {
		if why, ok := realSkips[k]; ok {
			return why, true
		}
	}
	for k, why := range realSkips {
		if p, ok := strings.CutSuffix(k, "*"); ok && (strings.HasPrefix(string(mode)+"|"+what, p) || strings.HasPrefix("*|"+what, p)) {
			return why, true
		}
	}
	return "", false
}

func TestRealProofSuiteOverTheDemo(t *testing.T) {
	for _, mode := range []kubeproxy.Mode{kubeproxy.ModeNFTables, kubeproxy.ModeIPTables} {
		t.Run(string(mode), func(t *testing.T) {
			if testing.Short() && mode == kubeproxy.ModeIPTables {
				t.Skip("-short: nftables mode only")
			}
			l := newRealTestLab(t, mode)
			t.Run("EndpointSlices of the real controller equal the snapshot's", func(t *testing.T) {
				for _, d := range l.st.Real.SliceDiffs {
					reportReal(t, mode, d.What, d.Predicted, d.Observed)
				}
			})
			t.Run("real kube-proxy's rules equal kpath rules on every node", func(t *testing.T) {
				for _, n := range l.st.Plan.Nodes {
					d, err := NodeRulesDiff(context.Background(), l.st, l.snap, n.Name)
					if err != nil {
						t.Fatal(err)
					}
					for _, x := range d.OnlyReal {
						reportReal(t, mode, "rules|+ "+x, "absent", "on "+n.Name)
					}
					for _, x := range d.OnlyModel {
						reportReal(t, mode, "rules|- "+x, "on "+n.Name, "absent")
					}
					for _, x := range d.Notes {
						t.Logf("%s: %s", n.Name, x)
					}
					t.Logf("%s: %d canonical lines compared", n.Name, d.Compared)
				}
			})
			t.Run("real CoreDNS answers a census of names as the model does", func(t *testing.T) {
				qs := DNSCensus(l.snap)
				diffs, nc, err := DNSDiff(l.st, l.snap, qs)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range diffs {
					reportReal(t, mode, d.What, d.Predicted, d.Observed)
				}
				for _, s := range nc {
					t.Logf("not compared: %s", s)
				}
				t.Logf("%d questions × %d servers", len(qs), len(l.st.Real.CoreDNS))
			})
			for _, c := range proofCases {
				t.Run(c.name, func(t *testing.T) {
					res, err := Trace(context.Background(), l.st, l.snap, l.eng, c.from, c.to, TraceOptions{Protocol: c.proto, Count: c.count, Timeout: time.Second})
					if err != nil {
						t.Fatal(err)
					}
					if c.verdict != "" && res.Observed.Verdict != c.verdict {
						t.Errorf("observed verdict %s, want %s (%s)", res.Observed.Verdict, c.verdict, res.Observed.VerdictReason)
					}
					q := c.from + " " + c.to
					for _, d := range res.Diffs {
						if why, ok := knownModelDiffs[d.What+"|"+q]; ok {
							t.Logf("known model difference (%s): %s\n  predicted: %s\n  observed:  %s", why, d.What, d.Predicted, d.Observed)
							continue
						}
						reportReal(t, mode, d.What+"|"+q, d.Predicted, d.Observed)
					}
					if res.Real == nil {
						t.Fatal("a --real lab trace carries no real checks")
					}
					for _, e := range res.Real.Errors {
						t.Error(e)
					}
					for _, d := range res.Real.DNS {
						reportReal(t, mode, d.What, d.Predicted, d.Observed)
					}
					for _, s := range res.Skipped {
						t.Logf("not compared: %s", s)
					}
				})
			}
		})
	}
}

// reportReal fails the test on a difference unless the skip list explains it.
func reportReal(t *testing.T, mode kubeproxy.Mode, what, predicted, observed string) {
	t.Helper()
	if why, ok := realSkip(mode, what); ok {
		t.Logf("known (%s): %s\n  kpath: %s\n  real:  %s", why, what, predicted, observed)
		return
	}
	t.Errorf("%s\n  kpath: %s\n  real:  %s", what, predicted, observed)
}

// newRealTestLab builds the demo lab with the real components; it skips when they are not built.
func newRealTestLab(t *testing.T, mode kubeproxy.Mode) *testLab {
	t.Helper()
	requireRoot(t)
	if _, err := RealBinaries(); err != nil {
		t.Skipf("--real proof suite: %v", err)
	}
	guardRootNetns(t)
	guardConntrackMax(t)
	t.Setenv("KPATH_LAB_DIR", testStateDir)
	snap := demoSnapshot(t, mode, "testdata/etp-cluster.yaml")
	b := make([]byte, 3)
	rand.Read(b)
	name := "rt" + hex.EncodeToString(b)
	ctx, cancel := context.WithCancel(context.Background())
	claimTestLab(t, name)
	t0 := time.Now()
	var logb strings.Builder
	st, err := Up(ctx, snap, Options{Name: name, Mode: mode, Real: true, Log: &logb})
	if err != nil {
		cancel()
		t.Fatalf("lab up --real: %v\n%s", err, logb.String())
	}
	var agentDone chan struct{}
	t.Cleanup(func() {
		cancel()
		if agentDone != nil {
			<-agentDone
		}
		if err := Down(context.Background(), st); err != nil {
			t.Errorf("lab down: %v", err)
		}
		for _, ns := range st.Namespaces {
			if netnsExists(ns) {
				t.Errorf("namespace %s survived lab down", ns)
			}
		}
		for _, p := range st.Real.Processes {
			if p.alive() {
				t.Errorf("%s (pid %d) survived lab down", p.Name, p.PID)
			}
		}
	})
	// The agent runs in the test process (same code as `kpath lab agent`): echo servers and real CoreDNS.
	rd, wr, _ := os.Pipe()
	agentDone = make(chan struct{})
	go func() {
		defer close(agentDone)
		if err := RunAgent(ctx, st, snap, wr); err != nil {
			t.Errorf("agent: %v", err)
			wr.Close()
		}
	}()
	buf := make([]byte, 64<<10)
	n, _ := readAll(rd, buf)
	rd.Close()
	msg := string(buf[:n])
	if !strings.HasPrefix(msg, "ready") {
		t.Fatalf("agent did not start: %q", msg)
	}
	if err := recordAgentChildren(st, msg); err != nil {
		t.Fatal(err)
	}
	st.Ready = true
	if err := st.Save(); err != nil {
		t.Fatal(err)
	}
	t.Logf("lab up --real (%s) in %s:\n%s", mode, time.Since(t0).Round(time.Millisecond), logb.String())
	var sb strings.Builder
	writeRealStatus(&sb, st)
	t.Logf("%s", sb.String())
	eng, err := trace.New(snap)
	if err != nil {
		t.Fatal(err)
	}
	return &testLab{st: st, snap: snap, eng: eng}
}

func readAll(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// guardConntrackMax fails the test if the machine-wide conntrack table size changed (real kube-proxy writes it
// unless told not to).
func guardConntrackMax(t *testing.T) {
	t.Helper()
	read := func() string {
		b, _ := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_max")
		return strings.TrimSpace(string(b))
	}
	before := read()
	t.Cleanup(func() {
		if after := read(); after != before {
			t.Errorf("nf_conntrack_max changed from %s to %s", before, after)
		}
	})
}
