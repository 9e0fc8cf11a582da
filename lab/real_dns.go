package lab

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
)

// Real CoreDNS runs the snapshot's Corefile (ConfigMap kube-system/coredns, or kubeadm's default) with two
// additions, each stated in the lab's state: the kubernetes plugin gets a kubeconfig (a pod would use its service
// account; the lab has none), and every server block gets a `log` directive in a fixed format so the agent can
// record each query it answers — nothing that changes an answer.

// corefileLogFormat is the query log line CoreDNS writes; the agent parses it.
const corefileLogFormat = `kpath-query {remote} {port} {type} {name} {proto} {rcode}`

// labCorefile rewrites corefile for the lab: kubeconfig into every kubernetes block (replacing kubeconfig or
// endpoint lines, which name the real cluster), a log directive into every server block.
func labCorefile(corefile, kubeconfig string) (string, []string) {
	var out []string
	var changes []string
	depth := 0
	inK8s := false
	k8sDepth := 0
	for _, line := range strings.Split(corefile, "\n") {
		t := strings.TrimSpace(line)
		if i := strings.Index(t, "#"); i >= 0 {
			t = strings.TrimSpace(t[:i])
		}
		opens, closes := strings.Count(t, "{"), strings.Count(t, "}")
		switch {
		case depth == 0 && strings.HasSuffix(t, "{"):
			out = append(out, line, `    log . "`+corefileLogFormat+`"`)
			changes = append(changes, "added to server block "+strings.TrimSpace(strings.TrimSuffix(t, "{"))+": log (the agent records every query; answers are unchanged)")
			depth += opens - closes
			continue
		case depth == 1 && (t == "kubernetes" || strings.HasPrefix(t, "kubernetes ")):
			kc := "        kubeconfig " + kubeconfig + " kpath-lab"
			if strings.HasSuffix(t, "{") {
				out = append(out, line, kc)
				inK8s, k8sDepth = true, depth+1
			} else {
				out = append(out, line+" {", kc, "    }")
			}
			changes = append(changes, "kubernetes plugin: kubeconfig "+kubeconfig+" (a pod would use its service account token; the lab's API server is reached directly)")
			depth += opens - closes
			continue
		case inK8s && depth == k8sDepth && (strings.HasPrefix(t, "kubeconfig ") || strings.HasPrefix(t, "endpoint ")):
			changes = append(changes, "kubernetes plugin: removed `"+t+"` (it names the real cluster)")
			continue
		}
		depth += opens - closes
		if inK8s && depth < k8sDepth {
			inK8s = false
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n"), changes
}

// snapshotCorefile is the Corefile the model uses (trace.New and the lab's model server): ConfigMap
// kube-system/coredns data[Corefile], or kubeadm's default.
func snapshotCorefile(snap *cluster.Snapshot) string {
	if cm := snap.ConfigMap("kube-system", "coredns"); cm != nil && cm.Data["Corefile"] != "" {
		return cm.Data["Corefile"]
	}
	return kubeadmCorefile
}

// coreDNS prepares the real CoreDNS servers; the agent starts them (it reads their query logs as they are written).
func (r *realBuilder) coreDNS(_ context.Context) error {
	rs := r.rs
	cf, changes := labCorefile(snapshotCorefile(r.b.snap), r.creds.file("coredns.kubeconfig"))
	if err := os.WriteFile(filepath.Join(rs.Dir, "Corefile"), []byte(cf), 0o644); err != nil {
		return err
	}
	rs.CorefileChanges = changes
	for _, pp := range r.b.plan.Pods {
		if pp.DNS && pp.Silent == "" {
			rs.CoreDNS = append(rs.CoreDNS, CoreDNSServer{Pod: pp.Ref(), NS: pp.NS, IP: pp.IP,
				Log: filepath.Join(rs.Dir, "coredns_"+nsSafe(pp.Namespace)+"."+nsSafe(pp.Name)+".log")})
		}
	}
	return nil
}

// runCoreDNS starts a real CoreDNS in every kube-dns pod namespace as a child of the agent, logs each query it
// answers to the lab's DNS log (stamped when the line arrives, so queries to different servers keep their order),
// and waits until each answers. The processes are killed when ctx ends.
func runCoreDNS(ctx context.Context, st *State, logQuery func(DNSLogEntry)) ([]RealProcess, error) {
	rs := st.Real
	bin := rs.Binaries[CompCoreDNS]
	conf := filepath.Join(rs.Dir, "Corefile")
	var procs []RealProcess
	var cmds []*exec.Cmd
	go func() {
		<-ctx.Done()
		for _, c := range cmds {
			_ = c.Process.Signal(syscall.SIGTERM)
		}
		time.Sleep(time.Second)
		for _, c := range cmds {
			_ = c.Process.Kill()
		}
	}()
	var mu sync.Mutex
	for _, srv := range rs.CoreDNS {
		lf, err := os.OpenFile(srv.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return procs, err
		}
		argv := []string{bin, "-conf", conf}
		cmd := exec.Command("ip", append([]string{"netns", "exec", srv.NS}, argv...)...)
		cmd.Dir = rs.Dir
		cmd.Stderr = lf
		out, err := cmd.StdoutPipe()
		if err != nil {
			lf.Close()
			return procs, err
		}
		// Dies with the agent even if the agent is killed -9 (lab down also stops it from the state file).
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			lf.Close()
			return procs, fmt.Errorf("starting CoreDNS in %s: %w", srv.NS, err)
		}
		mu.Lock()
		cmds = append(cmds, cmd)
		mu.Unlock()
		go func() { _ = cmd.Wait() }()
		who := srv.Pod
		go func() {
			defer lf.Close()
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				t := time.Now().UnixNano()
				line := sc.Text()
				io.WriteString(lf, line+"\n")
				if e, ok := parseCoreDNSQuery(line); ok {
					e.T, e.Server = t, who
					logQuery(e)
				}
			}
		}()
		procs = append(procs, RealProcess{Process: Process{PID: cmd.Process.Pid, StartTime: procStartTime(cmd.Process.Pid), Cmd: strings.Join(argv, " ")},
			Name: "coredns " + srv.Pod, NS: srv.NS, Log: srv.Log})
	}
	for i, srv := range rs.CoreDNS {
		if err := waitDNSAnswers(ctx, srv, rs.ClusterDomain, &procs[i], 60*time.Second); err != nil {
			return procs, err
		}
	}
	return procs, nil
}

