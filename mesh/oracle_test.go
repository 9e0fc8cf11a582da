package mesh

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/internal/oracle"
)

// TestJourneyInterceptionAgreesWithLinkerdProxyInit loads linkerd2-proxy-init's integration lab as a snapshot and
// checks that the mesh model's interception walk (membership from the pod's linkerd-init args → rules rendered as
// proxy-init writes them → netfilter walk) sends every behaviour case to the listener the upstream test observed.
func TestJourneyInterceptionAgreesWithLinkerdProxyInit(t *testing.T) {
	dir := oracle.Dir(t, "linkerd-proxy-init")
	labPath := filepath.Join(dir, "proxy-init", "integration", "iptables", "iptablestest-lab.yaml")
	data, err := os.ReadFile(labPath)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := cluster.Load([]cluster.Source{cluster.BytesSource("iptablestest-lab.yaml", data)}, cluster.Options{DefaultNamespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	m := New(snap)
	var cases struct {
		Cases []struct {
			Test, Subtest, Target, Expect string
			Port                          int
			ExpectDetail                  string `json:"expect_detail"`
		} `json:"cases"`
	}
	raw, err := os.ReadFile(filepath.Join(dir, "derived", "integration_behaviour_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	client := netip.MustParseAddrPort("10.244.0.99:40000")
	pass := 0
	for _, tc := range cases.Cases {
		t.Run(fmt.Sprintf("%s %s port %d gives %s", tc.Test, tc.Subtest, tc.Port, tc.Expect), func(t *testing.T) {
			name, viaSvc := strings.CutPrefix(tc.Target, "svc-")
			name = strings.TrimSuffix(name, " (pod IP)")
			var pod = snap.Pod("default", name)
			if pod == nil {
				for _, p := range snap.Pods {
					if p.Name == name {
						pod = p
					}
				}
			}
			if pod == nil {
				t.Fatalf("target %q not in the lab snapshot", tc.Target)
			}
			listeners := map[int]string{}
			for _, c := range pod.Spec.Containers {
				port, proxy := 0, false
				for _, e := range c.Env {
					if e.Name == "PORT" {
						port, _ = strconv.Atoi(e.Value)
					}
					proxy = proxy || e.Name == "AM_I_THE_PROXY"
				}
				if proxy {
					listeners[port] = "proxy"
				} else {
					listeners[port] = fmt.Sprintf("%s:%d", pod.Name, port)
				}
			}
			got, answer := "success", ""
			svcHas := false
			if viaSvc {
				if s := snap.Service(pod.Namespace, "svc-"+name); s != nil {
					for _, sp := range s.Spec.Ports {
						svcHas = svcHas || int(sp.Port) == tc.Port
					}
				}
			}
			if viaSvc && !svcHas {
				got = "connect-fail"
			} else {
				ip := netip.MustParseAddr(pod.Status.PodIP)
				port := tc.Port
				if m.Member(pod).Capture != nil {
					ic := m.Intercept(pod, Inbound, "TCP", client, netip.AddrPortFrom(ip, uint16(tc.Port)), 0)
					if ic.Unknown != "" {
						t.Fatalf("interception walk undecided: %s", ic.Unknown)
					}
					port = int(ic.To.Port())
				}
				var ok bool
				if answer, ok = listeners[port]; !ok {
					got = "connect-fail"
				}
			}
			if got != tc.Expect {
				t.Fatalf("want %s, the journey's interception step predicts %s", tc.Expect, got)
			}
			if strings.Contains(tc.ExpectDetail, "not the proxy") && (answer == "proxy" || !strings.Contains(answer, strconv.Itoa(tc.Port))) {
				t.Errorf("want the container to answer (%s), predicted %q", tc.ExpectDetail, answer)
			}
			pass++
		})
	}
	t.Logf("%d/%d linkerd-proxy-init behaviour cases agree", pass, len(cases.Cases))
}
