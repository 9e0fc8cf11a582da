package reach

import (
	"encoding/csv"
	"io"
)

// writeCSV writes "src,dst,conn" with a header, one row per allowed pair.
func writeCSV(w io.Writer, m *Matrix) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"src", "dst", "conn"}); err != nil {
		return err
	}
	for _, r := range m.rows() {
		if err := cw.Write([]string{r.Src, r.Dst, r.Conn}); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
