package lab

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	miekg "github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/dns"
)

// DNSLogEntry is one query the lab's DNS server answered.
type DNSLogEntry struct {
	T      int64    `json:"t"` // unix nanoseconds when the query was received
	Server string   `json:"server"`
	Client string   `json:"client"`
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Rcode  string   `json:"rcode"`
	Answer []string `json:"answer,omitempty"`
}

// RunAgent serves the lab: the model's CoreDNS on port 53 of every kube-dns pod namespace and an echo server on
// every other declared container port (TCP answers a line or an HTTP request with the pod's ns/name; UDP echoes
// it). Listeners are opened inside each namespace and served from this one process. It writes "ready" to ready
// once every listener is up, and serves until ctx ends.
func RunAgent(ctx context.Context, st *State, snap *cluster.Snapshot, ready io.Writer) error {
	var dnsSrv *dns.Server
	var err error
	if dnsSrv, err = modelDNS(snap); err != nil {
		return err
	}
	logf, err := os.OpenFile(st.DNSLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	var logMu sync.Mutex
	logQuery := func(e DNSLogEntry) {
		b, _ := json.Marshal(e)
		logMu.Lock()
		logf.Write(append(b, '\n'))
		logMu.Unlock()
	}
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	type job struct {
		ns, who string
		ports   []ListenPort
		dns     bool
	}
	var jobs []job
	for _, pp := range st.Plan.Pods {
		if pp.Silent != "" || (pp.DNS && st.Real != nil) {
			continue // with --real, the kube-dns pods run real CoreDNS (started below)
		}
		jobs = append(jobs, job{pp.NS, pp.Ref(), pp.Listen, pp.DNS})
	}
	for _, n := range st.Plan.Nodes {
		if len(n.HostListen) > 0 {
			jobs = append(jobs, job{n.NS, "node/" + n.Name, n.HostListen, false})
		}
	}
	n := 0
	for _, j := range jobs {
		for _, lp := range j.ports {
			var tl net.Listener
			var pc net.PacketConn
			addr := ":" + strconv.Itoa(lp.Port)
			err := inNetns(j.ns, func() error {
				var err error
				if lp.Proto == "UDP" {
					pc, err = net.ListenPacket("udp4", addr)
				} else {
					tl, err = net.Listen("tcp4", addr)
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: listening on %s/%d: %w", j.who, lp.Proto, lp.Port, err)
			}
			n++
			who := j.who
			switch {
			case j.dns && lp.Port == 53:
				h := &loggingDNS{srv: dnsSrv, who: who, log: logQuery}
				s := &miekg.Server{Handler: h}
				if pc != nil {
					s.PacketConn = pc
				} else {
					s.Listener = tl
				}
				closers = append(closers, closerFunc(func() error { return s.Shutdown() }))
				go s.ActivateAndServe()
			case pc != nil:
				closers = append(closers, pc)
				go serveUDPEcho(pc, who)
			default:
				closers = append(closers, tl)
				go serveTCPEcho(tl, who)
			}
		}
	}
	proxies, nproxy, err := startMeshProxies(st, snap)
	if err != nil {
		return err
	}
	closers = append(closers, proxies)
	n += nproxy
	var children []RealProcess
	if st.Real != nil {
		if f, ok := ready.(*os.File); ok {
			// The ready pipe came from `lab up` without close-on-exec: CoreDNS must not inherit it, or `lab up`
			// never sees it close.
			syscall.CloseOnExec(int(f.Fd()))
		}
		children, err = runCoreDNS(ctx, st, logQuery)
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(os.Stderr, "%s lab %s agent: %d listeners in %d namespaces, %d CoreDNS\n", time.Now().Format(time.RFC3339), st.Name, n, len(jobs), len(children))
	if ready != nil {
		fmt.Fprintln(ready, "ready")
		writeAgentChildren(ready, children)
		if c, ok := ready.(io.Closer); ok {
			c.Close()
		}
	}
	<-ctx.Done()
	return nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func serveUDPEcho(pc net.PacketConn, who string) {
	buf := make([]byte, 65536)
	for {
		_, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		pc.WriteTo([]byte(who+"\n"), from)
	}
}

func serveTCPEcho(l net.Listener, who string) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			if err != nil && line == "" {
				return
			}
			if strings.Contains(line, " HTTP/1.") {
				for {
					h, err := br.ReadString('\n')
					if err != nil || strings.TrimSpace(h) == "" {
						break
					}
				}
				body := who + "\n"
				fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Kpath-Pod: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", who, len(body), body)
				return
			}
			io.WriteString(c, who+"\n")
		}()
	}
}

// loggingDNS answers with the model and logs each query.
type loggingDNS struct {
	srv *dns.Server
	who string
	log func(DNSLogEntry)
}

func (h *loggingDNS) ServeDNS(w miekg.ResponseWriter, r *miekg.Msg) {
	t := time.Now().UnixNano()
	entry := func(m *miekg.Msg) DNSLogEntry {
		e := DNSLogEntry{T: t, Server: h.who, Client: w.RemoteAddr().String()}
		if len(r.Question) > 0 {
			e.Name, e.Type = r.Question[0].Name, miekg.TypeToString[r.Question[0].Qtype]
		}
		if m != nil {
			e.Rcode = miekg.RcodeToString[m.Rcode]
			for _, a := range m.Answer {
				e.Answer = append(e.Answer, a.String())
			}
		}
		return e
	}
	// Log before the reply leaves: once the client has its answer, the log already holds the query, so a reader
	// that waits for the client (lab trace) never misses the last one.
	rw := &recordingWriter{ResponseWriter: w, before: func(m *miekg.Msg) { h.log(entry(m)) }}
	h.srv.ServeDNS(rw, r)
	if !rw.wrote {
		h.log(entry(nil))
	}
}

type recordingWriter struct {
	miekg.ResponseWriter
	before func(*miekg.Msg)
	wrote  bool
}

func (w *recordingWriter) WriteMsg(m *miekg.Msg) error {
	if !w.wrote {
		w.wrote = true
		w.before(m)
	}
	return w.ResponseWriter.WriteMsg(m)
}

// modelDNS is the CoreDNS model the trace engine uses (trace.New): the Corefile from ConfigMap kube-system/coredns
// or kubeadm's default, with the kube-dns pod IPs as the server's own addresses.
func modelDNS(snap *cluster.Snapshot) (*dns.Server, error) {
	corefile := kubeadmCorefile
	if cm := snap.ConfigMap("kube-system", "coredns"); cm != nil && cm.Data["Corefile"] != "" {
		corefile = cm.Data["Corefile"]
	}
	cf, err := dns.ParseCorefile(corefile)
	if err != nil {
		return nil, fmt.Errorf("ConfigMap kube-system/coredns data[Corefile]: %w", err)
	}
	var local []netip.Addr
	for _, p := range snap.PodsMatching("kube-system", kubeDNSSelector) {
		if ip, err := netip.ParseAddr(p.Status.PodIP); err == nil {
			local = append(local, ip)
		}
	}
	return dns.NewServer(cf, dnsView{snap}, dns.ServerOptions{LocalIPs: local})
}

// kubeadm's default Corefile, as the trace engine assumes when the snapshot has none.
const kubeadmCorefile = `.:53 {
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

// dnsView lets the DNS model read the snapshot (the same view the trace engine gives it).
type dnsView struct{ s *cluster.Snapshot }

func (v dnsView) Service(ns, name string) *corev1.Service { return v.s.Service(ns, name) }
func (v dnsView) EndpointSlices(ns, svc string) []*discoveryv1.EndpointSlice {
	return v.s.SlicesFor(ns, svc)
}
func (v dnsView) NamespaceExists(ns string) bool                   { return v.s.NamespaceExists(ns) }
func (v dnsView) PodsByIP(ip netip.Addr) []*corev1.Pod             { return v.s.PodsByIP(ip) }
func (v dnsView) ServiceByClusterIP(ip netip.Addr) *corev1.Service { return v.s.ServiceByIP(ip) }
func (v dnsView) EndpointSlicesByAddress(ip netip.Addr) []*discoveryv1.EndpointSlice {
	return v.s.SlicesByAddress(ip)
}
