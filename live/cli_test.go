package live_test

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestNoClusterGiven(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("KUBECONFIG", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no -f, no --demo and no kubeconfig suggests --demo", []string{"inspect"}, 2, "kpath inspect --demo"},
		{"a trace without any cluster is a usage error too", []string{"trace", "a/b", "c:80"}, 2, "--kubeconfig FILE"},
		{"a kubeconfig that does not exist is named", []string{"inspect", "--kubeconfig", filepath.Join(home, "nope")}, 1, filepath.Join(home, "nope")},
		{"snapshot needs -o", []string{"snapshot"}, 2, "snapshot needs -o FILE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := run(t, c.args...)
			if code != c.code || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, c.code, c.want)
			}
		})
	}
}
