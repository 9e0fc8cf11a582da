package capture

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpath/kpath/internal/oracle"
)

// oraclesDir returns <repo root>/../shared/oracles (or $KPATH_ORACLES), skipping the test when absent.
func oraclesDir(t *testing.T) string { t.Helper(); return oracle.Dir(t) }

func readOracle(t *testing.T, parts ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(append([]string{oraclesDir(t)}, parts...)...))
	if err != nil {
		t.Fatalf("reading oracle file: %v", err)
	}
	return string(b)
}

func readOracleJSON(t *testing.T, v any, parts ...string) {
	t.Helper()
	if err := json.Unmarshal([]byte(readOracle(t, parts...)), v); err != nil {
		t.Fatalf("decoding %s: %v", filepath.Join(parts...), err)
	}
}

// lineDiff returns a short first-difference report between two texts.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "first difference at line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl
		}
	}
	return ""
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}
