package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/mesh/capture"
	"github.com/kpath/kpath/netfilter"
	"github.com/kpath/kpath/trace"
)

// Schemas of `kpath rules` and `kpath rules trace` in JSON/YAML (documented in docs/rules.md).
const (
	RulesSchema      = "kpath.dev/rules/v1"
	RulesTraceSchema = "kpath.dev/rules-trace/v1"
)

// NodeRulesReport is what `kpath rules node/NAME -o json` prints.
type NodeRulesReport struct {
	Schema string `json:"schema"`
	Node   string `json:"node"`
	Mode   string `json:"mode"` // nftables | iptables
	// Ruleset is the exact text: an `nft -f` script or `iptables-restore` input.
	Ruleset string `json:"ruleset"`
	// Services is the number of Services with rules on the node; ServicePorts counts their ports (kube-proxy's
	// unit); Endpoints is the number of distinct endpoint addresses (ip:port) the rules can DNAT to.
	Services     int      `json:"services"`
	ServicePorts int      `json:"servicePorts"`
	Endpoints    int      `json:"endpoints"`
	Notes        []string `json:"notes,omitempty"` // objects kube-proxy would skip, and why
}

// PodRulesReport is what `kpath rules pod/NS/NAME -o json` prints.
type PodRulesReport struct {
	Schema   string             `json:"schema"`
	Pod      string             `json:"pod"`
	Mesh     string             `json:"mesh,omitempty"` // linkerd | istio-sidecar | istio-ambient
	Captured bool               `json:"captured"`
	Reason   string             `json:"reason,omitempty"` // why the pod is not captured
	Mode     string             `json:"mode,omitempty"`
	Ruleset  string             `json:"ruleset,omitempty"`
	Evidence []capture.Evidence `json:"evidence"`
}

// RulesTraceReport is what `kpath rules trace -o json` prints.
type RulesTraceReport struct {
	Schema   string               `json:"schema"`
	Sources  []RulesetSource      `json:"sources"`
	Packet   string               `json:"packet"`
	Verdict  string               `json:"verdict"` // accept | drop | reject | unknown
	Why      string               `json:"why"`
	Branches []RulesTraceBranch   `json:"branches"`
	Notes    []string             `json:"notes,omitempty"`
	Problems []RulesTraceProblem  `json:"problems"`
	Assumed  []string             `json:"assumed,omitempty"` // node model guesses (rendered rulesets only)
	Node     *RulesTraceNodeModel `json:"node,omitempty"`
}

// RulesetSource names one parsed input.
type RulesetSource struct {
	Name   string `json:"name"`   // file name, "-" for stdin, or "node/NAME (rendered)"
	Format string `json:"format"` // nft | nft-json | iptables
}

// RulesTraceBranch is one possible fate of the packet.
type RulesTraceBranch struct {
	Probability float64         `json:"probability"`
	Verdict     string          `json:"verdict"`
	Summary     string          `json:"summary"`
	Delivery    string          `json:"delivery,omitempty"` // local | out
	Packet      string          `json:"packet"`             // after the walk: NAT applied
	DNAT        bool            `json:"dnat"`
	SNAT        bool            `json:"snat"`
	Masquerade  bool            `json:"masquerade"`
	Unknown     string          `json:"unknown,omitempty"`
	Hits        []RulesTraceHit `json:"hits"`
}

// RulesTraceHit is one rule (or base-chain policy) the packet met, like a line of `nft monitor trace`.
type RulesTraceHit struct {
	Hook    string `json:"hook"`
	Family  string `json:"family"`
	Table   string `json:"table"`
	Chain   string `json:"chain"`
	Rule    string `json:"rule,omitempty"` // empty for a policy
	Verdict string `json:"verdict"`
	Line    int    `json:"line,omitempty"`
	Handle  uint64 `json:"handle,omitempty"`
	Note    string `json:"note,omitempty"`
}

// RulesTraceProblem is a line of the input the parser did not understand.
type RulesTraceProblem struct {
	Source string `json:"source"`
	Line   int    `json:"line,omitempty"`
	Where  string `json:"where,omitempty"`
	Text   string `json:"text"`
	Reason string `json:"reason"`
}

// RulesTraceNodeModel is what the walk knew about the machine.
type RulesTraceNodeModel struct {
	LocalAddrs []string          `json:"localAddrs"`
	Routes     []string          `json:"routes,omitempty"`
	IfAddrs    map[string]string `json:"ifAddrs,omitempty"`
}

