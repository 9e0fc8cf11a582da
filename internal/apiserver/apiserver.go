// Package apiserver runs a real kube-apiserver and etcd on loopback for tests: generated serving certificate,
// static bearer tokens, service-account keys; it applies fixtures with client-go and stops both processes on cleanup.
package apiserver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the kube-apiserver release test/apiserver/go.mod builds.
const Version = "v1.35.4"

// Admin is the user in system:masters; other users start with no permissions.
const Admin = "admin"

// Options configure a server.
type Options struct {
	// ServiceCIDR is --service-cluster-ip-range (the demo's 10.96.0.0/12 when empty).
	ServiceCIDR string
	// Users get a bearer token each (besides Admin); bind roles to them with RBAC.
	Users []string
}

// Server is a running kube-apiserver + etcd pair.
type Server struct {
	URL    string // https://127.x.y.z:6443
	CA     []byte // PEM of the CA that signed the serving certificate
	Dir    string
	tokens map[string]string
	procs  []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
}

// Binary returns the kube-apiserver to run: $KPATH_KUBE_APISERVER, else the one test/apiserver/build.sh cached in
// $KPATH_CACHE (default ~/.cache/kpath)/bin. It returns "" when neither exists.
func Binary() string {
	if p := os.Getenv("KPATH_KUBE_APISERVER"); p != "" {
		return p
	}
	cache := os.Getenv("KPATH_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "kpath")
	}
	p := filepath.Join(cache, "bin", "kube-apiserver-"+Version)
	if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
		return p
	}
	return ""
}

// Start runs etcd and kube-apiserver on free loopback ports and waits for /readyz. It skips the test when either
// binary is missing (saying how to get it) and stops both processes in t.Cleanup, also when the test fails.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	apiBin := Binary()
	if apiBin == "" {
		t.Skipf("kube-apiserver %s is not built: run test/apiserver/build.sh (about 10 min on 2 cores, once per machine; ./test.sh does it) or set KPATH_KUBE_APISERVER", Version)
	}
	etcdBin, err := exec.LookPath("etcd")
	if err != nil {
		t.Skip("etcd is not installed: apt-get install etcd-server (./test.sh installs it when root)")
	}
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = "10.96.0.0/12"
	}
	s := &Server{Dir: t.TempDir(), tokens: map[string]string{}}
	t.Cleanup(func() { s.stop(t) })
	if err := s.start(apiBin, etcdBin, opts); err != nil {
		t.Fatalf("starting kube-apiserver: %v\n%s", err, s.logs())
	}
	return s
}

