package netfilter

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kpath/kpath/internal/oracle"
)

// oraclesDir finds <repo root>/../shared/oracles (or $KPATH_ORACLES) and skips the test when it is absent.
func oraclesDir(t testing.TB) string { t.Helper(); return oracle.Dir(t) }

type kpFlow struct {
	Name     string `json:"name"`
	SourceIP string `json:"sourceIP"`
	Protocol string `json:"protocol"`
	DestIP   string `json:"destIP"`
	DestPort int    `json:"destPort"`
	Output   string `json:"output"`
	Masq     bool   `json:"masq"`
}

type kpRecord struct {
	ID      string            `json:"id"`
	Mode    string            `json:"mode"`
	Kind    string            `json:"kind"`
	Files   map[string]string `json:"files"`
	NodeIPs []string          `json:"node_ips"`
	Flows   []kpFlow          `json:"flows"`
}

// kubeProxySkips lists flows that are out of scope, with the reason.
var kubeProxySkips = map[string]string{}

// flowOutput renders a walk the way kube-proxy's packet-flow tests do: the DNAT destinations of all branches, or
// DROP / REJECT / ACCEPT (explicit accept without DNAT), or "" (untouched), plus whether any branch masquerades.
func flowOutput(res Result) (string, bool) {
	var outs []string
	seen := map[string]bool{}
	masq := false
	for _, b := range res.Branches {
		var o string
		switch b.Verdict {
		case VerdictDrop:
			o = "DROP"
		case VerdictReject:
			o = "REJECT"
		case VerdictUnknown:
			o = "UNKNOWN(" + b.Unknown + ")"
		default:
			if b.DNAT {
				o = b.Packet.Dst.String()
			} else {
				for _, h := range b.Hits {
					if h.Verdict == "accept" && h.Rule != "" {
						o = "ACCEPT"
					}
				}
			}
		}
		if b.Masquerade {
			masq = true
		}
		if !seen[o] {
			seen[o] = true
			outs = append(outs, o)
		}
	}
	if len(outs) == 1 && outs[0] == "" {
		return "", masq
	}
	return strings.Join(outs, ", "), masq
}

func sortedList(s string) string {
	f := strings.Split(s, ", ")
	sort.Strings(f)
	return strings.Join(f, ", ")
}

func TestKubeProxyOraclePacketFlows(t *testing.T) {
	root := filepath.Join(oraclesDir(t), "kube-proxy", "derived")
	total, pass := 0, 0
	for _, mode := range []string{"nftables", "iptables"} {
		data, err := os.ReadFile(filepath.Join(root, mode, "cases.json"))
		if err != nil {
			t.Fatalf("reading kube-proxy oracle: %v", err)
		}
		var recs []kpRecord
		if err := json.Unmarshal(data, &recs); err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.Kind != "packet_flows" {
				continue
			}
			rec := rec
			t.Run(rec.ID, func(t *testing.T) {
				text, err := os.ReadFile(filepath.Join(root, rec.Files["ruleset_in_effect"]))
				if err != nil {
					t.Fatal(err)
				}
				var rs *Ruleset
				if mode == "nftables" {
					rs = ParseNFT(string(text))
				} else {
					rs = ParseIPTables(string(text), FamilyIP)
				}
				for _, p := range rs.Problems {
					t.Errorf("parse problem: %s", p)
				}
				node := &Node{}
				for _, ip := range rec.NodeIPs {
					node.LocalAddrs = append(node.LocalAddrs, netip.MustParseAddr(ip))
				}
				for _, fl := range rec.Flows {
					fl := fl
					total++
					t.Run(fl.Name, func(t *testing.T) {
						if why, ok := kubeProxySkips[rec.ID+"/"+fl.Name]; ok {
							t.Skip(why)
						}
						proto := strings.ToLower(fl.Protocol)
						if proto == "" {
							proto = "tcp"
						}
						pkt := Packet{Proto: uint8(protoNumbers[proto]),
							Src: netip.AddrPortFrom(netip.MustParseAddr(fl.SourceIP), 40000),
							Dst: netip.AddrPortFrom(netip.MustParseAddr(fl.DestIP), uint16(fl.DestPort))}
						res := Eval(rs, pkt, node, Options{})
						out, masq := flowOutput(res)
						if sortedList(out) != sortedList(fl.Output) || masq != fl.Masq {
							var hits []string
							for i, b := range res.Branches {
								hits = append(hits, "branch "+strconv.Itoa(i)+" p="+strconv.FormatFloat(b.Probability, 'g', 4, 64)+" "+b.Verdict+" "+b.Delivery)
								for _, h := range b.Hits {
									hits = append(hits, "  "+h.String())
								}
							}
							t.Errorf("%s %s -> %s:%d: got output %q masq %v, want %q masq %v\n%s", proto, fl.SourceIP, fl.DestIP,
								fl.DestPort, out, masq, fl.Output, fl.Masq, strings.Join(hits, "\n"))
							return
						}
						pass++
					})
				}
			})
		}
	}
	t.Logf("kube-proxy oracle: %d/%d flows pass, %d skipped", pass, total, len(kubeProxySkips))
}
