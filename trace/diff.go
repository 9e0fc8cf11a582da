package trace

import (
	"fmt"
	"io"
	"strings"
)

// DiffSchema versions the JSON form of a JourneyDiff.
const DiffSchema = "kpath.dev/journey-diff/v1"

// JourneyDiff compares the journeys of one question before and after a change (a mesh injected, a policy edited,
// another snapshot): hops added and removed, address rewrites that moved, checks that appeared or went away, the
// identities on the wire, and the latency delta. Both journeys are kept whole.
type JourneyDiff struct {
	Schema      string      `json:"schema"`
	Question    Question    `json:"question"`
	Verdict     Change      `json:"verdict"`
	Backend     Change      `json:"backend"`
	HopsAdded   []string    `json:"hops_added"`
	HopsRemoved []string    `json:"hops_removed"`
	NAT         NATDiff     `json:"nat"`
	Checks      ChecksDiff  `json:"checks"`
	Identity    Change      `json:"identity"`
	Latency     LatencyDiff `json:"latency"`
	// Summary says the differences in sentences, most important first.
	Summary []string `json:"summary"`
	Before  *Journey `json:"before"`
	After   *Journey `json:"after"`
}

// Change is a value before and after ("" when absent).
type Change struct {
	Before string `json:"before"`
	After  string `json:"after"`
}

// NATDiff lists the address rewrites of each journey ("kube-proxy dnat by Service shop/cart at node kpath-worker").
type NATDiff struct {
	Before []string `json:"before"`
	After  []string `json:"after"`
}

// ChecksDiff lists the policy and mesh decisions only one journey met.
type ChecksDiff struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// LatencyDiff is the modelled latency before, after and the difference (estimates, not measurements).
type LatencyDiff struct {
	BeforeNs int64 `json:"before_ns"`
	AfterNs  int64 `json:"after_ns"`
	DeltaNs  int64 `json:"delta_ns"`
}

// Diff compares two journeys of the same question.
func Diff(before, after *Journey) *JourneyDiff {
	d := &JourneyDiff{Schema: DiffSchema, Question: after.Question, Before: before, After: after,
		HopsAdded: []string{}, HopsRemoved: []string{}, NAT: NATDiff{Before: []string{}, After: []string{}},
		Checks: ChecksDiff{Added: []string{}, Removed: []string{}}, Summary: []string{}}
	d.Verdict = Change{string(before.Verdict), string(after.Verdict)}
	d.Backend = Change{backendText(before), backendText(after)}
	d.HopsAdded, d.HopsRemoved = multisetDiff(hopNames(after), hopNames(before))
	d.NAT.Before, d.NAT.After = rewrites(before), rewrites(after)
	d.Checks.Added, d.Checks.Removed = multisetDiff(checks(after), checks(before))
	d.Identity = Change{identities(before), identities(after)}
	d.Latency = LatencyDiff{before.Latency.Total.Nanos, after.Latency.Total.Nanos, after.Latency.Total.Nanos - before.Latency.Total.Nanos}

	s := &d.Summary
	if d.Verdict.Before != d.Verdict.After {
		*s = append(*s, fmt.Sprintf("verdict changes: %s → %s (%s)", d.Verdict.Before, d.Verdict.After, after.VerdictReason))
	} else {
		*s = append(*s, "verdict unchanged: "+d.Verdict.After)
	}
	kpBefore, kpAfter := hasAction(before, LayerKubeProxy, ActionDNAT), hasAction(after, LayerKubeProxy, ActionDNAT)
	meshBefore, meshAfter := hasAction(before, LayerMesh, ActionForward), hasAction(after, LayerMesh, ActionForward)
	switch {
	case kpBefore && !kpAfter && meshAfter:
		*s = append(*s, "NAT moved: kube-proxy's Service DNAT on the node is replaced by the mesh proxy's own endpoint selection in the source pod (the proxy connects straight to the pod IP)")
	case !kpBefore && kpAfter && meshBefore:
		*s = append(*s, "NAT moved back: the proxy's endpoint selection is gone and kube-proxy DNATs the Service address on the node again")
	}
	if n := len(d.HopsAdded); n > 0 {
		*s = append(*s, fmt.Sprintf("%d hop(s) added: %s", n, strings.Join(d.HopsAdded, "; ")))
	}
	if n := len(d.HopsRemoved); n > 0 {
		*s = append(*s, fmt.Sprintf("%d hop(s) removed: %s", n, strings.Join(d.HopsRemoved, "; ")))
	}
	if len(d.Checks.Added) > 0 {
		*s = append(*s, "new checks: "+strings.Join(d.Checks.Added, "; "))
	}
	if len(d.Checks.Removed) > 0 {
		*s = append(*s, "checks gone: "+strings.Join(d.Checks.Removed, "; "))
	}
	if d.Identity.Before != d.Identity.After {
		*s = append(*s, fmt.Sprintf("on the wire: %s → %s", whyOr(d.Identity.Before, "plaintext"), whyOr(d.Identity.After, "plaintext")))
	}
	if d.Backend.Before != d.Backend.After {
		*s = append(*s, fmt.Sprintf("backend: %s → %s", whyOr(d.Backend.Before, "none"), whyOr(d.Backend.After, "none")))
	}
	*s = append(*s, fmt.Sprintf("latency (estimate): %s → %s (%s)", fmtDuration(d.Latency.BeforeNs), fmtDuration(d.Latency.AfterNs), signedDuration(d.Latency.DeltaNs)))
	return d
}

func signedDuration(ns int64) string {
	if ns < 0 {
		return "-" + fmtDuration(-ns)
	}
	return "+" + fmtDuration(ns)
}

func backendText(j *Journey) string {
	if j.Backend == nil {
		return ""
	}
	return endpointText(*j.Backend)
}

