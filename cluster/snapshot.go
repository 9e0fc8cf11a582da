package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	anpv1a1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	cnpv1a2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// Ref names one object.
type Ref struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// Key is the namespace/name form used by the by-name indexes.
func (r Ref) Key() string { return key(r.Namespace, r.Name) }

func key(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// SynthesizedAnnotation is set on every object, or object field, that kpath made up because the input lacked it.
// Its value lists the synthesized fields ("*" for a whole object), so any consumer holding only the object can tell.
const SynthesizedAnnotation = "kpath.dev/synthesized"

// Synthesis records one object the loader created or completed.
type Synthesis struct {
	Ref    Ref      `json:"ref"`
	Fields []string `json:"fields"`         // "*" when the whole object was created
	From   string   `json:"from,omitempty"` // what it was derived from, e.g. "Deployment shop/cart replicas=2"
}

// Ignored is an object of a kind kpath does not model.
type Ignored struct {
	Ref        Ref      `json:"ref"`
	APIVersion string   `json:"apiVersion"`
	Location   Location `json:"location"`
}

// Snapshot is the loaded cluster: typed objects sorted by namespace/name, what was synthesized, every diagnostic,
// the detected dataplane profile, and indexes for O(1) lookups. It is immutable after Load returns; share it freely.
type Snapshot struct {
	Namespaces             []*corev1.Namespace
	Nodes                  []*corev1.Node
	Pods                   []*corev1.Pod
	Services               []*corev1.Service
	EndpointSlices         []*discoveryv1.EndpointSlice
	Endpoints              []*corev1.Endpoints
	NetworkPolicies        []*networkingv1.NetworkPolicy
	ConfigMaps             []*corev1.ConfigMap
	ServiceAccounts        []*corev1.ServiceAccount
	Deployments            []*appsv1.Deployment
	ReplicaSets            []*appsv1.ReplicaSet
	StatefulSets           []*appsv1.StatefulSet
	DaemonSets             []*appsv1.DaemonSet
	ReplicationControllers []*corev1.ReplicationController
	Jobs                   []*batchv1.Job
	CronJobs               []*batchv1.CronJob

	GatewayClasses  []*gwv1.GatewayClass
	Gateways        []*gwv1.Gateway
	HTTPRoutes      []*gwv1.HTTPRoute
	GRPCRoutes      []*gwv1.GRPCRoute
	ReferenceGrants []*gwv1.ReferenceGrant
	TCPRoutes       []*gwv1.TCPRoute
	TLSRoutes       []*gwv1.TLSRoute
	UDPRoutes       []*gwv1.UDPRoute

	AdminNetworkPolicies         []*anpv1a1.AdminNetworkPolicy
	BaselineAdminNetworkPolicies []*anpv1a1.BaselineAdminNetworkPolicy
	ClusterNetworkPolicies       []*cnpv1a2.ClusterNetworkPolicy

	// Custom holds objects of kinds the scheme does not know (CRDs), kept as given.
	Custom []*unstructured.Unstructured
	// Ignored lists objects of known kinds kpath does not model (Secrets are dropped unread).
	Ignored []Ignored

	Profile Profile
	// Unlisted names the kinds the source could not read (a live cluster's 403 Forbidden), with the reason. A kind
	// listed here is unknown, not empty: consumers must not conclude that no such object exists.
	Unlisted    map[string]string `json:"unlisted,omitempty"`
	Synthesized []Synthesis
	Diagnostics []Diagnostic
	Sources     []string
	LoadTime    time.Duration

	sources map[Ref]Location
	idx     *index
}

// SourceOf says where an object came from (its file and line), or false for synthesized objects.
func (s *Snapshot) SourceOf(r Ref) (Location, bool) {
	l, ok := s.sources[r]
	return l, ok
}

// IsSynthesized reports whether the object, or the named field of it ("" for any), was made up by the loader.
func IsSynthesized(m metav1.Object, field string) bool {
	v, ok := m.GetAnnotations()[SynthesizedAnnotation]
	if !ok {
		return false
	}
	if field == "" || v == "*" {
		return true
	}
	for _, f := range splitComma(v) {
		if f == field {
			return true
		}
	}
	return false
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// Counts returns the number of objects per kind, for reports.
func (s *Snapshot) Counts() []KindCount {
	c := []KindCount{
		{"Namespace", len(s.Namespaces)}, {"Node", len(s.Nodes)}, {"Pod", len(s.Pods)},
		{"Service", len(s.Services)}, {"EndpointSlice", len(s.EndpointSlices)}, {"Endpoints", len(s.Endpoints)},
		{"NetworkPolicy", len(s.NetworkPolicies)}, {"ConfigMap", len(s.ConfigMaps)},
		{"ServiceAccount", len(s.ServiceAccounts)}, {"Deployment", len(s.Deployments)},
		{"ReplicaSet", len(s.ReplicaSets)}, {"StatefulSet", len(s.StatefulSets)}, {"DaemonSet", len(s.DaemonSets)},
		{"ReplicationController", len(s.ReplicationControllers)}, {"Job", len(s.Jobs)}, {"CronJob", len(s.CronJobs)},
		{"GatewayClass", len(s.GatewayClasses)}, {"Gateway", len(s.Gateways)}, {"HTTPRoute", len(s.HTTPRoutes)},
		{"GRPCRoute", len(s.GRPCRoutes)}, {"ReferenceGrant", len(s.ReferenceGrants)}, {"TCPRoute", len(s.TCPRoutes)},
		{"TLSRoute", len(s.TLSRoutes)}, {"UDPRoute", len(s.UDPRoutes)},
		{"AdminNetworkPolicy", len(s.AdminNetworkPolicies)},
		{"BaselineAdminNetworkPolicy", len(s.BaselineAdminNetworkPolicies)},
		{"ClusterNetworkPolicy", len(s.ClusterNetworkPolicies)},
	}
	out := c[:0]
	for _, k := range c {
		if k.Count > 0 {
			out = append(out, k)
		}
	}
	return out
}

// KindCount is one row of Counts.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
}

func sortByKey[T metav1.Object](xs []T) {
	// Read the keys once: interface calls inside the comparison dominate sorting 150,000 pods otherwise.
	type keyed struct {
		ns, name string
		v        T
	}
	ks := make([]keyed, len(xs))
	for i, x := range xs {
		ks[i] = keyed{x.GetNamespace(), x.GetName(), x}
	}
	slices.SortFunc(ks, func(a, b keyed) int {
		if c := strings.Compare(a.ns, b.ns); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	for i := range ks {
		xs[i] = ks[i].v
	}
}

func refOf(kind string, m metav1.Object) Ref {
	return Ref{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()}
}

func (s Synthesis) String() string {
	if s.From != "" {
		return fmt.Sprintf("%s %v (from %s)", s.Ref, s.Fields, s.From)
	}
	return fmt.Sprintf("%s %v", s.Ref, s.Fields)
}
