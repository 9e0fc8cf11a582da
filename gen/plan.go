package gen

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// The plan is the whole cluster in compact form (indexes, addresses, counts). It is computed
// first, with one random stream, so that every object can then be built independently from it:
// building is a pure function of (plan, kind, index), which is what lets WriteJSON encode in
// parallel and still write the same bytes.

// Addressing, as a kind or kubeadm cluster would have it.
var (
	smallClusterCIDR = netip.MustParsePrefix("10.244.0.0/16") // flannel's default, up to 256 nodes
	largeClusterCIDR = netip.MustParsePrefix("10.128.0.0/9")  // room for MaxNodes /24s
	serviceCIDR      = netip.MustParsePrefix("10.96.0.0/12")  // kubeadm's default
	nodeNetwork      = netip.MustParsePrefix("10.0.0.0/16")   // the VPC subnet nodes live in
	lbPool           = netip.MustParsePrefix("172.31.0.0/16") // where LoadBalancer addresses come from
	kubernetesVIP    = netip.MustParseAddr("10.96.0.1")
	kubeDNSVIP       = netip.MustParseAddr("10.96.0.10")
	apiServerIPs     = []netip.Addr{netip.MustParseAddr("10.0.255.11"), netip.MustParseAddr("10.0.255.12"), netip.MustParseAddr("10.0.255.13")}
)

const (
	region         = "us-east-1"
	nodePortBase   = 30000
	nodePortCount  = 2768 // 30000–32767, the default --service-node-port-range
	nodePortStride = 1009 // prime, coprime with 2768: walks every port once in a scrambled order
	firstNodeHost  = 16   // node i has address nodeNetwork+16+i
	// Probabilities of runtime states and Service shapes.
	pNotReady    = 0.015 // crash-looping pods: listed in EndpointSlices as not ready
	pPending     = 0.003 // unschedulable pods: no node, no IP
	pZonePinned  = 0.05  // workloads with a zone nodeSelector
	pHeadless    = 0.06  // Services in front of StatefulSets
	pExternal    = 0.01  // ExternalName Services
	pWorkers     = 0.10  // extra Deployments without a Service, relative to Services
	pNodePort    = 0.05
	pLoadBalance = 0.02
	pAffinity    = 0.03
	pPreferClose = 0.10
	pITPLocal    = 0.01
)

type podState uint8

const (
	podReady podState = iota
	podNotReady
	podPending
)

type plan struct {
	opts        Options
	seed        uint64
	base        time.Time // creation time of the cluster; everything else is an offset from it
	clusterCIDR netip.Prefix
	zones       []string
	nodes       []nodePlan
	namespaces  []nsPlan
	workloads   []wlPlan
	pods        []podPlan
	services    []svcPlan
	slices      []slicePlan
	policies    []polPlan

	deployments  []int32 // workload indexes, in emission order
	statefulSets []int32
	appWorkloads []int32   // workloads in generated namespaces
	nsWorkloads  [][]int32 // per namespace, its workloads
}

type nodePlan struct {
	name  string
	zone  int
	ip    netip.Addr
	cidr  netip.Prefix
	pods  int // pods with an IP from cidr
	vtep  string
	index int
}

type nsPlan struct {
	name, team, env string
	system          bool
}

// kube-system and friends are the first namespaces.
const (
	nsDefault = iota
	nsKubeSystem
	nsKubeFlannel
	firstAppNamespace
)

type wlPlan struct {
	ns        int32
	name      string
	sts       bool
	system    bool // CoreDNS
	replicas  int32
	firstPod  int32
	hash      string // pod-template-hash (Deployment) or controller-revision-hash suffix (StatefulSet)
	profile   *portProfile
	tier      string
	zone      int // -1: no nodeSelector
	svc       int32
	version   [2]int
	created   time.Duration
	suffixes  suffixer
	kindIndex int32 // index among Deployments or StatefulSets (for UIDs)
}

type podPlan struct {
	wl       int32
	node     int32 // -1 when pending
	ip       netip.Addr
	state    podState
	restarts int32
}

type svcPlan struct {
	ns           int32
	name         string
	wl           int32 // -1: no selector (kubernetes, ExternalName)
	typ          corev1.ServiceType
	clusterIP    netip.Addr // invalid for headless and ExternalName
	headless     bool
	externalName string
	nodePorts    []int32
	healthCheck  int32
	etpLocal     bool
	lbIP         netip.Addr
	affinity     bool
	preferClose  bool
	itpLocal     bool
	profile      *portProfile
	created      time.Duration
}

