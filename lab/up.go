package lab

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/trace"
)

// Options tune `lab up`.
type Options struct {
	Name   string
	Mode   kubeproxy.Mode // "" keeps the profile's mode
	Inputs Inputs
	// Agent is the command that starts the lab agent (the kpath binary and its arguments up to the lab name);
	// nil starts no agent (no DNS, no echo servers).
	Agent []string
	// Policy enforces NetworkPolicy with rendered nftables rules (default true).
	NoPolicy bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// Real runs the real components (etcd, kube-apiserver, kube-controller-manager, kube-proxy, CoreDNS) instead
	// of loading kpath's rendered kube-proxy rules and serving the model's DNS (see real.go).
	Real bool
}

// Up builds the lab for snap. It writes the state file before creating anything, so `Down` (or `lab down`)
// removes whatever was created even if Up is interrupted; on error or cancellation Up cleans up itself.
func Up(ctx context.Context, snap *cluster.Snapshot, opt Options) (st *State, err error) {
	start := time.Now()
	if opt.Name == "" {
		opt.Name = DefaultName
	}
	logw := opt.Log
	if logw == nil {
		logw = io.Discard
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := LoadState(opt.Name); err == nil {
		return nil, fmt.Errorf("lab %q already exists (state %s): run `kpath lab down --name %s` first, or pick another --name", opt.Name, StatePath(opt.Name), opt.Name)
	}
	if err := CheckTools(opt.Mode); err != nil {
		return nil, err
	}
	plan, err := NewPlan(snap, opt.Name, opt.Mode)
	if err != nil {
		return nil, err
	}
	var bins map[string]string
	if opt.Real {
		if bins, err = RealBinaries(); err != nil {
			return nil, err
		}
	}
	feat := DetectFeatures()
	if plan.Overlay.Type == "vxlan" && !feat.VXLAN.OK {
		return nil, fmt.Errorf("the profile needs a VXLAN overlay but this kernel cannot create vxlan devices (%s); the lab never fakes it", feat.VXLAN.Why)
	}
	nsNames := plan.NamespaceNames()
	var real *RealState
	if opt.Real {
		cpIP, err := controlPlaneAddr(plan)
		if err != nil {
			return nil, err
		}
		real = &RealState{Dir: realDir(opt.Name), ControlPlaneNS: controlPlaneNS(plan.Prefix), ControlPlaneIP: cpIP,
			RulesNS: rulesNS(plan.Prefix), Binaries: bins, ClusterDomain: snap.Profile.ClusterDomain}
		nsNames = append(nsNames, real.ControlPlaneNS, real.RulesNS)
	}
	for _, ns := range nsNames {
		if netnsExists(ns) {
			return nil, fmt.Errorf("network namespace %s already exists but no lab %q state lists it: remove it by hand (ip netns del %s) after checking nobody uses it", ns, opt.Name, ns)
		}
	}
	built := &State{Schema: StateSchema, Name: opt.Name, Created: time.Now().UTC(), Inputs: opt.Inputs, Plan: plan,
		Namespaces: nsNames, Notes: append([]string(nil), plan.Notes...), Real: real}
	st = built
	for _, pp := range plan.Pods {
		st.Paths = append(st.Paths, filepath.Join("/etc/netns", pp.NS))
	}
	st.Paths = append(st.Paths, st.DNSLog(), st.AgentLog())
	if real != nil {
		st.Paths = append(st.Paths, real.Dir)
	}
	if err := st.Save(); err != nil {
		return nil, err
	}
	if real != nil {
		if err := os.MkdirAll(real.Dir, 0o755); err != nil {
			return nil, err
		}
	}
	defer func() {
		if err != nil {
			if derr := Down(context.Background(), built); derr != nil {
				err = fmt.Errorf("%w; cleaning up also failed: %v (run `kpath lab down --name %s`)", err, derr, opt.Name)
			}
			st = nil
		}
	}()
	step := func(what string, f func() error) error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted before %s: %w", what, err)
		}
		t := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		fmt.Fprintf(logw, "  %-44s %6.0fms\n", what, float64(time.Since(t).Microseconds())/1000)
		return nil
	}
	b := &builder{ctx: ctx, snap: snap, plan: plan, st: st, feat: feat, real: opt.Real}
	steps := []struct {
		what string
		f    func() error
	}{
		{fmt.Sprintf("create %d network namespaces", len(st.Namespaces)), b.namespaces},
		{"underlay bridge and external client", b.underlay},
		{fmt.Sprintf("%d node namespaces (eth0, cni0, sysctls)", len(plan.Nodes)), b.nodes},
		{fmt.Sprintf("%d pod namespaces (veth, address, routes)", len(plan.Pods)), b.pods},
		{"attach veths, overlay, routes, neighbours", b.wire},
		{rulesStep(plan, opt.Real), b.rules},
		{"pod resolv.conf (/etc/netns)", b.resolvConfs},
		{"NetworkPolicy rules", func() error { return b.policy(opt.NoPolicy) }},
		{"mesh interception rules, proxy certificates", b.mesh},
	}
	for _, s := range steps {
		if err := step(s.what, s.f); err != nil {
			return nil, err
		}
		if err := st.Save(); err != nil {
			return nil, err
		}
	}
	if opt.Real {
		if err := upReal(ctx, b, bins, logw, step); err != nil {
			return nil, err
		}
	}
	if opt.Agent != nil {
		if err := step("agent (DNS + echo servers)", func() error { return startAgent(ctx, st, opt.Agent) }); err != nil {
			return nil, err
		}
	} else {
		st.Notes = append(st.Notes, "no agent started: no DNS server and no echo servers answer")
	}
	st.Ready = true
	st.BuildFor = time.Since(start).Round(time.Millisecond).String()
	return st, st.Save()
}

