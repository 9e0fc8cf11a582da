package lab

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/trace"
)

// RulesDiff is what real kube-proxy programmed in a node namespace against what `kpath rules` renders for that
// node, both listed by the kernel (the rendered rules are loaded into a scratch namespace and listed there, so
// formatting never differs), compared order-insensitively: per chain its rules, per set/map its properties and
// elements (iptables: per table its chains and rules).
type RulesDiff struct {
	Node string         `json:"node"`
	Mode kubeproxy.Mode `json:"mode"`
	// Compared is the number of distinct canonical lines (rules, elements, properties) on both sides.
	Compared int `json:"compared"`
	// OnlyReal are lines real kube-proxy programmed that the rendering lacks; OnlyModel the reverse.
	OnlyReal  []string `json:"onlyReal"`
	OnlyModel []string `json:"onlyModel"`
	// Notes say what was not compared and why.
	Notes []string `json:"notes,omitempty"`
}

// Match says both sides hold the same rules.
func (d *RulesDiff) Match() bool { return len(d.OnlyReal) == 0 && len(d.OnlyModel) == 0 }

// NodeRulesDiff compares node's rules, after waiting for kube-proxy's first sync there.
func NodeRulesDiff(ctx context.Context, st *State, snap *cluster.Snapshot, node string) (*RulesDiff, error) {
	if st.Real == nil {
		return nil, fmt.Errorf("lab %s was not built with --real: kube-proxy there is kpath's own rendering", st.Name)
	}
	np := st.Plan.Node(node)
	n := snap.Node(node)
	if np == nil || n == nil {
		return nil, fmt.Errorf("node %s is not in lab %s", node, st.Name)
	}
	mode := st.Plan.Mode
	d := &RulesDiff{Node: node, Mode: mode}
	if mode == "" {
		d.Notes = append(d.Notes, "no Service proxy in this profile: nothing to compare")
		return d, nil
	}
	if err := waitKubeProxySynced(ctx, *np, nil, 30*time.Second); err != nil {
		return nil, err
	}
	nr, err := trace.RenderNodeRules(snap, n, mode)
	if err != nil {
		return nil, err
	}
	var realText, modelText string
	var real, model map[string]int
	switch mode {
	case kubeproxy.ModeIPTables:
		if realText, err = stableRead(ctx, func() (string, error) {
			out, err := run(ctx, "", "ip", "netns", "exec", np.NS, "iptables-save")
			return stripIPTablesNoise(out), err
		}); err != nil {
			return nil, err
		}
		modelText, err = loadAndList(ctx, st.Real.RulesNS, nr.Text, mode)
		if err != nil && strings.Contains(nr.Text, "--nfacct-name") {
			// The counter object kube-proxy creates over netlink does not exist in the scratch namespace: render
			// without it (as kube-proxy does when the kernel lacks nfacct) and say so.
			cfg := kubeproxy.ConfigFor(snap, n)
			cfg.Mode, cfg.NoNFAcct = kubeproxy.ModeIPTables, true
			idx, ierr := kubeproxy.NewIndex(cfg, snap.Services, snap.EndpointSlices)
			if ierr != nil {
				return nil, ierr
			}
			var b strings.Builder
			if ierr := idx.RenderIPTables(&b); ierr != nil {
				return nil, ierr
			}
			d.Notes = append(d.Notes, "the rendering's -m nfacct rule could not be loaded in the scratch namespace (kube-proxy creates the counter object over netlink; no tool here does): compared the rendering without it, as kube-proxy renders it when nfacct is unavailable")
			modelText, err = loadAndList(ctx, st.Real.RulesNS, b.String(), mode)
		}
		if err != nil {
			return nil, err
		}
		real, model = canonIPTables(realText), canonIPTables(modelText)
	default:
		if realText, err = stableRead(ctx, func() (string, error) {
			return run(ctx, "", "ip", "netns", "exec", np.NS, "nft", "list", "table", "ip", "kube-proxy")
		}); err != nil {
			return nil, fmt.Errorf("listing real kube-proxy's table on %s: %w", node, err)
		}
		if modelText, err = loadAndList(ctx, st.Real.RulesNS, nr.Text, mode); err != nil {
			return nil, err
		}
		real, model = canonNFT(realText), canonNFT(modelText)
		if out, err := run(ctx, "", "ip", "netns", "exec", np.NS, "nft", "list", "tables"); err == nil && strings.Contains(out, "table ip6 kube-proxy") {
			d.Notes = append(d.Notes, "real kube-proxy also programmed table ip6 kube-proxy (its IPv6 proxier): not compared, the lab and kpath rules are IPv4")
		}
	}
	all := map[string]bool{}
	for k, c := range real {
		all[k] = true
		for i := model[k]; i < c; i++ {
			d.OnlyReal = append(d.OnlyReal, k)
		}
	}
	for k, c := range model {
		all[k] = true
		for i := real[k]; i < c; i++ {
			d.OnlyModel = append(d.OnlyModel, k)
		}
	}
	d.Compared = len(all)
	sort.Strings(d.OnlyReal)
	sort.Strings(d.OnlyModel)
	return d, nil
}

