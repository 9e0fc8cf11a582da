package lab

import (
	"fmt"
	"sort"
	"strings"

	"github.com/kpath/kpath/trace"
)

// Diff compares a predicted journey with the observed one on what the kernel can show: the verdict, the backend,
// the DNS query sequence, the hop locations, and per node the kube-proxy action and the Service chains walked.
func Diff(pred, obs *trace.Journey, st *State) []Difference {
	var d []Difference
	add := func(what, p, o string) {
		if p != o {
			d = append(d, Difference{What: what, Predicted: p, Observed: o})
		}
	}
	add("verdict", string(pred.Verdict), string(obs.Verdict))
	if pred.Verdict == trace.Delivered || obs.Verdict == trace.Delivered {
		add("backend", endpointStr(pred.Backend), endpointStr(obs.Backend))
	}
	if pred.DNS != nil || obs.DNS != nil {
		pq, oq := dnsSeq(pred.DNS, true), dnsSeq(obs.DNS, false)
		if strings.Join(pq, "\n") != strings.Join(oq, "\n") {
			d = append(d, Difference{What: "DNS queries", Predicted: strings.Join(pq, "; "), Observed: strings.Join(oq, "; ")})
		}
	}
	add("hops", strings.Join(hopNames(untilStopped(pred)), " → "), strings.Join(hopNames(obs), " → "))
	pk, ok := kubeProxyByNode(pred), kubeProxyByNode(obs)
	for _, node := range unionKeys(pk, ok) {
		p, o := pk[node], ok[node]
		if _, predicted := pk[node]; !predicted && o.Action == trace.ActionNone {
			continue // the model evaluates kube-proxy where the packet is first routed; later nodes only pass it on
		}
		add("kube-proxy action on "+node, string(p.Action), string(o.Action))
		ps, os := serviceChains(p.Rule), serviceChains(o.Rule)
		if !subsequence(strings.Split(p.Rule, " → "), strings.Split(o.Rule, " → ")) || ps != os {
			d = append(d, Difference{What: "kube-proxy chains on " + node, Predicted: p.Rule, Observed: o.Rule})
		}
	}
	d = append(d, meshDiffs(pred, obs)...)
	d = append(d, captureDiffs(pred, obs)...)
	return d
}

func endpointStr(e *trace.Endpoint) string {
	if e == nil {
		return "-"
	}
	return backendKey(e)
}

// dnsSeq lists queries as "name type rcode", grouped by name in the order names were first asked, A before AAAA
// within a name (glibc sends both at once; which one the server reads first is not part of the model).
func dnsSeq(d *trace.DNS, predicted bool) []string {
	if d == nil {
		return nil
	}
	type q struct{ name, typ, rcode string }
	var order []string
	by := map[string][]q{}
	for _, x := range d.Queries {
		if predicted && strings.HasPrefix(x.Why, "(sent only if") {
			continue
		}
		n := strings.ToLower(x.Name)
		if _, ok := by[n]; !ok {
			order = append(order, n)
		}
		by[n] = append(by[n], q{n, x.Type, x.Rcode})
	}
	var out []string
	for _, n := range order {
		qs := by[n]
		sort.SliceStable(qs, func(i, j int) bool { return qs[i].typ < qs[j].typ })
		for _, x := range qs {
			out = append(out, x.name+" "+x.typ+" "+x.rcode)
		}
	}
	return out
}

func hopNames(j *trace.Journey) []string {
	var out []string
	for _, h := range j.Hops {
		out = append(out, string(h.Location.Kind)+" "+h.Location.Name)
	}
	return out
}

func kubeProxyByNode(j *trace.Journey) map[string]trace.Step {
	m := map[string]trace.Step{}
	for _, h := range j.Hops {
		if h.Location.Kind != trace.OnNode {
			continue
		}
		for _, s := range h.Steps {
			if s.Layer == trace.LayerKubeProxy {
				if _, ok := m[h.Location.Name]; !ok {
					m[h.Location.Name] = s
				}
			}
		}
	}
	return m
}

