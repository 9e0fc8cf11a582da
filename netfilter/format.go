package netfilter

import (
	"fmt"
	"strings"
)

// Format renders the walk for humans: one block per branch, one line per rule hit, in the spirit of
// `nft monitor trace`.
func (r Result) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "packet: %s\n", r.Packet)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	for i, br := range r.Branches {
		fmt.Fprintf(&b, "branch %d/%d p=%.4g: %s\n", i+1, len(r.Branches), br.Probability, br.Summary())
		for _, h := range br.Hits {
			fmt.Fprintf(&b, "  %s\n", h)
		}
	}
	return b.String()
}

// Summary is a one-line account of the branch's fate.
func (br Branch) Summary() string {
	switch br.Verdict {
	case VerdictAccept:
		s := "accept"
		if br.Delivery == "local" {
			s += ", delivered locally to " + br.Packet.Dst.String()
		} else {
			s += ", sent out " + quoteOr(br.Packet.Oif, "(unknown interface)") + " to " + br.Packet.Dst.String()
		}
		var extra []string
		if br.DNAT {
			extra = append(extra, "destination rewritten")
		}
		if br.SNAT {
			extra = append(extra, "source rewritten to "+br.Packet.Src.String())
		}
		if br.Masquerade {
			extra = append(extra, "masquerade")
		}
		if br.Packet.Mark != 0 {
			extra = append(extra, fmt.Sprintf("mark 0x%x", br.Packet.Mark))
		}
		if len(extra) > 0 {
			s += " (" + strings.Join(extra, ", ") + ")"
		}
		return s
	case VerdictUnknown:
		return "unknown: " + br.Unknown
	}
	if n := len(br.Hits); n > 0 {
		h := br.Hits[n-1]
		return fmt.Sprintf("%s by %s %s %s", br.Verdict, h.Family, h.Table, h.Chain)
	}
	return br.Verdict
}
