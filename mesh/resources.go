package mesh

import (
	"fmt"
	"sort"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/kpath/kpath/cluster"
)

// Resources are the mesh custom resources of a snapshot, decoded into small typed structs (only the fields kpath
// evaluates; unknown fields are ignored). Each list is sorted by namespace/name.
type Resources struct {
	// Linkerd (policy.linkerd.io).
	Servers                []*Server
	ServerAuthorizations   []*ServerAuthorization
	AuthorizationPolicies  []*LinkerdAuthorizationPolicy
	MeshTLSAuthentications []*MeshTLSAuthentication
	NetworkAuthentications []*NetworkAuthentication
	LinkerdHTTPRoutes      []*HTTPRoute // policy.linkerd.io HTTPRoute (same shape as Gateway API's)
	// Istio (security.istio.io, networking.istio.io).
	PeerAuthentications []*PeerAuthentication
	IstioAuthzPolicies  []*IstioAuthorizationPolicy
	Sidecars            []*Sidecar
	VirtualServices     []*VirtualService
	DestinationRules    []*DestinationRule
	// Problems lists resources that did not decode (kind, name, error).
	Problems []string
}

// Meta is the part of an object's metadata policies need.
type Meta struct {
	Kind              string            `json:"kind"`
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	Labels            map[string]string `json:"labels,omitempty"`
	Annotations       map[string]string `json:"annotations,omitempty"`
	CreationTimestamp metav1.Time       `json:"creationTimestamp,omitempty"`
}

// Ref is "Kind ns/name".
func (m Meta) Ref() string { return m.Kind + " " + m.Namespace + "/" + m.Name }

// ---- Linkerd ----

// Server (policy.linkerd.io/v1beta1..v1beta3) selects a port on a set of pods.
type Server struct {
	Meta
	Spec struct {
		PodSelector   *metav1.LabelSelector `json:"podSelector,omitempty"`
		Port          intstr.IntOrString    `json:"port"`
		ProxyProtocol string                `json:"proxyProtocol,omitempty"`
		// AccessPolicy (v1beta3) is the policy for traffic no authorization allows; default "deny".
		AccessPolicy string `json:"accessPolicy,omitempty"`
	} `json:"spec"`
}

// ServerAuthorization (policy.linkerd.io/v1beta1) authorizes clients of Servers (legacy API).
type ServerAuthorization struct {
	Meta
	Spec struct {
		Server struct {
			Name     string                `json:"name,omitempty"`
			Selector *metav1.LabelSelector `json:"selector,omitempty"`
		} `json:"server"`
		Client struct {
			Unauthenticated bool `json:"unauthenticated,omitempty"`
			Networks        []struct {
				CIDR   string   `json:"cidr"`
				Except []string `json:"except,omitempty"`
			} `json:"networks,omitempty"`
			MeshTLS *struct {
				UnauthenticatedTLS bool     `json:"unauthenticatedTLS,omitempty"`
				Identities         []string `json:"identities,omitempty"`
				ServiceAccounts    []struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace,omitempty"`
				} `json:"serviceAccounts,omitempty"`
			} `json:"meshTLS,omitempty"`
		} `json:"client"`
	} `json:"spec"`
}