// ErrNotRoot is returned when the lab is asked to build without root.
var ErrNotRoot = fmt.Errorf("the lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces: run it with sudo")

// CheckTools says which required tools are missing.
func CheckTools(mode kubeproxy.Mode) error {
	need := []string{"ip", "bridge", "nft"}
	if mode == kubeproxy.ModeIPTables {
		need = append(need, "iptables-restore")
	}
	var missing []string
	for _, t := range need {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("the lab needs %s on PATH (Debian: apt-get install iproute2 nftables iptables)", strings.Join(missing, ", "))
	}
	return nil
}

type builder struct {
	ctx  context.Context
	snap *cluster.Snapshot
	plan *Plan
	st   *State
	feat Features
	real bool // real kube-proxy programs the nodes: load the trace table only
	mu   sync.Mutex
}

func rulesStep(p *Plan, real bool) string {
	if real {
		return "trace table (real kube-proxy programs " + string(p.Mode) + ")"
	}
	return "kube-proxy " + string(p.Mode) + " rules + trace table"
}

func (b *builder) namespaces() error {
	var lines []string
	for _, ns := range b.st.Namespaces {
		lines = append(lines, "netns add "+ns)
	}
	return ipBatch(b.ctx, "", lines)
}

func (b *builder) underlay() error {
	p := b.plan
	if err := ipBatch(b.ctx, p.UnderlayNS, []string{"link set lo up", "link add ul0 type bridge", "link set ul0 mtu " + strconv.Itoa(p.MTU) + " up"}); err != nil {
		return err
	}
	return ipBatch(b.ctx, p.ExternalNS, []string{
		"link set lo up",
		fmt.Sprintf("link add eth0 mtu %d type veth peer name ext netns %s", p.MTU, p.UnderlayNS),
		fmt.Sprintf("addr add %s/%d dev eth0", p.Gateway, p.Underlay.Bits()),
		"link set eth0 up",
	})
}

// parallel runs f for 0..n-1 on up to 4 goroutines.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i := 0; i < n; i++ {
		g.Go(func() error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return f(i)
		})
	}
	return g.Wait()
}

func (b *builder) nodes() error {
	p := b.plan
	return parallel(b.ctx, len(p.Nodes), func(i int) error {
		n := p.Nodes[i]
		lines := []string{
			"link set lo up",
			fmt.Sprintf("link add eth0 mtu %d type veth peer name %s netns %s", p.MTU, n.ULPort, p.UnderlayNS),
			fmt.Sprintf("addr add %s/%d dev eth0", n.IP, p.Underlay.Bits()),
			"link set eth0 up",
		}
		if n.PodCIDR.IsValid() {
			lines = append(lines, "link add cni0 type bridge",
				fmt.Sprintf("link set cni0 mtu %d", p.PodMTU),
				fmt.Sprintf("addr add %s/%d dev cni0", n.BridgeIP, n.PodCIDR.Bits()),
				"link set cni0 up")
		}
		if err := ipBatch(b.ctx, n.NS, lines); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		return b.nodeSysctls(n)
	})
}

