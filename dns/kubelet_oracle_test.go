package dns

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestKubeletOracle runs every row of kubernetes v1.36.3 pkg/kubelet/network/dns/dns_test.go (kubelet-dns oracle).
// Options are compared as sets: kubelet builds merged option lists from a Go map, so their order is random and the
// upstream tests compare them without order.
func TestKubeletOracle(t *testing.T) {
	var doc struct {
		Tables []struct {
			GoTest string `json:"go_test"`
			Rows   []any  `json:"rows"`
		} `json:"tables"`
	}
	readOracleJSON(t, "kubelet-dns/derived/cases.json", &doc)
	total := 0
	for _, tbl := range doc.Tables {
		for i, raw := range tbl.Rows {
			total++
			row := goValue(t, raw)
			name := fmt.Sprintf("%s row %d", tbl.GoTest, i)
			if m, ok := row.(map[string]any); ok && m["desc"] != nil {
				name = fmt.Sprintf("%s: %s", tbl.GoTest, m["desc"])
			}
			t.Run(name, func(t *testing.T) {
				switch tbl.GoTest {
				case "TestParseResolvConf":
					checkParseRow(t, row.([]any))
				case "TestFormDNSSearchFitsLimits":
					m := row.(map[string]any)
					got, events := FitSearches(toStrings(t, m["hostNames"]))
					if want := toStrings(t, m["resultSearch"]); !sameStrings(got, want) {
						t.Errorf("search = %q, want %q", got, want)
					}
					if want := toStrings(t, m["events"]); !sameStrings(events, want) {
						t.Errorf("events = %q, want %q", events, want)
					}
				case "TestFormDNSNameserversFitsLimits":
					m := row.(map[string]any)
					got, events := FitNameservers(toStrings(t, m["nameservers"]))
					if want := toStrings(t, m["expectedNameserver"]); !sameStrings(got, want) {
						t.Errorf("nameservers = %q, want %q", got, want)
					}
					if want := m["expectedEvent"].(bool); (len(events) > 0) != want {
						t.Errorf("event = %q, want an event: %v", events, want)
					}
				case "TestMergeDNSOptions":
					m := row.(map[string]any)
					got := MergeDNSOptions(toStrings(t, m["existingDNSConfigOptions"]), podOptions(t, m["dnsConfigOptions"]))
					if want := toStrings(t, m["expectedOptions"]); !sameSet(got, want) {
						t.Errorf("options = %q, want %q (as a set)", got, want)
					}
				case "TestGetPodDNSType":
					m := row.(map[string]any)
					hostNet, _ := m["hostNetwork"].(bool)
					got, err := PodDNSType(corev1.DNSPolicy(m["dnsPolicy"].(string)), hostNet)
					if wantErr, _ := m["expectedError"].(bool); wantErr {
						if err == nil {
							t.Errorf("no error for dnsPolicy %v", m["dnsPolicy"])
						}
						return
					}
					want := map[string]DNSType{"podDNSCluster": DNSCluster, "podDNSHost": DNSHost, "podDNSNone": DNSNone}[m["expectedDNSType"].(map[string]any)["$ident"].(string)]
					if err != nil || got != want {
						t.Errorf("PodDNSType = %v, %v; want %v", got, err, want)
					}
				case "TestGetPodDNSCustom":
					checkCustomRow(t, row.(map[string]any))
				default:
					t.Fatalf("unknown oracle table %s", tbl.GoTest)
				}
			})
		}
	}
	if total != 66 {
		t.Errorf("oracle has %d rows, the README says 66", total)
	}
}

func checkParseRow(t *testing.T, r []any) {
	rc, err := ParseResolvConf(r[0].(string))
	if wantErr := r[4].(bool); (err != nil) != wantErr {
		t.Errorf("ParseResolvConf(%q) error = %v, want error: %v", r[0], err, wantErr)
	}
	if err != nil {
		return
	}
	if want := toStrings(t, r[1]); !sameStrings(rc.Nameservers, want) {
		t.Errorf("nameservers = %q, want %q", rc.Nameservers, want)
	}
	if want := toStrings(t, r[2]); !sameStrings(rc.Searches, want) {
		t.Errorf("searches = %q, want %q", rc.Searches, want)
	}
	if want := toStrings(t, r[3]); !sameSet(rc.Options, want) {
		t.Errorf("options = %q, want %q (as a set)", rc.Options, want)
	}
}

func podOptions(t *testing.T, v any) []corev1.PodDNSConfigOption {
	arr, _ := v.([]any)
	var out []corev1.PodDNSConfigOption
	for _, e := range arr {
		m := e.(map[string]any)
		o := corev1.PodDNSConfigOption{Name: m["Name"].(string)}
		if s, ok := m["Value"].(string); ok {
			o.Value = &s
		}
		out = append(out, o)
	}
	return out
}

// checkCustomRow mirrors TestGetPodDNSCustom's fixed inputs: cluster DNS 10.0.0.10, cluster domain kubernetes.io,
// pod namespace testNS, node resolv.conf "nameserver 8.8.8.8 / search host.domain".
func checkCustomRow(t *testing.T, m map[string]any) {
	host, _ := ParseResolvConf("nameserver 8.8.8.8\nsearch host.domain\n")
	k := Kubelet{ClusterDNS: []string{"10.0.0.10"}, ClusterDomain: "kubernetes.io", HostResolvConf: &host}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod", Namespace: "testNS"}}
	pod.Spec.DNSPolicy = corev1.DNSPolicy(m["dnsPolicy"].(string))
	pod.Spec.HostNetwork, _ = m["hostnetwork"].(bool)
	if dc, ok := m["dnsConfig"].(map[string]any); ok {
		pod.Spec.DNSConfig = &corev1.PodDNSConfig{
			Nameservers: toStrings(t, dc["Nameservers"]),
			Searches:    toStrings(t, dc["Searches"]),
			Options:     podOptions(t, dc["Options"]),
		}
	}
	got := k.PodResolvConf(pod).ResolvConf
	want := m["expectedDNSConfig"].(map[string]any)
	if got.Render() != "" && want["$positional"] != nil {
		t.Errorf("resolv.conf = %q, want empty", got.Render())
		return
	}
	if want["$positional"] != nil {
		return
	}
	if w := toStrings(t, want["Servers"]); !sameStrings(got.Nameservers, w) {
		t.Errorf("servers = %q, want %q", got.Nameservers, w)
	}
	if w := toStrings(t, want["Searches"]); !sameStrings(got.Searches, w) {
		t.Errorf("searches = %q, want %q", got.Searches, w)
	}
	if w := toStrings(t, want["Options"]); !sameSet(got.Options, w) {
		t.Errorf("options = %q, want %q", got.Options, w)
	}
}
