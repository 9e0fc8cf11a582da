package reach

import (
	"html/template"
	"io"
)

const htmlSource = `<!doctype html>
<html><head><meta charset="utf-8"><title>kpath reach</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em}
table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:12px}
th{background:#f4f4f4}
td.y{background:#d9f2d9}
td.n{background:#f8d7d7;color:#a33}
th.r{text-align:right;white-space:nowrap}
</style></head><body>
<h1>Connectivity matrix</h1>
<p>{{len .M.Workloads}} workloads, {{len .M.Cells}} allowed pairs, {{.M.Classes}} equivalence classes.{{if .Ports}} Ports: {{.Ports}}.{{end}}</p>
{{if .Grid}}
<table><tr><th>from \ to</th>{{range .M.Workloads}}<th>{{.ID}}</th>{{end}}</tr>
{{range $i, $r := .Grid}}<tr><th class="r">{{index $.M.Workloads $i | label}}</th>{{range $r}}{{if eq . "-"}}<td>·</td>{{else if eq . ""}}<td class="n">✕</td>{{else}}<td class="y">{{.}}</td>{{end}}{{end}}</tr>
{{end}}</table>
{{else}}<p>Too many workloads for a grid ({{len .M.Workloads}}); allowed pairs:</p>{{end}}
<h2>Allowed pairs</h2>
<table><tr><th>src</th><th>dst</th><th>conn</th></tr>
{{range .Rows}}<tr><td>{{.Src}}</td><td>{{.Dst}}</td><td>{{.Conn}}</td></tr>
{{end}}</table>
{{range .M.Notes}}<p>note: {{.}}</p>{{end}}
</body></html>
`

// writeHTML writes a standalone page: a colour grid (up to 60 workloads) and the list of allowed pairs.
func writeHTML(w io.Writer, m *Matrix) error {
	data := struct {
		M     *Matrix
		Rows  []row
		Grid  [][]string
		Ports string
	}{M: m, Rows: m.rows()}
	if m.filtered {
		data.Ports = m.Ports.String()
	}
	if n := len(m.Workloads); n > 0 && n <= 60 {
		data.Grid = make([][]string, n)
		for i := range data.Grid {
			data.Grid[i] = make([]string, n)
			data.Grid[i][i] = "-"
		}
		for _, c := range m.Cells {
			data.Grid[c.Src][c.Dst] = c.Conns.String()
		}
	}
	return htmlTmpl.Execute(w, data)
}

var htmlTmpl = template.Must(template.New("reach").Funcs(template.FuncMap{
	"label": func(w Workload) string { return w.ID() },
}).Parse(htmlSource))
