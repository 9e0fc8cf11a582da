package reach

import (
	"fmt"
	"io"
	"strings"
)

// writeText prints one line per allowed pair, as netpol-analyzer does: "src => dst : conns".
func writeText(w io.Writer, m *Matrix) error {
	for _, r := range m.rows() {
		if _, err := fmt.Fprintf(w, "%s => %s : %s\n", r.Src, r.Dst, r.Conn); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\n%d workloads, %d allowed pairs; %d equivalence classes, %d class pairs evaluated\n",
		len(m.Workloads), len(m.Cells), m.Classes, m.ClassPair)
	for _, n := range m.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return err
}

// WriteExplainText prints an Explanation in the tone of netpol-analyzer --explain.
func WriteExplainText(w io.Writer, x *Explanation) error {
	verdict := "ALLOWED"
	if !x.Allowed() {
		verdict = "DENIED"
	}
	fmt.Fprintf(w, "%s => %s: %s\n", x.Src, x.Dst, verdict)
	fmt.Fprintf(w, "  pods: %s → %s\n", x.SrcPod, x.DstPod)
	fmt.Fprintf(w, "  allowed connections: %s\n", x.Conns)
	for _, c := range x.Checks {
		d := c.Decision
		fmt.Fprintf(w, "\n  %s %d: %s\n", c.Protocol, c.Port, strings.ToUpper(string(d.Verdict)))
		for _, side := range []struct {
			name string
			dir  func() (string, string, string, []string)
		}{
			{"egress ", func() (string, string, string, []string) {
				return string(d.Egress.Verdict), d.Egress.Why, d.Egress.Rule, d.Egress.Policies
			}},
			{"ingress", func() (string, string, string, []string) {
				return string(d.Ingress.Verdict), d.Ingress.Why, d.Ingress.Rule, d.Ingress.Policies
			}},
		} {
			v, why, rule, pols := side.dir()
			fmt.Fprintf(w, "    %s %-12s %s\n", side.name, v, why)
			if rule != "" {
				fmt.Fprintf(w, "            rule: %s\n", rule)
			}
			if len(pols) > 0 {
				fmt.Fprintf(w, "            selected by: %s\n", strings.Join(pols, ", "))
			}
		}
	}
	for _, n := range x.Notes {
		fmt.Fprintln(w, "  note:", n)
	}
	return nil
}
