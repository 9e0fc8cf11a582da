package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	anpv1a1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	cnpv1a2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// Options control loading.
type Options struct {
	// Strict makes the first input error fatal (kubectl-like --strict); otherwise loading goes on and every problem
	// is a Diagnostic in the snapshot.
	Strict bool
	// DefaultNamespace is given to namespaced objects that have none ("default" when empty), as kubectl does.
	DefaultNamespace string
	// Overrides replace detected profile settings (flags such as --proxy-mode).
	Overrides Overrides
}

// Load reads every source, decodes the objects, synthesizes missing runtime state, detects the dataplane profile and
// builds the indexes. It returns a *LoadError only when the tool cannot do its job: a source that cannot be opened,
// input with no objects at all, or (Strict) any input error. Other problems are Diagnostics in the snapshot.
func Load(sources []Source, opts Options) (*Snapshot, error) {
	start := time.Now()
	// Loading allocates a lot of short-lived garbage (JSON text, decoder state) next to a growing long-lived
	// snapshot; a less eager collector roughly halves GC time without raising the retained heap.
	defer relaxGC()()
	if opts.DefaultNamespace == "" {
		opts.DefaultNamespace = "default"
	}
	b := newBuilder(opts)
	for _, src := range sources {
		b.snap.Sources = append(b.snap.Sources, src.Name)
		rc, err := src.Open()
		if err != nil {
			return nil, &LoadError{Msg: fmt.Sprintf("reading %s: %v", src.Name, err), Diagnostics: b.snap.Diagnostics}
		}
		err = decodeStream(src.Name, rc, b)
		rc.Close()
		if err != nil {
			return nil, &LoadError{Msg: fmt.Sprintf("reading %s: %v", src.Name, err), Diagnostics: b.snap.Diagnostics}
		}
		if opts.Strict && b.firstError >= 0 {
			d := b.snap.Diagnostics[b.firstError]
			return nil, &LoadError{Msg: fmt.Sprintf("--strict: %s", d), Diagnostics: b.snap.Diagnostics}
		}
	}
	if b.objects == 0 {
		what := "no input"
		if len(sources) > 0 {
			what = "no Kubernetes objects found in " + strings.Join(b.snap.Sources, ", ")
		}
		if b.firstError >= 0 {
			return nil, &LoadError{Msg: "no object could be loaded from " + strings.Join(b.snap.Sources, ", ") +
				"; every document had an error (listed above)", Diagnostics: b.snap.Diagnostics}
		}
		return nil, &LoadError{Msg: what + " (give manifests with -f FILE|DIR|-, or try --demo)",
			Diagnostics: b.snap.Diagnostics, Empty: true}
	}
	b.finish()
	b.snap.LoadTime = time.Since(start)
	return b.snap, nil
}

type builder struct {
	opts       Options
	snap       *Snapshot
	objects    int
	firstError int
	seen       map[Ref]Location

	// by-key maps used while loading; turned into sorted slices by finish.
	namespaces   map[string]*corev1.Namespace
	nodes        map[string]*corev1.Node
	pods         map[string]*corev1.Pod
	services     map[string]*corev1.Service
	slices       map[string]*discoveryv1.EndpointSlice
	endpoints    map[string]*corev1.Endpoints
	netpols      map[string]*networkingv1.NetworkPolicy
	configMaps   map[string]*corev1.ConfigMap
	sas          map[string]*corev1.ServiceAccount
	deployments  map[string]*appsv1.Deployment
	replicaSets  map[string]*appsv1.ReplicaSet
	statefulSets map[string]*appsv1.StatefulSet
	daemonSets   map[string]*appsv1.DaemonSet
	rcs          map[string]*corev1.ReplicationController
	jobs         map[string]*batchv1.Job
	cronJobs     map[string]*batchv1.CronJob

	notK8s     int            // items in the current run of non-Kubernetes objects
	podsSorted []*corev1.Pod  // b.pods in namespace/name order, valid while len matches
	synthIndex map[Ref]string // synthesized object → what it came from
	podsByNS   map[string][]*corev1.Pod
}

func newBuilder(opts Options) *builder {
	return &builder{
		opts: opts, firstError: -1, seen: map[Ref]Location{}, synthIndex: map[Ref]string{},
		snap:       &Snapshot{sources: map[Ref]Location{}},
		namespaces: map[string]*corev1.Namespace{}, nodes: map[string]*corev1.Node{}, pods: map[string]*corev1.Pod{},
		services: map[string]*corev1.Service{}, slices: map[string]*discoveryv1.EndpointSlice{},
		endpoints: map[string]*corev1.Endpoints{}, netpols: map[string]*networkingv1.NetworkPolicy{},
		configMaps: map[string]*corev1.ConfigMap{}, sas: map[string]*corev1.ServiceAccount{},
		deployments: map[string]*appsv1.Deployment{}, replicaSets: map[string]*appsv1.ReplicaSet{},
		statefulSets: map[string]*appsv1.StatefulSet{}, daemonSets: map[string]*appsv1.DaemonSet{},
		rcs: map[string]*corev1.ReplicationController{}, jobs: map[string]*batchv1.Job{},
		cronJobs: map[string]*batchv1.CronJob{},
	}
}

