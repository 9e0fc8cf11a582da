package netpol

import "net/netip"

// lastAddr is the last address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// CIDRBoundaries lists the first address of every CIDR and except range the policies name, and the address after
// each: the places where verdicts for external addresses can change.
func (e *Engine) CIDRBoundaries() []netip.Addr {
	var out []netip.Addr
	add := func(p netip.Prefix) {
		out = append(out, p.Masked().Addr())
		if last := lastAddr(p); last.Next().IsValid() {
			out = append(out, last.Next())
		}
	}
	for _, ps := range e.peers {
		for _, c := range ps.cidrs {
			add(c)
		}
		for _, c := range ps.except {
			add(c)
		}
	}
	return out
}
