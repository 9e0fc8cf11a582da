package kubeproxy

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// sameAsNewIndex checks that the node view of a Shared index answers every flow and renders every
// ruleset exactly as a per-node NewIndex does.
func sameAsNewIndex(t *testing.T, sh *Shared, cfg Config, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice, flows []Flow) {
	t.Helper()
	want, err := NewIndex(cfg, svcs, slices)
	if err != nil {
		t.Fatal(err)
	}
	got, err := sh.Node(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got.NumPorts() != want.NumPorts() || !reflect.DeepEqual(got.Notes, want.Notes) {
		t.Fatalf("node %s: %d ports / notes %q, want %d / %q", cfg.NodeName, got.NumPorts(), got.Notes, want.NumPorts(), want.Notes)
	}
	for _, f := range flows {
		g, w := got.Translate(f), want.Translate(f)
		if !reflect.DeepEqual(g, w) {
			t.Errorf("node %s, %s -> %s:%d/%s:\n got  %+v\n want %+v", cfg.NodeName, f.Src, f.Dst, f.DstPort, f.Protocol, g, w)
		}
	}
	render := func(idx *Index) string {
		var b strings.Builder
		var err error
		if cfg.Mode == ModeIPTables {
			err = idx.RenderIPTables(&b)
		} else {
			err = idx.RenderNFTables(&b)
		}
		if err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	if g, w := render(got), render(want); g != w {
		t.Errorf("node %s: node view renders differently (- NewIndex, + node view):\n%s", cfg.NodeName, lineDiff(strings.Split(w, "\n"), strings.Split(g, "\n")))
	}
}

// flowsFor sends packets from a pod, a node and the outside to every VIP, NodePort and LB IP of svcs.
func flowsFor(svcs []*corev1.Service, cfg Config) []Flow {
	srcs := []netip.Addr{netip.MustParseAddr("10.0.0.5"), cfg.NodeIP, netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("198.18.0.1")}
	var out []Flow
	add := func(dst netip.Addr, port int32, proto corev1.Protocol) {
		for _, s := range srcs {
			if s.IsValid() && dst.IsValid() && s.Is4() == dst.Is4() {
				out = append(out, Flow{Src: s, Dst: dst, DstPort: uint16(port), Protocol: proto})
			}
		}
	}
	for _, svc := range svcs {
		for _, p := range svc.Spec.Ports {
			for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ExternalIPs...) {
				a, _ := netip.ParseAddr(ip)
				add(a, p.Port, p.Protocol)
				add(a, p.Port+1, p.Protocol) // a port nobody exposes
			}
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				a, _ := netip.ParseAddr(ing.IP)
				add(a, p.Port, p.Protocol)
			}
			if p.NodePort != 0 {
				add(cfg.NodeIP, p.NodePort, p.Protocol)
			}
			if svc.Spec.HealthCheckNodePort != 0 {
				add(cfg.NodeIP, svc.Spec.HealthCheckNodePort, corev1.ProtocolTCP)
			}
		}
	}
	return out
}

// hintedCluster is synthCluster with topology hints, terminating endpoints, eTP Local LoadBalancers
// and zones, so categorisation differs from node to node.
func hintedCluster() ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	svcs, slices := synthCluster(200, 6)
	for i, es := range slices {
		for j := range es.Endpoints {
			e := &es.Endpoints[j]
			zone := fmt.Sprintf("zone-%d", j%3)
			e.Zone = &zone
			switch i % 5 {
			case 0: // every endpoint hinted for its zone
				e.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: zone}}}
			case 1: // node hints
				e.Hints = &discoveryv1.EndpointHints{ForNodes: []discoveryv1.ForNode{{Name: *e.NodeName}}}
			case 2: // half not ready, one terminating but serving
				if j%2 == 0 {
					e.Conditions.Ready = ptr(false)
					e.Conditions.Serving = ptr(j == 0)
					e.Conditions.Terminating = ptr(j == 0)
				}
			case 3: // none ready: serving-terminating fallback
				e.Conditions.Ready = ptr(false)
				e.Conditions.Serving = ptr(true)
				e.Conditions.Terminating = ptr(true)
			}
		}
		if i%7 == 0 {
			svcs[i].Spec.Type = corev1.ServiceTypeLoadBalancer
			svcs[i].Spec.Ports[0].NodePort = int32(31000 + i)
			svcs[i].Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			svcs[i].Spec.HealthCheckNodePort = int32(32000 + i)
			svcs[i].Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).String()}}
		}
		if i%11 == 0 {
			svcs[i].Spec.ExternalIPs = []string{netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}).String()}
		}
	}
	return svcs, slices
}

