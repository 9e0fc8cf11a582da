package lab

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/trace"
)

// RealChecks are the comparisons a --real lab adds to `lab trace`: the rules real kube-proxy programmed on the
// nodes the journey crossed versus `kpath rules`, real CoreDNS's answers to the journey's DNS queries versus the
// model's, and the EndpointSlice differences of the Services involved.
type RealChecks struct {
	Rules          []*RulesDiff `json:"rules"`
	DNS            []Difference `json:"dns"`
	DNSNotCompared []string     `json:"dnsNotCompared,omitempty"`
	Slices         []Difference `json:"endpointSlices"`
	// Errors are checks that could not run (plumbing), with the reason.
	Errors []string `json:"errors,omitempty"`
}

// Match says every real check agreed with the model.
func (c *RealChecks) Match() bool {
	if c == nil {
		return true
	}
	for _, r := range c.Rules {
		if !r.Match() {
			return false
		}
	}
	return len(c.DNS) == 0 && len(c.Slices) == 0 && len(c.Errors) == 0
}

func realChecks(ctx context.Context, st *State, snap *cluster.Snapshot, res *Result) *RealChecks {
	c := &RealChecks{Rules: []*RulesDiff{}, DNS: []Difference{}, Slices: []Difference{}}
	nodes := map[string]bool{}
	for _, j := range []*trace.Journey{res.Predicted, res.Observed} {
		if j == nil {
			continue
		}
		for _, h := range j.Hops {
			if h.Location.Kind != trace.OnNode && h.Location.Node == "" {
				continue
			}
			name := h.Location.Node
			if h.Location.Kind == trace.OnNode {
				name = h.Location.Name
			}
			if st.Plan.Node(name) != nil {
				nodes[name] = true
			}
		}
	}
	var ns []string
	for n := range nodes {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	for _, n := range ns {
		d, err := NodeRulesDiff(ctx, st, snap, n)
		if err != nil {
			c.Errors = append(c.Errors, "rules diff on "+n+": "+err.Error())
			continue
		}
		c.Rules = append(c.Rules, d)
	}
	if p := res.Predicted; p != nil && p.DNS != nil {
		var qs []DNSQuestion
		seen := map[string]bool{}
		for _, q := range p.DNS.Queries {
			if strings.HasPrefix(q.Why, "(sent only if") || seen[q.Name+" "+q.Type] {
				continue
			}
			seen[q.Name+" "+q.Type] = true
			qs = append(qs, DNSQuestion{Name: q.Name, Type: q.Type})
		}
		d, nc, err := DNSDiff(st, snap, qs)
		if err != nil {
			c.Errors = append(c.Errors, "DNS diff: "+err.Error())
		}
		c.DNS, c.DNSNotCompared = append(c.DNS, d...), nc
	}
	// Slice differences of the Services the prediction names.
	var objs strings.Builder
	if p := res.Predicted; p != nil {
		for _, h := range p.Hops {
			for _, s := range h.Steps {
				objs.WriteString(s.Object + " " + s.Rule + "\n")
			}
		}
		if p.DNS != nil {
			objs.WriteString(p.DNS.Name + "\n")
		}
	}
	for _, d := range st.Real.SliceDiffs {
		svc := strings.Fields(strings.TrimPrefix(d.What, "EndpointSlice "))[0]
		if strings.Contains(objs.String(), svc) {
			c.Slices = append(c.Slices, d)
		}
	}
	return c
}

// writeRealChecks prints the --real comparisons of a lab trace.
func writeRealChecks(w io.Writer, c *RealChecks) {
	if c == nil {
		return
	}
	fmt.Fprintln(w, "\nreal components (--real):")
	for _, r := range c.Rules {
		if r.Match() {
			fmt.Fprintf(w, "  rules on %s: real kube-proxy (%s) == kpath rules (%d lines compared, order-insensitive)\n", r.Node, r.Mode, r.Compared)
		} else {
			fmt.Fprintf(w, "  rules on %s: DIFFERENT (%d only in real kube-proxy, %d only in kpath rules, of %d lines)\n", r.Node, len(r.OnlyReal), len(r.OnlyModel), r.Compared)
			for _, l := range r.OnlyReal {
				fmt.Fprintf(w, "    + real:  %s\n", l)
			}
			for _, l := range r.OnlyModel {
				fmt.Fprintf(w, "    - kpath: %s\n", l)
			}
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "    note: %s\n", n)
		}
	}
	if len(c.DNS) == 0 && len(c.DNSNotCompared) == 0 {
		fmt.Fprintln(w, "  DNS: real CoreDNS answers == the model's")
	}
	for _, d := range c.DNS {
		fmt.Fprintf(w, "  %s\n    model:        %s\n    real CoreDNS: %s\n", d.What, d.Predicted, d.Observed)
	}
	for _, s := range c.DNSNotCompared {
		fmt.Fprintf(w, "  not compared: %s\n", s)
	}
	if len(c.Slices) == 0 {
		fmt.Fprintln(w, "  EndpointSlices of the Services involved: the real controller's == the snapshot's")
	}
	for _, d := range c.Slices {
		fmt.Fprintf(w, "  %s\n    snapshot:        %s\n    real controller: %s\n", d.What, d.Predicted, d.Observed)
	}
	for _, e := range c.Errors {
		fmt.Fprintf(w, "  could not check: %s\n", e)
	}
}

// writeRealStatus prints what a --real lab runs.
func writeRealStatus(w io.Writer, st *State) {
	rs := st.Real
	if rs == nil {
		return
	}
	fmt.Fprintf(w, "  real components: API server %s in %s (kubeconfig %s/pki/admin.kubeconfig, dial it from that namespace)\n", rs.APIServer, rs.ControlPlaneNS, rs.Dir)
	for _, p := range rs.Processes {
		state := "running"
		if !p.alive() {
			state = "NOT RUNNING"
		}
		fmt.Fprintf(w, "    %-40s pid %-7d %s in %s (log %s)\n", p.Name, p.PID, state, p.NS, p.Log)
	}
	if len(rs.Applied) > 0 {
		var ks []string
		for k, n := range rs.Applied {
			ks = append(ks, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(ks)
		fmt.Fprintf(w, "    applied: %s\n", strings.Join(ks, ", "))
	}
	for _, s := range rs.Skipped {
		fmt.Fprintf(w, "    not applied: %s\n", s)
	}
	for _, s := range rs.Notes {
		fmt.Fprintf(w, "    note: %s\n", s)
	}
	for _, c := range rs.CorefileChanges {
		fmt.Fprintf(w, "    Corefile: %s\n", c)
	}
	if len(rs.SliceDiffs) == 0 {
		fmt.Fprintln(w, "    EndpointSlices: the real controller's == the snapshot's")
	}
	for _, d := range rs.SliceDiffs {
		fmt.Fprintf(w, "    %s\n      snapshot:        %s\n      real controller: %s\n", d.What, d.Predicted, d.Observed)
	}
}
