package dns

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kpath/kpath/internal/oracle"
)

// oraclesDir finds <repo root>/../shared/oracles (or $KPATH_ORACLES) and skips the test when it is absent.
func oraclesDir(t testing.TB) string { t.Helper(); return oracle.Dir(t) }

func readOracleJSON(t testing.TB, rel string, v any) {
	t.Helper()
	p := filepath.Join(oraclesDir(t), rel)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Skipf("oracle file %s not readable: %v", p, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", p, err)
	}
}

// goValue evaluates the {"$call": ...} markers of the oracle extraction (strings.Repeat, fmt.Sprintf,
// strings.Join, append) into plain JSON values.
func goValue(t testing.TB, v any) any {
	t.Helper()
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = goValue(t, e)
		}
		return out
	case map[string]any:
		call, ok := x["$call"].(string)
		if !ok {
			out := map[string]any{}
			for k, e := range x {
				out[k] = goValue(t, e)
			}
			return out
		}
		args, _ := goValue(t, x["args"]).([]any)
		switch call {
		case "strings.Repeat":
			return strings.Repeat(args[0].(string), int(args[1].(float64)))
		case "fmt.Sprintf":
			return fmt.Sprintf(args[0].(string), args[1:]...)
		case "strings.Join":
			return strings.Join(toStrings(t, args[0]), args[1].(string))
		case "append":
			return append(args[0].([]any), args[1:]...)
		}
		t.Fatalf("oracle value uses unsupported call %q", call)
	}
	return v
}

func toStrings(t testing.TB, v any) []string {
	t.Helper()
	v = goValue(t, v)
	if v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		t.Fatalf("want a list of strings, got %T %v", v, v)
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			t.Fatalf("want a string, got %T %v", e, e)
		}
		out = append(out, s)
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameSet(a, b []string) bool {
	a, b = append([]string(nil), a...), append([]string(nil), b...)
	sort.Strings(a)
	sort.Strings(b)
	return sameStrings(a, b)
}
