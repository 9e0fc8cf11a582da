package latency

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestEveryDefaultConstantIsCited(t *testing.T) {
	m := Default()
	for _, c := range m.Constants() {
		t.Run(c.Name+" has a value, a quality and a source that says what was measured", func(t *testing.T) {
			if c.Value <= 0 {
				t.Errorf("value %v: every cost in the model is positive", c.Value)
			}
			switch c.Quality {
			case QualityMeasured, QualityDerived, QualityBound, QualityPlaceholder:
			default:
				t.Errorf("quality %q: a default must be measured, derived, bound or placeholder", c.Quality)
			}
			if c.Source.Citation == "" || c.Source.Setup == "" {
				t.Errorf("source %+v: needs a citation and the setup that was measured", c.Source)
			}
			if c.Meaning == "" {
				t.Error("no one-line meaning")
			}
			if c.Quality != QualityMeasured && c.Source.Derivation == "" {
				t.Errorf("quality %s needs the derivation or the reasoning in Source.Derivation", c.Quality)
			}
			if c.Quality != QualityPlaceholder && c.Source.URL == "" && !strings.HasPrefix(c.Source.Citation, "kpath lab") {
				t.Errorf("a %s value needs a URL to its publication (or a kpath lab citation)", c.Quality)
			}
			if want := c.Name + " (" + string(c.Quality) + ")"; c.Label() != want {
				t.Errorf("label %q, want %q", c.Label(), want)
			}
		})
	}
}

func TestRegistryNamesEveryModelField(t *testing.T) {
	// Every Constant field of Model must be reachable by name, or calibration could never replace it.
	m := Default()
	seen := map[*Constant]string{}
	for _, f := range fields {
		p := f.get(m)
		if other, dup := seen[p]; dup {
			t.Errorf("names %q and %q point at the same field", other, f.name)
		}
		seen[p] = f.name
	}
	if want := 18; len(seen) != want {
		t.Errorf("registry has %d constants, Model has %d Constant fields: keep them in step", len(seen), want)
	}
}

func TestEachEstimateCarriesItsConstant(t *testing.T) {
	m := Default()
	sidecar := func(mesh string) func() Estimate {
		return func() Estimate { e, _ := m.SidecarHop(mesh); return e }
	}
	tests := []struct {
		name string
		got  func() Estimate
		want Constant
	}{
		{"a DNS server answer costs dns_server", m.DNSServer, m.DNSServerCost},
		{"one nftables lookup costs nftables_lookup", m.NFTablesLookup, m.NFTablesLookupCost},
		{"one IPVS lookup costs ipvs_lookup", m.IPVSLookup, m.IPVSLookupCost},
		{"Cilium socket LB costs ebpf_socket_lb", m.EBPFSocketLB, m.EBPFSocketLBCost},
		{"a conntrack lookup costs conntrack_lookup", m.ConntrackLookup, m.ConntrackLookupCost},
		{"a veth hop costs veth_hop", m.VethHop, m.VethHopCost},
		{"a bridge hop costs bridge_hop", m.BridgeHop, m.BridgeHopCost},
		{"VXLAN costs vxlan_encap", m.VXLANEncap, m.VXLANEncapCost},
		{"Geneve costs geneve_encap", m.GeneveEncap, m.GeneveEncapCost},
		{"IP-in-IP costs ipip_encap", m.IPIPEncap, m.IPIPEncapCost},
		{"WireGuard costs wireguard", m.WireGuard, m.WireGuardCost},
		{"IPsec costs ipsec", m.IPsec, m.IPsecCost},
		{"the underlay costs underlay", m.Underlay, m.UnderlayCost},
		{"a Linkerd sidecar costs linkerd_proxy", sidecar(MeshLinkerd), m.LinkerdProxyCost},
		{"an Istio sidecar costs istio_sidecar", sidecar(MeshIstioSidecar), m.IstioSidecarCost},
		{"a ztunnel costs ztunnel", m.ZtunnelHop, m.ZtunnelCost},
		{"a waypoint costs waypoint", m.WaypointHop, m.WaypointCost},
		{"one iptables rule costs iptables_rule once", func() Estimate { return m.IPTablesRules(1) }, m.IPTablesRuleCost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.got()
			if e.Duration() != tt.want.Value {
				t.Errorf("got %v, want %v", e.Duration(), tt.want.Value)
			}
			if !strings.Contains(e.Source, tt.want.Label()) {
				t.Errorf("source %q does not name %q", e.Source, tt.want.Label())
			}
		})
	}
}

