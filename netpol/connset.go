package netpol

import (
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Protocols are the transport protocols policy can name, in the order ConnSet prints them.
var Protocols = [...]corev1.Protocol{corev1.ProtocolSCTP, corev1.ProtocolTCP, corev1.ProtocolUDP}

const (
	minPort = 1
	maxPort = 65535
)

func protoIndex(p corev1.Protocol) int {
	switch p {
	case corev1.ProtocolSCTP:
		return 0
	case corev1.ProtocolTCP, "":
		return 1
	case corev1.ProtocolUDP:
		return 2
	}
	return -1
}

// PortRange is an inclusive range of ports.
type PortRange struct{ Lo, Hi int32 }

// ConnSet is a set of (protocol, port) pairs: for each of SCTP, TCP and UDP a sorted list of disjoint, non-adjacent
// inclusive port ranges. The zero value is the empty set. ConnSets are values; operations return new sets.
type ConnSet struct {
	r [3][]PortRange
}

var fullRange = []PortRange{{minPort, maxPort}}

// AllConns is every port of every protocol.
func AllConns() ConnSet { return ConnSet{r: [3][]PortRange{fullRange, fullRange, fullRange}} }

// ProtoConns is every port of one protocol.
func ProtoConns(p corev1.Protocol) ConnSet {
	var c ConnSet
	if i := protoIndex(p); i >= 0 {
		c.r[i] = fullRange
	}
	return c
}

// PortConns is ports lo..hi of one protocol (hi < lo is read as lo).
func PortConns(p corev1.Protocol, lo, hi int32) ConnSet {
	var c ConnSet
	i := protoIndex(p)
	if i < 0 {
		return c
	}
	if hi < lo {
		hi = lo
	}
	if lo < minPort {
		lo = minPort
	}
	if hi > maxPort {
		hi = maxPort
	}
	if lo > hi {
		return c
	}
	c.r[i] = []PortRange{{lo, hi}}
	return c
}

// IsEmpty reports whether no connection is in the set.
func (c ConnSet) IsEmpty() bool { return len(c.r[0]) == 0 && len(c.r[1]) == 0 && len(c.r[2]) == 0 }

// IsAll reports whether every connection is in the set.
func (c ConnSet) IsAll() bool {
	for i := range c.r {
		if len(c.r[i]) != 1 || c.r[i][0] != fullRange[0] {
			return false
		}
	}
	return true
}

// Contains reports whether (p, port) is in the set.
func (c ConnSet) Contains(p corev1.Protocol, port int32) bool {
	i := protoIndex(p)
	if i < 0 {
		return false
	}
	rs := c.r[i]
	k := sort.Search(len(rs), func(j int) bool { return rs[j].Hi >= port })
	return k < len(rs) && rs[k].Lo <= port
}

// Ranges returns the ranges of one protocol (shared; do not modify).
func (c ConnSet) Ranges(p corev1.Protocol) []PortRange {
	if i := protoIndex(p); i >= 0 {
		return c.r[i]
	}
	return nil
}

// Equal reports whether two sets hold the same connections.
func (c ConnSet) Equal(d ConnSet) bool {
	for i := range c.r {
		if len(c.r[i]) != len(d.r[i]) {
			return false
		}
		for j := range c.r[i] {
			if c.r[i][j] != d.r[i][j] {
				return false
			}
		}
	}
	return true
}

// Union returns c ∪ d.
func (c ConnSet) Union(d ConnSet) ConnSet {
	var out ConnSet
	for i := range c.r {
		out.r[i] = unionRanges(c.r[i], d.r[i])
	}
	return out
}

// Intersect returns c ∩ d.
func (c ConnSet) Intersect(d ConnSet) ConnSet {
	var out ConnSet
	for i := range c.r {
		out.r[i] = intersectRanges(c.r[i], d.r[i])
	}
	return out
}

// Subtract returns c \ d.
func (c ConnSet) Subtract(d ConnSet) ConnSet {
	var out ConnSet
	for i := range c.r {
		out.r[i] = subtractRanges(c.r[i], d.r[i])
	}
	return out
}

func unionRanges(a, b []PortRange) []PortRange {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	all := make([]PortRange, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var r PortRange
		if j >= len(b) || (i < len(a) && a[i].Lo <= b[j].Lo) {
			r = a[i]
			i++
		} else {
			r = b[j]
			j++
		}
		if n := len(all); n > 0 && r.Lo <= all[n-1].Hi+1 {
			if r.Hi > all[n-1].Hi {
				all[n-1].Hi = r.Hi
			}
			continue
		}
		all = append(all, r)
	}
	return all
}

func intersectRanges(a, b []PortRange) []PortRange {
	if len(a) == 0 || len(b) == 0 {
		return nil
	}
	var out []PortRange
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		lo := max(a[i].Lo, b[j].Lo)
		hi := min(a[i].Hi, b[j].Hi)
		if lo <= hi {
			out = append(out, PortRange{lo, hi})
		}
		if a[i].Hi < b[j].Hi {
			i++
		} else {
			j++
		}
	}
	return out
}

