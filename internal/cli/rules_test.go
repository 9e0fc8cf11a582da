package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kpath/kpath/trace"
)

// -update regenerates the golden files under testdata/rules (review the diff). The flag is registered only once
// even if another test file of the package registers it too.
func init() {
	if flag.Lookup("update") == nil {
		flag.Bool("update", false, "rewrite golden files under testdata/")
	}
}

func updating() bool {
	f := flag.Lookup("update")
	return f != nil && f.Value.String() == "true"
}

const rulesData = "testdata/rules"

// kpath runs the CLI in-process.
func kpath(args ...string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = Main(args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(rulesData, name)
	if updating() {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden %s: %v (run go test ./internal/cli -run %s -update)", path, err, t.Name())
	}
	if got == string(want) {
		return
	}
	gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(gl) || i < len(wl); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Errorf("%s differs from the golden file at line %d:\n got: %s\nwant: %s\n(rerun with -update and review the diff if the change is intended)", path, i+1, g, w)
			return
		}
	}
}

const meshFile = rulesData + "/mesh.yaml"

var rulesGoldenCases = []struct {
	name       string
	args       []string
	code       int
	stdout     string // golden file for stdout
	stderr     string // golden file for stderr; empty: not compared
	stderrHave string // substring stderr must contain
}{
	{"the demo's kpath-worker in nftables mode renders table ip kube-proxy",
		[]string{"rules", "--demo", "node/kpath-worker", "--mode", "nftables"}, ExitOK, "node-kpath-worker.nft", "",
		"8 Service(s), 10 service port(s), 13 endpoint(s); load with: nft -f FILE"},
	{"the demo's kpath-worker in iptables mode renders iptables-save filter and nat tables",
		[]string{"rules", "--demo", "node/kpath-worker", "--mode", "iptables"}, ExitOK, "node-kpath-worker.iptables", "",
		"load with: iptables-restore FILE"},
	{"a pod to a ClusterIP with two endpoints forks into two DNAT branches of p=0.5",
		[]string{"rules", "trace", "--demo", "node/kpath-worker", "--packet", "tcp 10.244.1.6:40000 -> 10.96.45.12:8080 iif cni0"},
		ExitOK, "trace-clusterip.txt", "", ""},
	{"a pod to a Service without ready endpoints is rejected (exit 4)",
		[]string{"rules", "trace", "--demo", "node/kpath-worker", "--packet", "tcp 10.244.1.6:40000 -> 10.96.150.3:443 iif cni0"},
		ExitRejected, "trace-no-endpoints.txt", "", ""},
	{"a NodePort of an externalTrafficPolicy Local Service on a node without a local endpoint is dropped (exit 3)",
		[]string{"rules", "trace", "--demo", "node/kpath-worker2", "--packet", "tcp 203.0.113.7:40000 -> 172.18.0.4:30080 iif eth0"},
		ExitDropped, "trace-etp-local-drop.txt", "", ""},
	{"the node itself to a ClusterIP in iptables mode is marked and masqueraded",
		[]string{"rules", "trace", "--demo", "node/kpath-worker", "--mode", "iptables", "--packet", "tcp 172.18.0.3:40000 -> 10.96.45.12:8080"},
		ExitOK, "trace-node-to-clusterip-iptables.txt", "", ""},
	{"the rendered iptables-save file walks like a dump from a real node",
		[]string{"rules", "trace", "--ruleset", rulesData + "/node-kpath-worker.iptables", "--local-ip", "172.18.0.3",
			"--packet", "udp 10.244.1.6:5353 -> 10.96.0.10:53 iif cni0"}, ExitOK, "trace-ruleset-iptables.txt", "", ""},
	{"a Docker and Calico dump parses, reports the lines it does not understand and ends unknown when it meets one",
		[]string{"rules", "trace", "--ruleset", rulesData + "/docker-calico.iptables-save", "--local-ip", "192.168.1.10",
			"--packet", "tcp 10.244.1.5:40000 -> 10.96.0.10:53 iif cali1234abcd"},
		ExitUnknown, "trace-docker-calico-unknown.txt", "trace-docker-calico-unknown.stderr", ""},
	{"a Docker and Calico dump still walks a published port where the unknown lines are not on the packet's path",
		[]string{"rules", "trace", "--ruleset", rulesData + "/docker-calico.iptables-save", "--local-ip", "192.168.1.10",
			"--route", "172.17.0.0/16=docker0", "--route", "0.0.0.0/0=eth0", "--if-addr", "docker0=172.17.0.1",
			"--packet", "tcp 203.0.113.7:40000 -> 192.168.1.10:8080 iif eth0"},
		ExitOK, "trace-docker-published-port.txt", "", ""},
	{"a Linkerd pod gets proxy-init's PROXY_INIT chains with the namespace's and the pod's skip ports",
		[]string{"rules", "--demo", "-f", meshFile, "pod/books/web"}, ExitOK, "pod-books-web.iptables", "",
		"linkerd interception rules in the network namespace of pod books/web"},
	{"an Istio sidecar pod gets istio-iptables' ISTIO chains with its exclusions",
		[]string{"rules", "--demo", "-f", meshFile, "pod/reviews/reviews-v1"}, ExitOK, "pod-reviews-v1.iptables", "", ""},
	{"the same Istio pod in nftables mode gets istio-nftables' inet tables",
		[]string{"rules", "--demo", "-f", meshFile, "pod/reviews/reviews-v1", "--mode", "nftables"}, ExitOK, "pod-reviews-v1.nft", "", ""},
	{"a pod that opts out of Istio injection is not meshed and says why (exit 0)",
		[]string{"rules", "--demo", "-f", meshFile, "pod/reviews/batch"}, ExitOK, "pod-reviews-batch.txt", "", ""},
	{"a demo pod is not meshed because the demo has no mesh",
		[]string{"rules", "--demo", "pod/shop/cart-lkv2s5jbq5-hcxf4"}, ExitOK, "pod-demo-not-meshed.txt", "", ""},
	{"-v prints where every mesh setting came from on stderr",
		[]string{"rules", "--demo", "-f", meshFile, "pod/books/web", "-v"}, ExitOK, "pod-books-web.iptables", "",
		`evidence: --outbound-ports-to-ignore="3306" (namespace-annotation config.linkerd.io/skip-outbound-ports)`},
	{"the app's outbound connection in an Istio pod is redirected to Envoy on 15001",
		[]string{"rules", "trace", "--demo", "-f", meshFile, "pod/reviews/reviews-v1", "--packet", "tcp 10.244.2.40:40000 -> 10.96.45.12:8080 uid 1000 gid 1000"},
		ExitOK, "trace-pod-istio-outbound.txt", "", ""},
	{"Envoy's own outbound connection (uid 1337) bypasses the redirect",
		[]string{"rules", "trace", "--demo", "-f", meshFile, "pod/reviews/reviews-v1", "--packet", "tcp 10.244.2.40:40000 -> 10.96.45.12:8080 uid 1337 gid 1337"},
		ExitOK, "trace-pod-istio-uid-bypass.txt", "", ""},
	{"an inbound connection to an Istio nftables pod is redirected to 15006",
		[]string{"rules", "trace", "--demo", "-f", meshFile, "pod/reviews/reviews-v1", "--mode", "nftables", "--packet", "tcp 10.244.1.6:40000 -> 10.244.2.40:9081 iif eth0"},
		ExitOK, "trace-pod-istio-inbound-nft.txt", "", ""},
}

