package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	miekg "github.com/miekg/dns"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

// TraceOptions tune `lab trace`.
type TraceOptions struct {
	Protocol packet.Protocol
	// Count is the number of connections made to observe the backend set (≥ 1; the first one is traced).
	Count int
	// Timeout bounds each connection attempt: no answer within it is a drop.
	Timeout time.Duration
}

// Result is a journey performed on the kernel next to its prediction.
type Result struct {
	// Predicted is the predicted branch whose backend the first observed connection reached (or the engine's
	// deterministic choice when no backend was reached).
	Predicted *trace.Journey
	// Observed is what the kernel did, assembled into the same type.
	Observed *trace.Journey
	// Diffs are the differences; empty means MATCH.
	Diffs []Difference
	// PredictedBackends and ObservedBackends are the backend sets (pod refs, or ip:port without a pod) over
	// Count connections; Hits counts each observed backend.
	PredictedBackends []string
	ObservedBackends  []string
	Hits              map[string]int
	Count             int
	// ConnectRTT is the measured TCP handshake (or UDP request/reply) time of the traced connection.
	ConnectRTT time.Duration
	// Evidence is the raw observation: conntrack entries and the kernel trace per node.
	Evidence []string
	// Skipped says why parts could not be compared (e.g. policy not enforced in this lab).
	Skipped []string
	// Captures are the traced connection's frames on every interface they crossed (AF_PACKET, kernel timestamps).
	Captures []CapturedPacket
	// Real holds the --real comparisons (rules, DNS answers, EndpointSlices); nil for a lab without --real.
	Real *RealChecks `json:"real,omitempty"`
}

// Difference is one disagreement between prediction and kernel.
type Difference struct {
	What      string `json:"what"`
	Predicted string `json:"predicted"`
	Observed  string `json:"observed"`
}

// Match says the kernel did what the model predicted.
func (r *Result) Match() bool { return len(r.Diffs) == 0 }

// Trace performs FROM → TO for real inside the lab and compares it with the prediction.
func Trace(ctx context.Context, st *State, snap *cluster.Snapshot, eng *trace.Engine, from, to string, opt TraceOptions) (*Result, error) {
	if opt.Protocol == "" {
		opt.Protocol = packet.TCP
	}
	if opt.Count < 1 {
		opt.Count = 1
	}
	if opt.Timeout == 0 {
		opt.Timeout = 1500 * time.Millisecond
	}
	if !st.Ready {
		return nil, fmt.Errorf("lab %s is not ready (interrupted build?): run `kpath lab down --name %s` and up again", st.Name, st.Name)
	}
	topt := trace.Options{Protocol: opt.Protocol}
	branches, err := eng.TraceAll(from, to, topt)
	if err != nil {
		return nil, err
	}
	src, err := trace.ResolveSource(snap, from)
	if err != nil {
		return nil, err
	}
	tgt, err := trace.ResolveTarget(snap, to, opt.Protocol)
	if err != nil {
		return nil, err
	}
	res := &Result{Hits: map[string]int{}, Count: opt.Count}
	for _, b := range branches {
		if b.Backend != nil {
			res.PredictedBackends = appendUniq(res.PredictedBackends, backendKey(b.Backend))
		}
	}
	sort.Strings(res.PredictedBackends)
	x := &performer{st: st, snap: snap, opt: opt, src: src, tgt: tgt, res: res, branches: branches}
	if err := x.locate(); err != nil {
		return nil, err
	}
	obs := &trace.Journey{Schema: trace.Schema, Question: branches[0].Question, Profile: branches[0].Profile,
		Source: branches[0].Source, Hops: []trace.Hop{}, Blockers: []trace.Blocker{}}
	obs.Profile.Why = nil
	x.obs = obs
	x.enter(x.srcLoc)
	dst, ok := x.resolve(ctx)
	if ok {
		x.perform(ctx, dst)
	}
	// Pick the predicted branch that went where the kernel went.
	res.Predicted = branches[0]
	if obs.Backend != nil {
		for _, b := range branches {
			if b.Backend != nil && backendKey(b.Backend) == backendKey(obs.Backend) {
				res.Predicted = b
			}
		}
	}
	if res.ConnectRTT > 0 {
		byHop, note := obs.Latency.ByHop, "MEASURED in the lab (not an estimate): half the traced connection's handshake round trip."
		if byHop == nil {
			byHop, note = []trace.Estimate{}, note+" Per-hop times: no capture of the traced packet."
		} else {
			note += " " + obs.Latency.Note
		}
		obs.Latency = trace.Latency{Total: trace.Estimate{Nanos: int64(res.ConnectRTT / 2), Source: "MEASURED: connect round trip / 2"},
			ByHop: byHop, Note: note}
	}
	res.Observed = obs
	res.Diffs = Diff(res.Predicted, obs, st)
	if res.Count > 1 && len(res.ObservedBackends) > 0 {
		if strings.Join(res.PredictedBackends, ",") != strings.Join(res.ObservedBackends, ",") {
			res.Diffs = append(res.Diffs, Difference{What: fmt.Sprintf("backend set over %d connections", res.Count),
				Predicted: strings.Join(res.PredictedBackends, ", "), Observed: strings.Join(res.ObservedBackends, ", ")})
		}
	}
	if st.Real != nil {
		res.Real = realChecks(ctx, st, snap, res)
	}
	if !st.Policy.Enforced && journeyHasPolicyDecision(res.Predicted) {
		res.Skipped = append(res.Skipped, "NetworkPolicy is not enforced in this lab ("+st.Policy.How+"): the prediction's policy drop cannot be observed")
	}
	return res, nil
}