// TargetRef is a policy attachment reference.
type TargetRef struct {
	Group     string `json:"group,omitempty"`
	Kind      string `json:"kind"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// LinkerdAuthorizationPolicy (policy.linkerd.io/v1alpha1 AuthorizationPolicy) authorizes a target (Server,
// HTTPRoute, Namespace) for clients that satisfy every required authentication.
type LinkerdAuthorizationPolicy struct {
	Meta
	Spec struct {
		TargetRef                  TargetRef   `json:"targetRef"`
		RequiredAuthenticationRefs []TargetRef `json:"requiredAuthenticationRefs"`
	} `json:"spec"`
}

// MeshTLSAuthentication (policy.linkerd.io/v1alpha1) names the mTLS identities a client must have.
type MeshTLSAuthentication struct {
	Meta
	Spec struct {
		Identities   []string    `json:"identities,omitempty"`
		IdentityRefs []TargetRef `json:"identityRefs,omitempty"`
	} `json:"spec"`
}

// NetworkAuthentication (policy.linkerd.io/v1alpha1) names the networks a client must come from.
type NetworkAuthentication struct {
	Meta
	Spec struct {
		Networks []struct {
			CIDR   string   `json:"cidr"`
			Except []string `json:"except,omitempty"`
		} `json:"networks"`
	} `json:"spec"`
}

// HTTPRoute is the part of a Gateway API (or policy.linkerd.io) HTTPRoute that mesh routing and authorization read.
type HTTPRoute struct {
	Meta
	APIGroup string `json:"-"`
	Spec     struct {
		ParentRefs []struct {
			Group     *string `json:"group,omitempty"`
			Kind      *string `json:"kind,omitempty"`
			Name      string  `json:"name"`
			Namespace *string `json:"namespace,omitempty"`
			Port      *int32  `json:"port,omitempty"`
		} `json:"parentRefs,omitempty"`
		Rules []HTTPRouteRule `json:"rules,omitempty"`
	} `json:"spec"`
}

// HTTPRouteRule is one rule of an HTTPRoute.
type HTTPRouteRule struct {
	Name    string `json:"name,omitempty"`
	Matches []struct {
		Path *struct {
			Type  string `json:"type,omitempty"`
			Value string `json:"value,omitempty"`
		} `json:"path,omitempty"`
		Method  *string           `json:"method,omitempty"`
		Headers []json0           `json:"headers,omitempty"`
		Query   []json0           `json:"queryParams,omitempty"`
		Extra   map[string]string `json:"-"`
	} `json:"matches,omitempty"`
	BackendRefs []struct {
		Group     *string `json:"group,omitempty"`
		Kind      *string `json:"kind,omitempty"`
		Name      string  `json:"name"`
		Namespace *string `json:"namespace,omitempty"`
		Port      *int32  `json:"port,omitempty"`
		Weight    *int32  `json:"weight,omitempty"`
	} `json:"backendRefs,omitempty"`
	Timeouts *struct {
		Request        string `json:"request,omitempty"`
		BackendRequest string `json:"backendRequest,omitempty"`
	} `json:"timeouts,omitempty"`
	Retry *struct {
		Attempts *int32  `json:"attempts,omitempty"`
		Codes    []int32 `json:"codes,omitempty"`
		Backoff  string  `json:"backoff,omitempty"`
	} `json:"retry,omitempty"`
}

type json0 = map[string]any

// ---- Istio ----

// WorkloadSelector is Istio's selector (matchLabels only).
type WorkloadSelector struct {
	MatchLabels map[string]string `json:"matchLabels,omitempty"`
}

// PeerAuthentication (security.istio.io) sets the mTLS mode a workload accepts.
type PeerAuthentication struct {
	Meta
	Spec struct {
		Selector *WorkloadSelector `json:"selector,omitempty"`
		MTLS     *struct {
			Mode string `json:"mode,omitempty"`
		} `json:"mtls,omitempty"`
		PortLevelMTLS map[string]struct {
			Mode string `json:"mode,omitempty"`
		} `json:"portLevelMtls,omitempty"`
	} `json:"spec"`
}

// IstioAuthorizationPolicy (security.istio.io AuthorizationPolicy).
type IstioAuthorizationPolicy struct {
	Meta
	Spec struct {
		Selector   *WorkloadSelector `json:"selector,omitempty"`
		TargetRefs []TargetRef       `json:"targetRefs,omitempty"`
		TargetRef  *TargetRef        `json:"targetRef,omitempty"`
		Action     string            `json:"action,omitempty"`
		Provider   *struct {
			Name string `json:"name"`
		} `json:"provider,omitempty"`
		Rules []IstioRule `json:"rules,omitempty"`
	} `json:"spec"`
}

// IstioRule is one rule of an AuthorizationPolicy: any from × any to × all when.
type IstioRule struct {
	From []struct {
		Source IstioSource `json:"source"`
	} `json:"from,omitempty"`
	To []struct {
		Operation IstioOperation `json:"operation"`
	} `json:"to,omitempty"`
	When []struct {
		Key       string   `json:"key"`
		Values    []string `json:"values,omitempty"`
		NotValues []string `json:"notValues,omitempty"`
	} `json:"when,omitempty"`
}

// IstioSource is AuthorizationPolicy's Source.
type IstioSource struct {
	Principals           []string `json:"principals,omitempty"`
	NotPrincipals        []string `json:"notPrincipals,omitempty"`
	RequestPrincipals    []string `json:"requestPrincipals,omitempty"`
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`
	Namespaces           []string `json:"namespaces,omitempty"`
	NotNamespaces        []string `json:"notNamespaces,omitempty"`
	IPBlocks             []string `json:"ipBlocks,omitempty"`
	NotIPBlocks          []string `json:"notIpBlocks,omitempty"`
	RemoteIPBlocks       []string `json:"remoteIpBlocks,omitempty"`
	NotRemoteIPBlocks    []string `json:"notRemoteIpBlocks,omitempty"`
}

