package kubeproxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// nftRulesetSkips lists oracle ruleset records we do not compare, with the reason.
var nftRulesetSkips = map[string]string{
	"ruleset__TestTracePacketV6__L1124": "rules written by hand in the test (old rule shapes), no Service input to render from",
}

func TestNFTablesRulesetMatchesUpstream(t *testing.T) {
	dir := oracleDir(t)
	for _, rec := range loadCases(t, dir, "nftables") {
		if rec.Kind != "ruleset" {
			continue
		}
		t.Run(rec.ID, func(t *testing.T) {
			if why, ok := nftRulesetSkips[rec.ID]; ok {
				t.Skip(why)
			}
			cfg, svcs, slices := loadInput(t, filepath.Join(dir, "derived", rec.Files["input"]), rec, ModeNFTables)
			var b strings.Builder
			if err := RenderNFTables(&b, cfg, svcs, slices); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "derived", rec.Files["expected"]))
			if err != nil {
				t.Fatal(err)
			}
			w, g := sortNFT(string(want)), sortNFT(b.String())
			if d := lineDiff(w, g); d != "" {
				t.Fatalf("rendered ruleset differs from upstream (- want, + got):\n%s", d)
			}
			if strings.Join(w, "\n") != strings.Join(g, "\n") {
				t.Fatalf("same lines, but rule order within a chain differs:\nwant:\n%s\n\ngot:\n%s", strings.Join(w, "\n"), strings.Join(g, "\n"))
			}
		})
	}
}

// The rulesets the packet-flow records were traced against are kube-proxy's own output for the
// record's input: a second, larger exact-text check.
func TestNFTablesRulesetsInEffectMatchUpstream(t *testing.T) {
	dir := oracleDir(t)
	for _, rec := range loadCases(t, dir, "nftables") {
		if rec.Kind != "packet_flows" || rec.Files["input"] == "" {
			continue
		}
		t.Run(rec.ID, func(t *testing.T) {
			cfg, svcs, slices := loadInput(t, filepath.Join(dir, "derived", rec.Files["input"]), rec, ModeNFTables)
			var b strings.Builder
			if err := RenderNFTables(&b, cfg, svcs, slices); err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(dir, "derived", rec.Files["ruleset_in_effect"]))
			if err != nil {
				t.Fatal(err)
			}
			w, g := dropStaleNFTChains(sortNFT(string(want))), sortNFT(b.String())
			if d := lineDiff(w, g); d != "" {
				t.Fatalf("rendered ruleset differs from upstream (- want, + got):\n%s", d)
			}
			if strings.Join(w, "\n") != strings.Join(g, "\n") {
				t.Fatalf("rule order within a chain differs")
			}
		})
	}
}

// dropStaleNFTChains removes declarations of service chains that have no rules: kube-proxy
// flushes chains a previous sync used and deletes them only a second later, so the second state
// of a multi-step test still shows them empty. A fresh render never has them.
func dropStaleNFTChains(lines []string) []string {
	hasRules := map[string]bool{}
	for _, l := range lines {
		if f := strings.Fields(l); len(f) > 4 && f[1] == "rule" {
			hasRules[f[4]] = true
		}
	}
	var out []string
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) == 5 && f[1] == "chain" && strings.Contains(f[4], "/") && !hasRules[f[4]] {
			continue
		}
		out = append(out, l)
	}
	return out
}