func appendUniq(ss []string, s string) []string {
	for _, x := range ss {
		if x == s {
			return ss
		}
	}
	return append(ss, s)
}

func backendKey(e *trace.Endpoint) string {
	if e.Pod != "" {
		return e.Pod
	}
	return net.JoinHostPort(e.IP, strconv.Itoa(e.Port))
}

func journeyHasPolicyDecision(j *trace.Journey) bool {
	for _, b := range j.Blockers {
		if b.Layer == trace.LayerPolicy {
			return true
		}
	}
	return false
}

// performer carries one lab trace.
type performer struct {
	st     *State
	snap   *cluster.Snapshot
	opt    TraceOptions
	src    trace.Source
	tgt    trace.Target
	res    *Result
	obs    *trace.Journey
	ns     string // the namespace the client runs in
	srcIP  netip.Addr
	srcLoc trace.Location
	hop    *trace.Hop
	// branches are the predicted journeys; mo is what the mesh proxies logged of the traced connection.
	branches []*trace.Journey
	mo       meshObs
	// caps are the packets captured on every interface of the watched namespaces.
	caps map[string][]CapturedPacket
}

func (x *performer) locate() error {
	p := x.st.Plan
	switch x.src.Kind {
	case trace.FromPod:
		ref := x.src.Pod.Namespace + "/" + x.src.Pod.Name
		x.srcIP = x.src.IP
		x.srcLoc = trace.Location{Kind: trace.InPod, Name: ref, Node: x.src.Pod.Spec.NodeName, IP: x.src.IP.String()}
		if x.src.Pod.Spec.HostNetwork {
			n := p.Node(x.src.Pod.Spec.NodeName)
			if n == nil {
				return fmt.Errorf("node %s of %s is not in the lab", x.src.Pod.Spec.NodeName, ref)
			}
			x.ns = n.NS
			x.srcLoc = trace.Location{Kind: trace.OnNode, Name: n.Name, IP: n.IP.String()}
			return nil
		}
		pp := p.Pod(ref)
		if pp == nil {
			return fmt.Errorf("pod %s is not in the lab (no IP or node in the snapshot)", ref)
		}
		x.ns = pp.NS
	case trace.FromNode:
		n := p.Node(x.src.Node.Name)
		if n == nil {
			return fmt.Errorf("node %s is not in the lab", x.src.Node.Name)
		}
		x.ns, x.srcIP = n.NS, n.IP
		x.srcLoc = trace.Location{Kind: trace.OnNode, Name: n.Name, IP: n.IP.String()}
	case trace.FromExternal:
		x.ns, x.srcIP = p.ExternalNS, x.src.IP
		if !x.srcIP.Is4() {
			return fmt.Errorf("external:%s: the lab is IPv4 only", x.srcIP)
		}
		if p.Underlay.Contains(x.srcIP) && x.srcIP != p.Gateway {
			return fmt.Errorf("external:%s is inside the node network %s: pick an address outside it (e.g. 203.0.113.7)", x.srcIP, p.Underlay)
		}
		if x.srcIP != p.Gateway {
			// The external client owns the address (replies come back through the nodes' default route).
			if err := ipBatch(context.Background(), p.ExternalNS, []string{"addr replace " + x.srcIP.String() + "/32 dev eth0"}); err != nil {
				return err
			}
		}
		if err := allowExternal(context.Background(), x.st, x.snap, x.srcIP); err != nil {
			return fmt.Errorf("adding external client %s to the policy sets: %w", x.srcIP, err)
		}
		x.srcLoc = trace.Location{Kind: trace.Outside, Name: "client " + x.srcIP.String(), IP: x.srcIP.String()}
	}
	return nil
}

