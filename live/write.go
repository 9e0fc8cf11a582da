package live

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"
)

// Object is one listed object as generic JSON, ready to be written (and redacted).
type Object = map[string]any

// Objects drains every kind's pages (use instead of Sources, not with it) and returns the listed objects with
// apiVersion and kind set on each item (list responses leave them out) and managedFields dropped, in Kinds order.
func (r *Report) Objects() ([]Object, error) {
	var out []Object
	for i, s := range r.streams {
		k := r.Kinds[i]
		for {
			page, err := s.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			var list struct {
				APIVersion string            `json:"apiVersion"`
				Items      []json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(page, &list); err != nil {
				return nil, fmt.Errorf("%s: decoding %s: %w", r.Name, k.Kind.GroupResource(), err)
			}
			for _, raw := range list.Items {
				var o Object
				d := json.NewDecoder(bytes.NewReader(raw))
				d.UseNumber()
				if err := d.Decode(&o); err != nil {
					return nil, fmt.Errorf("%s: decoding %s: %w", r.Name, k.Kind.GroupResource(), err)
				}
				o["apiVersion"] = list.APIVersion
				o["kind"] = k.Kind.Kind
				if md, ok := o["metadata"].(map[string]any); ok {
					delete(md, "managedFields")
				}
				out = append(out, o)
			}
		}
	}
	return out, r.Wait()
}

// Format of a snapshot file.
type Format string

const (
	FormatJSON Format = "json"
	FormatYAML Format = "yaml"
)

// FormatFor picks the format and compression from a file name: .json or .yaml/.yml, optionally followed by .gz.
// Other names are YAML.
func FormatFor(name string) (Format, bool) {
	n := strings.ToLower(name)
	gz := strings.HasSuffix(n, ".gz")
	n = strings.TrimSuffix(n, ".gz")
	if strings.HasSuffix(n, ".json") {
		return FormatJSON, gz
	}
	return FormatYAML, gz
}

// WriteSnapshot writes objects as one file the offline loader reads (-f): a JSON `kind: List`, or a YAML stream of
// documents with a comment header. header lines (what was read, what could not be listed) go into the YAML header;
// JSON has no comments.
func WriteSnapshot(w io.Writer, objs []Object, f Format, gz bool, header []string) error {
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(w)
		w = zw
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	var err error
	switch f {
	case FormatJSON:
		err = writeJSON(bw, objs)
	default:
		err = writeYAML(bw, objs, header)
	}
	if err == nil {
		err = bw.Flush()
	}
	if zw != nil {
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

func writeJSON(w *bufio.Writer, objs []Object) error {
	w.WriteString(`{"apiVersion":"v1","kind":"List","items":[`)
	for i, o := range objs {
		if i > 0 {
			w.WriteByte(',')
		}
		w.WriteString("\n")
		data, err := json.Marshal(o)
		if err != nil {
			return err
		}
		w.Write(data)
	}
	_, err := w.WriteString("\n]}\n")
	return err
}

func writeYAML(w *bufio.Writer, objs []Object, header []string) error {
	for _, h := range header {
		fmt.Fprintf(w, "# %s\n", h)
	}
	for _, o := range objs {
		data, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		w.WriteString("---\n")
		w.Write(data)
	}
	return nil
}
