package capture

import (
	"io"
	"strings"

	"sigs.k8s.io/knftables"
)

// nftRule is one rule of an inet table: the chain, the rule text and, for inserts, the index.
type nftRule struct {
	chain string
	text  string
	index *int
}

// nftBaseChain is a hooked chain: name, type, hook and priority (named, resolved by knftables).
type nftBaseChain struct {
	name     string
	typ      knftables.BaseChainType
	hook     knftables.BaseChainHook
	priority knftables.BaseChainPriority
}

// nftTable is one table's chain catalogue (base chains first, in declaration order) and its rules.
type nftTable struct {
	name       string
	baseChains []nftBaseChain
	chains     []string // regular chains in declaration order
	rules      []nftRule
	// declareJumpTargets also declares empty chains that a rule jumps to (the ambient agent does; the
	// sidecar tool declares only chains with rules).
	declareJumpTargets bool
}

func (t *nftTable) add(chain, text string) {
	t.rules = append(t.rules, nftRule{chain: chain, text: text})
}

func (t *nftTable) insert(chain string, index int, text string) {
	i := index
	t.rules = append(t.rules, nftRule{chain: chain, text: text, index: &i})
}

// withCounter renders matches followed by the statements, with "counter" placed just before the last
// statement, which is how istio's nftables builder writes every rule.
func withCounter(matches string, stmts ...string) string {
	var parts []string
	if matches != "" {
		parts = append(parts, matches)
	}
	if len(stmts) > 1 {
		parts = append(parts, stmts[:len(stmts)-1]...)
	}
	parts = append(parts, "counter", stmts[len(stmts)-1])
	return strings.Join(parts, " ")
}

// transaction adds the tables to tx the way istio's addIstioTableRules does: skip a table without rules;
// add + flush the table; add only chains that have rules; add rules in order, turning an insert into an
// add when the chain has no rule yet in this transaction (nft cannot insert at index 0 of an empty chain).
func nftTransaction(tables ...*nftTable) *knftables.Transaction {
	tx := knftables.NewFake("", "").NewTransaction()
	for _, t := range tables {
		if len(t.rules) == 0 {
			continue
		}
		count := map[string]int{}
		declared := map[string]bool{}
		for _, r := range t.rules {
			count[r.chain]++
			declared[r.chain] = true
			if t.declareJumpTargets {
				if _, target, ok := strings.Cut(r.text, "jump "); ok {
					declared[strings.Fields(target)[0]] = true
				}
			}
		}
		tx.Add(&knftables.Table{Name: t.name, Family: knftables.InetFamily})
		tx.Flush(&knftables.Table{Name: t.name, Family: knftables.InetFamily})
		for _, bc := range t.baseChains {
			if count[bc.name] == 0 {
				continue
			}
			tx.Add(&knftables.Chain{Name: bc.name, Table: t.name, Family: knftables.InetFamily,
				Type: knftables.PtrTo(bc.typ), Hook: knftables.PtrTo(bc.hook), Priority: knftables.PtrTo(bc.priority)})
		}
		for _, c := range t.chains {
			if !declared[c] {
				continue
			}
			tx.Add(&knftables.Chain{Name: c, Table: t.name, Family: knftables.InetFamily})
		}
		seen := map[string]int{}
		for _, r := range t.rules {
			rule := &knftables.Rule{Chain: r.chain, Table: t.name, Family: knftables.InetFamily, Rule: r.text}
			if r.index != nil && seen[r.chain] > 0 {
				rule.Index = knftables.PtrTo(*r.index)
				tx.Insert(rule)
			} else {
				tx.Add(rule)
			}
			seen[r.chain]++
		}
	}
	return tx
}

func writeTx(w io.Writer, tx *knftables.Transaction) error {
	_, err := io.WriteString(w, tx.String())
	return err
}
