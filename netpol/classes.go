package netpol

import (
	"encoding/binary"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Classes partitions the snapshot's pods into equivalence classes: pods that every policy treats alike. Two pods
// share a class when they are selected by the same policies (as subjects), matched by the same peers (pod and
// namespace selectors, ipBlocks/networks on their address, nodes selectors), are of the same kind (pod network or
// host network) and declare the same container ports (named ports). Policy cannot tell them apart, so the
// connections between two classes are the connections between any of their pods — except the node-local
// exemption, which depends on placement and which Class conns leave out (Evaluate reports it).
//
// Build it with Engine.Classes. It caches results and is not safe for concurrent use.
type Classes struct {
	e     *Engine
	of    map[*corev1.Pod]int32
	reps  []*corev1.Pod
	peers []Peer
	size  []int
	sigs  [][]int32 // sorted peer ids each class matches
	eg    []int32   // egress group per class (-1: no policy applies)
	in    []int32   // ingress group per class
	ports []int32   // container-port table id per class
	grps  []group
	cache map[cacheKey]ConnSet
	// members lists, per peer id, the classes that match it (built on first use).
	members [][]int32
}

type group struct {
	a     applied
	refs  []int32 // peer ids the group's rules reference, sorted
	named bool    // some rule names a port
	any   bool    // some rule matches every peer without checking (allPeers or pkAnything)
}

type cacheKey struct {
	g     int32
	mask  uint64
	cls   int32 // peer class when the group references more than 64 peers, else -1
	ports int32 // destination port table when the group has named ports, else -1
}

// Classes computes the equivalence classes of every pod in the snapshot. The cost is the total size of the policies'
// selections (the snapshot's inverted label index narrows each selector), not pods × policies.
func (e *Engine) Classes() *Classes {
	s := e.snap
	n := len(s.Pods)
	c := &Classes{e: e, of: make(map[*corev1.Pod]int32, n), cache: map[cacheKey]ConnSet{}}
	idx := make(map[*corev1.Pod]int32, n)
	peers := make([]Peer, n)
	for i, p := range s.Pods {
		idx[p] = int32(i)
		peers[i] = e.PodPeer(p)
	}
	subj := make([][]int32, n) // policy ordinal per pod
	sig := make([][]int32, n)  // peer ids per pod
	everything := labels.Everything()
	podsIn := func(ns string, sel labels.Selector, f func(i int32)) {
		if sel == nil {
			sel = everything
		}
		for _, p := range s.PodsMatching(ns, sel) {
			f(idx[p])
		}
	}
	nsMatching := func(sel labels.Selector) []string {
		var out []string
		for _, ns := range s.NamespacesMatching(sel) {
			out = append(out, ns.Name)
		}
		return out
	}
	for pi, p := range e.all {
		add := func(i int32) {
			if peers[i].Kind == PeerPod {
				subj[i] = append(subj[i], int32(pi))
			}
		}
		if p.kind == "NetworkPolicy" {
			podsIn(p.ns, p.podSel, add)
			continue
		}
		if p.nothing {
			continue
		}
		for _, ns := range nsMatching(p.subjNS) {
			podsIn(ns, p.podSel, add)
		}
	}
	var cidrPeers []*peerSel
	for _, ps := range e.peers {
		add := func(i int32) {
			if peers[i].Kind == PeerPod {
				sig[i] = append(sig[i], ps.id)
			}
		}
		switch ps.kind {
		case pkPods:
			if ps.sameNS != "" {
				podsIn(ps.sameNS, ps.podSel, add)
			} else {
				for _, ns := range nsMatching(ps.nsSel) {
					podsIn(ns, ps.podSel, add)
				}
			}
		case pkCIDR:
			cidrPeers = append(cidrPeers, ps)
		case pkNodes:
			for i := range peers {
				if ok, _ := e.match(ps, peers[i]); ok {
					sig[i] = append(sig[i], ps.id)
				}
			}
		case pkAnything:
			for i := range sig {
				sig[i] = append(sig[i], ps.id)
			}
		}
	}
	if len(cidrPeers) > 0 {
		for i := range peers {
			for _, ps := range cidrPeers {
				if ok, _ := e.match(ps, peers[i]); ok {
					sig[i] = append(sig[i], ps.id)
				}
			}
		}
	}
	portTables := map[string]int32{}
	classKey := map[string]int32{}
	groupKey := map[string]int32{}
	var kb []byte
	for i, p := range s.Pods {
		sort.Slice(sig[i], func(a, b int) bool { return sig[i][a] < sig[i][b] })
		pt := portTableKey(p)
		ptID, ok := portTables[pt]
		if !ok {
			ptID = int32(len(portTables))
			portTables[pt] = ptID
		}
		kb = kb[:0]
		kb = append(kb, byte(len(peers[i].Kind)))
		kb = binary.AppendVarint(kb, int64(ptID))
		kb = binary.AppendVarint(kb, int64(len(subj[i])))
		for _, x := range subj[i] {
			kb = binary.AppendVarint(kb, int64(x))
		}
		for _, x := range sig[i] {
			kb = binary.AppendVarint(kb, int64(x))
		}
		id, ok := classKey[string(kb)]
		if !ok {
			id = int32(len(c.reps))
			classKey[string(kb)] = id
			c.reps = append(c.reps, p)
			c.peers = append(c.peers, peers[i])
			c.sigs = append(c.sigs, sig[i])
			c.ports = append(c.ports, ptID)
			c.size = append(c.size, 0)
			c.eg = append(c.eg, c.groupFor(groupKey, subj[i], dirEgress))
			c.in = append(c.in, c.groupFor(groupKey, subj[i], dirIngress))
		}
		c.size[id]++
		c.of[p] = id
	}
	return c
}

func portTableKey(p *corev1.Pod) string {
	var parts []string
	for i := range p.Spec.Containers {
		for _, cp := range p.Spec.Containers[i].Ports {
			if cp.Name != "" {
				parts = append(parts, cp.Name+"/"+string(orTCP(cp.Protocol))+"/"+strconv.Itoa(int(cp.ContainerPort)))
			}
		}
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// groupFor interns the list of policies that apply to a class in one direction.
func (c *Classes) groupFor(keys map[string]int32, subj []int32, d dirKind) int32 {
	a := applied{dir: d}
	var kb []byte
	kb = append(kb, byte(d))
	for _, pi := range subj {
		p := c.e.all[pi]
		if !p.on(d) {
			continue
		}
		kb = binary.AppendVarint(kb, int64(pi))
		switch p.tier {
		case TierAdmin:
			a.admin = append(a.admin, p)
		case TierNetworkPolicy:
			a.np = append(a.np, p)
		default:
			a.baseline = append(a.baseline, p)
		}
	}
	if a.empty() {
		return -1
	}
	if id, ok := keys[string(kb)]; ok {
		return id
	}
	// e.all lists NetworkPolicies, then admin, then baseline, each in evaluation order: subj is already ordered.
	g := group{a: a}
	seen := map[int32]bool{}
	for _, ps := range [][]*policy{a.admin, a.np, a.baseline} {
		for _, p := range ps {
			for _, r := range p.rules(d) {
				if r.allPeers {
					g.any = true
				}
				if r.hasNamed {
					g.named = true
				}
				for _, pe := range r.peers {
					if pe.kind == pkAnything {
						g.any = true
					}
					if !seen[pe.id] {
						seen[pe.id] = true
						g.refs = append(g.refs, pe.id)
					}
				}
			}
		}
	}
	sort.Slice(g.refs, func(i, j int) bool { return g.refs[i] < g.refs[j] })
	id := int32(len(c.grps))
	c.grps = append(c.grps, g)
	keys[string(kb)] = id
	return id
}

// Count is the number of classes.
func (c *Classes) Count() int { return len(c.reps) }

// Of returns a pod's class, or -1 for a pod not in the snapshot.
func (c *Classes) Of(p *corev1.Pod) int32 {
	if id, ok := c.of[p]; ok {
		return id
	}
	return -1
}

// Rep returns the first pod of a class (in snapshot order).
func (c *Classes) Rep(class int32) *corev1.Pod { return c.reps[class] }

// Size is the number of pods in a class.
func (c *Classes) Size(class int32) int { return c.size[class] }

// Groups returns the number of distinct policy sets (egress and ingress) the classes fall into.
func (c *Classes) Groups() int { return len(c.grps) }

func hasID(sig []int32, id int32) bool {
	k := sort.Search(len(sig), func(i int) bool { return sig[i] >= id })
	return k < len(sig) && sig[k] == id
}

// Conns returns the connections policy allows from any pod of class src to any pod of class dst (egress at src ∩
// ingress at dst), without the node-local exemption. Same-class pairs of different pods are evaluated like any pair.
func (c *Classes) Conns(src, dst int32) ConnSet {
	out := AllConns()
	if g := c.eg[src]; g >= 0 {
		out = c.dirConns(g, dst, c.reps[dst])
		if out.IsEmpty() {
			return out
		}
	}
	if g := c.in[dst]; g >= 0 {
		in := c.dirConns(g, src, c.reps[dst])
		if out.IsAll() {
			return in
		}
		out = out.Intersect(in)
	}
	return out
}

// ExternalConns returns the connections between a class and an address outside the cluster: from the address to
// the class (ingress) when in is true, else from the class to the address (egress).
func (c *Classes) ExternalConns(class int32, ip netip.Addr, in bool) ConnSet {
	ext := Peer{Kind: PeerExternal, IP: ip}
	if in {
		if g := c.in[class]; g >= 0 {
			a := &c.grps[g].a
			return dirConnsWith(a, func(r *rule) bool { return c.e.ruleMatchesPeer(r, ext) }, false, c.reps[class])
		}
		return AllConns()
	}
	if g := c.eg[class]; g >= 0 {
		a := &c.grps[g].a
		return dirConnsWith(a, func(r *rule) bool { return c.e.ruleMatchesPeer(r, ext) }, false, nil)
	}
	return AllConns()
}

// dirConns evaluates group g against the peer class, caching by the peer's membership in the peers g references.
func (c *Classes) dirConns(g int32, peer int32, dst *corev1.Pod) ConnSet {
	gr := &c.grps[g]
	k := cacheKey{g: g, cls: -1, ports: -1}
	sig := c.sigs[peer]
	if len(gr.refs) > 64 {
		k.cls = peer
	} else {
		for i, id := range gr.refs {
			if hasID(sig, id) {
				k.mask |= 1 << i
			}
		}
	}
	if gr.named {
		k.ports = c.ports[c.of[dst]]
	}
	if v, ok := c.cache[k]; ok {
		return v
	}
	v := dirConnsWith(&gr.a, func(r *rule) bool {
		if r.allPeers {
			return true
		}
		for _, pe := range r.peers {
			if pe.kind == pkAnything || hasID(sig, pe.id) {
				return true
			}
		}
		return false
	}, false, dst)
	c.cache[k] = v
	return v
}

// IngressCandidates returns the source classes that can have any connection to class dst, or all=true when every
// class can (dst is not isolated for ingress, or an admin/baseline tier or a match-all rule applies). A class not
// returned is denied by dst's NetworkPolicies: they isolate dst and none of their peers matches it.
func (c *Classes) IngressCandidates(dst int32) (cands []int32, all bool) {
	g := c.in[dst]
	if g < 0 {
		return nil, true
	}
	gr := &c.grps[g]
	if gr.any || len(gr.a.admin) > 0 || len(gr.a.baseline) > 0 {
		return nil, true
	}
	if c.members == nil {
		c.members = make([][]int32, len(c.e.peers))
		for cls, sig := range c.sigs {
			for _, id := range sig {
				c.members[id] = append(c.members[id], int32(cls))
			}
		}
	}
	if len(gr.refs) == 1 {
		return c.members[gr.refs[0]], false
	}
	seen := map[int32]bool{}
	for _, id := range gr.refs {
		for _, cls := range c.members[id] {
			if !seen[cls] {
				seen[cls] = true
				cands = append(cands, cls)
			}
		}
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i] < cands[j] })
	return cands, false
}