func TestRulesGolden(t *testing.T) {
	for _, tc := range rulesGoldenCases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := kpath(tc.args...)
			if code != tc.code {
				t.Errorf("exit code %d, want %d\nstderr: %s", code, tc.code, errOut)
			}
			golden(t, tc.stdout, out)
			if tc.stderr != "" {
				golden(t, tc.stderr, errOut)
			}
			if tc.stderrHave != "" && !strings.Contains(errOut, tc.stderrHave) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderrHave, errOut)
			}
		})
	}
}

func TestRulesNodeJSON(t *testing.T) {
	for _, mode := range []string{"nftables", "iptables"} {
		t.Run("the JSON report carries the same "+mode+" ruleset as the text output and its counts", func(t *testing.T) {
			out, errOut, code := kpath("rules", "--demo", "node/kpath-worker", "--mode", mode, "-o", "json")
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var r NodeRulesReport
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			text, _, _ := kpath("rules", "--demo", "node/kpath-worker", "--mode", mode)
			if r.Schema != RulesSchema || r.Node != "kpath-worker" || r.Mode != mode || r.Ruleset != text {
				t.Errorf("report %s/%s/%s, ruleset equal to text output: %v", r.Schema, r.Node, r.Mode, r.Ruleset == text)
			}
			if r.Services != 8 || r.ServicePorts != 10 || r.Endpoints != 13 {
				t.Errorf("counts services=%d servicePorts=%d endpoints=%d, want 8/10/13", r.Services, r.ServicePorts, r.Endpoints)
			}
			var raw map[string]any
			_ = json.Unmarshal([]byte(out), &raw)
			for _, k := range []string{"schema", "node", "mode", "ruleset", "services", "endpoints"} {
				if _, ok := raw[k]; !ok {
					t.Errorf("JSON lacks field %q", k)
				}
			}
		})
	}
	t.Run("the node's mode follows the profile when --mode is not given", func(t *testing.T) {
		out, _, _ := kpath("rules", "--demo", "--proxy-mode", "iptables", "node/kpath-worker", "-o", "json")
		var r NodeRulesReport
		if err := json.Unmarshal([]byte(out), &r); err != nil || r.Mode != "iptables" {
			t.Errorf("mode %q (%v), want iptables from --proxy-mode", r.Mode, err)
		}
	})
}

