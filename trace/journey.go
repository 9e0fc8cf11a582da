// Package trace assembles a packet's journey through the cluster: it runs the stages (DNS, service translation,
// routing, policy, mesh) in the packet's order over a snapshot and returns a trace.Journey — data that renderers print
// and the lab compares against what the kernel did.
package trace

import (
	"fmt"
	"time"

	"github.com/kpath/kpath/packet"
)

// Schema versions the JSON form of a Journey (documented in docs/journey-schema.md). Adding fields keeps the
// version; renaming or removing one bumps it.
const Schema = "kpath.dev/journey/v1"

// Verdict is the fate of the packet.
type Verdict string

const (
	Delivered Verdict = "delivered" // reached the destination socket (or left the cluster toward it)
	Dropped   Verdict = "dropped"   // silently discarded
	Rejected  Verdict = "rejected"  // refused with ICMP unreachable or TCP RST
	Unknown   Verdict = "unknown"   // kpath cannot decide; Blockers / steps say why
)

// Layer names the mechanism a step belongs to.
type Layer string

const (
	LayerDNS       Layer = "dns"
	LayerSocket    Layer = "socket"     // the application's connect()/sendto() and the netns routing decision
	LayerRoute     Layer = "route"      // kernel routing: routes, neighbours, forwarding
	LayerLink      Layer = "link"       // veth, bridge
	LayerKubeProxy Layer = "kube-proxy" // Service translation (any proxy mode)
	LayerNAT       Layer = "nat"        // masquerade / SNAT outside kube-proxy's DNAT
	LayerOverlay   Layer = "overlay"    // VXLAN / Geneve / IPIP encapsulation
	LayerEncrypt   Layer = "encryption" // WireGuard / IPsec
	LayerPolicy    Layer = "policy"     // NetworkPolicy / AdminNetworkPolicy
	LayerMesh      Layer = "mesh"       // sidecar / ztunnel interception and proxying
	LayerApp       Layer = "app"        // the listening socket in the destination
)

// Action is what a step did to the packet.
type Action string

const (
	ActionResolve     Action = "resolve"
	ActionSend        Action = "send"
	ActionRoute       Action = "route"
	ActionForward     Action = "forward"
	ActionBridge      Action = "bridge"
	ActionDNAT        Action = "dnat"
	ActionSNAT        Action = "snat"
	ActionMasquerade  Action = "masquerade"
	ActionEncapsulate Action = "encapsulate"
	ActionDecapsulate Action = "decapsulate"
	ActionEncrypt     Action = "encrypt"
	ActionDecrypt     Action = "decrypt"
	ActionRedirect    Action = "redirect"
	ActionAllow       Action = "allow"
	ActionPass        Action = "pass"
	ActionDeliver     Action = "deliver"
	ActionDrop        Action = "drop"
	ActionReject      Action = "reject"
	ActionNone        Action = "none" // looked, changed nothing (e.g. no kube-proxy rule matched)
	ActionUnknown     Action = "unknown"
)

// LocationKind says where in the cluster a hop happens.
type LocationKind string

const (
	InPod      LocationKind = "pod"      // a pod's network namespace
	OnNode     LocationKind = "node"     // a node's root network namespace
	OnUnderlay LocationKind = "underlay" // the network between nodes
	Outside    LocationKind = "external" // beyond the cluster
	InProxy    LocationKind = "proxy"    // a mesh proxy (sidecar, ztunnel, waypoint)
)

// Location is where a hop happens.
type Location struct {
	Kind LocationKind `json:"kind"`
	Name string       `json:"name"`           // pod ns/name, node name, "underlay", an external address
	Node string       `json:"node,omitempty"` // node that hosts the pod or proxy
	IP   string       `json:"ip,omitempty"`
}

func (l Location) String() string {
	switch l.Kind {
	case InPod:
		return fmt.Sprintf("pod %s (netns on %s)", l.Name, l.Node)
	case OnNode:
		return "node " + l.Name
	case InProxy:
		return fmt.Sprintf("proxy %s on %s", l.Name, l.Node)
	}
	return l.Name
}

// Estimate is a modelled duration: always an estimate, never a measurement (see docs/latency-model.md).
type Estimate struct {
	Nanos  int64  `json:"ns"`
	Source string `json:"source,omitempty"` // the latency model constant(s) it came from
}

func (e Estimate) Duration() time.Duration { return time.Duration(e.Nanos) }

// Step is one thing that happened to the packet.
type Step struct {
	Layer  Layer  `json:"layer"`
	Action Action `json:"action"`
	// Object is the Kubernetes object (or kernel object: interface, route) that did it, e.g. "Service shop/cart".
	Object string `json:"object,omitempty"`
	// Rule is the exact rule: a netfilter chain/rule, a route, a policy rule with its index.
	Rule   string         `json:"rule,omitempty"`
	Before *packet.Packet `json:"before,omitempty"` // set on rewrites (DNAT, SNAT, encapsulation) and at the first step
	After  *packet.Packet `json:"after,omitempty"`
	Why    string         `json:"why"`
	// LatencyEstimate is the modelled cost of this step.
	LatencyEstimate Estimate `json:"latency_estimate"`
	// Nested is a journey this step caused (the DNS query's own packet).
	Nested *Journey `json:"nested,omitempty"`
}