func (x *performer) enter(loc trace.Location) {
	if x.hop != nil && x.hop.Location == loc {
		return
	}
	x.obs.Hops = append(x.obs.Hops, trace.Hop{Location: loc, Steps: []trace.Step{}})
	x.hop = &x.obs.Hops[len(x.obs.Hops)-1]
}

func (x *performer) step(s trace.Step) { x.hop.Steps = append(x.hop.Steps, s) }

func (x *performer) finish(v trace.Verdict, why string) {
	x.obs.Verdict, x.obs.VerdictReason = v, why
}

// resolve performs the DNS stage for real: `getent ahosts NAME` inside the source namespace uses glibc's resolver
// with the pod's /etc/netns/<ns>/resolv.conf; the lab DNS server's log says which queries it answered.
func (x *performer) resolve(ctx context.Context) (netip.Addr, bool) {
	if x.tgt.Kind != trace.ToName {
		return x.tgt.IP, true
	}
	before := dnsLogSize(x.st.DNSLog())
	t0 := time.Now()
	out, err := run(ctx, "", "ip", "netns", "exec", x.ns, "getent", "ahosts", x.tgt.Name)
	took := time.Since(t0)
	if x.st.Real != nil {
		// Real CoreDNS logs a query after answering it and the agent relays the line: let the last ones land.
		waitLogQuiet(x.st.DNSLog(), 50*time.Millisecond, time.Second)
	}
	var qs []DNSLogEntry
	for _, q := range readDNSLog(x.st.DNSLog(), before) {
		// Only this lookup's queries: from the client's address, received after it started (a previous
		// question's last log lines may still be landing).
		if q.T >= t0.UnixNano() && strings.HasPrefix(q.Client, x.srcIP.String()+":") {
			qs = append(qs, q)
		}
	}
	sort.SliceStable(qs, func(i, j int) bool { return qs[i].T < qs[j].T })
	d := &trace.DNS{Name: x.tgt.Name, Resolver: "glibc", Queries: []trace.DNSQuery{}}
	if pp := x.st.Plan.Pod(x.srcLoc.Name); pp != nil {
		d.ResolvConf = strings.TrimSpace(pp.ResolvConf)
	}
	for _, q := range qs {
		d.Queries = append(d.Queries, trace.DNSQuery{Name: q.Name, Type: q.Type, Rcode: q.Rcode, Answers: nonNil(q.Answer), Server: q.Server,
			Why: "answered by the lab's DNS server in " + q.Server + " (query from " + q.Client + ")"})
		if q.Rcode == "NXDOMAIN" && d.Result == "" {
			d.NXDomains++
		}
	}
	var addr netip.Addr
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			if a, err := netip.ParseAddr(f[0]); err == nil && a.Is4() {
				addr = a
				break
			}
		}
	}
	x.obs.DNS = d
	x.step(trace.Step{Layer: trace.LayerDNS, Action: trace.ActionResolve, Object: "resolv.conf",
		Rule: strings.ReplaceAll(d.ResolvConf, "\n", "; "),
		Why:  fmt.Sprintf("getent ahosts %s (glibc) in %s: %d queries reached the lab's DNS servers in %s", x.tgt.Name, x.ns, len(qs), took.Round(time.Microsecond))})
	if !addr.IsValid() {
		why := fmt.Sprintf("%s does not resolve in the lab (getent: %s)", x.tgt.Name, strings.TrimSpace(errString(err)))
		x.obs.Blockers = append(x.obs.Blockers, trace.Blocker{Layer: trace.LayerDNS, Object: "name " + x.tgt.Name, Reason: why})
		x.finish(trace.Rejected, why)
		return netip.Addr{}, false
	}
	d.Result = addr.String()
	return addr, true
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func errString(err error) string {
	if err == nil {
		return "no IPv4 address"
	}
	return err.Error()
}

