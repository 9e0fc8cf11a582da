package kubeproxy

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// newTestNetns creates a fresh, uniquely named network namespace and deletes it when the test
// ends. It skips unless running as root with `ip` available. Nothing touches the root namespace.
func newTestNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("real-kernel test: needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("real-kernel test: iproute2 `ip` not installed")
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	name := "kpathtest-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("cannot create network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", name, err, out)
		}
	})
	return name
}

func runInNetns(t *testing.T, ns string, input string, tool string, args ...string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("real-kernel test: %s not installed", tool)
	}
	f := filepath.Join(t.TempDir(), "rules")
	if err := os.WriteFile(f, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, tool}, append(args, f)...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s rejected the rendered rules: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
}

// Every oracle input, rendered in both modes, must be accepted by the real tools.
func TestRenderedRulesAreAcceptedByTheKernelTools(t *testing.T) {
	dir := oracleDir(t)
	ns := newTestNetns(t)
	for _, mode := range []Mode{ModeNFTables, ModeIPTables} {
		for _, rec := range append(loadCases(t, dir, "nftables"), loadCases(t, dir, "iptables")...) {
			if rec.Files["input"] == "" {
				continue
			}
			t.Run(string(mode)+"/"+rec.Mode+"/"+rec.ID, func(t *testing.T) {
				cfg, svcs, slices := loadInput(t, filepath.Join(dir, "derived", rec.Files["input"]), rec, mode)
				idx, err := NewIndex(cfg, svcs, slices)
				if err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				if mode == ModeNFTables {
					if err := idx.RenderNFTables(&b); err != nil {
						t.Fatal(err)
					}
					runInNetns(t, ns, b.String(), "nft", "-c", "-f")
					return
				}
				if err := idx.RenderIPTables(&b); err != nil {
					t.Fatal(err)
				}
				tool := "iptables-restore"
				if idx.cfg.isV6() {
					tool = "ip6tables-restore"
				}
				runInNetns(t, ns, b.String(), tool, "--test")
			})
		}
	}
}

func TestSyntheticRulesetsAreAcceptedByTheKernelTools(t *testing.T) {
	ns := newTestNetns(t)
	svcs, slices := synthCluster(200, 5)
	for _, mode := range []Mode{ModeNFTables, ModeIPTables} {
		t.Run(string(mode), func(t *testing.T) {
			idx, err := NewIndex(synthConfig(mode), svcs, slices)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if mode == ModeNFTables {
				if err := idx.RenderNFTables(&b); err != nil {
					t.Fatal(err)
				}
				runInNetns(t, ns, b.String(), "nft", "-c", "-f")
				return
			}
			if err := idx.RenderIPTables(&b); err != nil {
				t.Fatal(err)
			}
			runInNetns(t, ns, b.String(), "iptables-restore", "--test")
		})
	}
}
