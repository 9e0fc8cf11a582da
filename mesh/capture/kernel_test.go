package capture

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// freshNetns creates a uniquely named network namespace for the test and deletes it in Cleanup.
// Nothing here touches the root namespace: every command runs through `ip netns exec`.
func freshNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real-kernel check needs root (ip netns add)")
	}
	for _, tool := range []string{"ip", "iptables-restore", "ip6tables-restore", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "kpathmesh-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", name, err, out)
		}
	})
	return name
}

func inNetns(t *testing.T, ns, stdin string, argv ...string) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s rejected the rendered rules: %v\n%s\n--- input ---\n%s", strings.Join(argv, " "), err, out, stdin)
	}
}

// kernelConfigs is every configuration the oracles exercise plus the injector defaults.
func kernelConfigs(t *testing.T) map[string]IstioConfig {
	var all map[string]istioCaptureSuite
	readOracleJSON(t, &all, "istio-iptables", "derived", "cases.json")
	out := map[string]IstioConfig{}
	s := all["istio-iptables"]
	for _, tc := range append(s.Cases, extraIstioCaptureCases...) {
		out[tc.Name] = istioTestConfig(t, s.BaseConfig, tc.ConfigOverrides)
	}
	d := DefaultIstioConfig()
	d.EnableIPv6, d.RedirectDNS, d.DNSServersV4 = true, true, []string{"10.96.0.10"}
	out["injector defaults, dual-stack with DNS capture"] = d
	d = DefaultIstioConfig()
	d.InboundInterceptionMode, d.EnableIPv6, d.CaptureAllDNS, d.RedirectDNS, d.ExcludeInterfaces = InterceptTProxy, true, true, true, "eth9"
	out["TPROXY, dual-stack, capture-all DNS, excluded interface"] = d
	return out
}

func TestRenderedRulesLoadInAFreshNetns(t *testing.T) {
	cfgs := kernelConfigs(t)
	ns := freshNetns(t)
	for name, c := range cfgs {
		missing := missingGroups(c)
		t.Run(fmt.Sprintf("istio %s: iptables-restore --test accepts the v4 and v6 input", name), func(t *testing.T) {
			if missing != "" {
				t.Skipf("group name(s) %s are resolved against /etc/group when the rules load; this machine has none (the upstream golden uses them)", missing)
			}
			v4, v6, err := IstioIPTablesRestore(c)
			if err != nil {
				t.Fatal(err)
			}
			inNetns(t, ns, v4, "iptables-restore", "--test", "--noflush")
			if v6 != "" {
				inNetns(t, ns, v6, "ip6tables-restore", "--test", "--noflush")
			}
		})
		t.Run(fmt.Sprintf("istio %s: nft -c accepts the nftables script", name), func(t *testing.T) {
			if missing != "" {
				t.Skipf("group name(s) %s are resolved against /etc/group when the rules load; this machine has none (the upstream golden uses them)", missing)
			}
			var sb strings.Builder
			if err := RenderIstioNFTables(&sb, c); err != nil {
				t.Fatal(err)
			}
			inNetns(t, ns, sb.String(), "nft", "-c", "-f", "-")
		})
	}
	var amb map[string]ambientSuite
	readOracleJSON(t, &amb, "istio-iptables", "derived", "cases.json")
	for _, tc := range amb["ambient-cni-GetCommonInPodTestCases"].Cases {
		for _, v6 := range []bool{false, true} {
			c := ambientCfg(tc, v6)
			t.Run(fmt.Sprintf("ambient %s ipv6=%v: iptables-restore and nft -c accept the in-pod rules", tc.Name, v6), func(t *testing.T) {
				v4s, v6s := AmbientIPTablesRestore(c)
				inNetns(t, ns, v4s, "iptables-restore", "--test", "--noflush")
				if v6s != "" {
					inNetns(t, ns, v6s, "ip6tables-restore", "--test", "--noflush")
				}
				var sb strings.Builder
				if err := RenderAmbientNFTables(&sb, c); err != nil {
					t.Fatal(err)
				}
				inNetns(t, ns, sb.String(), "nft", "-c", "-f", "-")
			})
		}
	}
	t.Run("ambient host probe SNAT: nft -c accepts the rules once the agent's probe sets exist", func(t *testing.T) {
		var sb strings.Builder
		c := AmbientHostConfig{HostProbeSNATAddress: netip.MustParseAddr("169.254.7.127"),
			HostProbeV6SNATAddress: netip.MustParseAddr("fd16:9254:7127:1337:ffff:ffff:ffff:ffff"), EnableIPv6: true, KubeletUID: "0"}
		sb.WriteString("add table inet " + NFTAmbientNatTable + "\n")
		sb.WriteString("add set inet " + NFTAmbientNatTable + " istio-inpod-probes-v4 { type ipv4_addr ; }\n")
		sb.WriteString("add set inet " + NFTAmbientNatTable + " istio-inpod-probes-v6 { type ipv6_addr ; }\n")
		if err := RenderAmbientHostNFTables(&sb, c); err != nil {
			t.Fatal(err)
		}
		inNetns(t, ns, sb.String(), "nft", "-c", "-f", "-")
	})
	for name, p := range loadLinkerdLab(t) {
		if p.cfg == nil {
			continue
		}
		t.Run(fmt.Sprintf("linkerd lab pod %s: iptables-restore --test accepts the rendered nat table", name), func(t *testing.T) {
			var sb strings.Builder
			if err := RenderLinkerdIPTables(&sb, *p.cfg); err != nil {
				t.Fatal(err)
			}
			inNetns(t, ns, sb.String(), "iptables-restore", "--test")
		})
	}
}

// missingGroups lists non-numeric owner groups of c that this machine cannot resolve.
func missingGroups(c IstioConfig) string {
	var missing []string
	for _, g := range append(splitList(c.OwnerGroupsInclude), splitList(c.OwnerGroupsExclude)...) {
		if g == "*" || isNumeric(g) {
			continue
		}
		if err := exec.Command("getent", "group", g).Run(); err != nil {
			missing = append(missing, g)
		}
	}
	return strings.Join(missing, ",")
}
