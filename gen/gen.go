// Package gen generates synthetic Kubernetes clusters — namespaces, nodes, workloads with running pods, Services, EndpointSlices and NetworkPolicies — deterministically from a seed, for tests and benchmarks.
package gen

import (
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
)

// Options size a synthetic cluster. The zero value is not valid; start from DefaultOptions or a Preset.
type Options struct {
	// Nodes is the number of worker nodes (1–MaxNodes). They spread over up to three zones.
	Nodes int
	// Pods is the number of application pods in the generated namespaces. System pods come on top:
	// CoreDNS (2, or one per 16 nodes up to 250) and, on every node, a kube-proxy and a flannel pod.
	Pods int
	// Services is the number of Services in the generated namespaces (1% ExternalName, ~6% headless
	// in front of StatefulSets, the rest ClusterIP/NodePort/LoadBalancer in front of Deployments).
	// kubernetes and kube-dns come on top.
	Services int
	// Policies is the number of NetworkPolicies.
	Policies int
	// Namespaces is the number of generated application namespaces (≥1). default, kube-system and
	// kube-flannel come on top.
	Namespaces int
	// Seed selects the cluster: the same Options give byte-identical output.
	Seed int64
}

// Limits of the generator, from the real cluster it imitates.
const (
	// MaxNodes: node pod CIDRs are /24s carved from 10.128.0.0/9 (10.244.0.0/16 up to 256 nodes).
	MaxNodes = 1 << 15
	// MaxPodsPerNode is the kubelet's default --max-pods.
	MaxPodsPerNode = 110
	// AppPodsPerNode is how many application pods fit on a node: MaxPodsPerNode less room for the
	// node's system pods (kube-proxy, flannel, CoreDNS) and headroom the scheduler would keep.
	AppPodsPerNode = 100
	// MaxServices keeps ClusterIPs inside the Service CIDR 10.96.0.0/12.
	MaxServices = 1 << 19
	// MaxEndpointsPerSlice is the EndpointSlice controller's default --max-endpoints-per-slice.
	MaxEndpointsPerSlice = 100
	// MaxReplicas bounds one workload, which bounds one Service's endpoints.
	MaxReplicas = 250
	// MaxNamespaces and MaxPolicies keep inputs sane.
	MaxNamespaces = 100_000
	MaxPolicies   = 1_000_000
)

// DefaultOptions is a small cluster that generates in milliseconds.
func DefaultOptions() Options {
	return Options{Nodes: 10, Pods: 300, Services: 60, Policies: 40, Namespaces: 6, Seed: 1}
}

// Preset is a named size, for `kpath gen --size`.
type Preset struct {
	Name        string
	Description string
	Options     Options
}

// Presets lists the named sizes from small to large.
func Presets() []Preset {
	return []Preset{
		{"tiny", "3 nodes, a handful of services: readable by eye", Options{Nodes: 3, Pods: 24, Services: 8, Policies: 6, Namespaces: 2, Seed: 1}},
		{"small", "10 nodes, 300 pods: unit tests", DefaultOptions()},
		{"medium", "500 nodes, 15,000 pods, 1,000 services", Options{Nodes: 500, Pods: 15_000, Services: 1_000, Policies: 500, Namespaces: 50, Seed: 1}},
		{"large", "5,000 nodes, 150,000 pods, 10,000 services (Kubernetes' scalability limits)", Options{Nodes: 5_000, Pods: 150_000, Services: 10_000, Policies: 5_000, Namespaces: 300, Seed: 1}},
	}
}

// PresetByName returns the preset with that name.
func PresetByName(name string) (Options, bool) {
	for _, p := range Presets() {
		if p.Name == name {
			return p.Options, true
		}
	}
	return Options{}, false
}

// ErrInvalidOptions is wrapped by every error Validate returns; test with errors.Is.
var ErrInvalidOptions = errors.New("invalid generator options")

