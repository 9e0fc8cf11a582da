package kubeproxy

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Shared is the node-independent part of kube-proxy's state for one proxy mode and IP family:
// Services and EndpointSlices parsed once, service ports indexed by VIP, NodePort and
// health-check port. Every kube-proxy of a cluster sees the same objects; what differs per node
// is which endpoints are local and which topology hints apply. Shared.Node returns a node's
// Index in O(node addresses); each service port is categorised for that node on first use and
// kept. Ports without a local endpoint on the node and without topology hints categorise the
// same on every node, so that view is computed once and shared by all nodes.
//
// A Shared and its node views are safe for concurrent use.
type Shared struct {
	base *Index
	// remote[id] is the view of port id on a node with no local endpoint (ports without hints).
	remote []atomic.Pointer[ServicePort]
}

// NewShared parses the Services and EndpointSlices once for every node of mode and family
// (empty: nftables, IPv4). Notes are as NewIndex's; only a bad mode or family is an error.
func NewShared(mode Mode, family corev1.IPFamily, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) (*Shared, error) {
	cfg := Config{Mode: mode, Family: family}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	base := build(cfg, svcs, eps)
	for _, sp := range base.Ports {
		// Chain names are node-independent; views copy endpoints, so they are set here once,
		// for every endpoint that could be reachable on some node.
		if cfg.Mode == ModeIPTables || sp.SessionAffinity {
			for _, e := range sp.AllEndpoints {
				e.setChainName(sp, cfg.Mode)
			}
		}
	}
	return &Shared{base: base, remote: make([]atomic.Pointer[ServicePort], len(base.Ports))}, nil
}

// Mode is the proxy mode the index was parsed for.
func (s *Shared) Mode() Mode { return s.base.cfg.Mode }

// Family is the IP family the index was parsed for.
func (s *Shared) Family() corev1.IPFamily { return s.base.cfg.Family }

// Node returns kube-proxy's state on the node cfg describes, sharing the parsed objects. cfg's
// Mode and Family must match the Shared's (empty Mode means the Shared's; empty Family is derived
// from NodeIP as in NewIndex). The returned Index translates and renders exactly as
// NewIndex(cfg, svcs, eps) would; its Ports field is nil (see NumPorts and ServicePorts).
func (s *Shared) Node(cfg Config) (*Index, error) {
	if cfg.Mode == "" {
		cfg.Mode = s.base.cfg.Mode
	}
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	if cfg.Mode != s.base.cfg.Mode || cfg.Family != s.base.cfg.Family {
		return nil, fmt.Errorf("kubeproxy: node %q needs a %s/%s index but the shared one is %s/%s: build one per mode and family",
			cfg.NodeName, cfg.Mode, cfg.Family, s.base.cfg.Mode, s.base.cfg.Family)
	}
	b := s.base
	idx := &Index{
		cfg:         cfg,
		Notes:       b.Notes[:len(b.Notes):len(b.Notes)], // appending copies
		shared:      s,
		byVIP:       b.byVIP,
		byNodePort:  b.byNodePort,
		byHCPort:    b.byHCPort,
		clusterIPs:  b.clusterIPs,
		totalEps:    b.totalEps,
		localAddrs:  make(map[netip.Addr]bool, len(cfg.NodeIPs)),
		nodePortIPs: map[netip.Addr]bool{},
	}
	for _, a := range cfg.NodeIPs {
		idx.localAddrs[a.Unmap()] = true
	}
	if len(cfg.NodePortAddresses) > 0 {
		for _, a := range cfg.nodePortIPs() {
			idx.nodePortIPs[a] = true
		}
	}
	return idx, nil
}

// NumPorts is the number of service ports of the index's family (len(Ports) for NewIndex).
func (idx *Index) NumPorts() int {
	if idx.shared != nil {
		return len(idx.shared.base.Ports)
	}
	return len(idx.Ports)
}

// ServicePorts returns every service port categorised for this node, sorted by ServicePortName.
// For a node view it categorises every port not yet seen (O(endpoints)); prefer Translate.
func (idx *Index) ServicePorts() []*ServicePort {
	if idx.shared == nil {
		return idx.Ports
	}
	out := make([]*ServicePort, len(idx.shared.base.Ports))
	for i, sp := range idx.shared.base.Ports {
		out[i] = idx.port(sp)
	}
	return out
}

// port maps a port found in the (possibly shared) lookup maps to this node's categorised view.
func (idx *Index) port(sp *ServicePort) *ServicePort {
	if idx.shared == nil || sp == nil || len(sp.AllEndpoints) == 0 {
		return sp // own ports are categorised; without endpoints there is nothing to categorise
	}
	node := idx.cfg.NodeName
	local := false
	if node != "" {
		for _, e := range sp.AllEndpoints {
			if e.NodeName == node {
				local = true
				break
			}
		}
	}
	if !local && !sp.hints {
		slot := &idx.shared.remote[sp.id]
		if v := slot.Load(); v != nil {
			return v
		}
		slot.CompareAndSwap(nil, categorized(sp, "", "", false))
		return slot.Load()
	}
	idx.mu.Lock()
	v := idx.views[sp.id]
	idx.mu.Unlock()
	if v != nil {
		return v
	}
	v = categorized(sp, node, idx.cfg.Zone, local)
	idx.mu.Lock()
	defer idx.mu.Unlock()
	if old := idx.views[sp.id]; old != nil {
		return old
	}
	if idx.views == nil {
		idx.views = map[int]*ServicePort{}
	}
	idx.views[sp.id] = v
	return v
}

// categorized copies an uncategorised shared port and categorises the copy for one node; the
// endpoints are copied only when some are local there (Local is per node), else shared.
func categorized(base *ServicePort, node, zone string, local bool) *ServicePort {
	cp := *base
	if local {
		eps := make([]Endpoint, len(base.AllEndpoints))
		cp.AllEndpoints = make([]*Endpoint, len(base.AllEndpoints))
		for i, e := range base.AllEndpoints {
			eps[i] = *e
			eps[i].Local = e.NodeName == node
			cp.AllEndpoints[i] = &eps[i]
		}
	}
	categorize(&cp, node, zone)
	return &cp
}
