package live

import (
	"fmt"
	"strings"
)

// Kind is one API resource kpath lists: every kind the snapshot models, nothing else. Secrets are not here and are
// never read.
type Kind struct {
	Group    string // "" for the core group
	Version  string // fixed for built-in groups; "" = pick the served version through discovery (CRD groups)
	Resource string
	Kind     string
	// Optional kinds come from CRDs that many clusters do not install; when absent they are reported, not fatal.
	Optional bool
	// Policy kinds decide whether traffic is allowed: when they cannot be listed, policy verdicts are unknown.
	Policy bool
}

// GroupResource is the RBAC-style name, e.g. "networkpolicies.networking.k8s.io".
func (k Kind) GroupResource() string {
	if k.Group == "" {
		return k.Resource
	}
	return k.Resource + "." + k.Group
}

// Kinds lists what a live snapshot reads, biggest first so the largest lists start early. The loader consumes
// them in this order.
var Kinds = []Kind{
	{Group: "", Version: "v1", Resource: "pods", Kind: "Pod"},
	{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices", Kind: "EndpointSlice"},
	{Group: "", Version: "v1", Resource: "services", Kind: "Service"},
	{Group: "", Version: "v1", Resource: "endpoints", Kind: "Endpoints"},
	{Group: "apps", Version: "v1", Resource: "replicasets", Kind: "ReplicaSet"},
	{Group: "", Version: "v1", Resource: "configmaps", Kind: "ConfigMap"},
	{Group: "", Version: "v1", Resource: "serviceaccounts", Kind: "ServiceAccount"},
	{Group: "", Version: "v1", Resource: "namespaces", Kind: "Namespace"},
	{Group: "", Version: "v1", Resource: "nodes", Kind: "Node"},
	{Group: "networking.k8s.io", Version: "v1", Resource: "networkpolicies", Kind: "NetworkPolicy", Policy: true},
	{Group: "apps", Version: "v1", Resource: "deployments", Kind: "Deployment"},
	{Group: "apps", Version: "v1", Resource: "statefulsets", Kind: "StatefulSet"},
	{Group: "apps", Version: "v1", Resource: "daemonsets", Kind: "DaemonSet"},
	{Group: "", Version: "v1", Resource: "replicationcontrollers", Kind: "ReplicationController"},
	{Group: "batch", Version: "v1", Resource: "jobs", Kind: "Job"},
	{Group: "batch", Version: "v1", Resource: "cronjobs", Kind: "CronJob"},
	{Group: "gateway.networking.k8s.io", Resource: "gatewayclasses", Kind: "GatewayClass", Optional: true},
	{Group: "gateway.networking.k8s.io", Resource: "gateways", Kind: "Gateway", Optional: true},
	{Group: "gateway.networking.k8s.io", Resource: "httproutes", Kind: "HTTPRoute", Optional: true},
	{Group: "gateway.networking.k8s.io", Resource: "grpcroutes", Kind: "GRPCRoute", Optional: true},
	{Group: "gateway.networking.k8s.io", Resource: "referencegrants", Kind: "ReferenceGrant", Optional: true},
	{Group: "gateway.networking.k8s.io", Resource: "tcproutes", Kind: "TCPRoute", Optional: true},
	{Group: "gateway.networking.k8s.io", Resource: "tlsroutes", Kind: "TLSRoute", Optional: true},
	{Group: "gateway.networking.k8s.io", Resource: "udproutes", Kind: "UDPRoute", Optional: true},
	{Group: "policy.networking.k8s.io", Resource: "adminnetworkpolicies", Kind: "AdminNetworkPolicy", Optional: true, Policy: true},
	{Group: "policy.networking.k8s.io", Resource: "baselineadminnetworkpolicies", Kind: "BaselineAdminNetworkPolicy", Optional: true, Policy: true},
	{Group: "policy.networking.k8s.io", Resource: "clusternetworkpolicies", Kind: "ClusterNetworkPolicy", Optional: true, Policy: true},
	// Service mesh policy and routing (package mesh reads them from the snapshot's custom resources).
	{Group: "policy.linkerd.io", Resource: "servers", Kind: "Server", Optional: true},
	{Group: "policy.linkerd.io", Resource: "serverauthorizations", Kind: "ServerAuthorization", Optional: true},
	{Group: "policy.linkerd.io", Resource: "authorizationpolicies", Kind: "AuthorizationPolicy", Optional: true},
	{Group: "policy.linkerd.io", Resource: "meshtlsauthentications", Kind: "MeshTLSAuthentication", Optional: true},
	{Group: "policy.linkerd.io", Resource: "networkauthentications", Kind: "NetworkAuthentication", Optional: true},
	{Group: "policy.linkerd.io", Resource: "httproutes", Kind: "HTTPRoute", Optional: true},
	{Group: "security.istio.io", Resource: "peerauthentications", Kind: "PeerAuthentication", Optional: true},
	{Group: "security.istio.io", Resource: "authorizationpolicies", Kind: "AuthorizationPolicy", Optional: true},
	{Group: "networking.istio.io", Resource: "sidecars", Kind: "Sidecar", Optional: true},
	{Group: "networking.istio.io", Resource: "virtualservices", Kind: "VirtualService", Optional: true},
	{Group: "networking.istio.io", Resource: "destinationrules", Kind: "DestinationRule", Optional: true},
}

// ClusterRoleYAML is the minimal ClusterRole kpath needs (list on every modelled kind, nothing else), with a
// ClusterRoleBinding example for a user or service account. `kpath rbac` prints it.
func ClusterRoleYAML(name, subjectKind, subject, subjectNamespace string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# The minimal permissions kpath needs: "list" on the kinds it models. No get, watch, create, update, patch or
# delete; no Secrets. Kinds you leave out are reported as warnings; leaving out networkpolicies (or the
# policy.networking.k8s.io kinds) makes every policy verdict "unknown" instead of "allowed".
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: %s
rules:
`, name)
	groups := []string{}
	byGroup := map[string][]string{}
	for _, k := range Kinds {
		if _, ok := byGroup[k.Group]; !ok {
			groups = append(groups, k.Group)
		}
		byGroup[k.Group] = append(byGroup[k.Group], k.Resource)
	}
	for _, g := range groups {
		fmt.Fprintf(&b, "- apiGroups: [%q]\n  resources: [%s]\n  verbs: [list]\n", g, strings.Join(byGroup[g], ", "))
	}
	fmt.Fprintf(&b, `---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: %s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: %s
subjects:
`, name, name)
	switch subjectKind {
	case "ServiceAccount":
		fmt.Fprintf(&b, "- kind: ServiceAccount\n  name: %s\n  namespace: %s\n", subject, subjectNamespace)
	default:
		fmt.Fprintf(&b, "- apiGroup: rbac.authorization.k8s.io\n  kind: %s\n  name: %s\n", subjectKind, subject)
	}
	return b.String()
}
