package lab

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kpath/kpath/kubeproxy"
)

// `lab up --real`: the real Kubernetes components program the lab instead of kpath's renderer and DNS model.
//
//	kp-L-control-plane (on the underlay, its own address)     every node namespace          kube-dns pod namespaces
//	  etcd 127.0.0.1:2379 (loopback of this namespace)          kube-proxy --hostname-override  coredns -conf <snapshot's
//	  kube-apiserver <cp-ip>:6443 ◄──── token kubeconfigs ────  --proxy-mode nftables|iptables   Corefile + kubeconfig + log>
//	  kube-controller-manager --controllers=endpointslice       programs table ip kube-proxy    answers on :53 from the API
//
// The snapshot is applied as API objects (Namespaces, Nodes, Services, Pods with their lab IPs in status,
// NetworkPolicies, ConfigMaps; EndpointSlices only for Services without a selector, which no controller manages);
// the EndpointSlice controller writes the rest. Every process is recorded in the state file before `lab up` waits
// for it, and `lab down` stops exactly those.

// Versions of the real components `--real` runs (test/apiserver/go.mod, test/kubeproxy/go.mod and
// test/coredns/go.mod pin them). kube-proxy runs the upstream version package kubeproxy renders (its oracle's), so
// the rules diff shows model errors rather than release differences; it is one minor release newer than the API
// server, which works for the APIs it reads (Services, EndpointSlices, Nodes, ServiceCIDRs: all GA in both).
const (
	KubernetesVersion = "v1.35.4"
	KubeProxyVersion  = "v1.36.3"
	CoreDNSVersion    = "v1.15.0"
)

// Component names, as in the binary cache (<name>-<version>).
const (
	CompAPIServer  = "kube-apiserver"
	CompController = "kube-controller-manager"
	CompProxy      = "kube-proxy"
	CompCoreDNS    = "coredns"
	CompEtcd       = "etcd"
)

// RealState is what `--real` started, recorded in the lab's state file.
type RealState struct {
	// Dir holds certificates, kubeconfigs, etcd's data, the Corefile and every component's log.
	Dir string `json:"dir"`
	// ControlPlaneNS is the namespace of etcd, kube-apiserver and kube-controller-manager; ControlPlaneIP its
	// address on the underlay.
	ControlPlaneNS string     `json:"controlPlaneNS"`
	ControlPlaneIP netip.Addr `json:"controlPlaneIP"`
	// RulesNS is a scratch namespace where kpath's rendered rules are loaded to be listed in the kernel's own
	// canonical form for the rules diff.
	RulesNS   string `json:"rulesNS"`
	APIServer string `json:"apiServer"`
	// ClusterDomain is the snapshot's cluster domain (CoreDNS readiness probes ask kubernetes.default.svc.<domain>).
	ClusterDomain string            `json:"clusterDomain"`
	Binaries      map[string]string `json:"binaries"`
	// Processes in start order; `lab down` stops them in reverse.
	Processes []RealProcess `json:"processes"`
	// CoreDNS lists the real CoreDNS servers (one per kube-dns pod) and their query logs.
	CoreDNS []CoreDNSServer `json:"coreDNS"`
	// CorefileChanges says what the lab added to the snapshot's Corefile and why.
	CorefileChanges []string `json:"corefileChanges"`
	// Applied counts the API objects written, by kind; Skipped says what was not applied and why.
	Applied map[string]int `json:"applied"`
	Skipped []string       `json:"skipped,omitempty"`
	// SliceDiffs are the differences between the snapshot's EndpointSlices (given or synthesized by kpath) and
	// the ones the real EndpointSlice controller wrote.
	SliceDiffs []Difference `json:"sliceDiffs"`
	// Timings of each real step.
	Timings []string `json:"timings"`
	// Notes say what the lab changed in the snapshot's objects to create them, and why.
	Notes []string `json:"notes,omitempty"`
}

// RealProcess is one component process.
type RealProcess struct {
	Process
	Name string `json:"name"` // e.g. "kube-proxy kpath-worker"
	NS   string `json:"ns"`
	Log  string `json:"log"`
}

