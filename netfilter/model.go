package netfilter

import (
	"fmt"
	"net/netip"
	"sort"
)

// Family is a netfilter address family as nft names it.
type Family string

// Families the model knows. Only ip, ip6 and inet tables see IP packets at the prerouting…postrouting hooks.
const (
	FamilyIP     Family = "ip"     // IPv4 only; iptables tables land here
	FamilyIP6    Family = "ip6"    // IPv6 only; ip6tables tables land here
	FamilyINet   Family = "inet"   // both IPv4 and IPv6 (nft ≥ 0.9.0)
	FamilyARP    Family = "arp"    // ARP; never walked
	FamilyBridge Family = "bridge" // bridge hooks; never walked
	FamilyNetdev Family = "netdev" // ingress/egress per device; never walked
)

// Hook is a netfilter hook.
type Hook string

// The IP hooks, in the order a packet can meet them.
const (
	HookPrerouting  Hook = "prerouting"
	HookInput       Hook = "input"
	HookForward     Hook = "forward"
	HookOutput      Hook = "output"
	HookPostrouting Hook = "postrouting"
	HookIngress     Hook = "ingress"
	HookEgress      Hook = "egress"
)

// Standard chain priorities (nft's named priorities for the ip/ip6/inet families).
const (
	PriorityRaw      = -300
	PriorityMangle   = -150
	PriorityDstNAT   = -100
	PriorityFilter   = 0
	PrioritySecurity = 50
	PrioritySrcNAT   = 100
)

// Origin says which program wrote the table.
type Origin string

// Table origins.
const (
	OriginNFT      Origin = "nft"      // nftables (text, JSON or knftables dump)
	OriginIPTables Origin = "iptables" // iptables-save / iptables-restore input
)

// Ruleset is every table of one or more dumps.
type Ruleset struct {
	Tables []*Table
	// Problems lists what was not understood, each with its line; the rest of the ruleset still works.
	Problems []Problem
	tables   map[string]*Table
	final    bool
	bases    map[baseKey][]*Chain // base chains per hook and IP version, in kernel order
}

type baseKey struct {
	hook Hook
	ipv  int
}

// Problem is something in a dump the parser did not understand.
type Problem struct {
	Line   int    // 1-based line in the input; 0 when the input has no lines (JSON)
	Where  string // "ip kube-proxy services" or "nat KUBE-SERVICES"
	Text   string // the offending line or rule
	Reason string
}

func (p Problem) String() string {
	loc := ""
	if p.Line > 0 {
		loc = fmt.Sprintf("line %d: ", p.Line)
	}
	if p.Where != "" {
		loc += p.Where + ": "
	}
	return loc + p.Reason + ": " + p.Text
}

// Table is an nft table or an iptables table (filter, nat, mangle, raw, security).
type Table struct {
	Family Family
	Name   string
	Origin Origin
	Line   int
	Chains map[string]*Chain
	Order  []*Chain // chains in the order they were declared
	Sets   map[string]*Set
}

// Chain is a base chain (Hook set) or a regular chain.
type Chain struct {
	Table    *Table
	Name     string
	Line     int
	Base     bool
	Type     string // filter | nat | route
	Hook     Hook
	Priority int
	Policy   string // accept | drop (base chains)
	Device   string
	Rules    []*Rule
	declared bool
	idx      *dstIndex
}

// Rule is one rule: matches and statements in order.
type Rule struct {
	Chain   *Chain
	Handle  uint64 // nft handle when the dump has one (nft -a, JSON)
	Line    int
	Index   int // position in the chain, 0-based
	Text    string
	Comment string
	Exprs   []Expr
	spec    string // iptables: the rule's arguments after the chain name, for -D
}

// Unknown returns the reason the rule is not fully understood, or "".
func (r *Rule) Unknown() string {
	for _, e := range r.Exprs {
		if u, ok := e.(*UnknownExpr); ok {
			return u.Reason
		}
	}
	return ""
}

// Where names the rule for humans: "ip kube-proxy services handle 7" or "nat KUBE-SERVICES line 12".
func (r *Rule) Where() string {
	s := r.Chain.Table.Family.String() + " " + r.Chain.Table.Name + " " + r.Chain.Name
	if r.Handle != 0 {
		s += fmt.Sprintf(" handle %d", r.Handle)
	}
	if r.Line != 0 {
		s += fmt.Sprintf(" line %d", r.Line)
	}
	return s
}

func (f Family) String() string { return string(f) }

// Set is a named set or map.
type Set struct {
	Name     string
	Line     int
	Map      bool
	KeyTypes []string // ipv4_addr, inet_proto, inet_service, …
	DataType string   // verdict, ipv4_addr, … (maps)
	Flags    []string
	Elements []Element
	exact    map[string]int // encoded single-valued key → element index
	ranged   []int          // elements with an interval component
}

// Element is a set element; maps carry Verdict or Data.
type Element struct {
	Key     []Val
	Verdict *Verdict
	Data    []Val
	Comment string
}

// Verdict is an nft/iptables verdict.
type Verdict struct {
	Kind  string // accept drop reject return jump goto continue queue
	Chain string // jump/goto target
	With  string // reject with …
}

