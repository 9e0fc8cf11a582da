package kubeproxy

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// iptRulesetSkips lists oracle ruleset/chain records we do not compare, with the reason.
var iptRulesetSkips = map[string]string{
	"ruleset__TestCleanupLeftovers__L215": "tests cleanup of pre-existing rules written by hand, no Service input to render from",
}

// iptTables is a parsed iptables-save dump: table -> chain -> rules (without "-A CHAIN").
type iptTables map[string]map[string][]string

var builtinChains = map[string]bool{"INPUT": true, "FORWARD": true, "OUTPUT": true, "PREROUTING": true, "POSTROUTING": true}

func parseIPTablesSave(t *testing.T, text string) iptTables {
	t.Helper()
	out := iptTables{}
	var table string
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#' || l == "COMMIT":
		case l[0] == '*':
			table = l[1:]
			out[table] = map[string][]string{}
		case l[0] == ':':
			name := strings.Fields(l[1:])[0]
			if _, ok := out[table][name]; !ok {
				out[table][name] = []string{}
			}
		case strings.HasPrefix(l, "-A "):
			f := strings.SplitN(l, " ", 3)
			rest := ""
			if len(f) == 3 {
				rest = f[2]
			}
			out[table][f[1]] = append(out[table][f[1]], rest)
		default:
			t.Fatalf("unparsed iptables-save line %q", l)
		}
	}
	return out
}

var dispatchChains = map[string]bool{iptServices: true, iptExternalServices: true, iptNodePorts: true, iptProxyFirewall: true}
var commentRE = regexp.MustCompile(`--comment "?([^" ]+)`)

// canonicalChain mirrors upstream's sortIPTablesRules for the service-dispatch chains: group the
// rules by service (order of groups is map order in kube-proxy), keep their relative order.
func canonicalChain(name string, rules []string) []string {
	if !dispatchChains[name] {
		return rules
	}
	type r struct {
		key string
		i   int
		s   string
	}
	var rs []r
	for i, s := range rules {
		key := "~"
		if m := commentRE.FindStringSubmatch(s); m != nil && strings.Contains(m[1], "/") {
			key = m[1]
		}
		rs = append(rs, r{key, i, s})
	}
	sort.SliceStable(rs, func(a, b int) bool { return rs[a].key < rs[b].key })
	out := make([]string, len(rs))
	for i, x := range rs {
		out[i] = x.s
	}
	return out
}

// diffIPTables compares want and got chain by chain. Built-in chains are compared only when
// withBuiltins (quotes ignored: the upstream fake drops them there).
func diffIPTables(want, got iptTables, withBuiltins bool) string {
	var b strings.Builder
	for _, table := range []string{"filter", "nat"} {
		w, g := want[table], got[table]
		if w == nil {
			continue
		}
		names := map[string]bool{}
		for c := range w {
			names[c] = true
		}
		for c := range g {
			names[c] = true
		}
		var sorted []string
		for c := range names {
			sorted = append(sorted, c)
		}
		sort.Strings(sorted)
		for _, c := range sorted {
			if builtinChains[c] && !withBuiltins {
				continue
			}
			wr, wok := w[c]
			gr, gok := g[c]
			if !wok || !gok {
				fmt.Fprintf(&b, "%s chain %s: only in %s\n", table, c, map[bool]string{true: "want", false: "got"}[wok])
				continue
			}
			wr, gr = canonicalChain(c, wr), canonicalChain(c, gr)
			if builtinChains[c] {
				wr, gr = unquote(wr), unquote(gr)
			}
			if strings.Join(wr, "\n") != strings.Join(gr, "\n") {
				fmt.Fprintf(&b, "%s chain %s:\n  want:\n    %s\n  got:\n    %s\n", table, c, strings.Join(wr, "\n    "), strings.Join(gr, "\n    "))
			}
		}
	}
	return b.String()
}

func unquote(rules []string) []string {
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = strings.ReplaceAll(r, `"`, "")
	}
	return out
}

func renderIPT(t *testing.T, dir string, rec oracleRecord) iptTables {
	t.Helper()
	cfg, svcs, slices := loadInput(t, filepath.Join(dir, "derived", rec.Files["input"]), rec, ModeIPTables)
	var b strings.Builder
	if err := RenderIPTables(&b, cfg, svcs, slices); err != nil {
		t.Fatal(err)
	}
	return parseIPTablesSave(t, b.String())
}

func readIPT(t *testing.T, dir, file string) iptTables {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "derived", file))
	if err != nil {
		t.Fatal(err)
	}
	return parseIPTablesSave(t, string(data))
}

func TestIPTablesRulesetMatchesUpstream(t *testing.T) {
	dir := oracleDir(t)
	for _, rec := range loadCases(t, dir, "iptables") {
		if rec.Kind != "ruleset" && rec.Kind != "chain" {
			continue
		}
		t.Run(rec.ID, func(t *testing.T) {
			if why, ok := iptRulesetSkips[rec.ID]; ok {
				t.Skip(why)
			}
			got := renderIPT(t, dir, rec)
			if rec.Kind == "chain" {
				data, err := os.ReadFile(filepath.Join(dir, "derived", rec.Files["expected"]))
				if err != nil {
					t.Fatal(err)
				}
				var want []string
				for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
					if l != "" {
						want = append(want, strings.SplitN(l, " ", 3)[2])
					}
				}
				if g := got[rec.Table][rec.Chain]; strings.Join(g, "\n") != strings.Join(want, "\n") {
					t.Fatalf("%s %s:\nwant:\n%s\ngot:\n%s", rec.Table, rec.Chain, strings.Join(want, "\n"), strings.Join(g, "\n"))
				}
				return
			}
			if d := diffIPTables(readIPT(t, dir, rec.Files["expected"]), got, false); d != "" {
				t.Fatalf("rendered rules differ from upstream:\n%s", d)
			}
		})
	}
}

func TestIPTablesRulesetsInEffectMatchUpstream(t *testing.T) {
	dir := oracleDir(t)
	for _, rec := range loadCases(t, dir, "iptables") {
		if rec.Kind != "packet_flows" || rec.Files["input"] == "" {
			continue
		}
		t.Run(rec.ID, func(t *testing.T) {
			got := renderIPT(t, dir, rec)
			if d := diffIPTables(readIPT(t, dir, rec.Files["ruleset_in_effect"]), got, true); d != "" {
				t.Fatalf("rendered rules differ from upstream:\n%s", d)
			}
		})
	}
}