// CoreDNSServer is a real CoreDNS in a kube-dns pod's namespace.
type CoreDNSServer struct {
	Pod string     `json:"pod"` // ns/name
	NS  string     `json:"ns"`
	IP  netip.Addr `json:"ip"`
	Log string     `json:"log"`
}

// realDir is where a lab's real components keep their files.
func realDir(name string) string { return filepath.Join(StateDir(), "lab-"+name+".real") }

func controlPlaneNS(prefix string) string { return prefix + "control-plane" }
func rulesNS(prefix string) string        { return prefix + "rules" }

// CacheDir is where test/apiserver/build.sh and test/coredns/build.sh put binaries: $KPATH_CACHE/bin (default
// ~/.cache/kpath/bin).
func CacheDir() string {
	cache := os.Getenv("KPATH_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "kpath")
	}
	return filepath.Join(cache, "bin")
}

// realEnv names the environment variable that overrides a component's binary.
var realEnv = map[string]string{
	CompAPIServer:  "KPATH_KUBE_APISERVER",
	CompController: "KPATH_KUBE_CONTROLLER_MANAGER",
	CompProxy:      "KPATH_KUBE_PROXY",
	CompCoreDNS:    "KPATH_COREDNS",
}

// RealBinaries finds every binary `--real` needs, or says which are missing and how to get them.
func RealBinaries() (map[string]string, error) {
	out := map[string]string{}
	var missing []string
	for _, c := range []string{CompAPIServer, CompController, CompProxy, CompCoreDNS} {
		p := os.Getenv(realEnv[c])
		if p == "" {
			v := KubernetesVersion
			switch c {
			case CompCoreDNS:
				v = CoreDNSVersion
			case CompProxy:
				v = KubeProxyVersion
			}
			p = filepath.Join(CacheDir(), c+"-"+v)
		}
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			missing = append(missing, fmt.Sprintf("%s (%s or $%s)", c, p, realEnv[c]))
			continue
		}
		out[c] = p
	}
	if p, err := exec.LookPath("etcd"); err == nil {
		out[CompEtcd] = p
	} else {
		missing = append(missing, "etcd (Debian: apt-get install etcd-server)")
	}
	if len(missing) > 0 {
		return out, &MissingBinariesError{Missing: missing}
	}
	return out, nil
}

// MissingBinariesError says which real components are not built.
type MissingBinariesError struct{ Missing []string }

func (e *MissingBinariesError) Error() string {
	return "lab --real needs binaries that are not built: " + strings.Join(e.Missing, "; ") +
		" — build them once per machine with test/apiserver/build.sh kube-apiserver kube-controller-manager (~17 min cold on 2 cores), test/kubeproxy/build.sh and test/coredns/build.sh (./test.sh does all three)"
}

// IsMissingBinaries reports whether err says real components are not built.
func IsMissingBinaries(err error) bool {
	var m *MissingBinariesError
	return errors.As(err, &m)
}

