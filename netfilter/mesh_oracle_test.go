package netfilter

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// builderFixtureReason explains why istio's rule-builder goldens may report problems: they are unit-test fixtures
// with placeholder arguments, not rulesets.
const builderFixtureReason = "istio builder unit-test fixture: placeholder arguments (-f foo -b bar) in a table named \"table\""

func TestIstioGoldensParse(t *testing.T) {
	root := filepath.Join(oraclesDir(t), "istio-iptables")
	var files []string
	for _, dir := range []string{"tools/istio-iptables/pkg/capture/testdata", "tools/istio-nftables/pkg/capture/testdata",
		"tools/istio-iptables/pkg/builder/testdata", "tools/istio-nftables/pkg/builder/testdata",
		"cni/pkg/iptables/testdata", "cni/pkg/nftables/testdata"} {
		m, _ := filepath.Glob(filepath.Join(root, dir, "*.golden"))
		files = append(files, m...)
	}
	if len(files) < 60 {
		t.Fatalf("found only %d istio goldens under %s", len(files), root)
	}
	clean, fixtures := 0, 0
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			rs, _, err := Parse(data)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			rules := 0
			for _, tb := range rs.Tables {
				for _, c := range tb.Order {
					rules += len(c.Rules)
				}
			}
			if len(rs.Tables) == 0 {
				t.Fatalf("no tables parsed")
			}
			if strings.Contains(rel, "/builder/") && strings.Contains(rel, "istio-iptables") {
				fixtures++
				for _, p := range rs.Problems {
					if !strings.Contains(p.Text, "foo") && !strings.Contains(p.Text, "fu") && !strings.Contains(p.Text, "table") {
						t.Errorf("unexpected problem outside the placeholders (%s): %s", builderFixtureReason, p)
					}
				}
				return
			}
			for _, p := range rs.Problems {
				t.Errorf("problem: %s", p)
			}
			if rules == 0 && !strings.Contains(rel, "add-table-chain") {
				t.Errorf("no rules parsed")
			}
			clean++
		})
	}
	t.Logf("istio goldens: %d parse with no problems, %d builder fixtures parsed (%s)", clean, fixtures, builderFixtureReason)
}

