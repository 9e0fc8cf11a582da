package netfilter

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Hit is one rule (or policy) the packet met, like a line of `nft monitor trace`.
type Hit struct {
	Hook    Hook
	Family  Family
	Table   string
	Chain   string
	Handle  uint64
	Line    int
	Rule    string // rule text; empty for a policy
	Verdict string // continue | accept | drop | reject | return | jump X | goto X | policy accept | policy drop
	Note    string // fork choice, NAT result, assumptions
}

func (h Hit) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s %s %s %s ", h.Hook, h.Family, h.Table, h.Chain)
	if h.Rule == "" {
		b.WriteString(h.Verdict)
	} else {
		fmt.Fprintf(&b, "rule %s (verdict %s)", h.Rule, h.Verdict)
	}
	var loc []string
	if h.Handle != 0 {
		loc = append(loc, fmt.Sprintf("handle %d", h.Handle))
	}
	if h.Line != 0 {
		loc = append(loc, fmt.Sprintf("line %d", h.Line))
	}
	if len(loc) > 0 {
		b.WriteString(" [" + strings.Join(loc, ", ") + "]")
	}
	if h.Note != "" {
		b.WriteString(" — " + h.Note)
	}
	return b.String()
}

// Final verdicts of a branch.
const (
	VerdictAccept  = "accept"  // delivered locally or sent out
	VerdictDrop    = "drop"    // dropped by a rule or a policy
	VerdictReject  = "reject"  // rejected (ICMP error / TCP reset)
	VerdictUnknown = "unknown" // the walk met something it cannot decide
)

// Branch is one possible fate of the packet.
type Branch struct {
	Probability float64
	Hits        []Hit
	Verdict     string // accept | drop | reject | unknown
	// Delivery says where an accepted packet goes: "local" (a socket on the node) or "out" (sent out Packet.Oif).
	Delivery string
	Packet   Packet // the packet after the walk: NAT applied, marks, oif
	DNAT     bool   // destination rewritten (dnat, redirect, tproxy)
	SNAT     bool   // source rewritten by snat
	// Masquerade: a masquerade statement ran; the source becomes the oif's address (Packet.Src shows it when
	// Node.IfAddrs knows it).
	Masquerade bool
	// Unknown explains an unknown verdict, quoting the rule and its line.
	Unknown string
	// UnknownRule is the rule the walk could not decide, if any.
	UnknownRule *Rule
}

// Result is the walk of one packet.
type Result struct {
	Packet   Packet
	Branches []Branch
	Notes    []string
}

// Endpoints lists the distinct destinations of accepted branches, in branch order.
func (r Result) Endpoints() []netip.AddrPort {
	var out []netip.AddrPort
	seen := map[netip.AddrPort]bool{}
	for _, b := range r.Branches {
		if b.Verdict == VerdictAccept && !seen[b.Packet.Dst] {
			seen[b.Packet.Dst] = true
			out = append(out, b.Packet.Dst)
		}
	}
	return out
}

// Options tune a walk.
type Options struct {
	// MaxBranches caps forking (default 4096); branches beyond it end unknown.
	MaxBranches int
}

type frame struct {
	ch   *Chain
	rule int
}

type stage uint8

const (
	stPre stage = iota
	stInput
	stForward
	stOutput
	stPost
	stLoPre
	stLoInput
	stDone
)

func (s stage) hook() Hook {
	switch s {
	case stPre, stLoPre:
		return HookPrerouting
	case stInput, stLoInput:
		return HookInput
	case stForward:
		return HookForward
	case stOutput:
		return HookOutput
	}
	return HookPostrouting
}

type branch struct {
	prob     float64
	pkt      Packet
	hits     []Hit
	st       stage
	chains   []*Chain
	ci       int
	stack    []frame
	natDone  [2]bool // [0] destination NAT done for the connection, [1] source NAT
	natHook  bool    // a nat chain of the current hook already did NAT: skip the others
	local    bool    // locally generated
	toLocal  bool    // redirect/tproxy forced local delivery
	dnat     bool
	snat     bool
	masq     bool
	done     bool
	verdict  string
	delivery string
	unknown  string
	unkRule  *Rule
	steps    int
	path     []uint16 // fork choices, for presenting branches in rule order
}

