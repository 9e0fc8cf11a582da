package cluster

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kpath/kpath/internal/oracle"
)

// Oracle input dirs that are broken on purpose (netpol-analyzer's error-path tests). Each must load what it can and
// report the broken document as an error; anything else must load without errors.
var intentionallyBroken = map[string]string{
	"bad_netpols":                           "policies with an invalid selector value ($backendservice) and ipBlock cidr \"A\"",
	"dirty":                                 "unrendered Helm templates ({{ printf ... }}) are not YAML",
	"document_with_syntax_error":            "a YAML syntax error in one document",
	"malformed-pod-example-2":               "containers[].ports is an object, not a list",
	"malformed-pod-example-3":               "containers[].ports is an object, not a list",
	"malformed-pod-example-5":               "a YAML syntax error in the pod",
	"malformed_pod_example":                 "containerPort is a list; the only object fails, so nothing loads",
	"onlineboutique_with_pods_severe_error": "a YAML syntax error in pods.yaml",
}

func loadDir(t *testing.T, dir string) (*Snapshot, error) {
	srcs, err := FileSources([]string{dir}, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	return Load(srcs, Options{})
}

func TestNetpolAnalyzerInputsLoad(t *testing.T) {
	root := oracle.Dir(t, "netpol-analyzer", "tests")
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		name := e.Name()
		t.Run("the "+name+" manifests load", func(t *testing.T) {
			s, err := loadDir(t, filepath.Join(root, name))
			why, broken := intentionallyBroken[name]
			var errs []string
			if err != nil {
				errs = append(errs, err.Error())
			} else {
				errs = diagsWith(s, SeverityError)
			}
			switch {
			case broken && len(errs) == 0:
				t.Errorf("expected an input error (%s), got none", why)
			case !broken && len(errs) > 0:
				t.Errorf("unexpected errors:\n%s", strings.Join(errs, "\n"))
			}
		})
	}
}

func TestKubernetesE2ENetpolManifestsLoad(t *testing.T) {
	root := oracle.Dir(t, "k8s-e2e-netpol", "derived", "manifests")
	files, _ := filepath.Glob(filepath.Join(root, "*.yaml"))
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no manifests found")
	}
	for _, f := range files {
		t.Run("the "+filepath.Base(f)+" manifests load", func(t *testing.T) {
			s, err := loadDir(t, f)
			if err != nil {
				t.Fatal(err)
			}
			if errs := diagsWith(s, SeverityError); len(errs) > 0 {
				t.Errorf("unexpected errors:\n%s", strings.Join(errs, "\n"))
			}
			if len(s.Pods) == 0 || len(s.Namespaces) == 0 {
				t.Errorf("no pods or namespaces loaded")
			}
		})
	}
}