func hopNames(j *Journey) []string {
	var out []string
	for _, h := range j.Hops {
		out = append(out, h.Location.String())
	}
	return out
}

func hasAction(j *Journey, l Layer, a Action) bool {
	for _, h := range j.Hops {
		for _, s := range h.Steps {
			if s.Layer == l && s.Action == a {
				return true
			}
		}
	}
	return false
}

// rewrites lists every step that changed the packet's addresses (DNAT, SNAT, masquerade, redirect, a proxy's new
// connection), with where it happened and the rewrite.
func rewrites(j *Journey) []string {
	out := []string{}
	for _, h := range j.Hops {
		for _, s := range h.Steps {
			if s.Before == nil || s.After == nil {
				continue
			}
			if s.Before.Src == s.After.Src && s.Before.Dst == s.After.Dst {
				continue // encapsulation, decryption: the inner addresses stay
			}
			out = append(out, fmt.Sprintf("%s %s by %s at %s: %s → %s", s.Layer, s.Action, s.Object, h.Location.Name,
				fmt.Sprintf("%s→%s", s.Before.Src, s.Before.Dst), fmt.Sprintf("%s→%s", s.After.Src, s.After.Dst)))
		}
	}
	return out
}

// checks lists the decisions of policy and mesh steps (allow, reject, drop, unknown) as "layer action object".
func checks(j *Journey) []string {
	var out []string
	for _, h := range j.Hops {
		for _, s := range h.Steps {
			if s.Layer != LayerPolicy && s.Layer != LayerMesh {
				continue
			}
			switch s.Action {
			case ActionAllow, ActionReject, ActionDrop, ActionUnknown:
				out = append(out, fmt.Sprintf("%s %s %s", s.Layer, s.Action, s.Object))
			}
		}
	}
	return out
}

func identities(j *Journey) string {
	var ids []string
	for _, h := range j.Hops {
		for _, s := range h.Steps {
			if s.Layer == LayerMesh && s.Action == ActionEncrypt {
				ids = append(ids, strings.TrimPrefix(s.Rule, "mTLS client "))
			}
		}
	}
	if len(ids) == 0 {
		return ""
	}
	return "mTLS " + strings.Join(ids, "; ")
}

// multisetDiff returns what a has beyond b and what b has beyond a, counting repeats, in order of appearance.
func multisetDiff(a, b []string) (onlyA, onlyB []string) {
	onlyA, onlyB = []string{}, []string{}
	cb := map[string]int{}
	for _, x := range b {
		cb[x]++
	}
	for _, x := range a {
		if cb[x] > 0 {
			cb[x]--
			continue
		}
		onlyA = append(onlyA, x)
	}
	ca := map[string]int{}
	for _, x := range a {
		ca[x]++
	}
	for _, x := range b {
		if ca[x] > 0 {
			ca[x]--
			continue
		}
		onlyB = append(onlyB, x)
	}
	return onlyA, onlyB
}

// WriteDiffText renders a JourneyDiff for people: the summary, then both journeys' hops side by side.
func WriteDiffText(w io.Writer, d *JourneyDiff, beforeName, afterName string) {
	q := d.Question
	fmt.Fprintf(w, "%s → %s  (%s)\n", q.From, q.To, strings.ToLower(string(q.Protocol)))
	fmt.Fprintf(w, "before: %s\nafter:  %s\n\n", beforeName, afterName)
	for _, s := range d.Summary {
		fmt.Fprintf(w, "• %s\n", s)
	}
	if len(d.NAT.Before)+len(d.NAT.After) > 0 {
		fmt.Fprintf(w, "\nNAT before:\n")
		for _, n := range orNone(d.NAT.Before) {
			fmt.Fprintf(w, "  %s\n", n)
		}
		fmt.Fprintf(w, "NAT after:\n")
		for _, n := range orNone(d.NAT.After) {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	left, right := hopLines(d.Before), hopLines(d.After)
	width := 0
	for _, l := range left {
		width = max(width, len([]rune(l)))
	}
	width = min(max(width, 20), 70)
	fmt.Fprintf(w, "\n%-*s │ %s\n", width, "BEFORE", "AFTER")
	fmt.Fprintf(w, "%s─┼─%s\n", strings.Repeat("─", width), strings.Repeat("─", width))
	for i := 0; i < len(left) || i < len(right); i++ {
		var a, b string
		if i < len(left) {
			a = left[i]
		}
		if i < len(right) {
			b = right[i]
		}
		if r := []rune(a); len(r) > width {
			a = string(r[:width-1]) + "…"
		}
		pad := width - len([]rune(a))
		fmt.Fprintf(w, "%s%s │ %s\n", a, strings.Repeat(" ", pad), b)
	}
	fmt.Fprintf(w, "%-*s │ %s\n", width, "VERDICT "+strings.ToUpper(d.Verdict.Before), "VERDICT "+strings.ToUpper(d.Verdict.After))
}

func orNone(xs []string) []string {
	if len(xs) == 0 {
		return []string{"(none)"}
	}
	return xs
}

// hopLines is a compact listing of a journey: one line per hop, then one per step (layer action object).
func hopLines(j *Journey) []string {
	var out []string
	for i, h := range j.Hops {
		est := ""
		if i < len(j.Latency.ByHop) && j.Latency.ByHop[i].Nanos > 0 {
			est = " ~" + fmtDuration(j.Latency.ByHop[i].Nanos)
		}
		out = append(out, fmt.Sprintf("%d %s%s", i+1, h.Location, est))
		for _, s := range h.Steps {
			if s.Layer == LayerDNS {
				continue
			}
			out = append(out, fmt.Sprintf("   %s %s %s", s.Layer, s.Action, s.Object))
		}
	}
	return out
}
