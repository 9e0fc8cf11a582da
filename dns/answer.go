package dns

import (
	"fmt"
	"strings"

	miekg "github.com/miekg/dns"
)

// Answer is the model's reply to one DNS question, with the reason.
type Answer struct {
	// Msg is the full reply (miekg/dns), or nil when the answer is not known (Known == false and nothing partial).
	Msg *miekg.Msg `json:"-"`
	// Rcode is the reply code name (NOERROR, NXDOMAIN, SERVFAIL, REFUSED) or "unknown".
	Rcode string `json:"rcode"`
	// Records are the answer-section RRs in presentation format.
	Records []string `json:"records,omitempty"`
	// Known is false when the reply depends on something not modelled (an upstream resolver): then Msg may hold the
	// part CoreDNS itself decides (e.g. the CNAME of an ExternalName Service) and Why says what is missing.
	Known bool `json:"known"`
	// Plugin is the CoreDNS plugin that decided: "kubernetes", "forward", or "" when no server block matched.
	Plugin string `json:"plugin,omitempty"`
	// Upstream is the forward target when Plugin == "forward".
	Upstream string `json:"upstream,omitempty"`
	// Why is a short explanation, e.g. "headless Service shop/db: 2 ready endpoints".
	Why string `json:"why"`
}

// NXDomain reports whether the answer is a known NXDOMAIN.
func (a Answer) NXDomain() bool { return a.Known && a.Rcode == "NXDOMAIN" }

// HasAnswer reports whether the reply carries at least one answer RR (what a stub resolver counts as success).
func (a Answer) HasAnswer() bool {
	return a.Msg != nil && a.Msg.Rcode == miekg.RcodeSuccess && len(a.Msg.Answer) > 0
}

func finishAnswer(a Answer) Answer {
	if a.Msg != nil {
		if a.Rcode == "" {
			a.Rcode = rcodeName(a.Msg.Rcode)
		}
		a.Records = a.Records[:0]
		for _, rr := range a.Msg.Answer {
			a.Records = append(a.Records, rrString(rr))
		}
	}
	if a.Rcode == "" {
		a.Rcode = "unknown"
	}
	return a
}

func rcodeName(rc int) string {
	if s, ok := miekg.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", rc)
}

// rrString renders an RR with single spaces instead of tabs.
func rrString(rr miekg.RR) string { return strings.Join(strings.Fields(rr.String()), " ") }

func typeName(t uint16) string {
	if s, ok := miekg.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}
