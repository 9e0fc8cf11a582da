package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

// assemble turns the kernel's trace of the first request packet into hops, in the order the packet met them.
// sport and dst identify the connection on the wire (the client proxy's own with a meshed source); appSport and
// appDst are the application's.
func (x *performer) assemble(events map[string][]TraceEvent, sport int, dst netip.AddrPort, out outcome, appSport int, appDst netip.AddrPort) {
	p := x.st.Plan
	proto := strings.ToLower(string(x.opt.Protocol))
	// 1. The first request packet: from the client's address and port to the address it dialled.
	var firstNS string
	ipid, bestSeq := -1, 0
	// The source's own node first: the packet is seen with the same header in every node it crosses, and the
	// first node it entered is the source pod's (plan order would pick whichever node is listed first).
	nodes := append([]NodePlan(nil), p.Nodes...)
	sort.SliceStable(nodes, func(i, j int) bool { return nodes[i].Name == x.srcLoc.Node && nodes[j].Name != x.srcLoc.Node })
	for _, n := range nodes {
		for _, e := range events[n.NS] {
			h := e.Hdr
			if e.Kind == "packet" && h.Proto == proto && h.Src == x.srcIP.String() && h.SPort == sport && h.Dst == dst.Addr().String() && int(h.DPort) == int(dst.Port()) &&
				(proto != "tcp" || h.SYN) {
				if ipid < 0 || (n.NS == firstNS && e.Seq < bestSeq) {
					ipid, firstNS, bestSeq = h.IPID, n.NS, e.Seq
				}
				break
			}
		}
		if ipid >= 0 && firstNS == n.NS {
			break
		}
	}
	// Ports the request may carry after DNAT: what conntrack says the reply comes from.
	dports := map[int]bool{int(dst.Port()): true}
	var dnatTo string
	for _, l := range x.res.Evidence {
		if rs := replySource(l); rs.IsValid() {
			dports[int(rs.Port())] = true
			if rs.Addr() != dst.Addr() || rs.Port() != dst.Port() {
				dnatTo = rs.String()
			}
		}
	}
	type nodeObs struct {
		plan   *NodePlan
		events []TraceEvent
	}
	var seen []nodeObs
	if ipid >= 0 {
		order := []string{firstNS}
		for _, n := range p.Nodes {
			if n.NS != firstNS {
				order = append(order, n.NS)
			}
		}
		for _, ns := range order {
			var mine []TraceEvent
			for _, e := range events[ns] {
				h := e.Hdr
				if h.IPID == ipid && h.Proto == proto && dports[h.DPort] && h.Dst != x.srcIP.String() {
					mine = append(mine, e)
				}
			}
			if len(mine) > 0 {
				seen = append(seen, nodeObs{p.NodeByNS(ns), mine})
			}
		}
	}
	if dnatTo == "" && len(seen) > 0 {
		// No conntrack entry (a packet dropped before POSTROUTING is never confirmed): read the DNAT from the
		// destination the packet carried after kube-proxy's rules in the first node.
		for _, e := range seen[0].events {
			if h := e.Hdr; h.Dst != "" && (h.Dst != dst.Addr().String() || h.DPort != int(dst.Port())) {
				if a, err := netip.ParseAddr(h.Dst); err == nil {
					dnatTo = netip.AddrPortFrom(a, uint16(h.DPort)).String()
				}
			}
		}
	}
	var rejectRule, dropRule, policyDrop string
	x.meshSource(events, appSport, appDst)
	for i, no := range seen {
		n := no.plan
		if i > 0 {
			prev := seen[i-1].plan
			x.enter(trace.Location{Kind: trace.OnUnderlay, Name: "underlay " + prev.IP.String() + " → " + n.IP.String()})
			x.step(trace.Step{Layer: trace.LayerRoute, Action: trace.ActionForward, Object: "bridge ul0 in " + p.UnderlayNS,
				Why: fmt.Sprintf("the packet left %s and was next seen by the kernel trace in %s", prev.Name, n.Name)})
		}
		x.enter(trace.Location{Kind: trace.OnNode, Name: n.Name, IP: n.IP.String()})
		first := no.events[0].Hdr
		if first.IIF == p.Overlay.Device && p.Overlay.Device != "" {
			x.step(trace.Step{Layer: trace.LayerOverlay, Action: trace.ActionDecapsulate, Object: p.Overlay.Device + " on " + n.Name,
				Why: "nft trace: the inner packet entered " + n.NS + " on iif " + first.IIF})
		} else if first.IIF != "" {
			x.step(trace.Step{Layer: trace.LayerLink, Action: trace.ActionForward, Object: first.IIF,
				Why: "nft trace: the packet entered " + n.NS + " on iif " + first.IIF})
		}
		kp := kubeProxyStep(no.events, p.Mode)
		if kp.Action == trace.ActionDNAT && dnatTo != "" {
			kp.Rule += " ⇒ " + dnatTo
		}
		if kp.Action == trace.ActionReject {
			rejectRule = kp.Rule
		}
		if kp.Action == trace.ActionDrop {
			dropRule = kp.Rule
		}
		x.step(kp)
		var oif string
		masq := false
		for _, e := range no.events {
			if e.Hdr.OIF != "" {
				oif = e.Hdr.OIF
			}
			if e.Kind == "rule" && strings.Contains(e.Rule, "masquerade") {
				masq = true
			}
		}
		if pol := policyStep(no.events, "egress"); pol != nil {
			x.step(*pol)
			if pol.Action == trace.ActionDrop {
				policyDrop = pol.Why
			}
		}
		if masq {
			x.step(trace.Step{Layer: trace.LayerNAT, Action: trace.ActionMasquerade, Object: "Node " + n.Name,
				Why: "nft trace: a masquerade rule matched in POSTROUTING"})
		}
		if oif != "" {
			x.step(trace.Step{Layer: trace.LayerRoute, Action: trace.ActionRoute, Object: "Node " + n.Name, Rule: "oif " + oif,
				Why: "nft trace: the kernel routed the packet out of " + oif})
			if oif == p.Overlay.Device && p.Overlay.Device != "" {
				x.step(trace.Step{Layer: trace.LayerOverlay, Action: trace.ActionEncapsulate, Object: oif + " on " + n.Name,
					Why: "the packet left through the VXLAN device"})
			}
		}
	}
	// Destination pods whose namespaces enforce ingress policy.
	if ipid >= 0 {
		for _, pp := range p.Pods {
			evs := events[pp.NS]
			var mine []TraceEvent
			for _, e := range evs {
				// Only packets arriving in the pod (the source pod's own output hook is traced too).
				if e.Hdr.IPID == ipid && e.Hdr.Proto == proto && dports[e.Hdr.DPort] && e.Hdr.IIF != "" {
					mine = append(mine, e)
				}
			}
			if len(mine) == 0 {
				continue
			}
			x.enter(trace.Location{Kind: trace.InPod, Name: pp.Ref(), Node: pp.Node, IP: pp.IP.String()})
			if pol := policyStep(mine, "ingress"); pol != nil {
				x.step(*pol)
				if pol.Action == trace.ActionDrop {
					policyDrop = pol.Why
				}
			}
		}
	}
	meshObj, meshWhy := x.meshDest(events, ipid, proto, dports)
	if meshWhy == "" && x.mo.out != nil && x.mo.out.Outcome == "rejected" {
		meshObj, meshWhy = x.mo.out.Object, "the client proxy failed the connection: "+x.mo.out.Reason
	}
	for _, l := range x.res.Evidence {
		x.obs.Notes = append(x.obs.Notes, "conntrack "+l)
	}
	if meshWhy != "" && out.backend == "" {
		x.obs.Blockers = append(x.obs.Blockers, trace.Blocker{Layer: trace.LayerMesh, Object: meshObj, Reason: meshWhy})
		if x.mo.in != nil {
			x.obs.Backend = x.backendByAddr(x.mo.in.OrigDst)
		}
		x.finish(trace.Rejected, meshWhy)
		return
	}
	switch {
	case out.err == nil && out.backend != "":
		ep := x.backendEndpoint(out.backend, dnatTo, dst)
		x.obs.Backend = ep
		if strings.HasPrefix(out.backend, "node/") {
			x.step(trace.Step{Layer: trace.LayerApp, Action: trace.ActionDeliver, Object: "echo server on " + out.backend,
				Why: "the echo server in the node namespace answered"})
		} else {
			pp := p.Pod(out.backend)
			loc := trace.Location{Kind: trace.InPod, Name: out.backend}
			if pp != nil {
				loc.Node, loc.IP = pp.Node, pp.IP.String()
			}
			x.enter(loc)
			x.step(trace.Step{Layer: trace.LayerApp, Action: trace.ActionDeliver, Object: "Pod " + out.backend,
				Rule: fmt.Sprintf("echo server port %d/%s", ep.Port, x.opt.Protocol), Why: "the lab's echo server in the pod answered with its name"})
		}
		x.finish(trace.Delivered, "delivered to "+out.backend+" (it answered)")
	}
	if x.obs.Verdict != "" {
		return
	}
	if dnatTo != "" && x.obs.Backend == nil {
		// Not answered, but conntrack shows where kube-proxy sent it: the backend the journey aimed at.
		x.obs.Backend = x.backendByAddr(dnatTo)
	}
	if x.obs.Backend == nil && x.mo.out != nil && x.mo.out.Target != "" {
		// The client proxy chose the endpoint itself (its log says which).
		x.obs.Backend = x.backendByAddr(x.mo.out.Target)
	}
	switch {
	case out.err != nil && isRefused(out.err):
		obj, layer := "kernel", trace.LayerApp
		why := "the connection was refused: " + out.err.Error()
		if rejectRule != "" {
			obj, layer = "kube-proxy", trace.LayerKubeProxy
			why += " (nft trace: " + rejectRule + ")"
		}
		x.obs.Blockers = append(x.obs.Blockers, trace.Blocker{Layer: layer, Object: obj, Reason: why})
		x.finish(trace.Rejected, why)
	case out.err != nil:
		where := "somewhere the kernel trace does not see"
		if len(x.obs.Hops) > 0 {
			where = x.obs.Hops[len(x.obs.Hops)-1].Location.String()
		}
		why := fmt.Sprintf("no answer within %s (%v); last seen at %s", x.opt.Timeout, out.err, where)
		layer := trace.LayerRoute
		if policyDrop != "" {
			why += " (" + policyDrop + ")"
			layer = trace.LayerPolicy
		} else if dropRule != "" {
			why += " (nft trace: " + dropRule + ")"
			layer = trace.LayerKubeProxy
		}
		x.obs.Blockers = append(x.obs.Blockers, trace.Blocker{Layer: layer, Object: where, Reason: why})
		x.finish(trace.Dropped, why)
	default:
		x.finish(trace.Unknown, "connected, but the server did not say who it is")
	}
}

