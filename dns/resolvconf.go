package dns

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ResolvConf is the resolver configuration of one network namespace, as kubelet hands it to the container runtime
// (the CRI DNSConfig) and as the runtime writes it to /etc/resolv.conf.
type ResolvConf struct {
	Nameservers []string `json:"nameservers"`
	Searches    []string `json:"searches"`
	// Options are "name" or "name:value" strings, e.g. "ndots:5", "single-request".
	Options []string `json:"options"`
}

// maxResolvConfLength is kubelet's read limit for the host resolv.conf (maxResolvConfLength, 10 MiB).
const maxResolvConfLength = 10 << 20

// ParseResolvConf parses resolv.conf text the way kubelet's parseResolvConf does (pkg/kubelet/network/dns):
// "nameserver" lines accumulate (first field only), the last "search" line wins (a lone "." is dropped and one
// trailing dot is trimmed from each domain), and "options" lines merge with the last value of each option winning.
// Lines starting with '#' are comments. A "nameserver" line without an address is an error, but parsing goes on and
// the result is still returned, as kubelet's aggregate error does.
func ParseResolvConf(text string) (ResolvConf, error) {
	rc := ResolvConf{Nameservers: []string{}, Searches: []string{}, Options: []string{}}
	if len(text) > maxResolvConfLength {
		return rc, fmt.Errorf("resolv.conf is %d bytes, more than kubelet's limit of %d", len(text), maxResolvConfLength)
	}
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		fields := strings.Fields(trimmed)
		if len(fields) == 0 {
			continue
		}
		switch fields[0] {
		case "nameserver":
			if len(fields) >= 2 {
				rc.Nameservers = append(rc.Nameservers, fields[1])
			} else {
				errs = append(errs, fmt.Errorf("resolv.conf line %d: nameserver list is empty", i+1))
			}
		case "search":
			rc.Searches = []string{}
			for _, s := range fields[1:] {
				if s != "." {
					rc.Searches = append(rc.Searches, strings.TrimSuffix(s, "."))
				}
			}
		case "options":
			rc.Options = mergeOptionStrings(rc.Options, fields[1:])
		}
	}
	return rc, errors.Join(errs...)
}

// mergeOptionStrings merges "name[:value]" options; a later option with the same name replaces the earlier one in
// place. Kubelet builds the merged list from a Go map, so its order is random; we keep first-appearance order so
// output is deterministic. Resolvers do not care about option order except for repeated names, which cannot occur
// after a merge.
func mergeOptionStrings(existing, add []string) []string {
	out := append([]string(nil), existing...)
	idx := make(map[string]int, len(out))
	for i, o := range out {
		idx[optionName(o)] = i
	}
	for _, o := range add {
		n := optionName(o)
		if i, ok := idx[n]; ok {
			out[i] = o
			continue
		}
		idx[n] = len(out)
		out = append(out, o)
	}
	if out == nil {
		out = []string{}
	}
	return out
}

func optionName(o string) string {
	if i := strings.IndexByte(o, ':'); i >= 0 {
		return o[:i]
	}
	return o
}

// Option returns the value of option name and whether it is set ("" for flag options).
func (rc ResolvConf) Option(name string) (string, bool) {
	for i := len(rc.Options) - 1; i >= 0; i-- {
		o := rc.Options[i]
		if optionName(o) == name {
			if j := strings.IndexByte(o, ':'); j >= 0 {
				return o[j+1:], true
			}
			return "", true
		}
	}
	return "", false
}

// Render writes the file the way containerd and CRI-O write a pod's /etc/resolv.conf from the CRI DNSConfig:
// one search line, one nameserver line per server, one options line.
func (rc ResolvConf) Render() string {
	var b strings.Builder
	if len(rc.Searches) > 0 {
		b.WriteString("search " + strings.Join(rc.Searches, " ") + "\n")
	}
	for _, ns := range rc.Nameservers {
		b.WriteString("nameserver " + ns + "\n")
	}
	if len(rc.Options) > 0 {
		b.WriteString("options " + strings.Join(rc.Options, " ") + "\n")
	}
	return b.String()
}

// ResolverSettings is what one resolver library actually uses from a ResolvConf.
type ResolverSettings struct {
	Libc        Libc     `json:"libc"`
	Nameservers []string `json:"nameservers"`
	Searches    []string `json:"searches"`
	Ndots       int      `json:"ndots"`
	// SingleRequest: glibc "single-request"/"single-request-reopen": A and AAAA are sent one after the other.
	SingleRequest string `json:"singleRequest,omitempty"`
	// NoAAAA: glibc ≥ 2.36 "no-aaaa": AAAA queries are suppressed.
	NoAAAA bool `json:"noAAAA,omitempty"`
	// NoTLDQuery: glibc "no-tld-query": a dotless name is never sent as-is.
	NoTLDQuery bool `json:"noTLDQuery,omitempty"`
	// Notes explain settings the library ignored or clamped.
	Notes []string `json:"notes,omitempty"`
}

// Settings returns what lib reads from rc.
//
// glibc (resolv/res_init.c): at most 3 nameservers (MAXNS), ndots default 1 and clamped to 15, the search list has no
// count or length limit since glibc 2.26. musl (src/network/resolvconf.c): at most 3 nameservers, ndots default 1
// clamped to 15, only ndots/attempts/timeout are read from options, and any line of 255 bytes or more is ignored
// entirely (it is read with a 256-byte buffer), so an over-long search line leaves musl with no search list.
func (rc ResolvConf) Settings(lib Libc) ResolverSettings {
	s := ResolverSettings{Libc: lib, Ndots: 1}
	s.Nameservers = rc.Nameservers
	if len(s.Nameservers) > 3 {
		s.Notes = append(s.Notes, fmt.Sprintf("%s uses only the first 3 of %d nameservers", lib, len(rc.Nameservers)))
		s.Nameservers = s.Nameservers[:3]
	}
	s.Searches = rc.Searches
	if v, ok := rc.Option("ndots"); ok {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			if n > 15 {
				s.Notes = append(s.Notes, fmt.Sprintf("ndots:%d clamped to 15", n))
				n = 15
			}
			s.Ndots = n
		}
	}
	switch lib {
	case Musl:
		if line := "search " + strings.Join(rc.Searches, " "); len(rc.Searches) > 0 && len(line) >= 255 {
			s.Notes = append(s.Notes, fmt.Sprintf("musl ignores the %d-byte search line (lines of 255 bytes or more are skipped): no search list", len(line)))
			s.Searches = nil
		}
		for _, o := range []string{"single-request", "single-request-reopen", "no-aaaa", "no-tld-query", "rotate", "edns0", "use-vc"} {
			if _, ok := rc.Option(o); ok {
				s.Notes = append(s.Notes, "musl ignores option "+o)
			}
		}
	default:
		if _, ok := rc.Option("single-request-reopen"); ok {
			s.SingleRequest = "single-request-reopen"
		} else if _, ok := rc.Option("single-request"); ok {
			s.SingleRequest = "single-request"
		}
		_, s.NoAAAA = rc.Option("no-aaaa")
		_, s.NoTLDQuery = rc.Option("no-tld-query")
	}
	return s
}
