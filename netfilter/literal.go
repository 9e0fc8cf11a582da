package netfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

var protoNumbers = map[string]uint64{
	"icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "udp": 17, "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58,
	"ipv6-icmp": 58, "sctp": 132, "udplite": 136, "all": 0,
}

var protoNames = map[uint8]string{1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 136: "udplite"}

// ProtoName returns the nft name of a transport protocol number.
func ProtoName(p uint8) string {
	if n, ok := protoNames[p]; ok {
		return n
	}
	return strconv.Itoa(int(p))
}

var serviceNames = map[string]uint64{
	"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "pop3": 110, "ntp": 123,
	"imap": 143, "snmp": 161, "ldap": 389, "https": 443, "microsoft-ds": 445, "imaps": 993, "mysql": 3306,
	"postgresql": 5432, "http-alt": 8080, "webcache": 8080, "bgp": 179, "kerberos": 88, "dns": 53, "vxlan": 4789,
	"geneve": 6081,
}

var ctStateBits = map[string]uint64{"invalid": 1, "established": 2, "related": 4, "new": 8, "untracked": 64}
var ctStatusBits = map[string]uint64{"expected": 1, "seen-reply": 2, "assured": 4, "confirmed": 8, "snat": 16,
	"dnat": 32, "dying": 512}
var tcpFlagBits = map[string]uint64{"fin": 1, "syn": 2, "rst": 4, "psh": 8, "ack": 16, "urg": 32, "ecn": 64, "cwr": 128}

// fib address types (RTN_*).
var fibTypes = map[string]uint64{"unspec": 0, "unicast": 1, "local": 2, "broadcast": 3, "anycast": 4,
	"multicast": 5, "blackhole": 6, "unreachable": 7, "prohibit": 8, "throw": 9, "nat": 10, "xresolve": 11}
var pktTypes = map[string]uint64{"host": 0, "unicast": 0, "broadcast": 1, "multicast": 2, "other": 3}

func isFlagField(f Field) bool {
	return f == FieldCtState || f == FieldCtStatus || f == FieldTCPFlags
}

func parseUint(s string) (uint64, error) {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		return strconv.ParseUint(h, 16, 64)
	}
	return strconv.ParseUint(s, 10, 64)
}

// parseAddrVal reads an address, prefix or range.
func parseAddrVal(s string) (Val, error) {
	s = strings.Trim(s, "[]")
	if lo, hi, ok := strings.Cut(s, "-"); ok {
		a, err1 := netip.ParseAddr(lo)
		b, err2 := netip.ParseAddr(hi)
		if err1 != nil || err2 != nil || a.Is4() != b.Is4() {
			return Val{}, fmt.Errorf("bad address range %q", s)
		}
		return Val{Kind: ValAddr, A: a, B: b}, nil
	}
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			// iptables accepts dotted masks: 10.0.0.0/255.0.0.0
			if a, m, ok := strings.Cut(s, "/"); ok {
				if mk, err2 := netip.ParseAddr(m); err2 == nil && mk.Is4() {
					b := mk.As4()
					bits := 0
					for _, x := range b {
						for x&0x80 != 0 {
							bits++
							x <<= 1
						}
					}
					p, err = netip.ParsePrefix(a + "/" + strconv.Itoa(bits))
				}
			}
			if err != nil {
				return Val{}, fmt.Errorf("bad prefix %q", s)
			}
		}
		p = p.Masked()
		return Val{Kind: ValAddr, A: p.Addr(), B: lastAddr(p)}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return Val{}, fmt.Errorf("bad address %q", s)
	}
	a = a.WithZone("")
	return Val{Kind: ValAddr, A: a, B: a}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}

func parseIntRange(s string, names map[string]uint64) (Val, error) {
	one := func(x string) (uint64, error) {
		if names != nil {
			if v, ok := names[x]; ok {
				return v, nil
			}
		}
		return parseUint(x)
	}
	if lo, hi, ok := strings.Cut(s, "-"); ok && lo != "" {
		a, err1 := one(lo)
		b, err2 := one(hi)
		if err1 != nil || err2 != nil || a > b {
			return Val{}, fmt.Errorf("bad range %q", s)
		}
		return Val{Kind: ValInt, I: a, J: b}, nil
	}
	v, err := one(s)
	if err != nil {
		return Val{}, fmt.Errorf("bad number %q", s)
	}
	return intVal(v), nil
}

