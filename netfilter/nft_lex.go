package netfilter

import (
	"strconv"
	"strings"
)

// tok is one nft token. Newlines are tokens (kind NL) because they end rules in `nft list ruleset` output.
type tok struct {
	s      string
	line   int
	quoted bool
	nl     bool   // end of line
	handle uint64 // for "# handle N" comments: the token is a handle marker
}

// lexNFT splits nft text into tokens: words, quoted strings, the single-character tokens { } ; , ( ) and newlines.
// Comments (# …) are dropped except "# handle N", which becomes a handle marker.
func lexNFT(src string) []tok {
	var out []tok
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			out = append(out, tok{s: "\n", line: line, nl: true})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n': // line continuation
			i += 2
			line++
		case c == '#':
			j := strings.IndexByte(src[i:], '\n')
			if j < 0 {
				j = len(src) - i
			}
			body := strings.TrimSpace(src[i+1 : i+j])
			if rest, ok := strings.CutPrefix(body, "handle "); ok {
				if h, err := strconv.ParseUint(strings.TrimSpace(rest), 10, 64); err == nil {
					out = append(out, tok{s: "#handle", line: line, handle: h})
				}
			}
			i += j
		case c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(src) && src[j] != '"' && src[j] != '\n' {
				if src[j] == '\\' && j+1 < len(src) && src[j+1] == '"' {
					j++
				}
				b.WriteByte(src[j])
				j++
			}
			out = append(out, tok{s: b.String(), line: line, quoted: true})
			if j < len(src) && src[j] == '"' {
				j++
			}
			i = j
		case c == '{' || c == '}' || c == ';' || c == ',' || c == '(' || c == ')':
			out = append(out, tok{s: src[i : i+1], line: line})
			i++
		default:
			j := i
			for j < len(src) {
				d := src[j]
				if d == ' ' || d == '\t' || d == '\n' || d == '\r' || d == '{' || d == '}' || d == ';' || d == ',' || d == '"' || d == '(' || d == ')' {
					break
				}
				if d == '#' && j > i { // "#" inside a word is not a comment only when glued; nft needs a space before comments
					break
				}
				j++
			}
			out = append(out, tok{s: src[i:j], line: line})
			i = j
		}
	}
	return out
}

// joinToks renders tokens back into nft-like text.
func joinToks(ts []tok) string {
	var b strings.Builder
	for i, t := range ts {
		if t.nl || t.handle != 0 {
			continue
		}
		if i > 0 && b.Len() > 0 && !(t.s == "," && !t.quoted) {
			b.WriteByte(' ')
		}
		if t.quoted {
			b.WriteString(strconv.Quote(t.s))
		} else {
			b.WriteString(t.s)
		}
	}
	return b.String()
}
