package live_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/live"
)

func demoObjects(t *testing.T) []live.Object {
	t.Helper()
	var srcs []cluster.Source
	for _, f := range demo.Files() {
		srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
	}
	objs, err := live.ReadObjects(srcs)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func redactedDemo(t *testing.T, key string) ([]byte, *live.Redactor) {
	t.Helper()
	objs := demoObjects(t)
	r := live.NewRedactor(key)
	r.Redact(objs)
	var buf bytes.Buffer
	if err := live.WriteSnapshot(&buf, objs, live.FormatYAML, false, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), r
}

func TestRedactionIsConsistent(t *testing.T) {
	a, _ := redactedDemo(t, "")
	b, _ := redactedDemo(t, "")
	c, _ := redactedDemo(t, "another key")
	if !bytes.Equal(a, b) {
		t.Error("redacting the same input twice with the same key gave different output")
	}
	if bytes.Equal(a, c) {
		t.Error("a different key gave the same pseudonyms")
	}
	// Nothing the user named, and no pod, node or Service address, survives.
	for _, leak := range []string{"frontend", "checkout", "payments", "catalog", "netshoot", "adminer", "kpath-worker",
		"namespace: shop", "10.244.2.17", "10.96.45.12", "172.18.0.4"} {
		if bytes.Contains(a, []byte(leak)) {
			t.Errorf("redacted demo still contains %q", leak)
		}
	}
	// System objects kpath detects the dataplane from keep their names.
	for _, kept := range []string{"name: kube-proxy", "name: coredns", "namespace: kube-system"} {
		if !bytes.Contains(a, []byte(kept)) {
			t.Errorf("redacted demo lost %q", kept)
		}
	}
}

func TestRedactionPreservesPrefixes(t *testing.T) {
	r := live.NewRedactor("")
	cases := []struct {
		name   string
		prefix string
		addrs  []string
	}{
		{"pod IPs stay in their node's pod CIDR", "10.244.2.0/24", []string{"10.244.2.17", "10.244.2.2", "10.244.2.254"}},
		{"Service IPs stay in the Service CIDR", "10.96.0.0/12", []string{"10.96.0.1", "10.96.45.12", "10.111.0.9"}},
		{"node IPs stay on their network", "172.18.0.0/16", []string{"172.18.0.2", "172.18.0.5"}},
		{"IPv6 pod IPs stay in their prefix", "fd00:10:244:1::/64", []string{"fd00:10:244:1::5", "fd00:10:244:1::abcd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := r.Prefix(netip.MustParsePrefix(c.prefix))
			if p.String() == c.prefix {
				t.Errorf("%s was not redacted", c.prefix)
			}
			for _, a := range c.addrs {
				ra := r.IP(netip.MustParseAddr(a))
				if !p.Contains(ra) {
					t.Errorf("%s → %s is not in %s → %s", a, ra, c.prefix, p)
				}
				if ra == r.IP(netip.MustParseAddr(a)) && ra.String() == a {
					t.Errorf("%s was not redacted", a)
				}
			}
		})
	}
	for _, keep := range []string{"127.0.0.1", "169.254.20.10", "0.0.0.0", "::1"} {
		if got := r.IP(netip.MustParseAddr(keep)).String(); got != keep {
			t.Errorf("special address %s became %s", keep, got)
		}
	}
	if got := r.IP(netip.MustParseAddr("10.1.2.3")); !netip.MustParsePrefix("10.0.0.0/8").Contains(got) {
		t.Errorf("private 10.1.2.3 left 10/8: %s", got)
	}
}

// translate maps a question about the demo into the redacted demo.
func translate(r *live.Redactor, q string) string {
	parts := strings.FieldsFunc(q, func(c rune) bool { return c == '/' || c == ':' })
	for _, p := range parts {
		q = strings.Replace(q, p, r.Name(p), 1)
	}
	return q
}

func TestRedactedDemoKeepsItsJourneys(t *testing.T) {
	data, r := redactedDemo(t, "")
	file := filepath.Join(t.TempDir(), "redacted.yaml")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, q := range demoQuestions {
		t.Run(q.name, func(t *testing.T) {
			orig, _, code1 := run(t, append([]string{"trace", "--demo", q.from, q.to, "-o", "json"}, q.args...)...)
			from, to := translate(r, q.from), translate(r, q.to)
			red, stderr, code2 := run(t, append([]string{"trace", "-f", file, from, to, "-o", "json"}, q.args...)...)
			if code1 != code2 {
				t.Fatalf("exit %d on the demo, %d redacted (%s → %s): %s", code1, code2, from, to, stderr)
			}
			// Offline, pods are synthesized from their owners' names, so pod names and the backend picked (and
			// with it the route) change with the pseudonyms; the decisions must not.
			a, b := shapeOf(t, orig).decisions(), shapeOf(t, red).decisions()
			if !reflect.DeepEqual(a, b) {
				t.Errorf("journey changed by redaction (%s → %s):\n demo:     %+v\n redacted: %+v", from, to, a, b)
			}
		})
	}
}
