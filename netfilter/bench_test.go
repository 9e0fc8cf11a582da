package netfilter

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// svcIP and epIP give the synthetic cluster's addresses.
func svcIP(i int) string { return fmt.Sprintf("10.96.%d.%d", i/250, i%250+1) }
func epIP(i, j int) string {
	return fmt.Sprintf("10.%d.%d.%d", 128+j, i/250, i%250+1)
}

// synthIPTables writes a kube-proxy-shaped iptables-save dump with n ClusterIP services of two endpoints each.
func synthIPTables(n int) string {
	var b strings.Builder
	b.WriteString("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-FORWARD - [0:0]\n:KUBE-SERVICES - [0:0]\n")
	b.WriteString("-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n")
	b.WriteString("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	b.WriteString("-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	b.WriteString("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n")
	b.WriteString("-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT\n")
	b.WriteString("-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\nCOMMIT\n")
	b.WriteString("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n")
	b.WriteString(":KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, ":KUBE-SVC-%016d - [0:0]\n:KUBE-SEP-%016dA - [0:0]\n:KUBE-SEP-%016dB - [0:0]\n", i, i, i)
	}
	b.WriteString("-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	b.WriteString("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n")
	b.WriteString("-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n")
	b.WriteString("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n")
	b.WriteString("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n")
	b.WriteString("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "-A KUBE-SERVICES -d %s/32 -p tcp -m comment --comment \"ns/svc%d:http cluster IP\" -m tcp --dport 80 -j KUBE-SVC-%016d\n", svcIP(i), i, i)
	}
	b.WriteString("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "-A KUBE-SVC-%016d ! -s 10.0.0.0/8 -d %s/32 -p tcp -m tcp --dport 80 -j KUBE-MARK-MASQ\n", i, svcIP(i))
		fmt.Fprintf(&b, "-A KUBE-SVC-%016d -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-%016dA\n", i, i)
		fmt.Fprintf(&b, "-A KUBE-SVC-%016d -j KUBE-SEP-%016dB\n", i, i)
		for j, s := range []string{"A", "B"} {
			fmt.Fprintf(&b, "-A KUBE-SEP-%016d%s -s %s/32 -j KUBE-MARK-MASQ\n", i, s, epIP(i, j))
			fmt.Fprintf(&b, "-A KUBE-SEP-%016d%s -p tcp -m tcp -j DNAT --to-destination %s:8080\n", i, s, epIP(i, j))
		}
	}
	b.WriteString("COMMIT\n")
	return b.String()
}

// synthNFT writes the same cluster as a knftables (kube-proxy nftables mode) dump.
func synthNFT(n int) string {
	var b strings.Builder
	b.WriteString(`add table ip kube-proxy { comment "rules for kube-proxy" ; }
add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
add chain ip kube-proxy services
add chain ip kube-proxy masquerading
add chain ip kube-proxy service-endpoints-check
add chain ip kube-proxy cluster-ips-check
add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; }
add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; }
add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
add rule ip kube-proxy nat-prerouting jump services
add rule ip kube-proxy nat-output jump services
add rule ip kube-proxy nat-postrouting jump masquerading
add rule ip kube-proxy masquerading mark and 0x4000 != 0 mark set mark xor 0x4000 masquerade fully-random
add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
add rule ip kube-proxy cluster-ips-check ip daddr { 10.96.0.0/12 } drop comment "Drop traffic to unallocated ClusterIPs"
add rule ip kube-proxy services ip daddr @cluster-ips ip saddr != 10.0.0.0/8 mark set mark or 0x4000
add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
`)
	for i := 0; i < n; i++ {
		svc := fmt.Sprintf("service-%08d-ns/svc%d/tcp/http", i, i)
		fmt.Fprintf(&b, "add chain ip kube-proxy %s\n", svc)
		fmt.Fprintf(&b, "add rule ip kube-proxy %s meta l4proto tcp dnat ip addr . port to numgen random mod 2 map { 0 : %s . 8080 , 1 : %s . 8080 }\n", svc, epIP(i, 0), epIP(i, 1))
		fmt.Fprintf(&b, "add element ip kube-proxy cluster-ips { %s }\n", svcIP(i))
		fmt.Fprintf(&b, "add element ip kube-proxy service-ips { %s . tcp . 80 : goto %s }\n", svcIP(i), svc)
	}
	return b.String()
}

const benchServices = 30000

func benchWalk(b *testing.B, rs *Ruleset) {
	node := &Node{LocalAddrs: []netip.Addr{netip.MustParseAddr("192.168.0.2")}}
	// the last service: a linear scan of KUBE-SERVICES would have to pass every rule
	pkt := Packet{Proto: ProtoTCP, Src: netip.MustParseAddrPort("10.244.1.2:40000"),
		Dst: netip.AddrPortFrom(netip.MustParseAddr(svcIP(benchServices-1)), 80), Iif: "cni0"}
	res := Eval(rs, pkt, node, Options{})
	if len(res.Branches) != 2 || res.Branches[0].Verdict != VerdictAccept || !res.Branches[0].DNAT {
		b.Fatalf("unexpected walk: %+v", res.Branches)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		Eval(rs, pkt, node, Options{})
	}
}

// BenchmarkEvalIPTables30kServices: one packet through a 30,000-Service iptables-save dump (target ≤ 1 ms).
func BenchmarkEvalIPTables30kServices(b *testing.B) {
	rs := ParseIPTables(synthIPTables(benchServices), FamilyIP)
	if len(rs.Problems) > 0 {
		b.Fatal(rs.Problems[0])
	}
	benchWalk(b, rs)
}

// BenchmarkEvalNFT30kServices: one packet through the equivalent kube-proxy nftables dump (target ≤ 50 µs).
func BenchmarkEvalNFT30kServices(b *testing.B) {
	rs := ParseNFT(synthNFT(benchServices))
	if len(rs.Problems) > 0 {
		b.Fatal(rs.Problems[0])
	}
	benchWalk(b, rs)
}

// BenchmarkParseIPTables30kServices measures parsing the big iptables dump (no target; for reference).
func BenchmarkParseIPTables30kServices(b *testing.B) {
	s := synthIPTables(benchServices)
	b.SetBytes(int64(len(s)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ParseIPTables(s, FamilyIP)
	}
}
