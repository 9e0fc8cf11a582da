package reach

import (
	"fmt"
	"io"
	"strings"
)

// writeMD writes a Markdown table, one row per allowed pair.
func writeMD(w io.Writer, m *Matrix) error {
	fmt.Fprintln(w, "| src | dst | conn |")
	fmt.Fprintln(w, "|-----|-----|------|")
	esc := strings.NewReplacer("|", `\|`)
	for _, r := range m.rows() {
		if _, err := fmt.Fprintf(w, "| %s | %s | %s |\n", esc.Replace(r.Src), esc.Replace(r.Dst), esc.Replace(r.Conn)); err != nil {
			return err
		}
	}
	return nil
}
