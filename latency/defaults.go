package latency

import "time"

// Sources cited by more than one constant.
var (
	srcDaoCloud = Source{
		Citation: "DaoCloud CNI performance test report",
		URL:      "https://github.com/DaoCloud/DaoCloud-docs/blob/main/docs/en/docs/network/performance/cni-performance.md",
		Setup: "netperf TCP_RR, 1024-byte request/response, 60 s, mean round-trip latency in µs; two Dell PowerEdge R620 " +
			"(2× Xeon E5-2620 @ 2.0 GHz), Mellanox ConnectX-5, Ubuntu 22.04; Calico (default dataplane) in underlay, " +
			"VXLAN and IPIP modes, Cilium VXLAN, macvlan. Node↔node 113.27 µs; Calico underlay: pod↔own node 62.27, " +
			"pod↔pod same node 103.71, pod↔pod across nodes 195.61; Calico IPIP across nodes 248.72; Calico VXLAN 275.22",
		Date: "2023-03-29",
	}
	srcKEPBlog = Source{
		Citation: "Kubernetes blog \"NFTables mode for kube-proxy\" (Dan Winship), data from KubeCon NA 2024 " +
			"\"From Observability to Performance\"; KEP-3866",
		URL: "https://kubernetes.io/blog/2025/02/28/nftables-kube-proxy/",
		Setup: "first-packet latency of new connections at several percentiles (the text cites p01 and p50) in clusters " +
			"of 5,000, 10,000 and 30,000 Services, " +
			"iptables vs nftables vs IPVS kube-proxy (values published as charts only)",
		Date: "2025-02-28",
	}
	srcLabLesson = Source{
		Citation: "kpath lab lesson (../shared/docs/dependencies.md)",
		Setup: "recorded lesson: \"iptables mode added ~16 ns per Service rule to every new connection, nftables " +
			"stayed flat\", measured with kube-proxy rules for thousands of Services in the kpath lab's network " +
			"namespaces on a machine like the 2-core build machine (the lesson does not record the exact setup)",
	}
)

// Default returns the model with every constant at its cited default. Each call returns a fresh copy.
func Default() *Model {
	m := defaultModel
	return &m
}

var defaultModel = buildDefault()