func (s *Server) start(apiBin, etcdBin string, opts Options) error {
	// etcd on two free loopback ports.
	cport, pport := freePort("127.0.0.1"), freePort("127.0.0.1")
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", cport)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pport)
	if err := s.run("etcd", etcdBin, "--name=kpath", "--data-dir="+filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=kpath="+peer,
		"--log-level=warn"); err != nil {
		return err
	}
	if err := waitHTTP(etcdURL+"/health", nil, 30*time.Second); err != nil {
		return fmt.Errorf("etcd did not become healthy: %w", err)
	}

	// kube-apiserver on 127.a.b.c:6443: a loopback address of its own, so the kubernetes Service's targetPort is
	// the usual 6443 (the bootstrap controller reconciles it to the secure port) and tests never collide.
	host := "127.0.0.1"
	port := freePort(host)
	for i := 0; i < 20; i++ {
		h := fmt.Sprintf("127.%d.%d.%d", 1+mrand.IntN(250), mrand.IntN(256), 1+mrand.IntN(250))
		if l, err := net.Listen("tcp", net.JoinHostPort(h, "6443")); err == nil {
			l.Close()
			host, port = h, 6443
			break
		}
	}
	caPEM, certPEM, keyPEM, err := ServingCert(host, 24*time.Hour)
	if err != nil {
		return err
	}
	saKey, saPub, err := SAKeys()
	if err != nil {
		return err
	}
	var tokens strings.Builder
	users := append([]string{Admin}, opts.Users...)
	for i, u := range users {
		tok := randHex(16)
		s.tokens[u] = tok
		groups := "system:authenticated"
		if u == Admin {
			groups = "system:masters,system:authenticated"
		}
		fmt.Fprintf(&tokens, "%s,%s,uid-%d,\"%s\"\n", tok, u, i, groups)
	}
	files := map[string][]byte{"ca.crt": caPEM, "tls.crt": certPEM, "tls.key": keyPEM, "sa.key": saKey, "sa.pub": saPub,
		"tokens.csv": []byte(tokens.String())}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return err
		}
	}
	s.CA = caPEM
	s.URL = "https://" + net.JoinHostPort(host, strconv.Itoa(port))
	if err := s.run("kube-apiserver", apiBin,
		"--etcd-servers="+etcdURL,
		"--bind-address="+host, "--secure-port="+strconv.Itoa(port), "--advertise-address="+host,
		"--tls-cert-file="+filepath.Join(s.Dir, "tls.crt"), "--tls-private-key-file="+filepath.Join(s.Dir, "tls.key"),
		"--cert-dir="+filepath.Join(s.Dir, "certs"),
		"--token-auth-file="+filepath.Join(s.Dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--allow-privileged=true", // kube-proxy, CNI and mesh DaemonSets are privileged
		"--service-account-key-file="+filepath.Join(s.Dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(s.Dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-cluster-ip-range="+opts.ServiceCIDR,
		// No endpoint reconciler: it would write the loopback advertise address into the kubernetes
		// EndpointSlice (and loopback is not a valid endpoint); fixtures bring their own.
		"--endpoint-reconciler-type=none",
		// Admission that stands in for controllers this test cluster does not run (no controller-manager makes
		// default ServiceAccounts, no node lifecycle controller lifts not-ready taints) or that rewrites fixtures.
		"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition,DefaultTolerationSeconds,Priority",
		"--v=1"); err != nil {
		return err
	}
	if err := waitHTTP(s.URL+"/readyz", s, 90*time.Second); err != nil {
		return fmt.Errorf("kube-apiserver did not become ready: %w", err)
	}
	return nil
}

// Token returns the bearer token of a user given in Options.Users (or Admin).
func (s *Server) Token(user string) string { return s.tokens[user] }

// Config is a client config for a user.
func (s *Server) Config(user string) *rest.Config {
	return &rest.Config{Host: s.URL, BearerToken: s.tokens[user], TLSClientConfig: rest.TLSClientConfig{CAData: s.CA},
		QPS: 100, Burst: 200, WarningHandler: rest.NoWarnings{}}
}

// Kubeconfig writes a kubeconfig file for a user with one context, "kpath-test", and returns its path.
func (s *Server) Kubeconfig(t testing.TB, user string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["test"] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.CA}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: s.tokens[user]}
	cfg.Contexts["kpath-test"] = &clientcmdapi.Context{Cluster: "test", AuthInfo: user}
	cfg.CurrentContext = "kpath-test"
	p := filepath.Join(t.TempDir(), "kubeconfig-"+user)
	if err := clientcmd.WriteToFile(*cfg, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (s *Server) run(name, bin string, args ...string) error {
	logPath := filepath.Join(s.Dir, name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	// Own process group (stopped as a group); killed with the test binary if it dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	lf.Close()
	p := &proc{name: name, cmd: cmd, log: logPath}
	s.procs = append(s.procs, p)
	go cmd.Wait()
	return nil
}

// stop terminates kube-apiserver, then etcd: SIGTERM to each process group, SIGKILL after 10 s.
func (s *Server) stop(t testing.TB) {
	if t.Failed() {
		t.Logf("server logs (tail):\n%s", s.logs())
	}
	for i := len(s.procs) - 1; i >= 0; i-- {
		p := s.procs[i]
		pid := p.cmd.Process.Pid
		syscall.Kill(-pid, syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil && !exited(p.cmd) {
			time.Sleep(50 * time.Millisecond)
		}
		syscall.Kill(-pid, syscall.SIGKILL)
	}
	s.procs = nil
}

func exited(c *exec.Cmd) bool { return c.ProcessState != nil }

func (s *Server) logs() string {
	var b strings.Builder
	for _, p := range s.procs {
		data, _ := os.ReadFile(p.log)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 25 {
			lines = lines[len(lines)-25:]
		}
		fmt.Fprintf(&b, "--- %s (%s)\n%s\n", p.name, p.log, strings.Join(lines, "\n"))
	}
	return b.String()
}

func waitHTTP(url string, s *Server, timeout time.Duration) error {
	client := &http.Client{Timeout: 5 * time.Second}
	if s != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(s.CA)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
		if s != nil {
			req.Header.Set("Authorization", "Bearer "+s.tokens[Admin])
		}
		resp, err := client.Do(req)
		if err == nil {
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(body.String()))
		} else {
			last = err.Error()
		}
		if s != nil {
			for _, p := range s.procs {
				if exited(p.cmd) {
					return fmt.Errorf("%s exited: %v", p.name, p.cmd.ProcessState)
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s: %s after %s", url, last, timeout)
}

func freePort(host string) int {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// ServingCert makes a throwaway CA and a kube-apiserver serving certificate for host (and localhost and the
// in-cluster kubernetes names), valid for validity. The lab's real control plane uses it too.
func ServingCert(host string, validity time.Duration) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kpath-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(validity),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"},
		IPAddresses: []net.IP{net.ParseIP(host), net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

// SAKeys makes a service-account signing key pair (ES256).
func SAKeys() (keyPEM, pubPEM []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	pder, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), nil
}