func (b *branch) clone() *branch {
	c := *b
	c.hits = append([]Hit(nil), b.hits...)
	c.stack = append([]frame(nil), b.stack...)
	c.path = append([]uint16(nil), b.path...)
	if b.pkt.Recent != nil {
		c.pkt.Recent = append([]string(nil), b.pkt.Recent...)
	}
	return &c
}

type walker struct {
	rs    *Ruleset
	node  *Node
	opt   Options
	work  []*branch
	out   []Branch
	notes []string
	buf   []byte
	tuple []Val
	total int
}

// Eval walks pkt through the ruleset the way the kernel does and returns every branch with its probability.
// A parsed Ruleset is read-only during Eval, so one ruleset can serve concurrent walks (after Merge, call Eval once
// before sharing it).
func Eval(rs *Ruleset, pkt Packet, node *Node, opt Options) Result {
	rs.finalize()
	if opt.MaxBranches <= 0 {
		opt.MaxBranches = 4096
	}
	if pkt.CtState == "" {
		pkt.CtState = "new"
	}
	if pkt.Proto == ProtoTCP && pkt.TCPFlags == 0 && pkt.CtState == "new" {
		pkt.TCPFlags = 2 // SYN
	}
	w := &walker{rs: rs, node: node, opt: opt}
	b := &branch{prob: 1, pkt: pkt}
	switch pkt.Path {
	case PathLocal:
		b.local = true
	case PathInput, PathForward:
	default:
		b.local = node.isLocal(pkt.Src.Addr()) && pkt.Iif == ""
	}
	if pkt.CtState != "new" {
		w.notes = append(w.notes, "ct state "+pkt.CtState+": nat chains are skipped (NAT of an existing connection comes from conntrack, not from rules)")
	}
	if b.local {
		b.st = stOutput
		if b.pkt.Oif == "" {
			b.pkt.Oif = node.route(pkt.Dst.Addr())
		}
	} else {
		b.st = stPre
	}
	b.chains = rs.BaseChains(b.st.hook(), pkt.IPv())
	w.total = 1
	w.work = append(w.work, b)
	var paths [][]uint16
	for len(w.work) > 0 {
		x := w.work[len(w.work)-1]
		w.work = w.work[:len(w.work)-1]
		w.run(x)
		paths = append(paths, x.path)
		w.out = append(w.out, Branch{Probability: x.prob, Hits: x.hits, Verdict: x.verdict, Delivery: x.delivery,
			Packet: x.pkt, DNAT: x.dnat, SNAT: x.snat, Masquerade: x.masq, Unknown: x.unknown, UnknownRule: x.unkRule})
	}
	// Forks were explored depth-first from the last alternative; present them in rule order.
	order := make([]int, len(w.out))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return pathLess(paths[order[i]], paths[order[j]]) })
	sorted := make([]Branch, len(w.out))
	for i, k := range order {
		sorted[i] = w.out[k]
	}
	w.out = sorted
	return Result{Packet: pkt, Branches: w.out, Notes: w.notes}
}

func pathLess(a, b []uint16) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return len(a) < len(b)
}

func (w *walker) finish(b *branch, verdict string) {
	b.done = true
	b.verdict = verdict
}

func (w *walker) fail(b *branch, r *Rule, format string, args ...any) {
	b.done = true
	b.verdict = VerdictUnknown
	msg := fmt.Sprintf(format, args...)
	if r != nil {
		msg = fmt.Sprintf("%s: %q (%s)", msg, r.Text, r.Where())
		b.unkRule = r
	}
	b.unknown = msg
}

