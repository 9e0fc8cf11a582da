package cli

import (
	"encoding/json"
	"io"

	"sigs.k8s.io/yaml"
)

// writeStructured writes v as JSON (indented) or YAML. Both come from the same JSON encoding, so field names and
// omissions are identical in the two formats.
func writeStructured(w io.Writer, format string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if format == "yaml" {
		data, err = yaml.JSONToYAML(data)
		if err != nil {
			return err
		}
		_, err = w.Write(data)
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}
