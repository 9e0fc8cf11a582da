package lab

import (
	"fmt"
	"io"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

// captureEvidence turns the captures into hop evidence: the frames of the traced packet (identified by its IP ID,
// taken from its first frame: the SYN, or the first datagram, from the wire source) on every interface it
// crossed, one capture step per hop with the interfaces and the kernel timestamps, the VXLAN outer header seen on
// the underlay bridge, and the measured time per hop beside the model's estimate.
func (x *performer) captureEvidence(wireSport int, wireDst netip.AddrPort) {
	if len(x.caps) == 0 {
		return
	}
	proto := strings.ToLower(string(x.opt.Protocol))
	isFirst := func(c CapturedPacket) bool { return c.Proto == proto && (proto != "tcp" || (c.SYN && !c.ACK)) }
	var all []CapturedPacket
	for _, cs := range x.caps {
		all = append(all, cs...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].T.Before(all[j].T) })
	wireSrc := netip.AddrPortFrom(x.srcIP, uint16(wireSport))
	ipid := -1
	for _, c := range all {
		if isFirst(c) && c.Src == wireSrc {
			ipid = c.IPID
			break
		}
	}
	if ipid < 0 {
		x.res.Skipped = append(x.res.Skipped, fmt.Sprintf("per-interface capture: no frame from %s was captured", wireSrc))
		return
	}
	var wire []CapturedPacket
	for _, c := range all {
		if c.IPID == ipid && isFirst(c) {
			wire = append(wire, c)
		}
	}
	// The application's own connection and the server proxy's connection to the application (meshed pods): they
	// cross lo inside the pod, with their own IP IDs.
	var appConn, appHop []CapturedPacket
	if e := x.mo.out; e != nil {
		app, _ := netip.ParseAddrPort(e.Peer)
		for _, c := range x.caps[x.ns] {
			if isFirst(c) && c.Src == app {
				appConn = append(appConn, c)
			}
		}
	}
	if e := x.mo.in; e != nil {
		if pp := x.st.Plan.Pod(e.Pod); pp != nil {
			_, to, _ := strings.Cut(e.App, " → ")
			from, _, _ := strings.Cut(e.App, " → ")
			for _, c := range x.caps[pp.NS] {
				if isFirst(c) && c.Src.String() == from && c.Dst.String() == to {
					appHop = append(appHop, c)
				}
			}
		}
	}
	x.res.Captures = append(append(append(x.res.Captures, appConn...), wire...), appHop...)
	sort.SliceStable(x.res.Captures, func(i, j int) bool { return x.res.Captures[i].T.Before(x.res.Captures[j].T) })
	t0 := x.res.Captures[0].T
	// Frames per hop: by namespace; a pod hop met twice (before and after its proxy) takes the application's
	// connection the first time on the client side and the second time on the server side.
	nsOf := func(h trace.Hop) string {
		switch h.Location.Kind {
		case trace.OnNode:
			if n := x.st.Plan.Node(h.Location.Name); n != nil {
				return n.NS
			}
		case trace.InPod:
			if pp := x.st.Plan.Pod(h.Location.Name); pp != nil {
				return pp.NS
			}
		case trace.OnUnderlay:
			return x.st.Plan.UnderlayNS
		case trace.Outside:
			return x.st.Plan.ExternalNS
		}
		return ""
	}
	seen := map[string]int{}
	times := make([]time.Time, len(x.obs.Hops))
	for i := range x.obs.Hops {
		h := &x.obs.Hops[i]
		loc := h.Location.String()
		seen[loc]++
		var frames []CapturedPacket
		if h.Location.Kind == trace.InProxy {
			for _, e := range []*MeshEvent{x.mo.out, x.mo.in} {
				if e != nil && strings.HasPrefix(h.Location.Name, e.Pod+" ") && strings.HasSuffix(h.Location.Name, "("+e.Dir+")") {
					times[i] = time.Unix(0, e.T)
				}
			}
			continue
		}
		ns := nsOf(*h)
		if ns == "" {
			continue
		}
		switch {
		case ns == x.ns && len(appConn) > 0 && seen[loc] == 1:
			frames = appConn
		case len(appHop) > 0 && x.mo.in != nil && h.Location.Name == x.mo.in.Pod && seen[loc] == 2:
			frames = appHop
		default:
			for _, c := range wire {
				if c.NS == ns {
					frames = append(frames, c)
				}
			}
		}
		if len(frames) == 0 {
			continue
		}
		times[i] = frames[0].T
		var parts []string
		var outer *packet.Encap
		for _, c := range frames {
			dir := "in"
			if c.Out {
				dir = "out"
			} else if c.Loop {
				dir = "(loopback)"
			}
			parts = append(parts, fmt.Sprintf("%s %s +%s", c.Iface, dir, c.T.Sub(t0).Round(time.Microsecond)))
			if c.Outer != nil && outer == nil {
				outer = c.Outer
			}
		}
		s := trace.Step{Layer: trace.LayerLink, Action: trace.ActionForward, Object: "capture in " + shortNS(ns), Rule: strings.Join(parts, ", "),
			Why: fmt.Sprintf("AF_PACKET on every interface of %s: the packet (%s %s → %s, IP id %d) crossed %d interface(s); times from the kernel, relative to the first frame captured for this journey",
				ns, frames[0].Proto, frames[0].Src, frames[0].Dst, frames[0].IPID, len(frames))}
		if outer != nil {
			s.Layer, s.Rule = trace.LayerOverlay, s.Rule+"; outer "+fmt.Sprintf("vxlan %s → %s vni %d", outer.Src, outer.Dst, outer.VNI)
			p := packet.Packet{Proto: packet.Protocol(strings.ToUpper(frames[0].Proto)), Src: frames[0].Src, Dst: frames[0].Dst, Encap: []packet.Encap{*outer}}
			s.After = &p
			s.Why += "; on the underlay the frame is VXLAN: outer " + outer.Src.String() + " → " + outer.Dst.String() + fmt.Sprintf(" VNI %d", outer.VNI)
		}
		h.Steps = append(h.Steps, s)
	}
	// Measured time per hop: from the first frame in a hop (or the proxy's accept) to the first in the next one.
	by := make([]trace.Estimate, len(x.obs.Hops))
	measured := 0
	for i := range times {
		if times[i].IsZero() {
			continue
		}
		for j := i + 1; j < len(times); j++ {
			if !times[j].IsZero() {
				if d := times[j].Sub(times[i]); d >= 0 {
					by[i] = trace.Estimate{Nanos: int64(d), Source: "MEASURED: first capture in this hop → first in the next"}
					measured++
				}
				break
			}
		}
	}
	if measured > 0 {
		x.obs.Latency.ByHop = by
		x.obs.Latency.Note = strings.TrimSpace(x.obs.Latency.Note + " Per hop: MEASURED from per-interface captures (kernel timestamps), from the packet's first frame in a hop (a proxy: its accept) to its first frame in the next hop.")
	}
}

