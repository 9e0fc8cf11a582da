package kubeproxy

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kpath/kpath/internal/oracle"
)

// oracleDir returns <repo root>/../shared/oracles/kube-proxy (or $KPATH_ORACLES/kube-proxy),
// skipping the test when it is absent.
func oracleDir(t testing.TB) string { t.Helper(); return oracle.Dir(t, "kube-proxy") }

type oracleFlow struct {
	Name     string `json:"name"`
	SourceIP string `json:"sourceIP"`
	Protocol string `json:"protocol"`
	DestIP   string `json:"destIP"`
	DestPort int    `json:"destPort"`
	Output   string `json:"output"`
	Masq     bool   `json:"masq"`
}

type oracleRecord struct {
	ID      string            `json:"id"`
	Mode    string            `json:"mode"`
	Kind    string            `json:"kind"`
	GoTest  string            `json:"go_test"`
	Files   map[string]string `json:"files"`
	NodeIPs []string          `json:"node_ips"`
	Flows   []oracleFlow      `json:"flows"`
	Table   string            `json:"table"`
	Chain   string            `json:"chain"`
}

func loadCases(t *testing.T, dir, mode string) []oracleRecord {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "derived", mode, "cases.json"))
	if err != nil {
		t.Fatalf("reading cases: %v", err)
	}
	var recs []oracleRecord
	if err := json.Unmarshal(data, &recs); err != nil {
		t.Fatalf("decoding %s cases.json: %v", mode, err)
	}
	return recs
}

// proxierHeader is the first-line comment of an oracle input.yaml.
type proxierHeader struct {
	IPFamily                 string   `json:"ipFamily"`
	LocalDetectorIfLocal     []string `json:"localDetectorIfLocal"`
	LocalDetectorImplemented bool     `json:"localDetectorImplemented"`
	MasqueradeAll            bool     `json:"masqueradeAll"`
	MasqueradeMark           string   `json:"masqueradeMark"`
	NodeIP                   string   `json:"nodeIP"`
	NodeName                 string   `json:"nodeName"`
	NodePortAddresses        string   `json:"nodePortAddresses"`
}

// defaultNodeIPs are the addresses of the upstream fake proxier's network interfaces.
var defaultNodeIPs = []string{"192.168.0.2", "192.168.1.2", "192.168.99.11", "2001:db8::1", "2001:db8:1::2"}

// loadInput decodes an oracle input.yaml into a Config and the objects.
func loadInput(t *testing.T, path string, rec oracleRecord, mode Mode) (Config, []*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading input: %v", err)
	}
	text := string(data)
	first, rest, _ := strings.Cut(text, "\n")
	const prefix = "# kube-proxy fake-proxier config: "
	if !strings.HasPrefix(first, prefix) {
		t.Fatalf("%s: first line is not the proxier config", path)
	}
	var h proxierHeader
	if err := json.Unmarshal([]byte(strings.TrimPrefix(first, prefix)), &h); err != nil {
		t.Fatalf("%s: proxier config: %v", path, err)
	}
	cfg := Config{Mode: mode, NodeName: h.NodeName, MasqueradeAll: h.MasqueradeAll}
	cfg.Family = corev1.IPFamily(h.IPFamily)
	if a, err := netip.ParseAddr(h.NodeIP); err == nil {
		cfg.NodeIP = a
	}
	ips := rec.NodeIPs
	if len(ips) == 0 {
		ips = defaultNodeIPs
	}
	for _, s := range ips {
		cfg.NodeIPs = append(cfg.NodeIPs, netip.MustParseAddr(s))
	}
	if h.LocalDetectorImplemented {
		if len(h.LocalDetectorIfLocal) != 2 || h.LocalDetectorIfLocal[0] != "-s" {
			t.Fatalf("%s: unexpected local detector %v", path, h.LocalDetectorIfLocal)
		}
		cfg.PodCIDR = netip.MustParsePrefix(h.LocalDetectorIfLocal[1])
	}
	var bit int
	if _, err := fmt.Sscanf(h.MasqueradeMark, "0x%x", &bit); err != nil {
		t.Fatalf("%s: masquerade mark %q", path, h.MasqueradeMark)
	}
	for b := 0; b < 32; b++ {
		if bit == 1<<b {
			b := b
			cfg.MasqueradeBit = &b
		}
	}
	for _, s := range strings.Fields(strings.Trim(h.NodePortAddresses, "[]")) {
		cfg.NodePortAddresses = append(cfg.NodePortAddresses, netip.MustParsePrefix(s))
	}
	// The upstream fake proxier's ServiceCIDRs.
	cfg.ServiceCIDRs = []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16"), netip.MustParsePrefix("fd00:10:96::/112")}
	// The iptables tests name the localhost-nodeports setting instead of recording it.
	cfg.DisableLocalhostNodePorts = strings.Contains(rec.ID, "localhost-nodeports_disabled")

	svcs, slices := oracle.KubeProxyObjects(t, path, rest)
	return cfg, svcs, slices
}

// nftObjectOrder and sortNFT reproduce upstream's sortNFTablesTransaction: drop blank/comment
// lines, order by object type then object name, keep rules of a chain in their original order.
var nftObjectOrder = map[string]int{"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}

func sortNFT(text string) []string {
	var lines []string
	for _, l := range strings.Split(text, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		lines = append(lines, l)
	}
	sort.SliceStable(lines, func(i, j int) bool {
		wi, wj := strings.Split(lines[i], " "), strings.Split(lines[j], " ")
		if len(wi) < 5 || len(wj) < 5 {
			return false
		}
		if wi[1] != wj[1] {
			return nftObjectOrder[wi[1]] > nftObjectOrder[wj[1]]
		}
		if wi[4] != wj[4] {
			return wi[4] < wj[4]
		}
		if wi[1] == "rule" {
			return false
		}
		return lines[i] < lines[j]
	})
	return lines
}

// lineDiff reports lines only in want / only in got (multiset).
func lineDiff(want, got []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var b strings.Builder
	for _, l := range want {
		if count[l] > 0 {
			fmt.Fprintf(&b, "- %s\n", l)
			count[l]--
		}
	}
	for _, l := range got {
		if count[l] < 0 {
			fmt.Fprintf(&b, "+ %s\n", l)
			count[l]++
		}
	}
	return b.String()
}