// controlPlaneAddr picks the control plane's underlay address: the highest host address that no node and not the
// gateway uses.
func controlPlaneAddr(p *Plan) (netip.Addr, error) {
	used := map[netip.Addr]bool{p.Gateway: true}
	for _, n := range p.Nodes {
		used[n.IP] = true
	}
	a := lastAddr(p.Underlay)
	for i := 0; i < 256 && p.Underlay.Contains(a); i++ {
		a = a.Prev()
		if !used[a] && a != p.Underlay.Addr() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("no free address for the control plane in the underlay %s", p.Underlay)
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := 32 - p.Bits()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= (1 << host) - 1
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// realBuilder carries `--real` through `lab up`.
type realBuilder struct {
	b     *builder
	rs    *RealState
	bins  map[string]string
	creds *realCreds
	log   io.Writer
}

// upReal starts the real components once the namespaces are wired. step runs and times one step.
func upReal(ctx context.Context, b *builder, bins map[string]string, logw io.Writer, step func(string, func() error) error) error {
	rs := b.st.Real
	r := &realBuilder{b: b, rs: rs, bins: bins, log: logw}
	steps := []struct {
		what string
		f    func() error
	}{
		{"control-plane namespace on the underlay", r.controlPlaneNet},
		{"certificates, tokens, kubeconfigs", r.credentials},
		{"etcd + kube-apiserver " + KubernetesVersion, r.apiServer},
		{"snapshot applied as API objects", func() error { return r.apply(ctx) }},
		{"kube-controller-manager (EndpointSlice controller)", func() error { return r.controllerManager(ctx) }},
		{fmt.Sprintf("kube-proxy %s %s ×%d (first sync)", KubeProxyVersion, b.plan.Mode, len(b.plan.Nodes)), func() error { return r.kubeProxies(ctx) }},
		{fmt.Sprintf("CoreDNS %s Corefile for %d kube-dns pods (the agent runs them)", CoreDNSVersion, countDNSPods(b.plan)), func() error { return r.coreDNS(ctx) }},
	}
	for _, s := range steps {
		t := time.Now()
		if err := step(s.what, s.f); err != nil {
			return err
		}
		rs.Timings = append(rs.Timings, fmt.Sprintf("%s: %s", s.what, time.Since(t).Round(time.Millisecond)))
		if err := b.st.Save(); err != nil {
			return err
		}
	}
	return nil
}

func countDNSPods(p *Plan) int {
	n := 0
	for _, pp := range p.Pods {
		if pp.DNS && pp.Silent == "" {
			n++
		}
	}
	return n
}

func (r *realBuilder) controlPlaneNet() error {
	p, rs := r.b.plan, r.rs
	if err := ipBatch(r.b.ctx, rs.ControlPlaneNS, []string{
		"link set lo up",
		fmt.Sprintf("link add eth0 mtu %d type veth peer name cp netns %s", p.MTU, p.UnderlayNS),
		fmt.Sprintf("addr add %s/%d dev eth0", rs.ControlPlaneIP, p.Underlay.Bits()),
		"link set eth0 up",
		fmt.Sprintf("route add default via %s dev eth0", p.Gateway),
	}); err != nil {
		return err
	}
	if err := ipBatch(r.b.ctx, p.UnderlayNS, []string{"link set cp master ul0", "link set cp up"}); err != nil {
		return err
	}
	// Pods reach the API server directly (CoreDNS); the control plane routes each node's pod CIDR to that node, as
	// a control-plane node of the cluster would (flannel's routes; native routing is enough from a non-pod host).
	var routes []string
	for _, n := range p.Nodes {
		if n.PodCIDR.IsValid() {
			routes = append(routes, fmt.Sprintf("route add %s via %s dev eth0", n.PodCIDR, n.IP))
		}
	}
	if err := ipBatch(r.b.ctx, rs.ControlPlaneNS, routes); err != nil {
		return err
	}
	return ipBatch(r.b.ctx, rs.RulesNS, []string{"link set lo up"})
}

// startProc starts a component inside a namespace (`ip netns exec` execs it in place: the recorded pid is the
// component's), detached in its own session with its output in its log, and records it before returning.
func (r *realBuilder) startProc(name, ns string, argv []string) (*RealProcess, error) {
	logPath := filepath.Join(r.rs.Dir, strings.ReplaceAll(name, " ", "_")+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	full := append([]string{"ip", "netns", "exec", ns}, argv...)
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Dir = r.rs.Dir
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { _ = cmd.Wait() }() // reap it if it dies while lab up still runs
	// The start time read right away may be ip's; exec keeps the pid and the start time, so it identifies the
	// component too.
	rp := RealProcess{Process: Process{PID: cmd.Process.Pid, StartTime: procStartTime(cmd.Process.Pid), Cmd: strings.Join(argv, " ")},
		Name: name, NS: ns, Log: logPath}
	r.rs.Processes = append(r.rs.Processes, rp)
	if err := r.b.st.Save(); err != nil {
		return nil, err
	}
	return &r.rs.Processes[len(r.rs.Processes)-1], nil
}

// alive says whether a recorded process still runs (not a zombie, same start time).
func (p *RealProcess) alive() bool {
	return procStartTime(p.PID) == p.StartTime && !isZombie(p.PID)
}

// exitedErr describes a process that died, with its log's last lines.
func (p *RealProcess) exitedErr() error {
	data, _ := os.ReadFile(p.Log)
	return fmt.Errorf("%s exited (log %s):\n%s", p.Name, p.Log, lastLines(string(data), 12))
}

func (r *realBuilder) apiServer() error {
	rs, c := r.rs, r.creds
	etcd, err := r.startProc("etcd", rs.ControlPlaneNS, []string{r.bins[CompEtcd], "--name=kpath",
		"--data-dir=" + filepath.Join(rs.Dir, "etcd"),
		"--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
		"--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
		"--initial-cluster=kpath=http://127.0.0.1:2380", "--log-level=warn"})
	if err != nil {
		return err
	}
	if err := r.waitHTTP(rs.ControlPlaneNS, "http://127.0.0.1:2379/health", "", etcd, 30*time.Second); err != nil {
		return fmt.Errorf("etcd did not become healthy: %w", err)
	}
	svcCIDR := "10.96.0.0/12"
	var cidrs []string
	for _, p := range r.b.snap.Profile.ServiceCIDRs {
		if p.Addr().Is4() {
			cidrs = append(cidrs, p.String())
		}
	}
	if len(cidrs) > 0 {
		svcCIDR = cidrs[0]
	}
	ip := rs.ControlPlaneIP.String()
	api, err := r.startProc("kube-apiserver", rs.ControlPlaneNS, []string{r.bins[CompAPIServer],
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address=" + ip, "--secure-port=6443", "--advertise-address=" + ip,
		"--tls-cert-file=" + c.file("apiserver.crt"), "--tls-private-key-file=" + c.file("apiserver.key"),
		"--cert-dir=" + filepath.Join(rs.Dir, "certs"),
		"--token-auth-file=" + c.file("tokens.csv"),
		"--authorization-mode=RBAC",
		"--allow-privileged=true",
		"--service-account-key-file=" + c.file("sa.pub"),
		"--service-account-signing-key-file=" + c.file("sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc." + r.b.snap.Profile.ClusterDomain,
		"--service-cluster-ip-range=" + svcCIDR,
		// The snapshot's default/kubernetes EndpointSlice is applied as given (it names the cluster's API server
		// address); the lease reconciler would overwrite it with this namespace's address.
		"--endpoint-reconciler-type=none",
		// No kubelet, scheduler or service-account controller runs: admission that would wait for them or
		// rewrite the snapshot's pods is off.
		"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition,DefaultTolerationSeconds,Priority",
		"--v=1"})
	if err != nil {
		return err
	}
	rs.APIServer = "https://" + net.JoinHostPort(ip, "6443")
	if err := r.waitHTTP(rs.ControlPlaneNS, rs.APIServer+"/readyz", c.tokens[userAdmin], api, 120*time.Second); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	return nil
}

func (r *realBuilder) controllerManager(ctx context.Context) error {
	rs := r.rs
	kcm, err := r.startProc("kube-controller-manager", rs.ControlPlaneNS, []string{r.bins[CompController],
		"--kubeconfig=" + r.creds.file("kube-controller-manager.kubeconfig"),
		"--controllers=endpointslice,endpointslicemirroring",
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--bind-address=" + rs.ControlPlaneIP.String(), "--secure-port=10257",
		"--cert-dir=" + filepath.Join(rs.Dir, "certs"),
		"--authentication-skip-lookup=true",
		"--v=1"})
	if err != nil {
		return err
	}
	return r.waitSlices(ctx, kcm)
}

func (r *realBuilder) kubeProxies(ctx context.Context) error {
	p := r.b.plan
	mode := p.Mode
	if mode == "" {
		return nil
	}
	var clusterCIDR string
	for _, c := range r.b.snap.Profile.PodCIDRs {
		if c.Addr().Is4() {
			clusterCIDR = c.String()
			break
		}
	}
	var procs []*RealProcess
	for _, n := range p.Nodes {
		ip := n.IP.String()
		args := []string{r.bins[CompProxy],
			"--kubeconfig=" + r.creds.file("kube-proxy.kubeconfig"),
			"--hostname-override=" + n.Name,
			"--proxy-mode=" + string(mode),
			"--bind-address=" + ip,
			"--metrics-bind-address=" + net.JoinHostPort(ip, "10249"),
			"--healthz-bind-address=" + net.JoinHostPort(ip, "10256"),
			// Without these kube-proxy writes nf_conntrack_max and the TCP timeouts, which are machine-wide
			// (the kernel refuses the first from a namespace): the lab never changes them.
			"--conntrack-max-per-core=0", "--conntrack-tcp-timeout-established=0s", "--conntrack-tcp-timeout-close-wait=0s",
			"--v=1"}
		if clusterCIDR != "" {
			args = append(args, "--cluster-cidr="+clusterCIDR)
		}
		if r.b.snap.Profile.MasqueradeAll {
			args = append(args, "--masquerade-all")
		}
		pr, err := r.startProc("kube-proxy "+n.Name, n.NS, args)
		if err != nil {
			return err
		}
		procs = append(procs, pr)
	}
	for i, n := range p.Nodes {
		if err := waitKubeProxySynced(ctx, n, procs[i], 90*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// waitKubeProxySynced waits until kube-proxy reports a completed sync of its rules (its
// kubeproxy_sync_proxy_rules_last_timestamp_seconds metric is set).
func waitKubeProxySynced(ctx context.Context, n NodePlan, pr *RealProcess, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	url := "http://" + net.JoinHostPort(n.IP.String(), "10249") + "/metrics"
	var last string
	for time.Now().Before(deadline) {
		if pr != nil && !pr.alive() {
			return pr.exitedErr()
		}
		body, err := netnsGet(ctx, n.NS, url, "", nil)
		if err == nil {
			if v := metricValue(body, "kubeproxy_sync_proxy_rules_last_timestamp_seconds"); v > 0 {
				return nil
			}
			last = "no completed sync yet"
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("kube-proxy on %s did not sync within %s (%s)", n.Name, timeout, last)
}

func metricValue(body, name string) float64 {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			return v
		}
	}
	return 0
}

// netnsDialer dials from inside a network namespace (the socket is created on a thread that entered it).
func netnsDialer(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var c net.Conn
		err := inNetns(ns, func() error {
			var err error
			d := net.Dialer{Timeout: 10 * time.Second}
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
}

// netnsGet GETs url from inside ns (https with caPEM when given, a bearer token when given).
func netnsGet(ctx context.Context, ns, url, token string, caPEM []byte) (string, error) {
	tr := &http.Transport{DialContext: netnsDialer(ns), DisableKeepAlives: true}
	if caPEM != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(caPEM)
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(lastLines(string(b), 3)))
	}
	return string(b), nil
}

func (r *realBuilder) waitHTTP(ns, url, token string, pr *RealProcess, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !pr.alive() {
			return pr.exitedErr()
		}
		var ca []byte
		if strings.HasPrefix(url, "https:") {
			ca = r.creds.caPEM
		}
		_, err := netnsGet(r.b.ctx, ns, url, token, ca)
		if err == nil {
			return nil
		}
		last = err.Error()
		select {
		case <-r.b.ctx.Done():
			return r.b.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: %s after %s", url, last, timeout)
}

// restConfig is a client for the lab's API server, dialling from the control-plane namespace.
func (rs *RealState) restConfig(caPEM []byte, token string) *rest.Config {
	return &rest.Config{Host: rs.APIServer, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: caPEM},
		Dial: netnsDialer(rs.ControlPlaneNS), QPS: 200, Burst: 400, WarningHandler: rest.NoWarnings{}, Timeout: 30 * time.Second}
}

// RealModeOf says which proxy mode real kube-proxy runs in (the plan's).
func RealModeOf(st *State) kubeproxy.Mode {
	if st.Plan == nil {
		return ""
	}
	return st.Plan.Mode
}

// stopReal stops the recorded component processes: SIGTERM to each that is still the process the lab started (same
// start time, its command line names the lab's real directory), SIGKILL after 3 s to those left.
func stopReal(rs *RealState) []string {
	var errs []string
	var live []*Process
	for i := len(rs.Processes) - 1; i >= 0; i-- {
		p := &rs.Processes[i].Process
		if ownedProcess(p, rs.Dir) {
			_ = syscall.Kill(p.PID, syscall.SIGTERM)
			live = append(live, p)
		}
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(live) > 0 && time.Now().Before(deadline) {
		var still []*Process
		for _, p := range live {
			if procStartTime(p.PID) == p.StartTime && !isZombie(p.PID) {
				still = append(still, p)
			}
		}
		live = still
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range live {
		if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			errs = append(errs, fmt.Sprintf("killing %d (%s): %v", p.PID, p.Cmd, err))
		}
	}
	// SIGKILL is asynchronous: wait (briefly) until each is gone, so "down" returns with nothing left running.
	deadline = time.Now().Add(2 * time.Second)
	for len(live) > 0 && time.Now().Before(deadline) {
		var still []*Process
		for _, p := range live {
			if procStartTime(p.PID) == p.StartTime && !isZombie(p.PID) {
				still = append(still, p)
			}
		}
		live = still
		time.Sleep(20 * time.Millisecond)
	}
	for _, p := range live {
		errs = append(errs, fmt.Sprintf("%s (pid %d) still running after SIGKILL", p.Cmd, p.PID))
	}
	return errs
}

// ownedProcess reports whether p still runs as the process the lab started: same start time, and a command line
// containing every marker.
func ownedProcess(p *Process, markers ...string) bool {
	if p.PID <= 0 {
		return false
	}
	if st := procStartTime(p.PID); st == "" || st != p.StartTime || isZombie(p.PID) {
		return false
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	for _, m := range markers {
		if !strings.Contains(string(cmdline), m) {
			return false
		}
	}
	return true
}

// writeAgentChildren reports the processes the agent started (real CoreDNS) on its ready pipe, one JSON line each,
// so `lab up` records them in the state file.
func writeAgentChildren(w io.Writer, procs []RealProcess) {
	for _, p := range procs {
		b, _ := json.Marshal(p)
		fmt.Fprintf(w, "proc %s\n", b)
	}
}

// recordAgentChildren reads the agent's ready message and records the processes it lists.
func recordAgentChildren(st *State, msg string) error {
	for _, l := range strings.Split(msg, "\n") {
		rest, ok := strings.CutPrefix(l, "proc ")
		if !ok {
			continue
		}
		var p RealProcess
		if err := json.Unmarshal([]byte(rest), &p); err != nil {
			return fmt.Errorf("the agent reported a process as %q: %w", rest, err)
		}
		if st.Real == nil {
			return fmt.Errorf("the agent started %s, but the lab is not --real", p.Name)
		}
		st.Real.Processes = append(st.Real.Processes, p)
	}
	return st.Save()
}

// agentTimeout bounds the agent's start: with --real it waits for CoreDNS to sync with the API server.
func agentTimeout(st *State) time.Duration {
	if st.Real != nil {
		return 2 * time.Minute
	}
	return 30 * time.Second
}

// realLogTails is the end of the agent's and each CoreDNS's log, for an error message (they are removed with the
// lab).
func realLogTails(st *State) string {
	if st.Real == nil {
		return ""
	}
	var b strings.Builder
	logs := []string{st.AgentLog()}
	for _, s := range st.Real.CoreDNS {
		logs = append(logs, s.Log)
	}
	for _, l := range logs {
		data, err := os.ReadFile(l)
		if err == nil {
			fmt.Fprintf(&b, "\n--- %s\n%s", l, lastLines(string(data), 8))
		}
	}
	return b.String()
}
