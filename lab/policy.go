package lab

// policyTable is the nftables table holding the lab's rendered NetworkPolicy rules.
const policyTable = "kpath-policy"

func (b *builder) policy(disabled bool) error {
	b.st.Policy = PolicyState{How: "not enforced: NetworkPolicy rendering is not built yet"}
	return nil
}
