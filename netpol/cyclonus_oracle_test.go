package netpol

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/internal/oracle"
)

type cyclonusTable struct {
	PortProtocols []string            `json:"port_protocols"`
	Columns       []string            `json:"columns"`
	Rows          map[string][]string `json:"rows"`
}

type cyclonusFile struct {
	InitialPods []struct {
		Namespace string            `json:"namespace"`
		Name      string            `json:"name"`
		Labels    map[string]string `json:"labels"`
		IP        string            `json:"ip"`
		NSLabels  map[string]string `json:"ns_labels"`
	} `json:"initial_pods"`
	Cases []struct {
		Number      int      `json:"number"`
		Description string   `json:"description"`
		Tags        []string `json:"tags"`
		MultiStep   bool     `json:"multi_step"`
		Mutating    []any    `json:"cluster_mutating_actions"`
		Steps       []struct {
			Probe     string            `json:"probe"`
			Policies  []json.RawMessage `json:"policies"`
			Ingress   cyclonusTable     `json:"expected_ingress"`
			Egress    cyclonusTable     `json:"expected_egress"`
			Combined  cyclonusTable     `json:"expected_combined"`
			Different bool              `json:"universe_differs_from_initial"`
		} `json:"steps"`
	} `json:"cases"`
}

// cyclonusUniverse renders cyclonus' 9-pod world: namespaces x, y, z; pods a, b, c serving 80 and 81 on TCP, UDP and
// SCTP with container ports named serve-<port>-<protocol>, at the mock IPs the ipBlock cases use.
func cyclonusUniverse(f *cyclonusFile) []byte {
	var b strings.Builder
	seen := map[string]bool{}
	for _, p := range f.InitialPods {
		if seen[p.Namespace] {
			continue
		}
		seen[p.Namespace] = true
		lb, _ := json.Marshal(p.NSLabels)
		fmt.Fprintf(&b, `{"apiVersion":"v1","kind":"Namespace","metadata":{"name":%q,"labels":%s}}`+"\n", p.Namespace, lb)
	}
	for _, p := range f.InitialPods {
		lb, _ := json.Marshal(p.Labels)
		var ports []string
		for _, port := range []int{80, 81} {
			for _, proto := range []string{"TCP", "UDP", "SCTP"} {
				ports = append(ports, fmt.Sprintf(`{"containerPort":%d,"protocol":%q,"name":"serve-%d-%s"}`, port, proto, port, strings.ToLower(proto)))
			}
		}
		fmt.Fprintf(&b, `{"apiVersion":"v1","kind":"Pod","metadata":{"name":%q,"namespace":%q,"labels":%s},"spec":{"nodeName":"node-1","containers":[{"name":"cont","image":"agnhost","ports":[%s]}]},"status":{"phase":"Running","podIP":%q,"podIPs":[{"ip":%q}]}}`+"\n",
			p.Name, p.Namespace, lb, strings.Join(ports, ","), p.IP, p.IP)
	}
	return []byte(b.String())
}

// cyclonusSkips lists single-step cases kpath does not reproduce, with the reason.
var cyclonusSkips = map[int]string{}

// TestCyclonusTruthTables compares every cell of cyclonus' generated single-step truth tables (ingress, egress and
// combined). These are cyclonus' simulator verdicts, a peer implementation's opinion, not measurements.
// Loopback cells (x/a → x/a) are scored separately: cyclonus' simulator applies policy to a pod's traffic to itself,
// while the Kubernetes documentation says "a pod cannot block access to itself" and upstream e2e ignores loopback;
// kpath follows the documentation (Evaluate always allows self traffic).
func TestCyclonusTruthTables(t *testing.T) {
	root := oracle.Dir(t, "cyclonus", "generated")
	data, err := os.ReadFile(filepath.Join(root, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f cyclonusFile
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	universe := cluster.BytesSource("cyclonus-universe.json", cyclonusUniverse(&f))
	cells, loopDiff, cases, skipped := 0, 0, 0, 0
	for _, c := range f.Cases {
		if c.MultiStep || len(c.Mutating) > 0 || len(c.Steps) != 1 {
			continue // intermediate cluster state is not recorded (README)
		}
		cases++
		st := c.Steps[0]
		t.Run(fmt.Sprintf("case %d: %s", c.Number, c.Description), func(t *testing.T) {
			if why, ok := cyclonusSkips[c.Number]; ok {
				skipped++
				t.Skip(why)
			}
			var docs []string
			for _, p := range st.Policies {
				docs = append(docs, string(p))
			}
			pol := cluster.BytesSource("policies.json", []byte(strings.Join(docs, "\n")))
			s, err := cluster.Load([]cluster.Source{universe, pol}, cluster.Options{})
			if err != nil {
				t.Fatal(err)
			}
			e := New(s)
			for _, tab := range []struct {
				name string
				tab  cyclonusTable
			}{{"ingress", st.Ingress}, {"egress", st.Egress}, {"combined", st.Combined}} {
				for from, row := range tab.tab.Rows {
					src := podByKey(t, s, from)
					for j, cell := range row {
						to := tab.tab.Columns[j]
						dst := podByKey(t, s, to)
						for k, pp := range tab.tab.PortProtocols {
							proto, portS, _ := strings.Cut(pp, "/")
							var port int32
							fmt.Sscan(portS, &port)
							want := cell[k] == '.'
							sp, dp := PodPeer(s, src), PodPeer(s, dst)
							d := e.Evaluate(Conn{Src: sp, Dst: dp, Port: port, Protocol: corev1.Protocol(proto)})
							got := d.Allowed
							switch tab.name {
							case "ingress":
								got = d.Ingress.Verdict != VerdictDenied
							case "egress":
								got = d.Egress.Verdict != VerdictDenied
							}
							if from == to {
								if got != want {
									loopDiff++
								}
								continue
							}
							cells++
							if got != want {
								t.Errorf("%s %s → %s %s: allowed=%v, cyclonus says %v\n  egress: %s\n  ingress: %s", tab.name, from, to, pp, got, want, d.Egress.Why, d.Ingress.Why)
							}
						}
					}
				}
			}
		})
	}
	t.Logf("%d single-step cases (%d skipped), %d non-loopback cells compared; %d loopback cells differ (cyclonus blocks self traffic, kpath allows it)", cases, skipped, cells, loopDiff)
}