// fork clones b as alternative number choice (b itself is alternative 0 and must call mark(b) itself).
func (w *walker) fork(b *branch, choice int) (*branch, bool) {
	if w.total >= w.opt.MaxBranches {
		return nil, false
	}
	w.total++
	c := b.clone()
	c.path = append(c.path, uint16(choice))
	w.work = append(w.work, c)
	return c, true
}

// manip: 0 for destination NAT hooks, 1 for source NAT hooks.
func manip(h Hook) int {
	if h == HookInput || h == HookPostrouting {
		return 1
	}
	return 0
}

// advance moves the branch to the next hook after the current one has accepted the packet.
func (w *walker) advance(b *branch) {
	h := b.st.hook()
	if h == HookPrerouting || h == HookOutput {
		b.natDone[0] = true
	}
	if h == HookInput || h == HookPostrouting {
		b.natDone[1] = true
	}
	b.natHook = false
	dst := b.pkt.Dst.Addr()
	switch b.st {
	case stPre:
		switch {
		case b.toLocal || b.pkt.Path == PathInput:
			b.st = stInput
		case b.pkt.Path == PathForward:
			b.st = stForward
		case w.node.isLocal(dst):
			b.st = stInput
		default:
			b.st = stForward
		}
		if b.st == stForward && b.pkt.Oif == "" {
			b.pkt.Oif = w.node.route(dst)
		}
	case stForward:
		b.st = stPost
	case stOutput:
		// re-route: NAT in output may have changed the destination
		if b.dnat || b.toLocal {
			b.pkt.Oif = w.node.route(dst)
			if b.toLocal {
				b.pkt.Oif = "lo"
			}
		}
		b.st = stPost
	case stPost:
		if b.local && (b.pkt.Oif == "lo" || w.node.isLocal(dst)) {
			// loops back in through lo; the connection's NAT is already set up
			b.st = stLoPre
			b.pkt.Iif = "lo"
		} else {
			b.st = stDone
			b.delivery = "out"
			w.finish(b, VerdictAccept)
			return
		}
	case stLoPre:
		b.st = stLoInput
	case stInput, stLoInput:
		b.st = stDone
		b.delivery = "local"
		w.finish(b, VerdictAccept)
		return
	}
	b.chains = w.rs.BaseChains(b.st.hook(), b.pkt.IPv())
	b.ci = 0
	b.stack = b.stack[:0]
}

func (w *walker) run(b *branch) {
	for !b.done {
		b.steps++
		if b.steps > 1_000_000 {
			w.fail(b, nil, "walk did not finish after a million steps (rule loop?)")
			return
		}
		if len(b.stack) == 0 {
			if b.ci >= len(b.chains) {
				w.advance(b)
				continue
			}
			c := b.chains[b.ci]
			if c.Type == "nat" && (b.pkt.CtState != "new" || b.natDone[manip(c.Hook)] || b.natHook) {
				b.ci++
				continue
			}
			b.stack = append(b.stack, frame{ch: c})
			continue
		}
		f := &b.stack[len(b.stack)-1]
		f.rule = f.ch.nextRule(f.rule, b.pkt.Dst.Addr())
		if f.rule >= len(f.ch.Rules) {
			w.ret(b)
			continue
		}
		w.rule(b, f.ch.Rules[f.rule])
	}
}

// ret leaves the current chain (end of chain or return).
func (w *walker) ret(b *branch) {
	b.stack = b.stack[:len(b.stack)-1]
	if len(b.stack) > 0 {
		b.stack[len(b.stack)-1].rule++
		return
	}
	base := b.chains[b.ci]
	pol := base.Policy
	if pol == "" {
		pol = "accept"
	}
	b.hits = append(b.hits, w.hit(b, base, nil, "policy "+pol, ""))
	if pol == "drop" {
		w.finish(b, VerdictDrop)
		return
	}
	b.ci++
}

func (w *walker) hit(b *branch, c *Chain, r *Rule, verdict, note string) Hit {
	h := Hit{Hook: b.st.hook(), Family: c.Table.Family, Table: c.Table.Name, Chain: c.Name, Verdict: verdict, Note: note}
	if r != nil {
		h.Handle, h.Line, h.Rule = r.Handle, r.Line, r.Text
	}
	return h
}

