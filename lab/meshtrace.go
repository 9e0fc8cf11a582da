package lab

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/trace"
)

// What `lab trace` observes of a mesh: the interception rules the packet met in each pod (nft monitor trace in
// the pod's namespace: the REDIRECT to the proxy port, the uid-owner RETURN of the proxy's own connection), and
// the proxies' own account of each connection (the mesh event log: original destination, chosen endpoint, the
// identities read from the TLS handshake, the authorization decision).

// meshObs is the mesh part of one lab trace.
type meshObs struct {
	out, in *MeshEvent // the traced connection at the client's and the server's proxy
}

func proxyName(m cluster.Mesh) string {
	if m == cluster.MeshIstioSidecar {
		return "istio-proxy"
	}
	return "linkerd-proxy"
}

func meshLogSize(st *State) int64 { return dnsLogSize(meshEventLog(st.Name)) }

// readMeshLog reads the events appended after offset.
func readMeshLog(st *State, offset int64) []MeshEvent {
	b, err := os.ReadFile(meshEventLog(st.Name))
	if err != nil || int64(len(b)) < offset {
		return nil
	}
	var out []MeshEvent
	for _, l := range strings.Split(string(b[offset:]), "\n") {
		var e MeshEvent
		if json.Unmarshal([]byte(l), &e) == nil && e.Pod != "" {
			out = append(out, e)
		}
	}
	return out
}

// meshNamespaces lists the namespaces of meshed pods the journey may cross (the source and every pod on any
// predicted branch): their interception rules are watched with nft monitor trace.
func (x *performer) meshNamespaces(branches []*trace.Journey) []string {
	var out []string
	add := func(ref string) {
		if pp := x.st.Plan.Pod(ref); pp != nil && pp.Mesh != nil && !contains(out, pp.NS) {
			out = append(out, pp.NS)
		}
	}
	if x.src.Kind == trace.FromPod {
		add(x.src.Pod.Namespace + "/" + x.src.Pod.Name)
	}
	for _, b := range branches {
		for _, h := range b.Hops {
			if h.Location.Kind == trace.InPod || h.Location.Kind == trace.InProxy {
				add(strings.Fields(h.Location.Name)[0])
			}
		}
		if b.Backend != nil && b.Backend.Pod != "" {
			add(b.Backend.Pod)
		}
	}
	return out
}

// meshWire finds the traced connection in the proxies' log and returns the tuple that crossed the network: the
// client proxy's own connection when the source pod's proxy took the application's connection.
func (x *performer) meshWire(offset int64, sport int, dst netip.AddrPort) (int, netip.AddrPort) {
	if offset < 0 {
		return sport, dst
	}
	evs := readMeshLog(x.st, offset)
	app := netip.AddrPortFrom(x.srcIP, uint16(sport)).String()
	wireSrc := app
	for i := range evs {
		e := &evs[i]
		if e.Dir == mesh.Outbound && e.Peer == app { // the last record of the connection is the most complete
			x.mo.out = e
			if ap, err := netip.ParseAddrPort(e.Upstream); err == nil {
				sport = int(ap.Port())
				wireSrc = e.Upstream
			}
			if t, err := netip.ParseAddrPort(e.Target); err == nil {
				dst = t
			}
		}
	}
	// The server side: the connection from the wire source; else (a NAT changed the source) the first inbound
	// event after the client's.
	for i := range evs {
		e := &evs[i]
		if e.Dir == mesh.Inbound && e.Peer == wireSrc {
			x.mo.in = e
			return sport, dst
		}
	}
	for i := range evs {
		e := &evs[i]
		if e.Dir == mesh.Inbound && (x.mo.out == nil || e.T >= x.mo.out.T) {
			x.mo.in = e
			break
		}
	}
	return sport, dst
}

