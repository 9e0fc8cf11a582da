package dns

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// corednsConfigSkips lists non-DNS oracle tables that are CoreDNS internals, with the reason (one line each).
var corednsConfigSkips = map[string]string{
	"TestSubsetsEquivalent":  "informer change detection between Endpoints objects: CoreDNS controller internals, no DNS answer",
	"TestServiceModified":    "informer change detection for Services: CoreDNS controller internals, no DNS answer",
	"TestPodModified":        "informer change detection for Pods: CoreDNS controller internals, no DNS answer",
	"var extCases":           "k8s_external plugin (Service external IPs in another zone) is a different plugin, not modelled",
	"var metadataCases":      "metadata plugin labels, not DNS answers",
	"TestSanitizeLabelValue": "Prometheus label sanitising, not DNS",
	"TestBoundIPs":           "listen-address filtering for NS records: the model takes the CoreDNS pod IPs as given (ServerOptions.LocalIPs)",
}

func TestCoreDNSConfigOracle(t *testing.T) {
	var files map[string]struct {
		OtherTables []struct {
			Func string `json:"func"`
			Rows []any  `json:"rows"`
		} `json:"other_tables"`
	}
	readOracleJSON(t, "coredns-kubernetes/derived/cases.json", &files)
	total, skipped := 0, 0
	for _, f := range files {
		for _, tbl := range f.OtherTables {
			for i, row := range tbl.Rows {
				total++
				t.Run(fmt.Sprintf("%s row %d", tbl.Func, i), func(t *testing.T) {
					if why, ok := corednsConfigSkips[tbl.Func]; ok {
						skipped++
						t.Skip(why)
					}
					checkConfigRow(t, tbl.Func, row)
				})
			}
		}
	}
	t.Logf("coredns-kubernetes config/parse rows: %d, %d skipped", total, skipped)
	if total != 129 {
		t.Errorf("oracle has %d config/parse rows, the README says 129", total)
	}
}

func parseStanzaRow(t *testing.T, input string, shouldErr bool, errContent string) (KubernetesOptions, bool) {
	t.Helper()
	o, err := ParseKubernetesStanza(input, []string{"."})
	if shouldErr {
		if err == nil {
			t.Errorf("ParseKubernetesStanza(%q): no error, want one containing %q", input, errContent)
		} else if errContent != "" && !strings.Contains(err.Error(), errContent) {
			t.Errorf("error %q does not contain %q", err, errContent)
		}
		return o, false
	}
	if err != nil {
		t.Errorf("ParseKubernetesStanza(%q): %v", input, err)
		return o, false
	}
	return o, true
}