// parseLit reads a literal of the type the selector produces.
func parseLit(sel Selector, s string) (Val, error) {
	if sel.HasMask {
		return parseIntRange(s, nil)
	}
	switch sel.Field {
	case FieldSAddr, FieldDAddr:
		v, err := parseAddrVal(s)
		if err == nil && sel.IPV != 0 && (v.A.Is4() != (sel.IPV == 4)) {
			return Val{}, fmt.Errorf("address %q does not fit ip%s", s, map[int]string{4: "", 6: "6"}[sel.IPV])
		}
		return v, err
	case FieldL4Proto:
		return parseIntRange(s, protoNumbers)
	case FieldSPort, FieldDPort:
		return parseIntRange(s, serviceNames)
	case FieldMark, FieldCtMark, FieldNumgen:
		return parseIntRange(s, nil)
	case FieldSkUID, FieldSkGID:
		v, err := parseIntRange(s, map[string]uint64{"root": 0})
		if err != nil && isName(s) {
			// a user/group name: resolving it needs the node's /etc/passwd or /etc/group; the walk reports it
			return Val{Kind: ValStr, S: s}, nil
		}
		return v, err
	case FieldCtState:
		return parseIntRange(s, ctStateBits)
	case FieldCtStatus:
		return parseIntRange(s, ctStatusBits)
	case FieldTCPFlags:
		return parseIntRange(s, tcpFlagBits)
	case FieldFibSAddrType, FieldFibDAddrType:
		return parseIntRange(s, fibTypes)
	case FieldPktType:
		return parseIntRange(s, pktTypes)
	case FieldNfProto:
		return parseIntRange(s, map[string]uint64{"ipv4": 2, "ipv6": 10})
	case FieldIifName, FieldOifName:
		if n, ok := strings.CutSuffix(s, "*"); ok {
			return Val{Kind: ValStr, S: n, Wild: true}, nil
		}
		return Val{Kind: ValStr, S: s}, nil
	}
	return Val{}, fmt.Errorf("no literal syntax for %s", sel.Field)
}

// typeSelector maps an nft set data type name to a selector used for parsing its literals.
func typeSelector(name string) (Selector, bool) {
	switch name {
	case "ipv4_addr":
		return Selector{Field: FieldDAddr, IPV: 4}, true
	case "ipv6_addr":
		return Selector{Field: FieldDAddr, IPV: 6}, true
	case "inet_proto":
		return Selector{Field: FieldL4Proto}, true
	case "inet_service":
		return Selector{Field: FieldDPort}, true
	case "mark":
		return Selector{Field: FieldMark}, true
	case "ifname":
		return Selector{Field: FieldIifName}, true
	case "ct_state":
		return Selector{Field: FieldCtState}, true
	case "uid":
		return Selector{Field: FieldSkUID}, true
	case "gid":
		return Selector{Field: FieldSkGID}, true
	case "nf_proto":
		return Selector{Field: FieldNfProto}, true
	case "integer":
		return Selector{Field: FieldMark}, true
	}
	return Selector{}, false
}

// selectorType is the inverse of typeSelector, for typeof declarations.
func selectorType(s Selector) string {
	switch s.Field {
	case FieldSAddr, FieldDAddr:
		if s.IPV == 6 {
			return "ipv6_addr"
		}
		return "ipv4_addr"
	case FieldL4Proto:
		return "inet_proto"
	case FieldSPort, FieldDPort:
		return "inet_service"
	case FieldMark, FieldCtMark, FieldNumgen:
		return "mark"
	case FieldIifName, FieldOifName:
		return "ifname"
	case FieldCtState:
		return "ct_state"
	case FieldSkUID:
		return "uid"
	case FieldSkGID:
		return "gid"
	case FieldNfProto:
		return "nf_proto"
	}
	return ""
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