// acceptBase ends the current base chain with accept.
func (w *walker) acceptBase(b *branch) {
	b.stack = b.stack[:0]
	b.ci++
}

// rule evaluates one rule at the top frame.
func (w *walker) rule(b *branch, r *Rule) {
	f := &b.stack[len(b.stack)-1]
	for _, e := range r.Exprs {
		switch x := e.(type) {
		case *Match:
			if x.Op == "false" {
				f.rule++
				return
			}
			if len(x.Keys) == 1 && x.Keys[0].Field == FieldNumgen {
				w.fail(b, r, "numgen used in a plain comparison is not modelled")
				return
			}
			ok, unk := w.match(b, x)
			if unk != "" {
				w.fail(b, r, "cannot decide %q: %s", x.Text, unk)
				return
			}
			if !ok {
				f.rule++
				return
			}
		case *CtStateMatch:
			if (x.DNAT || x.SNAT) && b.pkt.CtState != "new" {
				w.fail(b, r, "cannot decide %q: whether an existing connection was NATed is not an input", x.Text)
				return
			}
			ok := ctStateBits[b.pkt.CtState]&x.States != 0 || (x.DNAT && b.dnat) || (x.SNAT && (b.snat || b.masq))
			if ok == x.Neg {
				f.rule++
				return
			}
		case *RecentMatch:
			in := false
			for _, n := range b.pkt.Recent {
				if n == x.Name {
					in = true
				}
			}
			if in == x.Neg {
				f.rule++
				return
			}
		case *Fork:
			if c, ok := w.fork(b, 1); ok {
				c.prob *= 1 - x.P
				c.stack[len(c.stack)-1].rule++
			} else {
				w.fail(b, r, "too many branches")
				return
			}
			b.path = append(b.path, 0)
			b.prob *= x.P
		case *NopStmt:
		case *MarkStmt:
			b.pkt.Mark, b.pkt.CtMark = x.Apply(b.pkt.Mark, b.pkt.CtMark)
		case *VerdictStmt:
			w.verdict(b, r, x.Verdict, "")
			return
		case *VMap:
			w.vmap(b, r, x)
			return
		case *NATStmt:
			w.nat(b, r, x)
			return
		case *UnknownExpr:
			w.fail(b, r, "not understood (%s)", x.Reason)
			return
		}
	}
	b.hits = append(b.hits, w.hit(b, f.ch, r, "continue", ""))
	f.rule++
}

// verdict applies v for rule r (already matched) and records the hit.
func (w *walker) verdict(b *branch, r *Rule, v Verdict, note string) {
	f := &b.stack[len(b.stack)-1]
	shown := v.String()
	if v.Kind == "reject" {
		// the kernel sends the ICMP error / TCP reset and reports NF_DROP, which is what nft monitor trace prints
		shown = "drop"
		with := v.With
		if with == "" {
			with = "icmp port-unreachable"
		}
		if note != "" {
			note += "; "
		}
		note += "reject: sends " + with + ", then drops"
	}
	b.hits = append(b.hits, w.hit(b, f.ch, r, shown, note))
	switch v.Kind {
	case "accept":
		w.acceptBase(b)
	case "drop":
		w.finish(b, VerdictDrop)
	case "reject":
		w.finish(b, VerdictReject)
	case "continue":
		f.rule++
	case "return":
		w.ret(b)
	case "jump", "goto":
		c := f.ch.Table.Chains[v.Chain]
		if c == nil || (!c.declared && len(c.Rules) == 0 && c.Table.Origin == OriginNFT) {
			if c == nil {
				w.fail(b, r, "%s to chain %q, which is not in the dump", v.Kind, v.Chain)
				return
			}
		}
		if c.Base {
			w.fail(b, r, "%s to base chain %q", v.Kind, v.Chain)
			return
		}
		if len(b.stack) >= 64 {
			w.fail(b, r, "jump stack deeper than 64 chains")
			return
		}
		if v.Kind == "jump" {
			b.stack = append(b.stack, frame{ch: c}) // ret() resumes the caller after this rule
		} else {
			b.stack[len(b.stack)-1] = frame{ch: c}
		}
	default:
		w.fail(b, r, "verdict %s is not modelled", v.Kind)
	}
}

