package reach

import (
	"fmt"
	"io"
)

// Formats lists the matrix output formats, one renderer file each.
var Formats = []string{"text", "csv", "json", "md", "dot", "html"}

// Render writes the matrix in one of Formats.
func Render(w io.Writer, m *Matrix, format string) error {
	switch format {
	case "", "text":
		return writeText(w, m)
	case "csv":
		return writeCSV(w, m)
	case "json":
		return writeJSON(w, m)
	case "md":
		return writeMD(w, m)
	case "dot":
		return writeDOT(w, m)
	case "html":
		return writeHTML(w, m)
	}
	return fmt.Errorf("unknown format %q (want one of %v)", format, Formats)
}

// row is one allowed line of the matrix in netpol-analyzer's vocabulary.
type row struct {
	Src  string `json:"src"`
	Dst  string `json:"dst"`
	Conn string `json:"conn"`
}

// rows lists every allowed pair (workloads, then external ranges) in sorted order.
func (m *Matrix) rows() []row {
	var out []row
	for _, c := range m.ExtCells {
		if c.Ingress {
			out = append(out, row{m.External[c.Range].String() + "[External]", m.Workloads[c.Workload].Label(), c.Conns.String()})
		}
	}
	for _, c := range m.Cells {
		out = append(out, row{m.Workloads[c.Src].Label(), m.Workloads[c.Dst].Label(), c.Conns.String()})
	}
	for _, c := range m.ExtCells {
		if !c.Ingress {
			out = append(out, row{m.Workloads[c.Workload].Label(), m.External[c.Range].String() + "[External]", c.Conns.String()})
		}
	}
	return out
}
