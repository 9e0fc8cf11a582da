package lab

import (
	"net/netip"
	"testing"

	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

func TestMeshSigReadsTheModelsRuleTextAndTheKernelsTheSameWay(t *testing.T) {
	for _, c := range []struct {
		name string
		step trace.Step
		want string
	}{
		{"a predicted redirect names its chain and the iptables --to-ports",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionRedirect, Object: "Pod a/b (linkerd-init rules)",
				Rule: `nat PROXY_INIT_OUTPUT: -A PROXY_INIT_OUTPUT -p tcp -m comment --comment "proxy-init/redirect-all-outgoing-to-proxy-port" -j REDIRECT --to-ports 4140  [line 13]`},
			"redirect PROXY_INIT_OUTPUT → :4140"},
		{"an observed redirect names its chain and the nft redirect port",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionRedirect, Object: "Pod a/b (linkerd-init rules)",
				Rule: "nat PROXY_INIT_OUTPUT: meta l4proto tcp counter packets 0 bytes 0 redirect to :4140"},
			"redirect PROXY_INIT_OUTPUT → :4140"},
		{"a predicted owner exemption is marked as one",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: "Pod a/b (istio-init rules)",
				Rule: "nat ISTIO_OUTPUT: -A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN  [line 18]"},
			"pass ISTIO_OUTPUT (owner exemption)"},
		{"an observed owner exemption (nft skuid) is marked as one",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: "Pod a/b (istio-init rules)",
				Rule: "nat ISTIO_OUTPUT: skuid 1337 counter packets 0 bytes 0 return"},
			"pass ISTIO_OUTPUT (owner exemption)"},
		{"a negated owner match is not an exemption of the proxy",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: "Pod a/b (istio-init rules)",
				Rule: "nat ISTIO_OUTPUT: oifname \"lo\" skuid != 1337 counter packets 0 bytes 0 return"},
			"pass ISTIO_OUTPUT"},
		{"a skip-port return names the chain only",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionPass, Object: "Pod a/b (linkerd-init rules)",
				Rule: `nat PROXY_INIT_REDIRECT: -A PROXY_INIT_REDIRECT -p tcp -m multiport --dports 4190,4191,4567,4568 -j RETURN  [line 14]`},
			"pass PROXY_INIT_REDIRECT"},
		{"identities are compared whole",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionEncrypt, Rule: "mTLS client a → server b"}, "encrypt mTLS client a → server b"},
		{"an authorization decision is its object",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionReject, Object: "Server ns/s", Rule: "spec.accessPolicy deny"}, "reject Server ns/s"},
		{"the client proxy's endpoint choice is not compared here (the backend is)",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionForward, Rule: "connect 10.0.0.1:80 from 10.0.0.2:4000"}, ""},
		{"the server proxy's hop to the application is compared",
			trace.Step{Layer: trace.LayerMesh, Action: trace.ActionForward, Rule: "connect 127.0.0.1:8080"}, "forward connect 127.0.0.1:8080"},
		{"steps outside the mesh layer are not mesh evidence",
			trace.Step{Layer: trace.LayerRoute, Action: trace.ActionRoute, Object: "x"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := meshSig(c.step); got != c.want {
				t.Errorf("meshSig = %q, want %q", got, c.want)
			}
		})
	}
}

func TestParseHTTPHeadRecognisesRequestLinesOnly(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want *packet.L7
	}{
		{"a GET with a Host header and port", "GET /api/items HTTP/1.1\r\nHost: api.linkerd-shop:8080\r\nUser-Agent: x\r\n\r\n",
			&packet.L7{Scheme: "http", Method: "GET", Path: "/api/items", Host: "api.linkerd-shop"}},
		{"a request line alone", "POST /x HTTP/1.0\r\n", &packet.L7{Scheme: "http", Method: "POST", Path: "/x"}},
		{"the lab's TCP probe is not HTTP", "kpath\n", nil},
		{"a TLS record is not HTTP", "\x16\x03\x01\x02\x00", nil},
		{"HTTP/2 preface is not HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := parseHTTPHead([]byte(c.in))
			if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
				t.Errorf("parseHTTPHead(%q) = %+v, want %+v", c.in, got, c.want)
			}
		})
	}
}

func TestCaptureDiffsComparesTheUnderlaysOuterHeaderWithThePredictedEncapsulation(t *testing.T) {
	ap := netip.MustParseAddrPort
	enc := func(src string) packet.Encap {
		return packet.Encap{Type: "vxlan", Src: ap(src), Dst: ap("172.18.0.5:8472"), VNI: 1}
	}
	pred := &trace.Journey{Hops: []trace.Hop{{Location: trace.Location{Kind: trace.OnNode, Name: "n1"}, Steps: []trace.Step{
		{Layer: trace.LayerOverlay, Action: trace.ActionEncapsulate, After: &packet.Packet{Encap: []packet.Encap{enc("172.18.0.3:0")}}}}}}}
	obs := func(e packet.Encap) *trace.Journey {
		return &trace.Journey{Hops: []trace.Hop{
			{Location: trace.Location{Kind: trace.OnNode, Name: "n1"}, Steps: []trace.Step{{Object: "capture in node n1", After: &packet.Packet{Encap: []packet.Encap{e}}}}},
			{Location: trace.Location{Kind: trace.OnUnderlay, Name: "u"}, Steps: []trace.Step{{Object: "capture in underlay", After: &packet.Packet{Encap: []packet.Encap{e}}}}}}}
	}
	if d := captureDiffs(pred, obs(enc("172.18.0.3:47481"))); len(d) != 0 {
		t.Errorf("the same outer header with the kernel's source port differs: %+v", d)
	}
	if d := captureDiffs(pred, obs(enc("172.18.0.4:47481"))); len(d) != 1 {
		t.Errorf("another outer source address is not reported: %+v", d)
	}
	if d := captureDiffs(pred, &trace.Journey{}); len(d) != 0 {
		t.Errorf("a journey without captures is compared: %+v", d)
	}
}