// interceptionSteps reads one connection's walk through a pod's interception rules from its kernel trace: the
// packet identified by its source port and destination, the rules in the mesh chains.
func interceptionStep(pp *PodPlan, evs []TraceEvent, match func(PacketHeader) bool, dir string) *trace.Step {
	obj := "Pod " + pp.Ref() + " (" + pp.Mesh.InitName + " rules)"
	var last *TraceEvent
	seen := false
	var chains []string
	for i := range evs {
		e := &evs[i]
		if !match(e.Hdr) || !strings.HasSuffix(e.Table, " nat") {
			continue
		}
		seen = true
		if e.Kind != "rule" {
			continue
		}
		if len(chains) == 0 || chains[len(chains)-1] != e.Chain {
			chains = append(chains, e.Chain)
		}
		if strings.Contains(e.Rule, "redirect to") {
			port := e.Rule[strings.Index(e.Rule, "redirect to")+len("redirect to"):]
			port = strings.TrimPrefix(strings.Fields(port)[0], ":")
			return &trace.Step{Layer: trace.LayerMesh, Action: trace.ActionRedirect, Object: obj, Rule: "nat " + e.Chain + ": " + squash(e.Rule),
				Why: fmt.Sprintf("nft trace in %s: nat %s (%s) redirected the new %s connection to the %s's port %s", pp.NS, hookOf(dir),
					strings.Join(chains, " → "), dir, proxyName(pp.Mesh.Mesh), port)}
		}
		if e.Verdict == "return" && isMeshChain(e.Chain) {
			last = e
		}
	}
	if !seen {
		return nil
	}
	rule := "end of " + strings.Join(chains, " → ") + " (no rule matched)"
	if last != nil {
		rule = "nat " + last.Chain + ": " + squash(last.Rule)
	}
	why := fmt.Sprintf("nft trace in %s: nat %s (%s) did not redirect the connection", pp.NS, hookOf(dir), strings.Join(chains, " → "))
	if last != nil && ownerMatch(last.Rule) {
		why += fmt.Sprintf(": its socket belongs to the proxy uid %d, which the rules exempt (no loop)", pp.Mesh.ProxyUID)
	}
	return &trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: obj, Rule: rule, Why: why}
}

func hookOf(dir string) string {
	if dir == mesh.Inbound {
		return "PREROUTING"
	}
	return "OUTPUT"
}

func isMeshChain(c string) bool {
	return strings.HasPrefix(c, "ISTIO") || strings.HasPrefix(c, "PROXY_INIT")
}

func squash(s string) string { return strings.Join(strings.Fields(s), " ") }

// ownerMatch reports whether a rule (nft or iptables text) matches the socket owner positively.
func ownerMatch(rule string) bool {
	r := squash(rule)
	return (strings.Contains(r, "skuid ") && !strings.Contains(r, "skuid != ")) ||
		(strings.Contains(r, "--uid-owner") && !strings.Contains(r, "! --uid-owner"))
}

// meshSource adds the client side: the redirect of the application's connection in the source pod, the
// outbound proxy hop, and the proxy's own connection passing the rules.
func (x *performer) meshSource(events map[string][]TraceEvent, appSport int, appDst netip.AddrPort) {
	pp := x.st.Plan.Pod(x.srcLoc.Name)
	if x.src.Kind != trace.FromPod || pp == nil || pp.Mesh == nil {
		return
	}
	evs := events[pp.NS]
	src := x.srcIP.String()
	appStep := interceptionStep(pp, evs, func(h PacketHeader) bool {
		return h.Src == src && h.SPort == appSport && h.Dst == appDst.Addr().String() && h.DPort == int(appDst.Port())
	}, mesh.Outbound)
	if appStep != nil {
		x.step(*appStep)
	}
	e := x.mo.out
	if e == nil {
		return
	}
	x.enter(trace.Location{Kind: trace.InProxy, Name: pp.Ref() + " " + proxyName(pp.Mesh.Mesh) + " (outbound)", Node: pp.Node, IP: pp.IP.String()})
	proxyObj := "Pod " + pp.Ref() + " " + proxyName(pp.Mesh.Mesh)
	x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: proxyObj, Rule: "SO_ORIGINAL_DST " + e.OrigDst,
		Why: fmt.Sprintf("the lab proxy (sockets owned by uid %d) accepted %s on %s and read the original destination %s from the kernel", e.UID, e.Peer, e.Listener, e.OrigDst)})
	if e.RouteObject != "" {
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionRoute, Object: e.RouteObject, Rule: e.RouteRule,
			Why: "the lab proxy sniffed the HTTP request and asked package mesh for the route"})
	}
	if e.Outcome == "rejected" {
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionReject, Object: e.Object, Why: "the client proxy failed the connection: " + e.Reason})
		return
	}
	if e.Target != "" {
		obj := whyOr(e.Service, "original destination")
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionForward, Object: obj, Rule: "connect " + e.Target + " from " + e.Upstream,
			Why: "the lab proxy " + e.Why + "; its own socket " + e.Upstream + " → " + e.Target})
	}
	switch {
	case e.TLS && e.PeerID == "" && e.Outcome == "connecting":
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionUnknown, Object: proxyObj,
			Why: "the proxy was still connecting to " + e.Target + " (mTLS to follow) when the client gave up"})
	case e.TLS && e.PeerID != "":
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionEncrypt, Object: proxyObj, Rule: "mTLS client " + e.LocalID + " → server " + e.PeerID,
			Why: "TLS 1.3 handshake completed: the proxy presented the lab CA's certificate for " + e.LocalID + " and verified the server's certificate for " + e.PeerID + " (" + e.TLSWhy + ")"})
	case e.Outcome == "failed":
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionUnknown, Object: proxyObj, Why: e.Reason})
	default:
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: proxyObj, Rule: "plaintext", Why: "no mTLS: " + e.TLSWhy})
	}
	x.enter(trace.Location{Kind: trace.InPod, Name: pp.Ref(), Node: pp.Node, IP: pp.IP.String()})
	if up, err := netip.ParseAddrPort(e.Upstream); err == nil {
		tgt, _ := netip.ParseAddrPort(e.Target)
		if st := interceptionStep(pp, evs, func(h PacketHeader) bool {
			return h.Src == up.Addr().String() && h.SPort == int(up.Port()) && h.Dst == tgt.Addr().String() && h.DPort == int(tgt.Port())
		}, mesh.Outbound); st != nil {
			x.step(*st)
		}
	}
}