func checkConfigRow(t *testing.T, fn string, raw any) {
	switch fn {
	case "TestKubernetesParse":
		r := raw.([]any)
		o, ok := parseStanzaRow(t, r[0].(string), r[1].(bool), r[2].(string))
		if !ok {
			return
		}
		if n := int(r[3].(float64)); len(o.Zones) != n {
			t.Errorf("zones = %v, want %d", o.Zones, n)
		}
		if n := int(r[4].(float64)); len(o.Namespaces) != n {
			t.Errorf("namespaces = %v, want %d", o.Namespaces, n)
		}
		if o.Labels != r[5].(string) {
			t.Errorf("labels = %q, want %q", o.Labels, r[5])
		}
		if o.NamespaceLabels != r[6].(string) {
			t.Errorf("namespace_labels = %q, want %q", o.NamespaceLabels, r[6])
		}
		if string(o.Pods) != r[7].(string) {
			t.Errorf("pods = %q, want %q", o.Pods, r[7])
		}
		var wantFall []string
		switch v := r[8].(map[string]any); {
		case v["$sym"] == "fall.Root":
			wantFall = []string{"."}
		case v["Zones"] != nil:
			wantFall = anyStrings(v["Zones"])
		}
		if !sameStrings(o.Fallthrough, wantFall) {
			t.Errorf("fallthrough = %q, want %q", o.Fallthrough, wantFall)
		}
		want := 5 * time.Second
		if v := r[9].(map[string]any); v["$binary"] != nil {
			want = time.Duration(v["y"].(float64)) * time.Second
		}
		if o.StartupTimeout != want {
			t.Errorf("startup_timeout = %v, want %v", o.StartupTimeout, want)
		}
	case "TestKubernetesParseEndpointPodNames":
		r := raw.([]any)
		if o, ok := parseStanzaRow(t, r[0].(string), r[1].(bool), r[2].(string)); ok && o.EndpointPodNames != r[3].(bool) {
			t.Errorf("endpoint_pod_names = %v, want %v", o.EndpointPodNames, r[3])
		}
	case "TestKubernetesParseNoEndpoints":
		r := raw.([]any)
		if o, ok := parseStanzaRow(t, r[0].(string), r[1].(bool), r[2].(string)); ok && o.NoEndpoints == r[3].(bool) {
			t.Errorf("endpoint cache on = %v, want %v", !o.NoEndpoints, r[3])
		}
	case "TestKubernetesParseIgnoreEmptyService":
		r := raw.([]any)
		if o, ok := parseStanzaRow(t, r[0].(string), r[1].(bool), r[2].(string)); ok && o.IgnoreEmptyService != r[3].(bool) {
			t.Errorf("ignore empty_service = %v, want %v", o.IgnoreEmptyService, r[3])
		}
	case "TestKubernetesParseMulticluster":
		r := raw.([]any)
		if o, ok := parseStanzaRow(t, r[0].(string), r[1].(bool), r[2].(string)); ok && !sameStrings(nonNil(o.Multicluster), nonNil(anyStrings(r[3]))) {
			t.Errorf("multicluster = %q, want %q", o.Multicluster, r[3])
		}
	case "TestKubernetesParseAPIRateLimiting":
		r := raw.([]any)
		if o, ok := parseStanzaRow(t, r[0].(string), r[1].(bool), r[2].(string)); ok {
			if o.APIServerQPS != r[3].(float64) || o.APIServerBurst != int(r[4].(float64)) || o.APIServerMaxInflight != int(r[5].(float64)) {
				t.Errorf("qps/burst/inflight = %v/%v/%v, want %v/%v/%v", o.APIServerQPS, o.APIServerBurst, o.APIServerMaxInflight, r[3], r[4], r[5])
			}
		}
	case "TestKubernetesParseZonal":
		r := raw.([]any)
		if o, ok := parseStanzaRow(t, r[0].(string), r[1].(bool), ""); ok && o.Zonal != r[2].(bool) {
			t.Errorf("zonal = %v, want %v", o.Zonal, r[2])
		}
	case "TestKubernetesParseTTL":
		r := raw.([]any)
		if o, ok := parseStanzaRow(t, r[0].(string), r[2].(bool), ""); ok && o.TTL != uint32(r[1].(float64)) {
			t.Errorf("ttl = %d, want %v", o.TTL, r[1])
		}
	case "TestParseRequest":
		r := raw.([]any)
		req, invalid := parseRequest(r[0].(string), "inter.webs.tests.", r[2].(bool), r[3].(bool))
		if invalid {
			t.Errorf("parseRequest(%q) is invalid, want %q", r[0], r[1])
			return
		}
		if got := req.String(); got != r[1].(string) {
			t.Errorf("parseRequest(%q) = %q, want %q", r[0], got, r[1])
		}
		if req.zone != r[4].(string) {
			t.Errorf("zone = %q, want %q", req.zone, r[4])
		}
	case "TestParseInvalidRequest":
		r := raw.([]any)
		if _, invalid := parseRequest(r[0].(string), "inter.webs.tests.", r[1].(bool), true); !invalid {
			t.Errorf("parseRequest(%q, multicluster=%v, zonal) is valid, want invalid", r[0], r[1])
		}
	case "TestEndpointHostname":
		r := raw.([]any)
		if got := EndpointHostname(r[0].(string), r[1].(string), r[3].(string), r[4].(bool)); got != r[2].(string) {
			t.Errorf("EndpointHostname(%v) = %q, want %q", r, got, r[2])
		}
	case "TestNamespaceExposed", "TestNamespaceValid", "TestFilteredNamespaceExists":
		r := raw.([]any)
		var nss []string
		if m, ok := r[1].(map[string]any); ok && m["$type"] == nil {
			for n := range m {
				nss = append(nss, n)
			}
		}
		k, err := NewKubernetes(KubernetesOptions{Zones: []string{"cluster.local."}, Namespaces: nss}, fakeNamespaces{Cluster: NewMapCluster(), missing: map[string]bool{"nsnoexist": true}})
		if err != nil {
			t.Fatal(err)
		}
		ns := r[2].(string)
		got := map[string]bool{
			"TestNamespaceExposed":        k.namespaceConfigured(ns),
			"TestNamespaceValid":          k.namespaceExposed(ns),
			"TestFilteredNamespaceExists": k.Cluster.NamespaceExists(ns),
		}[fn]
		if got != r[0].(bool) {
			t.Errorf("%s(%q, namespaces %v) = %v, want %v", fn, ns, nss, got, r[0])
		}
	default:
		t.Fatalf("no converter for oracle table %s", fn)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