func TestFunctionsGrowWithTheirCount(t *testing.T) {
	m := Default()
	counts := []int{0, 1, 2, 10, 100, 1000, 5000, 30000, 1 << 20}
	tests := []struct {
		name string
		f    func(n int) Estimate
	}{
		{"iptables cost grows with every rule walked in KUBE-SERVICES", m.IPTablesRules},
		{"DNS cost grows with every extra NXDOMAIN round trip", m.DNSNXDomains},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := int64(-1)
			for _, n := range counts {
				got := tt.f(n).Nanos
				if got <= prev {
					t.Errorf("n=%d: %d ns, not more than %d ns at the previous count", n, got, prev)
				}
				prev = got
			}
			if tt.f(0).Nanos != 0 {
				t.Errorf("zero of them costs %d ns, want 0", tt.f(0).Nanos)
			}
		})
	}
}

func TestFlatLookupsDoNotDependOnClusterSize(t *testing.T) {
	// The nftables verdict map and the IPVS table are hash lookups: the model takes no size argument for them,
	// and a 30,000-Service iptables walk must cost more than either.
	m := Default()
	tests := []struct {
		name string
		flat Estimate
	}{
		{"an nftables lookup beats walking 30,000 iptables rules", m.NFTablesLookup()},
		{"an IPVS lookup beats walking 30,000 iptables rules", m.IPVSLookup()},
		{"Cilium socket LB beats walking 30,000 iptables rules", m.EBPFSocketLB()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if walk := m.IPTablesRules(30000); tt.flat.Nanos >= walk.Nanos {
				t.Errorf("%v is not below %v", tt.flat.Duration(), walk.Duration())
			}
		})
	}
}

func TestDefaultsKeepTheOrderTheirSourcesPublish(t *testing.T) {
	m := Default()
	tests := []struct {
		name   string
		lo, hi Constant
	}{
		{"IPsec is not slower than WireGuard (Cilium TCP_RR, AES-NI)", m.IPsecCost, m.WireGuardCost},
		{"nftables is not slower than IPVS (KEP-3866 blog)", m.NFTablesLookupCost, m.IPVSLookupCost},
		{"IP-in-IP is cheaper than VXLAN (DaoCloud, Calico IPIP vs VXLAN)", m.IPIPEncapCost, m.VXLANEncapCost},
		{"a ztunnel is cheaper than an Envoy sidecar (Istio docs)", m.ZtunnelCost, m.IstioSidecarCost},
		{"a veth hop is cheaper than the wire between nodes (DaoCloud)", m.VethHopCost, m.UnderlayCost},
		{"a conntrack hit is cheaper than a veth hop", m.ConntrackLookupCost, m.VethHopCost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.lo.Value > tt.hi.Value {
				t.Errorf("%s %v > %s %v", tt.lo.Name, tt.lo.Value, tt.hi.Name, tt.hi.Value)
			}
		})
	}
}

func TestBadCountsNeverPanic(t *testing.T) {
	m := Default()
	tests := []struct {
		name string
		got  Estimate
		want int64
	}{
		{"a negative rule count costs nothing", m.IPTablesRules(-3), 0},
		{"a negative NXDOMAIN count costs nothing", m.DNSNXDomains(-1), 0},
		{"the largest rule count saturates instead of overflowing", m.IPTablesRules(math.MaxInt), math.MaxInt64},
		{"the largest NXDOMAIN count saturates instead of overflowing", m.DNSNXDomains(math.MaxInt), math.MaxInt64},
		{"a sum of saturated estimates stays saturated", Sum(m.IPTablesRules(math.MaxInt), m.VethHop()), math.MaxInt64},
		{"a sum with a negative part does not wrap", Sum(Estimate{Nanos: math.MinInt64}, Estimate{Nanos: -1}), math.MinInt64},
		{"the zero model costs nothing", (&Model{}).VethHop(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got.Nanos != tt.want {
				t.Errorf("got %d ns, want %d", tt.got.Nanos, tt.want)
			}
		})
	}
	if src := m.IPTablesRules(-3).Source; !strings.HasPrefix(src, "0 × ") {
		t.Errorf("negative count source %q should show the 0 it used", src)
	}
	if lbl := (Model{}).VethHopCost.Label(); lbl != " (unrated)" {
		t.Errorf("a zero constant's label is %q", lbl)
	}
}