func buildDefault() Model {
	m := Model{
		DNSServerCost: Constant{
			Value:   56430 * time.Nanosecond,
			Quality: QualityDerived,
			Source: Source{
				Citation: "CoreDNS \"Scaling CoreDNS in Kubernetes Clusters\"",
				URL:      "https://github.com/coredns/deployment/blob/master/kubernetes/Scaling_CoreDNS.md",
				Setup: "kubernetes/perf-tests/dns (dnsperf) against one CoreDNS (default settings) on a GCE n1-standard-2 " +
					"(2 vCPU), kube-up cluster with kubenet: internal names 33,669 QPS at 2.608 ms average latency, " +
					"both vCPUs pegged (~1900m)",
				Derivation: "CPU time per query without queueing = 1.9 CPU-s/s ÷ 33,669 queries/s = 56.43 µs; the published " +
					"2.6 ms average is queueing at saturation, which this model leaves out",
				Date: "2018-11",
			},
		},
		IPTablesRuleCost: Constant{
			Value:   16 * time.Nanosecond,
			Quality: QualityMeasured,
			Source: withDerivation(srcLabLesson, "iptables mode added ~16 ns per Service rule to every new connection; "+
				"KUBE-SERVICES is walked linearly, so the engine multiplies by the rules walked before the match"),
		},
		NFTablesLookupCost: Constant{
			Value:   200 * time.Nanosecond,
			Quality: QualityPlaceholder,
			Source: withDerivation(srcKEPBlog, "no absolute number in the stored sources. The blog shows the verdict-map "+
				"lookup flat in the number of Services, with nftables p50 about equal to the iptables best case (a "+
				"match in the first rules of KUBE-SERVICES); the kpath lab saw nftables stay flat. 200 ns is the cost of "+
				"walking ~12 iptables rules at 16 ns each: calibrate"),
		},
		IPVSLookupCost: Constant{
			Value:   250 * time.Nanosecond,
			Quality: QualityPlaceholder,
			Source: withDerivation(srcKEPBlog, "the blog states \"the nftables mode has the same performance as IPVS mode "+
				"(actually, slightly better)\": nftables_lookup × 1.25; inherits that constant's uncertainty"),
		},
		EBPFSocketLBCost: Constant{
			Value:   100 * time.Nanosecond,
			Quality: QualityPlaceholder,
			Source: Source{
				Citation: "Cilium documentation, kube-proxy replacement (socket LB)",
				URL:      "https://docs.cilium.io/en/stable/network/kubernetes/kubeproxy-free/",
				Setup: "mechanism only: the service address is translated once in the connect()/sendmsg() socket hook, " +
					"so later packets need no per-packet DNAT",
				Derivation: "no published per-connect number found; one BPF hash-map lookup in the socket hook, taken as half " +
					"of nftables_lookup because it skips the netfilter hook traversal: calibrate",
			},
		},
		ConntrackLookupCost: Constant{
			Value:   200 * time.Nanosecond,
			Quality: QualityPlaceholder,
			Source: Source{
				Citation: "kpath placeholder (no published per-lookup figure found)",
				Setup:    "one nf_conntrack hash lookup on an established flow",
				Derivation: "a single hash-table lookup, of the same order as an nftables verdict-map lookup; set equal to " +
					"nftables_lookup: calibrate (the lab can measure it: conntrack works in its namespaces)",
			},
		},
		VethHopCost: Constant{
			Value:   20720 * time.Nanosecond,
			Quality: QualityDerived,
			Source: withDerivation(srcDaoCloud, "(pod↔pod same node 103.71 − pod↔own node 62.27) ÷ 2 = 20.72 µs: one extra "+
				"veth crossing plus the host's forwarding, per direction. Cross-check: (pod↔pod across nodes 195.61 − "+
				"node↔node 113.27) ÷ 4 = 20.59 µs. Noise: same-node pod↔pod, a path the Calico modes share, reads "+
				"91.44–104.82 µs across modes, so expect several µs either way"),
		},
		BridgeHopCost: Constant{
			Value:   5 * time.Microsecond,
			Quality: QualityPlaceholder,
			Source: Source{
				Citation: "kpath placeholder (no bridge-CNI latency measurement found)",
				Setup:    "L2 forwarding through a Linux bridge (cni bridge, flannel cni0), added to the veth crossings",
				Derivation: "an FDB lookup replaces the routed hop already counted in veth_hop; with br_netfilter on, the " +
					"bridge also runs the iptables hooks. 5 µs, about a quarter of veth_hop: calibrate (the lab has bridges)",
			},
		},
		VXLANEncapCost: Constant{
			Value:   39805 * time.Nanosecond,
			Quality: QualityDerived,
			Source: withDerivation(srcDaoCloud, "(Calico VXLAN 275.22 − Calico underlay 195.61) ÷ 2 = 39.81 µs per one-way "+
				"packet (encap on the sender, decap on the receiver); same CNI, same rules, only the encapsulation differs"),
		},
		GeneveEncapCost: Constant{
			Value:   39805 * time.Nanosecond,
			Quality: QualityPlaceholder,
			Source: withDerivation(srcDaoCloud, "no Geneve measurement found; Geneve and VXLAN are both UDP encapsulations "+
				"on the same kernel path, so this is set equal to vxlan_encap: calibrate (the kpath lab kernel has no geneve)"),
		},
		IPIPEncapCost: Constant{
			Value:   26555 * time.Nanosecond,
			Quality: QualityDerived,
			Source:  withDerivation(srcDaoCloud, "(Calico IPIP 248.72 − Calico underlay 195.61) ÷ 2 = 26.56 µs per one-way packet"),
		},
		WireGuardCost: Constant{
			Value:   50 * time.Microsecond,
			Quality: QualityPlaceholder,
			Source: Source{
				Citation: "WireGuard performance page; Cilium CNI performance benchmark (encryption section)",
				URL:      "https://www.wireguard.com/performance/",
				Setup: "wireguard.com: iperf3 and ping between Core i7-3820QM and i7-5200U laptops over Intel 1 GbE, " +
					"Linux 4.6.1, ChaCha20-Poly1305 (the page calls these benchmarks \"old, crusty, and not super well " +
					"conducted\"); its ping chart is summarized elsewhere as ~0.4 ms through the tunnel (the stored copy " +
					"kpath consulted did not include the chart's numbers), and no unencrypted baseline is published, so " +
					"the tunnel's share cannot be isolated",
				Derivation: "at least a UDP encapsulation (vxlan_encap, 39.8 µs on 2012-era Xeons) plus one AEAD seal/open " +
					"of a small packet per direction: 50 µs: calibrate (the kpath lab kernel has no wireguard)",
			},
		},
		IPsecCost: Constant{
			Value:   45 * time.Microsecond,
			Quality: QualityPlaceholder,
			Source: Source{
				Citation: "Cilium CNI performance benchmark, \"Wireguard vs IPsec\"",
				URL:      "https://docs.cilium.io/en/stable/operations/performance/benchmark/",
				Setup: "netperf TCP_RR, Cilium 1.9.6, AMD Ryzen 9 3950X, Intel E810 100 GbE back-to-back, Linux 5.10: " +
					"\"IPsec is outperforming Wireguard\" in request/response rate (the page suggests AES-NI use by IPsec " +
					"as the likely reason); numbers published as charts only",
				Derivation: "kept slightly below wireguard (45 vs 50 µs) to keep the published order: calibrate (the kpath " +
					"lab kernel has no IPsec ESP)",
			},
		},
		UnderlayCost: Constant{
			Value:   56635 * time.Nanosecond,
			Quality: QualityDerived,
			Source: withDerivation(srcDaoCloud, "node↔node TCP_RR 113.27 µs ÷ 2 = 56.64 µs one way (includes both hosts' "+
				"TCP/IP stacks and one switch hop; cloud VMs in one zone are typically slower)"),
		},
		LinkerdProxyCost: Constant{
			Value:   time.Millisecond,
			Quality: QualityBound,
			Source: Source{
				Citation: "Linkerd blog \"Benchmarking Linkerd and Istio: 2021 Redux\" (William Morgan)",
				URL:      "https://linkerd.io/2021/11/29/linkerd-vs-istio-benchmarks-2021/",
				Setup: "Kinvolk benchmark harness, emojivoto, Linkerd 2.11.1 vs Istio 1.12.0, mTLS on, Kubernetes 1.21.4 " +
					"on Equinix Metal s3.xlarge.x86 (Xeon 4214); at 20 RPS Linkerd's median was 14 ms, 8 ms over a 6 ms " +
					"baseline, for a whole multi-hop request (client-side, not per proxy)",
				Derivation: "footnote 1: \"the median latency of an individual Linkerd proxy is less than a millisecond for " +
					"most types of traffic\"; the model uses that upper bound per proxy traversal. It is not comparable " +
					"with istio_sidecar (different harness): do not read Linkerd > Istio into it",
				Date: "2021-11-29",
			},
		},
		IstioSidecarCost: Constant{
			Value:   114 * time.Microsecond,
			Quality: QualityDerived,
			Source: Source{
				Citation: "Istio docs \"Performance and Scalability\", Istio 1.20",
				URL:      "https://istio.io/v1.20/docs/ops/deployment/performance-and-scalability/",
				Setup: "Istio benchmarks (fortio), http/1.1, 1 kB payload, 1000 rps, 2–64 client connections, 2 proxy " +
					"workers, mTLS, telemetry v2: \"the two proxies add about 0.228 ms and 0.298 ms to the 90th and 99th " +
					"percentile latency\"",
				Derivation: "0.228 ms ÷ 2 proxies = 114 µs per sidecar traversal; this is p90, so the p50 is lower",
				Date:       "2023-11",
			},
		},
		ZtunnelCost: Constant{
			Value:   85 * time.Microsecond,
			Quality: QualityDerived,
			Source: Source{
				Citation: "Istio docs \"Performance and Scalability\", Istio 1.22",
				URL:      "https://istio.io/v1.22/docs/ops/deployment/performance-and-scalability/",
				Setup: "Istio benchmarks (fortio) on the CNCF Community Infrastructure Lab, http/1.1, 1 kB payload, " +
					"1000 rps, 1–64 client connections, 2 proxy workers, mTLS, default ambient mode (L4): \"the two " +
					"ztunnel proxies add about 0.17 ms and 0.20 ms to the 90th and 99th percentile latency\"",
				Derivation: "0.17 ms ÷ 2 ztunnels = 85 µs per ztunnel traversal; p90, so the p50 is lower",
				Date:       "2024-05",
			},
		},
		WaypointCost: Constant{
			Value:   114 * time.Microsecond,
			Quality: QualityPlaceholder,
			Source: Source{
				Citation: "Istio docs \"Performance and Scalability\", Istio 1.22 (ambient L4+L7 series)",
				URL:      "https://istio.io/v1.22/docs/ops/deployment/performance-and-scalability/",
				Setup: "the ambient \"L4+L7\" (waypoint) results are published only as charts " +
					"(istio-1.22.0-fortio-90.png), not readable as numbers",
				Derivation: "a waypoint is an Envoy doing the same L7 work as a sidecar, so it is set equal to istio_sidecar " +
					"(114 µs, p90); the extra network hop to the waypoint pod is costed by the engine's own hops: calibrate",
			},
		},
	}
	m.relabel()
	return m
}

func withDerivation(s Source, d string) Source {
	s.Derivation = d
	return s
}
