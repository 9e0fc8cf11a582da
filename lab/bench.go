package lab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/latency"
)

// BenchOptions size `lab bench`.
type BenchOptions struct {
	// Services are the Service counts at which DNAT is measured in both modes (default 1000 and 5000).
	Services []int
	// Samples per measurement (default 2000 for echoes, 300 for connections).
	Samples int
	Log     io.Writer
}

// BenchResult is one measurement.
type BenchResult struct {
	Name   string        `json:"name"`
	Median time.Duration `json:"median_ns"`
	N      int           `json:"samples"`
	How    string        `json:"how"`
}

// BenchReport is what `lab bench` measured and the calibration it derives.
type BenchReport struct {
	Machine     string              `json:"machine"`
	Results     []BenchResult       `json:"results"`
	Calibration latency.Calibration `json:"calibration"`
	Notes       []string            `json:"notes"`
}

const benchPort = 7777

// benchSnapshot is a two-node flannel-VXLAN cluster with three pods (a and b on n1, c on n2) and n ClusterIP
// Services, all with b as their only endpoint, written as manifests so the lab builds it like any input.
func benchSnapshot(n int, mode kubeproxy.Mode) (*cluster.Snapshot, error) {
	var b strings.Builder
	node := func(name, ip, cidr string) {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Node\nmetadata: {name: %s}\nspec: {podCIDR: %s, podCIDRs: [%s]}\nstatus: {addresses: [{type: InternalIP, address: %s}]}\n", name, cidr, cidr, ip)
	}
	pod := func(name, nodeName, ip string) {
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Pod\nmetadata: {name: %s, namespace: bench, labels: {app: %s}}\nspec: {nodeName: %s, containers: [{name: c, image: x}]}\nstatus: {phase: Running, podIP: %s, hostIP: 1.1.1.1, conditions: [{type: Ready, status: \"True\"}]}\n", name, name, nodeName, ip)
	}
	b.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: bench}\n")
	node("n1", "172.31.0.11", "10.250.1.0/24")
	node("n2", "172.31.0.12", "10.250.2.0/24")
	pod("a", "n1", "10.250.1.2")
	pod("b", "n1", "10.250.1.3")
	pod("c", "n2", "10.250.2.2")
	for i := 0; i < n; i++ {
		ip := netip.AddrFrom4([4]byte{10, 100, byte(i >> 8), byte(i)})
		fmt.Fprintf(&b, "---\napiVersion: v1\nkind: Service\nmetadata: {name: s%05d, namespace: bench}\nspec: {clusterIP: %s, clusterIPs: [%s], ports: [{name: p, port: %d, protocol: TCP}]}\n", i, ip, ip, benchPort)
		fmt.Fprintf(&b, "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: s%05d-x, namespace: bench, labels: {kubernetes.io/service-name: s%05d}}\naddressType: IPv4\nendpoints: [{addresses: [10.250.1.3], conditions: {ready: true}, nodeName: n1}]\nports: [{name: p, port: %d, protocol: TCP}]\n", i, i, benchPort)
	}
	return cluster.Load([]cluster.Source{cluster.BytesSource("bench.yaml", []byte(b.String()))},
		cluster.Options{Overrides: cluster.Overrides{ProxyMode: string(mode), CNI: "flannel-vxlan", PodCIDR: "10.250.0.0/16", ServiceCIDR: "10.100.0.0/16"}})
}

// Bench measures per-hop costs on this kernel inside throwaway labs and derives a latency calibration.
func Bench(ctx context.Context, opt BenchOptions) (*BenchReport, error) {
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if len(opt.Services) == 0 {
		opt.Services = []int{1000, 5000}
	}
	if opt.Samples == 0 {
		opt.Samples = 2000
	}
	logw := opt.Log
	if logw == nil {
		logw = io.Discard
	}
	feat := DetectFeatures()
	rep := &BenchReport{Machine: fmt.Sprintf("%d CPU, Linux %s", runtime.NumCPU(), feat.Kernel)}
	if h, err := os.Hostname(); err == nil {
		rep.Machine = h + ": " + rep.Machine
	}
	add := func(r BenchResult) {
		rep.Results = append(rep.Results, r)
		fmt.Fprintf(logw, "  %-40s %10s  (median of %d) %s\n", r.Name, r.Median, r.N, r.How)
	}
	// Paths: veth, bridge, VXLAN — in a small nftables lab.
	st, err := benchLab(ctx, 1, kubeproxy.ModeNFTables)
	if err != nil {
		return nil, err
	}
	p := st.Plan
	a, bb, c := p.Pod("bench/a"), p.Pod("bench/b"), p.Pod("bench/c")
	n1, n2 := p.Node("n1"), p.Node("n2")
	closers, err := benchListeners([]string{bb.NS, c.NS, n1.NS, n2.NS})
	if err != nil {
		Down(ctx, st)
		return nil, err
	}
	podNode := udpRTT(a.NS, n1.BridgeIP, opt.Samples)
	add(BenchResult{"pod → own node (veth)", podNode / 2, opt.Samples, "UDP echo a → cni0 address, RTT/2"})
	same := udpRTT(a.NS, bb.IP, opt.Samples)
	add(BenchResult{"pod → pod same node (veth+bridge+veth)", same / 2, opt.Samples, "UDP echo a → b, RTT/2"})
	cross := udpRTT(a.NS, c.IP, opt.Samples)
	add(BenchResult{"pod → pod other node (VXLAN)", cross / 2, opt.Samples, "UDP echo a → c over flannel.1, RTT/2"})
	n2n := udpRTT(n1.NS, n2.IP, opt.Samples)
	add(BenchResult{"node → node (lab underlay)", n2n / 2, opt.Samples, "UDP echo n1 → n2 over the underlay bridge, RTT/2"})
	direct := tcpConnect(a.NS, netip.AddrPortFrom(bb.IP, benchPort), opt.Samples/4)
	add(BenchResult{"TCP connect pod → pod IP (no DNAT)", direct, opt.Samples / 4, "new connection each time: SYN → SYN/ACK"})
	for _, c := range closers {
		c.Close()
	}
	Down(ctx, st)
	veth := podNode / 2
	bridge := max(0, same/2-veth)
	vx := max(0, cross/2-same/2)
	cal := latency.Calibration{Schema: latency.SchemaV1, Measured: time.Now().Format("2006-01-02"), Machine: rep.Machine, Constants: map[string]latency.CalibrationEntry{}}
	cal.Constants["veth_hop"] = latency.Entry(veth, "kpath lab bench: UDP echo from a pod netns to its node's cni0 address, RTT/2, median", "", "")
	cal.Constants["bridge_hop"] = latency.Entry(bridge, "kpath lab bench: (UDP echo pod→pod same node)/2 − (pod→own node)/2: the marginal cost of the bridge and the second veth, medians", "", "")
	cal.Constants["vxlan_encap"] = latency.Entry(vx, "kpath lab bench: (UDP echo pod→pod across nodes)/2 − (pod→pod same node)/2: VXLAN encap+decap plus the lab underlay (veth+bridge+veth between node netns), medians", "", "")
	// DNAT: new connections to a ClusterIP vs to the pod IP, per mode and Service count.
	for _, n := range opt.Services {
		for _, mode := range []kubeproxy.Mode{kubeproxy.ModeNFTables, kubeproxy.ModeIPTables} {
			t0 := time.Now()
			st, err := benchLab(ctx, n, mode)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(logw, "  (%s lab with %d Services built in %s)\n", mode, n, time.Since(t0).Round(time.Millisecond))
			p := st.Plan
			a, bb := p.Pod("bench/a"), p.Pod("bench/b")
			cl, err := benchListeners([]string{bb.NS})
			if err != nil {
				Down(ctx, st)
				return nil, err
			}
			samples := opt.Samples / 2
			lastIP := netip.AddrFrom4([4]byte{10, 100, byte((n - 1) >> 8), byte(n - 1)})
			// Interleaved, so drift on a shared machine hits the three alike.
			ds := tcpConnects(a.NS, []netip.AddrPort{netip.AddrPortFrom(bb.IP, benchPort),
				netip.AddrPortFrom(netip.MustParseAddr("10.100.0.0"), benchPort), netip.AddrPortFrom(lastIP, benchPort)}, samples)
			d0, first, last := ds[0], ds[1], ds[2]
			add(BenchResult{fmt.Sprintf("%s DNAT, %d Services, first Service", mode, n), first - d0, samples, "connect to ClusterIP − connect to pod IP"})
			add(BenchResult{fmt.Sprintf("%s DNAT, %d Services, last Service", mode, n), last - d0, samples, "connect to ClusterIP − connect to pod IP"})
			for _, c := range cl {
				c.Close()
			}
			Down(ctx, st)
			if mode == kubeproxy.ModeNFTables && n == opt.Services[len(opt.Services)-1] {
				v := max(0, (first+last)/2-d0)
				cal.Constants["nftables_lookup"] = latency.Entry(v, fmt.Sprintf("kpath lab bench: new TCP connection to a ClusterIP minus to the pod IP, %d Services, nftables, medians (includes conntrack NAT setup)", n), "", "")
			}
			if mode == kubeproxy.ModeIPTables && n == opt.Services[len(opt.Services)-1] && n > 1 {
				per := (last - first) / time.Duration(n-1)
				cal.Constants["iptables_rule"] = latency.Entry(max(0, per), fmt.Sprintf("kpath lab bench: (connect to the last − the first of %d Services in KUBE-SERVICES) / %d rules, iptables-nft, medians", n, n-1), "", "")
			}
		}
	}
	rep.Calibration = cal
	rep.Notes = append(rep.Notes, "medians on a shared machine: rerun on an idle one before trusting small differences",
		"underlay (node→node) is the lab's veth+bridge, not a real network: not calibrated")
	return rep, nil
}

func benchLab(ctx context.Context, services int, mode kubeproxy.Mode) (*State, error) {
	snap, err := benchSnapshot(services, mode)
	if err != nil {
		return nil, err
	}
	return Up(ctx, snap, Options{Name: fmt.Sprintf("bench%d", os.Getpid()%100000), Mode: mode, NoPolicy: true})
}

// benchListeners opens a UDP echo and a TCP accept-and-close server on benchPort in each namespace.
func benchListeners(nss []string) ([]io.Closer, error) {
	var cs []io.Closer
	for _, ns := range nss {
		err := inNetns(ns, func() error {
			pc, err := net.ListenPacket("udp4", fmt.Sprintf(":%d", benchPort))
			if err != nil {
				return err
			}
			l, err := net.Listen("tcp4", fmt.Sprintf(":%d", benchPort))
			if err != nil {
				pc.Close()
				return err
			}
			cs = append(cs, pc, l)
			go serveUDPEcho(pc, "b")
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
			return nil
		})
		if err != nil {
			for _, c := range cs {
				c.Close()
			}
			return nil, err
		}
	}
	return cs, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

// udpRTT is the median round trip of a UDP echo from namespace ns.
func udpRTT(ns string, dst netip.Addr, n int) time.Duration {
	var conn net.Conn
	if err := inNetns(ns, func() error {
		var err error
		conn, err = net.Dial("udp4", netip.AddrPortFrom(dst, benchPort).String())
		return err
	}); err != nil {
		return 0
	}
	defer conn.Close()
	buf := make([]byte, 64)
	var ds []time.Duration
	for i := 0; i < n+50; i++ {
		conn.SetDeadline(time.Now().Add(time.Second))
		t := time.Now()
		if _, err := conn.Write([]byte("x")); err != nil {
			continue
		}
		if _, err := conn.Read(buf); err != nil {
			continue
		}
		if i >= 50 { // warm-up: ARP, conntrack, caches
			ds = append(ds, time.Since(t))
		}
	}
	return median(ds)
}

// tcpConnects measures new connections to each destination in turn, n rounds, and returns each median.
func tcpConnects(ns string, dsts []netip.AddrPort, n int) []time.Duration {
	all := make([][]time.Duration, len(dsts))
	for i := 0; i < n+10; i++ {
		for j, dst := range dsts {
			var d time.Duration
			err := inNetns(ns, func() error {
				t := time.Now()
				c, err := net.DialTimeout("tcp4", dst.String(), time.Second)
				d = time.Since(t)
				if err == nil {
					c.Close()
				}
				return err
			})
			if err == nil && i >= 10 {
				all[j] = append(all[j], d)
			}
		}
	}
	out := make([]time.Duration, len(dsts))
	for j := range all {
		out[j] = median(all[j])
	}
	return out
}

// tcpConnect is the median time of a new TCP connection (SYN → SYN/ACK) from namespace ns.
func tcpConnect(ns string, dst netip.AddrPort, n int) time.Duration {
	var ds []time.Duration
	for i := 0; i < n+10; i++ {
		var c net.Conn
		var d time.Duration
		err := inNetns(ns, func() error {
			t := time.Now()
			var err error
			c, err = net.DialTimeout("tcp4", dst.String(), time.Second)
			d = time.Since(t)
			return err
		})
		if err != nil {
			continue
		}
		c.Close()
		if i >= 10 {
			ds = append(ds, d)
		}
	}
	return median(ds)
}
