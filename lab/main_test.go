package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// testStateDir keeps the state files of the labs tests build in a fixed place, so that a test binary killed mid-run
// (timeout, kill -9) leaves a record: the next run tears those labs down from their state files — only what a test
// lab recorded, never by name pattern.
var testStateDir = filepath.Join(os.TempDir(), "kpath-lab-tests")

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 {
		os.Setenv("KPATH_LAB_DIR", testStateDir)
		for _, name := range ListStates() {
			st, err := LoadState(name)
			if err != nil {
				continue
			}
			fmt.Fprintf(os.Stderr, "lab tests: tearing down lab %q left by an interrupted run (from its state file)\n", name)
			if err := Down(context.Background(), st); err != nil {
				fmt.Fprintf(os.Stderr, "lab tests: %v\n", err)
			}
		}
	}
	os.Exit(m.Run())
}
