package netfilter

import (
	"fmt"
	"net/netip"
	"strings"
)

// Transport protocol numbers.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoICMPv6 uint8 = 58
	ProtoSCTP   uint8 = 132
)

// Path says where the packet enters the node's hooks.
type Path string

// Paths.
const (
	// PathAuto: a source address the node owns means locally generated; anything else arrives from Iif and the
	// routing decision (local addresses) picks input or forward.
	PathAuto Path = ""
	// PathLocal: locally generated (output → postrouting).
	PathLocal Path = "local"
	// PathInput: arrives and is routed to the node itself (prerouting → input), whatever the addresses say.
	PathInput Path = "input"
	// PathForward: arrives and is routed through the node (prerouting → forward → postrouting).
	PathForward Path = "forward"
)

// Owner is the socket owner of a locally generated packet (meta skuid / -m owner).
type Owner struct{ UID, GID uint32 }

// Packet is what the walk needs to know about the packet and its connection.
type Packet struct {
	Proto    uint8
	Src, Dst netip.AddrPort
	Iif, Oif string // Oif: leave empty to let Node.Routes decide
	Mark     uint32
	CtMark   uint32
	CtState  string // new (default) | established | related | invalid | untracked
	Path     Path
	Owner    *Owner // socket owner (locally generated packets)
	TCPFlags uint8  // default: SYN for a new TCP connection
	// Recent lists the iptables -m recent lists (session affinity) the source is already in.
	Recent []string
}

// IPv returns 4 or 6.
func (p Packet) IPv() int {
	if p.Dst.Addr().Is4() || p.Dst.Addr().Is4In6() {
		return 4
	}
	return 6
}

func (p Packet) String() string {
	s := fmt.Sprintf("%s %s -> %s", ProtoName(p.Proto), p.Src, p.Dst)
	if p.Iif != "" {
		s += " iif " + p.Iif
	}
	if p.Oif != "" {
		s += " oif " + p.Oif
	}
	if p.Mark != 0 {
		s += fmt.Sprintf(" mark 0x%x", p.Mark)
	}
	if p.CtState != "" && p.CtState != "new" {
		s += " ct " + p.CtState
	}
	return s
}

// ParsePacket reads "tcp 10.244.1.2:40000 -> 10.96.0.10:80 [iif cni0] [oif eth0] [mark 0x4000] [ct established]
// [uid 1000] [gid 1000] [local|input|forward]".
func ParsePacket(s string) (Packet, error) {
	f := strings.Fields(strings.ReplaceAll(s, "->", " -> "))
	var p Packet
	if len(f) < 4 || f[2] != "->" {
		return p, fmt.Errorf("packet %q: want \"<proto> <src>:<port> -> <dst>:<port> [iif X] [oif Y] [mark M] [ct STATE] [uid U] [gid G] [local|input|forward]\"", s)
	}
	pr, ok := protoNumbers[strings.ToLower(f[0])]
	if !ok {
		n, err := parseUint(f[0])
		if err != nil || n > 255 {
			return p, fmt.Errorf("packet %q: unknown protocol %q (tcp, udp, sctp, icmp or a number)", s, f[0])
		}
		pr = n
	}
	p.Proto = uint8(pr)
	var err error
	if p.Src, err = parseAddrPort(f[1]); err != nil {
		return p, fmt.Errorf("packet %q: source: %w", s, err)
	}
	if p.Dst, err = parseAddrPort(f[3]); err != nil {
		return p, fmt.Errorf("packet %q: destination: %w", s, err)
	}
	if p.Src.Addr().Is4() != p.Dst.Addr().Is4() {
		return p, fmt.Errorf("packet %q: source and destination are different IP versions", s)
	}
	for i := 4; i < len(f); i++ {
		key := f[i]
		switch key {
		case "local", "input", "forward":
			p.Path = Path(key)
			continue
		}
		if i+1 >= len(f) {
			return p, fmt.Errorf("packet %q: %q needs a value", s, key)
		}
		val := f[i+1]
		i++
		switch key {
		case "iif":
			p.Iif = val
		case "oif":
			p.Oif = val
		case "mark":
			v, err := parseUint(val)
			if err != nil {
				return p, fmt.Errorf("packet %q: bad mark %q", s, val)
			}
			p.Mark = uint32(v)
		case "ct":
			if _, ok := ctStateBits[val]; !ok {
				return p, fmt.Errorf("packet %q: ct state %q (new, established, related, invalid, untracked)", s, val)
			}
			p.CtState = val
		case "uid", "gid":
			v, err := parseUint(val)
			if err != nil {
				return p, fmt.Errorf("packet %q: bad %s %q", s, key, val)
			}
			if p.Owner == nil {
				p.Owner = &Owner{}
			}
			if key == "uid" {
				p.Owner.UID = uint32(v)
			} else {
				p.Owner.GID = uint32(v)
			}
		case "path":
			p.Path = Path(val)
		default:
			return p, fmt.Errorf("packet %q: unknown field %q", s, key)
		}
	}
	return p, nil
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not addr:port", s)
	}
	return netip.AddrPortFrom(a, 0), nil
}

// Route sends destinations in Dst out of Oif.
type Route struct {
	Dst netip.Prefix
	Oif string
}

// Node is what the walk needs to know about the machine: its addresses and routes (the routing decision is an input).
type Node struct {
	// LocalAddrs are the node's own addresses (fib/addrtype "local", and the input-vs-forward decision). Loopback
	// addresses are always local.
	LocalAddrs []netip.Addr
	// Routes pick the output interface (longest prefix wins). Optional: needed only when rules match oifname.
	Routes []Route
	// IfAddrs gives the primary address of interfaces (masquerade source, redirect destination). Optional.
	IfAddrs map[string]netip.Addr
	// IPSets gives the contents of ipsets used by iptables -m set. Optional.
	IPSets map[string][]netip.Prefix
}

func (n *Node) isLocal(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	if n == nil {
		return false
	}
	for _, l := range n.LocalAddrs {
		if l == a {
			return true
		}
	}
	return false
}

func (n *Node) route(a netip.Addr) string {
	if n.isLocal(a) {
		return "lo"
	}
	if n == nil {
		return ""
	}
	best, oif := -1, ""
	for _, r := range n.Routes {
		if r.Dst.Contains(a) && r.Dst.Bits() > best {
			best, oif = r.Dst.Bits(), r.Oif
		}
	}
	return oif
}
