package capture

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

type ambientCase struct {
	Name          string         `json:"name"`
	Config        map[string]any `json:"config_overrides"`
	Pod           map[string]any `json:"pod_overrides"`
	GoldenIPv4    string         `json:"golden_ipv4"`
	GoldenIPv6    string         `json:"golden_ipv6"`
	NFTGoldenIPv4 string         `json:"nft_golden_ipv4"`
}

type ambientSuite struct {
	Cases []ambientCase `json:"cases"`
}

func ambientCfg(tc ambientCase, v6 bool) AmbientConfig {
	c := AmbientConfig{
		HostProbeSNATAddress:   netip.MustParseAddr("169.254.7.127"),
		HostProbeV6SNATAddress: netip.MustParseAddr("e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164"),
		EnableIPv6:             v6,
	}
	if b, ok := tc.Config["RedirectDNS"].(bool); ok {
		c.RedirectDNS = b
	}
	if b, ok := tc.Pod["IngressMode"].(bool); ok {
		c.IngressMode = b
	}
	if l, ok := tc.Pod["VirtualInterfaces"].([]any); ok {
		for _, v := range l {
			c.VirtualInterfaces = append(c.VirtualInterfaces, fmt.Sprint(v))
		}
	}
	if s, ok := tc.Pod["DNSProxy"].(string); ok {
		switch s {
		case "PodDNSDisabled":
			c.DNSProxy = PodDNSDisabled
		case "PodDNSEnabled":
			c.DNSProxy = PodDNSEnabled
		}
	}
	return c
}

func nftGoldenIPv6(p string) string { return strings.TrimSuffix(p, ".golden") + "_ipv6.golden" }

func TestAmbientInPodGoldens(t *testing.T) {
	var all map[string]ambientSuite
	readOracleJSON(t, &all, "istio-iptables", "derived", "cases.json")
	cases := all["ambient-cni-GetCommonInPodTestCases"].Cases
	if len(cases) == 0 {
		t.Fatal("no ambient in-pod cases in the oracle")
	}
	for _, tc := range cases {
		for _, v6 := range []bool{false, true} {
			fam := "IPv4"
			ipt, nft := tc.GoldenIPv4, tc.NFTGoldenIPv4
			if v6 {
				fam, ipt, nft = "dual-stack", tc.GoldenIPv6, nftGoldenIPv6(tc.NFTGoldenIPv4)
			}
			cfg := ambientCfg(tc, v6)
			t.Run(fmt.Sprintf("ambient in-pod %s %s iptables rules match the CNI golden", tc.Name, fam), func(t *testing.T) {
				v4s, v6s := AmbientIPTablesRestore(cfg)
				got := strings.TrimRight(v4s+v6s, "\n")
				want := stripSaveCommands(readOracle(t, "istio-iptables", ipt))
				if got != want {
					t.Errorf("%s\n--- got ---\n%s", lineDiff(want, got), got)
				}
			})
			t.Run(fmt.Sprintf("ambient in-pod %s %s nftables rules match the CNI golden", tc.Name, fam), func(t *testing.T) {
				var sb strings.Builder
				if err := RenderAmbientNFTables(&sb, cfg); err != nil {
					t.Fatal(err)
				}
				got := strings.TrimRight(sb.String(), "\n")
				want := strings.TrimRight(readOracle(t, "istio-iptables", nft), "\n")
				if got != want {
					t.Errorf("%s\n--- got ---\n%s", lineDiff(want, got), got)
				}
			})
		}
	}
}

func TestAmbientHostProbeGoldens(t *testing.T) {
	var all map[string]ambientSuite
	readOracleJSON(t, &all, "istio-iptables", "derived", "cases.json")
	for _, tc := range all["ambient-cni-GetCommonHostTestCases"].Cases {
		for _, v6 := range []bool{false, true} {
			fam := "IPv4"
			ipt, nft := tc.GoldenIPv4, tc.NFTGoldenIPv4
			if v6 {
				fam, ipt, nft = "dual-stack", tc.GoldenIPv6, nftGoldenIPv6(tc.NFTGoldenIPv4)
			}
			t.Run(fmt.Sprintf("ambient host %s %s iptables SNAT rule matches the CNI golden", tc.Name, fam), func(t *testing.T) {
				// Host tests use the fd16:... IPv6 SNAT address (oracle README).
				cfg := AmbientHostConfig{HostProbeSNATAddress: netip.MustParseAddr("169.254.7.127"),
					HostProbeV6SNATAddress: netip.MustParseAddr("fd16:9254:7127:1337:ffff:ffff:ffff:ffff"), EnableIPv6: v6}
				var sb strings.Builder
				if err := RenderAmbientHostIPTables(&sb, cfg); err != nil {
					t.Fatal(err)
				}
				got := strings.TrimRight(strings.ReplaceAll(sb.String(), "# ip6tables-restore\n", ""), "\n")
				want := stripSaveCommands(readOracle(t, "istio-iptables", ipt))
				if got != want {
					t.Errorf("%s\n--- got ---\n%s", lineDiff(want, got), got)
				}
			})
			t.Run(fmt.Sprintf("ambient host %s %s nftables SNAT rule matches the CNI golden", tc.Name, fam), func(t *testing.T) {
				// The nft host golden uses the e9ac:... address and a faked kubelet uid of 1000.
				cfg := AmbientHostConfig{HostProbeSNATAddress: netip.MustParseAddr("169.254.7.127"),
					HostProbeV6SNATAddress: netip.MustParseAddr("e9ac:1e77:90ca:399f:4d6d:ece2:2f9b:3164"), EnableIPv6: v6, KubeletUID: "1000"}
				var sb strings.Builder
				if err := RenderAmbientHostNFTables(&sb, cfg); err != nil {
					t.Fatal(err)
				}
				got := strings.TrimRight(sb.String(), "\n")
				want := strings.TrimRight(readOracle(t, "istio-iptables", nft), "\n")
				if got != want {
					t.Errorf("%s\n--- got ---\n%s", lineDiff(want, got), got)
				}
			})
		}
	}
}