func unionKeys(a, b map[string]trace.Step) []string {
	var ks []string
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

// serviceChains keeps the chains that decide a Service's fate (its own chains and the reject/drop helpers), in
// order: these must agree exactly; hook chains only need to appear in the predicted order.
func serviceChains(rule string) string {
	var out []string
	for _, c := range strings.Split(rule, " → ") {
		c = strings.TrimSpace(c)
		if i := strings.Index(c, " ⇒ "); i >= 0 {
			c = c[:i]
		}
		if strings.HasSuffix(c, "-check") {
			continue // kube-proxy's shared dispatch chains (firewall-check, service-endpoints-check, …)
		}
		for _, pre := range []string{"service-", "external-", "local-", "endpoint-", "firewall-", "reject-chain",
			"KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-FW-"} {
			if strings.HasPrefix(c, pre) {
				out = append(out, c)
				break
			}
		}
	}
	return strings.Join(out, " → ")
}

// subsequence reports whether every element of want appears in have, in order.
func subsequence(want, have []string) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && strings.TrimSpace(want[i]) == strings.TrimSpace(stripArrow(h)) {
			i++
		}
	}
	return i == len(want) || (len(want) == 1 && want[0] == "")
}

func stripArrow(s string) string {
	if i := strings.Index(s, " ⇒ "); i >= 0 {
		return s[:i]
	}
	return s
}

// WriteDiff prints the comparison.
func WriteResult(w interface{ Write([]byte) (int, error) }, r *Result) {
	p, o := r.Predicted, r.Observed
	fmt.Fprintf(w, "LAB  %s → %s  (%s)\n", p.Question.From, p.Question.To, p.Question.Protocol)
	fmt.Fprintf(w, "predicted: %s", p.Verdict)
	if p.Backend != nil {
		fmt.Fprintf(w, " at %s", backendKey(p.Backend))
	}
	fmt.Fprintf(w, "   observed: %s", o.Verdict)
	if o.Backend != nil {
		fmt.Fprintf(w, " at %s", backendKey(o.Backend))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\nobserved journey (kernel):")
	trace.WriteText(w, o, 0)
	if r.Count > 1 {
		fmt.Fprintf(w, "\nbackends over %d connections: predicted {%s}, observed %v\n", r.Count, strings.Join(r.PredictedBackends, ", "), hitsString(r.Hits))
	}
	if r.ConnectRTT > 0 {
		fmt.Fprintf(w, "latency: measured connect round trip %s (one way ≈ %s); model ESTIMATE for the first packet %s\n",
			r.ConnectRTT.Round(100), (r.ConnectRTT / 2).Round(100), p.Latency.Total.Duration())
	}
	writeCaptures(w, r)
	for _, s := range r.Skipped {
		fmt.Fprintf(w, "not compared: %s\n", s)
	}
	if r.Real != nil {
		writeRealChecks(w, r.Real)
	}
	if r.Match() {
		fmt.Fprintln(w, "\nMATCH")
		return
	}
	fmt.Fprintf(w, "\nDIFFERENT (%d)\n", len(r.Diffs))
	for _, x := range r.Diffs {
		fmt.Fprintf(w, "  %s\n    predicted: %s\n    observed:  %s\n", x.What, x.Predicted, x.Observed)
	}
}

func hitsString(h map[string]int) string {
	var ks []string
	for k := range h {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s×%d", k, h[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// untilStopped cuts a journey after the hop where the packet was dropped or rejected: the model keeps walking after
// an egress deny to report ingress blockers too, but the packet itself goes no further.
func untilStopped(j *trace.Journey) *trace.Journey {
	for i, h := range j.Hops {
		for _, s := range h.Steps {
			if s.Action == trace.ActionDrop || s.Action == trace.ActionReject {
				c := *j
				c.Hops = j.Hops[:i+1]
				return &c
			}
		}
	}
	return j
}