func TestNodeViewsOfASharedIndexMatchPerNodeIndexes(t *testing.T) {
	svcs, slices := hintedCluster()
	for _, mode := range []Mode{ModeNFTables, ModeIPTables} {
		sh, err := NewShared(mode, corev1.IPv4Protocol, svcs, slices)
		if err != nil {
			t.Fatal(err)
		}
		nodes := []string{"node-0", "node-7", "node-19", "node-not-in-any-slice", ""}
		for i, n := range nodes {
			cfg := synthConfig(mode)
			cfg.NodeName = n
			cfg.Zone = fmt.Sprintf("zone-%d", i%3)
			cfg.NodeIP = netip.AddrFrom4([4]byte{192, 168, 0, byte(2 + i)})
			cfg.NodeIPs = []netip.Addr{cfg.NodeIP}
			if i%2 == 1 {
				cfg.NodePortAddresses = nil // every local address
			} else {
				cfg.NodePortAddresses = []netip.Prefix{netip.PrefixFrom(cfg.NodeIP, 32)}
			}
			t.Run(fmt.Sprintf("%s mode, node %q: every flow and the rendered ruleset agree", mode, n), func(t *testing.T) {
				sameAsNewIndex(t, sh, cfg, svcs, slices, flowsFor(svcs, cfg))
			})
		}
	}
}

func TestNodeViewsMatchPerNodeIndexesOnUpstreamInputs(t *testing.T) {
	dir := oracleDir(t)
	for _, mode := range []Mode{ModeNFTables, ModeIPTables} {
		for _, rec := range loadCases(t, dir, string(mode)) {
			if rec.Files["input"] == "" || (rec.Kind != "packet_flows" && rec.Kind != "ruleset") {
				continue
			}
			t.Run(string(mode)+"/"+rec.ID, func(t *testing.T) {
				cfg, svcs, slices := loadInput(t, filepath.Join(dir, "derived", rec.Files["input"]), rec, mode)
				c := cfg
				if err := c.normalize(); err != nil {
					t.Fatal(err)
				}
				sh, err := NewShared(mode, c.Family, svcs, slices)
				if err != nil {
					t.Fatal(err)
				}
				flows := flowsFor(svcs, c)
				for _, f := range rec.Flows {
					flows = append(flows, toFlow(t, f))
				}
				sameAsNewIndex(t, sh, cfg, svcs, slices, flows)
				if rec.Kind == "packet_flows" {
					idx, _ := sh.Node(cfg)
					for _, f := range rec.Flows {
						if _, skip := flowRecordSkips[rec.ID]; !skip {
							checkFlow(t, idx, f)
						}
					}
				}
			})
		}
	}
}

func TestSharedNodeRejectsAnotherFamilyOrMode(t *testing.T) {
	sh, err := NewShared(ModeNFTables, corev1.IPv4Protocol, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"an IPv6 node cannot use an IPv4 index", Config{NodeName: "n", NodeIP: netip.MustParseAddr("2001:db8::1")}, "IPv6"},
		{"an iptables node cannot use an nftables index", Config{NodeName: "n", Mode: ModeIPTables}, "iptables"},
		{"an unknown mode is a config error", Config{NodeName: "n", Mode: "ipvs"}, "unknown mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := sh.Node(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := NewShared("ipvs", "", nil, nil); err == nil {
		t.Fatal("NewShared accepted mode ipvs")
	}
}

func TestNodeViewsAreSafeForConcurrentUse(t *testing.T) {
	svcs, slices := hintedCluster()
	sh, err := NewShared(ModeNFTables, corev1.IPv4Protocol, svcs, slices)
	if err != nil {
		t.Fatal(err)
	}
	cfg := synthConfig(ModeNFTables)
	idx, err := sh.Node(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Flow]Result{}
	ref, _ := NewIndex(cfg, svcs, slices)
	flows := flowsFor(svcs, cfg)
	for _, f := range flows {
		want[f] = ref.Translate(f)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			other, _ := sh.Node(Config{NodeName: fmt.Sprintf("node-%d", g+1), NodeIP: netip.MustParseAddr("192.168.0.9")})
			for _, f := range flows {
				other.Translate(f)
				if r := idx.Translate(f); !reflect.DeepEqual(r, want[f]) {
					t.Errorf("concurrent translate of %v differs", f)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCachedEndpointChoicesNeverLeakBetweenPackets(t *testing.T) {
	svcs, slices := synthCluster(4, 5)
	// Endpoints of svc0 are 10.0.0.0 … 10.0.0.4 on node-0 … node-4; the config's node is node-0.
	vip := netip.MustParseAddr("172.30.0.0")
	flows := []struct {
		name string
		src  string
	}{
		{"a pod that is not an endpoint gets the plain list", "10.0.9.9"},
		{"the endpoint itself reaching its Service is hairpin-masqueraded", "10.0.0.0"},
		{"a pod after a hairpin packet gets the plain list again", "10.0.9.9"},
		{"a source outside the pod CIDR is marked for masquerade", "192.168.7.7"},
		{"a pod after a marked packet is not masqueraded", "10.0.9.8"},
	}
	for _, mode := range []Mode{ModeNFTables, ModeIPTables} {
		idx, err := NewIndex(synthConfig(mode), svcs, slices)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range flows {
			t.Run(string(mode)+": "+f.name, func(t *testing.T) {
				fl := Flow{Src: netip.MustParseAddr(f.src), Dst: vip, DstPort: 80}
				fresh, _ := NewIndex(synthConfig(mode), svcs, slices)
				if got, want := idx.Translate(fl), fresh.Translate(fl); !reflect.DeepEqual(got, want) {
					t.Fatalf("warm index:\n got  %+v\n want %+v", got, want)
				}
			})
		}
	}
}
