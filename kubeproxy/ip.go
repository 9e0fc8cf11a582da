package kubeproxy

import (
	"net/netip"
	"strconv"
	"strings"
)

// parseIPSloppy parses an IP the way kube-proxy's netutils.ParseIPSloppy does: IPv4 octets may
// carry leading zeros, which are read as decimal ("172.30.0.041" is 172.30.0.41).
func parseIPSloppy(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Addr{}, false
		}
		return a.Unmap(), true
	}
	if strings.Contains(s, ":") {
		return netip.Addr{}, false
	}
	parts := strings.Split(s, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	var b [4]byte
	for i, p := range parts {
		if p == "" || len(p) > 3 {
			return netip.Addr{}, false
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 255 {
			return netip.Addr{}, false
		}
		b[i] = byte(n)
	}
	return netip.AddrFrom4(b), true
}

// parsePrefixSloppy parses a CIDR like netutils.ParseCIDRSloppy and returns the masked network.
func parsePrefixSloppy(s string) (netip.Prefix, bool) {
	s = strings.TrimSpace(s)
	addr, bits, ok := strings.Cut(s, "/")
	if !ok {
		return netip.Prefix{}, false
	}
	a, ok := parseIPSloppy(addr)
	if !ok {
		return netip.Prefix{}, false
	}
	n, err := strconv.Atoi(bits)
	if err != nil || n < 0 || n > a.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, n).Masked(), true
}

// hostPort formats an endpoint like Go's net.JoinHostPort (kube-proxy's Endpoint.String()).
func hostPort(a netip.Addr, port int) string {
	if a.Is6() {
		return "[" + a.String() + "]:" + strconv.Itoa(port)
	}
	return a.String() + ":" + strconv.Itoa(port)
}