func (w *walker) vmap(b *branch, r *Rule, x *VMap) {
	f := &b.stack[len(b.stack)-1]
	elems := x.Elems
	if x.SetName != "" {
		if x.Set == nil {
			w.fail(b, r, "verdict map @%s is not in the dump", x.SetName)
			return
		}
		elems = nil
	}
	if len(x.Keys) == 1 && x.Keys[0].Field == FieldNumgen {
		k := x.Keys[0]
		groups := map[int]int{} // element index (-1: none) → count of numgen values
		var order []int
		for v := uint64(0); v < uint64(k.Mod); v++ {
			t := []Val{intVal(v + uint64(k.Offset))}
			i := -1
			if x.Set != nil {
				i = x.Set.lookup(t, w.buf)
			} else {
				for j, e := range elems {
					if tupleIn(e.Key, t) {
						i = j
						break
					}
				}
			}
			if _, ok := groups[i]; !ok {
				order = append(order, i)
			}
			groups[i]++
		}
		base := b.clone()
		b.path = append(b.path, 0)
		for n, i := range order {
			target := b
			if n > 0 {
				c, ok := w.fork(base, n)
				if !ok {
					w.fail(b, r, "too many branches")
					return
				}
				target = c
			}
			target.prob = base.prob * float64(groups[i]) / float64(k.Mod)
			if i < 0 {
				target.stack[len(target.stack)-1].rule++
				continue
			}
			var e Element
			if x.Set != nil {
				e = x.Set.Elements[i]
			} else {
				e = elems[i]
			}
			if e.Verdict == nil {
				w.fail(target, r, "map element has no verdict")
				continue
			}
			note := fmt.Sprintf("numgen %s → %s of %d (p=%.4g)", k.Mode, e.Key[0], k.Mod, float64(groups[i])/float64(k.Mod))
			w.verdict(target, r, *e.Verdict, note)
		}
		return
	}
	t, ok, unk := w.tupleOf(b, x.Keys)
	if unk != "" {
		w.fail(b, r, "cannot look up %q: %s", x.Text, unk)
		return
	}
	if !ok {
		f.rule++
		return
	}
	var e *Element
	if x.Set != nil {
		if !x.Set.Map || x.Set.DataType != "verdict" {
			w.fail(b, r, "@%s is not a verdict map", x.SetName)
			return
		}
		if i := x.Set.lookup(t, w.buf); i >= 0 {
			e = &x.Set.Elements[i]
		}
	} else {
		for j := range elems {
			if tupleIn(elems[j].Key, t) {
				e = &elems[j]
				break
			}
		}
	}
	if e == nil || e.Verdict == nil {
		f.rule++
		return
	}
	w.verdict(b, r, *e.Verdict, "")
}

