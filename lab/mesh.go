package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/mesh/capture"
)

// A meshed pod in the lab gets what its injector would give it: the interception rules the init container (or
// CNI plugin) installs, rendered by mesh/capture and loaded with iptables-restore inside the pod's namespace, and a
// transparent proxy (lab/meshproxy.go) on the ports those rules redirect to, whose sockets belong to the proxy uid
// the rules exempt. Proxies speak mutual TLS to each other with certificates for the pods' ServiceAccount
// identities, issued at `lab up` by a CA the lab generates (its key never leaves the `lab up` process).

// PodMesh is the mesh part of a pod's plan.
type PodMesh struct {
	Mesh cluster.Mesh `json:"mesh"`
	// Why is the membership evidence (a container, an annotation, a label).
	Why string `json:"why"`
	// ServiceAccount and Identity: the certificate's identity, exactly as the model prints it.
	ServiceAccount string `json:"serviceAccount"`
	Identity       string `json:"identity"`
	// ProxyUID / ProxyGID own every socket of the proxy (the rules' --uid-owner / --gid-owner exemption).
	ProxyUID int `json:"proxyUID"`
	ProxyGID int `json:"proxyGID"`
	// OutboundPort and InboundPort are the proxy's listeners (4140/4143 Linkerd, 15001/15006 Istio).
	OutboundPort int    `json:"outboundPort"`
	InboundPort  int    `json:"inboundPort"`
	OutboundAddr string `json:"outboundAddr"` // 127.0.0.1 (Linkerd) or 0.0.0.0 (Envoy)
	// InitName names who installs the rules, as the model's journey does (linkerd-init, linkerd-cni, istio-init).
	InitName string `json:"initName"`
	// Rules is the iptables-restore input loaded in the pod's namespace; RulesBy says what renders it.
	Rules   string `json:"rules"`
	RulesBy string `json:"rulesBy"`
	// Cert and Key are the proxy's certificate files (in the lab's mesh directory).
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
}

// MeshDir is the directory of a lab's mesh files: the CA certificate, one certificate and key per identity, and
// the proxies' event log.
func MeshDir(name string) string { return filepath.Join(StateDir(), "lab-"+name+".mesh") }

// meshEventLog is the proxies' log (JSON lines, one MeshEvent per proxied connection).
func meshEventLog(name string) string { return filepath.Join(MeshDir(name), "events.log") }

// planMesh fills PodPlan.Mesh for every pod the mesh model says is proxied by a sidecar, and notes what is not
// built (ambient). It removes the proxy's own listener ports from the pod's echo servers (the proxy binds them).
func planMesh(snap *cluster.Snapshot, p *Plan) {
	prof := snap.Profile
	if prof.Mesh == "" || prof.Mesh == cluster.MeshNone {
		return
	}
	m := mesh.New(snap)
	built, ambient := 0, 0
	for i := range p.Pods {
		pp := &p.Pods[i]
		pod := snap.Pod(pp.Namespace, pp.Name)
		if pod == nil {
			continue
		}
		mb := m.Member(pod)
		if mb.Mesh == "" {
			continue
		}
		if !mb.Sidecar() {
			if mb.Mesh == cluster.MeshIstioAmbient {
				ambient++
			} else if mb.NotCaptured != "" {
				p.Notes = append(p.Notes, fmt.Sprintf("pod %s: %s opt-in but no interception (%s): no proxy", pp.Ref(), mb.Mesh, mb.NotCaptured))
			}
			continue
		}
		pm, err := podMeshFor(mb, pod)
		if err != nil {
			p.Notes = append(p.Notes, fmt.Sprintf("pod %s: %s interception not built: %v", pp.Ref(), mb.Mesh, err))
			continue
		}
		var keep []ListenPort
		for _, lp := range pp.Listen {
			if lp.Proto == "TCP" && (lp.Port == pm.InboundPort || lp.Port == pm.OutboundPort) {
				continue
			}
			keep = append(keep, lp)
		}
		pp.Listen = keep
		pp.Mesh = pm
		built++
	}
	if built > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("mesh: %d sidecar pod(s) get their rendered interception rules (iptables-restore in the pod namespace) and a lab proxy with mTLS from a lab CA; the echo server on a proxy container's other declared ports (admin, metrics) stands in for the proxy's own listener there", built))
	}
	if ambient > 0 {
		p.Notes = append(p.Notes, fmt.Sprintf("mesh: %d Istio ambient pod(s) are built without ztunnel (the model does not predict ambient journeys either)", ambient))
	}
}

