package live

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestClusterRole(t *testing.T) {
	type rule struct {
		APIGroups []string `json:"apiGroups"`
		Resources []string `json:"resources"`
		Verbs     []string `json:"verbs"`
	}
	doc := strings.Split(ClusterRoleYAML("kpath-reader", "User", "alice", ""), "\n---\n")[0]
	var role struct {
		Rules []rule `json:"rules"`
	}
	if err := yaml.Unmarshal([]byte(doc), &role); err != nil {
		t.Fatalf("the role is not YAML: %v", err)
	}
	granted := map[string]bool{}
	for _, r := range role.Rules {
		if len(r.Verbs) != 1 || r.Verbs[0] != "list" {
			t.Errorf("rule for %v grants %v: only list is allowed", r.Resources, r.Verbs)
		}
		for _, res := range r.Resources {
			if res == "secrets" || res == "*" {
				t.Errorf("the role grants %q", res)
			}
			granted[res+"."+r.APIGroups[0]] = true
		}
	}
	for _, k := range Kinds {
		if !granted[k.Resource+"."+k.Group] {
			t.Errorf("every listed kind needs a rule: %s is missing", k.GroupResource())
		}
	}
	if len(granted) != len(Kinds) {
		t.Errorf("the role grants %d resources, kpath lists %d", len(granted), len(Kinds))
	}
}
