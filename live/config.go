package live

import (
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ErrNoConfig says there is no kubeconfig to read (none at --kubeconfig, $KUBECONFIG or ~/.kube/config) and kpath
// is not running inside a cluster.
var ErrNoConfig = errors.New("no kubeconfig found ($KUBECONFIG, ~/.kube/config) and not running inside a cluster")

// RESTConfig resolves the cluster to read the way kubectl does: an explicit kubeconfig file, else $KUBECONFIG, else
// ~/.kube/config, else the in-cluster service account; context "" means the current context. It also returns a
// short name for the cluster ("live:CONTEXT" or "live:in-cluster") used in diagnostics and source names.
func RESTConfig(kubeconfig, context string) (*rest.Config, string, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			if context != "" {
				return nil, "", fmt.Errorf("--context %s: %w", context, ErrNoConfig)
			}
			return nil, "", ErrNoConfig
		}
		return nil, "", fmt.Errorf("kubeconfig: %w", err)
	}
	name := "live:in-cluster"
	if raw, err := cc.RawConfig(); err == nil && len(raw.Contexts) > 0 {
		if context == "" {
			context = raw.CurrentContext
		}
		name = "live:" + context
	}
	return cfg, name, nil
}
