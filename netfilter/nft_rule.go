package netfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// ruleParser turns the tokens of one nft rule into expressions.
type ruleParser struct {
	t       []tok
	i       int
	comment string
}

func (p *ruleParser) eof() bool { return p.i >= len(p.t) }
func (p *ruleParser) peek() string {
	if p.eof() {
		return ""
	}
	return p.t[p.i].s
}
func (p *ruleParser) peekAt(k int) string {
	if p.i+k >= len(p.t) {
		return ""
	}
	return p.t[p.i+k].s
}
func (p *ruleParser) next() string {
	if p.eof() {
		return ""
	}
	s := p.t[p.i].s
	p.i++
	return s
}

type parseErr struct{ msg string }

func (e *parseErr) Error() string { return e.msg }

func perr(format string, args ...any) *parseErr { return &parseErr{fmt.Sprintf(format, args...)} }

// parseNFTRule parses an nft rule body. It never fails: what it does not understand becomes an *UnknownExpr at that
// point, so that the walk can still decide rules whose earlier matches fail.
func parseNFTRule(toks []tok) (exprs []Expr, comment string) {
	p := &ruleParser{t: toks}
	for !p.eof() {
		start := p.i
		e, err := p.expr()
		if err != nil {
			exprs = append(exprs, &UnknownExpr{Reason: err.Error(), Text: joinToks(toks[start:])})
			return exprs, p.comment
		}
		if e != nil {
			exprs = append(exprs, e)
		}
	}
	return exprs, p.comment
}

func (p *ruleParser) text(from int) string { return joinToks(p.t[from:p.i]) }

func (p *ruleParser) expr() (Expr, error) {
	start := p.i
	w := p.peek()
	switch w {
	case "comment":
		p.next()
		p.comment = p.next()
		return nil, nil
	case "accept", "drop", "continue", "return":
		p.next()
		return &VerdictStmt{Verdict{Kind: w}}, nil
	case "reject":
		p.next()
		v := Verdict{Kind: "reject"}
		if p.peek() == "with" {
			p.next()
			kind := p.next()
			v.With = kind
			if kind == "tcp" { // with tcp reset
				v.With += " " + p.next()
			} else if p.peek() != "" && !isStmtStart(p.peek()) {
				v.With += " " + p.next()
			}
		}
		return &VerdictStmt{v}, nil
	case "jump", "goto":
		p.next()
		target := p.next()
		if target == "" {
			return nil, perr("%s without a chain", w)
		}
		return &VerdictStmt{Verdict{Kind: w, Chain: target}}, nil
	case "queue":
		return nil, perr("queue hands the packet to a userspace program; its verdict is not in the ruleset")
	case "counter":
		p.next()
		for p.peek() == "packets" || p.peek() == "bytes" || p.peek() == "name" {
			p.next()
			p.next()
		}
		return &NopStmt{Text: p.text(start)}, nil
	case "log":
		p.next()
		for {
			switch p.peek() {
			case "prefix", "level", "group", "snaplen", "queue-threshold":
				p.next()
				p.next()
				continue
			case "flags":
				p.next()
				p.next()
				for p.peek() == "," {
					p.next()
					p.next()
				}
				continue
			}
			break
		}
		return &NopStmt{Text: p.text(start)}, nil
	case "limit":
		p.next()
		if p.peek() == "name" {
			p.next()
			p.next()
			return &NopStmt{Text: p.text(start)}, nil
		}
		if p.peek() == "rate" {
			p.next()
		}
		over := false
		if p.peek() == "over" {
			over = true
			p.next()
		}
		for !p.eof() && !isStmtStart(p.peek()) && p.peek() != "comment" {
			p.next()
		}
		if over {
			return &Match{Op: "false", Text: p.text(start) + " (a single new packet is never over the rate)"}, nil
		}
		return &NopStmt{Text: p.text(start) + " (a single new packet is within the rate)"}, nil
	case "notrack":
		p.next()
		return &NopStmt{Text: "notrack"}, nil
	case "masquerade", "snat", "dnat", "redirect", "tproxy":
		return p.nat()
	case "update", "add", "delete":
		if strings.HasPrefix(p.peekAt(1), "@") {
			p.next()
			p.next()
			if err := p.skipBraces(); err != nil {
				return nil, err
			}
			return &NopStmt{Text: p.text(start)}, nil
		}
	case "flow":
		return nil, perr("flow offload is not modelled")
	}
	// "X set Y" statements.
	if set, n := p.setStmtTarget(); n > 0 {
		p.i += n
		return p.setStmt(set, start)
	}
	keys, err := p.selectors()
	if err != nil {
		return nil, err
	}
	switch p.peek() {
	case "vmap":
		p.next()
		vm := &VMap{Keys: keys}
		if strings.HasPrefix(p.peek(), "@") {
			vm.SetName = strings.TrimPrefix(p.next(), "@")
		} else {
			els, err := p.anonElems(keys, []string{"verdict"})
			if err != nil {
				return nil, err
			}
			vm.Elems = els
		}
		vm.Text = p.text(start)
		return vm, nil
	case "map":
		return nil, perr("a map lookup outside a statement is not modelled")
	}
	m := &Match{Keys: keys, Op: "=="}
	switch p.peek() {
	case "==", "eq":
		p.next()
	case "!=", "ne":
		p.next()
		m.Op = "!="
	case "<", "lt", ">", "gt", "<=", "le", ">=", "ge":
		m.Op = map[string]string{"lt": "<", "gt": ">", "le": "<=", "ge": ">="}[p.peek()]
		if m.Op == "" {
			m.Op = p.peek()
		}
		p.next()
	}
	if len(keys) == 1 && isFlagField(keys[0].Field) && !keys[0].HasMask {
		m.Flags = true
	}
	if strings.HasPrefix(p.peek(), "@") {
		m.SetName = strings.TrimPrefix(p.next(), "@")
	} else if p.peek() == "{" {
		els, err := p.anonElems(keys, nil)
		if err != nil {
			return nil, err
		}
		for _, e := range els {
			m.Elems = append(m.Elems, e.Key)
		}
	} else {
		tuple, err := p.tuple(keys)
		if err != nil {
			return nil, err
		}
		if m.Flags { // ct state established,related
			for p.peek() == "," {
				p.next()
				v, err := parseLit(keys[0], p.next())
				if err != nil {
					return nil, perr("%v", err)
				}
				tuple[0].I |= v.I
				tuple[0].J = tuple[0].I
			}
		}
		m.Elems = [][]Val{tuple}
	}
	if (m.Op != "==" && m.Op != "!=") && (len(keys) != 1 || len(m.Elems) != 1) {
		return nil, perr("comparison %s needs one value", m.Op)
	}
	m.Text = p.text(start)
	return m, nil
}