func TestMeshRedirectWalks(t *testing.T) {
	root := oraclesDir(t)
	podIP := netip.MustParseAddr("10.20.0.5")
	node := &Node{LocalAddrs: []netip.Addr{podIP}, Routes: []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Oif: "eth0"}},
		IfAddrs: map[string]netip.Addr{"eth0": podIP}}
	linkerdCmds := func(id string) string {
		data, err := os.ReadFile(filepath.Join(root, "linkerd-proxy-init", "derived", "unit_cases.json"))
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Cases []struct {
				ID       string     `json:"id"`
				Existing *string    `json:"existing_rules"`
				Want     [][]string `json:"want_commands"`
			} `json:"command_sequence_cases"`
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatal(err)
		}
		for _, c := range d.Cases {
			if c.ID != id {
				continue
			}
			var b strings.Builder
			if c.Existing != nil {
				ex, err := os.ReadFile(filepath.Join(root, "linkerd-proxy-init", "derived", *c.Existing))
				if err != nil {
					t.Fatal(err)
				}
				b.Write(ex)
				b.WriteString("\n")
			}
			for _, argv := range c.Want {
				b.WriteString(strings.Join(quoteArgs(argv), " ") + "\n")
			}
			return b.String()
		}
		t.Fatalf("linkerd case %s not found", id)
		return ""
	}
	file := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	cases := []struct {
		name, rules, packet string
		wantDst             string // "" = unchanged
		wantDelivery        string
	}{
		{"istio iptables: outbound TCP from the app to an included range is redirected to 15001",
			file("istio-iptables/tools/istio-iptables/pkg/capture/testdata/ipnets.golden"),
			"tcp 10.20.0.5:40000 -> 10.1.2.3:80 uid 1000 gid 1000", "127.0.0.1:15001", "local"},
		{"istio iptables: outbound TCP from the proxy (uid 1337) is not redirected",
			file("istio-iptables/tools/istio-iptables/pkg/capture/testdata/ipnets.golden"),
			"tcp 10.20.0.5:40000 -> 10.1.2.3:80 uid 1337 gid 1337", "", "out"},
		{"istio iptables: outbound TCP outside the included range is not redirected",
			file("istio-iptables/tools/istio-iptables/pkg/capture/testdata/ipnets.golden"),
			"tcp 10.20.0.5:40000 -> 9.9.9.9:443 uid 1000 gid 1000", "", "out"},
		{"istio nftables: outbound TCP from the app to an included range is redirected to 15001",
			file("istio-iptables/tools/istio-nftables/pkg/capture/testdata/ipnets.golden"),
			"tcp 10.20.0.5:40000 -> 10.1.2.3:80 uid 1000 gid 1000", "127.0.0.1:15001", "local"},
		{"istio nftables: outbound TCP from the proxy (uid 1337) is not redirected",
			file("istio-iptables/tools/istio-nftables/pkg/capture/testdata/ipnets.golden"),
			"tcp 10.20.0.5:40000 -> 10.1.2.3:80 uid 1337 gid 1337", "", "out"},
		{"istio iptables: inbound TCP to an included port is redirected to 15006",
			file("istio-iptables/tools/istio-iptables/pkg/capture/testdata/inbound-ports-include.golden"),
			"tcp 10.1.2.3:5000 -> 10.20.0.5:32000 iif eth0", "10.20.0.5:15006", "local"},
		{"istio iptables: inbound TCP to a port that is not included reaches the app untouched",
			file("istio-iptables/tools/istio-iptables/pkg/capture/testdata/inbound-ports-include.golden"),
			"tcp 10.1.2.3:5000 -> 10.20.0.5:8080 iif eth0", "", "local"},
		{"istio iptables: inbound TCP to the HBONE port 15008 is not captured",
			file("istio-iptables/tools/istio-iptables/pkg/capture/testdata/inbound-ports-include.golden"),
			"tcp 10.1.2.3:5000 -> 10.20.0.5:15008 iif eth0", "", "local"},
		{"istio nftables: inbound TCP to an included port is redirected to 15006",
			file("istio-iptables/tools/istio-nftables/pkg/capture/testdata/inbound-ports-include.golden"),
			"tcp 10.1.2.3:5000 -> 10.20.0.5:32000 iif eth0", "10.20.0.5:15006", "local"},
		{"istio iptables: DNS to 127.0.0.53 from the app is redirected to 15053",
			file("istio-iptables/tools/istio-iptables/pkg/capture/testdata/dns-uid-gid.golden"),
			"udp 127.0.0.1:40000 -> 127.0.0.53:53 uid 1000 gid 1000", "127.0.0.1:15053", "local"},
		{"linkerd: outbound TCP is redirected to the proxy's outbound port",
			linkerdCmds("outgoing/no-existing-rules"),
			"tcp 10.20.0.5:40000 -> 10.1.2.3:80 uid 1000", "127.0.0.1:1234", "local"},
		{"linkerd: with pre-existing rules, inbound TCP to the ignored port stays untouched",
			linkerdCmds("incoming/existing-rules"),
			"tcp 10.1.2.3:5000 -> 10.20.0.5:1234 iif eth0", "", "local"},
		{"linkerd: with pre-existing rules, outbound TCP is still redirected",
			linkerdCmds("incoming/existing-rules"),
			"tcp 10.20.0.5:40000 -> 10.1.2.3:80 uid 1000", "127.0.0.1:1234", "local"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, _, err := Parse([]byte(tc.rules))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range rs.Problems {
				t.Errorf("problem: %s", p)
			}
			pkt, err := ParsePacket(tc.packet)
			if err != nil {
				t.Fatal(err)
			}
			res := Eval(rs, pkt, node, Options{})
			if len(res.Branches) != 1 {
				t.Fatalf("got %d branches, want 1", len(res.Branches))
			}
			b := res.Branches[0]
			want := pkt.Dst
			if tc.wantDst != "" {
				want = netip.MustParseAddrPort(tc.wantDst)
			}
			if b.Verdict != VerdictAccept || b.Packet.Dst != want || b.Delivery != tc.wantDelivery {
				var lines []string
				for _, h := range b.Hits {
					lines = append(lines, h.String())
				}
				t.Errorf("got %s %s to %s (%s), want accept %s to %s\n%s", b.Verdict, b.Delivery, b.Packet.Dst, b.Unknown,
					tc.wantDelivery, want, strings.Join(lines, "\n"))
			}
		})
	}
}

func TestLinkerdCleanupRemovesEverything(t *testing.T) {
	root := oraclesDir(t)
	data, err := os.ReadFile(filepath.Join(root, "linkerd-proxy-init", "derived", "unit_cases.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Cases []struct {
			ID   string     `json:"id"`
			Want [][]string `json:"want_commands"`
		} `json:"command_sequence_cases"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, id := range []string{"incoming/no-existing-rules", "outgoing/no-existing-rules", "cleanup"} {
		for _, c := range d.Cases {
			if c.ID == id {
				for _, argv := range c.Want {
					b.WriteString(strings.Join(quoteArgs(argv), " ") + "\n")
				}
			}
		}
	}
	rs := ParseIPTables(b.String(), FamilyIP)
	for _, p := range rs.Problems {
		t.Errorf("problem: %s", p)
	}
	nat := rs.Table(FamilyIP, "nat")
	if nat == nil {
		t.Fatal("no nat table")
	}
	for _, c := range nat.Order {
		if len(c.Rules) != 0 || strings.HasPrefix(c.Name, "PROXY_INIT") {
			t.Errorf("after cleanup chain %s still exists with %d rules", c.Name, len(c.Rules))
		}
	}
}