// meshDest adds the server side: the destination pod's interception (redirect or pass), the inbound proxy hop
// with the identities from the handshake and the authorization decision. It returns the rejection reason, if the
// server's proxy refused the connection.
func (x *performer) meshDest(events map[string][]TraceEvent, ipid int, proto string, dports map[int]bool) (object, reason string) {
	var pp *PodPlan
	if e := x.mo.in; e != nil {
		pp = x.st.Plan.Pod(e.Pod)
	} else {
		// Not redirected (a skipped port): the meshed pod whose namespace saw the packet.
		for i := range x.st.Plan.Pods {
			q := &x.st.Plan.Pods[i]
			if q.Mesh == nil || q.NS == x.ns {
				continue
			}
			for _, ev := range events[q.NS] {
				if ev.Hdr.IPID == ipid && ev.Hdr.IIF != "" && dports[ev.Hdr.DPort] {
					pp = q
					break
				}
			}
			if pp != nil {
				break
			}
		}
	}
	if pp == nil || pp.Mesh == nil {
		return "", ""
	}
	x.enter(trace.Location{Kind: trace.InPod, Name: pp.Ref(), Node: pp.Node, IP: pp.IP.String()})
	if st := interceptionStep(pp, events[pp.NS], func(h PacketHeader) bool {
		return h.IPID == ipid && h.Proto == proto && h.IIF != ""
	}, mesh.Inbound); st != nil {
		x.step(*st)
	}
	e := x.mo.in
	if e == nil {
		return "", ""
	}
	x.enter(trace.Location{Kind: trace.InProxy, Name: pp.Ref() + " " + proxyName(pp.Mesh.Mesh) + " (inbound)", Node: pp.Node, IP: pp.IP.String()})
	proxyObj := "Pod " + pp.Ref() + " " + proxyName(pp.Mesh.Mesh)
	x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: proxyObj, Rule: "SO_ORIGINAL_DST " + e.OrigDst,
		Why: fmt.Sprintf("the lab proxy accepted %s on %s and read the original destination %s from the kernel", e.Peer, e.Listener, e.OrigDst)})
	if e.TLS {
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionDecrypt, Object: proxyObj, Rule: "mTLS server " + e.LocalID + " ← client " + e.PeerID,
			Why: "TLS 1.3 handshake completed: the client certificate (verified against the lab CA) names " + e.PeerID})
	} else if e.Outcome != "failed" {
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: proxyObj, Rule: "plaintext",
			Why: "the connection arrived without a TLS handshake: the client has no identity"})
	}
	if pp.Mesh.Mesh == cluster.MeshLinkerd && e.Outcome != "failed" {
		port := portOf(e.OrigDst)
		if e.Opaque {
			x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: proxyObj, Rule: "opaque port " + port, Why: e.OpaqueWhy})
		} else if e.L7 != nil {
			x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: proxyObj, Rule: "protocol detection",
				Why: fmt.Sprintf("the lab proxy read an HTTP request: %s %s (Host %s)", e.L7.Method, e.L7.Path, e.L7.Host)})
		}
	}
	if e.PeerMode != "" {
		if e.Outcome == "rejected" && e.Decision == nil {
			x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionReject, Object: e.PeerObject, Rule: e.PeerRule, Why: "the lab proxy reset the connection: " + e.Reason})
			return e.PeerObject, e.Reason
		}
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionAllow, Object: e.PeerObject, Rule: e.PeerRule,
			Why: fmt.Sprintf("mode %s accepts this %s connection", e.PeerMode, map[bool]string{true: "mTLS", false: "plaintext"}[e.TLS])})
	}
	if d := e.Decision; d != nil {
		a := trace.ActionAllow
		switch d.Verdict {
		case mesh.Deny:
			a = trace.ActionReject
		case mesh.Unknown:
			a = trace.ActionUnknown
		}
		x.step(trace.Step{Layer: trace.LayerMesh, Action: a, Object: d.Object, Rule: d.Rule,
			Why: "the lab proxy asked package mesh with the identity from the handshake and the port from SO_ORIGINAL_DST: " + d.Why})
		if d.Verdict != mesh.Allow {
			return d.Object, "refused by " + pp.Ref() + "'s " + proxyName(pp.Mesh.Mesh) + " (lab proxy): " + whyOr(d.Response, d.Why)
		}
	}
	switch e.Outcome {
	case "forwarded":
		_, to, _ := strings.Cut(e.App, " → ")
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionForward, Object: proxyObj, Rule: "connect " + to,
			Why: "the lab proxy opened its own connection to the application: " + e.App})
	case "failed", "rejected":
		x.step(trace.Step{Layer: trace.LayerMesh, Action: trace.ActionUnknown, Object: proxyObj, Why: e.Reason})
		return proxyObj, e.Reason
	}
	return "", ""
}

