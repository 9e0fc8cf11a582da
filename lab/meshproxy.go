package lab

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/packet"
)

// MeshEvent is one connection a lab proxy handled, written to the mesh event log before the proxy forwards a
// byte (so `lab trace` reads it once the client has its answer).
type MeshEvent struct {
	T        int64  `json:"t"` // unix nanoseconds at accept
	Pod      string `json:"pod"`
	Mesh     string `json:"mesh"`
	Dir      string `json:"dir"`      // outbound | inbound
	Peer     string `json:"peer"`     // the accepted connection's remote address
	Listener string `json:"listener"` // the proxy listener that accepted it
	OrigDst  string `json:"origDst"`  // SO_ORIGINAL_DST
	UID      int    `json:"uid"`      // the uid owning the proxy's sockets
	// Outbound.
	Service     string `json:"service,omitempty"`
	RouteObject string `json:"routeObject,omitempty"`
	RouteRule   string `json:"routeRule,omitempty"`
	Passthrough bool   `json:"passthrough,omitempty"`
	Why         string `json:"why,omitempty"`
	Target      string `json:"target,omitempty"`   // where the proxy connected
	Upstream    string `json:"upstream,omitempty"` // the proxy's own socket (local address) to Target
	TLS         bool   `json:"tls"`
	TLSWhy      string `json:"tlsWhy,omitempty"`
	// Identities from the TLS handshake: the certificate this proxy presented and the one its peer presented
	// (verified against the lab CA).
	LocalID string `json:"localID,omitempty"`
	PeerID  string `json:"peerID,omitempty"`
	// Inbound.
	L7         *packet.L7     `json:"l7,omitempty"`
	PeerMode   string         `json:"peerMode,omitempty"`
	PeerObject string         `json:"peerObject,omitempty"`
	PeerRule   string         `json:"peerRule,omitempty"`
	Opaque     bool           `json:"opaque,omitempty"`
	OpaqueWhy  string         `json:"opaqueWhy,omitempty"`
	Decision   *mesh.Decision `json:"decision,omitempty"`
	App        string         `json:"app,omitempty"` // local → app address of the hop to the application
	// Outcome: forwarded | rejected | failed; Reason says why when not forwarded.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Object  string `json:"object,omitempty"` // the object that rejected
}

// meshProxies serves the transparent proxies of every meshed pod in the plan from the agent process.
type meshProxies struct {
	st    *State
	view  *meshView
	pool  *x509.CertPool
	logMu sync.Mutex
	logf  *os.File
	ls    []net.Listener
}

// startMeshProxies opens each meshed pod's outbound and inbound listeners (as the proxy uid, inside the pod's
// namespace) and serves them until Close.
func startMeshProxies(st *State, snap *cluster.Snapshot) (*meshProxies, int, error) {
	pods := st.Plan.meshPods()
	if len(pods) == 0 {
		return nil, 0, nil
	}
	ca, err := os.ReadFile(MeshDirCA(st.Name))
	if err != nil {
		return nil, 0, fmt.Errorf("the lab CA: %w", err)
	}
	mp := &meshProxies{st: st, view: newMeshView(snap), pool: x509.NewCertPool()}
	if !mp.pool.AppendCertsFromPEM(ca) {
		return nil, 0, fmt.Errorf("%s holds no certificate", MeshDirCA(st.Name))
	}
	if mp.logf, err = os.OpenFile(meshEventLog(st.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, 0, err
	}
	n := 0
	for _, pp := range pods {
		pod := snap.Pod(pp.Namespace, pp.Name)
		if pod == nil {
			mp.Close()
			return nil, 0, fmt.Errorf("meshed pod %s is not in the snapshot the agent loaded", pp.Ref())
		}
		cert, err := tls.LoadX509KeyPair(pp.Mesh.Cert, pp.Mesh.Key)
		if err != nil {
			mp.Close()
			return nil, 0, fmt.Errorf("pod %s: the proxy's certificate: %w", pp.Ref(), err)
		}
		px := &podProxy{mp: mp, pp: pp, pod: pod, cert: cert}
		for _, l := range []struct {
			addr string
			dir  string
		}{{net.JoinHostPort(pp.Mesh.OutboundAddr, strconv.Itoa(pp.Mesh.OutboundPort)), mesh.Outbound},
			{net.JoinHostPort("0.0.0.0", strconv.Itoa(pp.Mesh.InboundPort)), mesh.Inbound}} {
			var ln net.Listener
			err := asProxy(pp.NS, pp.Mesh.ProxyUID, pp.Mesh.ProxyGID, func() error {
				var err error
				ln, err = net.Listen("tcp4", l.addr)
				return err
			})
			if err != nil {
				mp.Close()
				return nil, 0, fmt.Errorf("pod %s: the %s proxy listener %s: %w", pp.Ref(), l.dir, l.addr, err)
			}
			mp.ls = append(mp.ls, ln)
			n++
			go px.serve(ln, l.dir)
		}
	}
	return mp, n, nil
}

// MeshDirCA is the lab CA's certificate.
func MeshDirCA(name string) string { return MeshDir(name) + "/ca.crt" }

func (mp *meshProxies) Close() error {
	if mp == nil {
		return nil
	}
	for _, l := range mp.ls {
		l.Close()
	}
	if mp.logf != nil {
		mp.logf.Close()
	}
	return nil
}

func (mp *meshProxies) log(e *MeshEvent) {
	b, _ := json.Marshal(e)
	mp.logMu.Lock()
	mp.logf.Write(append(b, '\n'))
	mp.logMu.Unlock()
}

// asProxy runs f on a fresh OS thread that entered network namespace ns and then dropped to uid/gid with
// per-thread setresuid/setresgid/setgroups (Linux credentials belong to a thread; the raw syscalls change only
// this one). Sockets f creates are owned by that uid, which is what `-m owner --uid-owner` and nft `skuid` read.
// The thread is never handed back to the Go scheduler: it exits with f, credentials and namespace with it.
func asProxy(ns string, uid, gid int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread is terminated when this goroutine returns
		errc <- func() error {
			h, err := netns.GetFromName(ns)
			if err != nil {
				return fmt.Errorf("network namespace %s: %w", ns, err)
			}
			defer h.Close()
			if err := netns.Set(h); err != nil {
				return fmt.Errorf("entering %s: %w", ns, err)
			}
			if _, _, e := syscall.RawSyscall(syscall.SYS_SETGROUPS, 0, 0, 0); e != 0 {
				return fmt.Errorf("setgroups: %w", e)
			}
			if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
				return fmt.Errorf("setresgid %d: %w", gid, e)
			}
			if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
				return fmt.Errorf("setresuid %d: %w", uid, e)
			}
			return f()
		}()
	}()
	return <-errc
}