// perform makes the connection(s) while the kernel is watched, then assembles the observed hops.
func (x *performer) perform(ctx context.Context, dst netip.Addr) {
	port := x.tgt.Port
	if port == 0 {
		x.finish(trace.Unknown, "no destination port")
		return
	}
	dstAP := netip.AddrPortFrom(dst, uint16(port))
	x.obs.Destination = dstAP.String()
	var nss []string
	for _, n := range x.st.Plan.Nodes {
		nss = append(nss, n.NS)
	}
	// Pods with ingress policy rules carry a trace table too: watch the ones the packet may reach.
	for _, ref := range x.res.PredictedBackends {
		if pp := x.st.Plan.Pod(ref); pp != nil && contains(x.st.Policy.IngressPods, ref) {
			nss = append(nss, pp.NS)
		}
	}
	nodeNSs := len(x.st.Plan.Nodes)
	// Meshed pods on the way: their interception rules are traced in their own namespaces.
	for _, ns := range x.meshNamespaces(x.branches) {
		if !contains(nss, ns) {
			nss = append(nss, ns)
		}
	}
	mons, err := startMonitors(ctx, nss)
	if err != nil {
		x.finish(trace.Unknown, "cannot watch the kernel: "+err.Error())
		return
	}
	caps := startCaptures(x.captureNamespaces(nss), x.st.Plan.Overlay.UDPPort)
	meshOff := int64(-1)
	if len(x.st.Plan.meshPods()) > 0 {
		meshOff = meshLogSize(x.st)
	}
	sport := 20000 + rand.IntN(9000)
	out := x.connect(dstAP, sport)
	// With a meshed source, the connection on the wire is the proxy's own: find it in the proxies' log.
	wireSport, wireDst := x.meshWire(meshOff, sport, dstAP)
	var ct []string
	proto := strings.ToLower(string(x.opt.Protocol))
	for _, ns := range nss[:nodeNSs] {
		for _, l := range conntrackLines(ctx, ns, proto, wireSport) {
			ct = append(ct, ns+": "+l)
		}
	}
	events := stopMonitors(mons)
	var capErrs []string
	x.caps, capErrs = stopCaptures(caps)
	x.res.Skipped = append(x.res.Skipped, capErrs...)
	x.res.ConnectRTT = out.rtt
	x.res.Evidence = append(x.res.Evidence, ct...)
	x.obs.Hops[0].Steps = append(x.obs.Hops[0].Steps, trace.Step{Layer: trace.LayerSocket, Action: trace.ActionSend,
		Object: x.srcLoc.String(), Before: &packet.Packet{Proto: x.opt.Protocol, Src: netip.AddrPortFrom(x.srcIP, uint16(sport)), Dst: dstAP},
		Why: fmt.Sprintf("connected from %s:%d inside %s", x.srcIP, sport, x.ns)})
	x.assemble(events, wireSport, wireDst, out, sport, dstAP)
	x.captureEvidence(wireSport, wireDst)
	// More connections to see the backend set.
	if out.backend != "" {
		x.res.Hits[out.backend]++
	}
	for i := 1; i < x.opt.Count; i++ {
		o := x.connect(dstAP, 0)
		if o.backend != "" {
			x.res.Hits[o.backend]++
		}
	}
	for b := range x.res.Hits {
		x.res.ObservedBackends = append(x.res.ObservedBackends, b)
	}
	sort.Strings(x.res.ObservedBackends)
}