type slicePlan struct {
	svc   int32
	chunk int
	pods  []int32      // endpoints that are pods
	addrs []netip.Addr // endpoints that are not pods (the API server)
}

type polKind uint8

const (
	polDefaultDenyIngress polKind = iota
	polDefaultDenyAll
	polAllowDNSNamespace
	polTierToTier
	polCrossNamespace
	polEgressDNS
	polIPBlock
	polEgressInternet
	polEndPort
	polEnvSelector
)

type polPlan struct {
	ns      int32
	name    string
	kind    polKind
	target  int32 // workload, -1 for namespace-wide kinds
	peer    int32 // workload, -1 none
	byName  bool  // use the target's port name instead of its number
	created time.Duration
}

func newPlan(opts Options) (*plan, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p := &plan{
		opts: opts,
		seed: mix64(uint64(opts.Seed) ^ 0x67656e), // "gen"
		base: time.Date(2026, 10, 1, 8, 0, 0, 0, time.UTC),
	}
	r := newRNG(p.seed)
	p.planNodes(r)
	p.planNamespaces(r)
	p.planWorkloads(r)
	p.planPods(r)
	p.planServices(r)
	p.planSlices()
	p.planPolicies(r)
	return p, nil
}

func addrAdd(a netip.Addr, n uint32) netip.Addr {
	b := a.As4()
	v := binary.BigEndian.Uint32(b[:]) + n
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

func (p *plan) planNodes(r *rng) {
	n := p.opts.Nodes
	p.clusterCIDR = smallClusterCIDR
	if n > 256 {
		p.clusterCIDR = largeClusterCIDR
	}
	nz := min(3, n)
	for z := 0; z < nz; z++ {
		p.zones = append(p.zones, region+string(rune('a'+z)))
	}
	width := max(3, len(fmt.Sprint(n-1)))
	p.nodes = make([]nodePlan, n)
	for i := range p.nodes {
		mac := r.next()
		p.nodes[i] = nodePlan{
			name:  fmt.Sprintf("node-%0*d", width, i),
			zone:  i % nz,
			ip:    addrAdd(nodeNetwork.Addr(), uint32(firstNodeHost+i)),
			cidr:  netip.PrefixFrom(addrAdd(p.clusterCIDR.Addr(), uint32(i)<<8), 24),
			vtep:  fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", byte(mac)&0xfe|0x02, byte(mac>>8), byte(mac>>16), byte(mac>>24), byte(mac>>32), byte(mac>>40)),
			index: i,
		}
	}
}

func (p *plan) planNamespaces(r *rng) {
	p.namespaces = []nsPlan{
		{name: "default", system: true},
		{name: "kube-system", system: true},
		{name: "kube-flannel", system: true},
	}
	for i := 0; i < p.opts.Namespaces; i++ {
		team := teams[i%len(teams)]
		name := team
		if k := i / len(teams); k > 0 {
			name = fmt.Sprintf("%s-%d", team, k+1)
		}
		p.namespaces = append(p.namespaces, nsPlan{name: name, team: team, env: envs[r.intn(len(envs))]})
	}
	p.nsWorkloads = make([][]int32, len(p.namespaces))
}

// workload shapes, before shuffling.
const (
	shapeStateful = iota // StatefulSet + headless Service
	shapeService         // Deployment + Service
	shapeWorker          // Deployment without a Service
)

func (p *plan) planWorkloads(r *rng) {
	// CoreDNS first: the cluster-proportional autoscaler's default is one replica per 16 nodes.
	dnsReplicas := int32(min(max(2, p.opts.Nodes/16), MaxReplicas))
	p.addWorkload(wlPlan{ns: nsKubeSystem, name: "coredns", system: true, replicas: dnsReplicas,
		hash: "668d6bf9bc", profile: &dnsProfile, tier: "system", zone: -1, svc: -1, suffixes: newSuffixer(p.seed ^ 1)})

	external := int(float64(p.opts.Services) * pExternal)
	backed := p.opts.Services - external
	stateful := int(float64(backed) * pHeadless)
	workers := int(float64(backed) * pWorkers)
	if need := (p.opts.Pods + MaxReplicas - 1) / MaxReplicas; backed+workers < need {
		workers = need - backed
	}
	shapes := make([]uint8, 0, backed+workers)
	for i := 0; i < backed+workers; i++ {
		switch {
		case i < stateful:
			shapes = append(shapes, shapeStateful)
		case i < backed:
			shapes = append(shapes, shapeService)
		default:
			shapes = append(shapes, shapeWorker)
		}
	}
	for i := len(shapes) - 1; i > 0; i-- { // Fisher–Yates: creation order mixes the shapes
		j := r.intn(i + 1)
		shapes[i], shapes[j] = shapes[j], shapes[i]
	}

	// Sizes: heavy-tailed (Pareto, α=1.1) weights, StatefulSets small, scaled to exactly Pods.
	weights := make([]float64, len(shapes))
	for i, s := range shapes {
		if s == shapeStateful {
			weights[i] = 2 + r.float()
		} else {
			weights[i] = min(1000, math.Pow(1-r.float(), -1/1.1))
		}
	}
	sizes := distribute(r, p.opts.Pods, weights, MaxReplicas)

	used := map[string]bool{} // ns/name
	nApp := len(p.namespaces) - firstAppNamespace
	for i, s := range shapes {
		// Namespaces are unevenly busy: u^1.6 puts more workloads in the first ones.
		ns := int32(firstAppNamespace + int(math.Pow(r.float(), 1.6)*float64(nApp)))
		var name string
		for attempt := 0; ; attempt++ {
			name = subjects[r.intn(len(subjects))] + "-" + roles[r.intn(len(roles))]
			if attempt > 3 {
				name = fmt.Sprintf("%s-%d", name, attempt)
			}
			if key := p.namespaces[ns].name + "/" + name; !used[key] {
				used[key] = true
				break
			}
		}
		w := wlPlan{
			ns: ns, name: name, sts: s == shapeStateful, replicas: int32(sizes[i]),
			hash: r.randString(10), tier: tiers[r.intn(len(tiers))], zone: -1, svc: -1,
			version:  [2]int{r.intn(30), r.intn(10)},
			created:  time.Duration(i+1)*17*time.Second + time.Duration(r.intn(3600))*time.Second,
			suffixes: newSuffixer(r.next()),
		}
		if w.sts {
			w.profile = &statefulProfiles[r.pick(weightsOf(statefulProfiles))]
			w.tier = "data"
		} else {
			w.profile = &deploymentProfiles[r.pick(weightsOf(deploymentProfiles))]
		}
		if r.chance(pZonePinned) {
			w.zone = r.intn(len(p.zones))
		}
		if s != shapeWorker {
			w.svc = 0 // marked; the Service index is set in planServices
		}
		idx := p.addWorkload(w)
		p.appWorkloads = append(p.appWorkloads, idx)
	}
}

func (p *plan) addWorkload(w wlPlan) int32 {
	idx := int32(len(p.workloads))
	if w.sts {
		w.kindIndex = int32(len(p.statefulSets))
		p.statefulSets = append(p.statefulSets, idx)
	} else {
		w.kindIndex = int32(len(p.deployments))
		p.deployments = append(p.deployments, idx)
	}
	p.workloads = append(p.workloads, w)
	p.nsWorkloads[w.ns] = append(p.nsWorkloads[w.ns], idx)
	return idx
}

// distribute splits total into len(weights) integers in [lo, hi] proportional to the weights,
// where lo is 1 when there are enough to go round and 0 otherwise. The sum is exactly total
// (the caller guarantees total ≤ hi·len(weights)).
func distribute(r *rng, total int, weights []float64, hi int) []int {
	n := len(weights)
	out := make([]int, n)
	if n == 0 {
		return out
	}
	lo := 0
	if total >= n {
		lo = 1
	}
	sum := 0.0
	for _, w := range weights {
		sum += w
	}
	got := 0
	for i, w := range weights {
		out[i] = min(hi, max(lo, int(float64(total)*w/sum)))
		got += out[i]
	}
	// Fix the rounding and clamping error one unit at a time, walking a random permutation
	// so that no index is favoured.
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := r.intn(i + 1)
		order[i], order[j] = order[j], order[i]
	}
	for k := 0; got != total; k = (k + 1) % n {
		i := order[k]
		if got < total && out[i] < hi {
			out[i]++
			got++
		} else if got > total && out[i] > lo {
			out[i]--
			got--
		}
	}
	return out
}

