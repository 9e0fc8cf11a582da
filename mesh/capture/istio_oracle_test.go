package capture

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

type istioCaptureCase struct {
	Name            string                     `json:"name"`
	ConfigOverrides map[string]json.RawMessage `json:"config_overrides"`
	Golden          string                     `json:"golden"`
}

type istioCaptureSuite struct {
	BaseConfig map[string]json.RawMessage `json:"base_config"`
	Cases      []istioCaptureCase         `json:"cases"`
}

// applyIstioOverrides sets IstioConfig fields named as in istio's tools/common/config.Config.
func applyIstioOverrides(t *testing.T, c *IstioConfig, ov map[string]json.RawMessage) {
	t.Helper()
	for k, raw := range ov {
		var s string
		var b bool
		var l []string
		str := func() string {
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("override %s: %v", k, err)
			}
			return s
		}
		boolean := func() bool {
			if err := json.Unmarshal(raw, &b); err != nil {
				t.Fatalf("override %s: %v", k, err)
			}
			return b
		}
		list := func() []string {
			if err := json.Unmarshal(raw, &l); err != nil {
				t.Fatalf("override %s: %v", k, err)
			}
			return l
		}
		switch k {
		case "ProxyPort":
			c.ProxyPort = str()
		case "InboundCapturePort":
			c.InboundCapturePort = str()
		case "InboundTunnelPort":
			c.InboundTunnelPort = str()
		case "ProxyUID":
			c.ProxyUID = str()
		case "ProxyGID":
			c.ProxyGID = str()
		case "InboundTProxyMark":
			c.InboundTProxyMark = str()
		case "InboundTProxyRouteTable":
			c.InboundTProxyRouteTable = str()
		case "OwnerGroupsInclude":
			c.OwnerGroupsInclude = str()
		case "OwnerGroupsExclude":
			c.OwnerGroupsExclude = str()
		case "HostIPv4LoopbackCidr":
			c.HostIPv4LoopbackCidr = str()
		case "InboundPortsInclude":
			c.InboundPortsInclude = str()
		case "InboundPortsExclude":
			c.InboundPortsExclude = str()
		case "OutboundPortsInclude":
			c.OutboundPortsInclude = str()
		case "OutboundPortsExclude":
			c.OutboundPortsExclude = str()
		case "OutboundIPRangesInclude":
			c.OutboundIPRangesInclude = str()
		case "OutboundIPRangesExclude":
			c.OutboundIPRangesExclude = str()
		case "RerouteVirtualInterfaces", "KubeVirtInterfaces":
			c.RerouteVirtualInterfaces = str()
		case "ExcludeInterfaces":
			c.ExcludeInterfaces = str()
		case "InboundInterceptionMode":
			c.InboundInterceptionMode = InterceptionMode(str())
		case "EnableIPv6":
			c.EnableIPv6 = boolean()
		case "RedirectDNS":
			c.RedirectDNS = boolean()
		case "CaptureAllDNS":
			c.CaptureAllDNS = boolean()
		case "DropInvalid":
			c.DropInvalid = boolean()
		case "DNSServersV4":
			c.DNSServersV4 = list()
		case "DNSServersV6":
			c.DNSServersV6 = list()
		case "DryRun":
			// only stops the tool from running commands; the golden records them anyway
		default:
			t.Fatalf("override %q is not modelled by IstioConfig", k)
		}
	}
}

// istioTestConfig is istio's constructTestConfig(): every other field at its Go zero value.
func istioTestConfig(t *testing.T, base map[string]json.RawMessage, ov map[string]json.RawMessage) IstioConfig {
	c := IstioConfig{}
	applyIstioOverrides(t, &c, base)
	applyIstioOverrides(t, &c, ov)
	return c
}

// stripSaveCommands removes the "iptables-save"/"ip6tables-save" command lines the upstream stub records
// around the restore inputs; what remains is the v4 restore input followed by the v6 one.
func stripSaveCommands(golden string) string {
	var out []string
	for _, l := range strings.Split(golden, "\n") {
		if l == "iptables-save" || l == "ip6tables-save" || l == "" {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// extraIstioCaptureCases are goldens present in the oracle without a derived config; their config is the
// one in upstream run_test.go (a fact about how the golden was produced, not tuned to our output).
var extraIstioCaptureCases = []istioCaptureCase{
	{Name: "kube-virt-interfaces", ConfigOverrides: map[string]json.RawMessage{
		"RerouteVirtualInterfaces": json.RawMessage(`"eth1,eth2"`), "OutboundIPRangesInclude": json.RawMessage(`"*"`)}},
}

func TestIstioIPTablesGoldens(t *testing.T) {
	var all map[string]istioCaptureSuite
	readOracleJSON(t, &all, "istio-iptables", "derived", "cases.json")
	suite := all["istio-iptables"]
	cases := suite.Cases
	for _, e := range extraIstioCaptureCases {
		e.Golden = "tools/istio-iptables/pkg/capture/testdata/" + e.Name + ".golden"
		cases = append(cases, e)
	}
	if len(cases) < 20 {
		t.Fatalf("expected the oracle's istio-iptables cases, found %d", len(cases))
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("istio-iptables %s renders the golden restore input", tc.Name), func(t *testing.T) {
			cfg := istioTestConfig(t, suite.BaseConfig, tc.ConfigOverrides)
			v4, v6, err := IstioIPTablesRestore(cfg)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.TrimRight(v4+v6, "\n")
			want := stripSaveCommands(readOracle(t, "istio-iptables", tc.Golden))
			if got != want {
				t.Errorf("%s\n--- got ---\n%s", lineDiff(want, got), got)
			}
		})
	}
}

func TestIstioNFTablesGoldens(t *testing.T) {
	var all map[string]istioCaptureSuite
	readOracleJSON(t, &all, "istio-iptables", "derived", "cases.json")
	suite := all["istio-nftables"]
	cases := suite.Cases
	for _, e := range extraIstioCaptureCases {
		e.Golden = "tools/istio-nftables/pkg/capture/testdata/" + e.Name + ".golden"
		cases = append(cases, e)
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("istio-nftables %s renders the golden transaction", tc.Name), func(t *testing.T) {
			cfg := istioTestConfig(t, suite.BaseConfig, tc.ConfigOverrides)
			var sb strings.Builder
			if err := RenderIstioNFTables(&sb, cfg); err != nil {
				t.Fatal(err)
			}
			got := strings.TrimRight(sb.String(), "\n")
			want := strings.TrimRight(readOracle(t, "istio-iptables", tc.Golden), "\n")
			if got != want {
				t.Errorf("%s\n--- got ---\n%s", lineDiff(want, got), got)
			}
		})
	}
}