// IstioOperation is AuthorizationPolicy's Operation.
type IstioOperation struct {
	Hosts      []string `json:"hosts,omitempty"`
	NotHosts   []string `json:"notHosts,omitempty"`
	Ports      []string `json:"ports,omitempty"`
	NotPorts   []string `json:"notPorts,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	NotMethods []string `json:"notMethods,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	NotPaths   []string `json:"notPaths,omitempty"`
}

// Sidecar (networking.istio.io) limits what a sidecar's outbound side knows about.
type Sidecar struct {
	Meta
	Spec struct {
		// WorkloadSelector of a Sidecar uses "labels" (not matchLabels).
		WorkloadSelector *struct {
			Labels map[string]string `json:"labels,omitempty"`
		} `json:"workloadSelector,omitempty"`
		Egress []struct {
			Port *struct {
				Number int `json:"number"`
			} `json:"port,omitempty"`
			Hosts []string `json:"hosts"`
		} `json:"egress,omitempty"`
		OutboundTrafficPolicy *struct {
			Mode string `json:"mode,omitempty"`
		} `json:"outboundTrafficPolicy,omitempty"`
	} `json:"spec"`
}

// VirtualService (networking.istio.io) routes requests to a host.
type VirtualService struct {
	Meta
	Spec struct {
		Hosts    []string `json:"hosts"`
		Gateways []string `json:"gateways,omitempty"`
		HTTP     []struct {
			Name  string `json:"name,omitempty"`
			Match []struct {
				URI    *StringMatch           `json:"uri,omitempty"`
				Method *StringMatch           `json:"method,omitempty"`
				Port   int                    `json:"port,omitempty"`
				Header map[string]StringMatch `json:"headers,omitempty"`
			} `json:"match,omitempty"`
			Route []struct {
				Destination struct {
					Host   string `json:"host"`
					Subset string `json:"subset,omitempty"`
					Port   *struct {
						Number int `json:"number"`
					} `json:"port,omitempty"`
				} `json:"destination"`
				Weight int `json:"weight,omitempty"`
			} `json:"route,omitempty"`
			Timeout string `json:"timeout,omitempty"`
			Retries *struct {
				Attempts      int    `json:"attempts"`
				PerTryTimeout string `json:"perTryTimeout,omitempty"`
				RetryOn       string `json:"retryOn,omitempty"`
			} `json:"retries,omitempty"`
			Fault map[string]any `json:"fault,omitempty"`
		} `json:"http,omitempty"`
	} `json:"spec"`
}

// StringMatch is Istio's exact/prefix/regex match.
type StringMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Regex  string `json:"regex,omitempty"`
}

