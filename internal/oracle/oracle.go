// Package oracle finds the external test data (../shared/oracles) that tests convert into cases, and skips tests
// cleanly where it is absent so the suite still passes on a user's machine.
package oracle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"
)

// Dir returns the oracles directory joined with parts: $KPATH_ORACLES when set, else <repo root>/../shared/oracles.
// When the directory does not exist the test is skipped with a message saying how to provide it.
func Dir(t testing.TB, parts ...string) string {
	t.Helper()
	root := os.Getenv("KPATH_ORACLES")
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Skipf("oracles: %v", err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				root = filepath.Join(d, "..", "shared", "oracles")
				break
			}
			if filepath.Dir(d) == d {
				t.Skip("oracles: repository root (go.mod) not found; set KPATH_ORACLES to the oracles directory")
			}
		}
	}
	p := filepath.Join(append([]string{root}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("oracle data not found at %s (set KPATH_ORACLES to the oracles directory): %v", p, err)
	}
	return p
}

// KubeProxyObjects decodes the Services and EndpointSlices of a kube-proxy oracle record's input.yaml (multi-document
// YAML after its config comment), strictly: an unexpected kind or field fails the test, naming the file and document.
func KubeProxyObjects(t testing.TB, path, docs string) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	t.Helper()
	var svcs []*corev1.Service
	var slices []*discoveryv1.EndpointSlice
	for i, doc := range strings.Split(docs, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var meta struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s doc %d: %v", path, i, err)
		}
		switch meta.Kind {
		case "Service":
			s := &corev1.Service{}
			if err := yaml.UnmarshalStrict([]byte(doc), s); err != nil {
				t.Fatalf("%s doc %d: %v", path, i, err)
			}
			svcs = append(svcs, s)
		case "EndpointSlice":
			s := &discoveryv1.EndpointSlice{}
			if err := yaml.UnmarshalStrict([]byte(doc), s); err != nil {
				t.Fatalf("%s doc %d: %v", path, i, err)
			}
			slices = append(slices, s)
		default:
			t.Fatalf("%s doc %d: unexpected kind %q", path, i, meta.Kind)
		}
	}
	return svcs, slices
}
