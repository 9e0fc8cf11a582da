package capture

import (
	"errors"
	"fmt"
	"io"
)

// Mesh names the service mesh whose interception rules a Config describes.
type Mesh string

const (
	// MeshLinkerd is Linkerd's proxy-init (PROXY_INIT_* chains in the nat table).
	MeshLinkerd Mesh = "linkerd"
	// MeshIstioSidecar is Istio's istio-iptables / istio-nftables sidecar capture (ISTIO_* chains).
	MeshIstioSidecar Mesh = "istio-sidecar"
	// MeshIstioAmbient is the Istio CNI agent's in-pod redirection to ztunnel.
	MeshIstioAmbient Mesh = "istio-ambient"
)

// Source says where a resolved setting came from.
type Source string

const (
	// SourceDefault is the injector's built-in default (chart values / mesh config).
	SourceDefault Source = "default"
	// SourcePodAnnotation is an annotation on the pod (template).
	SourcePodAnnotation Source = "pod-annotation"
	// SourceNamespaceAnnotation is an annotation inherited from the pod's namespace.
	SourceNamespaceAnnotation Source = "namespace-annotation"
	// SourceContainer is a field of a container in the pod spec (e.g. the proxy's runAsUser).
	SourceContainer Source = "container"
	// SourceMeshDefaults is a value the caller passed in the mesh defaults (install-time configuration).
	SourceMeshDefaults Source = "mesh-defaults"
	// SourceUnknown marks a value kpath cannot know offline (e.g. the pod's resolv.conf at runtime).
	SourceUnknown Source = "unknown"
)

// Evidence records one resolved setting, or one thing that could not be decided, and why.
type Evidence struct {
	Setting string `json:"setting"`           // e.g. "InboundPortsExclude" or "-d"
	Value   string `json:"value"`             // the resolved value as the tool receives it
	Source  Source `json:"source"`            // where it came from
	Key     string `json:"key,omitempty"`     // annotation key or field path, when there is one
	Warning bool   `json:"warning,omitempty"` // true when the value is a guess, ignored input, or unknown
	Why     string `json:"why,omitempty"`     // short reason
}

func (e Evidence) String() string {
	s := fmt.Sprintf("%s=%q (%s", e.Setting, e.Value, e.Source)
	if e.Key != "" {
		s += " " + e.Key
	}
	s += ")"
	if e.Why != "" {
		s += ": " + e.Why
	}
	return s
}

// Config is the resolved interception configuration of one pod for one mesh.
type Config interface {
	// Mesh says which mesh's rules the Config renders.
	Mesh() Mesh
}

// MeshDefaults is the install-time configuration of a mesh (chart values, mesh config) that FromPod
// combines with the pod's annotations: IstioDefaults or LinkerdDefaults.
type MeshDefaults interface {
	mesh() Mesh
}

// ErrNotCaptured is returned (wrapped) by FromPod when the pod gets no interception rules at all, e.g.
// injection disabled, host networking, interception mode NONE, or a template without an init container.
var ErrNotCaptured = errors.New("pod traffic is not captured")

// IsNotCaptured reports whether err says the pod has no interception rules.
func IsNotCaptured(err error) bool { return errors.Is(err, ErrNotCaptured) }

// ErrNoNFTVariant is returned by RenderNFTables for meshes whose init tool only speaks iptables.
var ErrNoNFTVariant = errors.New("the mesh's init tool has no native nftables variant")

// RenderIPTables writes cfg's rules in iptables-restore format (what iptables-save would show).
func RenderIPTables(w io.Writer, cfg Config) error {
	switch c := cfg.(type) {
	case IstioConfig:
		return RenderIstioIPTables(w, c)
	case *IstioConfig:
		return RenderIstioIPTables(w, *c)
	case LinkerdConfig:
		return RenderLinkerdIPTables(w, c)
	case *LinkerdConfig:
		return RenderLinkerdIPTables(w, *c)
	case AmbientConfig:
		return RenderAmbientIPTables(w, c)
	case *AmbientConfig:
		return RenderAmbientIPTables(w, *c)
	}
	return fmt.Errorf("rendering iptables: unsupported config type %T", cfg)
}

// RenderNFTables writes cfg's rules as an `nft -f` script where the upstream tool has an nftables variant.
func RenderNFTables(w io.Writer, cfg Config) error {
	switch c := cfg.(type) {
	case IstioConfig:
		return RenderIstioNFTables(w, c)
	case *IstioConfig:
		return RenderIstioNFTables(w, *c)
	case AmbientConfig:
		return RenderAmbientNFTables(w, c)
	case *AmbientConfig:
		return RenderAmbientNFTables(w, *c)
	case LinkerdConfig, *LinkerdConfig:
		return fmt.Errorf("rendering nftables for linkerd: %w (proxy-init drives iptables-legacy or iptables-nft; use RenderIPTables)", ErrNoNFTVariant)
	}
	return fmt.Errorf("rendering nftables: unsupported config type %T", cfg)
}

// FromPod resolves the interception configuration of pod for the mesh described by defaults.
// ns may be nil (namespace annotations then count as absent, which is reported as evidence).
func FromPod(pod *corev1Pod, ns *corev1Namespace, defaults MeshDefaults) (Config, []Evidence, error) {
	switch d := defaults.(type) {
	case IstioDefaults:
		return IstioFromPod(pod, ns, d)
	case *IstioDefaults:
		return IstioFromPod(pod, ns, *d)
	case LinkerdDefaults:
		return LinkerdFromPod(pod, ns, d)
	case *LinkerdDefaults:
		return LinkerdFromPod(pod, ns, *d)
	}
	return nil, nil, fmt.Errorf("resolving capture config: unsupported mesh defaults %T", defaults)
}