func isStmtStart(s string) bool {
	switch s {
	case "accept", "drop", "reject", "return", "jump", "goto", "continue", "counter", "log", "comment", "masquerade",
		"snat", "dnat", "redirect", "meta", "mark", "ct", "limit", "notrack", "queue":
		return true
	}
	return false
}

func (p *ruleParser) skipBraces() error {
	if p.peek() != "{" {
		return nil
	}
	depth := 0
	for !p.eof() {
		s := p.next()
		if s == "{" {
			depth++
		} else if s == "}" {
			depth--
			if depth == 0 {
				return nil
			}
		}
	}
	return perr("unbalanced braces")
}

// setStmtTarget recognises "meta mark set", "mark set", "ct mark set", "meta nftrace set", "ct zone set".
func (p *ruleParser) setStmtTarget() (string, int) {
	a, b, c := p.peekAt(0), p.peekAt(1), p.peekAt(2)
	switch {
	case a == "meta" && c == "set":
		return "meta " + b, 3
	case a == "ct" && c == "set":
		return "ct " + b, 3
	case b == "set" && (a == "mark" || a == "nftrace" || a == "priority" || a == "pkttype"):
		return "meta " + a, 2
	}
	return "", 0
}

func (p *ruleParser) setStmt(target string, start int) (Expr, error) {
	switch target {
	case "meta nftrace", "ct zone", "ct helper", "meta priority":
		p.next()
		return &NopStmt{Text: p.text(start)}, nil
	case "meta mark", "ct mark":
	default:
		return nil, perr("%s set is not modelled", target)
	}
	// value: constant | selector [op const]* (op: and & or | xor ^)
	var src *Selector
	var konst uint64
	if v, err := parseUint(p.peek()); err == nil {
		konst = v
		p.next()
	} else {
		keys, err := p.selectors()
		if err != nil {
			return nil, err
		}
		if len(keys) != 1 || (keys[0].Field != FieldMark && keys[0].Field != FieldCtMark) {
			return nil, perr("%s set from this expression is not modelled", target)
		}
		src = &keys[0]
	}
	text := p.text(start)
	toCt := target == "ct mark"
	s := Selector{}
	if src != nil {
		s = *src
	}
	return &MarkStmt{Text: text, Apply: func(mark, ct uint32) (uint32, uint32) {
		var v uint64
		if src == nil {
			v = konst
		} else {
			x := mark
			if s.Field == FieldCtMark {
				x = ct
			}
			v = s.apply(uint64(x))
		}
		if toCt {
			return mark, uint32(v)
		}
		return uint32(v), ct
	}}, nil
}