// loadAndList loads a rendered ruleset into the scratch namespace (replacing what a previous diff left) and lists
// it back in the kernel's canonical form.
func loadAndList(ctx context.Context, ns, text string, mode kubeproxy.Mode) (string, error) {
	if mode == kubeproxy.ModeIPTables {
		if strings.Contains(text, "--nfacct-name") {
			if err := ensureNFAcct(ns, kubeProxyNFAcct); err != nil {
				return "", err
			}
		}
		if _, err := run(ctx, text, "ip", "netns", "exec", ns, "iptables-restore", "-w"); err != nil {
			return "", fmt.Errorf("loading the rendered iptables rules into %s: %w", ns, err)
		}
		return run(ctx, "", "ip", "netns", "exec", ns, "iptables-save")
	}
	script := "table ip kube-proxy {}\ndelete table ip kube-proxy\n" + text
	if _, err := run(ctx, script, "ip", "netns", "exec", ns, "nft", "-f", "-"); err != nil {
		return "", fmt.Errorf("loading the rendered nftables rules into %s: %w", ns, err)
	}
	return run(ctx, "", "ip", "netns", "exec", ns, "nft", "list", "table", "ip", "kube-proxy")
}

var counterRE = regexp.MustCompile(`counter packets \d+ bytes \d+`)

// canonNFT turns `nft list table` output into a multiset of lines: "chain C: rule", "set S: property",
// "set S element: e" (map elements likewise).
func canonNFT(text string) map[string]int {
	out := map[string]int{}
	var kind, name string
	var elems strings.Builder
	inElems := false
	flushElems := func() {
		for _, e := range splitTop(elems.String()) {
			if e = strings.TrimSpace(e); e != "" {
				out[kind+" "+name+" element: "+e]++
			}
		}
		elems.Reset()
		inElems = false
	}
	for _, raw := range strings.Split(text, "\n") {
		l := strings.TrimSpace(counterRE.ReplaceAllString(raw, "counter"))
		if l == "" {
			continue
		}
		if inElems {
			elems.WriteString(" " + l)
			if strings.Contains(l, "}") {
				s := elems.String()
				elems.Reset()
				elems.WriteString(s[:strings.LastIndex(s, "}")])
				flushElems()
			}
			continue
		}
		f := strings.Fields(l)
		switch {
		case f[0] == "table":
			continue
		case (f[0] == "chain" || f[0] == "set" || f[0] == "map") && strings.HasSuffix(l, "{"):
			kind, name = f[0], f[1]
			out[kind+" "+name]++
			continue
		case l == "}":
			continue
		case strings.HasPrefix(l, "elements = {"):
			rest := strings.TrimPrefix(l, "elements = {")
			elems.WriteString(rest)
			inElems = true
			if strings.Contains(rest, "}") {
				s := elems.String()
				elems.Reset()
				elems.WriteString(s[:strings.LastIndex(s, "}")])
				flushElems()
			}
			continue
		}
		if kind == "chain" {
			out["chain "+name+": "+l]++
		} else {
			out[kind+" "+name+": "+l]++
		}
	}
	return out
}

// splitTop splits on commas outside braces and quotes.
func splitTop(s string) []string {
	var out []string
	depth, start := 0, 0
	quoted := false
	for i, c := range s {
		switch {
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{':
			depth++
		case c == '}':
			depth--
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// canonIPTables turns iptables-save output into a multiset of "table: :CHAIN POLICY" and "table: -A …" lines
// (packet counters and comments dropped).
func canonIPTables(text string) map[string]int {
	out := map[string]int{}
	table := ""
	for _, raw := range strings.Split(text, "\n") {
		l := strings.TrimSpace(raw)
		switch {
		case l == "" || strings.HasPrefix(l, "#") || l == "COMMIT":
		case strings.HasPrefix(l, "*"):
			table = l[1:]
		case strings.HasPrefix(l, ":"):
			f := strings.Fields(l)
			if len(f) >= 2 {
				out[table+": "+f[0]+" "+f[1]]++
			}
		default:
			out[table+": "+l]++
		}
	}
	return out
}

// stableRead lists real kube-proxy's rules until two listings 1.5 s apart agree (at most ~12 s): kube-proxy resyncs
// (min-sync-period 1 s) whenever the EndpointSlice controller updates a slice — hints for trafficDistribution
// arrive in a later update than the endpoints — so one listing can catch an intermediate state.
func stableRead(ctx context.Context, list func() (string, error)) (string, error) {
	prev, err := list()
	if err != nil {
		return "", err
	}
	for i := 0; i < 8; i++ {
		select {
		case <-ctx.Done():
			return prev, nil
		case <-time.After(1500 * time.Millisecond):
		}
		cur, err := list()
		if err != nil {
			return "", err
		}
		if cur == prev {
			return cur, nil
		}
		prev = cur
	}
	return prev, nil
}

// stripIPTablesNoise drops iptables-save's comment lines and chain counters, which change between listings.
func stripIPTablesNoise(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		b.WriteString(iptCounters.ReplaceAllString(l, ""))
		b.WriteByte('\n')
	}
	return b.String()
}

var iptCounters = regexp.MustCompile(` \[\d+:\d+\]$`)