type outcome struct {
	backend string // the echo server's answer: ns/name or node/NAME
	err     error
	rtt     time.Duration
}

// connect dials from inside the source namespace (bound to the source address and port) and asks the echo server
// who it is.
func (x *performer) connect(dst netip.AddrPort, sport int) outcome {
	var o outcome
	network := "tcp4"
	if x.opt.Protocol == packet.UDP {
		network = "udp4"
	}
	var conn net.Conn
	err := inNetns(x.ns, func() error {
		d := net.Dialer{Timeout: x.opt.Timeout}
		if x.src.Kind == trace.FromExternal {
			if network == "tcp4" {
				d.LocalAddr = &net.TCPAddr{IP: x.srcIP.AsSlice(), Port: sport}
			} else {
				d.LocalAddr = &net.UDPAddr{IP: x.srcIP.AsSlice(), Port: sport}
			}
		} else if sport != 0 {
			if network == "tcp4" {
				d.LocalAddr = &net.TCPAddr{Port: sport}
			} else {
				d.LocalAddr = &net.UDPAddr{Port: sport}
			}
		}
		t0 := time.Now()
		c, err := d.Dial(network, dst.String())
		o.rtt = time.Since(t0)
		conn = c
		return err
	})
	if err != nil {
		o.err = err
		return o
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(x.opt.Timeout))
	t0 := time.Now()
	switch {
	case x.opt.Protocol == packet.UDP && dst.Port() == 53:
		m := new(miekg.Msg)
		m.SetQuestion("kubernetes.default.svc."+x.snap.Profile.ClusterDomain+".", miekg.TypeA)
		b, _ := m.Pack()
		conn.Write(b)
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		o.rtt = time.Since(t0)
		if err != nil {
			o.err = err
			return o
		}
		o.backend = dnsServerAt(x.st, conn.RemoteAddr())
		_ = n
		return o
	case x.opt.Protocol == packet.UDP:
		conn.Write([]byte("kpath\n"))
	case x.tgt.L7 != nil && (x.tgt.L7.Scheme == "http"):
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kpath-lab\r\nConnection: close\r\n\r\n", x.tgt.L7.Path, x.tgt.L7.Host)
	default:
		io.WriteString(conn, "kpath\n")
	}
	r := bufio.NewReader(conn)
	var who string
	for {
		line, err := r.ReadString('\n')
		if strings.HasPrefix(line, "X-Kpath-Pod: ") {
			who = strings.TrimSpace(strings.TrimPrefix(line, "X-Kpath-Pod: "))
		}
		if err != nil {
			if who == "" && line == "" {
				o.err = err
			}
			break
		}
		if x.tgt.L7 == nil || x.tgt.L7.Scheme != "http" {
			who = strings.TrimSpace(line)
			break
		}
	}
	if x.opt.Protocol == packet.UDP {
		o.rtt = time.Since(t0)
	}
	o.backend = who
	return o
}

// dnsServerAt names the DNS pod that answered (a UDP reply carries the VIP after un-DNAT, so ask the log).
func dnsServerAt(st *State, _ net.Addr) string {
	if st.Real != nil {
		// Real CoreDNS logs after answering and the agent relays the line: wait for it.
		waitLogQuiet(st.DNSLog(), 30*time.Millisecond, 500*time.Millisecond)
	}
	qs := readDNSLog(st.DNSLog(), dnsLogSize(st.DNSLog())-4096)
	if len(qs) == 0 {
		return ""
	}
	return qs[len(qs)-1].Server
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}
