package dns

import (
	"fmt"
	"net/netip"
	"strings"

	miekg "github.com/miekg/dns"
)

// Libc is the stub resolver inside the client container.
type Libc string

// Supported stub resolvers.
const (
	// Glibc is GNU libc's res_nsearch as used by getaddrinfo (glibc ≥ 2.26; Debian, Ubuntu, RHEL images).
	Glibc Libc = "glibc"
	// Musl is musl libc's name_from_dns_search (musl ≥ 1.1.13; Alpine images).
	Musl Libc = "musl"
)

// Family is the address family the application asks getaddrinfo for.
type Family string

// Address families.
const (
	FamilyUnspec Family = "unspec" // AF_UNSPEC: A and AAAA
	FamilyV4     Family = "ipv4"   // AF_INET: A only
	FamilyV6     Family = "ipv6"   // AF_INET6: AAAA only
)

// Query is one DNS query the stub resolver sends, with the answer it gets.
type Query struct {
	// Step numbers the candidate names in order (1 = first name tried); A and AAAA of one name share a step.
	Step int    `json:"step"`
	Name string `json:"name"`
	Type string `json:"type"`
	// Parallel is true when this query leaves together with the other type for the same name (one socket, both in
	// flight); false when the resolver waits for the previous reply first (glibc single-request).
	Parallel bool   `json:"parallel"`
	Server   string `json:"server"`
	// Conditional is true when the query is sent only if an earlier reply that the model cannot know (forwarded
	// upstream) turned out to be a failure.
	Conditional bool   `json:"conditional,omitempty"`
	Answer      Answer `json:"answer"`
}

// Resolution is the stub resolver's full walk for one name.
type Resolution struct {
	Name     string           `json:"name"`
	Settings ResolverSettings `json:"settings"`
	Queries  []Query          `json:"queries"`
	// Result is "answered", "NXDOMAIN", "NODATA", "SERVFAIL", "failed" or "unknown".
	Result string `json:"result"`
	// AnsweredBy is the name whose reply ended the walk with addresses ("" if none).
	AnsweredBy string `json:"answeredBy,omitempty"`
	// Addresses are the A/AAAA answers of the successful name.
	Addresses []netip.Addr `json:"addresses,omitempty"`
	// QueriesSent counts queries sent until the walk ended (conditional ones excluded).
	QueriesSent int `json:"queriesSent"`
	// NXDomainBeforeAnswer counts NXDOMAIN replies received before the walk ended.
	NXDomainBeforeAnswer int `json:"nxdomainBeforeAnswer"`
	// Why summarises the walk: the candidate order and the reason it stopped.
	Why string `json:"why"`
}

// Asker answers one question, as the nameserver the pod uses would (see Server.Answer).
type Asker func(q miekg.Question) Answer

// candidate is one name the resolver tries.
type candidate struct {
	name, why string
	search    bool // a search-list name (glibc stops trying these after a non-retryable error)
}

