// Package oracle finds the external test data (../shared/oracles) that tests convert into cases, and skips tests
// cleanly where it is absent so the suite still passes on a user's machine.
package oracle

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the oracles directory joined with parts: $KPATH_ORACLES when set, else <repo root>/../shared/oracles.
// When the directory does not exist the test is skipped with a message saying how to provide it.
func Dir(t testing.TB, parts ...string) string {
	t.Helper()
	root := os.Getenv("KPATH_ORACLES")
	if root == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Skipf("oracles: %v", err)
		}
		for d := wd; ; d = filepath.Dir(d) {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				root = filepath.Join(d, "..", "shared", "oracles")
				break
			}
			if filepath.Dir(d) == d {
				t.Skip("oracles: repository root (go.mod) not found; set KPATH_ORACLES to the oracles directory")
			}
		}
	}
	p := filepath.Join(append([]string{root}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("oracle data not found at %s (set KPATH_ORACLES to the oracles directory): %v", p, err)
	}
	return p
}