func (b *builder) diag(d Diagnostic) {
	if d.Message == notK8sMessage {
		// One line per document, not per item: a JSON array of 10,000 non-objects is one finding.
		if n := len(b.snap.Diagnostics); n > 0 {
			last := &b.snap.Diagnostics[n-1]
			if last.Location.File == d.Location.File && last.Location.Doc == d.Location.Doc &&
				(last.Message == notK8sMessage || strings.Contains(last.Message, "are not Kubernetes objects")) {
				b.notK8s++
				last.Message = fmt.Sprintf("%d items are not Kubernetes objects (no apiVersion or kind); skipped", b.notK8s)
				return
			}
		}
		b.notK8s = 1
	}
	if d.Severity == SeverityError && b.firstError < 0 {
		b.firstError = len(b.snap.Diagnostics)
	}
	b.snap.Diagnostics = append(b.snap.Diagnostics, d)
}

func (b *builder) custom(u *unstructured.Unstructured, loc Location) {
	b.objects++
	r := Ref{Kind: u.GetKind(), Namespace: u.GetNamespace(), Name: u.GetName()}
	if prev, dup := b.seen[r]; dup {
		b.duplicate(r, prev, loc)
		return
	}
	b.seen[r] = loc
	b.snap.sources[r] = loc
	u.SetManagedFields(nil)
	b.snap.Custom = append(b.snap.Custom, u)
}

func (b *builder) duplicate(r Ref, prev, loc Location) {
	b.diag(Diagnostic{Severity: SeverityWarning, Location: loc, Object: r.String(),
		Message: fmt.Sprintf("duplicate of the object at %s; kept that one, ignored this one", prev)})
}

// object files one typed object under its kind.
func (b *builder) object(obj runtime.Object, loc Location) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	b.objects++
	kind := kindOf(obj)
	if kind == "Secret" {
		// Secrets are never kept: kpath has no use for them and must not carry their data around.
		b.snap.Ignored = append(b.snap.Ignored, Ignored{Ref: Ref{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()},
			APIVersion: "v1", Location: loc})
		return
	}
	gk := obj.GetObjectKind().GroupVersionKind().GroupKind()
	if gk.Kind == "" {
		gk.Kind = kind
	}
	if !inScope[gk] {
		b.snap.Ignored = append(b.snap.Ignored, Ignored{Ref: Ref{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName()},
			APIVersion: obj.GetObjectKind().GroupVersionKind().GroupVersion().String(), Location: loc})
		return
	}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		b.diag(Diagnostic{Severity: SeverityError, Location: loc, Object: kind, Field: "metadata.name",
			Message: "object has no name; skipped"})
		return
	}
	if m.GetName() == "" {
		m.SetName(m.GetGenerateName() + "kpath")
	}
	if clusterScoped[kind] {
		m.SetNamespace("")
	} else if m.GetNamespace() == "" {
		m.SetNamespace(b.opts.DefaultNamespace)
	}
	// Fields kpath never reads: they can make up most of a dump's size.
	m.SetManagedFields(nil)
	if a := m.GetAnnotations(); a != nil {
		delete(a, "kubectl.kubernetes.io/last-applied-configuration")
	}
	r := refOf(kind, m)
	if prev, dup := b.seen[r]; dup {
		b.duplicate(r, prev, loc)
		return
	}
	b.seen[r] = loc
	b.snap.sources[r] = loc
	k := r.Key()
	switch o := obj.(type) {
	case *corev1.Namespace:
		b.namespaces[k] = o
	case *corev1.Node:
		b.nodes[k] = o
	case *corev1.Pod:
		b.pods[k] = o
	case *corev1.Service:
		b.services[k] = o
	case *discoveryv1.EndpointSlice:
		b.slices[k] = o
	case *corev1.Endpoints:
		b.endpoints[k] = o
	case *networkingv1.NetworkPolicy:
		b.netpols[k] = o
	case *corev1.ConfigMap:
		b.configMaps[k] = o
	case *corev1.ServiceAccount:
		b.sas[k] = o
	case *appsv1.Deployment:
		b.deployments[k] = o
	case *appsv1.ReplicaSet:
		b.replicaSets[k] = o
	case *appsv1.StatefulSet:
		b.statefulSets[k] = o
	case *appsv1.DaemonSet:
		b.daemonSets[k] = o
	case *corev1.ReplicationController:
		b.rcs[k] = o
	case *batchv1.Job:
		b.jobs[k] = o
	case *batchv1.CronJob:
		b.cronJobs[k] = o
	case *anpv1a1.AdminNetworkPolicy:
		b.snap.AdminNetworkPolicies = append(b.snap.AdminNetworkPolicies, o)
	case *anpv1a1.BaselineAdminNetworkPolicy:
		b.snap.BaselineAdminNetworkPolicies = append(b.snap.BaselineAdminNetworkPolicies, o)
	case *cnpv1a2.ClusterNetworkPolicy:
		b.snap.ClusterNetworkPolicies = append(b.snap.ClusterNetworkPolicies, o)
	default:
		b.gatewayObject(obj, kind, loc)
	}
}