func (v Verdict) String() string {
	switch v.Kind {
	case "jump", "goto":
		return v.Kind + " " + v.Chain
	}
	return v.Kind
}

func (rs *Ruleset) key(f Family, name string) string { return string(f) + " " + name }

// Table returns a table by family and name.
func (rs *Ruleset) Table(f Family, name string) *Table {
	if rs.tables == nil {
		return nil
	}
	return rs.tables[rs.key(f, name)]
}

func (rs *Ruleset) ensureTable(f Family, name string, o Origin, line int) *Table {
	if rs.tables == nil {
		rs.tables = map[string]*Table{}
	}
	k := rs.key(f, name)
	if t := rs.tables[k]; t != nil {
		return t
	}
	t := &Table{Family: f, Name: name, Origin: o, Line: line, Chains: map[string]*Chain{}, Sets: map[string]*Set{}}
	rs.tables[k] = t
	rs.Tables = append(rs.Tables, t)
	rs.final = false
	return t
}

func (t *Table) ensureChain(name string, line int) *Chain {
	if c := t.Chains[name]; c != nil {
		return c
	}
	c := &Chain{Table: t, Name: name, Line: line, Policy: "accept"}
	t.Chains[name] = c
	t.Order = append(t.Order, c)
	return c
}

func (rs *Ruleset) problem(line int, where, text, format string, args ...any) {
	rs.Problems = append(rs.Problems, Problem{Line: line, Where: where, Text: text, Reason: fmt.Sprintf(format, args...)})
}

// Merge adds every table of other to rs (for example an nft dump plus an iptables-save dump of the same node).
func (rs *Ruleset) Merge(other *Ruleset) {
	for _, t := range other.Tables {
		if rs.tables == nil {
			rs.tables = map[string]*Table{}
		}
		k := rs.key(t.Family, t.Name)
		if _, dup := rs.tables[k]; dup {
			// iptables-nft tables show up in both dumps under the same name; keep the first.
			rs.problem(t.Line, k, "table "+k, "table appears in two dumps; kept the first")
			continue
		}
		rs.tables[k] = t
		rs.Tables = append(rs.Tables, t)
	}
	rs.Problems = append(rs.Problems, other.Problems...)
	rs.final = false
}

// finalize resolves references, builds set indexes and big-chain indexes. It is idempotent.
func (rs *Ruleset) finalize() {
	if rs.final {
		return
	}
	rs.final = true
	rs.bases = nil
	for _, t := range rs.Tables {
		for _, s := range t.Sets {
			s.index()
		}
		for _, c := range t.Order {
			for i, r := range c.Rules {
				r.Index = i
				r.Chain = c
				for _, e := range r.Exprs {
					switch x := e.(type) {
					case *Match:
						if x.SetName != "" && x.Set == nil {
							x.Set = t.Sets[x.SetName]
						}
					case *VMap:
						if x.SetName != "" && x.Set == nil {
							x.Set = t.Sets[x.SetName]
						}
					}
				}
			}
			c.buildIndex()
		}
	}
	rs.bases = map[baseKey][]*Chain{}
	for _, h := range []Hook{HookPrerouting, HookInput, HookForward, HookOutput, HookPostrouting} {
		for _, ipv := range []int{4, 6} {
			rs.bases[baseKey{h, ipv}] = rs.baseChains(h, ipv)
		}
	}
}

// BaseChains returns the base chains attached to hook h for a packet of the given IP version (4 or 6), in the order
// the kernel runs them: by priority, ties in declaration order.
func (rs *Ruleset) BaseChains(h Hook, ipv int) []*Chain {
	rs.finalize()
	if c, ok := rs.bases[baseKey{h, ipv}]; ok {
		return c
	}
	return rs.baseChains(h, ipv)
}

func (rs *Ruleset) baseChains(h Hook, ipv int) []*Chain {
	var out []*Chain
	for _, t := range rs.Tables {
		if !familySees(t.Family, ipv) {
			continue
		}
		for _, c := range t.Order {
			if c.Base && c.Hook == h {
				out = append(out, c)
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return effectivePriority(out[i]) < effectivePriority(out[j]) })
	return out
}

// effectivePriority is where the kernel really runs the chain: all nat-type chains of a hook run inside the NAT core's
// single hook (priority -100 for prerouting/output, 100 for input/postrouting), ordered among themselves by their own
// priority (nf_nat_register_fn).
func effectivePriority(c *Chain) float64 {
	if c.Type == "nat" {
		base := float64(PriorityDstNAT)
		if c.Hook == HookInput || c.Hook == HookPostrouting {
			base = PrioritySrcNAT
		}
		return base + float64(c.Priority)/1e6
	}
	return float64(c.Priority)
}

func familySees(f Family, ipv int) bool {
	switch f {
	case FamilyINet:
		return true
	case FamilyIP:
		return ipv == 4
	case FamilyIP6:
		return ipv == 6
	}
	return false
}

// addrOK reports whether an address literal fits the family of a table.
func addrFamily(a netip.Addr) Family {
	if a.Is4() {
		return FamilyIP
	}
	return FamilyIP6
}