func newRulesCmd(g *globals) *cobra.Command {
	var mode string
	cmd := &cobra.Command{
		Use:   "rules node/NAME | pod/NS/NAME",
		Short: "Print the exact netfilter rules kube-proxy programs on a node, or a mesh init container in a pod",
		Long: `Print the exact rules, in a form the real tools load:

  node/NAME     the complete ruleset kube-proxy (upstream behaviour) programs on that node for the snapshot:
                nftables mode as an 'nft -f' script (table ip kube-proxy), iptables mode as iptables-save text
                (filter and nat tables). The mode follows the detected profile unless --mode says otherwise.
  pod/NS/NAME   the interception rules the pod's mesh init container (Linkerd proxy-init, Istio istio-iptables /
                istio-nftables, Istio ambient's CNI agent) installs in the pod's network namespace, derived from
                the pod's and namespace's annotations as the injector does. A pod without interception prints
                "not meshed: <why>" and exits 0; -v prints where every setting came from on stderr.

See 'kpath rules trace' to walk a packet through these rules, or through a dump from a real node.`,
		Example: `  kpath rules --demo node/kpath-worker
  kpath rules --demo node/kpath-worker --mode iptables > rules.txt && iptables-restore --test rules.txt
  kpath rules -f cluster.yaml pod/shop/cart-7d9f -v
  kpath rules --demo node/kpath-worker -o json | jq -r .ruleset | nft -c -f -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := parseRulesMode(mode)
			if err != nil {
				return err
			}
			kind, ns, name, err := parseRulesTarget(args[0])
			if err != nil {
				return err
			}
			snap, err := g.load()
			if err != nil {
				return err
			}
			g.reportDiagnostics(snap)
			if kind == "pod" {
				return g.podRules(snap, ns, name, m)
			}
			return g.nodeRules(snap, name, m)
		},
	}
	cmd.Flags().StringVar(&mode, "mode", "", "rule dialect: nftables|iptables (default: the profile's kube-proxy mode; for pods, what the init tool uses)")
	cmd.AddCommand(newRulesTraceCmd(g))
	return cmd
}

func parseRulesMode(s string) (kubeproxy.Mode, error) {
	switch s {
	case "":
		return "", nil
	case "nftables", "nft":
		return kubeproxy.ModeNFTables, nil
	case "iptables":
		return kubeproxy.ModeIPTables, nil
	}
	return "", usageErr("--mode %q: want nftables or iptables", s)
}

// parseRulesTarget reads node/NAME or pod/NS/NAME.
func parseRulesTarget(s string) (kind, ns, name string, err error) {
	parts := strings.Split(s, "/")
	switch {
	case len(parts) == 2 && (parts[0] == "node" || parts[0] == "nodes" || parts[0] == "no") && parts[1] != "":
		return "node", "", parts[1], nil
	case len(parts) == 3 && (parts[0] == "pod" || parts[0] == "pods" || parts[0] == "po") && parts[1] != "" && parts[2] != "":
		return "pod", parts[1], parts[2], nil
	}
	return "", "", "", usageErr("%q: want node/NAME or pod/NAMESPACE/NAME", s)
}

// nodeFor finds a node or says which exist.
func nodeFor(snap *cluster.Snapshot, name string) (*corev1.Node, error) {
	if n := snap.Node(name); n != nil {
		return n, nil
	}
	var names []string
	for _, n := range snap.Nodes {
		names = append(names, n.Name)
	}
	if len(names) == 0 {
		return nil, usageErr("node %q: the input has no nodes", name)
	}
	return nil, usageErr("node %q not found; nodes: %s", name, strings.Join(names, ", "))
}

// nodeRulesMode is --mode, else the profile's mode when kube-proxy renders netfilter rules in it.
func nodeRulesMode(snap *cluster.Snapshot, m kubeproxy.Mode) (kubeproxy.Mode, error) {
	if m != "" {
		return m, nil
	}
	switch snap.Profile.ProxyMode {
	case cluster.ProxyNFTables:
		return kubeproxy.ModeNFTables, nil
	case cluster.ProxyIPTables:
		return kubeproxy.ModeIPTables, nil
	}
	return "", &exitError{ExitUnknown, fmt.Errorf("the profile's Service proxy is %s, whose rules kpath does not render (it renders kube-proxy's nftables and iptables modes): pass --mode nftables|iptables to see what kube-proxy would program in that mode",
		snap.Profile.ProxyMode)}
}

func (g *globals) nodeRules(snap *cluster.Snapshot, name string, m kubeproxy.Mode) error {
	n, err := nodeFor(snap, name)
	if err != nil {
		return err
	}
	if m, err = nodeRulesMode(snap, m); err != nil {
		return err
	}
	nr, err := trace.RenderNodeRules(snap, n, m)
	if err != nil {
		return &exitError{ExitError, err}
	}
	r := NodeRulesReport{Schema: RulesSchema, Node: n.Name, Mode: string(nr.Mode), Ruleset: nr.Text, Notes: nr.Index.Notes}
	svcs, eps := map[string]bool{}, map[string]bool{}
	for _, p := range nr.Index.Ports {
		svcs[p.Namespace+"/"+p.Name] = true
		for _, e := range p.Reachable {
			eps[e.String()] = true
		}
	}
	r.Services, r.ServicePorts, r.Endpoints = len(svcs), len(nr.Index.Ports), len(eps)
	if g.output == "json" || g.output == "yaml" {
		return writeStructured(g.stdout, g.output, r)
	}
	for _, note := range r.Notes {
		fmt.Fprintf(g.stderr, "kpath: kube-proxy skips: %s\n", note)
	}
	load := "nft -f FILE"
	if nr.Mode == kubeproxy.ModeIPTables {
		load = "iptables-restore FILE"
	}
	// stdout is exactly the ruleset (line numbers match what `kpath rules trace` quotes); the summary goes to stderr.
	fmt.Fprintf(g.stderr, "kpath: kube-proxy %s rules for node %s (%s): %d Service(s), %d service port(s), %d endpoint(s); load with: %s\n",
		nr.Mode, n.Name, cluster.NodeIP(n), r.Services, r.ServicePorts, r.Endpoints, load)
	_, err = io.WriteString(g.stdout, nr.Text)
	return err
}

// ---- pods ----

// podMesh decides which mesh's injector applies to pod and with which defaults: the pod's own proxy or init
// container first, then its (or its namespace's) injection opt-in, then the profile's mesh. It returns "" and the
// reason when none applies.
func podMesh(snap *cluster.Snapshot, pod *corev1.Pod, ns *corev1.Namespace) (cluster.Mesh, string) {
	for _, c := range append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...) {
		switch c.Name {
		case "linkerd-proxy", "linkerd-init", "linkerd-network-validator":
			return cluster.MeshLinkerd, "container " + c.Name
		case "istio-proxy", "istio-init", "istio-validation":
			return cluster.MeshIstioSidecar, "container " + c.Name
		}
	}
	get := func(m map[string]string, k string) (string, bool) { v, ok := m[k]; return v, ok }
	if v, ok := get(pod.Annotations, capture.AnnoLinkerdInject); ok {
		return cluster.MeshLinkerd, "pod annotation " + capture.AnnoLinkerdInject + "=" + v
	}
	if v, ok := get(pod.Labels, "istio.io/dataplane-mode"); ok {
		if v == "ambient" {
			return cluster.MeshIstioAmbient, "pod label istio.io/dataplane-mode=ambient"
		}
		return "", "pod label istio.io/dataplane-mode=" + v + " opts the pod out of ambient"
	}
	for _, m := range []map[string]string{pod.Labels, pod.Annotations} {
		if v, ok := get(m, capture.AnnoIstioInject); ok {
			return cluster.MeshIstioSidecar, capture.AnnoIstioInject + "=" + v + " on the pod"
		}
	}
	if ns != nil {
		if v, ok := get(ns.Annotations, capture.AnnoLinkerdInject); ok {
			return cluster.MeshLinkerd, "namespace annotation " + capture.AnnoLinkerdInject + "=" + v
		}
		if ns.Labels["istio.io/dataplane-mode"] == "ambient" {
			return cluster.MeshIstioAmbient, "namespace label istio.io/dataplane-mode=ambient"
		}
		switch v := ns.Labels["istio-injection"]; v {
		case "enabled":
			return cluster.MeshIstioSidecar, "namespace label istio-injection=enabled"
		case "":
		default:
			return "", "namespace " + ns.Name + " has label istio-injection=" + v
		}
		if r := ns.Labels["istio.io/rev"]; r != "" {
			return cluster.MeshIstioSidecar, "namespace label istio.io/rev=" + r
		}
	}
	// A control plane alone meshes nothing (injection is opt-in); only --mesh forces it: "what would injection install".
	if e, ok := snap.Profile.Setting("mesh"); ok && e.How == cluster.FromOverride &&
		(snap.Profile.Mesh == cluster.MeshLinkerd || snap.Profile.Mesh == cluster.MeshIstioSidecar) {
		return snap.Profile.Mesh, "--mesh " + string(snap.Profile.Mesh) + " (as if the pod were injected)"
	}
	switch snap.Profile.Mesh {
	case cluster.MeshLinkerd, cluster.MeshIstioSidecar:
		return "", "no proxy container or injection opt-in on the pod or its namespace (the cluster runs " + string(snap.Profile.Mesh) + ", but injection is opt-in)"
	case cluster.MeshNone, "":
		return "", "no Linkerd or Istio proxy container, injection annotation or namespace opt-in, and the cluster has no mesh"
	}
	return "", fmt.Sprintf("the cluster's mesh is %s, which installs no per-pod interception rules kpath renders", snap.Profile.Mesh)
}

func (g *globals) podRules(snap *cluster.Snapshot, nsName, name string, m kubeproxy.Mode) error {
	r, err := buildPodRules(snap, nsName, name, m)
	if err != nil {
		return err
	}
	structured := g.output == "json" || g.output == "yaml"
	if g.verbose > 0 && !structured {
		for _, e := range r.Evidence {
			fmt.Fprintf(g.stderr, "evidence: %s\n", e)
		}
	}
	if structured {
		return writeStructured(g.stdout, g.output, r)
	}
	if !r.Captured {
		fmt.Fprintf(g.stdout, "not meshed: %s\n", r.Reason)
		return nil
	}
	load := "nft -f FILE"
	if r.Mode == string(kubeproxy.ModeIPTables) {
		load = "iptables-restore --noflush FILE"
	}
	fmt.Fprintf(g.stderr, "kpath: %s interception rules in the network namespace of pod %s (%s); load with: %s\n", r.Mesh, r.Pod, r.Evidence[0].Why, load)
	_, err = io.WriteString(g.stdout, r.Ruleset)
	return err
}

// buildPodRules resolves the pod's mesh interception and renders its rules. A pod without interception is a
// finding (Captured false, Reason set), not an error.
func buildPodRules(snap *cluster.Snapshot, nsName, name string, m kubeproxy.Mode) (PodRulesReport, error) {
	r := PodRulesReport{Schema: RulesSchema, Pod: nsName + "/" + name, Evidence: []capture.Evidence{}}
	pod := snap.Pod(nsName, name)
	if pod == nil {
		var names []string
		for _, p := range snap.PodsIn(nsName) {
			names = append(names, p.Name)
		}
		if len(names) == 0 {
			return r, usageErr("pod %s/%s not found (namespace %s has no pods)", nsName, name, nsName)
		}
		if len(names) > 8 {
			names = append(names[:8], "…")
		}
		return r, usageErr("pod %s/%s not found; pods in %s: %s", nsName, name, nsName, strings.Join(names, ", "))
	}
	ns := snap.Namespace(nsName)
	mesh, why := podMesh(snap, pod, ns)
	var cfg capture.Config
	var ev []capture.Evidence
	var err error
	switch mesh {
	case cluster.MeshLinkerd:
		d := capture.DefaultLinkerdDefaults()
		d.InjectByDefault = strings.HasPrefix(why, "container ")
		cfg, ev, err = capture.FromPod(pod, ns, d)
	case cluster.MeshIstioSidecar:
		d := capture.DefaultIstioDefaults()
		if snap.Profile.ClusterDNS.IsValid() {
			d.ClusterDNS = []string{snap.Profile.ClusterDNS.String()}
		}
		cfg, ev, err = capture.FromPod(pod, ns, d)
	case cluster.MeshIstioAmbient:
		if pod.Spec.HostNetwork {
			err = fmt.Errorf("pod %s/%s uses host networking, ambient does not capture it: %w", nsName, name, capture.ErrNotCaptured)
			break
		}
		c := capture.DefaultAmbientConfig()
		for _, ip := range pod.Status.PodIPs {
			if a, e := netip.ParseAddr(ip.IP); e == nil && a.Is6() {
				c.EnableIPv6 = true
			}
		}
		cfg = c
		ev = append(ev, capture.Evidence{Setting: "HostProbeSNATAddress", Value: c.HostProbeSNATAddress.String(), Source: capture.SourceDefault,
			Why: "the Istio CNI agent's default"})
	default:
		err = fmt.Errorf("%s: %w", why, capture.ErrNotCaptured)
	}
	if mesh != "" {
		r.Mesh = string(mesh)
		src := capture.SourceDefault // the cluster's mesh
		switch {
		case strings.HasPrefix(why, "container "):
			src = capture.SourceContainer
		case strings.HasPrefix(why, "namespace "):
			src = capture.SourceNamespaceAnnotation
		case strings.HasPrefix(why, "pod ") || strings.HasSuffix(why, " on the pod"):
			src = capture.SourcePodAnnotation
		}
		r.Evidence = append(r.Evidence, capture.Evidence{Setting: "mesh", Value: string(mesh), Source: src, Why: why})
	}
	r.Evidence = append(r.Evidence, ev...)
	if err != nil {
		if !capture.IsNotCaptured(err) {
			return r, &exitError{ExitError, fmt.Errorf("pod %s/%s: %w", nsName, name, err)}
		}
		r.Reason = strings.TrimSuffix(err.Error(), ": "+capture.ErrNotCaptured.Error())
		return r, nil
	}
	r.Captured = true
	if m == "" {
		m = kubeproxy.ModeIPTables
		if ic, ok := cfg.(capture.IstioConfig); ok && ic.NativeNftables {
			m = kubeproxy.ModeNFTables
		}
	}
	var b bytes.Buffer
	if m == kubeproxy.ModeNFTables {
		err = capture.RenderNFTables(&b, cfg)
		if errors.Is(err, capture.ErrNoNFTVariant) {
			return r, usageErr("--mode nftables: %v", err)
		}
	} else {
		err = capture.RenderIPTables(&b, cfg)
	}
	if err != nil {
		return r, &exitError{ExitError, fmt.Errorf("pod %s/%s: %w", nsName, name, err)}
	}
	r.Mode, r.Ruleset = string(m), b.String()
	return r, nil
}

// ---- rules trace ----

func newRulesTraceCmd(g *globals) *cobra.Command {
	var files, localIPs, routes, ifAddrs []string
	var pkt, mode string
	cmd := &cobra.Command{
		Use:   "trace [node/NAME | pod/NS/NAME] --packet PACKET [--ruleset FILE]...",
		Short: "Walk one packet through a netfilter ruleset rule by rule, like nft monitor trace",
		Long: `Walk one packet through netfilter rules in kernel order (hooks, table priorities, jumps and gotos, sets and
verdict maps, marks, NAT) and print every rule it meets, like 'nft monitor trace'. Random load balancing
(numgen, statistic) forks the walk: every branch is printed with its probability.

The rules come from:
  --ruleset FILE   a dump from a real machine: 'nft list ruleset' (with or without -a), 'nft -j list ruleset',
                   an 'nft -f' script, or iptables-save output. Repeat to merge dumps (nft plus iptables-nft);
                   - reads stdin. Lines the parser does not understand are reported on stderr with their line
                   numbers; the rest still works, and a walk that reaches such a rule ends "unknown".
  node/NAME        the ruleset kube-proxy programs on that node, rendered from the snapshot (-f or --demo).
  pod/NS/NAME      the pod's mesh interception rules, rendered from the snapshot.

PACKET: "PROTO SRC:PORT -> DST:PORT [iif IF] [oif IF] [mark 0xN] [ct new|established|related|invalid]
         [uid N] [gid N] [local|input|forward]"

The walk needs the machine's own addresses (which packets are local): give them with --local-ip; --route and
--if-addr add routes (for oifname matches) and interface addresses (for masquerade). For node/NAME they come
from the snapshot.

Exit code: 0 accept (every branch), 3 drop, 4 reject, 5 unknown or branches that end differently
(1 tool error, 2 usage).`,
		Example: `  nft -j list ruleset > rules.json
  kpath rules trace --ruleset rules.json --packet "tcp 10.244.1.2:40000 -> 10.96.0.10:80 iif cni0" --local-ip 172.18.0.3
  iptables-save > save.txt
  kpath rules trace --ruleset save.txt --packet "udp 10.244.1.2:5353 -> 10.96.0.10:53 iif cni0" --local-ip 172.18.0.3
  kpath rules trace --demo node/kpath-worker --packet "tcp 10.244.1.6:40000 -> 10.96.45.12:8080 iif cni0"`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if pkt == "" {
				return usageErr("--packet is required, e.g. --packet \"tcp 10.244.1.2:40000 -> 10.96.0.10:80 iif cni0\"")
			}
			p, err := netfilter.ParsePacket(pkt)
			if err != nil {
				return usageErr("--packet: %v", err)
			}
			m, err := parseRulesMode(mode)
			if err != nil {
				return err
			}
			node := &netfilter.Node{IfAddrs: map[string]netip.Addr{}}
			if err := addNodeFlags(node, localIPs, routes, ifAddrs); err != nil {
				return err
			}
			rep := &RulesTraceReport{Schema: RulesTraceSchema, Problems: []RulesTraceProblem{}}
			var rs *netfilter.Ruleset
			switch {
			case len(args) == 1 && len(files) > 0:
				return usageErr("give either %s or --ruleset, not both", args[0])
			case len(args) == 1:
				rs, err = g.renderedRuleset(args[0], m, node, rep)
			case len(files) > 0:
				if m != "" {
					return usageErr("--mode applies to node/NAME and pod/NS/NAME; a --ruleset file says its own format")
				}
				rs, err = g.readRulesets(files, rep)
			default:
				return usageErr("no rules: give --ruleset FILE (a dump from a node) or node/NAME | pod/NS/NAME with -f/--demo")
			}
			if err != nil {
				return err
			}
			for _, pr := range rep.Problems {
				loc := pr.Source
				if pr.Line > 0 {
					loc += fmt.Sprintf(":%d", pr.Line)
				}
				where := ""
				if pr.Where != "" {
					where = pr.Where + ": "
				}
				fmt.Fprintf(g.stderr, "%s: %snot understood (%s): %s\n", loc, where, pr.Reason, pr.Text)
			}
			res := netfilter.Eval(rs, p, node, netfilter.Options{})
			fillTraceReport(rep, res, node)
			if g.output == "json" || g.output == "yaml" {
				if err := writeStructured(g.stdout, g.output, rep); err != nil {
					return err
				}
			} else {
				if g.verbose > 0 {
					for _, a := range rep.Assumed {
						fmt.Fprintf(g.stderr, "assumed: %s\n", a)
					}
				}
				writeRulesTraceText(g.stdout, rep, res)
			}
			return &exitError{code: rulesVerdictCode(rep.Verdict)}
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&files, "ruleset", nil, "ruleset dump: nft text, nft -j JSON or iptables-save (repeatable; - for stdin)")
	f.StringVar(&pkt, "packet", "", `the packet, e.g. "tcp 10.244.1.2:40000 -> 10.96.0.10:80 iif cni0"`)
	f.StringVar(&mode, "mode", "", "for node/NAME and pod/NS/NAME: render nftables|iptables rules (default as in 'kpath rules')")
	f.StringSliceVar(&localIPs, "local-ip", nil, "an address of the machine (repeatable, comma-separated): decides input vs forward and fib/addrtype local")
	f.StringSliceVar(&routes, "route", nil, "a route PREFIX=IFACE, e.g. 10.244.1.0/24=cni0 (repeatable): picks the output interface")
	f.StringSliceVar(&ifAddrs, "if-addr", nil, "an interface address IFACE=IP, e.g. eth0=172.18.0.3 (repeatable): the masquerade source")
	return cmd
}

func addNodeFlags(n *netfilter.Node, localIPs, routes, ifAddrs []string) error {
	for _, s := range localIPs {
		a, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil {
			return usageErr("--local-ip %q: %v", s, err)
		}
		n.LocalAddrs = append(n.LocalAddrs, a)
	}
	for _, s := range routes {
		pfx, dev, ok := strings.Cut(s, "=")
		p, err := netip.ParsePrefix(strings.TrimSpace(pfx))
		if !ok || err != nil || dev == "" {
			return usageErr("--route %q: want PREFIX=IFACE, e.g. 10.244.1.0/24=cni0", s)
		}
		n.Routes = append(n.Routes, netfilter.Route{Dst: p.Masked(), Oif: dev})
	}
	for _, s := range ifAddrs {
		dev, ip, ok := strings.Cut(s, "=")
		a, err := netip.ParseAddr(strings.TrimSpace(ip))
		if !ok || err != nil || dev == "" {
			return usageErr("--if-addr %q: want IFACE=IP, e.g. eth0=172.18.0.3", s)
		}
		n.IfAddrs[dev] = a
	}
	return nil
}

// readRulesets parses every --ruleset file and merges them.
func (g *globals) readRulesets(files []string, rep *RulesTraceReport) (*netfilter.Ruleset, error) {
	var all *netfilter.Ruleset
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(g.stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, &exitError{ExitError, fmt.Errorf("reading ruleset: %w", err)}
		}
		rs, format, err := netfilter.Parse(data)
		if err != nil {
			return nil, &exitError{ExitError, fmt.Errorf("ruleset %s: %w (want nft list ruleset, nft -j list ruleset, an nft -f script or iptables-save output)", f, err)}
		}
		rep.Sources = append(rep.Sources, RulesetSource{Name: f, Format: string(format)})
		addProblems(rep, f, rs.Problems)
		if all == nil {
			all = rs
		} else {
			all.Merge(rs)
		}
	}
	return all, nil
}

func addProblems(rep *RulesTraceReport, src string, ps []netfilter.Problem) {
	for _, p := range ps {
		rep.Problems = append(rep.Problems, RulesTraceProblem{Source: src, Line: p.Line, Where: p.Where, Text: p.Text, Reason: p.Reason})
	}
}

// renderedRuleset renders node/NAME's kube-proxy rules or pod/NS/NAME's mesh rules and describes the machine.
func (g *globals) renderedRuleset(target string, m kubeproxy.Mode, node *netfilter.Node, rep *RulesTraceReport) (*netfilter.Ruleset, error) {
	kind, nsName, name, err := parseRulesTarget(target)
	if err != nil {
		return nil, err
	}
	snap, err := g.load()
	if err != nil {
		return nil, err
	}
	g.reportDiagnostics(snap)
	if kind == "node" {
		n, err := nodeFor(snap, name)
		if err != nil {
			return nil, err
		}
		if m, err = nodeRulesMode(snap, m); err != nil {
			return nil, err
		}
		nr, err := trace.RenderNodeRules(snap, n, m)
		if err != nil {
			return nil, &exitError{ExitError, err}
		}
		src := target + " (kube-proxy " + string(nr.Mode) + " rules rendered from the snapshot)"
		format := netfilter.FormatNFT
		if nr.Mode == kubeproxy.ModeIPTables {
			format = netfilter.FormatIPTables
		}
		rep.Sources = append(rep.Sources, RulesetSource{Name: src, Format: string(format)})
		addProblems(rep, target, nr.Ruleset.Problems)
		mergeNode(node, nr.Model)
		rep.Assumed = nr.Assumed
		return nr.Ruleset, nil
	}
	pr, err := buildPodRules(snap, nsName, name, m)
	if err != nil {
		return nil, err
	}
	if !pr.Captured {
		return nil, &exitError{ExitUnknown, fmt.Errorf("pod %s has no interception rules to walk: not meshed: %s", pr.Pod, pr.Reason)}
	}
	text := pr.Ruleset
	var rs *netfilter.Ruleset
	format := netfilter.FormatNFT
	if pr.Mode == string(kubeproxy.ModeIPTables) {
		format = netfilter.FormatIPTables
		rs = netfilter.ParseIPTables(text, netfilter.FamilyIP)
	} else {
		rs = netfilter.ParseNFT(text)
	}
	rep.Sources = append(rep.Sources, RulesetSource{Name: target + " (" + pr.Mesh + " " + pr.Mode + " rules rendered from the snapshot)", Format: string(format)})
	addProblems(rep, target, rs.Problems)
	pod := snap.Pod(nsName, name)
	model := &netfilter.Node{IfAddrs: map[string]netip.Addr{}}
	for _, ip := range pod.Status.PodIPs {
		if a, err := netip.ParseAddr(ip.IP); err == nil {
			model.LocalAddrs = append(model.LocalAddrs, a)
			if _, ok := model.IfAddrs["eth0"]; !ok {
				model.IfAddrs["eth0"] = a
			}
		}
	}
	if a, err := netip.ParseAddr(pod.Status.PodIP); err == nil && len(model.LocalAddrs) == 0 {
		model.LocalAddrs = append(model.LocalAddrs, a)
		model.IfAddrs["eth0"] = a
	}
	model.IfAddrs["lo"] = netip.MustParseAddr("127.0.0.1")
	model.Routes = []netfilter.Route{{Dst: netip.MustParsePrefix("127.0.0.0/8"), Oif: "lo"}, {Dst: netip.MustParsePrefix("0.0.0.0/0"), Oif: "eth0"}}
	mergeNode(node, model)
	rep.Assumed = []string{"the pod's only interfaces are lo and eth0 (its IP), with the default route on eth0"}
	return rs, nil
}

// mergeNode adds the snapshot's view of the machine to what the flags gave (flags win for interface addresses).
func mergeNode(dst, src *netfilter.Node) {
	dst.LocalAddrs = append(dst.LocalAddrs, src.LocalAddrs...)
	dst.Routes = append(dst.Routes, src.Routes...)
	for k, v := range src.IfAddrs {
		if _, ok := dst.IfAddrs[k]; !ok {
			dst.IfAddrs[k] = v
		}
	}
}

func fillTraceReport(rep *RulesTraceReport, res netfilter.Result, node *netfilter.Node) {
	rep.Packet = res.Packet.String()
	rep.Notes = res.Notes
	nm := &RulesTraceNodeModel{LocalAddrs: []string{}}
	for _, a := range node.LocalAddrs {
		nm.LocalAddrs = append(nm.LocalAddrs, a.String())
	}
	for _, r := range node.Routes {
		nm.Routes = append(nm.Routes, r.Dst.String()+" dev "+r.Oif)
	}
	if len(node.IfAddrs) > 0 {
		nm.IfAddrs = map[string]string{}
		for k, v := range node.IfAddrs {
			nm.IfAddrs[k] = v.String()
		}
	}
	rep.Node = nm
	rep.Branches = []RulesTraceBranch{}
	verdicts := map[string]bool{}
	for _, b := range res.Branches {
		tb := RulesTraceBranch{Probability: b.Probability, Verdict: b.Verdict, Summary: b.Summary(), Delivery: b.Delivery,
			Packet: b.Packet.String(), DNAT: b.DNAT, SNAT: b.SNAT, Masquerade: b.Masquerade, Unknown: b.Unknown, Hits: []RulesTraceHit{}}
		for _, h := range b.Hits {
			tb.Hits = append(tb.Hits, RulesTraceHit{Hook: string(h.Hook), Family: string(h.Family), Table: h.Table, Chain: h.Chain,
				Rule: h.Rule, Verdict: h.Verdict, Line: h.Line, Handle: h.Handle, Note: h.Note})
		}
		rep.Branches = append(rep.Branches, tb)
		verdicts[b.Verdict] = true
	}
	switch {
	case len(res.Branches) == 0:
		rep.Verdict, rep.Why = netfilter.VerdictUnknown, "the walk produced no branch"
	case verdicts[netfilter.VerdictUnknown]:
		rep.Verdict = netfilter.VerdictUnknown
		for _, b := range res.Branches {
			if b.Verdict == netfilter.VerdictUnknown {
				rep.Why = b.Unknown
				break
			}
		}
	case len(verdicts) > 1:
		var vs []string
		for v := range verdicts {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		rep.Verdict = netfilter.VerdictUnknown
		rep.Why = "the branches end differently (" + strings.Join(vs, ", ") + "): the fate depends on a random choice"
	default:
		rep.Verdict = res.Branches[0].Verdict
		if len(res.Branches) == 1 {
			rep.Why = res.Branches[0].Summary()
		} else {
			rep.Why = fmt.Sprintf("every one of the %d branches ends in %s", len(res.Branches), rep.Verdict)
		}
	}
}

func writeRulesTraceText(w io.Writer, rep *RulesTraceReport, res netfilter.Result) {
	for _, s := range rep.Sources {
		fmt.Fprintf(w, "ruleset: %s [%s]\n", s.Name, s.Format)
	}
	if n := len(rep.Problems); n > 0 {
		fmt.Fprintf(w, "ruleset: %d line(s) not understood (listed on stderr); a walk that reaches one ends unknown\n", n)
	}
	fmt.Fprintf(w, "machine: local %s\n", strings.Join(rep.Node.LocalAddrs, ", "))
	io.WriteString(w, res.Format())
	fmt.Fprintf(w, "verdict: %s — %s\n", rep.Verdict, rep.Why)
}

func rulesVerdictCode(v string) int {
	switch v {
	case netfilter.VerdictAccept:
		return ExitOK
	case netfilter.VerdictDrop:
		return ExitDropped
	case netfilter.VerdictReject:
		return ExitRejected
	}
	return ExitUnknown
}