func portOf(ap string) string {
	if a, err := netip.ParseAddrPort(ap); err == nil {
		return strconv.Itoa(int(a.Port()))
	}
	return ""
}

// meshSig is what the lab can prove of a mesh step: the interception (chain, redirect port, owner exemption),
// the identities, and who allowed or refused; "" for steps it does not compare.
func meshSig(s trace.Step) string {
	if s.Layer != trace.LayerMesh {
		return ""
	}
	chain := func(rule string) string {
		r, ok := strings.CutPrefix(rule, "nat ")
		if !ok {
			return ""
		}
		c, _, _ := strings.Cut(r, ":")
		return c
	}
	switch s.Action {
	case trace.ActionRedirect:
		port := ""
		if i := strings.Index(s.Rule, "--to-ports "); i >= 0 {
			port = strings.Fields(s.Rule[i+len("--to-ports "):])[0]
		} else if i := strings.Index(s.Rule, "redirect to :"); i >= 0 {
			port = strings.Fields(s.Rule[i+len("redirect to :"):])[0]
		}
		return "redirect " + chain(s.Rule) + " → :" + port
	case trace.ActionPass:
		switch {
		case strings.HasSuffix(s.Object, " rules)"):
			sig := "pass " + chain(s.Rule)
			if ownerMatch(s.Rule) {
				sig += " (owner exemption)"
			}
			return sig
		case s.Rule == "plaintext", s.Rule == "protocol detection", strings.HasPrefix(s.Rule, "opaque port "):
			return s.Rule
		}
	case trace.ActionEncrypt, trace.ActionDecrypt:
		return string(s.Action) + " " + s.Rule
	case trace.ActionAllow, trace.ActionReject, trace.ActionRoute, trace.ActionUnknown:
		return string(s.Action) + " " + s.Object
	case trace.ActionForward:
		if strings.HasPrefix(s.Rule, "connect ") && !strings.Contains(s.Rule, " from ") {
			return "forward " + s.Rule
		}
	}
	return ""
}

// meshDiffs compares the mesh steps hop by hop (hops keyed by location and occurrence).
func meshDiffs(pred, obs *trace.Journey) []Difference {
	sigs := func(j *trace.Journey) (map[string][]string, []string) {
		m := map[string][]string{}
		var order []string
		count := map[string]int{}
		for _, h := range j.Hops {
			loc := string(h.Location.Kind) + " " + h.Location.Name
			count[loc]++
			k := loc
			if count[loc] > 1 {
				k += fmt.Sprintf(" (#%d)", count[loc])
			}
			for _, s := range h.Steps {
				if sig := meshSig(s); sig != "" {
					if _, ok := m[k]; !ok {
						order = append(order, k)
					}
					m[k] = append(m[k], sig)
				}
			}
		}
		return m, order
	}
	pm, po := sigs(untilStopped(pred))
	om, oo := sigs(obs)
	var d []Difference
	for _, k := range append(po, oo...) {
		p, o := strings.Join(pm[k], "; "), strings.Join(om[k], "; ")
		if p != o {
			d = append(d, Difference{What: "mesh at " + k, Predicted: p, Observed: o})
		}
		delete(pm, k)
		delete(om, k)
	}
	return d
}