// originalDst reads SO_ORIGINAL_DST: the destination the connection had before the nat REDIRECT.
func originalDst(c net.Conn) (netip.AddrPort, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return netip.AddrPort{}, err
	}
	var out netip.AddrPort
	var serr error
	err = rc.Control(func(fd uintptr) {
		const soOriginalDst = 80 // linux/netfilter_ipv4.h
		m, e := syscall.GetsockoptIPv6Mreq(int(fd), syscall.IPPROTO_IP, soOriginalDst)
		if e != nil {
			serr = e
			return
		}
		a := m.Multiaddr
		out = netip.AddrPortFrom(netip.AddrFrom4([4]byte{a[4], a[5], a[6], a[7]}), uint16(a[2])<<8|uint16(a[3]))
	})
	if err == nil {
		err = serr
	}
	return out, err
}

type podProxy struct {
	mp   *meshProxies
	pp   PodPlan
	pod  *corev1.Pod
	cert tls.Certificate
}

func (px *podProxy) serve(ln net.Listener, dir string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if dir == mesh.Outbound {
			go px.outbound(c)
		} else {
			go px.inbound(c)
		}
	}
}

func (px *podProxy) event(c net.Conn, dir string) *MeshEvent {
	return &MeshEvent{T: time.Now().UnixNano(), Pod: px.pp.Ref(), Mesh: string(px.pp.Mesh.Mesh), Dir: dir,
		Peer: c.RemoteAddr().String(), Listener: c.LocalAddr().String(), UID: px.pp.Mesh.ProxyUID}
}

// reset closes c with an RST (SO_LINGER 0), as a proxy refusing a connection does.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// sniffHTTP reads the request line and headers if the client speaks HTTP/1 first (waiting at most 300 ms for its
// first bytes), without consuming them: the reader replays everything. A first line that is not an HTTP request
// line ends the wait at once.
func sniffHTTP(c net.Conn, r *bufio.Reader) *packet.L7 {
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	if _, err := r.Peek(1); err != nil {
		return nil
	}
	for {
		buf, _ := r.Peek(r.Buffered())
		if line, _, ok := bytes.Cut(buf, []byte("\n")); ok && parseHTTPHead(line) == nil {
			return nil
		}
		if bytes.Contains(buf, []byte("\r\n\r\n")) || len(buf) >= r.Size() {
			return parseHTTPHead(buf)
		}
		if _, err := r.Peek(len(buf) + 1); err != nil {
			return parseHTTPHead(buf)
		}
	}
}