// nodeSysctls turns on forwarding and br_netfilter inside the node namespace — both are per network namespace on
// this kernel (checked, never changed in the root namespace).
func (b *builder) nodeSysctls(n NodePlan) error {
	set := [][2]string{{"net.ipv4.ip_forward", "1"}}
	if b.feat.BrNetfilterPerNetns.OK {
		set = append(set, [2]string{"net.bridge.bridge-nf-call-iptables", "1"})
	} else {
		b.mu.Lock()
		note := "bridge-nf-call-iptables not set: " + b.feat.BrNetfilterPerNetns.Why + " — same-node ClusterIP replies skip un-DNAT and fail"
		if !contains(b.st.Notes, note) {
			b.st.Notes = append(b.st.Notes, note)
		}
		b.mu.Unlock()
	}
	for _, kv := range set {
		if err := writeSysctl(n.NS, kv[0], kv[1]); err != nil {
			return err
		}
		b.mu.Lock()
		b.st.Sysctls = append(b.st.Sysctls, n.NS+": "+kv[0]+"="+kv[1])
		b.mu.Unlock()
	}
	return nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func (b *builder) pods() error {
	p := b.plan
	return parallel(b.ctx, len(p.Pods), func(i int) error {
		pp := p.Pods[i]
		n := p.Node(pp.Node)
		lines := []string{
			"link set lo up",
			fmt.Sprintf("link add eth0 mtu %d type veth peer name %s netns %s", p.PodMTU, pp.HostVeth, n.NS),
			fmt.Sprintf("addr add %s/%d dev eth0", pp.IP, n.PodCIDR.Bits()),
			"link set eth0 up",
			fmt.Sprintf("route add default via %s dev eth0", n.BridgeIP),
		}
		if err := ipBatch(b.ctx, pp.NS, lines); err != nil {
			return fmt.Errorf("pod %s: %w", pp.Ref(), err)
		}
		return nil
	})
}

func (b *builder) wire() error {
	p := b.plan
	ul := []string{"link set ext master ul0", "link set ext up"}
	for _, n := range p.Nodes {
		ul = append(ul, "link set "+n.ULPort+" master ul0", "link set "+n.ULPort+" up")
	}
	if err := ipBatch(b.ctx, p.UnderlayNS, ul); err != nil {
		return err
	}
	return parallel(b.ctx, len(p.Nodes), func(i int) error {
		n := p.Nodes[i]
		lines := []string{fmt.Sprintf("route add default via %s dev eth0", p.Gateway)}
		for _, pp := range p.Pods {
			if pp.Node == n.Name {
				// flannel's bridge CNI sets hairpinMode: a pod reaching itself through its Service comes back
				// out of the port it entered.
				lines = append(lines, "link set "+pp.HostVeth+" master cni0", "link set "+pp.HostVeth+" type bridge_slave hairpin on",
					"link set "+pp.HostVeth+" up")
			}
		}
		var fdb []string
		if p.Overlay.Type == "vxlan" && n.PodCIDR.IsValid() {
			dev := p.Overlay.Device
			lines = append(lines,
				fmt.Sprintf("link add %s type vxlan id %d local %s dev eth0 dstport %d nolearning", dev, p.Overlay.VNI, n.IP, p.Overlay.UDPPort),
				fmt.Sprintf("link set %s address %s mtu %d", dev, n.VtepMAC, p.PodMTU),
				fmt.Sprintf("addr add %s/32 dev %s", n.TunnelIP, dev),
				"link set "+dev+" up")
			for _, o := range p.Nodes {
				if o.Name == n.Name || !o.PodCIDR.IsValid() {
					continue
				}
				lines = append(lines,
					fmt.Sprintf("neigh add %s lladdr %s dev %s nud permanent", o.TunnelIP, o.VtepMAC, dev),
					fmt.Sprintf("route add %s via %s dev %s onlink", o.PodCIDR, o.TunnelIP, dev))
				fdb = append(fdb, fmt.Sprintf("fdb append %s dev %s dst %s self permanent", o.VtepMAC, dev, o.IP))
			}
		} else {
			for _, o := range p.Nodes {
				if o.Name == n.Name || !o.PodCIDR.IsValid() {
					continue
				}
				lines = append(lines, fmt.Sprintf("route add %s via %s dev eth0", o.PodCIDR, o.IP))
			}
		}
		if err := ipBatch(b.ctx, n.NS, lines); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		if len(fdb) > 0 {
			if _, err := run(b.ctx, strings.Join(fdb, "\n")+"\n", "bridge", "-n", n.NS, "-batch", "-"); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		return nil
	})
}

// traceTable turns on nftrace for every packet entering a namespace's IPv4 stack or leaving a local socket, from
// priority -400 (before conntrack, NAT and kube-proxy). `nft monitor trace` only reports while someone listens.
const traceTable = "kpath-trace"

func traceTableScript() string {
	return "table ip " + traceTable + " {\n" +
		"  chain pre { type filter hook prerouting priority -400; meta nftrace set 1; }\n" +
		"  chain out { type filter hook output priority -400; meta nftrace set 1; }\n}\n"
}

func (b *builder) rules() error {
	p := b.plan
	return parallel(b.ctx, len(p.Nodes), func(i int) error {
		n := p.Nodes[i]
		script := traceTableScript()
		if b.real {
			// Real kube-proxy programs this namespace from the API server (started later in upReal).
		} else if p.Mode == kubeproxy.ModeIPTables {
			// kube-proxy creates the nfacct counter its INVALID-drop rule names over netlink; without that object
			// (no nfacct tool here) it renders the rule without the counter, as kube-proxy does when nfacct is
			// unavailable. The chains and verdicts are the same as `kpath rules --mode iptables`.
			cfg := kubeproxy.ConfigFor(b.snap, b.snap.Node(n.Name))
			cfg.Mode, cfg.NoNFAcct = kubeproxy.ModeIPTables, true
			idx, err := kubeproxy.NewIndex(cfg, b.snap.Services, b.snap.EndpointSlices)
			if err != nil {
				return err
			}
			var buf strings.Builder
			if err := idx.RenderIPTables(&buf); err != nil {
				return err
			}
			if _, err := run(b.ctx, buf.String(), "ip", "netns", "exec", n.NS, "iptables-restore", "-w"); err != nil {
				return fmt.Errorf("node %s: loading the rendered iptables rules: %w", n.Name, err)
			}
		} else if p.Mode != "" {
			nr, err := trace.RenderNodeRules(b.snap, b.snap.Node(n.Name), p.Mode)
			if err != nil {
				return err
			}
			script = nr.Text + "\n" + script
		}
		if _, err := run(b.ctx, script, "ip", "netns", "exec", n.NS, "nft", "-f", "-"); err != nil {
			return fmt.Errorf("node %s: loading the rendered nftables rules: %w", n.Name, err)
		}
		return nil
	})
}

func (b *builder) resolvConfs() error {
	for _, pp := range b.plan.Pods {
		dir := filepath.Join("/etc/netns", pp.NS)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte(pp.ResolvConf), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// startAgent starts the agent detached (its own session: Ctrl-C on `lab up` does not reach it) and waits until it
// reports that every listener is up.
func startAgent(ctx context.Context, st *State, argv []string) error {
	logf, err := os.OpenFile(st.AgentLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	rd, wr, err := os.Pipe()
	if err != nil {
		return err
	}
	defer rd.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{wr}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return fmt.Errorf("starting the agent: %w", err)
	}
	wr.Close()
	st.Agent = &Process{PID: cmd.Process.Pid, StartTime: procStartTime(cmd.Process.Pid), Cmd: strings.Join(argv, " ")}
	if err := st.Save(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }() // reap it if it dies while we still run
	done := make(chan string, 1)
	go func() {
		buf := make([]byte, 64<<10)
		n, _ := io.ReadFull(rd, buf)
		done <- string(buf[:n])
	}()
	select {
	case msg := <-done:
		if strings.HasPrefix(msg, "ready") {
			return recordAgentChildren(st, msg)
		}
		tail, _ := os.ReadFile(st.AgentLog())
		return fmt.Errorf("the agent did not come up: %s %s", strings.TrimSpace(msg), lastLines(string(tail), 5))
	case <-time.After(agentTimeout(st)):
		return fmt.Errorf("the agent did not report ready within %s (log: %s)%s", agentTimeout(st), st.AgentLog(), realLogTails(st))
	case <-ctx.Done():
		return ctx.Err()
	}
}

func lastLines(s string, n int) string {
	ls := strings.Split(strings.TrimSpace(s), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// procStartTime is field 22 of /proc/PID/stat: with the pid it identifies one process for good.
func procStartTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	return f[19]
}
