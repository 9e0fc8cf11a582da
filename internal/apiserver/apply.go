package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
)

// Applied says what Apply did with a set of fixtures.
type Applied struct {
	// Objects were created (or updated) on the server, in "Kind ns/name" form.
	Objects []string
	// Skipped are objects of kinds the server does not serve (CRDs not installed), with the reason.
	Skipped []string
	// Namespaces were created because objects used them without a Namespace manifest.
	Namespaces []string
}

// ReadManifests decodes every YAML/JSON document in the files (or the .yaml/.yml/.json files of directories),
// flattening Lists.
func ReadManifests(paths ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, p := range paths {
		var files []string
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if st.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			for _, e := range entries {
				n := strings.ToLower(e.Name())
				if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json")) {
					files = append(files, filepath.Join(p, e.Name()))
				}
			}
			sort.Strings(files)
		} else {
			files = []string{p}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			objs, err := DecodeManifests(data)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out = append(out, objs...)
		}
	}
	return out, nil
}

// DecodeManifests splits a YAML or JSON stream into objects, flattening Lists (items of a typed list such as PodList
// take their kind from it). Documents that are not objects (expected-output files beside manifests) are skipped.
func DecodeManifests(data []byte) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		m, ok := v.(map[string]any)
		if !ok {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if items, ok := m["items"].([]any); ok {
			kind := strings.TrimSuffix(u.GetKind(), "List")
			for _, it := range items {
				im, ok := it.(map[string]any)
				if !ok {
					continue
				}
				iu := &unstructured.Unstructured{Object: im}
				if iu.GetKind() == "" && kind != "" && kind != u.GetKind() {
					iu.SetKind(kind)
					iu.SetAPIVersion(u.GetAPIVersion())
				}
				if iu.GetKind() != "" {
					out = append(out, iu)
				}
			}
			continue
		}
		if u.GetKind() != "" {
			out = append(out, u)
		}
	}
}

// Apply creates the objects as admin (updating ones that exist), namespaces first, and then writes each object's
// status through the status subresource, as the kubelet and controllers would report it: the create call drops
// status. Objects whose kind the server does not serve are skipped and reported.
func (s *Server) Apply(ctx context.Context, objs []*unstructured.Unstructured) (Applied, error) {
	var res Applied
	cfg := s.Config(Admin)
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return res, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return res, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc))
	// Namespaces first, then everything else in input order; namespaces used but not given are created.
	sorted := append([]*unstructured.Unstructured(nil), objs...)
	sort.SliceStable(sorted, func(i, j int) bool { return rank(sorted[i]) < rank(sorted[j]) })
	haveNS := map[string]bool{}
	for _, o := range sorted {
		if o.GetKind() == "Namespace" {
			haveNS[o.GetName()] = true
		}
	}
	for _, o := range sorted {
		ns := o.GetNamespace()
		if o.GetKind() != "Namespace" && ns != "" && !haveNS[ns] {
			haveNS[ns] = true
			n := &unstructured.Unstructured{}
			n.SetAPIVersion("v1")
			n.SetKind("Namespace")
			n.SetName(ns)
			if _, err := s.applyOne(ctx, dyn, mapper, n); err != nil {
				return res, err
			}
			res.Namespaces = append(res.Namespaces, ns)
		}
	}
	for _, o := range sorted {
		id := o.GetKind() + " " + o.GetName()
		if o.GetNamespace() != "" {
			id = o.GetKind() + " " + o.GetNamespace() + "/" + o.GetName()
		}
		skipped, err := s.applyOne(ctx, dyn, mapper, o.DeepCopy())
		if err != nil {
			return res, fmt.Errorf("%s: %w", id, err)
		}
		if skipped != "" {
			res.Skipped = append(res.Skipped, id+": "+skipped)
			continue
		}
		res.Objects = append(res.Objects, id)
	}
	return res, nil
}

func rank(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "Namespace":
		return 0
	case "CustomResourceDefinition":
		return 1
	}
	return 2
}

func (s *Server) applyOne(ctx context.Context, dyn dynamic.Interface, mapper meta.ResettableRESTMapper, o *unstructured.Unstructured) (string, error) {
	gvk := o.GroupVersionKind()
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		if meta.IsNoMatchError(err) {
			return "not served by this server", nil
		}
		return "", err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		if o.GetNamespace() == "" {
			o.SetNamespace("default")
		}
		ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
	} else {
		o.SetNamespace("")
	}
	status, hasStatus := o.Object["status"]
	for _, f := range []string{"resourceVersion", "uid", "creationTimestamp", "selfLink", "generation", "managedFields"} {
		unstructured.RemoveNestedField(o.Object, "metadata", f)
	}
	delete(o.Object, "status")
	if !hasStatus && o.GetKind() == "Pod" {
		// A create sets phase Pending; without a kubelet nothing would change it. Offline, a pod without status is
		// assumed Running: clear the server-assigned status so both read the same input.
		status, hasStatus = map[string]any{}, true
	}
	got, err := ri.Create(ctx, o, metav1.CreateOptions{FieldManager: "kpath-test"})
	if err != nil {
		// Exists already (the server made it: default/kubernetes, the default namespaces). A Service create fails
		// on its ClusterIP before the name check, so look rather than trust AlreadyExists.
		if cur, gerr := ri.Get(ctx, o.GetName(), metav1.GetOptions{}); gerr == nil {
			o.SetResourceVersion(cur.GetResourceVersion())
			got, err = ri.Update(ctx, o, metav1.UpdateOptions{FieldManager: "kpath-test"})
		}
	}
	if err != nil {
		return "", err
	}
	if !hasStatus || reflect.DeepEqual(got.Object["status"], status) {
		return "", nil
	}
	// Write the fixture's status as the kubelet/controllers would. An empty fixture status is written too, so a
	// pod the fixture leaves without status reads back without status (not the "Pending" a create sets).
	got.Object["status"] = status
	if _, err := ri.UpdateStatus(ctx, got, metav1.UpdateOptions{FieldManager: "kpath-test"}); err != nil &&
		!apierrors.IsNotFound(err) && !apierrors.IsMethodNotSupported(err) {
		return "", fmt.Errorf("status: %w", err)
	}
	return "", nil
}

// GVR is a shorthand for tests that build clients by hand.
func GVR(group, version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: version, Resource: resource}
}
