package lab

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/kpath/kpath/internal/apiserver"
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
	caPEM, certPEM, keyPEM, err := apiserver.ServingCert(rs.ControlPlaneIP.String(), 30*24*time.Hour)
	if err != nil {
		return err
	}
	saKey, saPub, err := apiserver.SAKeys()
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
