package trace

import (
	"fmt"
	"net/netip"
	"strings"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/dns"
	"github.com/kpath/kpath/packet"
)

// dnsStage resolves the target name from the source, exactly as its resolver would, and returns the address the
// application connects to.
func (r *run) dnsStage() (netip.Addr, bool) {
	name := r.tgt.Name
	var rc dns.ResolvConf
	var rcWhy string
	switch r.src.Kind {
	case FromPod:
		pd := r.e.kubelet.PodResolvConf(r.src.Pod)
		rc, rcWhy = pd.ResolvConf, pd.Why
		for _, ev := range pd.Events {
			r.j.Notes = append(r.j.Notes, "kubelet event: "+ev)
		}
	default:
		rc = *r.e.kubelet.HostResolvConf
		rcWhy = "the node's own /etc/resolv.conf (assumed: the snapshot does not carry it)"
	}
	lib := r.opt.Libc
	if lib == "" {
		lib = dns.Glibc
		if r.src.Kind == FromPod && looksAlpine(r.src.Pod.Spec.Containers) {
			lib = dns.Musl
			r.j.Notes = append(r.j.Notes, "the image looks Alpine-based: modelled with musl's resolver (no search list walk past ndots, parallel A/AAAA); use --libc glibc to override")
		}
	}
	ask := func(q miekg.Question) dns.Answer { return r.e.dnsSrv.Answer(q) }
	if ns := firstNameserver(rc); !r.clusterDNS(ns) {
		// Not the cluster's DNS (dnsPolicy Default, hostNetwork without ClusterFirstWithHostNet, a node): the
		// node's upstream resolver answers, which the snapshot does not describe.
		ask = func(q miekg.Question) dns.Answer {
			return dns.Answer{Rcode: "unknown", Why: "nameserver " + ns + " is not the cluster DNS: the upstream resolver answers, which kpath does not model"}
		}
	}
	// The walk depends only on resolv.conf, the resolver and the name: cache it per engine.
	rk := dnsResKey{rc: rc.Render(), lib: lib, name: name}
	var res dns.Resolution
	if v, ok := r.e.dnsResolutions.Load(rk); ok {
		res = v.(dns.Resolution)
	} else {
		res = dns.Resolve(rc, lib, name, dns.FamilyUnspec, ask)
		r.e.dnsResolutions.Store(rk, res)
	}
	d := &DNS{Name: name, Resolver: string(lib), ResolvConf: strings.TrimSpace(rc.Render()),
		NXDomains: res.NXDomainBeforeAnswer}
	for _, q := range res.Queries {
		dq := DNSQuery{Name: q.Name, Type: q.Type, Rcode: q.Answer.Rcode, Answers: q.Answer.Records(), Server: q.Server, Why: q.Answer.Why}
		if dq.Answers == nil {
			dq.Answers = []string{}
		}
		if q.Conditional {
			dq.Why = "(sent only if the earlier forwarded answer failed) " + dq.Why
		}
		d.Queries = append(d.Queries, dq)
	}
	cost := r.e.lat.DNSQuery().Nanos*int64(max(1, stepsOf(res))) + 0
	d.Amplification = fmt.Sprintf("%d queries (%d NXDOMAIN) for one lookup; ~%s estimated", res.QueriesSent, res.NXDomainBeforeAnswer,
		fmtDuration(cost))
	r.j.DNS = d
	loc := Location{Kind: InPod, Name: "resolver", IP: r.src.IP.String()}
	if r.src.Kind == FromPod {
		loc = podLoc(r.src.Pod)
	} else if r.src.Node != nil {
		loc = nodeLoc(r.src.Node)
	}
	r.enter(loc)
	r.step(Step{Layer: LayerDNS, Action: ActionResolve, Object: "resolv.conf", Rule: strings.ReplaceAll(strings.TrimSpace(rc.Render()), "\n", "; "),
		Why: fmt.Sprintf("%s; %s. %s", rcWhy, res.Why, r.e.dnsWhy), LatencyEstimate: Estimate{Nanos: cost, Source: "dns.query × name steps"}})
	if len(rc.Nameservers) > 0 && r.depth == 0 {
		if ns, err := netip.ParseAddr(rc.Nameservers[0]); err == nil {
			d.Query = r.dnsQueryJourney(ns, res)
		}
	}
	var addr netip.Addr
	for _, a := range res.Addresses {
		if a.Is4() == r.src.IP.Is4() || !r.src.IP.IsValid() {
			addr = a
			break
		}
	}
	switch {
	case addr.IsValid():
		d.Result = addr.String()
		if len(res.Addresses) > 1 {
			r.j.Notes = append(r.j.Notes, fmt.Sprintf("%s has %d addresses; the application connects to the first (%s)", res.AnsweredBy, len(res.Addresses), addr))
		}
		if d.Query != nil && d.Query.Verdict != Delivered {
			r.j.Notes = append(r.j.Notes, "the DNS query's own journey is "+string(d.Query.Verdict)+": "+d.Query.VerdictReason)
		}
		return addr, true
	case res.Result == "NXDOMAIN" || res.Result == "NODATA":
		r.block(LayerDNS, "name "+name, fmt.Sprintf("%s: %s", res.Result, res.Why))
		r.finish(Rejected, fmt.Sprintf("%s does not resolve (%s): the application gets an error and sends nothing", name, res.Result))
	case res.Result == "unknown":
		r.finish(Unknown, fmt.Sprintf("%s is answered outside the cluster (forwarded upstream); kpath does not model the upstream resolver", name))
	default:
		r.block(LayerDNS, "name "+name, res.Result+": "+res.Why)
		r.finish(Rejected, fmt.Sprintf("resolving %s failed (%s)", name, res.Result))
	}
	return netip.Addr{}, false
}