func subtractRanges(a, b []PortRange) []PortRange {
	if len(a) == 0 || len(b) == 0 {
		return a
	}
	var out []PortRange
	j := 0
	for _, r := range a {
		lo := r.Lo
		for j < len(b) && b[j].Hi < lo {
			j++
		}
		k := j
		for k < len(b) && b[k].Lo <= r.Hi {
			if b[k].Lo > lo {
				out = append(out, PortRange{lo, b[k].Lo - 1})
			}
			if b[k].Hi+1 > lo {
				lo = b[k].Hi + 1
			}
			k++
		}
		if lo <= r.Hi {
			out = append(out, PortRange{lo, r.Hi})
		}
	}
	return out
}

// String renders the set as netpol-analyzer does: "All Connections", "No Connections", or protocols in
// alphabetical order with their ports, e.g. "TCP 80,8081-8082,UDP 53" — a protocol with every port prints as
// "TCP 1-65535".
func (c ConnSet) String() string {
	if c.IsAll() {
		return "All Connections"
	}
	if c.IsEmpty() {
		return "No Connections"
	}
	var parts []string
	for i, p := range Protocols {
		if len(c.r[i]) == 0 {
			continue
		}
		var rs []string
		for _, r := range c.r[i] {
			if r.Lo == r.Hi {
				rs = append(rs, strconv.Itoa(int(r.Lo)))
			} else {
				rs = append(rs, strconv.Itoa(int(r.Lo))+"-"+strconv.Itoa(int(r.Hi)))
			}
		}
		parts = append(parts, string(p)+" "+strings.Join(rs, ","))
	}
	return strings.Join(parts, ",")
}

// ParseConnSet reads the String form back ("All Connections", "TCP 80,UDP 53", "TCP 1-65535"). Unknown
// tokens are an error.
func ParseConnSet(s string) (ConnSet, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "All Connections":
		return AllConns(), nil
	case "No Connections", "":
		return ConnSet{}, nil
	}
	var out ConnSet
	cur := -1
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if sp := strings.IndexByte(tok, ' '); sp > 0 {
			cur = protoIndex(corev1.Protocol(tok[:sp]))
			if cur < 0 || (tok[:sp] != "TCP" && tok[:sp] != "UDP" && tok[:sp] != "SCTP") {
				return ConnSet{}, &parseError{s, tok}
			}
			tok = tok[sp+1:]
		}
		if cur < 0 {
			return ConnSet{}, &parseError{s, tok}
		}
		lo, hi, ok := strings.Cut(tok, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return ConnSet{}, &parseError{s, tok}
		}
		b := a
		if ok {
			if b, err = strconv.Atoi(hi); err != nil {
				return ConnSet{}, &parseError{s, tok}
			}
		}
		out.r[cur] = unionRanges(out.r[cur], []PortRange{{int32(a), int32(b)}})
	}
	return out, nil
}

type parseError struct{ s, tok string }

func (e *parseError) Error() string {
	return "connection set " + strconv.Quote(e.s) + ": cannot read " + strconv.Quote(e.tok) +
		` (want "All Connections" or "PROTO port[-port],..." with TCP, UDP or SCTP)`
}