// scheduler places pods on nodes with free capacity, uniformly at random, in O(1) per pod:
// it keeps the non-full nodes of the cluster and of each zone in arrays with swap-removal.
type scheduler struct {
	free     []int32   // non-full nodes
	freeZone [][]int32 // per zone
	posAll   []int32   // node → index in free, -1 if full
	posZone  []int32   // node → index in freeZone[zone]
	load     []int     // application pods per node
	capacity int
}

func newScheduler(p *plan) *scheduler {
	s := &scheduler{freeZone: make([][]int32, len(p.zones)), posAll: make([]int32, len(p.nodes)),
		posZone: make([]int32, len(p.nodes)), load: make([]int, len(p.nodes)), capacity: AppPodsPerNode}
	for i, n := range p.nodes {
		s.posAll[i] = int32(len(s.free))
		s.free = append(s.free, int32(i))
		s.posZone[i] = int32(len(s.freeZone[n.zone]))
		s.freeZone[n.zone] = append(s.freeZone[n.zone], int32(i))
	}
	return s
}

// place returns a node for one pod (restricted to zone unless it is -1), or -1 when full.
func (s *scheduler) place(r *rng, p *plan, zone int) int32 {
	list := s.free
	if zone >= 0 {
		list = s.freeZone[zone]
	}
	if len(list) == 0 {
		return -1
	}
	node := list[r.intn(len(list))]
	s.load[node]++
	if s.load[node] >= s.capacity {
		s.remove(p, node)
	}
	return node
}

