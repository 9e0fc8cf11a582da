package capture

import (
	"fmt"
	"net/netip"
	"strings"
)

// CaptureVerdict is where an interception chain sends a new connection.
type CaptureVerdict struct {
	Redirected bool   // true: REDIRECTed to the proxy on Port
	Port       int    // the port the connection ends up on (proxy port or the original port)
	Rule       string // the deciding rule's comment or description
	Why        string
}

// LinkerdInbound walks PROXY_INIT_REDIRECT (nat PREROUTING) for a new TCP connection from src to dport.
func LinkerdInbound(c LinkerdConfig, src netip.Addr, dport int) CaptureVerdict {
	groups, _ := LinkerdMultiportDestinations(c.InboundPortsToIgnore)
	for _, g := range groups {
		if portInMultiport(g, dport) {
			d := strings.Join(g, ",")
			return CaptureVerdict{Port: dport, Rule: "proxy-init/ignore-port-" + d, Why: fmt.Sprintf("port %d is in --inbound-ports-to-ignore", dport)}
		}
	}
	for _, s := range c.SubnetsToIgnore {
		if p, err := netip.ParsePrefix(s); err == nil && src.IsValid() && p.Contains(src) {
			return CaptureVerdict{Port: dport, Rule: "proxy-init/ignore-subnet-" + s, Why: fmt.Sprintf("source %s is in --subnets-to-ignore %s", src, s)}
		}
	}
	switch c.Mode {
	case LinkerdRedirectAllMode:
		return CaptureVerdict{Redirected: true, Port: c.ProxyInboundPort, Rule: "proxy-init/redirect-all-incoming-to-proxy-port", Why: "all inbound TCP goes to the proxy"}
	case LinkerdRedirectListedMode:
		for _, p := range c.PortsToRedirectInbound {
			if p == dport {
				return CaptureVerdict{Redirected: true, Port: c.ProxyInboundPort, Rule: fmt.Sprintf("proxy-init/redirect-port-%d-to-proxy-port", p), Why: "port is in --ports-to-redirect"}
			}
		}
		return CaptureVerdict{Port: dport, Rule: "end of PROXY_INIT_REDIRECT", Why: "port is not in --ports-to-redirect"}
	}
	return CaptureVerdict{Port: dport, Rule: "end of PROXY_INIT_REDIRECT", Why: "no redirect mode configured"}
}

// LinkerdOutbound walks PROXY_INIT_OUTPUT (nat OUTPUT) for a new TCP connection from a process with uid/gid.
func LinkerdOutbound(c LinkerdConfig, uid, gid int, oif string, dport int) CaptureVerdict {
	if c.ProxyUID > 0 && uid == c.ProxyUID {
		return CaptureVerdict{Port: dport, Rule: "proxy-init/ignore-proxy-user-id", Why: "the proxy's own traffic is not redirected (no loop)"}
	}
	if c.ProxyGID > 0 && gid == c.ProxyGID {
		return CaptureVerdict{Port: dport, Rule: "proxy-init/ignore-proxy-group-id", Why: "the proxy's own traffic is not redirected (no loop)"}
	}
	if oif == "lo" {
		return CaptureVerdict{Port: dport, Rule: "proxy-init/ignore-loopback", Why: "loopback traffic stays in the pod"}
	}
	groups, _ := LinkerdMultiportDestinations(c.OutboundPortsToIgnore)
	for _, g := range groups {
		if portInMultiport(g, dport) {
			return CaptureVerdict{Port: dport, Rule: "proxy-init/ignore-port-" + strings.Join(g, ","), Why: fmt.Sprintf("port %d is in --outbound-ports-to-ignore", dport)}
		}
	}
	return CaptureVerdict{Redirected: true, Port: c.ProxyOutgoingPort, Rule: "proxy-init/redirect-all-outgoing-to-proxy-port", Why: "all other outbound TCP goes to the proxy"}
}

func portInMultiport(group []string, port int) bool {
	for _, e := range group {
		lo, hi, isRange := strings.Cut(e, ":")
		r, err := ParseLinkerdPortRange(lo)
		if err != nil {
			continue
		}
		if !isRange {
			if r.Lower == port {
				return true
			}
			continue
		}
		h, err := ParseLinkerdPortRange(hi)
		if err == nil && port >= r.Lower && port <= h.Lower {
			return true
		}
	}
	return false
}
