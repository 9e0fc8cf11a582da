package netfilter

import (
	"os"
	"path/filepath"
	"testing"
)

// regenFixtures loads testdata/fixture.nft into a fresh network namespace and stores what nft prints back.
func regenFixtures(t *testing.T) {
	requireKernel(t)
	l := newKernelLab(t, []string{"192.168.0.2"})
	src := filepath.Join("testdata", "fixture.nft")
	run(t, "ip", "netns", "exec", l.node, "nft", "-f", src)
	list := run(t, "ip", "netns", "exec", l.node, "nft", "-a", "list", "ruleset")
	js := run(t, "ip", "netns", "exec", l.node, "nft", "-j", "list", "ruleset")
	if err := os.WriteFile(filepath.Join("testdata", "fixture.list.nft"), []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "fixture.json"), []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
}
