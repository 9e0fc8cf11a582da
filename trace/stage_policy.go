package trace

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PolicyEvaluator decides NetworkPolicy / AdminNetworkPolicy for one direction of one connection. The policy
// engine (package netpol) plugs in here; without one, the trace reports policy as unknown wherever a policy selects
// the pod, and as allowed only where none can.
type PolicyEvaluator interface {
	// Decide returns the verdict step for the connection src → dst:port/proto in the given direction
	// ("egress" at the source, "ingress" at the destination); ok=false stops the packet.
	Decide(dir string, srcIP, dstIP string, port int, proto string) PolicyDecision
}

// PolicyDecision is one direction's outcome.
type PolicyDecision struct {
	Verdict string // allowed | denied | unknown
	Object  string // the deciding policy (or "")
	Rule    string // the exact rule, index and text
	Why     string
	// Blockers lists every denying policy when denied.
	Blockers []Blocker
}

// SetPolicy plugs a policy evaluator into the engine.
func (e *Engine) SetPolicy(p PolicyEvaluator) { e.pol = p }

// policyStep adds the policy decision for pod p in direction dir; it returns false when the packet stops.
func (r *run) policyStep(p *corev1.Pod, dir string) bool {
	if r.e.pol != nil {
		src, dst := r.pkt.Src.Addr().String(), r.pkt.Dst.Addr().String()
		d := r.e.pol.Decide(dir, src, dst, int(r.pkt.Dst.Port()), string(r.pkt.Proto))
		if d.Verdict == "denied" && r.e.prof.PolicyEnforcer == cluster.PolicyNone {
			ev, _ := r.e.prof.Setting("policyEnforcer")
			why := fmt.Sprintf("%s would deny this (%s), but nothing enforces NetworkPolicy here: %s", whyOr(d.Object, "policy"), d.Why, ev.Detail)
			r.step(Step{Layer: LayerPolicy, Action: ActionAllow, Object: whyOr(d.Object, "Pod "+podRef(p)), Rule: d.Rule, Why: why})
			r.j.Notes = append(r.j.Notes, "NetworkPolicy is not enforced in this cluster ("+ev.Detail+"): "+podRef(p)+"'s "+dir+" policy would deny this connection")
			return true
		}
		action := ActionAllow
		switch d.Verdict {
		case "denied":
			action = ActionDrop
		case "unknown":
			action = ActionUnknown
		}
		r.step(Step{Layer: LayerPolicy, Action: action, Object: whyOr(d.Object, "Pod "+podRef(p)), Rule: d.Rule, Why: d.Why})
		switch d.Verdict {
		case "denied":
			if len(d.Blockers) == 0 {
				r.block(LayerPolicy, d.Object, d.Why)
			}
			r.j.Blockers = append(r.j.Blockers, d.Blockers...)
			if dir == "egress" {
				// The packet stops here; ingress at the destination may deny it too, and every blocker is reported.
				if in := r.e.pol.Decide("ingress", src, dst, int(r.pkt.Dst.Port()), string(r.pkt.Proto)); in.Verdict == "denied" {
					if len(in.Blockers) == 0 {
						r.block(LayerPolicy, in.Object, in.Why+" (ingress at the destination would deny it too)")
					}
					for _, b := range in.Blockers {
						b.Reason += " (ingress at the destination would deny it too)"
						r.j.Blockers = append(r.j.Blockers, b)
					}
				}
			}
			r.finish(Dropped, fmt.Sprintf("dropped at %s's %s by policy: %s", podRef(p), dir, d.Why))
			return false
		case "unknown":
			r.finish(Unknown, d.Why)
			return false
		}
		return true
	}
	selecting := r.selectingPolicies(p, dir)
	if len(selecting) == 0 {
		r.step(Step{Layer: LayerPolicy, Action: ActionAllow, Object: "Pod " + podRef(p),
			Why: fmt.Sprintf("no NetworkPolicy selects %s for %s and no AdminNetworkPolicy exists: allowed", podRef(p), dir)})
		return true
	}
	why := fmt.Sprintf("%s is selected for %s by %s; this build cannot evaluate policy rules, so the verdict is unknown", podRef(p), dir, strings.Join(selecting, ", "))
	r.step(Step{Layer: LayerPolicy, Action: ActionUnknown, Object: selecting[0], Why: why})
	r.finish(Unknown, why)
	return false
}

// selectingPolicies lists the policies that apply to p in dir (used only without a policy engine).
func (r *run) selectingPolicies(p *corev1.Pod, dir string) []string {
	s := r.e.snap
	var out []string
	for _, a := range s.AdminNetworkPolicies {
		out = append(out, "AdminNetworkPolicy "+a.Name)
	}
	for _, b := range s.BaselineAdminNetworkPolicies {
		out = append(out, "BaselineAdminNetworkPolicy "+b.Name)
	}
	for _, c := range s.ClusterNetworkPolicies {
		out = append(out, "ClusterNetworkPolicy "+c.Name)
	}
	for _, np := range s.NetworkPolicies {
		if np.Namespace != p.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(p.Labels)) {
			continue
		}
		types := np.Spec.PolicyTypes
		if len(types) == 0 {
			types = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(np.Spec.Egress) > 0 {
				types = append(types, networkingv1.PolicyTypeEgress)
			}
		}
		for _, t := range types {
			if strings.EqualFold(string(t), dir) {
				out = append(out, "NetworkPolicy "+np.Namespace+"/"+np.Name)
			}
		}
	}
	return out
}

// meshUnknown reports a meshed pod honestly until the mesh stage models it; it returns true when the walk stops.
func (r *run) meshUnknown(p *corev1.Pod, dir string) bool {
	for _, c := range append(append([]corev1.Container{}, p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == "linkerd-proxy" || c.Name == "istio-proxy" || c.Name == "linkerd-init" || c.Name == "istio-init" {
			why := fmt.Sprintf("%s has a %s container: the mesh redirects %s traffic through its proxy, which this build does not model yet", podRef(p), c.Name, dir)
			r.step(Step{Layer: LayerMesh, Action: ActionUnknown, Object: "Pod " + podRef(p), Why: why})
			r.finish(Unknown, why)
			return true
		}
	}
	return false
}
