package cluster

import (
	"fmt"
	"net/netip"
)

// validatePolicies reports invalid selectors and CIDRs in NetworkPolicies: the policy is kept (it exists in the
// cluster), the diagnostic names the object and field.
func (b *builder) validatePolicies() {
	for _, np := range sortedValues(b.netpols) {
		ref := refOf("NetworkPolicy", np)
		b.selectorOf(ref, &np.Spec.PodSelector, "spec.podSelector")
		for i, r := range np.Spec.Ingress {
			for j, p := range r.From {
				if p.PodSelector != nil {
					b.selectorOf(ref, p.PodSelector, fmt.Sprintf("spec.ingress[%d].from[%d].podSelector", i, j))
				}
				if p.NamespaceSelector != nil {
					b.selectorOf(ref, p.NamespaceSelector, fmt.Sprintf("spec.ingress[%d].from[%d].namespaceSelector", i, j))
				}
				if p.IPBlock != nil {
					b.ipBlock(ref, fmt.Sprintf("spec.ingress[%d].from[%d].ipBlock", i, j), p.IPBlock.CIDR, p.IPBlock.Except)
				}
			}
		}
		for i, r := range np.Spec.Egress {
			for j, p := range r.To {
				if p.PodSelector != nil {
					b.selectorOf(ref, p.PodSelector, fmt.Sprintf("spec.egress[%d].to[%d].podSelector", i, j))
				}
				if p.NamespaceSelector != nil {
					b.selectorOf(ref, p.NamespaceSelector, fmt.Sprintf("spec.egress[%d].to[%d].namespaceSelector", i, j))
				}
				if p.IPBlock != nil {
					b.ipBlock(ref, fmt.Sprintf("spec.egress[%d].to[%d].ipBlock", i, j), p.IPBlock.CIDR, p.IPBlock.Except)
				}
			}
		}
	}
}

func (b *builder) ipBlock(ref Ref, field, cidr string, except []string) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		b.fieldError(ref, field+".cidr", fmt.Sprintf("%q is not a CIDR: %v", cidr, err))
		return
	}
	for i, e := range except {
		ep, err := netip.ParsePrefix(e)
		if err != nil {
			b.fieldError(ref, fmt.Sprintf("%s.except[%d]", field, i), fmt.Sprintf("%q is not a CIDR: %v", e, err))
			continue
		}
		if !p.Masked().Contains(ep.Addr()) || ep.Bits() < p.Bits() {
			b.fieldError(ref, fmt.Sprintf("%s.except[%d]", field, i), fmt.Sprintf("%s is not inside cidr %s (the API server rejects this)", e, cidr))
		}
	}
}