func (x *performer) backendEndpoint(who, dnatTo string, dst netip.AddrPort) *trace.Endpoint {
	ep := &trace.Endpoint{Port: int(dst.Port()), IP: dst.Addr().String()}
	if ap, err := netip.ParseAddrPort(dnatTo); err == nil {
		ep.IP, ep.Port = ap.Addr().String(), int(ap.Port())
	}
	if strings.HasPrefix(who, "node/") {
		ep.Node = strings.TrimPrefix(who, "node/")
		return ep
	}
	ep.Pod = who
	if pp := x.st.Plan.Pod(who); pp != nil {
		ep.Node, ep.IP = pp.Node, pp.IP.String()
	}
	return ep
}

// replySource reads the reply tuple's source (the real server after DNAT) from a conntrack -L line.
func replySource(line string) netip.AddrPort {
	f := strings.Fields(line)
	var srcs, sports []string
	for _, w := range f {
		if v, ok := strings.CutPrefix(w, "src="); ok {
			srcs = append(srcs, v)
		}
		if v, ok := strings.CutPrefix(w, "sport="); ok {
			sports = append(sports, v)
		}
	}
	if len(srcs) < 2 || len(sports) < 2 {
		return netip.AddrPort{}
	}
	a, err := netip.ParseAddr(srcs[1])
	p, err2 := strconv.Atoi(sports[1])
	if err != nil || err2 != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(a, uint16(p))
}

