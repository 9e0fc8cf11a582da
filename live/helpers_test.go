package live_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kpath/kpath/internal/cli"
)

// demoQuestions are the journeys the demo manifests advertise (their "Try:" comments): every verdict kpath has.
var demoQuestions = []struct {
	name, from, to string
	args           []string
}{
	{"netshoot reaches the API server through the kubernetes Service", "tools/netshoot", "kubernetes.default:443", nil},
	{"netshoot asks kube-dns over UDP", "tools/netshoot", "kube-dns.kube-system:53", []string{"--proto", "udp"}},
	{"frontend reaches cart through a named targetPort", "shop/frontend", "cart.shop:8080", nil},
	{"checkout is rejected by payments without ready endpoints", "shop/checkout", "payments.shop:443", nil},
	{"an external client is dropped at a NodePort", "external:203.0.113.7", "node/kpath-worker2:30080", nil},
	{"frontend reaches catalog with PreferClose", "shop/frontend", "catalog.shop:80", nil},
	{"checkout is dropped by default-deny-ingress at cart", "shop/checkout", "cart.shop:8080", nil},
	{"netshoot is dropped at the database", "tools/netshoot", "db-0.db.shop:5432", nil},
	{"netshoot reaches frontend which allows anyone", "tools/netshoot", "frontend.shop:80", nil},
	{"netshoot resolves payments-api to an external CNAME", "tools/netshoot", "payments-api.shop:443", nil},
}

// run calls the kpath CLI in-process.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// journeyShape is what must agree between two journeys over equivalent clusters.
type journeyShape struct {
	Verdict string
	Steps   []string // layer/action per step, hop by hop
	Backend string
}

// decisions keeps what does not depend on which backend was picked: the verdict, and the DNS, Service, policy and
// application steps (routing steps depend on whether the chosen backend shares the source's node).
func (s journeyShape) decisions() journeyShape {
	out := journeyShape{Verdict: s.Verdict}
	for _, st := range s.Steps {
		switch strings.SplitN(st, "/", 2)[0] {
		case "route", "link", "overlay", "socket":
			continue
		}
		out.Steps = append(out.Steps, st)
	}
	if s.Backend != "" {
		out.Backend = "some backend"
	}
	return out
}

type journeyJSON struct {
	Verdict string `json:"verdict"`
	Hops    []struct {
		Steps []struct {
			Layer  string `json:"layer"`
			Action string `json:"action"`
		} `json:"steps"`
	} `json:"hops"`
	Backend *struct {
		Pod string `json:"pod"`
	} `json:"backend"`
}

func shapeOf(t *testing.T, out string) journeyShape {
	t.Helper()
	var j journeyJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatalf("trace output is not a journey: %v\n%s", err, out)
	}
	s := journeyShape{Verdict: j.Verdict}
	for _, h := range j.Hops {
		for _, st := range h.Steps {
			s.Steps = append(s.Steps, st.Layer+"/"+st.Action)
		}
	}
	if j.Backend != nil {
		s.Backend = j.Backend.Pod
	}
	return s
}
