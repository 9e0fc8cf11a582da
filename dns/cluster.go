package dns

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"
)

// Cluster is the read-only view of cluster state the DNS model needs. cluster.Snapshot implements it; every method
// must be an index lookup (O(1) or O(answer)), never a scan, because a single name resolution calls it up to a dozen
// times.
type Cluster interface {
	// Service returns the Service ns/name, or nil.
	Service(ns, name string) *corev1.Service
	// EndpointSlices returns every EndpointSlice labelled kubernetes.io/service-name=svcName in ns.
	EndpointSlices(ns, svcName string) []*discoveryv1.EndpointSlice
	// NamespaceExists reports whether namespace ns exists (CoreDNS answers NXDOMAIN for names in absent namespaces).
	NamespaceExists(ns string) bool
	// PodsByIP returns the pods whose status.podIPs contain ip (for `pods verified`).
	PodsByIP(ip netip.Addr) []*corev1.Pod
	// ServiceByClusterIP returns the Service whose spec.clusterIPs contain ip, or nil (for PTR).
	ServiceByClusterIP(ip netip.Addr) *corev1.Service
	// EndpointSlicesByAddress returns the EndpointSlices with an endpoint address equal to ip (for PTR and NS).
	EndpointSlicesByAddress(ip netip.Addr) []*discoveryv1.EndpointSlice
}

// MapCluster is a small map-backed Cluster, for tests and for callers that hold plain objects. Namespaces exist when
// a Namespace object was added or, because manifests often omit Namespace objects, when any object lives in them.
type MapCluster struct {
	services    map[nsName]*corev1.Service
	slices      map[nsName][]*discoveryv1.EndpointSlice
	namespaces  map[string]bool
	podsByIP    map[netip.Addr][]*corev1.Pod
	svcByIP     map[netip.Addr]*corev1.Service
	slicesByIP  map[netip.Addr][]*discoveryv1.EndpointSlice
	explicitNSs map[string]bool
}

type nsName struct{ ns, name string }

// NewMapCluster indexes objs (*corev1.Service, *discoveryv1.EndpointSlice, *corev1.Pod, *corev1.Namespace; other
// types are ignored).
func NewMapCluster(objs ...any) *MapCluster {
	c := &MapCluster{
		services:    map[nsName]*corev1.Service{},
		slices:      map[nsName][]*discoveryv1.EndpointSlice{},
		namespaces:  map[string]bool{},
		podsByIP:    map[netip.Addr][]*corev1.Pod{},
		svcByIP:     map[netip.Addr]*corev1.Service{},
		slicesByIP:  map[netip.Addr][]*discoveryv1.EndpointSlice{},
		explicitNSs: map[string]bool{},
	}
	for _, o := range objs {
		c.Add(o)
	}
	return c
}

// Add indexes one object.
func (c *MapCluster) Add(o any) {
	switch v := o.(type) {
	case *corev1.Namespace:
		c.namespaces[v.Name] = true
		c.explicitNSs[v.Name] = true
	case *corev1.Service:
		c.namespaces[v.Namespace] = true
		c.services[nsName{v.Namespace, v.Name}] = v
		for _, s := range append([]string{v.Spec.ClusterIP}, v.Spec.ClusterIPs...) {
			if a, err := netip.ParseAddr(s); err == nil {
				if _, dup := c.svcByIP[a]; !dup {
					c.svcByIP[a] = v
				}
			}
		}
	case *discoveryv1.EndpointSlice:
		c.namespaces[v.Namespace] = true
		svc := v.Labels[discoveryv1.LabelServiceName]
		if svc != "" {
			c.slices[nsName{v.Namespace, svc}] = append(c.slices[nsName{v.Namespace, svc}], v)
		}
		seen := map[netip.Addr]bool{}
		for _, ep := range v.Endpoints {
			for _, s := range ep.Addresses {
				if a, err := netip.ParseAddr(s); err == nil && !seen[a] {
					seen[a] = true
					c.slicesByIP[a] = append(c.slicesByIP[a], v)
				}
			}
		}
	case *corev1.Pod:
		c.namespaces[v.Namespace] = true
		ips := map[string]bool{v.Status.PodIP: true}
		for _, p := range v.Status.PodIPs {
			ips[p.IP] = true
		}
		for s := range ips {
			if a, err := netip.ParseAddr(s); err == nil {
				c.podsByIP[a] = append(c.podsByIP[a], v)
			}
		}
	}
}

// Service implements Cluster.
func (c *MapCluster) Service(ns, name string) *corev1.Service { return c.services[nsName{ns, name}] }

// EndpointSlices implements Cluster.
func (c *MapCluster) EndpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	return c.slices[nsName{ns, svc}]
}

// NamespaceExists implements Cluster.
func (c *MapCluster) NamespaceExists(ns string) bool { return c.namespaces[ns] }

// PodsByIP implements Cluster.
func (c *MapCluster) PodsByIP(ip netip.Addr) []*corev1.Pod { return c.podsByIP[ip.Unmap()] }

// ServiceByClusterIP implements Cluster.
func (c *MapCluster) ServiceByClusterIP(ip netip.Addr) *corev1.Service { return c.svcByIP[ip.Unmap()] }

// EndpointSlicesByAddress implements Cluster.
func (c *MapCluster) EndpointSlicesByAddress(ip netip.Addr) []*discoveryv1.EndpointSlice {
	return c.slicesByIP[ip.Unmap()]
}

// DecodeObjects decodes a multi-document YAML stream of Namespaces, Services, EndpointSlices and Pods into typed
// objects for NewMapCluster. Other kinds are skipped. Errors name the document index.
func DecodeObjects(r io.Reader) ([]any, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading YAML: %w", err)
	}
	var out []any
	for i, doc := range splitYAMLDocuments(data) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return out, fmt.Errorf("YAML document %d: %w", i, err)
		}
		var obj any
		switch tm.Kind {
		case "Namespace":
			obj = &corev1.Namespace{}
		case "Service":
			obj = &corev1.Service{}
		case "EndpointSlice":
			obj = &discoveryv1.EndpointSlice{}
		case "Pod":
			obj = &corev1.Pod{}
		default:
			continue
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return out, fmt.Errorf("YAML document %d (%s): %w", i, tm.Kind, err)
		}
		out = append(out, obj)
	}
	return out, nil
}

func splitYAMLDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.TrimRight(line, " \t\r") == "---" {
			docs = append(docs, []byte(strings.Join(cur, "\n")))
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	return append(docs, []byte(strings.Join(cur, "\n")))
}
