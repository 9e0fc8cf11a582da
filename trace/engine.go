package trace

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/dns"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/latency"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/packet"
)

// Options tune a trace.
type Options struct {
	// Protocol of the packet (TCP when empty).
	Protocol packet.Protocol
	// AllBackends walks every backend branch instead of one deterministic choice (see Engine.TraceAll).
	AllBackends bool
	// Rules adds, under each node's Service step, the rule-by-rule walk of the netfilter ruleset kube-proxy would
	// program on that node (rendered, parsed and evaluated like a real dump).
	Rules bool
	// skipAlternatives leaves Journey.Alternatives empty (batch records that do not print them).
	skipAlternatives bool
	// Libc is the source pod's resolver: glibc (default) or musl; empty picks musl for Alpine-looking images.
	Libc dns.Libc
}

// Engine answers questions about one snapshot. It is safe for concurrent use; per-node kube-proxy indexes are built
// on first use and kept.
type Engine struct {
	snap    *cluster.Snapshot
	prof    *cluster.Profile
	lat     costs
	dnsSrv  *dns.Server
	dnsWhy  string
	kubelet dns.Kubelet

	pol   PolicyEvaluator
	rules ruleCache // kube-proxy rulesets per node, for --rules

	profWhyOnce sync.Once
	profWhy     map[string]string
	// podAt caches the pod owning an endpoint address (netip.Addr → Endpoint) for backend/alternative listings.
	podAt sync.Map
	// dnsJourneys caches the DNS query's own journey per (source, nameserver).
	dnsJourneys sync.Map
	// dnsResolutions caches resolver walks per (resolv.conf, libc, name).
	dnsResolutions sync.Map

	meshOnce sync.Once
	mesh     *mesh.Model

	mu sync.Mutex
	kp map[string]*kubeproxy.Index // node views, by node name
	// kpShared holds the Services and EndpointSlices parsed once per kube-proxy mode and family; node views
	// share it (a per-node kubeproxy.NewIndex costs ~0.5 s at 10,000 Services).
	kpShared map[kpKey]*kubeproxy.Shared
}

type kpKey struct {
	mode   kubeproxy.Mode
	family corev1.IPFamily
}

// New prepares an engine: parses the CoreDNS Corefile (or assumes kubeadm's default and says so).
func New(snap *cluster.Snapshot) (*Engine, error) {
	e := &Engine{snap: snap, prof: &snap.Profile, lat: costs{latency.Default()}, kp: map[string]*kubeproxy.Index{}}
	corefile, why := defaultCorefile, "no kube-system/coredns ConfigMap: assumed kubeadm's default Corefile"
	if cm := snap.ConfigMap("kube-system", "coredns"); cm != nil && cm.Data["Corefile"] != "" {
		corefile, why = cm.Data["Corefile"], "Corefile from ConfigMap kube-system/coredns"
	}
	cf, err := dns.ParseCorefile(corefile)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap kube-system/coredns data[Corefile]: %w", err)
	}
	var local []netip.Addr
	for _, p := range snap.PodsMatching("kube-system", labelsOf("k8s-app", "kube-dns").selector()) {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			local = append(local, ip)
		}
	}
	e.dnsSrv, err = dns.NewServer(cf, dnsView{snap}, dns.ServerOptions{LocalIPs: local})
	if err != nil {
		return nil, fmt.Errorf("CoreDNS model: %w", err)
	}
	e.dnsWhy = why
	e.pol = &netpolEvaluator{e: e}
	clusterDNS := ""
	if snap.Profile.ClusterDNS.IsValid() {
		clusterDNS = snap.Profile.ClusterDNS.String()
	}
	servers, _ := dns.ClusterDNSFor(clusterDNS, snap.Profile.NodeLocalDNS.IsValid(), string(snap.Profile.ProxyMode))
	hostRC := dns.ResolvConf{Nameservers: []string{"172.18.0.1"}}
	e.kubelet = dns.Kubelet{ClusterDNS: servers, ClusterDomain: snap.Profile.ClusterDomain, HostResolvConf: &hostRC}
	return e, nil
}

// kubeadm's default Corefile (used when the input has none).
const defaultCorefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`

// proxyIndex returns the kube-proxy model for one node: a view of the cluster-wide index (parsed once per mode and
// family), kept per node. The view categorises a Service port's endpoints for this node on first use.
func (e *Engine) proxyIndex(n *corev1.Node) (*kubeproxy.Index, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if idx, ok := e.kp[n.Name]; ok {
		return idx, nil
	}
	cfg := kubeproxy.ConfigFor(e.snap, n)
	key := kpKey{cfg.Mode, cfg.Family}
	sh := e.kpShared[key]
	if sh == nil {
		var err error
		sh, err = kubeproxy.NewShared(cfg.Mode, cfg.Family, e.snap.Services, e.snap.EndpointSlices)
		if err != nil {
			return nil, fmt.Errorf("kube-proxy model (%s, %s): %w", cfg.Mode, cfg.Family, err)
		}
		if e.kpShared == nil {
			e.kpShared = map[kpKey]*kubeproxy.Shared{}
		}
		e.kpShared[key] = sh
	}
	idx, err := sh.Node(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube-proxy model for node %s: %w", n.Name, err)
	}
	e.kp[n.Name] = idx
	return idx, nil
}

// Trace answers one question with one deterministic backend choice (alternatives listed).
func (e *Engine) Trace(from, to string, opt Options) (*Journey, error) {
	js, err := e.trace(from, to, opt, false)
	if err != nil {
		return nil, err
	}
	return js[0], nil
}

// TraceAll walks every backend branch: one journey per endpoint the Service could pick.
func (e *Engine) TraceAll(from, to string, opt Options) ([]*Journey, error) {
	return e.trace(from, to, opt, true)
}

func (e *Engine) trace(from, to string, opt Options, all bool) ([]*Journey, error) {
	if opt.Protocol == "" {
		opt.Protocol = packet.TCP
	}
	src, err := ResolveSource(e.snap, from)
	if err != nil {
		return nil, err
	}
	tgt, err := ResolveTarget(e.snap, to, opt.Protocol)
	if err != nil {
		return nil, err
	}
	first := e.newRun(src, tgt, opt, Question{From: from, To: to, Protocol: opt.Protocol})
	first.run(-1)
	out := []*Journey{first.j}
	if all && len(first.choices) > 1 {
		out = out[:0]
		for i := range first.choices {
			r := e.newRun(src, tgt, opt, Question{From: from, To: to, Protocol: opt.Protocol})
			r.run(i)
			out = append(out, r.j)
		}
	}
	return out, nil
}

func labelsOf(k, v string) labelSel { return labelSel{k, v} }

// ---- helpers shared by stages ----

func podRef(p *corev1.Pod) string { return p.Namespace + "/" + p.Name }

func hashPick(n int, parts ...string) int {
	h := fnv.New32a()
	for _, p := range parts {
		h.Write([]byte(p))
	}
	return int(h.Sum32() % uint32(n))
}

func synthNote(m interface{ GetAnnotations() map[string]string }, field string) string {
	v, ok := m.GetAnnotations()[cluster.SynthesizedAnnotation]
	if !ok {
		return ""
	}
	if v == "*" || strings.Contains(v, field) {
		return " (synthesized)"
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
