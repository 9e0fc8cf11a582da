package reach

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/netpol"
)

// Workload is one row/column of the matrix: a top-level controller (Deployment, StatefulSet, DaemonSet, …) or a
// bare pod, with its pods.
type Workload struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Kind      string `json:"kind"`
	Pods      int    `json:"pods"`
	// HostNetwork is set when the workload's pods use the node's network: policy sees the node address.
	HostNetwork bool `json:"hostNetwork,omitempty"`
	rep         *corev1.Pod
	class       int32
}

// ID is "ns/name", the form users type.
func (w Workload) ID() string { return w.Namespace + "/" + w.Name }

// Label is "ns/name[Kind]", netpol-analyzer's form.
func (w Workload) Label() string { return fmt.Sprintf("%s/%s[%s]", w.Namespace, w.Name, w.Kind) }

// Cell is one allowed ordered pair.
type Cell struct {
	Src, Dst int
	Conns    netpol.ConnSet
}

// Options shape the matrix.
type Options struct {
	// Ports restricts the matrix to these connections (empty: every port of every protocol).
	Ports netpol.ConnSet
	// Namespace limits rows and columns to one namespace ("" for all).
	Namespace string
	// External adds the address space outside the cluster, cut at every ipBlock/networks boundary, as rows and
	// columns ("0.0.0.0-9.255.255.255").
	External bool
}

// ExternalRange is a range of outside addresses that policy treats alike.
type ExternalRange struct {
	First, Last netip.Addr
}

func (r ExternalRange) String() string { return r.First.String() + "-" + r.Last.String() }

// ExternalCell is one allowed pair between a workload and an external range.
type ExternalCell struct {
	Workload int
	Range    int
	Ingress  bool // range → workload; otherwise workload → range
	Conns    netpol.ConnSet
}

// Matrix is the connectivity matrix.
type Matrix struct {
	Workloads []Workload
	Cells     []Cell // allowed pairs, by source then destination
	External  []ExternalRange
	ExtCells  []ExternalCell
	Classes   int
	ClassPair int // distinct class pairs evaluated
	Ports     netpol.ConnSet
	filtered  bool
	Notes     []string

	eng  *netpol.Engine
	cls  *netpol.Classes
	byID map[string]int
}

// Build computes the matrix. Pods are grouped into equivalence classes first, so the work is one evaluation per
// distinct (source class, destination class) pair, not per pod pair. Connections from a workload to itself are
// not listed.
func Build(eng *netpol.Engine, opts Options) *Matrix {
	s := eng.Snapshot()
	m := &Matrix{eng: eng, cls: eng.Classes(), byID: map[string]int{}, Ports: opts.Ports, filtered: !opts.Ports.IsEmpty()}
	m.Classes = m.cls.Count()
	byRef := map[cluster.Ref]int{}
	mixed := map[int]bool{}
	for _, p := range s.Pods {
		if opts.Namespace != "" && p.Namespace != opts.Namespace {
			continue
		}
		r := s.WorkloadOf(p)
		if r.Kind == "" {
			r.Kind = "Pod"
		}
		i, ok := byRef[r]
		if !ok {
			i = len(m.Workloads)
			byRef[r] = i
			m.Workloads = append(m.Workloads, Workload{Namespace: r.Namespace, Name: r.Name, Kind: r.Kind,
				HostNetwork: p.Spec.HostNetwork, rep: p, class: m.cls.Of(p)})
		} else if m.cls.Of(p) != m.Workloads[i].class {
			mixed[i] = true
		}
		m.Workloads[i].Pods++
	}
	sort.Slice(m.Workloads, func(i, j int) bool { return m.Workloads[i].Label() < m.Workloads[j].Label() })
	for i, w := range m.Workloads {
		if _, dup := m.byID[w.ID()]; !dup {
			m.byID[w.ID()] = i
		}
		m.byID[w.Label()] = i
		if mixed[byRef[cluster.Ref{Kind: w.Kind, Namespace: w.Namespace, Name: w.Name}]] {
			m.Notes = append(m.Notes, fmt.Sprintf("%s has pods that policy treats differently (different labels or ports); the matrix uses %s/%s", w.Label(), w.rep.Namespace, w.rep.Name))
		}
	}
	// Workloads per class; then, per destination class, only the source classes that can reach it at all.
	byClass := make([][]int, m.Classes)
	for i, w := range m.Workloads {
		byClass[w.class] = append(byClass[w.class], i)
	}
	every := make([]int32, 0, m.Classes)
	for c := range byClass {
		if len(byClass[c]) > 0 {
			every = append(every, int32(c))
		}
	}
	pairs := 0
	for d := range byClass {
		if len(byClass[d]) == 0 {
			continue
		}
		cands, all := m.cls.IngressCandidates(int32(d))
		if all {
			cands = every
		}
		for _, sc := range cands {
			if len(byClass[sc]) == 0 {
				continue
			}
			pairs++
			c := m.cls.Conns(sc, int32(d))
			if m.filtered {
				c = c.Intersect(opts.Ports)
			}
			if c.IsEmpty() {
				continue
			}
			for _, i := range byClass[sc] {
				for _, j := range byClass[d] {
					if i != j {
						m.Cells = append(m.Cells, Cell{Src: i, Dst: j, Conns: c})
					}
				}
			}
		}
	}
	sort.Slice(m.Cells, func(a, b int) bool {
		x, y := m.Cells[a], m.Cells[b]
		if x.Src != y.Src {
			return x.Src < y.Src
		}
		return x.Dst < y.Dst
	})
	m.ClassPair = pairs
	if opts.External {
		m.addExternal(opts)
	}
	return m
}

