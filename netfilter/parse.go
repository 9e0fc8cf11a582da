package netfilter

import (
	"bytes"
	"fmt"
	"strings"
)

// Format names a dump format.
type Format string

// Dump formats Parse understands.
const (
	FormatNFT      Format = "nft"      // nft list ruleset, nft -f files, knftables Fake.Dump()
	FormatNFTJSON  Format = "nft-json" // nft -j list ruleset
	FormatIPTables Format = "iptables" // iptables-save / iptables-restore input / iptables command scripts
)

// DetectFormat guesses the format of a dump from its first meaningful line.
func DetectFormat(data []byte) (Format, error) {
	t := bytes.TrimSpace(data)
	if len(t) == 0 {
		return "", fmt.Errorf("empty ruleset dump: pass the output of `nft list ruleset`, `nft -j list ruleset` or `iptables-save`")
	}
	if t[0] == '{' {
		return FormatNFTJSON, nil
	}
	for _, line := range strings.Split(string(t), "\n") {
		s := strings.TrimSpace(line)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(s, "*") || strings.HasPrefix(s, ":") || strings.HasPrefix(s, "-A ") ||
			strings.HasPrefix(s, "-N ") || strings.HasPrefix(s, "-I ") || isIPTablesCommand(s):
			return FormatIPTables, nil
		case strings.HasPrefix(s, "table ") || strings.HasPrefix(s, "add ") || strings.HasPrefix(s, "flush ") ||
			strings.HasPrefix(s, "create ") || strings.HasPrefix(s, "insert "):
			return FormatNFT, nil
		}
		return "", fmt.Errorf("ruleset dump starts with %q, which is neither nft (table/add …), nft JSON ({…}) nor iptables-save (*filter, -A …)", firstN(s, 60))
	}
	return "", fmt.Errorf("ruleset dump has only comments")
}

func firstN(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Parse detects the format of data and parses it. Only an undetectable format or malformed JSON is an error; rules the
// parser does not understand are listed in Ruleset.Problems.
func Parse(data []byte) (*Ruleset, Format, error) {
	f, err := DetectFormat(data)
	if err != nil {
		return nil, "", err
	}
	switch f {
	case FormatNFTJSON:
		rs, err := ParseNFTJSON(data)
		return rs, f, err
	case FormatIPTables:
		return ParseIPTables(string(data), FamilyIP), f, nil
	}
	return ParseNFT(string(data)), f, nil
}