func (s *scheduler) remove(p *plan, node int32) {
	i := s.posAll[node]
	last := s.free[len(s.free)-1]
	s.free[i], s.posAll[last] = last, i
	s.free = s.free[:len(s.free)-1]
	z := p.nodes[node].zone
	j := s.posZone[node]
	lastZ := s.freeZone[z][len(s.freeZone[z])-1]
	s.freeZone[z][j], s.posZone[lastZ] = lastZ, j
	s.freeZone[z] = s.freeZone[z][:len(s.freeZone[z])-1]
}

func (p *plan) planPods(r *rng) {
	total := 0
	for _, w := range p.workloads {
		total += int(w.replicas)
	}
	p.pods = make([]podPlan, 0, total)
	sched := newScheduler(p)
	for wi := range p.workloads {
		w := &p.workloads[wi]
		w.firstPod = int32(len(p.pods))
		for k := int32(0); k < w.replicas; k++ {
			pod := podPlan{wl: int32(wi), node: -1}
			switch {
			case w.system:
				// CoreDNS spreads one per node (anti-affinity), outside the application budget.
				pod.node = int32((int(k) * max(1, len(p.nodes)/int(w.replicas))) % len(p.nodes))
			case r.chance(pPending):
				pod.state = podPending
			default:
				pod.node = sched.place(r, p, w.zone)
				if pod.node < 0 {
					pod.state = podPending // the zone (or cluster) is full: Unschedulable
				}
			}
			if pod.node >= 0 {
				n := &p.nodes[pod.node]
				n.pods++
				pod.ip = addrAdd(n.cidr.Addr(), uint32(1+n.pods)) // .1 is the cni0 bridge
				if !w.system && r.chance(pNotReady) {
					pod.state = podNotReady
					pod.restarts = int32(3 + r.intn(40))
				}
			}
			p.pods = append(p.pods, pod)
		}
	}
}

