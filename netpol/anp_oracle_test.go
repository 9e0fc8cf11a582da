package netpol

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/internal/oracle"
)

type anpCases struct {
	Tests []struct {
		ShortName string `json:"short_name"`
		Subtests  []struct {
			Name   string `json:"name"`
			Probes []struct {
				Seq             int    `json:"seq"`
				ClientNamespace string `json:"client_namespace"`
				ClientPod       string `json:"client_pod"`
				Protocol        string `json:"protocol"`
				ServerNamespace string `json:"server_namespace"`
				ServerPod       string `json:"server_pod"`
				Port            int32  `json:"port"`
				HostPortIndex   *int   `json:"port_is_host_network_port_index"`
				ExpectConnected bool   `json:"expect_connected"`
				StateFile       string `json:"state_file"`
			} `json:"probes"`
		} `json:"subtests"`
	} `json:"tests"`
}

// The suite's default HostNetworkPorts (conformance/utils/suite): 34345…34352.
const firstHostNetworkPort = 34345

var hostPortTmpl = regexp.MustCompile(`\{\{\s*index \.HostNetworkPorts (\d+)\s*\}\}`)
var podIPTmpl = regexp.MustCompile(`\{\{podIP:([^/}]+)/([^}]+)\}\}`)

func renderHostPorts(b []byte) []byte {
	return hostPortTmpl.ReplaceAllFunc(b, func(m []byte) []byte {
		n, _ := strconv.Atoi(string(hostPortTmpl.FindSubmatch(m)[1]))
		return []byte(strconv.Itoa(firstHostNetworkPort + n))
	})
}

// anpSkips lists conformance probes kpath does not reproduce, by "test/subtest", with the reason.
var anpSkips = map[string]string{}

func TestNetworkPolicyAPIConformance(t *testing.T) {
	for _, ver := range []string{"v1alpha1-v0.1.8", "v1alpha2-HEAD"} {
		t.Run(ver, func(t *testing.T) { runANPConformance(t, ver) })
	}
}

func runANPConformance(t *testing.T, ver string) {
	root := oracle.Dir(t, "network-policy-api", ver)
	data, err := os.ReadFile(filepath.Join(root, "derived", "cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs anpCases
	if err := json.Unmarshal(data, &cs); err != nil {
		t.Fatal(err)
	}
	baseRaw, err := os.ReadFile(filepath.Join(root, "conformance", "base", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	base := cluster.BytesSource("base/manifests.yaml", renderHostPorts(baseRaw))
	baseSnap, err := cluster.Load([]cluster.Source{base}, cluster.Options{})
	if err != nil {
		t.Fatal(err)
	}
	engines := map[string]*Engine{}
	engineFor := func(t *testing.T, state string) *Engine {
		if e, ok := engines[state]; ok {
			return e
		}
		raw, err := os.ReadFile(filepath.Join(root, "derived", state))
		if err != nil {
			t.Fatal(err)
		}
		raw = podIPTmpl.ReplaceAllFunc(raw, func(m []byte) []byte {
			sm := podIPTmpl.FindSubmatch(m)
			p := baseSnap.Pod(string(sm[1]), string(sm[2]))
			if p == nil {
				t.Fatalf("%s: pod %s/%s not in the base manifests", state, sm[1], sm[2])
			}
			return []byte(PodPeer(baseSnap, p).IP.String())
		})
		// State objects replace base objects of the same kind/namespace/name: the loader keeps the first copy.
		s, err := cluster.Load([]cluster.Source{cluster.BytesSource(state, renderHostPorts(raw)), base}, cluster.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range baseSnap.Pods {
			if q := s.Pod(p.Namespace, p.Name); q == nil || q.Status.PodIP != p.Status.PodIP {
				t.Fatalf("%s: pod %s/%s got a different address with the state loaded; podIP placeholders would be wrong", state, p.Namespace, p.Name)
			}
		}
		e := New(s)
		engines[state] = e
		return e
	}
	probes, skipped := 0, 0
	for _, tc := range cs.Tests {
		for _, st := range tc.Subtests {
			name := tc.ShortName + "/" + st.Name
			t.Run(name, func(t *testing.T) {
				if why, ok := anpSkips[name]; ok {
					skipped += len(st.Probes)
					t.Skip(why)
				}
				for _, pr := range st.Probes {
					probes++
					e := engineFor(t, pr.StateFile)
					s := e.Snapshot()
					cl := s.Pod(pr.ClientNamespace, pr.ClientPod)
					sv := s.Pod(pr.ServerNamespace, pr.ServerPod)
					if cl == nil || sv == nil {
						t.Fatalf("probe %d: client or server pod missing", pr.Seq)
					}
					port := pr.Port
					if pr.HostPortIndex != nil {
						port = int32(firstHostNetworkPort + *pr.HostPortIndex)
					}
					src, dst := PodPeer(s, cl), PodPeer(s, sv)
					d := e.Evaluate(Conn{Src: src, Dst: dst, Port: port, Protocol: corev1.Protocol(pr.Protocol)})
					if d.Allowed != pr.ExpectConnected {
						t.Errorf("probe %d (%s): %s → %s %s/%d: allowed=%v, want %v\n  egress: %s | %s\n  ingress: %s | %s",
							pr.Seq, pr.StateFile, src, dst, pr.Protocol, port, d.Allowed, pr.ExpectConnected,
							d.Egress.Why, d.Egress.Rule, d.Ingress.Why, d.Ingress.Rule)
					}
					if c := e.Conns(src, dst); c.Contains(corev1.Protocol(pr.Protocol), port) != d.Allowed {
						t.Errorf("probe %d: Conns %s and Evaluate %v disagree", pr.Seq, c, d.Allowed)
					}
				}
			})
		}
	}
	t.Logf("%s: %d probes checked, %d skipped", ver, probes, skipped)
}

var _ = fmt.Sprint
var _ = strings.Cut