func (m *Matrix) addExternal(opts Options) {
	cuts := map[netip.Addr]bool{netip.IPv4Unspecified(): true}
	for _, p := range m.eng.CIDRBoundaries() {
		if p.Is4() {
			cuts[p] = true
		}
	}
	var starts []netip.Addr
	for a := range cuts {
		starts = append(starts, a)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].Less(starts[j]) })
	for i, a := range starts {
		last := netip.AddrFrom4([4]byte{255, 255, 255, 255})
		if i+1 < len(starts) {
			last = starts[i+1].Prev()
		}
		m.External = append(m.External, ExternalRange{a, last})
	}
	for wi, w := range m.Workloads {
		for ri, r := range m.External {
			for _, in := range []bool{true, false} {
				c := m.cls.ExternalConns(w.class, r.First, in)
				if m.filtered {
					c = c.Intersect(opts.Ports)
				}
				if !c.IsEmpty() {
					m.ExtCells = append(m.ExtCells, ExternalCell{Workload: wi, Range: ri, Ingress: in, Conns: c})
				}
			}
		}
	}
}

// Find resolves "ns/name", "ns/name[Kind]" or a pod "ns/pod" to a workload index.
func (m *Matrix) Find(name string) (int, bool) {
	if i, ok := m.byID[name]; ok {
		return i, true
	}
	ns, pod, ok := strings.Cut(name, "/")
	if !ok {
		return 0, false
	}
	s := m.eng.Snapshot()
	if p := s.Pod(ns, pod); p != nil {
		r := s.WorkloadOf(p)
		if r.Kind == "" {
			r.Kind = "Pod"
		}
		if i, ok := m.byID[fmt.Sprintf("%s/%s[%s]", r.Namespace, r.Name, r.Kind)]; ok {
			return i, true
		}
	}
	return 0, false
}

// Conns returns the allowed connections of a pair (empty when none or i == j).
func (m *Matrix) Conns(i, j int) netpol.ConnSet {
	k := sort.Search(len(m.Cells), func(x int) bool {
		c := m.Cells[x]
		return c.Src > i || (c.Src == i && c.Dst >= j)
	})
	if k < len(m.Cells) && m.Cells[k].Src == i && m.Cells[k].Dst == j {
		return m.Cells[k].Conns
	}
	return netpol.ConnSet{}
}

// Engine returns the policy engine the matrix was built with.
func (m *Matrix) Engine() *netpol.Engine { return m.eng }
