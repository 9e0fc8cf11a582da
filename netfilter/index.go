package netfilter

import (
	"net/netip"
	"sort"
)

// dstIndex lets a long chain (iptables KUBE-SERVICES with thousands of rules) skip rules that can only match another
// destination address, while keeping first-match rule order: candidates are the rules indexed under the packet's
// destination plus the rules with no single-destination condition, merged by position.
type dstIndex struct {
	byDst map[netip.Addr][]int32
	wild  []int32
}

const indexMinRules = 64

func (c *Chain) buildIndex() {
	c.idx = nil
	if len(c.Rules) < indexMinRules {
		return
	}
	idx := &dstIndex{byDst: map[netip.Addr][]int32{}}
	for i, r := range c.Rules {
		if a, ok := ruleDst(r); ok {
			idx.byDst[a] = append(idx.byDst[a], int32(i))
		} else {
			idx.wild = append(idx.wild, int32(i))
		}
	}
	c.idx = idx
}

// ruleDst returns the single destination address a rule requires, looking only at the pure matches before its first
// statement (so skipping the rule can never skip a side effect or an unknown).
func ruleDst(r *Rule) (netip.Addr, bool) {
	for _, e := range r.Exprs {
		m, ok := e.(*Match)
		if !ok {
			return netip.Addr{}, false
		}
		if len(m.Keys) == 1 && m.Keys[0].Field == FieldDAddr && !m.Keys[0].HasMask && m.Op == "==" &&
			m.SetName == "" && len(m.Elems) == 1 && m.Elems[0][0].Kind == ValAddr && m.Elems[0][0].A == m.Elems[0][0].B {
			return m.Elems[0][0].A, true
		}
	}
	return netip.Addr{}, false
}

// nextRule returns the first rule at or after i that could match a packet to dst.
func (c *Chain) nextRule(i int, dst netip.Addr) int {
	if c.idx == nil || i >= len(c.Rules) {
		return i
	}
	next := len(c.Rules)
	if l := c.idx.byDst[dst]; len(l) > 0 {
		if k := sort.Search(len(l), func(k int) bool { return int(l[k]) >= i }); k < len(l) {
			next = int(l[k])
		}
	}
	l := c.idx.wild
	if k := sort.Search(len(l), func(k int) bool { return int(l[k]) >= i }); k < len(l) && int(l[k]) < next {
		next = int(l[k])
	}
	return next
}
