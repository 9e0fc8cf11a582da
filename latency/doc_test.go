package latency

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the generated sections of docs/latency-model.md from the model")

const docPath = "../docs/latency-model.md"

// TestDocsMatchTheModel keeps docs/latency-model.md telling the same story as the code: the constants table, the
// per-constant sources and the worked example are generated from Default(). Run `go test ./latency -update` after
// changing a constant and review the diff.
func TestDocsMatchTheModel(t *testing.T) {
	raw, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatalf("reading %s: %v", docPath, err)
	}
	doc := string(raw)
	sections := []struct {
		name string
		gen  func(*Model) string
	}{
		{"constants", constantsTable},
		{"sources", sourcesSection},
		{"example", exampleBudget},
	}
	m := Default()
	for _, s := range sections {
		begin := "<!-- BEGIN generated:" + s.name + " (go test ./latency -update) -->\n"
		end := "<!-- END generated:" + s.name + " -->"
		i, j := strings.Index(doc, begin), strings.Index(doc, end)
		if i < 0 || j < i {
			t.Fatalf("%s: markers for section %q are missing or out of order", docPath, s.name)
		}
		want := s.gen(m)
		got := doc[i+len(begin) : j]
		if got == want {
			continue
		}
		if *update {
			doc = doc[:i+len(begin)] + want + doc[j:]
			continue
		}
		t.Errorf("%s: section %q is stale; run `go test ./latency -update` and review the diff", docPath, s.name)
	}
	if *update && doc != string(raw) {
		if err := os.WriteFile(docPath, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, word := range []string{"ESTIMATE", "no queueing", "first packet", SchemaV1} {
		if !strings.Contains(doc, word) {
			t.Errorf("%s never says %q", docPath, word)
		}
	}
}

func constantsTable(m *Model) string {
	var b strings.Builder
	b.WriteString("| constant | ESTIMATE | quality | what it costs | source |\n|---|---:|---|---|---|\n")
	for _, c := range m.Constants() {
		src := c.Source.Citation
		if c.Source.URL != "" {
			src = "[" + src + "](" + c.Source.URL + ")"
		}
		fmt.Fprintf(&b, "| `%s` | %v | %s | %s | %s |\n", c.Name, c.Value, c.Quality, c.Meaning, src)
	}
	return b.String()
}

func sourcesSection(m *Model) string {
	var b strings.Builder
	for _, c := range m.Constants() {
		fmt.Fprintf(&b, "#### `%s` — %v (%s)\n\n", c.Name, c.Value, c.Quality)
		fmt.Fprintf(&b, "%s.\n\n", upperFirst(c.Meaning))
		cite := c.Source.Citation
		if c.Source.URL != "" {
			cite += ", <" + c.Source.URL + ">"
		}
		if c.Source.Date != "" {
			cite += " (" + c.Source.Date + ")"
		}
		fmt.Fprintf(&b, "- Source: %s\n", cite)
		fmt.Fprintf(&b, "- Measured: %s\n", c.Source.Setup)
		if c.Source.Derivation != "" {
			label := "Derivation"
			if c.Quality == QualityPlaceholder {
				label = "Why this value"
			}
			fmt.Fprintf(&b, "- %s: %s\n", label, c.Source.Derivation)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// exampleBudget is the worked example: the first packet of a new TCP connection from a pod to a ClusterIP
// Service whose backend is on another node, kube-proxy in iptables mode (the match is the 412th KUBE-SERVICES
// rule), Flannel VXLAN, Istio sidecars on both ends, after resolving the Service name with ndots:5 from another
// namespace (one NXDOMAIN, then the answer).
func exampleBudget(m *Model) string {
	out, _ := m.SidecarHop(MeshIstioSidecar)
	rows := []struct {
		step string
		e    Estimate
	}{
		{"DNS: `cart.shop` → 1 NXDOMAIN (`cart.shop.web.svc.cluster.local`)", m.DNSNXDomains(1)},
		{"DNS: `cart.shop.svc.cluster.local` answered", m.DNSQuery()},
		{"client sidecar (Envoy, outbound)", out},
		{"pod eth0 → host veth", m.VethHop()},
		{"KUBE-SERVICES walk: match at rule 412", m.IPTablesRules(412)},
		{"conntrack entry for the DNAT", m.ConntrackLookup()},
		{"VXLAN encap + decap", m.VXLANEncap()},
		{"node → node", m.Underlay()},
		{"host veth → backend pod", m.VethHop()},
		{"server sidecar (Envoy, inbound)", out},
	}
	var b strings.Builder
	b.WriteString("| step | ESTIMATE | from |\n|---|---:|---|\n")
	var parts []Estimate
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %v | %s |\n", r.step, r.e.Duration(), r.e.Source)
		parts = append(parts, r.e)
	}
	total := Sum(parts...)
	fmt.Fprintf(&b, "| **total (ESTIMATE)** | **%v** | |\n", total.Duration().Round(time.Microsecond))
	return b.String()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
