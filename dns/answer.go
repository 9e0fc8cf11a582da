package dns

import (
	"encoding/json"
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

// Records renders the answer section in presentation format (tabs replaced by spaces).
func (a Answer) Records() []string {
	if a.Msg == nil {
		return nil
	}
	out := make([]string, 0, len(a.Msg.Answer))
	for _, rr := range a.Msg.Answer {
		out = append(out, rrString(rr))
	}
	return out
}

// MarshalJSON adds the rendered records to the JSON form; they are computed only when asked for, since the
// resolver walk creates many answers that are never printed.
func (a Answer) MarshalJSON() ([]byte, error) {
	type plain Answer
	return json.Marshal(struct {
		plain
		Records []string `json:"records,omitempty"`
	}{plain(a), a.Records()})
}

func finishAnswer(a Answer) Answer {
	if a.Msg != nil {
		if a.Rcode == "" {
			a.Rcode = rcodeName(a.Msg.Rcode)
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

// rrString renders an RR with spaces instead of tabs.
func rrString(rr miekg.RR) string { return strings.ReplaceAll(rr.String(), "\t", " ") }

func typeName(t uint16) string {
	if s, ok := miekg.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}
