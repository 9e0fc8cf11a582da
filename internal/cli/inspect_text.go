package cli

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/kpath/kpath/cluster"
)

var settingTitles = []struct{ key, title string }{
	{"proxyMode", "kube-proxy mode"}, {"cni", "CNI"}, {"encryption", "encryption"}, {"mesh", "service mesh"},
	{"clusterDomain", "cluster domain"}, {"podCIDR", "pod CIDR"}, {"serviceCIDR", "service CIDR"},
	{"clusterDNS", "cluster DNS"}, {"nodeLocalDNS", "NodeLocal DNS"}, {"policyEnforcer", "NetworkPolicy by"},
}

func writeInspectText(w io.Writer, r *InspectReport, verbose int) {
	total := 0
	for _, c := range r.Counts {
		total += c.Given + c.Synthesized
	}
	fmt.Fprintf(w, "Loaded %d objects from %d source(s) in %.0f ms\n", total, len(r.Sources), r.LoadTimeMS)
	if verbose > 0 {
		for _, s := range r.Sources {
			fmt.Fprintf(w, "  %s\n", s)
		}
	}

	fmt.Fprintf(w, "\nNODES (%d in %d zone(s))\n", len(r.Nodes), len(r.Zones))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tZONE\tIP\tPOD CIDR\tPODS\tNOTES")
	for _, n := range r.Nodes {
		var notes []string
		if len(n.Taints) > 0 {
			notes = append(notes, "taints "+strings.Join(n.Taints, ","))
		}
		if len(n.Synthesized) > 0 {
			notes = append(notes, "synthesized "+strings.Join(n.Synthesized, ","))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", n.Name, dash(n.Zone), dash(n.IP), dash(strings.Join(n.PodCIDRs, ",")), n.Pods, strings.Join(notes, "; "))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nDATAPLANE PROFILE\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, st := range settingTitles {
		first := true
		for _, e := range r.Profile.Evidence {
			if e.Setting != st.key {
				continue
			}
			title := st.title
			if !first {
				title = ""
			}
			first = false
			who := ""
			if e.Object != "" {
				who = "  [" + e.Object
				if e.Source != "" {
					who += " at " + e.Source
				}
				who += "]"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", title, e.Value, e.How, e.Detail, who)
		}
	}
	tw.Flush()
	if o := r.Profile.Overlay; o.Type != "none" {
		fmt.Fprintf(w, "  overlay: %s", o.Type)
		if o.Device != "" {
			fmt.Fprintf(w, " device %s", o.Device)
		}
		if o.VNI != 0 {
			fmt.Fprintf(w, " VNI %d", o.VNI)
		}
		if o.UDPPort != 0 {
			fmt.Fprintf(w, " UDP %d", o.UDPPort)
		}
		fmt.Fprintf(w, ", +%d bytes per packet → pod MTU %d\n", o.Overhead, r.Profile.PodMTU)
	}

	fmt.Fprintf(w, "\nOBJECTS\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  KIND\tGIVEN\tSYNTHESIZED\t")
	for _, c := range r.Counts {
		fmt.Fprintf(tw, "  %s\t%d\t%d\t\n", c.Kind, c.Given, c.Synthesized)
	}
	tw.Flush()
	if len(r.Custom) > 0 {
		byKind := map[string]int{}
		for _, c := range r.Custom {
			byKind[c.Kind]++
		}
		fmt.Fprintf(w, "  custom resources kept as unstructured (not modelled): %s\n", kindList(byKind))
	}
	if len(r.Ignored) > 0 {
		byKind := map[string]int{}
		for _, c := range r.Ignored {
			byKind[c.Ref.Kind]++
		}
		fmt.Fprintf(w, "  ignored (kinds kpath does not model): %s\n", kindList(byKind))
	}

	fmt.Fprintf(w, "\nNAMESPACES\n")
	for _, ns := range r.Namespaces {
		syn := ""
		if ns.Synthesized {
			syn = " (synthesized: referenced, not given)"
		}
		fmt.Fprintf(w, "  %-20s %3d pods  %3d services%s\n", ns.Name, ns.Pods, ns.Services, syn)
	}

	fmt.Fprintf(w, "\nSERVICES\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAMESPACE/NAME\tTYPE\tCLUSTER-IP\tEXTERNAL\tPORTS\tREADY\tNOTES")
	for _, s := range r.Services {
		ready := fmt.Sprintf("%d/%d", s.Ready, s.Total)
		if s.externalName {
			ready = "-"
		}
		fmt.Fprintf(tw, "  %s/%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Namespace, s.Name, s.Type, dash(s.ClusterIP),
			dash(strings.Join(s.External, ",")), strings.Join(s.Ports, ", "), ready, strings.Join(s.Notes, "; "))
	}
	tw.Flush()

	if len(r.Findings) > 0 {
		fmt.Fprintf(w, "\nWORTH A LOOK\n")
		for _, f := range r.Findings {
			fmt.Fprintf(w, "  • %s\n", f)
		}
	}

	if tries := suggestions(r); len(tries) > 0 {
		fmt.Fprintf(w, "\nTRY\n")
		for _, t := range tries {
			fmt.Fprintf(w, "  %s\n", t)
		}
	}

	fmt.Fprintf(w, "\nSYNTHESIZED (offline input lacks runtime state; every such object carries the %s annotation)\n", cluster.SynthesizedAnnotation)
	if len(r.Synthesized) == 0 {
		fmt.Fprintln(w, "  nothing: the input had all the runtime state kpath needs")
	}
	type agg struct {
		n    int
		from map[string]bool
	}
	groups := map[string]*agg{}
	var order []string
	for _, s := range r.Synthesized {
		what := s.Ref.Kind + " " + strings.Join(s.Fields, ",")
		if len(s.Fields) == 1 && s.Fields[0] == "*" {
			what = s.Ref.Kind + "s (whole objects)"
		}
		g := groups[what]
		if g == nil {
			g = &agg{from: map[string]bool{}}
			groups[what] = g
			order = append(order, what)
		}
		g.n++
		g.from[s.From] = true
	}
	sort.Strings(order)
	for _, k := range order {
		g := groups[k]
		var from []string
		for f := range g.from {
			from = append(from, f)
		}
		sort.Strings(from)
		if len(from) > 3 && verbose == 0 {
			from = append(from[:3], fmt.Sprintf("… %d more (-v)", len(g.from)-3))
		}
		fmt.Fprintf(w, "  %3d %s: %s\n", g.n, k, strings.Join(from, "; "))
	}
	if verbose > 0 {
		for _, s := range r.Synthesized {
			fmt.Fprintf(w, "      %s\n", s)
		}
	}

	var errs, warns, infos int
	for _, d := range r.Diagnostics {
		switch d.Severity {
		case cluster.SeverityError:
			errs++
		case cluster.SeverityWarning:
			warns++
		default:
			infos++
		}
	}
	fmt.Fprintf(w, "\nINPUT PROBLEMS (%d error(s), %d warning(s), %d note(s))\n", errs, warns, infos)
	if len(r.Diagnostics) == 0 {
		fmt.Fprintln(w, "  none")
	}
	for _, d := range r.Diagnostics {
		fmt.Fprintf(w, "  %s\n", d)
	}
	if len(r.Ignored) > 0 && verbose > 0 {
		fmt.Fprintf(w, "\nIGNORED OBJECTS\n")
		for _, i := range r.Ignored {
			fmt.Fprintf(w, "  %s (%s) at %s\n", i.Ref, i.APIVersion, i.Location)
		}
	}
}

func kindList(m map[string]int) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// suggestions are trace commands that follow the findings (the demo gets its curated stories).
func suggestions(r *InspectReport) []string {
	if len(r.Sources) > 0 && strings.HasPrefix(r.Sources[0], "demo/") {
		return []string{
			"kpath trace --demo shop/frontend http://cart.shop:8080/          # delivered across nodes over VXLAN",
			"kpath trace --demo shop/checkout cart.shop:8080                  # dropped by cart's default-deny ingress",
			"kpath trace --demo shop/checkout payments.shop:443               # rejected: no ready endpoints",
			"kpath trace --demo external:203.0.113.7 node/kpath-worker2:30080 # NodePort, externalTrafficPolicy Local",
			"kpath reach --demo --explain shop/checkout shop/cart",
		}
	}
	var out []string
	for _, s := range r.Services {
		if s.Namespace == "kube-system" || s.Namespace == "default" || s.externalName || len(s.Ports) == 0 {
			continue
		}
		p := s.Ports[0]
		if i := strings.Index(p, ":"); i >= 0 {
			p = p[i+1:]
		}
		port := strings.SplitN(p, "/", 2)[0]
		why := "a Service"
		switch {
		case s.Total > 0 && s.Ready == 0:
			why = "no ready endpoints"
		case s.headless:
			why = "headless: DNS returns pod IPs"
		}
		out = append(out, fmt.Sprintf("kpath trace -f … %s/<workload> %s.%s:%s    # %s", s.Namespace, s.Name, s.Namespace, port, why))
		if len(out) == 3 {
			break
		}
	}
	if len(out) > 0 {
		out = append(out, "kpath reach -f …    # who may talk to whom under the NetworkPolicies")
	}
	return out
}
