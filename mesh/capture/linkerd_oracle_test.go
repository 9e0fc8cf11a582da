package capture

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

type linkerdUnitCases struct {
	CommandSequence []struct {
		ID            string          `json:"id"`
		Function      string          `json:"function"`
		Config        json.RawMessage `json:"config"`
		ExistingRules *string         `json:"existing_rules"`
		WantCommands  [][]string      `json:"want_commands"`
	} `json:"command_sequence_cases"`
	Multiport []struct {
		Input []string   `json:"input"`
		Want  [][]string `json:"want"`
	} `json:"multiport_split_cases"`
	FlagToConfig []struct {
		ID         string          `json:"id"`
		Options    json.RawMessage `json:"options"`
		WantConfig json.RawMessage `json:"want_config"`
		WantError  *string         `json:"want_error"`
	} `json:"flag_to_config_cases"`
}

func TestLinkerdCommandSequences(t *testing.T) {
	var u linkerdUnitCases
	readOracleJSON(t, &u, "linkerd-proxy-init", "derived", "unit_cases.json")
	for _, tc := range u.CommandSequence {
		t.Run(fmt.Sprintf("proxy-init %s runs the upstream argv sequence", tc.ID), func(t *testing.T) {
			var c LinkerdConfig
			if err := json.Unmarshal(tc.Config, &c); err != nil {
				t.Fatal(err)
			}
			var ex LinkerdExisting
			if tc.ExistingRules != nil {
				ex = ParseLinkerdExisting(readOracle(t, "linkerd-proxy-init", "derived", *tc.ExistingRules))
			}
			var got [][]string
			switch tc.Function {
			case "addIncomingTrafficRules":
				got = LinkerdIncomingCommands(c, ex)
			case "addOutgoingTrafficRules":
				got = LinkerdOutgoingCommands(c, ex)
			case "cleanupRules":
				got = LinkerdCleanupCommands(c)
			default:
				t.Fatalf("function %q not modelled", tc.Function)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.WantCommands) {
				t.Errorf("\nwant %q\ngot  %q", tc.WantCommands, got)
			}
		})
	}
}

func TestLinkerdMultiportSplit(t *testing.T) {
	var u linkerdUnitCases
	readOracleJSON(t, &u, "linkerd-proxy-init", "derived", "unit_cases.json")
	for _, tc := range u.Multiport {
		t.Run(fmt.Sprintf("ports %q are grouped into %d multiport rules", tc.Input, len(tc.Want)), func(t *testing.T) {
			got, _ := LinkerdMultiportDestinations(tc.Input)
			if fmt.Sprint(got) != fmt.Sprint(tc.Want) {
				t.Errorf("want %q got %q", tc.Want, got)
			}
		})
	}
}