func (w *walker) nat(b *branch, r *Rule, x *NATStmt) {
	h := b.st.hook()
	f := &b.stack[len(b.stack)-1]
	if f.ch.Table.Origin == OriginNFT && !isNATHookOK(x.Kind, h) {
		w.fail(b, r, "%s is not valid at hook %s", x.Kind, h)
		return
	}
	apply := func(t *branch, addr netip.Addr, port uint16, note string) {
		switch x.Kind {
		case "dnat":
			if port == 0 {
				port = t.pkt.Dst.Port()
			}
			t.pkt.Dst = netip.AddrPortFrom(addr, port)
			t.dnat = true
			note = fmt.Sprintf("dnat to %s", t.pkt.Dst) + note
		case "snat":
			if port == 0 {
				port = t.pkt.Src.Port()
			}
			t.pkt.Src = netip.AddrPortFrom(addr, port)
			t.snat = true
			note = fmt.Sprintf("snat to %s", t.pkt.Src) + note
		case "masquerade":
			t.masq = true
			if a, ok := w.node.ifAddr(t.pkt.Oif); ok {
				t.pkt.Src = netip.AddrPortFrom(a, t.pkt.Src.Port())
				note = fmt.Sprintf("masquerade to %s (address of %s)", a, t.pkt.Oif)
			} else {
				note = "masquerade: source becomes the address of oif " + quoteOr(t.pkt.Oif, "(unknown)")
			}
		case "redirect", "tproxy":
			if port == 0 {
				port = t.pkt.Dst.Port()
			}
			if !addr.IsValid() {
				if h == HookOutput {
					if t.pkt.IPv() == 4 {
						addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
					} else {
						addr = netip.IPv6Loopback()
					}
				} else if a, ok := w.node.ifAddr(t.pkt.Iif); ok {
					addr = a
				} else {
					addr = t.pkt.Dst.Addr()
					note = " (address: primary address of " + quoteOr(t.pkt.Iif, "iif") + ", not given)"
				}
			}
			t.pkt.Dst = netip.AddrPortFrom(addr, port)
			t.dnat = true
			t.toLocal = true
			note = fmt.Sprintf("%s to %s", x.Kind, t.pkt.Dst) + note
			if x.TProxyMark != nil {
				t.pkt.Mark, t.pkt.CtMark = x.TProxyMark.Apply(t.pkt.Mark, t.pkt.CtMark)
				note += "; tproxy needs policy routing of the mark to a local route, assumed present"
			}
		}
		t.hits = append(t.hits, w.hit(t, t.stack[len(t.stack)-1].ch, r, "accept", note))
		if x.Kind != "tproxy" {
			t.natHook = true
		}
		w.acceptBase(t)
	}
	if x.MapKeys != nil {
		if len(x.MapKeys) != 1 || x.MapKeys[0].Field != FieldNumgen {
			w.fail(b, r, "%s through a map keyed by %s is not modelled", x.Kind, x.MapKeys[0].Field)
			return
		}
		k := x.MapKeys[0]
		type grp struct {
			e Element
			n int
		}
		var groups []grp
		missing := 0
		for v := uint64(0); v < uint64(k.Mod); v++ {
			t := []Val{intVal(v + uint64(k.Offset))}
			found := false
			for _, e := range x.MapElems {
				if tupleIn(e.Key, t) {
					found = true
					merged := false
					for gi := range groups {
						if groups[gi].e.Key[0] == e.Key[0] {
							groups[gi].n++
							merged = true
						}
					}
					if !merged {
						groups = append(groups, grp{e: e, n: 1})
					}
					break
				}
			}
			if !found {
				missing++
			}
		}
		base := b.clone()
		b.path = append(b.path, 0)
		for gi, g := range groups {
			t := b
			if gi > 0 {
				c, ok := w.fork(base, gi)
				if !ok {
					w.fail(b, r, "too many branches")
					return
				}
				t = c
			}
			p := float64(g.n) / float64(k.Mod)
			t.prob = base.prob * p
			var port uint16
			if len(g.e.Data) > 1 {
				port = uint16(g.e.Data[1].I)
			}
			apply(t, g.e.Data[0].A, port, fmt.Sprintf(" (numgen %s → %s of %d, p=%.4g)", k.Mode, g.e.Key[0], k.Mod, p))
		}
		if missing > 0 {
			c := b
			if len(groups) > 0 {
				var ok bool
				if c, ok = w.fork(base, len(groups)); !ok {
					w.fail(b, r, "too many branches")
					return
				}
			}
			c.prob = base.prob * float64(missing) / float64(k.Mod)
			w.fail(c, r, "numgen value with no map entry: the kernel drops the packet (NFT_BREAK on a failed map lookup is not a nat)")
		}
		return
	}
	if x.AddrHi != x.Addr || x.PortHi != x.Port {
		w.fail(b, r, "%s to a range: the kernel picks one address/port by hash", x.Kind)
		return
	}
	if (x.Kind == "dnat" || x.Kind == "snat") && x.Addr.Is4() != (b.pkt.IPv() == 4) {
		f.rule++ // wrong family (inet table): the statement does not apply
		return
	}
	apply(b, x.Addr, x.Port, "")
}

func quoteOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

func isNATHookOK(kind string, h Hook) bool {
	switch kind {
	case "dnat", "redirect":
		return h == HookPrerouting || h == HookOutput
	case "snat", "masquerade":
		return h == HookPostrouting || h == HookInput
	case "tproxy":
		return h == HookPrerouting
	}
	return false
}

func (n *Node) ifAddr(ifname string) (netip.Addr, bool) {
	if n == nil || n.IfAddrs == nil || ifname == "" {
		return netip.Addr{}, false
	}
	a, ok := n.IfAddrs[ifname]
	return a, ok
}

// value reads one selector from the packet. present=false means the kernel's expression would break (field absent),
// so the rule does not match whatever the operator.
func (w *walker) value(b *branch, s Selector) (v Val, present bool, unknown string) {
	p := &b.pkt
	h := b.st.hook()
	if s.IPV != 0 && s.IPV != p.IPv() {
		return v, false, ""
	}
	switch s.Field {
	case FieldSAddr:
		v = Val{Kind: ValAddr, A: p.Src.Addr(), B: p.Src.Addr()}
	case FieldDAddr:
		v = Val{Kind: ValAddr, A: p.Dst.Addr(), B: p.Dst.Addr()}
	case FieldL4Proto:
		v = intVal(uint64(p.Proto))
	case FieldSPort, FieldDPort:
		if s.Proto != 0 && s.Proto != p.Proto {
			return v, false, ""
		}
		switch p.Proto {
		case ProtoTCP, ProtoUDP, ProtoSCTP, 136:
		default:
			return v, false, ""
		}
		if s.Field == FieldSPort {
			v = intVal(uint64(p.Src.Port()))
		} else {
			v = intVal(uint64(p.Dst.Port()))
		}
	case FieldMark:
		v = intVal(uint64(p.Mark))
	case FieldCtMark:
		v = intVal(uint64(p.CtMark))
	case FieldCtState:
		v = intVal(ctStateBits[p.CtState])
	case FieldCtStatus:
		if p.CtState != "new" {
			return v, false, "ct status of an existing connection is not an input"
		}
		var st uint64
		if b.dnat {
			st |= ctStatusBits["dnat"]
		}
		if b.snat || b.masq {
			st |= ctStatusBits["snat"]
		}
		v = intVal(st)
	case FieldIifName:
		if h == HookOutput || (h == HookPostrouting && b.local) {
			// The kernel's meta iifname stores an empty name when there is no input device (nft_meta_store_ifname
			// zero-fills), so `iifname != "docker0"` (iptables `! -i docker0`) matches here and `iifname "x"` does not.
			return Val{Kind: ValStr}, true, ""
		}
		if p.Iif == "" {
			return v, false, "the packet's input interface is not given (iif)"
		}
		v = Val{Kind: ValStr, S: p.Iif}
	case FieldOifName:
		if h == HookPrerouting || h == HookInput {
			return Val{Kind: ValStr}, true, "" // no output device yet: an empty name, as for iifname above
		}
		if p.Oif == "" {
			return v, false, "the output interface is not known (give oif or node routes)"
		}
		v = Val{Kind: ValStr, S: p.Oif}
	case FieldSkUID, FieldSkGID:
		if !b.local || (h != HookOutput && h != HookPostrouting) {
			return v, false, ""
		}
		if p.Owner == nil {
			return v, false, "the socket owner (uid/gid) of the locally generated packet is not given"
		}
		if s.Field == FieldSkUID {
			v = intVal(uint64(p.Owner.UID))
		} else {
			v = intVal(uint64(p.Owner.GID))
		}
	case FieldSocket:
		if b.local && (h == HookOutput || h == HookPostrouting) {
			v = intVal(1)
		} else {
			v = intVal(0)
		}
	case FieldNfProto:
		if p.IPv() == 4 {
			v = intVal(2)
		} else {
			v = intVal(10)
		}
	case FieldFibSAddrType, FieldFibDAddrType:
		a := p.Src.Addr()
		if s.Field == FieldFibDAddrType {
			a = p.Dst.Addr()
		}
		v = intVal(w.addrType(a))
	case FieldPktType:
		switch {
		case p.Dst.Addr().IsMulticast():
			v = intVal(2)
		case p.Dst.Addr() == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			v = intVal(1)
		default:
			v = intVal(0)
		}
	case FieldTCPFlags:
		if p.Proto != ProtoTCP {
			return v, false, ""
		}
		v = intVal(uint64(p.TCPFlags))
	default:
		return v, false, fmt.Sprintf("%s cannot be read here", s.Field)
	}
	if s.HasMask && v.Kind == ValInt {
		v = intVal(s.apply(v.I))
	}
	return v, true, ""
}

