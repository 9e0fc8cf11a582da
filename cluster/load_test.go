package cluster

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func load(t *testing.T, opts Options, files ...string) (*Snapshot, error) {
	t.Helper()
	var srcs []Source
	for i := 0; i+1 < len(files); i += 2 {
		srcs = append(srcs, BytesSource(files[i], []byte(files[i+1])))
	}
	return Load(srcs, opts)
}

func mustLoad(t *testing.T, files ...string) *Snapshot {
	t.Helper()
	s, err := load(t, Options{}, files...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return s
}

func diagsWith(s *Snapshot, sev Severity) []string {
	var out []string
	for _, d := range s.Diagnostics {
		if d.Severity == sev {
			out = append(out, d.String())
		}
	}
	return out
}

const podYAML = `apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: shop
  labels: {app: web}
spec:
  containers:
  - name: c
    image: nginx
    ports:
    - {name: http, containerPort: 8080}
`

func pod(name string) string { return strings.Replace(podYAML, "%s", name, 1) }

func TestLoaderReadsEveryInputShape(t *testing.T) {
	kubectlList := `apiVersion: v1
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: a
    namespace: shop
  spec:
    containers: [{name: c, image: x}]
- apiVersion: v1
  kind: Service
  metadata:
    name: web
    namespace: shop
  spec:
    selector: {app: web}
    ports: [{port: 80}]
kind: List
metadata:
  resourceVersion: ""
`
	jsonList := `{
  "apiVersion": "v1",
  "items": [
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "shop"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
  ],
  "kind": "List",
  "metadata": {"resourceVersion": ""}
}`
	typedPodList := `{"kind": "PodList", "apiVersion": "v1", "items": [
  {"metadata": {"name": "a", "namespace": "shop"}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
  {"metadata": {"name": "b", "namespace": "shop"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}]}`
	indentedItems := "apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Namespace\n    metadata:\n      name: one\n  - apiVersion: v1\n    kind: Namespace\n    metadata:\n      name: two\n"
	jsonThenYAML := `{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "first"}}
---
apiVersion: v1
kind: Namespace
metadata:
  name: second
`
	cases := []struct {
		name  string
		input string
		want  map[string]bool // objects that must be present, as Kind ns/name
	}{
		{"a multi-document YAML stream loads every document",
			pod("a") + "---\n" + pod("b") + "---\n# only a comment\n---\n",
			map[string]bool{"Pod shop/a": true, "Pod shop/b": true}},
		{"a kubectl get -o yaml List loads each item", kubectlList,
			map[string]bool{"Pod shop/a": true, "Service shop/web": true}},
		{"a kubectl get -o json List is streamed item by item", jsonList,
			map[string]bool{"Pod shop/a": true, "Namespace shop": true}},
		{"a typed PodList whose items have no kind takes the kind from the list", typedPodList,
			map[string]bool{"Pod shop/a": true, "Pod shop/b": true}},
		{"a YAML List with indented items loads each item", indentedItems,
			map[string]bool{"Namespace one": true, "Namespace two": true}},
		{"a JSON document followed by YAML documents loads both", jsonThenYAML,
			map[string]bool{"Namespace first": true, "Namespace second": true}},
		{"a JSON array of objects loads each", `[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}]`,
			map[string]bool{"Namespace x": true}},
		{"a byte order mark and leading blank lines are skipped", "\ufeff\n\n" + pod("a"),
			map[string]bool{"Pod shop/a": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustLoad(t, "in", tc.input)
			if errs := diagsWith(s, SeverityError); len(errs) > 0 {
				t.Fatalf("unexpected errors: %v", errs)
			}
			for want := range tc.want {
				kind, rest, _ := strings.Cut(want, " ")
				ns, name, ok := strings.Cut(rest, "/")
				if !ok {
					ns, name = "", rest
				}
				if _, found := s.SourceOf(Ref{Kind: kind, Namespace: ns, Name: name}); !found {
					t.Errorf("%s not loaded", want)
				}
			}
		})
	}
}

func TestBadInputIsReportedWithLocationAndTheRestLoads(t *testing.T) {
	cases := []struct {
		name     string
		input    string
		wantDiag string // substring of one diagnostic
		severity Severity
		keeps    []Ref
	}{
		{"malformed YAML names the file line and document and later documents still load",
			pod("a") + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: [oops\n---\n" + pod("c"),
			"in:17 (document 2): invalid YAML", SeverityError,
			[]Ref{{"Pod", "shop", "a"}, {"Pod", "shop", "c"}}},
		{"invalid JSON in a List keeps the items before it and names the line",
			"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"ok\"}},\n{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\": oops}}\n]}",
			"in:3", SeverityError, []Ref{{"Namespace", "", "ok"}}},
		{"a field of the wrong type names the object",
			"apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers:\n  - name: c\n    ports: {containerPort: 80}\n---\n" + pod("ok"),
			"Pod shop/p: cannot decode", SeverityError, []Ref{{"Pod", "shop", "ok"}}},
		{"an object without kind is an error naming its location",
			"apiVersion: v1\nmetadata: {name: x}\n---\n" + pod("ok"), "in:1 (document 1) kind: object has no kind", SeverityError,
			[]Ref{{"Pod", "shop", "ok"}}},
		{"a document that is not a Kubernetes object is a warning",
			"foo: bar\n---\n" + pod("ok"), "not a Kubernetes object", SeverityWarning, []Ref{{"Pod", "shop", "ok"}}},
		{"duplicate objects warn naming both sources",
			pod("a") + "---\n" + pod("a"), "duplicate of the object at in:1 (document 1)", SeverityWarning,
			[]Ref{{"Pod", "shop", "a"}}},
		{"an invalid pod IP is an error naming the object and field",
			pod("a") + "status:\n  podIP: 10.0.0.300\n", "Pod shop/a status.podIPs[0]: \"10.0.0.300\" is not an IP address", SeverityError,
			[]Ref{{"Pod", "shop", "a"}}},
		{"an invalid ipBlock CIDR is an error naming the policy and field",
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: shop}\nspec:\n  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/33}\n",
			"NetworkPolicy shop/np spec.ingress[0].from[0].ipBlock.cidr", SeverityError, []Ref{{"NetworkPolicy", "shop", "np"}}},
		{"an invalid label selector is an error naming the policy and field",
			"apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: np, namespace: shop}\nspec:\n  podSelector:\n    matchExpressions: [{key: app, operator: Sometimes, values: [a]}]\n",
			"NetworkPolicy shop/np spec.podSelector: invalid label selector", SeverityError, []Ref{{"NetworkPolicy", "shop", "np"}}},
		{"an invalid Service ClusterIP is an error and the Service gets a synthesized one",
			"apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: shop}\nspec:\n  clusterIP: 10.96.0.999\n  ports: [{port: 80}]\n",
			"Service shop/s spec.clusterIPs[0]", SeverityError, []Ref{{"Service", "shop", "s"}}},
		{"a CronJob without a running Job is a note",
			"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: cj, namespace: shop}\nspec:\n  schedule: '* * * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers: [{name: c, image: x}]\n",
			"no pods were synthesized", SeverityInfo, []Ref{{"CronJob", "shop", "cj"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := mustLoad(t, "in", tc.input)
			found := false
			for _, d := range s.Diagnostics {
				if d.Severity == tc.severity && strings.Contains(d.String(), tc.wantDiag) {
					found = true
				}
			}
			if !found {
				var all []string
				for _, d := range s.Diagnostics {
					all = append(all, d.String())
				}
				t.Errorf("no %s diagnostic containing %q; got:\n%s", tc.severity, tc.wantDiag, strings.Join(all, "\n"))
			}
			for _, r := range tc.keeps {
				if _, ok := s.SourceOf(r); !ok {
					t.Errorf("%s was not loaded", r)
				}
			}
		})
	}
}

func TestKindsOutsideTheModelAreListedNotLost(t *testing.T) {
	s := mustLoad(t, "in", `apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: shop}
data: {password: aHVudGVyMg==}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web, namespace: shop}
---
apiVersion: route.openshift.io/v1
kind: Route
metadata: {name: web, namespace: shop}
spec: {to: {kind: Service, name: web}}
`)
	if len(s.Custom) != 1 || s.Custom[0].GetKind() != "Route" {
		t.Errorf("custom resources = %v, want the Route kept as unstructured", s.Custom)
	}
	kinds := map[string]bool{}
	for _, i := range s.Ignored {
		kinds[i.Ref.Kind] = true
	}
	if !kinds["Secret"] || !kinds["Ingress"] {
		t.Errorf("ignored = %v, want Secret and Ingress listed", s.Ignored)
	}
}

func TestEmptyAndStrictInput(t *testing.T) {
	t.Run("input with no objects is an empty-input error", func(t *testing.T) {
		_, err := load(t, Options{}, "empty.yaml", "# nothing here\n---\n")
		if !IsEmptyInput(err) {
			t.Fatalf("err = %v, want empty input", err)
		}
	})
	t.Run("input where every document fails is an error but not empty", func(t *testing.T) {
		_, err := load(t, Options{}, "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata: [\n")
		if err == nil || IsEmptyInput(err) {
			t.Fatalf("err = %v, want a load error that is not 'empty'", err)
		}
	})
	t.Run("strict mode stops at the first error", func(t *testing.T) {
		_, err := load(t, Options{Strict: true}, "a.yaml", pod("a")+"---\nkind: Pod\n", "b.yaml", pod("b"))
		if err == nil || !strings.Contains(err.Error(), "--strict") || !strings.Contains(err.Error(), "a.yaml:") {
			t.Fatalf("err = %v, want a --strict error naming a.yaml", err)
		}
	})
	t.Run("strict mode passes clean input", func(t *testing.T) {
		if _, err := load(t, Options{Strict: true}, "a.yaml", pod("a")); err != nil {
			t.Fatal(err)
		}
	})
}

func TestDefaultNamespaceIsGivenToObjectsWithout(t *testing.T) {
	s, err := load(t, Options{DefaultNamespace: "team"}, "in", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
	if err != nil {
		t.Fatal(err)
	}
	if s.ConfigMap("team", "c") == nil {
		t.Fatalf("ConfigMap not placed in the default namespace")
	}
	if s.Namespace("team") == nil || !IsSynthesized(s.Namespace("team"), "*") {
		t.Errorf("namespace team should be synthesized")
	}
}

func TestManagedFieldsAndLastAppliedAreDropped(t *testing.T) {
	s := mustLoad(t, "in", `apiVersion: v1
kind: Pod
metadata:
  name: a
  namespace: shop
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"huge": true}'
    keep: me
  managedFields:
  - manager: kubectl
    operation: Apply
spec:
  containers: [{name: c, image: x}]
`)
	p := s.Pod("shop", "a")
	if len(p.ManagedFields) != 0 || p.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "" || p.Annotations["keep"] != "me" {
		t.Errorf("metadata = %+v", p.ObjectMeta)
	}
	_ = corev1.PodRunning
}