func stepsOf(res dns.Resolution) int {
	n := 0
	for _, q := range res.Queries {
		if q.Step > n && !q.Conditional {
			n = q.Step
		}
	}
	return n
}

func looksAlpine(cs []corev1.Container) bool {
	for _, c := range cs {
		if strings.Contains(c.Image, "alpine") || strings.Contains(c.Image, "busybox:musl") {
			return true
		}
	}
	return false
}

// dnsQueryJourney traces the first query packet: UDP 53 from the source to the nameserver, through the same stages.
func (r *run) dnsQueryJourney(ns netip.Addr, res dns.Resolution) *Journey {
	// The query's journey depends only on who asks and which nameserver: compute it once per engine and share it
	// (journeys are read-only once built).
	key := dnsJourneyKey{ns: ns, from: r.j.Question.From}
	if r.src.Pod != nil {
		key.from = "pod/" + podRef(r.src.Pod)
	}
	if v, ok := r.e.dnsJourneys.Load(key); ok {
		return v.(*Journey)
	}
	j := r.computeDNSQueryJourney(ns, key.from)
	r.e.dnsJourneys.Store(key, j)
	return j
}

type dnsResKey struct {
	rc   string
	lib  dns.Libc
	name string
}

type dnsJourneyKey struct {
	ns   netip.Addr
	from string
}

// computeDNSQueryJourney walks the query packet; from is the canonical source (pod/NS/NAME), so the shared journey
// does not depend on how the first question happened to name it.
func (r *run) computeDNSQueryJourney(ns netip.Addr, from string) *Journey {
	sub := r.e.newRun(r.src, Target{Kind: ToIP, IP: ns, Port: 53}, Options{Protocol: packet.UDP},
		Question{From: from, To: ns.String() + ":53", Protocol: packet.UDP})
	sub.depth = r.depth + 1
	sub.run(-1)
	sub.j.Profile.Why = nil
	return sub.j
}

func fmtDuration(ns int64) string {
	switch {
	case ns >= 1_000_000:
		return fmt.Sprintf("%.1fms", float64(ns)/1e6)
	case ns >= 1_000:
		return fmt.Sprintf("%.1fµs", float64(ns)/1e3)
	}
	return fmt.Sprintf("%dns", ns)
}

func firstNameserver(rc dns.ResolvConf) string {
	if len(rc.Nameservers) == 0 {
		return ""
	}
	return rc.Nameservers[0]
}

// clusterDNS reports whether a nameserver address is answered by the cluster's CoreDNS (the kube-dns VIP, or
// NodeLocal DNSCache which forwards cluster names to it).
func (r *run) clusterDNS(ns string) bool {
	a, err := netip.ParseAddr(ns)
	if err != nil {
		return false
	}
	p := r.e.prof
	return a == p.ClusterDNS || (p.NodeLocalDNS.IsValid() && a == p.NodeLocalDNS)
}
