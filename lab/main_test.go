package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
			if !claimed(name) || ownerAlive(name) {
				continue // not built by a test, or its test process is still running
			}
			st, err := LoadState(name)
			if err != nil {
				continue
			}
			fmt.Fprintf(os.Stderr, "lab tests: tearing down lab %q left by an interrupted run (from its state file)\n", name)
			if err := Down(context.Background(), st); err != nil {
				fmt.Fprintf(os.Stderr, "lab tests: %v\n", err)
			}
			os.Remove(ownerFile(name))
		}
	}
	os.Exit(m.Run())
}

func ownerFile(name string) string { return filepath.Join(testStateDir, "lab-"+name+".owner") }

// claimTestLab records this test process as the owner of a lab about to be built, so that a concurrent test run does
// not tear it down as a leftover.
func claimTestLab(t testing.TB, name string) {
	t.Helper()
	os.MkdirAll(testStateDir, 0o755)
	if err := os.WriteFile(ownerFile(name), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(ownerFile(name)) })
}

// ownerAlive reports whether the test process that built a lab is still running.
func ownerAlive(name string) bool {
	b, err := os.ReadFile(ownerFile(name))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return syscall.Kill(pid, 0) == nil
}

// claimed reports whether a test recorded itself as the lab's owner.
func claimed(name string) bool {
	_, err := os.Stat(ownerFile(name))
	return err == nil
}
