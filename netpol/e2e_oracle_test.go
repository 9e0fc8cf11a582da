package netpol

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/internal/oracle"
)

type e2eCases struct {
	Cases []struct {
		Index int    `json:"index"`
		Name  string `json:"name"`
		Steps []struct {
			Step     int                        `json:"step"`
			ToPort   int32                      `json:"to_port"`
			Protocol string                     `json:"protocol"`
			Manifest string                     `json:"manifest"`
			Expected map[string]map[string]bool `json:"expected"`
		} `json:"steps"`
	} `json:"cases"`
}

// e2eSkips lists upstream e2e specs whose recorded manifests do not say what upstream created (oracle defects).
var e2eSkips = map[string]string{
	"should enforce policy to allow ingress traffic for a target":                "recording lost the peer's empty namespaceSelector: upstream creates {podSelector: {}, namespaceSelector: {}} (network_policy.go), the manifest has podSelector {} only",
	"should enforce policy to allow ingress traffic from pods in all namespaces": "recording wrote the peer as `- {}` (empty selectors dropped), which API validation rejects (\"must specify a peer\"); the spec's table needs its namespaceSelector {}",
}

// TestKubernetesE2ETruthTables replays the upstream e2e netpol truth tables: from each pod to the destination
// pod's Service, translated to the endpoint (kube-proxy DNAT) and then checked by policy — egress at the client,
// ingress at the server, on the endpoint port. Loopback pairs are ignored, as upstream does.
func TestKubernetesE2ETruthTables(t *testing.T) {
	root := oracle.Dir(t, "k8s-e2e-netpol", "derived")
	data, err := os.ReadFile(filepath.Join(root, "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs e2eCases
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatal(err)
	}
	pairs := 0
	for _, c := range cs.Cases {
		for _, st := range c.Steps {
			name := c.Name
			if len(c.Steps) > 1 {
				name += " (step " + itoa(st.Step) + ")"
			}
			t.Run(name, func(t *testing.T) {
				if why, ok := e2eSkips[c.Name]; ok {
					t.Skip(why)
				}
				s := loadSnap(t, filepath.Join(root, st.Manifest))
				e := New(s)
				for from, row := range st.Expected {
					for to, want := range row {
						if from == to {
							continue
						}
						pairs++
						src := podByKey(t, s, from)
						dst := podByKey(t, s, to)
						port, ok := serviceToEndpoint(s, dst, st.ToPort, corev1.Protocol(st.Protocol))
						if !ok {
							t.Errorf("%s → %s: Service s-%s-%s has no port %d/%s for the pod", from, to, dst.Namespace, dst.Name, st.ToPort, st.Protocol)
							continue
						}
						d := e.Evaluate(Conn{Src: PodPeer(s, src), Dst: PodPeer(s, dst), Port: port, Protocol: corev1.Protocol(st.Protocol)})
						if d.Allowed != want {
							t.Errorf("%s → %s %d/%s: allowed=%v, want %v\n  egress: %s\n  ingress: %s", from, to, port, st.Protocol, d.Allowed, want, d.Egress.Why, d.Ingress.Why)
						}
						if conns := e.Conns(PodPeer(s, src), PodPeer(s, dst)); conns.Contains(corev1.Protocol(st.Protocol), port) != d.Allowed {
							t.Errorf("%s → %s: Conns (%s) and Evaluate (%v) disagree", from, to, conns, d.Allowed)
						}
					}
				}
			})
		}
	}
	t.Logf("%d pod pairs checked", pairs)
}

func itoa(i int) string { return strconv.Itoa(i) }

func podByKey(t *testing.T, s *cluster.Snapshot, k string) *corev1.Pod {
	t.Helper()
	ns, name, _ := strings.Cut(k, "/")
	p := s.Pod(ns, name)
	if p == nil {
		t.Fatalf("pod %s not in the snapshot", k)
	}
	return p
}

// serviceToEndpoint is kube-proxy's translation for the e2e probe: Service s-<ns>-<pod> port → the pod's port.
func serviceToEndpoint(s *cluster.Snapshot, pod *corev1.Pod, port int32, proto corev1.Protocol) (int32, bool) {
	svc := s.Service(pod.Namespace, "s-"+pod.Namespace+"-"+pod.Name)
	if svc == nil {
		return 0, false
	}
	for _, sp := range svc.Spec.Ports {
		if sp.Port == port && sp.Protocol == proto {
			return cluster.FindPort(pod, sp)
		}
	}
	return 0, false
}