func TestLinkerdFlagsToConfig(t *testing.T) {
	var u linkerdUnitCases
	readOracleJSON(t, &u, "linkerd-proxy-init", "derived", "unit_cases.json")
	for _, tc := range u.FlagToConfig {
		t.Run(fmt.Sprintf("proxy-init options %s", tc.ID), func(t *testing.T) {
			var raw map[string]any
			if err := json.Unmarshal(tc.Options, &raw); err != nil {
				t.Fatal(err)
			}
			o := NewLinkerdOptions()
			// The transcript lists only the options a case varies; a subnet error can only be reached with
			// valid ports, so absent ports are given a valid value.
			o.IncomingProxyPort, o.OutgoingProxyPort = 1234, 2345
			num := func(k string, dst *int) {
				if v, ok := raw[k].(float64); ok {
					*dst = int(v)
				}
			}
			num("IncomingProxyPort", &o.IncomingProxyPort)
			num("OutgoingProxyPort", &o.OutgoingProxyPort)
			num("ProxyUserID", &o.ProxyUserID)
			num("ProxyGroupID", &o.ProxyGroupID)
			if v, ok := raw["IPv6"].(bool); ok {
				o.IPv6 = v
			}
			if v, ok := raw["IPTablesMode"].(string); ok {
				o.IPTablesMode = strings.Fields(v)[0] // "legacy (default)"
			}
			if l, ok := raw["SubnetsToIgnore"].([]any); ok {
				for _, s := range l {
					o.SubnetsToIgnore = append(o.SubnetsToIgnore, fmt.Sprint(s))
				}
			}
			cfg, err := BuildLinkerdConfig(o)
			if tc.WantError != nil {
				if err == nil || err.Error() != *tc.WantError {
					t.Fatalf("want error %q, got %v", *tc.WantError, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.WantConfig == nil {
				return
			}
			var want map[string]any
			if err := json.Unmarshal(tc.WantConfig, &want); err != nil {
				t.Fatal(err)
			}
			gotMap := map[string]any{
				"Mode":                   map[string]string{LinkerdRedirectAllMode: "RedirectAllMode", LinkerdRedirectListedMode: "RedirectListedMode"}[cfg.Mode],
				"PortsToRedirectInbound": cfg.PortsToRedirectInbound, "InboundPortsToIgnore": cfg.InboundPortsToIgnore,
				"OutboundPortsToIgnore": cfg.OutboundPortsToIgnore, "SubnetsToIgnore": cfg.SubnetsToIgnore,
				"ProxyInboundPort": cfg.ProxyInboundPort, "ProxyOutgoingPort": cfg.ProxyOutgoingPort,
				"ProxyUID": cfg.ProxyUID, "ProxyGID": cfg.ProxyGID, "SimulateOnly": false, "UseWaitFlag": false,
				"BinPath": cfg.BinPath, "SaveBinPath": cfg.SaveBinPath,
			}
			gb, _ := json.Marshal(gotMap)
			var got map[string]any
			_ = json.Unmarshal(gb, &got)
			for k, w := range want {
				if fmt.Sprint(got[k]) != fmt.Sprint(w) {
					t.Errorf("%s: want %v got %v", k, w, got[k])
				}
			}
		})
	}
}

func TestLinkerdRenderMatchesRealIptablesSave(t *testing.T) {
	// existing-rules.iptables-save.txt is a real iptables-save of proxy-init run with inbound ignore
	// port 1234 and outgoing port 1234 (no uid/gid, no redirect mode): our render must print the same rules.
	save := readOracle(t, "linkerd-proxy-init", "derived", "existing-rules.iptables-save.txt")
	c := LinkerdConfig{InboundPortsToIgnore: []string{"1234"}, ProxyOutgoingPort: 1234, ProxyInboundPort: 1}
	var sb strings.Builder
	if err := RenderLinkerdIPTables(&sb, c); err != nil {
		t.Fatal(err)
	}
	var want, got []string
	for _, l := range strings.Split(save, "\n") {
		if strings.HasPrefix(l, "-A ") || strings.HasPrefix(l, ":") || l == "COMMIT" || l == "*nat" {
			want = append(want, l)
		}
	}
	got = strings.Split(strings.TrimSpace(sb.String()), "\n")
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Errorf("%s", lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}
}

// labPod is one pod of the upstream integration lab: its proxy-init config and which container listens where.
type labPod struct {
	cfg       *LinkerdConfig
	listeners map[int]string // port -> "proxy" or "<pod>:<port>"
	svcPorts  map[int]bool
}

func loadLinkerdLab(t *testing.T) map[string]*labPod {
	data := readOracle(t, "linkerd-proxy-init", "proxy-init", "integration", "iptables", "iptablestest-lab.yaml")
	lab := map[string]*labPod{}
	svcs := map[string]map[int]bool{}
	for _, doc := range strings.Split(data, "\n---") {
		var head struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil || head.Kind == "" {
			continue
		}
		switch head.Kind {
		case "Pod":
			var p corev1.Pod
			if err := yaml.Unmarshal([]byte(doc), &p); err != nil {
				t.Fatal(err)
			}
			lp := &labPod{listeners: map[int]string{}}
			for _, c := range p.Spec.Containers {
				port, proxy := 0, false
				for _, e := range c.Env {
					if e.Name == "PORT" {
						port, _ = strconv.Atoi(e.Value)
					}
					proxy = proxy || e.Name == "AM_I_THE_PROXY"
				}
				if proxy {
					lp.listeners[port] = "proxy"
				} else {
					lp.listeners[port] = fmt.Sprintf("%s:%d", p.Name, port)
				}
			}
			for _, c := range p.Spec.InitContainers {
				if c.Name == "linkerd-init" {
					cfg, _, err := LinkerdFromPod(&p, nil, DefaultLinkerdDefaults())
					if err != nil {
						t.Fatalf("%s: %v", p.Name, err)
					}
					lp.cfg = &cfg
				}
			}
			lab[p.Name] = lp
		case "Service":
			var s corev1.Service
			if err := yaml.Unmarshal([]byte(doc), &s); err != nil {
				t.Fatal(err)
			}
			ports := map[int]bool{}
			for _, sp := range s.Spec.Ports {
				ports[int(sp.Port)] = true
			}
			svcs[s.Spec.Selector["app"]] = ports
		}
	}
	for name, p := range lab {
		p.svcPorts = svcs[name]
	}
	return lab
}

func TestLinkerdIntegrationBehaviour(t *testing.T) {
	var cases struct {
		Cases []struct {
			Test, Subtest, Client, Target, Expect string
			Port                                  int
			ExpectDetail                          string `json:"expect_detail"`
		} `json:"cases"`
	}
	readOracleJSON(t, &cases, "linkerd-proxy-init", "derived", "integration_behaviour_cases.json")
	lab := loadLinkerdLab(t)
	client := netip.MustParseAddr("10.244.0.99") // the external test pod; any pod IP
	for _, tc := range cases.Cases {
		t.Run(fmt.Sprintf("%s %s port %d gives %s", tc.Test, tc.Subtest, tc.Port, tc.Expect), func(t *testing.T) {
			name, viaSvc := strings.CutPrefix(tc.Target, "svc-")
			name = strings.TrimSuffix(name, " (pod IP)")
			p := lab[name]
			if p == nil {
				t.Fatalf("target %q not in the lab manifest", tc.Target)
			}
			got, answer := "success", ""
			if viaSvc && !p.svcPorts[tc.Port] {
				got = "connect-fail" // the Service has no such port: nothing DNATs the ClusterIP
			} else {
				port := tc.Port
				if p.cfg != nil {
					port = LinkerdInbound(*p.cfg, client, tc.Port).Port
				}
				var ok bool
				if answer, ok = p.listeners[port]; !ok {
					got = "connect-fail"
				}
			}
			if got != tc.Expect {
				t.Fatalf("want %s, predicted %s", tc.Expect, got)
			}
			if strings.Contains(tc.ExpectDetail, "not the proxy") && (answer == "proxy" || !strings.Contains(answer, strconv.Itoa(tc.Port))) {
				t.Errorf("want the container to answer (%s), predicted %q", tc.ExpectDetail, answer)
			}
		})
	}
}