func podMeshFor(mb mesh.Member, pod *corev1.Pod) (*PodMesh, error) {
	ip := pod.Status.PodIP
	text, err := mesh.RulesText(mb.Capture, strings.Contains(ip, ":"))
	if err != nil {
		return nil, err
	}
	pm := &PodMesh{Mesh: mb.Mesh, Why: mb.Why, ServiceAccount: mb.ServiceAccount, Identity: mb.Identity, Rules: text}
	switch c := mb.Capture.(type) {
	case capture.LinkerdConfig:
		pm.ProxyUID, pm.ProxyGID = c.ProxyUID, c.ProxyGID
		pm.OutboundPort, pm.InboundPort, pm.OutboundAddr = c.ProxyOutgoingPort, c.ProxyInboundPort, "127.0.0.1"
		pm.RulesBy = "linkerd proxy-init (" + c.InstalledBy + "), mesh/capture.RenderIPTables"
		pm.InitName = "linkerd-init"
		if c.InstalledBy == "linkerd-cni" {
			pm.InitName = "linkerd-cni"
		}
	case capture.IstioConfig:
		uid, _, _ := strings.Cut(c.ProxyUID, ",")
		gid, _, _ := strings.Cut(c.ProxyGID, ",")
		pm.ProxyUID, _ = strconv.Atoi(uid)
		pm.ProxyGID, _ = strconv.Atoi(gid)
		pm.OutboundPort, _ = strconv.Atoi(c.ProxyPort)
		pm.InboundPort, _ = strconv.Atoi(c.InboundCapturePort)
		pm.OutboundAddr = "0.0.0.0"
		if c.InboundInterceptionMode != capture.InterceptRedirect {
			return nil, fmt.Errorf("inbound interception mode %s (the lab proxy implements REDIRECT only)", c.InboundInterceptionMode)
		}
		if c.RedirectDNS {
			return nil, fmt.Errorf("DNS capture (ISTIO_META_DNS_CAPTURE) would send the pod's DNS to the agent on 15053, which the lab proxy does not serve")
		}
		if c.NativeNftables {
			return nil, fmt.Errorf("native nftables interception is not loaded by the lab yet")
		}
		pm.RulesBy = "istio-iptables (" + c.InstalledBy + "), mesh/capture.IstioIPTablesRestore"
		pm.InitName = "istio-init"
	default:
		return nil, fmt.Errorf("%s interception is not a sidecar's", mb.Mesh)
	}
	if pm.ProxyUID <= 0 {
		// Without a uid the rules have no owner exemption: the proxy would redirect itself. The lab never runs it.
		return nil, fmt.Errorf("the rules exempt no proxy uid (%d): the proxy's own connections would loop", pm.ProxyUID)
	}
	if pm.ProxyGID <= 0 {
		pm.ProxyGID = pm.ProxyUID
	}
	if pm.InboundPort == 0 || pm.OutboundPort == 0 {
		return nil, fmt.Errorf("proxy ports %d/%d do not resolve", pm.OutboundPort, pm.InboundPort)
	}
	return pm, nil
}

// meshPods returns the plan's meshed pods.
func (p *Plan) meshPods() []PodPlan {
	var out []PodPlan
	for _, pp := range p.Pods {
		if pp.Mesh != nil {
			out = append(out, pp)
		}
	}
	return out
}

// mesh loads every meshed pod's interception rules (plus the trace table, unless the policy step loaded it) and
// issues the proxies' certificates.
func (b *builder) mesh() error {
	pods := b.plan.meshPods()
	if len(pods) == 0 {
		return nil
	}
	if _, err := exec.LookPath("iptables-restore"); err != nil {
		return fmt.Errorf("%d meshed pod(s) need their interception rules loaded with iptables-restore, which is not on PATH (Debian: apt-get install iptables)", len(pods))
	}
	dir := MeshDir(b.st.Name)
	b.mu.Lock()
	b.st.Paths = append(b.st.Paths, dir)
	b.mu.Unlock()
	if err := b.st.Save(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := issueMeshCerts(dir, b.plan); err != nil {
		return fmt.Errorf("issuing the proxies' certificates: %w", err)
	}
	if err := os.WriteFile(meshEventLog(b.st.Name), nil, 0o600); err != nil {
		return err
	}
	return parallel(b.ctx, len(pods), func(i int) error {
		pp := pods[i]
		if _, err := run(b.ctx, pp.Mesh.Rules, "ip", "netns", "exec", pp.NS, "iptables-restore", "-w", "--noflush"); err != nil {
			return fmt.Errorf("pod %s: loading the %s interception rules: %w", pp.Ref(), pp.Mesh.Mesh, err)
		}
		if contains(b.st.Policy.IngressPods, pp.Ref()) {
			return nil // the policy step loaded the trace table already
		}
		if _, err := run(b.ctx, traceTableScript(), "ip", "netns", "exec", pp.NS, "nft", "-f", "-"); err != nil {
			return fmt.Errorf("pod %s: loading the trace table: %w", pp.Ref(), err)
		}
		return nil
	})
}

// issueMeshCerts creates the lab CA (kept in memory only) and one certificate per identity, and records the file
// names in the plan. Linkerd identities are DNS names (the SAN the proxy checks); Istio's are SPIFFE URIs.
func issueMeshCerts(dir string, p *Plan) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kpath lab " + p.Name + " mesh CA"},
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(7 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, _ := x509.ParseCertificate(caDER)
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return err
	}
	issued := map[string][2]string{}
	serial := int64(2)
	for i := range p.Pods {
		pm := p.Pods[i].Mesh
		if pm == nil {
			continue
		}
		if f, ok := issued[pm.Identity]; ok {
			pm.Cert, pm.Key = f[0], f[1]
			continue
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: pm.Identity},
			NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		serial++
		if pm.Mesh == cluster.MeshLinkerd {
			tmpl.DNSNames = []string{pm.Identity}
		} else {
			u, err := url.Parse(pm.Identity)
			if err != nil {
				return fmt.Errorf("identity %q: %w", pm.Identity, err)
			}
			tmpl.URIs = []*url.URL{u}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return err
		}
		h := sha256.Sum256([]byte(pm.Identity))
		base := filepath.Join(dir, hex.EncodeToString(h[:6]))
		if err := os.WriteFile(base+".crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(base+".key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
			return err
		}
		pm.Cert, pm.Key = base+".crt", base+".key"
		issued[pm.Identity] = [2]string{pm.Cert, pm.Key}
	}
	return nil
}
