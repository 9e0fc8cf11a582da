package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// jsonScanner splits a JSON stream into raw values without decoding them: one pass over the bytes that only tracks
// nesting and strings, so a `kind: List` of 150,000 items is cut into items at memory speed and the items are
// decoded (and validated) in parallel afterwards. It counts lines, so every item knows where it starts.
type jsonScanner struct {
	r    io.Reader
	buf  []byte
	pos  int
	eof  bool
	err  error
	line int // line of buf[pos] (1-based)

}

func newJSONScanner(r io.Reader) *jsonScanner {
	return &jsonScanner{r: r, buf: make([]byte, 0, 1<<20), line: 1}
}

// more reads more input, keeping buf[keep:] (keep ≤ pos). It returns false at end of input.
func (s *jsonScanner) more(keep int) bool {
	if s.eof {
		return false
	}
	if keep > 0 {
		n := copy(s.buf, s.buf[keep:])
		s.buf = s.buf[:n]
		s.pos -= keep
	}
	if len(s.buf) == cap(s.buf) {
		nb := make([]byte, len(s.buf), 2*cap(s.buf))
		copy(nb, s.buf)
		s.buf = nb
	}
	n, err := s.r.Read(s.buf[len(s.buf):cap(s.buf)])
	s.buf = s.buf[:len(s.buf)+n]
	if err == io.EOF {
		s.eof = true
	} else if err != nil {
		s.err, s.eof = err, true
	}
	return n > 0 || !s.eof
}

// advance moves pos forward by n bytes, counting lines.
func (s *jsonScanner) advance(n int) {
	s.line += bytes.Count(s.buf[s.pos:s.pos+n], []byte{'\n'})
	s.pos += n
}

// peek skips whitespace and returns the next byte without consuming it; 0 at end of input.
func (s *jsonScanner) peek() byte {
	for {
		for s.pos < len(s.buf) {
			switch c := s.buf[s.pos]; c {
			case ' ', '\t', '\r':
				s.pos++
			case '\n':
				s.pos++
				s.line++
			default:
				return c
			}
		}
		if !s.more(s.pos) {
			return 0
		}
	}
}

// expect consumes the next non-space byte if it is c.
func (s *jsonScanner) expect(c byte) bool {
	if s.peek() != c {
		return false
	}
	s.advance(1)
	return true
}

var errJSONEnd = errors.New("unexpected end of input")

// value returns the next complete JSON value as raw bytes (a view valid until the next call) with its start line.
func (s *jsonScanner) value() ([]byte, int, error) {
	c := s.peek()
	if c == 0 {
		if s.err != nil {
			return nil, s.line, s.err
		}
		return nil, s.line, errJSONEnd
	}
	line := s.line
	start := s.pos
	i := start
	depth := 0
	inStr := false
	for {
		if i >= len(s.buf) {
			keep := start
			if !s.more(keep) {
				if s.err != nil {
					return nil, line, s.err
				}
				return nil, line, errJSONEnd
			}
			i -= keep
			start = 0
			continue
		}
		b := s.buf[i]
		if inStr {
			// Jump to the next quote or backslash.
			j := bytes.IndexAny(s.buf[i:], "\"\\")
			if j < 0 {
				i = len(s.buf)
				continue
			}
			i += j
			if s.buf[i] == '\\' {
				if i+1 >= len(s.buf) {
					keep := start
					if !s.more(keep) {
						return nil, line, errJSONEnd
					}
					i -= keep
					start = 0
					continue
				}
				i += 2
				continue
			}
			inStr = false
			i++
			if depth == 0 {
				break
			}
			continue
		}
		switch b {
		case '"':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth < 0 {
				return nil, line, fmt.Errorf("unexpected %q", b)
			}
			if depth == 0 {
				i++
				goto done
			}
		case ',', ' ', '\t', '\r', '\n', ':':
			if depth == 0 {
				goto done
			}
		}
		i++
	}
done:
	v := s.buf[start:i]
	s.pos = start
	s.advance(i - start)
	return v, line, nil
}

// key reads an object key and its colon.
func (s *jsonScanner) key() (string, error) {
	v, _, err := s.value()
	if err != nil {
		return "", err
	}
	if len(v) < 2 || v[0] != '"' {
		return "", fmt.Errorf("expected an object key, found %.20q", v)
	}
	if !s.expect(':') {
		return "", errors.New("expected ':' after an object key")
	}
	return string(v[1 : len(v)-1]), nil
}