// parseCoreDNSQuery reads one line in corefileLogFormat ("[INFO] kpath-query 10.244.1.6 45123 A name. udp NOERROR").
func parseCoreDNSQuery(line string) (DNSLogEntry, bool) {
	i := strings.Index(line, "kpath-query ")
	if i < 0 {
		return DNSLogEntry{}, false
	}
	f := strings.Fields(line[i+len("kpath-query "):])
	if len(f) < 6 {
		return DNSLogEntry{}, false
	}
	return DNSLogEntry{Client: net.JoinHostPort(f[0], f[1]), Type: f[2], Name: f[3], Rcode: f[5]}, true
}

// waitDNSAnswers waits until the server answers a query for the kubernetes Service name (any rcode but SERVFAIL
// and REFUSED: the kubernetes plugin has synced).
func waitDNSAnswers(ctx context.Context, srv CoreDNSServer, domain string, pr *RealProcess, timeout time.Duration) error {
	if domain == "" {
		domain = "cluster.local"
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		if !pr.alive() {
			return pr.exitedErr()
		}
		m, err := exchangeIn(srv.NS, netip.AddrPortFrom(srv.IP, 53), "kubernetes.default.svc."+domain, miekg.TypeA)
		if err == nil && m.Rcode != miekg.RcodeServerFailure && m.Rcode != miekg.RcodeRefused {
			return nil
		}
		if err != nil {
			last = err.Error()
		} else {
			last = miekg.RcodeToString[m.Rcode]
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("CoreDNS in %s did not answer within %s (%s; log %s)", srv.NS, timeout, last, srv.Log)
}

// exchangeIn sends one DNS query over UDP from inside ns.
func exchangeIn(ns string, server netip.AddrPort, name string, qtype uint16) (*miekg.Msg, error) {
	c := &miekg.Client{Net: "udp", Timeout: 2 * time.Second}
	var conn *miekg.Conn
	err := inNetns(ns, func() error {
		var err error
		conn, err = c.Dial(server.String())
		return err
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	m := new(miekg.Msg)
	m.SetQuestion(miekg.Fqdn(name), qtype)
	m.RecursionDesired = true
	r, _, err := c.ExchangeWithConn(m, conn)
	return r, err
}

// DNSQuestion is one name and type asked of both the real CoreDNS and the model.
type DNSQuestion struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// DNSCensus lists questions that exercise the kubernetes plugin over the snapshot: every Service's name (A, and
// SRV for each named port), headless Services' pod hostnames, ExternalName CNAMEs, reverse lookups of ClusterIPs,
// a pod A record, and names that do not exist.
func DNSCensus(snap *cluster.Snapshot) []DNSQuestion {
	dom := snap.Profile.ClusterDomain
	if dom == "" {
		dom = "cluster.local"
	}
	var qs []DNSQuestion
	add := func(name, typ string) { qs = append(qs, DNSQuestion{miekg.Fqdn(name), typ}) }
	for _, s := range snap.Services {
		base := s.Name + "." + s.Namespace + ".svc." + dom
		add(base, "A")
		for _, p := range s.Spec.Ports {
			if p.Name != "" {
				add("_"+p.Name+"._"+strings.ToLower(string(p.Protocol))+"."+base, "SRV")
			}
		}
		if ip, err := netip.ParseAddr(s.Spec.ClusterIP); err == nil && ip.Is4() {
			rev, _ := miekg.ReverseAddr(ip.String())
			add(rev, "PTR")
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			for _, sl := range snap.SlicesFor(s.Namespace, s.Name) {
				for _, e := range sl.Endpoints {
					if e.Hostname != nil {
						add(*e.Hostname+"."+base, "A")
					}
				}
			}
		}
	}
	seenNS := map[string]bool{}
	for _, p := range snap.Pods {
		if seenNS[p.Namespace] || p.Status.PodIP == "" || p.Spec.HostNetwork {
			continue
		}
		seenNS[p.Namespace] = true
		add(strings.ReplaceAll(p.Status.PodIP, ".", "-")+"."+p.Namespace+".pod."+dom, "A")
		add("no-such-service."+p.Namespace+".svc."+dom, "A")
	}
	add("no-such-namespace.svc."+dom, "A")
	add("kubernetes.default.svc."+dom, "AAAA")
	return qs
}

// dnsAnswerKey is an answer as compared: rcode and the answer records without TTLs (the cache plugin counts them
// down), sorted (loadbalance shuffles them).
func dnsAnswerKey(m *miekg.Msg) string {
	if m == nil {
		return "no answer"
	}
	var rrs []string
	for _, rr := range m.Answer {
		c := miekg.Copy(rr)
		c.Header().Ttl = 0
		rrs = append(rrs, strings.ReplaceAll(c.String(), "\t", " "))
	}
	sort.Strings(rrs)
	if len(rrs) == 0 {
		return miekg.RcodeToString[m.Rcode] + " (no records)"
	}
	return miekg.RcodeToString[m.Rcode] + " " + strings.Join(rrs, " | ")
}

// DNSDiff asks every real CoreDNS each question (from inside its own pod namespace) and the model's CoreDNS the
// same, and returns what differs; answers the model does not know (forwarded names) are listed as not compared.
func DNSDiff(st *State, snap *cluster.Snapshot, qs []DNSQuestion) (diffs []Difference, notCompared []string, err error) {
	if st.Real == nil {
		return nil, nil, fmt.Errorf("lab %s was not built with --real", st.Name)
	}
	model, err := modelDNS(snap)
	if err != nil {
		return nil, nil, err
	}
	for _, q := range qs {
		qt, ok := miekg.StringToType[q.Type]
		if !ok {
			return nil, nil, fmt.Errorf("DNS type %q", q.Type)
		}
		ma := model.Answer(miekg.Question{Name: q.Name, Qtype: qt, Qclass: miekg.ClassINET})
		for _, srv := range st.Real.CoreDNS {
			what := fmt.Sprintf("DNS %s %s at %s", q.Name, q.Type, srv.Pod)
			rm, rerr := exchangeIn(srv.NS, netip.AddrPortFrom(srv.IP, 53), q.Name, qt)
			if !ma.Known {
				notCompared = append(notCompared, fmt.Sprintf("%s: the model does not know the answer (%s); real: %s", what, ma.Why, dnsResultString(rm, rerr)))
				continue
			}
			pk, ok := dnsAnswerKey(ma.Msg), dnsResultString(rm, rerr)
			if pk != ok {
				diffs = append(diffs, Difference{What: what, Predicted: pk, Observed: ok})
			}
		}
	}
	return diffs, notCompared, nil
}

func dnsResultString(m *miekg.Msg, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return dnsAnswerKey(m)
}

// waitLogQuiet waits until a log file has not grown for quiet (at most max).
func waitLogQuiet(path string, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, since := dnsLogSize(path), time.Now()
	for time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if n := dnsLogSize(path); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) >= quiet {
			return
		}
	}
}