// DestinationRule (networking.istio.io): subsets (by labels) and client TLS settings.
type DestinationRule struct {
	Meta
	Spec struct {
		Host          string `json:"host"`
		TrafficPolicy *struct {
			TLS *struct {
				Mode string `json:"mode"`
			} `json:"tls,omitempty"`
		} `json:"trafficPolicy,omitempty"`
		Subsets []struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"subsets,omitempty"`
	} `json:"spec"`
}

// Decode reads the mesh resources from snap.Custom (CRDs kept unstructured) and the Gateway API HTTPRoutes the
// snapshot typed. Resources that do not decode are listed in Problems.
func Decode(snap *cluster.Snapshot) Resources {
	var r Resources
	for _, u := range snap.Custom {
		gvk := u.GroupVersionKind()
		into := func(v any) bool {
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, v); err != nil {
				r.Problems = append(r.Problems, fmt.Sprintf("%s %s/%s: %v", gvk.Kind, u.GetNamespace(), u.GetName(), err))
				return false
			}
			return true
		}
		meta := func() Meta {
			return Meta{Kind: gvk.Kind, Name: u.GetName(), Namespace: u.GetNamespace(), Labels: u.GetLabels(),
				Annotations: u.GetAnnotations(), CreationTimestamp: u.GetCreationTimestamp()}
		}
		switch gvk.Group + "/" + gvk.Kind {
		case "policy.linkerd.io/Server":
			var o Server
			if into(&o) {
				o.Meta = meta()
				r.Servers = append(r.Servers, &o)
			}
		case "policy.linkerd.io/ServerAuthorization":
			var o ServerAuthorization
			if into(&o) {
				o.Meta = meta()
				r.ServerAuthorizations = append(r.ServerAuthorizations, &o)
			}
		case "policy.linkerd.io/AuthorizationPolicy":
			var o LinkerdAuthorizationPolicy
			if into(&o) {
				o.Meta = meta()
				r.AuthorizationPolicies = append(r.AuthorizationPolicies, &o)
			}
		case "policy.linkerd.io/MeshTLSAuthentication":
			var o MeshTLSAuthentication
			if into(&o) {
				o.Meta = meta()
				r.MeshTLSAuthentications = append(r.MeshTLSAuthentications, &o)
			}
		case "policy.linkerd.io/NetworkAuthentication":
			var o NetworkAuthentication
			if into(&o) {
				o.Meta = meta()
				r.NetworkAuthentications = append(r.NetworkAuthentications, &o)
			}
		case "policy.linkerd.io/HTTPRoute", "gateway.networking.k8s.io/HTTPRoute":
			var o HTTPRoute
			if into(&o) {
				o.Meta, o.APIGroup = meta(), gvk.Group
				r.LinkerdHTTPRoutes = append(r.LinkerdHTTPRoutes, &o)
			}
		case "security.istio.io/PeerAuthentication":
			var o PeerAuthentication
			if into(&o) {
				o.Meta = meta()
				r.PeerAuthentications = append(r.PeerAuthentications, &o)
			}
		case "security.istio.io/AuthorizationPolicy":
			var o IstioAuthorizationPolicy
			if into(&o) {
				o.Meta = meta()
				r.IstioAuthzPolicies = append(r.IstioAuthzPolicies, &o)
			}
		case "networking.istio.io/Sidecar":
			var o Sidecar
			if into(&o) {
				o.Meta = meta()
				r.Sidecars = append(r.Sidecars, &o)
			}
		case "networking.istio.io/VirtualService":
			var o VirtualService
			if into(&o) {
				o.Meta = meta()
				r.VirtualServices = append(r.VirtualServices, &o)
			}
		case "networking.istio.io/DestinationRule":
			var o DestinationRule
			if into(&o) {
				o.Meta = meta()
				r.DestinationRules = append(r.DestinationRules, &o)
			}
		}
	}
	// Gateway API HTTPRoutes are typed by the loader: convert them to the same struct.
	for _, hr := range snap.HTTPRoutes {
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(hr)
		if err != nil {
			continue
		}
		var o HTTPRoute
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, &o); err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("HTTPRoute %s/%s: %v", hr.Namespace, hr.Name, err))
			continue
		}
		o.Meta = Meta{Kind: "HTTPRoute", Name: hr.Name, Namespace: hr.Namespace, Labels: hr.Labels, Annotations: hr.Annotations,
			CreationTimestamp: hr.CreationTimestamp}
		o.APIGroup = "gateway.networking.k8s.io"
		r.LinkerdHTTPRoutes = append(r.LinkerdHTTPRoutes, &o)
	}
	sortMeta(r.Servers)
	sortMeta(r.ServerAuthorizations)
	sortMeta(r.AuthorizationPolicies)
	sortMeta(r.LinkerdHTTPRoutes)
	sortMeta(r.PeerAuthentications)
	sortMeta(r.IstioAuthzPolicies)
	sortMeta(r.Sidecars)
	sortMeta(r.VirtualServices)
	return r
}

type metaer interface{ meta() *Meta }

func (m *Meta) meta() *Meta { return m }

func sortMeta[T metaer](xs []T) {
	sort.SliceStable(xs, func(i, j int) bool {
		a, b := xs[i].meta(), xs[j].meta()
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
}