func TestRulesPodJSON(t *testing.T) {
	cases := []struct {
		name     string
		pod      string
		captured bool
		mesh     string
		reason   string
	}{
		{"a linkerd pod is captured with its evidence", "pod/books/web", true, "linkerd", ""},
		{"an opted-out pod is not captured and the reason names the label", "pod/reviews/batch", false, "istio-sidecar", "sidecar.istio.io/inject"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := kpath("rules", "--demo", "-f", meshFile, tc.pod, "-o", "json")
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var r PodRulesReport
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if r.Captured != tc.captured || r.Mesh != tc.mesh || !strings.Contains(r.Reason, tc.reason) || len(r.Evidence) == 0 {
				t.Errorf("captured=%v mesh=%q reason=%q evidence=%d", r.Captured, r.Mesh, r.Reason, len(r.Evidence))
			}
			if tc.captured && !strings.Contains(r.Ruleset, "PROXY_INIT_OUTPUT") {
				t.Errorf("ruleset lacks PROXY_INIT_OUTPUT:\n%s", r.Ruleset)
			}
		})
	}
}

func TestRulesTraceJSON(t *testing.T) {
	out, errOut, code := kpath("rules", "trace", "--demo", "node/kpath-worker", "-o", "json",
		"--packet", "tcp 10.244.1.6:40000 -> 10.96.45.12:8080 iif cni0")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r RulesTraceReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	t.Run("two branches of p=0.5 each end in a DNAT to one cart endpoint", func(t *testing.T) {
		if r.Schema != RulesTraceSchema || r.Verdict != "accept" || len(r.Branches) != 2 {
			t.Fatalf("schema %q verdict %q branches %d", r.Schema, r.Verdict, len(r.Branches))
		}
		var dsts []string
		for _, b := range r.Branches {
			if b.Probability != 0.5 || !b.DNAT || len(b.Hits) == 0 {
				t.Errorf("branch %+v", b)
			}
			dsts = append(dsts, strings.Fields(b.Packet)[3])
		}
		sort.Strings(dsts)
		if strings.Join(dsts, ",") != "10.244.1.2:8080,10.244.3.4:8080" {
			t.Errorf("DNAT destinations %v", dsts)
		}
	})
	t.Run("every hit names its hook, table and chain and rule hits carry their line", func(t *testing.T) {
		for _, h := range r.Branches[0].Hits {
			if h.Hook == "" || h.Table != "kube-proxy" || h.Chain == "" || (h.Rule != "" && h.Line == 0) {
				t.Errorf("hit %+v", h)
			}
		}
	})
	t.Run("the machine model is reported", func(t *testing.T) {
		if r.Node == nil || len(r.Node.LocalAddrs) == 0 || len(r.Assumed) == 0 {
			t.Errorf("node %+v assumed %v", r.Node, r.Assumed)
		}
	})
}

func TestRulesUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a target that is neither node/ nor pod/ is a usage error", []string{"rules", "--demo", "svc/shop/cart"}, ExitUsage, "want node/NAME or pod/NAMESPACE/NAME"},
		{"an unknown node lists the nodes", []string{"rules", "--demo", "node/nope"}, ExitUsage, "nodes: kpath-control-plane, kpath-worker"},
		{"an unknown pod lists the namespace's pods", []string{"rules", "--demo", "pod/shop/nope"}, ExitUsage, "pods in shop:"},
		{"an unknown mode is a usage error", []string{"rules", "--demo", "node/kpath-worker", "--mode", "ipvs"}, ExitUsage, "want nftables or iptables"},
		{"linkerd has no nftables variant", []string{"rules", "--demo", "-f", meshFile, "pod/books/web", "--mode", "nftables"}, ExitUsage, "no native nftables variant"},
		{"rules trace needs a packet", []string{"rules", "trace", "--ruleset", meshFile}, ExitUsage, "--packet is required"},
		{"rules trace needs rules", []string{"rules", "trace", "--packet", "tcp 1.2.3.4:1 -> 5.6.7.8:80"}, ExitUsage, "no rules"},
		{"a node and a ruleset file together are a usage error", []string{"rules", "trace", "--demo", "node/kpath-worker", "--ruleset", "x", "--packet", "tcp 1.2.3.4:1 -> 5.6.7.8:80"}, ExitUsage, "not both"},
		{"a malformed packet is a usage error", []string{"rules", "trace", "--demo", "node/kpath-worker", "--packet", "tcp nowhere"}, ExitUsage, "--packet"},
		{"a bad --route is a usage error", []string{"rules", "trace", "--demo", "node/kpath-worker", "--route", "cni0", "--packet", "tcp 1.2.3.4:1 -> 5.6.7.8:80"}, ExitUsage, "PREFIX=IFACE"},
		{"a missing ruleset file is a tool error", []string{"rules", "trace", "--ruleset", "testdata/rules/absent.nft", "--packet", "tcp 1.2.3.4:1 -> 5.6.7.8:80"}, ExitError, "reading ruleset"},
		{"a file that is no ruleset is a tool error that names the formats", []string{"rules", "trace", "--ruleset", meshFile, "--packet", "tcp 1.2.3.4:1 -> 5.6.7.8:80"}, ExitError, "want nft list ruleset"},
		{"a pod without interception has nothing to walk (exit 5)", []string{"rules", "trace", "--demo", "pod/shop/cart-lkv2s5jbq5-hcxf4", "--packet", "tcp 1.2.3.4:1 -> 5.6.7.8:80"}, ExitUnknown, "not meshed"},
		{"a profile without kube-proxy rules needs --mode", []string{"rules", "--demo", "--proxy-mode", "cilium-ebpf", "node/kpath-worker"}, ExitUnknown, "pass --mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := kpath(tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d (want %d), stderr %q (want it to contain %q)", code, tc.code, errOut, tc.want)
			}
		})
	}
}

// The rule walk under `kpath trace --rules` must reach the same endpoints the Service model offers.
func TestTraceRulesWalkAgreesWithTheModel(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{
		{"a pod to a ClusterIP with endpoints on two nodes", []string{"deploy/shop/frontend", "http://cart.shop:8080/"}},
		{"a pod to a topology-aware Service picks among the same zone-local endpoints", []string{"deploy/shop/frontend", "catalog.shop:80"}},
		{"a pod to the API server", []string{"deploy/shop/frontend", "svc/default/kubernetes:https"}},
		{"a pod's DNS query over UDP", []string{"--proto", "udp", "deploy/shop/frontend", "10.96.0.10:53"}},
		{"an external client to a NodePort with a local endpoint", []string{"external:203.0.113.7", "node/kpath-worker:30080"}},
		{"the node itself to a ClusterIP", []string{"node/kpath-worker3", "svc/shop/checkout:8080"}},
		{"a pod to a ClusterIP in iptables mode", []string{"--proxy-mode", "iptables", "deploy/shop/frontend", "http://cart.shop:8080/"}},
		{"an external client to a NodePort in iptables mode", []string{"--proxy-mode", "iptables", "external:203.0.113.7", "node/kpath-worker:30080"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := kpath(append([]string{"trace", "--demo", "--rules", "-o", "json"}, tc.args...)...)
			if code == ExitError || code == ExitUsage { // later stages (policy) may leave the journey unknown
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var j trace.Journey
			if err := json.Unmarshal([]byte(out), &j); err != nil {
				t.Fatal(err)
			}
			if err := j.Validate(); err != nil {
				t.Errorf("journey with rule walk does not validate: %v", err)
			}
			var walk *trace.Journey
			for _, h := range j.Hops {
				for _, s := range h.Steps {
					if s.Action == trace.ActionDNAT && s.Nested != nil {
						walk = s.Nested
					}
				}
			}
			if walk == nil || j.Backend == nil {
				t.Fatalf("no rule walk under a DNAT step (backend %v)", j.Backend)
			}
			if walk.Backend == nil || walk.Backend.IP != j.Backend.IP || walk.Backend.Port != j.Backend.Port {
				t.Errorf("the rule walk's final DNAT goes to %+v, the model chose %+v", walk.Backend, j.Backend)
			}
			model, rules := endpointSet(&j), endpointSet(walk)
			if model != rules {
				t.Errorf("endpoint sets differ:\n model: %s\n rules: %s", model, rules)
			}
			last := walk.Hops[0].Steps
			dnat := false
			for _, s := range last {
				if s.Layer != trace.LayerKubeProxy || s.Rule == "" {
					t.Errorf("step %+v: want layer kube-proxy and the rule text", s)
				}
				dnat = dnat || s.Action == trace.ActionDNAT
			}
			if !dnat {
				t.Error("no DNAT step in the rule walk")
			}
		})
	}
}

// endpointSet is backend + alternatives as "ip:port" sorted, with their probabilities.
func endpointSet(j *trace.Journey) string {
	var s []string
	s = append(s, j.Backend.IP+":"+fmt.Sprint(j.Backend.Port))
	for _, a := range j.Alternatives {
		s = append(s, a.IP+":"+fmt.Sprint(a.Port))
	}
	sort.Strings(s)
	return strings.Join(s, " ")
}

// ---- the real tools accept the golden outputs ----

func rootState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range [][]string{{"nft", "list", "ruleset"}, {"ip", "-o", "link"}, {"ip", "-o", "addr"}, {"ip", "route"}, {"ip", "rule"}} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
		}
		b.WriteString(strings.Join(argv, " ") + "\n" + string(out))
	}
	return b.String()
}

