package netfilter

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"strings"
)

// Field is a packet or connection property a rule reads.
type Field uint8

// Fields a selector can read.
const (
	FieldNone         Field = iota
	FieldSAddr              // ip saddr / ip6 saddr / -s
	FieldDAddr              // ip daddr / ip6 daddr / -d
	FieldL4Proto            // meta l4proto / ip protocol / -p
	FieldSPort              // tcp|udp|sctp|th sport / --sport
	FieldDPort              // tcp|udp|sctp|th dport / --dport
	FieldMark               // meta mark / -m mark
	FieldCtMark             // ct mark / -m connmark
	FieldCtState            // ct state / -m conntrack --ctstate
	FieldCtStatus           // ct status / --ctstatus
	FieldIifName            // iifname / -i
	FieldOifName            // oifname / -o
	FieldSkUID              // meta skuid / -m owner --uid-owner
	FieldSkGID              // meta skgid / --gid-owner
	FieldNfProto            // meta nfproto
	FieldFibSAddrType       // fib saddr type / -m addrtype --src-type
	FieldFibDAddrType       // fib daddr type / --dst-type
	FieldPktType            // meta pkttype
	FieldTCPFlags           // tcp flags
	FieldNumgen             // numgen random|inc mod N
	FieldSocket             // -m owner --socket-exists / socket transparent
)

var fieldNames = [...]string{"none", "saddr", "daddr", "l4proto", "sport", "dport", "mark", "ct mark", "ct state",
	"ct status", "iifname", "oifname", "skuid", "skgid", "nfproto", "fib saddr type", "fib daddr type", "pkttype",
	"tcp flags", "numgen", "socket"}

func (f Field) String() string {
	if int(f) < len(fieldNames) {
		return fieldNames[f]
	}
	return fmt.Sprintf("field(%d)", int(f))
}

// Selector reads one value from the packet, optionally masked.
type Selector struct {
	Field   Field
	IPV     int    // 4 or 6 when the selector is family-specific (ip saddr vs ip6 saddr); 0 otherwise
	Proto   uint8  // transport protocol the selector requires (tcp dport → 6); 0 for th/meta
	Mod     uint32 // numgen modulus
	Offset  uint32 // numgen offset
	Mode    string // numgen mode: random | inc
	HasMask bool
	And     uint64 // value = (x & And) ^ Xor | Or when HasMask
	Xor     uint64
	Or      uint64
}

// ValKind tells how to read a Val.
type ValKind uint8

// Value kinds.
const (
	ValInt ValKind = iota
	ValAddr
	ValStr
)

// Val is one component of a set element or a literal: an inclusive range of integers or addresses, or a string.
type Val struct {
	Kind ValKind
	I, J uint64
	A, B netip.Addr
	S    string
	Wild bool // interface name prefix match ("eth*", iptables "eth+")
}

func intVal(v uint64) Val { return Val{Kind: ValInt, I: v, J: v} }

func (v Val) single() bool {
	switch v.Kind {
	case ValInt:
		return v.I == v.J
	case ValAddr:
		return v.A == v.B
	}
	return !v.Wild
}

func (v Val) String() string {
	switch v.Kind {
	case ValInt:
		if v.I == v.J {
			return fmt.Sprint(v.I)
		}
		return fmt.Sprintf("%d-%d", v.I, v.J)
	case ValAddr:
		if v.A == v.B {
			return v.A.String()
		}
		return v.A.String() + "-" + v.B.String()
	}
	if v.Wild {
		return v.S + "*"
	}
	return v.S
}

// contains reports whether x (same kind) falls in v.
func (v Val) contains(x Val) bool {
	switch v.Kind {
	case ValInt:
		return x.Kind == ValInt && x.I >= v.I && x.I <= v.J
	case ValAddr:
		if x.Kind != ValAddr || !x.A.IsValid() || x.A.Is4() != v.A.Is4() {
			return false
		}
		return x.A.Compare(v.A) >= 0 && x.A.Compare(v.B) <= 0
	}
	if x.Kind != ValStr {
		return false
	}
	if v.Wild {
		return strings.HasPrefix(x.S, v.S)
	}
	return x.S == v.S
}

// Expr is one step of a rule: a *Match, a statement, or an *UnknownExpr.
type Expr interface{ exprText() string }

