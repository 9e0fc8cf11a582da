// Package packet is the value type a trace carries from stage to stage: addresses, protocol, marks, optional L7
// attributes and the encapsulation stack.
package packet

import (
	"fmt"
	"net/netip"
	"strings"
)

// Protocol is the L4 protocol.
type Protocol string

const (
	TCP  Protocol = "TCP"
	UDP  Protocol = "UDP"
	SCTP Protocol = "SCTP"
)

// ParseProtocol accepts tcp/udp/sctp in any case.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToUpper(s) {
	case "", "TCP":
		return TCP, nil
	case "UDP":
		return UDP, nil
	case "SCTP":
		return SCTP, nil
	}
	return "", fmt.Errorf("protocol %q: want tcp, udp or sctp", s)
}

// Encap is one layer of encapsulation around the packet (outermost last).
type Encap struct {
	Type string         `json:"type"` // vxlan | geneve | ipip | wireguard | ipsec | hbone
	Src  netip.AddrPort `json:"src"`
	Dst  netip.AddrPort `json:"dst"`
	VNI  int            `json:"vni,omitempty"`
}

// L7 holds the request attributes of an HTTP question.
type L7 struct {
	Scheme string `json:"scheme,omitempty"`
	Host   string `json:"host,omitempty"`
	Method string `json:"method,omitempty"`
	Path   string `json:"path,omitempty"`
}

// Packet is a value: stages return a modified copy, never mutate a shared one.
type Packet struct {
	Proto Protocol       `json:"proto"`
	Src   netip.AddrPort `json:"src"`
	Dst   netip.AddrPort `json:"dst"`
	Mark  uint32         `json:"mark,omitempty"`
	L7    *L7            `json:"l7,omitempty"`
	Encap []Encap        `json:"encap,omitempty"`
}

// String renders the 5-tuple and encapsulation, e.g. "tcp 10.244.1.5:40000 → 10.96.0.10:53 [vxlan 172.18.0.3 → 172.18.0.4 vni 1]".
func (p Packet) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s → %s", strings.ToLower(string(p.Proto)), p.Src, p.Dst)
	if p.Mark != 0 {
		fmt.Fprintf(&b, " mark %#x", p.Mark)
	}
	for i := len(p.Encap) - 1; i >= 0; i-- {
		e := p.Encap[i]
		fmt.Fprintf(&b, " in [%s %s → %s", e.Type, addrPort(e.Src), addrPort(e.Dst))
		if e.VNI != 0 {
			fmt.Fprintf(&b, " vni %d", e.VNI)
		}
		b.WriteString("]")
	}
	return b.String()
}

// WithDst returns a copy with a new destination (DNAT).
func (p Packet) WithDst(d netip.AddrPort) Packet {
	p.Dst = d
	p.Encap = append([]Encap(nil), p.Encap...)
	return p
}

// WithSrc returns a copy with a new source (SNAT / masquerade).
func (p Packet) WithSrc(s netip.AddrPort) Packet {
	p.Src = s
	p.Encap = append([]Encap(nil), p.Encap...)
	return p
}

// Encapsulated returns a copy wrapped in e.
func (p Packet) Encapsulated(e Encap) Packet {
	p.Encap = append(append([]Encap(nil), p.Encap...), e)
	return p
}

// Decapsulated returns a copy with the outermost layer removed.
func (p Packet) Decapsulated() Packet {
	if len(p.Encap) == 0 {
		return p
	}
	p.Encap = append([]Encap(nil), p.Encap[:len(p.Encap)-1]...)
	return p
}

// addrPort prints an address without a zero port (outer headers whose port the kernel picks per flow).
func addrPort(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return a.String()
}
