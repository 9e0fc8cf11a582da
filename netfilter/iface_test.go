package netfilter

import (
	"net/netip"
	"testing"
)

// The kernel's meta iifname/oifname read an empty name when the hook has no such device (nft_meta_store_ifname
// zero-fills), so a negated interface match is true there. Found by comparing with the kernel: Docker's
// `-A DOCKER ! -i docker0 … -j DNAT`, reached from nat OUTPUT, DNATs locally generated traffic.
func TestNegatedInterfaceMatchesWhereTheHookHasNoSuchDevice(t *testing.T) {
	dump := `*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A OUTPUT -j DOCKER
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
`
	cases := []struct {
		name, rule string
		wantDNAT   bool
	}{
		{"a negated input interface matches locally generated packets, which have none", "", true},
		{"a positive input interface match does not match them", "-A DOCKER -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.3:80", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := dump
			if tc.rule != "" {
				d = `*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A OUTPUT -j DOCKER
` + tc.rule + "\nCOMMIT\n"
			}
			rs := ParseIPTables(d, FamilyIP)
			pkt, err := ParsePacket("tcp 10.0.0.5:40000 -> 10.0.0.5:8080 local")
			if err != nil {
				t.Fatal(err)
			}
			res := Eval(rs, pkt, &Node{LocalAddrs: []netip.Addr{netip.MustParseAddr("10.0.0.5")}}, Options{})
			got := len(res.Branches) > 0 && res.Branches[0].DNAT
			if got != tc.wantDNAT {
				t.Errorf("DNAT = %v, want %v; branches %+v", got, tc.wantDNAT, res.Branches)
			}
		})
	}
}
