package trace

import (
	"fmt"
	"io"
	"strings"
)

// WriteText renders a journey for people: one block per location, each step with its object, rule, rewrite and
// why; then verdict, blockers, backend and alternatives, the latency budget and the return path.
func WriteText(w io.Writer, j *Journey, verbose int) {
	tw := &textWriter{w: w, verbose: verbose}
	tw.journey(j, "")
}

type textWriter struct {
	w       io.Writer
	verbose int
}

func (t *textWriter) f(format string, a ...any) { fmt.Fprintf(t.w, format, a...) }

var circled = []string{"①", "②", "③", "④", "⑤", "⑥", "⑦", "⑧", "⑨", "⑩", "⑪", "⑫"}

func (t *textWriter) journey(j *Journey, ind string) {
	q := j.Question
	t.f("%s%s → %s  (%s)\n", ind, q.From, q.To, strings.ToLower(string(q.Protocol)))
	if ind == "" {
		t.f("profile: kube-proxy %s · CNI %s · mesh %s · encryption %s\n", j.Profile.ProxyMode, j.Profile.CNI, j.Profile.Mesh, j.Profile.Encryption)
		if t.verbose > 0 {
			for _, k := range sortedKeys(j.Profile.Why) {
				t.f("  %s: %s\n", k, j.Profile.Why[k])
			}
		}
	}
	if j.DNS != nil {
		t.dns(j.DNS, ind)
	}
	for i, h := range j.Hops {
		mark := fmt.Sprintf("(%d)", i+1)
		if i < len(circled) {
			mark = circled[i]
		}
		est := ""
		if i < len(j.Latency.ByHop) && j.Latency.ByHop[i].Nanos > 0 {
			est = "  ~" + fmtDuration(j.Latency.ByHop[i].Nanos)
		}
		t.f("\n%s%s %s%s\n", ind, mark, h.Location, est)
		for _, s := range h.Steps {
			t.step(s, ind+"   ")
		}
	}
	t.f("\n%sVERDICT  %s — %s\n", ind, strings.ToUpper(string(j.Verdict)), j.VerdictReason)
	for _, b := range j.Blockers {
		t.f("%s  blocker [%s] %s: %s\n", ind, b.Layer, b.Object, b.Reason)
	}
	if j.Backend != nil {
		t.f("%sBACKEND  %s\n", ind, endpointText(*j.Backend))
		for _, a := range j.Alternatives {
			why := ""
			if a.Why != "" {
				why = ", " + a.Why
			}
			t.f("%s  or     %s  (p=%.2f%s)\n", ind, endpointText(a.Endpoint), a.Probability, why)
		}
	}
	t.f("%sLATENCY  ~%s total (%s)\n", ind, fmtDuration(j.Latency.Total.Nanos), j.Latency.Note)
	if ind == "" && len(j.ReturnPath) > 0 {
		t.f("RETURN   %s\n", strings.Join(j.ReturnPath, "\n         "))
	}
	for _, n := range j.Notes {
		t.f("%sNOTE     %s\n", ind, n)
	}
}

func endpointText(e Endpoint) string {
	s := fmt.Sprintf("%s:%d", e.IP, e.Port)
	if e.Pod != "" {
		s = e.Pod + " " + s
	}
	if e.Node != "" {
		s += " on " + e.Node
	}
	if e.Synthesized {
		s += " [synthesized]"
	}
	return s
}

func (t *textWriter) step(s Step, ind string) {
	obj := s.Object
	if obj == "" {
		obj = "-"
	}
	t.f("%s%-10s %-11s %s\n", ind, s.Layer, s.Action, obj)
	pad := ind + strings.Repeat(" ", 11)
	if s.Rule != "" {
		t.f("%srule: %s\n", pad, s.Rule)
	}
	if s.Before != nil && s.After != nil {
		t.f("%s%s\n%s  ⇒ %s\n", pad, s.Before, pad, s.After)
	} else if s.Before != nil {
		t.f("%s%s\n", pad, s.Before)
	}
	t.f("%swhy: %s\n", pad, s.Why)
	if s.Nested != nil {
		t.journey(s.Nested, pad+"  ")
	}
}

func (t *textWriter) dns(d *DNS, ind string) {
	t.f("\n%sDNS  %s  (%s resolver; %s)\n", ind, d.Name, d.Resolver, strings.ReplaceAll(d.ResolvConf, "\n", "; "))
	for i, q := range d.Queries {
		ans := strings.Join(q.Answers, ", ")
		if ans == "" {
			ans = "-"
		}
		t.f("%s  %2d %-44s %-5s %-9s %s\n", ind, i+1, q.Name, q.Type, q.Rcode, ans)
		if t.verbose > 0 && q.Why != "" {
			t.f("%s     why: %s\n", ind, q.Why)
		}
	}
	res := d.Result
	if res == "" {
		res = "(no address)"
	}
	t.f("%s  → %s   %s\n", ind, res, d.Amplification)
	if d.Query != nil {
		be := ""
		if d.Query.Backend != nil {
			be = " at " + endpointText(*d.Query.Backend)
		}
		t.f("%s  the query packet: %s%s — %s\n", ind, d.Query.Verdict, be, d.Query.VerdictReason)
		if t.verbose > 1 {
			t.journey(d.Query, ind+"    ")
		}
	}
}
