package live

import (
	"encoding/json"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pageInfo is what the lister needs from one raw list response: where to continue and how many items it held.
// Reading it must not cost a decode of the items (the loader does that once), so the page is scanned bytewise.
type pageInfo struct {
	meta  metav1.ListMeta
	items int
}

// scanPage reads the top level of a JSON list response: it decodes only "metadata" and counts the elements of
// "items", skipping everything else at memory speed.
func scanPage(b []byte) (pageInfo, error) {
	var pi pageInfo
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return pi, errors.New("list response is not a JSON object")
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return pi, nil
		}
		if i >= len(b) || b[i] != '"' {
			return pi, fmt.Errorf("list response: expected a key at byte %d", i)
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return pi, err
		}
		key := string(b[i+1 : kEnd-1])
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return pi, fmt.Errorf("list response: expected ':' at byte %d", i)
		}
		i = skipSpace(b, i+1)
		switch {
		case key == "items" && i < len(b) && b[i] == '[':
			n, end, err := countArray(b, i)
			if err != nil {
				return pi, err
			}
			pi.items, i = n, end
		default:
			end, err := skipValue(b, i)
			if err != nil {
				return pi, err
			}
			if key == "metadata" {
				if err := json.Unmarshal(b[i:end], &pi.meta); err != nil {
					return pi, fmt.Errorf("list response metadata: %w", err)
				}
			}
			i = end
		}
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return pi, nil
		}
		return pi, fmt.Errorf("list response: expected ',' or '}' at byte %d", i)
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errors.New("list response: unterminated string")
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("list response: truncated")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("list response: truncated")
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\n' {
			j++
		}
		return j, nil
	}
}

// countArray counts the elements of the array starting at b[i] == '[' and returns the index past it.
func countArray(b []byte, i int) (int, int, error) {
	n := 0
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		return 0, i + 1, nil
	}
	for {
		end, err := skipValue(b, i)
		if err != nil {
			return 0, 0, err
		}
		n++
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipSpace(b, i+1)
			continue
		}
		if i < len(b) && b[i] == ']' {
			return n, i + 1, nil
		}
		return 0, 0, fmt.Errorf("list response: expected ',' or ']' at byte %d", i)
	}
}
