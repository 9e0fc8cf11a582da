package reach

import (
	"encoding/json"
	"io"
)

// Schema versions the JSON form of the matrix.
const Schema = "kpath.dev/reach/v1"

type jsonMatrix struct {
	Schema      string     `json:"schema"`
	Workloads   []Workload `json:"workloads"`
	Connections []row      `json:"connections"`
	Classes     int        `json:"classes"`
	ClassPairs  int        `json:"classPairs"`
	Ports       string     `json:"ports,omitempty"`
	Notes       []string   `json:"notes,omitempty"`
}

// writeJSON writes the matrix as an object; connections use netpol-analyzer's {src, dst, conn} rows.
func writeJSON(w io.Writer, m *Matrix) error {
	j := jsonMatrix{Schema: Schema, Workloads: m.Workloads, Connections: m.rows(), Classes: m.Classes, ClassPairs: m.ClassPair, Notes: m.Notes}
	if j.Connections == nil {
		j.Connections = []row{}
	}
	if m.filtered {
		j.Ports = m.Ports.String()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(j)
}
