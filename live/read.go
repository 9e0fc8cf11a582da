package live

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/kpath/kpath/cluster"
)

// ReadObjects decodes offline sources (manifests, kubectl dumps, the demo) into objects for WriteSnapshot, so a
// dump can be normalised and redacted like a live snapshot. Lists are flattened; Secrets are dropped unread.
func ReadObjects(srcs []cluster.Source) ([]Object, error) {
	var out []Object
	for _, src := range srcs {
		rc, err := src.Open()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", src.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", src.Name, err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var o Object
			if err := dec.Decode(&o); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, fmt.Errorf("reading %s: %w", src.Name, err)
			}
			out = appendObject(out, o, "", "")
		}
	}
	return out, nil
}

func appendObject(out []Object, o Object, listAPIVersion, listKind string) []Object {
	if o == nil {
		return out
	}
	if items, ok := o["items"].([]any); ok {
		av, _ := o["apiVersion"].(string)
		k, _ := o["kind"].(string)
		if len(k) > 4 && k[len(k)-4:] == "List" {
			k = k[:len(k)-4]
		} else {
			k = ""
		}
		for _, it := range items {
			if m, ok := it.(map[string]any); ok {
				out = appendObject(out, m, av, k)
			}
		}
		return out
	}
	if _, ok := o["kind"]; !ok && listKind != "" {
		o["kind"], o["apiVersion"] = listKind, listAPIVersion
	}
	if o["kind"] == "Secret" {
		return out
	}
	if md, ok := o["metadata"].(map[string]any); ok {
		delete(md, "managedFields")
	}
	return append(out, o)
}