func TestGoldenRulesAreAcceptedByTheRealTools(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("real-tool check needs root (a fresh network namespace)")
	}
	for _, tool := range []string{"ip", "nft", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	before := rootState(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := "kpathcli-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", ns, err, out)
		}
		if after := rootState(t); after != before {
			t.Errorf("the root network namespace changed during the test")
		}
	})
	cases := []struct {
		name string
		file string
		argv []string
	}{
		{"nft -c accepts the kube-proxy nftables rules", "node-kpath-worker.nft", []string{"nft", "-c", "-f"}},
		{"iptables-restore --test accepts the kube-proxy iptables rules", "node-kpath-worker.iptables", []string{"iptables-restore", "--test"}},
		{"iptables-restore --test accepts the linkerd proxy-init rules", "pod-books-web.iptables", []string{"iptables-restore", "--test", "--noflush"}},
		{"iptables-restore --test accepts the istio-iptables rules", "pod-reviews-v1.iptables", []string{"iptables-restore", "--test", "--noflush"}},
		{"nft -c accepts the istio-nftables rules", "pod-reviews-v1.nft", []string{"nft", "-c", "-f"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path, err := filepath.Abs(filepath.Join(rulesData, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			argv := append(append([]string{"netns", "exec", ns}, tc.argv...), path)
			if out, err := exec.CommandContext(ctx, "ip", argv...).CombinedOutput(); err != nil {
				t.Errorf("%s rejected %s: %v\n%s", strings.Join(tc.argv, " "), tc.file, err, out)
			}
		})
	}
}

// docs/rules.md quotes the golden files; every quoted block must still match them (lines starting with "$ " are
// the command, "kpath: " the stderr summary, "…" marks omitted lines).
func TestRulesDocMatchesGoldens(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "rules.md"))
	if err != nil {
		t.Fatalf("reading docs/rules.md: %v", err)
	}
	blocks := regexp.MustCompile("(?s)<!-- golden: (\\S+) -->\n```text\n(.*?)\n```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 8 {
		t.Fatalf("docs/rules.md quotes %d golden blocks, want at least 8", len(blocks))
	}
	for _, b := range blocks {
		t.Run("docs quote "+b[1]+" faithfully", func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(rulesData, b[1]))
			if err != nil {
				t.Fatal(err)
			}
			golden := "\n" + string(data)
			var chunk []string
			check := func() {
				if len(chunk) > 0 && !strings.Contains(golden, "\n"+strings.Join(chunk, "\n")+"\n") {
					t.Errorf("docs/rules.md quotes lines that are not (contiguous) in %s:\n%s", b[1], strings.Join(chunk, "\n"))
				}
				chunk = chunk[:0]
			}
			for _, l := range strings.Split(b[2], "\n") {
				switch {
				case strings.HasPrefix(l, "$ ") || strings.HasPrefix(l, "kpath: "):
				case l == "…":
					check()
				default:
					chunk = append(chunk, l)
				}
			}
			check()
		})
	}
}