func parseHTTPHead(buf []byte) *packet.L7 {
	line, rest, _ := bytes.Cut(buf, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	f := strings.Fields(string(line))
	if len(f) != 3 || !strings.HasPrefix(f[2], "HTTP/1.") {
		return nil
	}
	l7 := &packet.L7{Scheme: "http", Method: f[0], Path: f[1]}
	for _, h := range strings.Split(string(rest), "\r\n") {
		if k, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "host") {
			l7.Host = strings.TrimSpace(v)
			if hh, _, err := net.SplitHostPort(l7.Host); err == nil {
				l7.Host = hh
			}
		}
	}
	return l7
}

// outbound: the application's connection, redirected by nat OUTPUT to this listener.
func (px *podProxy) outbound(c net.Conn) {
	ev := px.event(c, mesh.Outbound)
	orig, err := originalDst(c)
	if err != nil {
		ev.Outcome, ev.Reason = "failed", "SO_ORIGINAL_DST: "+err.Error()
		px.mp.log(ev)
		reset(c)
		return
	}
	ev.OrigDst = orig.String()
	br := bufio.NewReaderSize(c, 8192)
	l7 := sniffHTTP(c, br)
	op := px.mp.view.decideOutbound(px.pod, orig, l7)
	ev.Service, ev.RouteObject, ev.RouteRule, ev.Passthrough, ev.Why = op.Service, op.RouteObject, op.RouteRule, op.Passthrough, op.Why
	ev.TLS, ev.TLSWhy, ev.L7 = op.TLS, op.TLSWhy, l7
	if op.Reject != "" {
		ev.Outcome, ev.Reason, ev.Object = "rejected", op.Reject, op.RejectObject
		px.mp.log(ev)
		reset(c)
		return
	}
	ev.Target = op.Target.String()
	var up net.Conn
	err = asProxy(px.pp.NS, px.pp.Mesh.ProxyUID, px.pp.Mesh.ProxyGID, func() error {
		// Bind before connecting and log the connection's own address at once: if the network drops the SYN,
		// `lab trace` still knows which packet on the wire is this proxy's.
		d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
			var berr error
			err := rc.Control(func(fd uintptr) {
				if berr = syscall.Bind(int(fd), &syscall.SockaddrInet4{Addr: px.pp.IP.As4()}); berr != nil {
					return
				}
				sa, err := syscall.Getsockname(int(fd))
				if sa4, ok := sa.(*syscall.SockaddrInet4); ok && err == nil {
					ev.Upstream = netip.AddrPortFrom(px.pp.IP, uint16(sa4.Port)).String()
				}
			})
			if err != nil {
				return err
			}
			if berr == nil {
				pending := *ev
				pending.Outcome = "connecting"
				px.mp.log(&pending)
			}
			return berr
		}}
		var err error
		up, err = d.Dial("tcp4", op.Target.String())
		return err
	})
	if err != nil {
		ev.Outcome, ev.Reason = "failed", "connecting to "+op.Target.String()+": "+err.Error()
		px.mp.log(ev)
		reset(c)
		return
	}
	ev.Upstream = up.LocalAddr().String()
	if op.TLS {
		ev.LocalID = px.pp.Mesh.Identity
		tc := tls.Client(up, &tls.Config{Certificates: []tls.Certificate{px.cert}, InsecureSkipVerify: true, // verified below
			VerifyConnection: func(cs tls.ConnectionState) error { return px.mp.verifyPeer(cs, op.ServerIdentity, px.pp.Mesh.Mesh) },
			MinVersion:       tls.VersionTLS13})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			ev.Outcome, ev.Reason = "failed", "mTLS handshake with "+op.Target.String()+": "+err.Error()
			px.mp.log(ev)
			up.Close()
			reset(c)
			return
		}
		tc.SetDeadline(time.Time{})
		ev.PeerID = peerIdentity(tc.ConnectionState(), px.pp.Mesh.Mesh)
		up = tc
	}
	ev.Outcome = "forwarded"
	px.mp.log(ev)
	pipe(c, br, up)
}