// gatewayObject stores Gateway API objects as their v1 types, converting older versions field by field through
// JSON (the versions share their schema).
func (b *builder) gatewayObject(obj runtime.Object, kind string, loc Location) {
	var target runtime.Object
	switch kind {
	case "GatewayClass":
		target = &gwv1.GatewayClass{}
	case "Gateway":
		target = &gwv1.Gateway{}
	case "HTTPRoute":
		target = &gwv1.HTTPRoute{}
	case "GRPCRoute":
		target = &gwv1.GRPCRoute{}
	case "ReferenceGrant":
		target = &gwv1.ReferenceGrant{}
	case "TCPRoute":
		target = &gwv1.TCPRoute{}
	case "TLSRoute":
		target = &gwv1.TLSRoute{}
	case "UDPRoute":
		target = &gwv1.UDPRoute{}
	default:
		return
	}
	if fmt.Sprintf("%T", obj) != fmt.Sprintf("%T", target) {
		data, err := json.Marshal(obj)
		if err == nil {
			err = json.Unmarshal(data, target)
		}
		if err != nil {
			b.diag(Diagnostic{Severity: SeverityError, Location: loc, Object: kind,
				Message: "cannot convert to gateway.networking.k8s.io/v1: " + err.Error()})
			return
		}
	} else {
		target = obj
	}
	switch o := target.(type) {
	case *gwv1.GatewayClass:
		b.snap.GatewayClasses = append(b.snap.GatewayClasses, o)
	case *gwv1.Gateway:
		b.snap.Gateways = append(b.snap.Gateways, o)
	case *gwv1.HTTPRoute:
		b.snap.HTTPRoutes = append(b.snap.HTTPRoutes, o)
	case *gwv1.GRPCRoute:
		b.snap.GRPCRoutes = append(b.snap.GRPCRoutes, o)
	case *gwv1.ReferenceGrant:
		b.snap.ReferenceGrants = append(b.snap.ReferenceGrants, o)
	case *gwv1.TCPRoute:
		b.snap.TCPRoutes = append(b.snap.TCPRoutes, o)
	case *gwv1.TLSRoute:
		b.snap.TLSRoutes = append(b.snap.TLSRoutes, o)
	case *gwv1.UDPRoute:
		b.snap.UDPRoutes = append(b.snap.UDPRoutes, o)
	}
}

// kindOf returns the Go type's kind name (decoded objects do not always keep their TypeMeta).
func kindOf(obj runtime.Object) string {
	if k := obj.GetObjectKind().GroupVersionKind().Kind; k != "" {
		return k
	}
	gvks, _, err := Scheme.ObjectKinds(obj)
	if err == nil && len(gvks) > 0 {
		return gvks[0].Kind
	}
	t := fmt.Sprintf("%T", obj)
	return t[strings.LastIndex(t, ".")+1:]
}

func sortedValues[T metav1.Object](m map[string]T) []T {
	out := make([]T, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	sortByKey(out)
	return out
}

var _ io.Reader

// podList returns the pods in namespace/name order, sorting only when pods were added since the last call.
func (b *builder) podList() []*corev1.Pod {
	if len(b.podsSorted) != len(b.pods) {
		b.podsSorted = sortedValues(b.pods)
	}
	return b.podsSorted
}

// relaxGC lets the heap grow during a load instead of collecting every time it doubles: loading makes mostly
// short-lived garbage (JSON text, decoder state) beside a growing snapshot, and frequent collections would rescan
// that snapshot again and again. A soft memory limit (half of available memory, at least 1 GiB) still bounds the
// heap. The returned function restores the previous settings.
func relaxGC() func() {
	limit := int64(1 << 30)
	if avail := memAvailable(); avail/2 > limit {
		limit = avail / 2
	}
	prevLimit := debug.SetMemoryLimit(limit)
	prevPct := debug.SetGCPercent(1000)
	return func() {
		debug.SetGCPercent(prevPct)
		debug.SetMemoryLimit(prevLimit)
	}
}

// memAvailable reads MemAvailable from /proc/meminfo (0 when unknown).
func memAvailable() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb << 10
		}
	}
	return 0
}