func (p *plan) planServices(r *rng) {
	p.services = append(p.services,
		svcPlan{ns: nsDefault, name: "kubernetes", wl: -1, typ: corev1.ServiceTypeClusterIP, clusterIP: kubernetesVIP,
			profile: &portProfile{ports: []portDef{{name: "https", containerPort: 6443, servicePort: 443, proto: corev1.ProtocolTCP}}}},
		svcPlan{ns: nsKubeSystem, name: "kube-dns", wl: 0, typ: corev1.ServiceTypeClusterIP, clusterIP: kubeDNSVIP, profile: &dnsProfile},
	)
	p.workloads[0].svc = 1

	// ClusterIPs: offset 16+(i·7919+b) mod M walks the Service CIDR in a scrambled order
	// without repeats (7919 is prime and does not divide M = 2^20-32 = 2^5·7·31·151).
	const ipSpace = 1<<20 - 32
	ipB := uint64(r.intn(ipSpace))
	nextIP := 0
	allocIP := func() netip.Addr {
		off := (uint64(nextIP)*7919 + ipB) % ipSpace
		nextIP++
		return addrAdd(serviceCIDR.Addr(), uint32(16+off))
	}
	npStart := r.intn(nodePortCount)
	nodePortsUsed := 0
	allocNodePort := func() (int32, bool) {
		if nodePortsUsed >= nodePortCount {
			return 0, false
		}
		port := nodePortBase + (npStart+nodePortsUsed*nodePortStride)%nodePortCount
		nodePortsUsed++
		return int32(port), true
	}
	lbNext := uint32(10)

	for _, wi := range p.appWorkloads {
		w := &p.workloads[wi]
		if w.svc < 0 {
			continue
		}
		s := svcPlan{ns: w.ns, name: w.name, wl: wi, typ: corev1.ServiceTypeClusterIP, profile: w.profile,
			created: w.created - 5*time.Second}
		if w.sts {
			s.headless = true
		} else {
			s.clusterIP = allocIP()
			x := r.float()
			switch {
			case x < pNodePort:
				s.typ = corev1.ServiceTypeNodePort
			case x < pNodePort+pLoadBalance:
				s.typ = corev1.ServiceTypeLoadBalancer
			}
			if s.typ != corev1.ServiceTypeClusterIP {
				ports := make([]int32, len(s.profile.ports))
				ok := true
				for k := range ports {
					ports[k], ok = allocNodePort()
					if !ok {
						break
					}
				}
				s.etpLocal = r.chance(0.5)
				if ok && s.etpLocal && s.typ == corev1.ServiceTypeLoadBalancer {
					s.healthCheck, ok = allocNodePort()
				}
				if !ok { // the NodePort range is exhausted, as the API server would refuse
					s.typ, s.etpLocal, s.healthCheck = corev1.ServiceTypeClusterIP, false, 0
				} else {
					s.nodePorts = ports
				}
				if s.typ == corev1.ServiceTypeLoadBalancer {
					s.lbIP = addrAdd(lbPool.Addr(), lbNext)
					lbNext++
				}
			}
			s.affinity = r.chance(pAffinity)
			s.preferClose = r.chance(pPreferClose)
			s.itpLocal = r.chance(pITPLocal)
		}
		w.svc = int32(len(p.services))
		p.services = append(p.services, s)
	}
	external := int(float64(p.opts.Services) * pExternal)
	nApp := len(p.namespaces) - firstAppNamespace
	used := map[string]bool{}
	for i := 0; i < external; i++ {
		ns := int32(firstAppNamespace + r.intn(nApp))
		subject := subjects[r.intn(len(subjects))]
		name := subject + "-external"
		for k := 2; used[p.namespaces[ns].name+"/"+name]; k++ {
			name = fmt.Sprintf("%s-external-%d", subject, k)
		}
		used[p.namespaces[ns].name+"/"+name] = true
		p.services = append(p.services, svcPlan{ns: ns, name: name, wl: -1, typ: corev1.ServiceTypeExternalName,
			externalName: fmt.Sprintf("api.%s.example.com", subject), created: time.Duration(i) * time.Minute})
	}
}

func (p *plan) planSlices() {
	n := len(apiServerIPs)
	if len(p.nodes) < 3 {
		n = 1
	}
	p.slices = append(p.slices, slicePlan{svc: 0, addrs: apiServerIPs[:n]})
	for si, s := range p.services {
		if s.wl < 0 {
			continue
		}
		w := p.workloads[s.wl]
		var eps []int32
		for k := w.firstPod; k < w.firstPod+w.replicas; k++ {
			if p.pods[k].node >= 0 {
				eps = append(eps, k)
			}
		}
		chunk := 0
		for len(eps) > MaxEndpointsPerSlice {
			p.slices = append(p.slices, slicePlan{svc: int32(si), chunk: chunk, pods: eps[:MaxEndpointsPerSlice:MaxEndpointsPerSlice]})
			eps = eps[MaxEndpointsPerSlice:]
			chunk++
		}
		// A selector Service with no scheduled pod still gets one empty slice, as the controller does.
		p.slices = append(p.slices, slicePlan{svc: int32(si), chunk: chunk, pods: eps})
	}
}