// captureDiffs compares the overlay encapsulation the model predicts with the outer headers the capture saw on the
// underlay (addresses, destination port, VNI; the outer source port is the kernel's flow hash).
func captureDiffs(pred, obs *trace.Journey) []Difference {
	captured := false
	var o []string
	for _, h := range obs.Hops {
		for _, s := range h.Steps {
			if strings.HasPrefix(s.Object, "capture in ") {
				captured = true
				// The outer header as the underlay carries it (the nodes' captures show the same frame).
				if s.After != nil && h.Location.Kind == trace.OnUnderlay {
					for _, e := range s.After.Encap {
						o = append(o, encapSig(e))
					}
				}
			}
		}
	}
	if !captured {
		return nil
	}
	var p []string
	for _, h := range untilStopped(pred).Hops {
		for _, s := range h.Steps {
			if s.Action == trace.ActionEncapsulate && s.After != nil {
				for _, e := range s.After.Encap {
					p = append(p, encapSig(e))
				}
			}
		}
	}
	if strings.Join(p, "; ") != strings.Join(o, "; ") {
		return []Difference{{What: "overlay outer header (capture on the underlay)", Predicted: strings.Join(p, "; "), Observed: strings.Join(o, "; ")}}
	}
	return nil
}

func encapSig(e packet.Encap) string {
	return fmt.Sprintf("%s %s → %s vni %d", e.Type, e.Src.Addr(), e.Dst, e.VNI)
}

// writeCaptures prints the traced packet's frames and the per-hop times beside the model's estimates.
func writeCaptures(w io.Writer, r *Result) {
	if len(r.Captures) == 0 {
		return
	}
	t0 := r.Captures[0].T
	fmt.Fprintf(w, "\ncaptured frames (AF_PACKET per namespace, kernel timestamps):\n")
	for _, c := range r.Captures {
		fmt.Fprintf(w, "  +%-9s %s\n", c.T.Sub(t0).Round(time.Microsecond), c)
	}
	o, p := r.Observed, r.Predicted
	if len(o.Latency.ByHop) != len(o.Hops) {
		return
	}
	same := len(p.Hops) >= len(o.Hops)
	for i := range o.Hops {
		if same && p.Hops[i].Location.String() != o.Hops[i].Location.String() {
			same = false
		}
	}
	fmt.Fprintf(w, "per hop: measured (capture) vs model ESTIMATE\n")
	for i, h := range o.Hops {
		m, e := "-", "-"
		if o.Latency.ByHop[i].Nanos > 0 {
			m = time.Duration(o.Latency.ByHop[i].Nanos).Round(100 * time.Nanosecond).String()
		}
		if same && i < len(p.Latency.ByHop) && p.Latency.ByHop[i].Nanos > 0 {
			e = "~" + time.Duration(p.Latency.ByHop[i].Nanos).Round(100*time.Nanosecond).String()
		}
		fmt.Fprintf(w, "  %-70s %12s %12s\n", h.Location.String(), m, e)
	}
}