// Match compares selectors (a concatenation when more than one) against literals, an anonymous set or a named set.
type Match struct {
	Keys    []Selector
	Op      string  // == != < > <= >=
	Elems   [][]Val // anonymous set or single literal; one tuple per element
	SetName string  // named set (@name)
	Set     *Set
	Flags   bool // flag type (ct state, ct status, tcp flags): match when any bit is shared
	Text    string
}

// VMap jumps through a verdict map: `expr vmap @m` or `vmap { k : verdict, … }`.
type VMap struct {
	Keys    []Selector
	Elems   []Element
	SetName string
	Set     *Set
	Text    string
}

// VerdictStmt ends or redirects rule evaluation.
type VerdictStmt struct{ Verdict Verdict }

// MarkStmt changes the packet mark and/or the conntrack mark.
type MarkStmt struct {
	Text  string
	Apply func(mark, ctmark uint32) (uint32, uint32)
}

// NopStmt is a statement with no effect on the walk (counter, log, comment, limit, ct zone, notrack, nftrace, set
// update, nfacct).
type NopStmt struct{ Text string }

// NATStmt rewrites addresses: dnat, snat, masquerade, redirect, tproxy.
type NATStmt struct {
	Kind         string // dnat snat masquerade redirect tproxy
	Addr         netip.Addr
	AddrHi       netip.Addr
	Port, PortHi uint16
	MapKeys      []Selector // dnat … to numgen random mod N map { … }
	MapElems     []Element  // Data = [addr] or [addr, port]
	TProxyMark   *MarkStmt
	Text         string
}

// Fork matches with a probability (iptables -m statistic --mode random).
type Fork struct {
	P    float64
	Text string
}

// UnknownExpr marks where the parser stopped understanding a rule. A walk that reaches it ends `unknown`.
type UnknownExpr struct {
	Reason string
	Text   string
}

func (m *Match) exprText() string       { return m.Text }
func (m *VMap) exprText() string        { return m.Text }
func (v *VerdictStmt) exprText() string { return v.Verdict.String() }
func (m *MarkStmt) exprText() string    { return m.Text }
func (n *NopStmt) exprText() string     { return n.Text }
func (n *NATStmt) exprText() string     { return n.Text }
func (f *Fork) exprText() string        { return f.Text }
func (u *UnknownExpr) exprText() string { return u.Text }

// ---- set indexing ----

// encodeKey appends the canonical bytes of a single-valued tuple.
func encodeVal(b []byte, v Val) []byte {
	switch v.Kind {
	case ValInt:
		return binary.BigEndian.AppendUint64(append(b, 'i'), v.I)
	case ValAddr:
		a := v.A.As16()
		if v.A.Is4() {
			b = append(b, '4')
		} else {
			b = append(b, '6')
		}
		return append(b, a[:]...)
	}
	b = append(b, 's', byte(len(v.S)))
	return append(b, v.S...)
}

func (s *Set) index() {
	s.exact = make(map[string]int, len(s.Elements))
	s.ranged = s.ranged[:0]
	var buf []byte
	for i, e := range s.Elements {
		single := true
		for _, k := range e.Key {
			if !k.single() {
				single = false
				break
			}
		}
		if !single {
			s.ranged = append(s.ranged, i)
			continue
		}
		buf = buf[:0]
		for _, k := range e.Key {
			buf = encodeVal(buf, k)
		}
		if _, dup := s.exact[string(buf)]; !dup {
			s.exact[string(buf)] = i
		}
	}
}

// lookup finds the element containing the tuple, or -1.
func (s *Set) lookup(tuple []Val, buf []byte) int {
	if s.exact == nil {
		s.index()
	}
	buf = buf[:0]
	for _, v := range tuple {
		buf = encodeVal(buf, v)
	}
	if i, ok := s.exact[string(buf)]; ok {
		return i
	}
	for _, i := range s.ranged {
		if tupleIn(s.Elements[i].Key, tuple) {
			return i
		}
	}
	return -1
}

func tupleIn(key, tuple []Val) bool {
	if len(key) != len(tuple) {
		return false
	}
	for i := range key {
		if !key[i].contains(tuple[i]) {
			return false
		}
	}
	return true
}
