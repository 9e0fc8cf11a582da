package netfilter

import (
	"net/netip"
	"testing"
)

var fuzzPackets = []string{
	"tcp 10.244.1.2:40000 -> 10.96.0.10:80 iif cni0",
	"udp 192.168.0.2:5353 -> 10.96.0.10:53 uid 1000 gid 1000",
	"tcp [fd00::2]:40000 -> [fd00:10:96::1]:443 iif eth0",
}

var fuzzNode = &Node{LocalAddrs: []netip.Addr{netip.MustParseAddr("192.168.0.2"), netip.MustParseAddr("fd00::2")},
	Routes: []Route{{Dst: netip.MustParsePrefix("0.0.0.0/0"), Oif: "eth0"}, {Dst: netip.MustParsePrefix("::/0"), Oif: "eth0"}}}

// walkAll evaluates a few packets; the fuzzers only check that nothing panics and that probabilities add up.
func walkAll(t *testing.T, rs *Ruleset) {
	for _, s := range fuzzPackets {
		p, err := ParsePacket(s)
		if err != nil {
			t.Fatal(err)
		}
		res := Eval(rs, p, fuzzNode, Options{MaxBranches: 64})
		sum := 0.0
		for _, b := range res.Branches {
			sum += b.Probability
		}
		if len(res.Branches) == 0 || sum < 0.999 || sum > 1.001 {
			t.Fatalf("branch probabilities add up to %v over %d branches", sum, len(res.Branches))
		}
	}
}

func FuzzParseNFT(f *testing.F) {
	f.Add("table ip t {\n chain c { type nat hook prerouting priority dstnat; policy accept;\n ip daddr 10.96.0.10 tcp dport 80 dnat to 10.244.1.5:8080\n }\n}\n")
	f.Add("add table ip kp\nadd chain ip kp s\nadd map ip kp m { type ipv4_addr . inet_proto . inet_service : verdict ; }\nadd element ip kp m { 10.96.0.10 . tcp . 80 : goto s }\nadd rule ip kp s numgen random mod 2 vmap { 0 : drop , 1 : accept }\n")
	f.Fuzz(func(t *testing.T, s string) {
		rs := ParseNFT(s)
		walkAll(t, rs)
	})
}

func FuzzParseNFTJSON(f *testing.F) {
	f.Add(`{"nftables":[{"table":{"family":"ip","name":"t"}},{"chain":{"family":"ip","table":"t","name":"c","type":"filter","hook":"input","prio":0,"policy":"drop"}},{"rule":{"family":"ip","table":"t","chain":"c","handle":3,"expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":22}},{"accept":null}]}}]}`)
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseNFTJSON([]byte(s))
		if err != nil {
			return
		}
		walkAll(t, rs)
	})
}

func FuzzParseIPTables(f *testing.F) {
	f.Add("*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SVC-X - [0:0]\n-A PREROUTING -d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-X\n-A KUBE-SVC-X -m statistic --mode random --probability 0.5 -j DNAT --to-destination 10.244.1.5:80\n-A KUBE-SVC-X -j DNAT --to-destination 10.244.2.5:80\nCOMMIT\n")
	f.Add("iptables -t nat -A OUTPUT -p tcp -m owner ! --uid-owner 1337 -j REDIRECT --to-ports 15001\n")
	f.Fuzz(func(t *testing.T, s string) {
		rs := ParseIPTables(s, FamilyIP)
		walkAll(t, rs)
	})
}

func FuzzParsePacket(f *testing.F) {
	f.Add("tcp 10.244.1.2:40000 -> 10.96.0.10:80 iif cni0 mark 0x4000 ct established uid 0 local")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePacket(s)
		if err != nil {
			return
		}
		_ = p.String()
		_ = Eval(&Ruleset{}, p, fuzzNode, Options{})
	})
}