// kubeProxyStep summarises what kube-proxy's rules did to the packet in one node, from the kernel trace.
func kubeProxyStep(evs []TraceEvent, mode interface{}) trace.Step {
	var chains []string
	seen := map[string]bool{}
	add := func(table, c string) { // every chain once (per table), in the order the packet first entered it
		if !seen[table+" "+c] {
			seen[table+" "+c] = true
			chains = append(chains, c)
		}
	}
	action := trace.ActionNone
	obj := ""
	var decisive string
	for _, e := range evs {
		if strings.HasSuffix(e.Table, " "+traceTable) || isPolicyTable(e.Table) {
			continue
		}
		add(e.Table, chainLabel(e))
		if e.Kind != "rule" {
			continue
		}
		if v := e.Verdict; strings.HasPrefix(v, "jump ") || strings.HasPrefix(v, "goto ") {
			add(e.Table, strings.Fields(v)[1])
		}
		if s := serviceOf(e); s != "" && obj == "" {
			obj = s
		}
		switch {
		case strings.Contains(e.Rule, "dnat"):
			action, decisive = trace.ActionDNAT, e.Rule
		case strings.Contains(e.Rule, "reject"):
			action, decisive = trace.ActionReject, e.Rule
		case e.Verdict == "drop" && action != trace.ActionReject:
			action, decisive = trace.ActionDrop, e.Rule
		}
	}
	if obj == "" {
		obj = "kube-proxy"
	}
	why := "nft monitor trace: no kube-proxy rule changed the packet"
	if decisive != "" {
		why = "nft monitor trace: " + decisive
	}
	return trace.Step{Layer: trace.LayerKubeProxy, Action: action, Object: obj, Rule: strings.Join(chains, " → "), Why: why}
}