// inbound: a connection redirected by nat PREROUTING to this listener.
func (px *podProxy) inbound(c net.Conn) {
	ev := px.event(c, mesh.Inbound)
	orig, err := originalDst(c)
	if err != nil {
		ev.Outcome, ev.Reason = "failed", "SO_ORIGINAL_DST: "+err.Error()
		px.mp.log(ev)
		reset(c)
		return
	}
	ev.OrigDst = orig.String()
	peer, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	var conn net.Conn = c
	br := bufio.NewReaderSize(c, 8192)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	first, _ := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	if len(first) == 1 && first[0] == 0x16 { // a TLS handshake record
		ev.LocalID = px.pp.Mesh.Identity
		tc := tls.Server(&prefixConn{Conn: c, r: br}, &tls.Config{Certificates: []tls.Certificate{px.cert},
			ClientAuth: tls.RequireAnyClientCert, // verified below against the lab CA
			VerifyConnection: func(cs tls.ConnectionState) error {
				return px.mp.verifyPeer(cs, "", px.pp.Mesh.Mesh)
			}, MinVersion: tls.VersionTLS13})
		tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err != nil {
			ev.Outcome, ev.Reason = "failed", "mTLS handshake: "+err.Error()
			px.mp.log(ev)
			reset(c)
			return
		}
		tc.SetDeadline(time.Time{})
		ev.TLS, ev.PeerID = true, peerIdentity(tc.ConnectionState(), px.pp.Mesh.Mesh)
		conn, br = tc, bufio.NewReaderSize(tc, 8192)
	}
	ev.L7 = sniffHTTP(conn, br)
	d := px.mp.view.decideInbound(px.pod, peer.Addr(), ev.PeerID, int(orig.Port()), ev.L7)
	ev.PeerMode, ev.PeerObject, ev.PeerRule, ev.Opaque, ev.OpaqueWhy = d.PeerMode, d.PeerObject, d.PeerRule, d.Opaque, d.OpaqueWhy
	if d.PeerReject != "" {
		ev.Outcome, ev.Reason, ev.Object = "rejected", d.PeerReject, d.PeerObject
		px.mp.log(ev)
		reset(c)
		return
	}
	ev.Decision = &d.Decision
	if d.Decision.Verdict != mesh.Allow {
		ev.Outcome, ev.Reason, ev.Object = "rejected", d.Decision.Why, d.Decision.Object
		px.mp.log(ev)
		if ev.L7 != nil && !d.Opaque {
			msg := "unauthorized request on route\n"
			hdr := "l5d-proxy-error: unauthorized request on route"
			if px.pp.Mesh.Mesh == cluster.MeshIstioSidecar {
				msg, hdr = "RBAC: access denied", "server: envoy"
			}
			fmt.Fprintf(conn, "HTTP/1.1 403 Forbidden\r\n%s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", hdr, len(msg), msg)
			conn.Close()
			return
		}
		if px.pp.Mesh.Mesh == cluster.MeshIstioSidecar {
			conn.Close() // Envoy's RBAC filter closes a denied TCP connection
			return
		}
		reset(c)
		return
	}
	// The hop to the application: Linkerd over localhost, Envoy from 127.0.0.6 to the pod IP.
	var app net.Conn
	err = asProxy(px.pp.NS, px.pp.Mesh.ProxyUID, px.pp.Mesh.ProxyGID, func() error {
		var err error
		d := net.Dialer{Timeout: 5 * time.Second}
		to := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(orig.Port())))
		if px.pp.Mesh.Mesh == cluster.MeshIstioSidecar {
			d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 6)}
			to = orig.String()
		}
		app, err = d.Dial("tcp4", to)
		return err
	})
	if err != nil {
		ev.Outcome, ev.Reason = "failed", "connecting to the application: "+err.Error()
		px.mp.log(ev)
		reset(c)
		return
	}
	ev.App = app.LocalAddr().String() + " → " + app.RemoteAddr().String()
	ev.Outcome = "forwarded"
	px.mp.log(ev)
	pipe(conn, br, app)
}

// verifyPeer checks the peer's chain against the lab CA and, when want is set, its identity.
func (mp *meshProxies) verifyPeer(cs tls.ConnectionState, want string, m cluster.Mesh) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the peer presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: mp.pool, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("the peer's certificate does not chain to the lab CA: %w", err)
	}
	if got := peerIdentity(cs, m); want != "" && got != want {
		return fmt.Errorf("the peer is %q, want %q", got, want)
	}
	return nil
}

// peerIdentity reads the identity from the peer's certificate: the DNS SAN (Linkerd) or URI SAN (Istio).
func peerIdentity(cs tls.ConnectionState, m cluster.Mesh) string {
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	c := cs.PeerCertificates[0]
	if m == cluster.MeshIstioSidecar {
		for _, u := range c.URIs {
			return u.String()
		}
		return ""
	}
	for _, d := range c.DNSNames {
		return d
	}
	return ""
}

// prefixConn reads first from r (bytes already peeked), then from the connection.
type prefixConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *prefixConn) Read(b []byte) (int, error) { return p.r.Read(b) }

// pipe copies both ways until either side is done; down's reader r holds bytes already read from down.
func pipe(down net.Conn, r io.Reader, up net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(up, r)
		if cw, ok := up.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		io.Copy(down, up)
		if cw, ok := down.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		done <- struct{}{}
	}()
	<-done
	// Give the other direction a moment to drain, then close both.
	t := time.NewTimer(5 * time.Second)
	select {
	case <-done:
	case <-t.C:
	}
	t.Stop()
	down.Close()
	up.Close()
}
