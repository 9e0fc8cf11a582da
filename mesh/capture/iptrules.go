package capture

import (
	"fmt"
	"slices"
	"strings"
)

// iptRule is one iptables rule as istio's rule builder records it: a table, a chain and the full
// parameter list starting with "-A CHAIN" or "-I CHAIN POS".
type iptRule struct {
	table, chain string
	params       []string
}

// iptBuilder accumulates rules for one address family in call order, like istio's IptablesRuleBuilder.
type iptBuilder struct {
	rules []iptRule
}

func (b *iptBuilder) appendRule(chain, table string, params ...string) {
	b.rules = append(b.rules, iptRule{table: table, chain: chain, params: append([]string{"-A", chain}, params...)})
}

func (b *iptBuilder) insertRule(chain, table string, pos int, params ...string) {
	b.rules = append(b.rules, iptRule{table: table, chain: chain, params: append([]string{"-I", chain, fmt.Sprint(pos)}, params...)})
}

// builtinChains are the netfilter base chains, which iptables-restore must not (re)create with -N.
var builtinChains = map[string]bool{
	"PREROUTING": true, "INPUT": true, "FORWARD": true, "OUTPUT": true, "POSTROUTING": true,
}

// restoreTableOrder is the order istio writes tables in: sorted by name.
var restoreTableOrder = []string{"filter", "mangle", "nat", "raw", "security"}

// restore renders the rules in iptables-restore --noflush input format exactly as istio's
// BuildV4Restore/BuildV6Restore does: per table (sorted), "-N" for every non-built-in chain that has rules
// (first-use order) or is jumped to, then the rules in call order, then COMMIT.
func (b *iptBuilder) restore() string {
	perTable := map[string][]string{}
	seen := map[string]bool{}
	for _, r := range b.rules {
		k := r.chain + ":" + r.table
		if !seen[k] {
			seen[k] = true
			if !builtinChains[r.chain] {
				perTable[r.table] = append(perTable[r.table], "-N "+r.chain)
			}
		}
	}
	for _, r := range b.rules {
		n := len(r.params)
		if n >= 2 && r.params[n-2] == "-j" {
			target := r.params[n-1]
			k := target + ":" + r.table
			if !seen[k] {
				seen[k] = true
				if !builtinChains[target] && isChainName(target) {
					perTable[r.table] = append(perTable[r.table], "-N "+target)
				}
			}
		}
	}
	for _, r := range b.rules {
		perTable[r.table] = append(perTable[r.table], strings.Join(r.params, " "))
	}
	var sb strings.Builder
	tables := restoreTableOrder
	for t := range perTable {
		if !slices.Contains(tables, t) {
			tables = append(slices.Clone(tables), t)
		}
	}
	for _, t := range tables {
		lines := perTable[t]
		if len(lines) == 0 {
			continue
		}
		fmt.Fprintln(&sb, "*", t)
		for _, l := range lines {
			fmt.Fprintln(&sb, l)
		}
		fmt.Fprintln(&sb, "COMMIT")
	}
	return sb.String()
}

// isChainName reports whether a -j target is a user chain rather than a target extension. istio's builder
// creates every jumped-to chain that is not built in; targets it uses (RETURN, REDIRECT, ...) are always
// followed by options, so they never sit in the last position. ACCEPT/DROP/RETURN may.
func isChainName(s string) bool {
	switch s {
	case "ACCEPT", "DROP", "RETURN", "REJECT", "QUEUE", "MASQUERADE":
		return false
	}
	return true
}

// commands renders the rules as iptables argv lists ("-t table -N chain", "-t table -A ..."), as istio's
// BuildV4/BuildV6 does for the non-restore code path.
func (b *iptBuilder) commands() [][]string {
	var out [][]string
	seen := map[string]bool{}
	for _, r := range b.rules {
		k := r.chain + ":" + r.table
		if !seen[k] && !builtinChains[r.chain] {
			seen[k] = true
			out = append(out, []string{"-t", r.table, "-N", r.chain})
		}
	}
	for _, r := range b.rules {
		out = append(out, append([]string{"-t", r.table}, r.params...))
	}
	return out
}

// splitList splits a comma-separated list and drops empty elements, like istio's config.Split.
func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}