func (w *walker) addrType(a netip.Addr) uint64 {
	switch {
	case w.node.isLocal(a):
		return fibTypes["local"]
	case a.IsMulticast():
		return fibTypes["multicast"]
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fibTypes["broadcast"]
	}
	return fibTypes["unicast"]
}

func (w *walker) tupleOf(b *branch, keys []Selector) ([]Val, bool, string) {
	t := w.tuple[:0]
	for _, k := range keys {
		v, ok, unk := w.value(b, k)
		if unk != "" || !ok {
			return nil, ok, unk
		}
		t = append(t, v)
	}
	w.tuple = t
	return t, true, ""
}

func (w *walker) match(b *branch, m *Match) (bool, string) {
	t, ok, unk := w.tupleOf(b, m.Keys)
	if unk != "" || !ok {
		return false, unk
	}
	var member bool
	switch {
	case strings.HasPrefix(m.SetName, "ipset:"):
		name := strings.TrimPrefix(m.SetName, "ipset:")
		pre, ok := []netip.Prefix(nil), false
		if w.node != nil && w.node.IPSets != nil {
			pre, ok = w.node.IPSets[name]
		}
		if !ok {
			return false, "the contents of ipset " + name + " are not given (Node.IPSets)"
		}
		for _, p := range pre {
			if p.Contains(t[0].A) {
				member = true
			}
		}
	case m.SetName != "":
		if m.Set == nil {
			return false, "set @" + m.SetName + " is not in the dump"
		}
		if m.Flags {
			for _, e := range m.Set.Elements {
				if len(e.Key) == 1 && t[0].I&e.Key[0].I != 0 {
					member = true
				}
			}
		} else {
			member = m.Set.lookup(t, w.buf) >= 0
		}
	case m.Op == "<" || m.Op == ">" || m.Op == "<=" || m.Op == ">=":
		c := compareVal(t[0], m.Elems[0][0])
		switch m.Op {
		case "<":
			return c < 0, ""
		case ">":
			return c > 0, ""
		case "<=":
			return c <= 0, ""
		}
		return c >= 0, ""
	default:
		for _, e := range m.Elems {
			for _, v := range e {
				if v.Kind == ValStr && (m.Keys[0].Field == FieldSkUID || m.Keys[0].Field == FieldSkGID) {
					return false, "owner " + v.S + " is a name; resolving it needs the node's /etc/passwd or /etc/group"
				}
			}
			if m.Flags {
				if t[0].I&e[0].I != 0 {
					member = true
					break
				}
				continue
			}
			if tupleIn(e, t) {
				member = true
				break
			}
		}
	}
	if m.Op == "!=" {
		return !member, ""
	}
	return member, ""
}

func compareVal(x, lit Val) int {
	if x.Kind == ValAddr {
		return x.A.Compare(lit.A)
	}
	switch {
	case x.I < lit.I:
		return -1
	case x.I > lit.I:
		return 1
	}
	return 0
}