// Validate reports every out-of-range option at once, each with the allowed range.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidOptions}, args...)...))
	}
	if o.Nodes < 1 || o.Nodes > MaxNodes {
		bad("Nodes must be between 1 and %d, got %d", MaxNodes, o.Nodes)
	}
	if o.Namespaces < 1 || o.Namespaces > MaxNamespaces {
		bad("Namespaces must be between 1 and %d, got %d", MaxNamespaces, o.Namespaces)
	}
	if o.Pods < 0 {
		bad("Pods must not be negative, got %d", o.Pods)
	} else if o.Nodes >= 1 && o.Pods > o.Nodes*AppPodsPerNode {
		bad("Pods (%d) do not fit on %d nodes: at most %d application pods per node (kubelet max-pods %d less system pods); add nodes",
			o.Pods, o.Nodes, AppPodsPerNode, MaxPodsPerNode)
	}
	if o.Services < 0 || o.Services > MaxServices {
		bad("Services must be between 0 and %d, got %d", MaxServices, o.Services)
	}
	if o.Policies < 0 || o.Policies > MaxPolicies {
		bad("Policies must be between 0 and %d, got %d", MaxPolicies, o.Policies)
	}
	return errors.Join(errs...)
}

func (o Options) String() string {
	return fmt.Sprintf("nodes=%d pods=%d services=%d policies=%d namespaces=%d seed=%d",
		o.Nodes, o.Pods, o.Services, o.Policies, o.Namespaces, o.Seed)
}

// Generate returns every object of the cluster, in the order WriteJSON writes them. It holds the
// whole cluster in memory; for large sizes prefer Stream or WriteJSON.
func Generate(opts Options) ([]runtime.Object, error) {
	p, err := newPlan(opts)
	if err != nil {
		return nil, err
	}
	out := make([]runtime.Object, 0, p.total())
	for _, s := range p.sections() {
		for i := 0; i < s.n; i++ {
			out = append(out, s.build(i))
		}
	}
	return out, nil
}

// Stream calls emit with every object of the cluster, one at a time, in the order WriteJSON writes
// them, and stops at the first error emit returns. Objects are not reused after emit returns.
func Stream(opts Options, emit func(runtime.Object) error) error {
	p, err := newPlan(opts)
	if err != nil {
		return err
	}
	for _, s := range p.sections() {
		for i := 0; i < s.n; i++ {
			if err := emit(s.build(i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Counts is how many objects of each kind a cluster has, system objects included.
type Counts struct {
	Namespaces, Nodes, ConfigMaps, Services, DaemonSets, Deployments, ReplicaSets, StatefulSets,
	Pods, EndpointSlices, NetworkPolicies int
	// Endpoints is the number of endpoints over all EndpointSlices.
	Endpoints int
}

// Total is the number of objects.
func (c Counts) Total() int {
	return c.Namespaces + c.Nodes + c.ConfigMaps + c.Services + c.DaemonSets + c.Deployments +
		c.ReplicaSets + c.StatefulSets + c.Pods + c.EndpointSlices + c.NetworkPolicies
}

// Count plans the cluster without building its objects and returns how many there will be,
// e.g. to print a summary after WriteJSON.
func Count(opts Options) (Counts, error) {
	p, err := newPlan(opts)
	if err != nil {
		return Counts{}, err
	}
	var c Counts
	for _, s := range p.sections() {
		switch s.kind {
		case "Namespace":
			c.Namespaces += s.n
		case "Node":
			c.Nodes += s.n
		case "ConfigMap":
			c.ConfigMaps += s.n
		case "Service":
			c.Services += s.n
		case "DaemonSet":
			c.DaemonSets += s.n
		case "Deployment":
			c.Deployments += s.n
		case "ReplicaSet":
			c.ReplicaSets += s.n
		case "StatefulSet":
			c.StatefulSets += s.n
		case "Pod":
			c.Pods += s.n
		case "EndpointSlice":
			c.EndpointSlices += s.n
		case "NetworkPolicy":
			c.NetworkPolicies += s.n
		}
	}
	for _, sl := range p.slices {
		c.Endpoints += len(sl.pods) + len(sl.addrs)
	}
	return c, nil
}