// Candidates lists the names lib would try for name, in order, and why that order.
//
// glibc res_nsearch: a name with ≥ ndots dots or a trailing dot is tried as-is first (a trailing dot ends there);
// then, for names without a trailing dot, every search domain; then, if not tried yet, the name as-is (unless
// no-tld-query and it has no dot). musl name_from_dns_search: ≥ ndots dots or a trailing dot clears the search
// list, so only the name itself is tried; otherwise every search domain, then the name itself.
func Candidates(s ResolverSettings, name string) ([]candidate, string) {
	absolute := strings.HasSuffix(name, ".")
	bare := strings.TrimSuffix(name, ".")
	dots := strings.Count(bare, ".")
	fq := func(n string) string { return miekg.Fqdn(n) }
	var out []candidate
	switch s.Libc {
	case Musl:
		if absolute || dots >= s.Ndots {
			why := fmt.Sprintf("%d dot(s) ≥ ndots:%d: musl clears the search list and tries only the name itself", dots, s.Ndots)
			if absolute {
				why = "trailing dot: musl tries only the absolute name"
			}
			return []candidate{{fq(bare), "as-is", false}}, why
		}
		for _, d := range s.Searches {
			if d == "" || len(bare)+1+len(d) > 253 {
				continue
			}
			out = append(out, candidate{fq(bare + "." + d), "search " + d, true})
		}
		out = append(out, candidate{fq(bare), "as-is, after the search list", false})
		return out, fmt.Sprintf("%d dot(s) < ndots:%d: musl tries each of %d search domain(s), then the name itself", dots, s.Ndots, len(s.Searches))
	default:
		var why []string
		triedAsIs := false
		if dots >= s.Ndots || absolute {
			out = append(out, candidate{fq(bare), "as-is first", false})
			triedAsIs = true
			if absolute {
				return out, "trailing dot: glibc tries only the absolute name"
			}
			why = append(why, fmt.Sprintf("%d dot(s) ≥ ndots:%d: glibc tries the name as-is first, then the search list", dots, s.Ndots))
		} else {
			why = append(why, fmt.Sprintf("%d dot(s) < ndots:%d: glibc tries the search list first", dots, s.Ndots))
		}
		rootOnList := false
		for _, d := range s.Searches {
			d = strings.TrimPrefix(d, ".")
			if d == "" {
				rootOnList = true
				out = append(out, candidate{fq(bare), "search root", true})
				continue
			}
			if len(bare)+1+len(d) > 253 {
				continue
			}
			out = append(out, candidate{fq(bare + "." + d), "search " + d, true})
		}
		if !triedAsIs && !rootOnList && (dots > 0 || len(s.Searches) == 0 || !s.NoTLDQuery) {
			out = append(out, candidate{fq(bare), "as-is, after the search list", false})
			why = append(why, "then the name as-is")
		}
		return out, strings.Join(why, "; ")
	}
}

// Resolve walks the queries lib sends for name (getaddrinfo for family) and asks ask for each reply.
func Resolve(rc ResolvConf, lib Libc, name string, family Family, ask Asker) Resolution {
	if lib == "" {
		lib = Glibc
	}
	if family == "" {
		family = FamilyUnspec
	}
	s := rc.Settings(lib)
	res := Resolution{Name: name, Settings: s}
	cands, order := Candidates(s, name)
	server := "(none)"
	if len(s.Nameservers) > 0 {
		server = s.Nameservers[0]
		if lib == Musl && len(s.Nameservers) > 1 {
			server = strings.Join(s.Nameservers, ",")
		}
	}
	var types []uint16
	if family != FamilyV6 {
		types = append(types, miekg.TypeA)
	}
	if family != FamilyV4 && !(lib == Glibc && s.NoAAAA) {
		types = append(types, miekg.TypeAAAA)
	}
	parallel := len(types) > 1 && (lib == Musl || s.SingleRequest == "")

	res.Queries = make([]Query, 0, len(cands)*len(types))
	conditional, skipSearch := false, false
	var stop string
	for i, c := range cands {
		if skipSearch && c.search {
			continue
		}
		var replies []Answer
		for _, t := range types {
			a := ask(miekg.Question{Name: c.name, Qtype: t, Qclass: miekg.ClassINET})
			res.Queries = append(res.Queries, Query{Step: i + 1, Name: c.name, Type: typeName(t), Parallel: parallel, Server: server, Conditional: conditional, Answer: a})
			if !conditional {
				res.QueriesSent++
				if a.NXDomain() {
					res.NXDomainBeforeAnswer++
				}
			}
			replies = append(replies, a)
		}
		outcome, addrs := judge(lib, replies)
		if conditional {
			// Past an unknown reply the walk is hypothetical: list the names that would follow a failure, up
			// to the first that would end the walk.
			if outcome == "answered" || (strings.HasPrefix(outcome, "stop-") && !(lib == Glibc && outcome == "stop-failed")) {
				break
			}
			continue
		}
		switch outcome {
		case "answered":
			res.Result, res.AnsweredBy, res.Addresses = "answered", c.name, addrs
			stop = fmt.Sprintf("%s answered (%s)", c.name, c.why)
		case "unknown":
			conditional = true
			res.Result = "unknown"
			stop = fmt.Sprintf("%s was forwarded upstream (answer unknown); the later queries are sent only if it fails", c.name)
			continue
		case "stop-failed":
			if lib == Glibc {
				// glibc: a non-retryable error ends the search loop (or follows the first as-is try), but the
				// name as-is is still tried if it was not yet.
				res.Result = "failed"
				skipSearch = skipSearch || c.search
				continue
			}
			res.Result = "failed"
			stop = fmt.Sprintf("%s failed: %s stops searching", c.name, lib)
		case "stop-NODATA", "stop-SERVFAIL":
			res.Result = strings.TrimPrefix(outcome, "stop-")
			stop = fmt.Sprintf("%s got %s: %s stops searching", c.name, res.Result, lib)
		default:
			res.Result = outcome // NXDOMAIN / NODATA / SERVFAIL: keep searching
			continue
		}
		break
	}
	if stop == "" {
		stop = fmt.Sprintf("every candidate failed (last: %s)", res.Result)
		if len(cands) == 0 {
			res.Result = "failed"
			stop = "no candidate names"
		}
	}
	res.Why = fmt.Sprintf("%s; %s; %d queries, %d NXDOMAIN", order, stop, res.QueriesSent, res.NXDomainBeforeAnswer)
	return res
}

