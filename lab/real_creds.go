package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Users of the lab's API server. kube-proxy gets the identity its bootstrap RBAC binding names
// (system:node-proxier → user system:kube-proxy); the controller manager, CoreDNS and kpath itself are
// system:masters (the lab runs no token controller and kubeadm's CoreDNS role is not part of the bootstrap policy).
const (
	userAdmin      = "kpath-admin"
	userProxy      = "system:kube-proxy"
	userController = "system:kube-controller-manager"
	userCoreDNS    = "coredns"
)

// realCreds are the control plane's certificates and tokens.
type realCreds struct {
	dir    string
	caPEM  []byte
	tokens map[string]string
}

func (c *realCreds) file(name string) string { return filepath.Join(c.dir, name) }

// loadCreds reads the CA and the admin token a running lab wrote (for `lab trace`).
func loadCreds(rs *RealState) (*realCreds, error) {
	c := &realCreds{dir: filepath.Join(rs.Dir, "pki"), tokens: map[string]string{}}
	ca, err := os.ReadFile(c.file("ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("the lab's CA: %w", err)
	}
	c.caPEM = ca
	toks, err := os.ReadFile(c.file("tokens.csv"))
	if err != nil {
		return nil, fmt.Errorf("the lab's tokens: %w", err)
	}
	for _, l := range strings.Split(string(toks), "\n") {
		f := strings.Split(l, ",")
		if len(f) >= 2 {
			c.tokens[f[1]] = f[0]
		}
	}
	return c, nil
}

func (r *realBuilder) credentials() error {
	rs := r.rs
	c := &realCreds{dir: filepath.Join(rs.Dir, "pki"), tokens: map[string]string{}}
	if err := os.MkdirAll(c.dir, 0o700); err != nil {
		return err
	}
	caPEM, certPEM, keyPEM, err := servingCert(rs.ControlPlaneIP.String())
	if err != nil {
		return err
	}
	saKey, saPub, err := ecKeyPair()
	if err != nil {
		return err
	}
	var tokens strings.Builder
	groups := map[string]string{
		userAdmin:      "system:masters,system:authenticated",
		userProxy:      "system:authenticated",
		userController: "system:masters,system:authenticated",
		userCoreDNS:    "system:masters,system:authenticated",
	}
	for i, u := range []string{userAdmin, userProxy, userController, userCoreDNS} {
		b := make([]byte, 16)
		rand.Read(b)
		tok := hex.EncodeToString(b)
		c.tokens[u] = tok
		fmt.Fprintf(&tokens, "%s,%s,uid-%d,\"%s\"\n", tok, u, i, groups[u])
	}
	files := map[string][]byte{"ca.crt": caPEM, "apiserver.crt": certPEM, "apiserver.key": keyPEM, "sa.key": saKey, "sa.pub": saPub,
		"tokens.csv": []byte(tokens.String())}
	for name, data := range files {
		if err := os.WriteFile(c.file(name), data, 0o600); err != nil {
			return err
		}
	}
	c.caPEM = caPEM
	server := "https://" + net.JoinHostPort(rs.ControlPlaneIP.String(), "6443")
	for file, user := range map[string]string{"admin.kubeconfig": userAdmin, "kube-proxy.kubeconfig": userProxy,
		"kube-controller-manager.kubeconfig": userController, "coredns.kubeconfig": userCoreDNS} {
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
		cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: c.tokens[user]}
		cfg.Contexts["kpath-lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: user}
		cfg.CurrentContext = "kpath-lab"
		if err := clientcmd.WriteToFile(*cfg, c.file(file)); err != nil {
			return err
		}
	}
	r.creds = c
	return nil
}

// servingCert makes a throwaway CA and a serving certificate for the API server's address.
func servingCert(host string) (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kpath-lab-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
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
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(30 * 24 * time.Hour),
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

// ecKeyPair makes the service-account signing key pair (ES256).
func ecKeyPair() (keyPEM, pubPEM []byte, err error) {
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