// Hop is a run of steps in one location.
type Hop struct {
	Location Location `json:"location"`
	Steps    []Step   `json:"steps"`
}

// Blocker is one reason the packet does not arrive. Every blocker is reported, not only the first.
type Blocker struct {
	Layer  Layer  `json:"layer"`
	Object string `json:"object"`
	Reason string `json:"reason"`
}

// Endpoint names a pod (or node, or external address) at an address.
type Endpoint struct {
	Pod  string `json:"pod,omitempty"` // ns/name
	Node string `json:"node,omitempty"`
	IP   string `json:"ip"`
	Port int    `json:"port,omitempty"`
	// Synthesized is set when the address (or the pod) came from kpath's synthesis, not the input.
	Synthesized bool `json:"synthesized,omitempty"`
}

// Alternative is a backend the load balancer could have chosen instead.
type Alternative struct {
	Endpoint
	Probability float64 `json:"probability"`
	Why         string  `json:"why,omitempty"`
}

// DNSQuery is one query the resolver sent and the answer it got.
type DNSQuery struct {
	Name    string   `json:"name"`
	Type    string   `json:"type"`
	Rcode   string   `json:"rcode"`
	Answers []string `json:"answers"`
	Server  string   `json:"server,omitempty"`
	Why     string   `json:"why,omitempty"`
}

// DNS is the name-resolution stage.
type DNS struct {
	Name       string     `json:"name"`
	Resolver   string     `json:"resolver"` // glibc | musl
	ResolvConf string     `json:"resolv_conf"`
	Queries    []DNSQuery `json:"queries"`
	// Result is the address the application connects to (empty when resolution failed).
	Result        string `json:"result,omitempty"`
	NXDomains     int    `json:"nxdomains"`
	Amplification string `json:"amplification,omitempty"`
	// Query is the journey of the first DNS query packet to a DNS server.
	Query *Journey `json:"query_journey,omitempty"`
}

// Latency is the budget: estimates only.
type Latency struct {
	Total Estimate            `json:"total"`
	ByHop []Estimate          `json:"by_hop"`
	Note  string              `json:"note"`
	Parts map[string]Estimate `json:"parts,omitempty"` // dns, service, routing, policy, mesh
}

// Question is what was asked.
type Question struct {
	From     string          `json:"from"`
	To       string          `json:"to"`
	Protocol packet.Protocol `json:"protocol"`
}

// ProfileSummary is the dataplane the journey assumed, with the reason for each setting.
type ProfileSummary struct {
	ProxyMode  string            `json:"proxy_mode"`
	CNI        string            `json:"cni"`
	Mesh       string            `json:"mesh"`
	Encryption string            `json:"encryption"`
	Why        map[string]string `json:"why"`
}

// Journey is the life of one packet (and, in DNS, of the queries before it).
type Journey struct {
	Schema        string         `json:"schema"`
	Question      Question       `json:"question"`
	Profile       ProfileSummary `json:"profile"`
	Source        Endpoint       `json:"source"`
	Destination   string         `json:"destination"` // what the packet is addressed to after DNS (ip:port)
	DNS           *DNS           `json:"dns,omitempty"`
	Hops          []Hop          `json:"hops"`
	Verdict       Verdict        `json:"verdict"`
	VerdictReason string         `json:"verdict_reason"`
	Blockers      []Blocker      `json:"blockers"`
	Backend       *Endpoint      `json:"backend,omitempty"`
	Alternatives  []Alternative  `json:"alternatives,omitempty"`
	Latency       Latency        `json:"latency"`
	ReturnPath    []string       `json:"return_path,omitempty"`
	Notes         []string       `json:"notes,omitempty"`
}

// Validate checks the journey's own structure: every step has a layer, an action and a why; an unknown verdict
// has a reason; a delivered packet has no blockers and a dropped one has at least one.
func (j *Journey) Validate() error {
	if j.Schema != Schema {
		return fmt.Errorf("schema %q, want %q", j.Schema, Schema)
	}
	switch j.Verdict {
	case Delivered:
		if len(j.Blockers) > 0 {
			return fmt.Errorf("delivered with %d blocker(s)", len(j.Blockers))
		}
	case Dropped, Rejected:
		if len(j.Blockers) == 0 {
			return fmt.Errorf("%s without a blocker", j.Verdict)
		}
	case Unknown:
		if j.VerdictReason == "" {
			return fmt.Errorf("unknown verdict without a reason")
		}
	default:
		return fmt.Errorf("verdict %q is not one of delivered|dropped|rejected|unknown", j.Verdict)
	}
	for hi, h := range j.Hops {
		if h.Location.Kind == "" || h.Location.Name == "" {
			return fmt.Errorf("hop %d has no location", hi)
		}
		for si, s := range h.Steps {
			if s.Layer == "" || s.Action == "" || s.Why == "" {
				return fmt.Errorf("hop %d step %d lacks layer, action or why: %+v", hi, si, s)
			}
			if s.Nested != nil {
				if err := s.Nested.Validate(); err != nil {
					return fmt.Errorf("hop %d step %d nested journey: %w", hi, si, err)
				}
			}
		}
	}
	if j.DNS != nil && j.DNS.Query != nil {
		if err := j.DNS.Query.Validate(); err != nil {
			return fmt.Errorf("dns query journey: %w", err)
		}
	}
	return nil
}