// judge decides what a resolver does with the replies for one candidate name. Outcomes: "answered", "unknown",
// "NXDOMAIN"/"NODATA"/"SERVFAIL" (keep searching), "stop-…" (stop the walk).
func judge(lib Libc, replies []Answer) (string, []netip.Addr) {
	var addrs []netip.Addr
	answered, unknown := false, false
	for _, a := range replies {
		if !a.Known {
			unknown = true
		}
		if a.HasAnswer() {
			answered = true
			for _, rr := range a.Msg.Answer {
				switch v := rr.(type) {
				case *miekg.A:
					if ip, ok := netip.AddrFromSlice(v.A); ok {
						addrs = append(addrs, ip.Unmap())
					}
				case *miekg.AAAA:
					if ip, ok := netip.AddrFromSlice(v.AAAA); ok {
						addrs = append(addrs, ip)
					}
				}
			}
		}
	}
	if lib == Musl {
		// name_from_dns: SERVFAIL → EAI_AGAIN (stop); NXDOMAIN in any reply → try the next name; other errors stop;
		// NOERROR without addresses → EAI_NONAME (stop).
		for _, a := range replies {
			if !a.Known {
				return "unknown", nil
			}
			switch a.Rcode {
			case "SERVFAIL":
				return "stop-SERVFAIL", nil
			case "NXDOMAIN":
				return "NXDOMAIN", nil
			case "NOERROR":
			default:
				return "stop-failed", nil
			}
		}
		if len(addrs) > 0 {
			return "answered", addrs
		}
		return "stop-NODATA", nil
	}
	// glibc __res_context_query with A+AAAA: success if either reply is NOERROR with answers.
	if answered && !unknown {
		return "answered", addrs
	}
	if unknown {
		return "unknown", nil
	}
	first := replies[0]
	rc := first.Rcode
	if rc == "NOERROR" && len(replies) > 1 {
		rc = replies[1].Rcode
	}
	switch rc {
	case "NXDOMAIN":
		return "NXDOMAIN", nil
	case "NOERROR":
		return "NODATA", nil
	case "SERVFAIL":
		return "SERVFAIL", nil
	}
	// REFUSED, NOTIMP, FORMERR: NO_RECOVERY ends the search loop.
	return "stop-failed", nil
}
