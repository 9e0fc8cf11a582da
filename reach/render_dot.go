package reach

import (
	"fmt"
	"io"
	"sort"
	"strconv"
)

// writeDOT writes a Graphviz digraph: one cluster per namespace, one edge per allowed pair labelled with its
// connections.
func writeDOT(w io.Writer, m *Matrix) error {
	fmt.Fprintln(w, "digraph {")
	fmt.Fprintln(w, `	rankdir=LR; node [shape=box, style=rounded, fontname="Helvetica"]; edge [fontname="Helvetica", fontsize=10]`)
	byNS := map[string][]int{}
	var nss []string
	for i, wl := range m.Workloads {
		if _, ok := byNS[wl.Namespace]; !ok {
			nss = append(nss, wl.Namespace)
		}
		byNS[wl.Namespace] = append(byNS[wl.Namespace], i)
	}
	sort.Strings(nss)
	for k, ns := range nss {
		fmt.Fprintf(w, "\tsubgraph cluster_%d {\n\t\tlabel=%s\n", k, strconv.Quote(ns))
		for _, i := range byNS[ns] {
			fmt.Fprintf(w, "\t\t%s [label=%s]\n", strconv.Quote(m.Workloads[i].Label()), strconv.Quote(m.Workloads[i].Name+"["+m.Workloads[i].Kind+"]"))
		}
		fmt.Fprintln(w, "\t}")
	}
	for i, r := range m.External {
		fmt.Fprintf(w, "\t%s [shape=ellipse, label=%s]\n", strconv.Quote(r.String()+"[External]"), strconv.Quote(r.String()))
		_ = i
	}
	for _, r := range m.rows() {
		fmt.Fprintf(w, "\t%s -> %s [label=%s]\n", strconv.Quote(r.Src), strconv.Quote(r.Dst), strconv.Quote(r.Conn))
	}
	_, err := fmt.Fprintln(w, "}")
	return err
}