func (p *plan) planPolicies(r *rng) {
	names := map[string]bool{}
	add := func(pol polPlan, base string) {
		name := base
		for k := 2; names[p.namespaces[pol.ns].name+"/"+name]; k++ {
			name = fmt.Sprintf("%s-%d", base, k)
		}
		names[p.namespaces[pol.ns].name+"/"+name] = true
		pol.name = name
		pol.created = time.Duration(len(p.policies)) * 23 * time.Second
		p.policies = append(p.policies, pol)
	}
	nApp := len(p.namespaces) - firstAppNamespace
	denied := make([]bool, len(p.namespaces))
	deniedCount := 0
	// Only workloads with a Service are policy targets: that is where traffic goes.
	var targets []int32
	for _, wi := range p.appWorkloads {
		if p.workloads[wi].svc >= 0 {
			targets = append(targets, wi)
		}
	}
	weights := []int{
		polDefaultDenyIngress: 14, polDefaultDenyAll: 4, polAllowDNSNamespace: 0, polTierToTier: 30,
		polCrossNamespace: 14, polEgressDNS: 10, polIPBlock: 8, polEgressInternet: 5, polEndPort: 5, polEnvSelector: 7,
	}
	for len(p.policies) < p.opts.Policies {
		kind := polKind(r.pick(weights))
		if len(targets) == 0 && kind >= polTierToTier {
			kind = polDefaultDenyIngress
		}
		if (kind == polDefaultDenyIngress || kind == polDefaultDenyAll) && deniedCount == nApp {
			if len(targets) == 0 {
				kind = polAllowDNSNamespace // nothing else left to say about empty namespaces
			} else {
				kind = polTierToTier
			}
		}
		switch kind {
		case polDefaultDenyIngress, polDefaultDenyAll, polAllowDNSNamespace:
			ns := int32(firstAppNamespace + r.intn(nApp))
			if kind != polAllowDNSNamespace {
				for denied[ns] { // the next namespace without a default deny
					ns = int32(firstAppNamespace + (int(ns)-firstAppNamespace+1)%nApp)
				}
				denied[ns] = true
				deniedCount++
			}
			switch kind {
			case polDefaultDenyIngress:
				add(polPlan{ns: ns, kind: kind, target: -1, peer: -1}, "default-deny-ingress")
			case polDefaultDenyAll:
				add(polPlan{ns: ns, kind: kind, target: -1, peer: -1}, "default-deny-all")
				if len(p.policies) < p.opts.Policies { // its companion: without DNS nothing works
					add(polPlan{ns: ns, kind: polAllowDNSNamespace, target: -1, peer: -1}, "allow-dns-egress")
				}
			default:
				add(polPlan{ns: ns, kind: kind, target: -1, peer: -1}, "allow-dns-egress")
			}
			continue
		}
		t := targets[r.intn(len(targets))]
		tw := p.workloads[t]
		pol := polPlan{ns: tw.ns, kind: kind, target: t, peer: -1, byName: r.chance(0.3)}
		switch kind {
		case polTierToTier:
			same := p.nsWorkloads[tw.ns]
			j := r.intn(len(same))
			if same[j] == t { // not itself, when there is another
				j = (j + 1) % len(same)
			}
			pol.peer = same[j]
			add(pol, fmt.Sprintf("allow-%s-to-%s", p.workloads[pol.peer].name, tw.name))
		case polCrossNamespace:
			pol.peer = p.appWorkloads[r.intn(len(p.appWorkloads))]
			add(pol, fmt.Sprintf("allow-%s-from-%s", tw.name, p.namespaces[p.workloads[pol.peer].ns].name))
		case polEgressDNS:
			pol.peer = targets[r.intn(len(targets))]
			add(pol, tw.name+"-egress")
		case polIPBlock:
			add(pol, tw.name+"-allow-vpc")
		case polEgressInternet:
			add(pol, tw.name+"-egress-internet")
		case polEndPort:
			add(pol, tw.name+"-egress-nodeports")
		case polEnvSelector:
			add(pol, tw.name+"-allow-prod-web")
		}
	}
}
