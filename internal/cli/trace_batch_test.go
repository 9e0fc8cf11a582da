package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestTraceBatchFlags(t *testing.T) {
	questions := filepath.Join("..", "..", "trace", "testdata", "batch-questions.jsonl")
	two := `{"from": "shop/checkout", "to": "cart.shop:8080"}` + "\n" + `{"from": "tools/netshoot", "to": "kube-dns.kube-system:53", "proto": "udp"}` + "\n"
	cases := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		lines    int    // output lines
		contains string // in stdout, or stderr when code != 0 and lines == 0
	}{
		{"a batch from stdin answers every line with exit 0", []string{"trace", "--demo", "--batch", "-"}, two, ExitOK, 2, `"verdict":"dropped"`},
		{"--full writes whole journeys", []string{"trace", "--demo", "--batch", "-", "--full"}, two, ExitOK, 2, `"schema":"kpath.dev/journey/v1"`},
		{"a file with bad lines is answered in full but exits 2", []string{"trace", "--demo", "--batch", questions}, "", ExitUsage, 12, `"error":"line 7: `},
		{"FROM TO arguments are refused with --batch", []string{"trace", "--demo", "--batch", "-", "a", "b"}, "", ExitUsage, 0, "give no FROM TO arguments"},
		{"without --batch FROM and TO are required", []string{"trace", "--demo", "tools/netshoot"}, "", ExitUsage, 0, "needs FROM and TO"},
		{"--full without --batch is a usage error", []string{"trace", "--demo", "--full", "tools/netshoot", "cart.shop:8080"}, "", ExitUsage, 0, "--full applies to --batch only"},
		{"-o yaml is refused with --batch", []string{"trace", "--demo", "--batch", "-", "-o", "yaml"}, two, ExitUsage, 0, "-o yaml is not supported"},
		{"a missing batch file is a usage error", []string{"trace", "--demo", "--batch", "no-such-file.jsonl"}, "", ExitUsage, 0, "no-such-file.jsonl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o, e bytes.Buffer
			code := Main(tc.args, strings.NewReader(tc.stdin), &o, &e)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, o.String(), e.String())
			}
			out := strings.TrimSpace(o.String())
			n := 0
			if out != "" {
				n = len(strings.Split(out, "\n"))
			}
			if n != tc.lines {
				t.Errorf("%d output lines, want %d:\n%s", n, tc.lines, out)
			}
			where := o.String()
			if tc.lines == 0 {
				where = e.String()
			}
			if !strings.Contains(where, tc.contains) {
				t.Errorf("output does not contain %q:\nstdout: %s\nstderr: %s", tc.contains, o.String(), e.String())
			}
		})
	}
}