func isPolicyTable(t string) bool { return strings.HasSuffix(t, " "+policyTable) }

// chainLabel names a chain as the model does: bare names for kube-proxy's nftables table, table/CHAIN for the
// iptables base chains (nat/PREROUTING) and bare KUBE-* chains.
func chainLabel(e TraceEvent) string {
	if strings.HasSuffix(e.Table, " kube-proxy") || strings.HasPrefix(e.Chain, "KUBE-") {
		return e.Chain
	}
	f := strings.Fields(e.Table)
	return f[len(f)-1] + "/" + e.Chain
}

// serviceOf reads the Service a kube-proxy rule belongs to: the nftables chain name (service-HASH-ns/name/proto/port)
// or the iptables rule comment ("ns/name:port …").
func serviceOf(e TraceEvent) string {
	for _, c := range []string{e.Chain, e.Verdict} {
		for _, pre := range []string{"service-", "external-", "local-"} {
			if i := strings.Index(c, pre); i >= 0 {
				rest := c[i+len(pre):]
				if j := strings.IndexByte(rest, '-'); j >= 0 {
					parts := strings.Split(rest[j+1:], "/")
					if len(parts) == 4 {
						return "Service " + parts[0] + "/" + parts[1] + ":" + parts[3]
					}
				}
			}
		}
	}
	if i := strings.Index(e.Rule, `comment "`); i >= 0 {
		c := e.Rule[i+len(`comment "`):]
		if j := strings.IndexByte(c, '"'); j >= 0 {
			c = strings.Fields(c[:j])[0]
			if strings.Count(c, "/") == 1 && strings.Contains(c, ":") {
				return "Service " + c
			}
		}
	}
	return ""
}

func dnsLogSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readDNSLog reads the entries appended after offset, in the order the server received them.
func readDNSLog(path string, offset int64) []DNSLogEntry {
	if offset < 0 {
		offset = 0
	}
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return nil
	}
	b = b[offset:]
	if i := strings.IndexByte(string(b), '{'); i > 0 {
		b = b[i:]
	}
	var out []DNSLogEntry
	for _, l := range strings.Split(string(b), "\n") {
		var e DNSLogEntry
		if json.Unmarshal([]byte(l), &e) == nil && e.Name != "" {
			out = append(out, e)
		}
	}
	return out
}

var _ = packet.TCP

// policyStep reads the lab's policy table in a trace: the allow rule or the drop rule that matched.
func policyStep(evs []TraceEvent, dir string) *trace.Step {
	for _, e := range evs {
		if !isPolicyTable(e.Table) || e.Kind != "rule" {
			continue
		}
		switch {
		case e.Verdict == "drop":
			return &trace.Step{Layer: trace.LayerPolicy, Action: trace.ActionDrop, Object: "NetworkPolicy (" + dir + ")", Rule: e.Rule,
				Why: "nft trace in " + e.NS + ": the lab's " + dir + " policy rule dropped the packet (no policy allows it)"}
		case e.Verdict == "accept" && strings.Contains(e.Rule, "@allow"):
			return &trace.Step{Layer: trace.LayerPolicy, Action: trace.ActionAllow, Object: "NetworkPolicy (" + dir + ")", Rule: e.Rule,
				Why: "nft trace in " + e.NS + ": allowed by the lab's " + dir + " policy set"}
		}
	}
	return nil
}

func (x *performer) backendByAddr(ap string) *trace.Endpoint {
	a, err := netip.ParseAddrPort(ap)
	if err != nil {
		return nil
	}
	ep := &trace.Endpoint{IP: a.Addr().String(), Port: int(a.Port())}
	for _, pp := range x.st.Plan.Pods {
		if pp.IP == a.Addr() {
			ep.Pod, ep.Node = pp.Ref(), pp.Node
		}
	}
	return ep
}