func TestSidecarHopSaysUnknownForMeshesWithoutASidecar(t *testing.T) {
	m := Default()
	tests := []struct {
		mesh   string
		wantOK bool
	}{
		{MeshLinkerd, true},
		{MeshIstioSidecar, true},
		{"istio-ambient", false},
		{"cilium", false},
		{"none", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run("mesh "+tt.mesh, func(t *testing.T) {
			e, ok := m.SidecarHop(tt.mesh)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if ok {
				return
			}
			if e.Nanos != 0 || !strings.HasPrefix(e.Source, "unknown: ") || !strings.Contains(e.Source, `"`+tt.mesh+`"`) {
				t.Errorf("got %+v, want 0 ns and an unknown source naming the mesh", e)
			}
		})
	}
}

func TestDNSQueryIsServerPlusTheRoundTripAcrossNodes(t *testing.T) {
	m := Default()
	want := m.DNSServerCost.Value + 4*m.VethHopCost.Value + 2*m.UnderlayCost.Value
	if got := m.DNSQuery().Duration(); got != want {
		t.Errorf("DNSQuery %v, want %v", got, want)
	}
	if got := m.DNSNXDomain().Duration(); got != want {
		t.Errorf("one NXDOMAIN round trip %v, want %v", got, want)
	}
	if got, want := m.DNSNXDomains(3).Duration(), 3*want; got != want {
		t.Errorf("three NXDOMAIN round trips %v, want %v", got, want)
	}
	src := m.DNSQuery().Source
	for _, part := range []string{"dns_server (derived)", "4 × veth_hop (derived)", "2 × underlay (derived)"} {
		if !strings.Contains(src, part) {
			t.Errorf("source %q lacks %q", src, part)
		}
	}
}

func TestSumJoinsSources(t *testing.T) {
	got := Sum(Estimate{Nanos: 1, Source: "a"}, Estimate{Nanos: 2}, Estimate{Nanos: 3, Source: "b"})
	if got.Nanos != 6 || got.Source != "a + b" {
		t.Errorf("got %+v, want 6 ns from \"a + b\"", got)
	}
	if got := Sum(); got != (Estimate{}) {
		t.Errorf("empty sum %+v", got)
	}
}

func TestLookupFindsConstantsByName(t *testing.T) {
	m := Default()
	for _, name := range Names() {
		c, ok := m.Lookup(name)
		if !ok || c.Name != name {
			t.Errorf("Lookup(%q) = %+v, %v", name, c.Name, ok)
		}
	}
	if _, ok := m.Lookup("veth"); ok {
		t.Error("Lookup found a constant that does not exist")
	}
}

func TestDefaultReturnsAFreshCopy(t *testing.T) {
	a := Default()
	a.VethHopCost.Value = time.Hour
	if b := Default(); b.VethHopCost.Value == time.Hour {
		t.Error("changing one Default() changed the next")
	}
}

func TestFixedEstimatesDoNotAllocate(t *testing.T) {
	m := Default()
	tests := []struct {
		name string
		f    func()
		max  float64
	}{
		{"a veth hop", func() { _ = m.VethHop() }, 0},
		{"an nftables lookup", func() { _ = m.NFTablesLookup() }, 0},
		{"a sidecar hop", func() { _, _ = m.SidecarHop(MeshLinkerd) }, 0},
		{"a DNS query", func() { _ = m.DNSQuery() }, 0},
		{"an iptables walk builds one source string", func() { _ = m.IPTablesRules(412) }, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testing.AllocsPerRun(100, tt.f); got > tt.max {
				t.Errorf("%v allocations, want at most %v", got, tt.max)
			}
		})
	}
}