// apply runs the selector's bitwise operations.
func (s Selector) apply(x uint64) uint64 {
	if !s.HasMask {
		return x
	}
	return ((x & s.And) ^ s.Xor) | s.Or
}

// selectors parses "sel [. sel]*" with optional bitwise operations on each.
func (p *ruleParser) selectors() ([]Selector, error) {
	var out []Selector
	for {
		s, err := p.selector()
		if err != nil {
			return nil, err
		}
		if err := p.bitwise(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
		if p.peek() != "." {
			return out, nil
		}
		p.next()
	}
}

func (p *ruleParser) bitwise(s *Selector) error {
	for {
		op := p.peek()
		switch op {
		case "and", "&", "or", "|", "xor", "^":
		default:
			return nil
		}
		p.next()
		arg := p.next()
		if arg == "(" { // tcp flags & (syn | ack)
			var v uint64
			for !p.eof() && p.peek() != ")" {
				t := p.next()
				if t == "|" {
					continue
				}
				x, err := parseLit(Selector{Field: s.Field}, t)
				if err != nil {
					return perr("%v", err)
				}
				v |= x.I
			}
			p.next()
			arg = strconv.FormatUint(v, 10)
		}
		var v uint64
		var err error
		if s.Field == FieldTCPFlags || s.Field == FieldCtState || s.Field == FieldCtStatus {
			var x Val
			x, err = parseLit(Selector{Field: s.Field}, arg)
			v = x.I
		} else {
			v, err = parseUint(arg)
		}
		if err != nil {
			return perr("bad operand %q for %s", arg, op)
		}
		if !s.HasMask {
			s.HasMask, s.And = true, ^uint64(0)
		}
		switch op {
		case "and", "&":
			s.And &= v
			s.Xor &= v
			s.Or &= v
		case "or", "|":
			s.Or |= v
		case "xor", "^":
			s.Xor ^= v
		}
	}
}

func (p *ruleParser) selector() (Selector, error) {
	a := p.next()
	b := p.peek()
	take := func(s Selector) (Selector, error) { p.next(); return s, nil }
	switch a {
	case "ip", "ip6":
		ipv := 4
		if a == "ip6" {
			ipv = 6
		}
		switch b {
		case "saddr":
			return take(Selector{Field: FieldSAddr, IPV: ipv})
		case "daddr":
			return take(Selector{Field: FieldDAddr, IPV: ipv})
		case "protocol", "nexthdr":
			return take(Selector{Field: FieldL4Proto, IPV: ipv})
		}
		return Selector{}, perr("%s %s is not modelled", a, b)
	case "tcp", "udp", "sctp", "udplite", "th":
		proto := uint8(protoNumbers[a])
		switch b {
		case "sport":
			return take(Selector{Field: FieldSPort, Proto: proto})
		case "dport":
			return take(Selector{Field: FieldDPort, Proto: proto})
		case "flags":
			if a == "tcp" {
				return take(Selector{Field: FieldTCPFlags, Proto: 6})
			}
		}
		return Selector{}, perr("%s %s is not modelled", a, b)
	case "meta":
		p.next()
		return metaSelector(b)
	case "mark", "iifname", "oifname", "iif", "oif", "skuid", "skgid", "l4proto", "nfproto", "pkttype":
		return metaSelector(a)
	case "ct":
		switch b {
		case "state":
			return take(Selector{Field: FieldCtState})
		case "status":
			return take(Selector{Field: FieldCtStatus})
		case "mark":
			return take(Selector{Field: FieldCtMark})
		}
		return Selector{}, perr("ct %s is not modelled", b)
	case "fib":
		if (b == "saddr" || b == "daddr") && p.peekAt(1) == "type" {
			p.next()
			p.next()
			if b == "saddr" {
				return Selector{Field: FieldFibSAddrType}, nil
			}
			return Selector{Field: FieldFibDAddrType}, nil
		}
		return Selector{}, perr("fib %s %s is not modelled (only fib saddr|daddr type)", b, p.peekAt(1))
	case "numgen":
		if b != "random" && b != "inc" {
			return Selector{}, perr("numgen %s is not modelled", b)
		}
		p.next()
		if p.next() != "mod" {
			return Selector{}, perr("numgen without mod")
		}
		n, err := parseUint(p.next())
		if err != nil || n == 0 || n > 1<<16 {
			return Selector{}, perr("bad numgen modulus")
		}
		s := Selector{Field: FieldNumgen, Mode: b, Mod: uint32(n)}
		if p.peek() == "offset" {
			p.next()
			o, err := parseUint(p.next())
			if err != nil {
				return Selector{}, perr("bad numgen offset")
			}
			s.Offset = uint32(o)
		}
		return s, nil
	case "":
		return Selector{}, perr("rule ends where an expression was expected")
	}
	return Selector{}, perr("%q is not understood", a)
}

func metaSelector(k string) (Selector, error) {
	switch k {
	case "mark":
		return Selector{Field: FieldMark}, nil
	case "iifname", "iif":
		return Selector{Field: FieldIifName}, nil
	case "oifname", "oif":
		return Selector{Field: FieldOifName}, nil
	case "skuid":
		return Selector{Field: FieldSkUID}, nil
	case "skgid":
		return Selector{Field: FieldSkGID}, nil
	case "l4proto":
		return Selector{Field: FieldL4Proto}, nil
	case "nfproto":
		return Selector{Field: FieldNfProto}, nil
	case "pkttype":
		return Selector{Field: FieldPktType}, nil
	}
	return Selector{}, perr("meta %s is not modelled", k)
}

// tuple reads "v [. v]*" for the keys.
func (p *ruleParser) tuple(keys []Selector) ([]Val, error) {
	out := make([]Val, 0, len(keys))
	for i, k := range keys {
		if i > 0 {
			if p.next() != "." {
				return nil, perr("expected . between concatenated values")
			}
		}
		s := p.next()
		if s == "" {
			return nil, perr("missing value for %s", k.Field)
		}
		if k.Field == FieldNumgen || k.HasMask {
			v, err := parseIntRange(s, nil)
			if err != nil {
				return nil, perr("%v", err)
			}
			out = append(out, v)
			continue
		}
		v, err := parseLit(k, s)
		if err != nil {
			return nil, perr("%v", err)
		}
		out = append(out, v)
	}
	return out, nil
}

// anonElems parses "{ elem, elem, … }"; data types (when non-nil) describe map values.
func (p *ruleParser) anonElems(keys []Selector, data []string) ([]Element, error) {
	if p.next() != "{" {
		return nil, perr("expected {")
	}
	var out []Element
	for {
		for p.peek() == "\n" || p.peek() == "," {
			p.next()
		}
		if p.peek() == "}" {
			p.next()
			return out, nil
		}
		if p.eof() {
			return nil, perr("unterminated {")
		}
		e, err := p.element(keys, data)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
}

func (p *ruleParser) element(keys []Selector, data []string) (Element, error) {
	var e Element
	t, err := p.tuple(keys)
	if err != nil {
		return e, err
	}
	e.Key = t
	for {
		switch p.peek() {
		case "comment":
			p.next()
			e.Comment = p.next()
			continue
		case "timeout", "expires":
			p.next()
			p.next()
			continue
		case "counter":
			p.next()
			for p.peek() == "packets" || p.peek() == "bytes" {
				p.next()
				p.next()
			}
			continue
		}
		break
	}
	if data == nil {
		return e, nil
	}
	if p.next() != ":" {
		return e, perr("map element without ':' value")
	}
	if len(data) == 1 && data[0] == "verdict" {
		v := Verdict{Kind: p.next()}
		switch v.Kind {
		case "jump", "goto":
			v.Chain = p.next()
		case "accept", "drop", "return", "continue":
		case "reject":
		default:
			return e, perr("verdict %q is not understood", v.Kind)
		}
		e.Verdict = &v
		return e, nil
	}
	var dk []Selector
	for _, d := range data {
		s, ok := typeSelector(d)
		if !ok {
			return e, perr("map data type %s is not modelled", d)
		}
		dk = append(dk, s)
	}
	dv, err := p.tuple(dk)
	if err != nil {
		return e, err
	}
	e.Data = dv
	return e, nil
}

// nat parses masquerade/snat/dnat/redirect/tproxy statements.
func (p *ruleParser) nat() (Expr, error) {
	start := p.i
	n := &NATStmt{Kind: p.next()}
	ipv := 0
	if p.peek() == "ip" || p.peek() == "ip6" {
		if p.peek() == "ip6" {
			ipv = 6
		} else {
			ipv = 4
		}
		p.next()
	}
	if n.Kind == "dnat" && p.peek() == "addr" { // dnat ip addr . port to numgen random mod N map { … }
		p.next()
		if p.next() != "." || p.next() != "port" || p.next() != "to" {
			return nil, perr("dnat addr . port form not understood")
		}
		keys, err := p.selectors()
		if err != nil {
			return nil, err
		}
		if p.next() != "map" {
			return nil, perr("dnat addr . port needs a map")
		}
		at := "ipv4_addr"
		if ipv == 6 {
			at = "ipv6_addr"
		}
		els, err := p.anonElems(keys, []string{at, "inet_service"})
		if err != nil {
			return nil, err
		}
		n.MapKeys, n.MapElems = keys, els
		n.Text = p.text(start)
		return n, nil
	}
	if p.peek() == "to" && p.peekAt(1) == "numgen" { // nft list form: dnat ip to numgen random mod N map { 0 : a . p }
		p.next()
		keys, err := p.selectors()
		if err != nil {
			return nil, err
		}
		if p.next() != "map" {
			return nil, perr("%s to numgen needs a map", n.Kind)
		}
		at := "ipv4_addr"
		if ipv == 6 {
			at = "ipv6_addr"
		}
		save := p.i
		els, err := p.anonElems(keys, []string{at, "inet_service"})
		if err != nil {
			p.i = save
			if els, err = p.anonElems(keys, []string{at}); err != nil {
				return nil, err
			}
		}
		n.MapKeys, n.MapElems = keys, els
		n.Text = p.text(start)
		return n, nil
	}
	if p.peek() == "to" {
		p.next()
		target := p.next()
		if target == "numgen" || target == "ip" || target == "ip6" || target == "jhash" || target == "symhash" {
			return nil, perr("%s to a computed address is not modelled", n.Kind)
		}
		addr, port := splitHostPort(target)
		if addr != "" {
			v, err := parseAddrVal(addr)
			if err != nil {
				return nil, perr("%v", err)
			}
			n.Addr, n.AddrHi = v.A, v.B
		}
		if port != "" {
			v, err := parseIntRange(port, nil)
			if err != nil || v.J > 65535 {
				return nil, perr("bad port %q", port)
			}
			n.Port, n.PortHi = uint16(v.I), uint16(v.J)
		}
	}
	for {
		switch p.peek() {
		case "random", "fully-random", "persistent":
			p.next()
			continue
		case ",":
			if p.peekAt(1) == "random" || p.peekAt(1) == "fully-random" || p.peekAt(1) == "persistent" {
				p.next()
				continue
			}
		}
		break
	}
	if (n.Kind == "dnat" || n.Kind == "snat") && !n.Addr.IsValid() {
		return nil, perr("%s without an address", n.Kind)
	}
	n.Text = p.text(start)
	return n, nil
}

// splitHostPort splits "1.2.3.4:80", "[fd00::1]:80", ":15001", "1.2.3.4", "fd00::1".
func splitHostPort(s string) (host, port string) {
	if strings.HasPrefix(s, "[") {
		if i := strings.Index(s, "]"); i > 0 {
			host = s[1:i]
			port = strings.TrimPrefix(s[i+1:], ":")
			return
		}
	}
	if strings.HasPrefix(s, ":") {
		return "", s[1:]
	}
	if strings.Count(s, ":") == 1 {
		h, pt, _ := strings.Cut(s, ":")
		return h, pt
	}
	if _, err := netip.ParseAddr(strings.Split(s, "-")[0]); err == nil || strings.Contains(s, "/") {
		return s, ""
	}
	return s, ""
}
