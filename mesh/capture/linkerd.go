package capture

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
)

// Linkerd proxy-init constants (linkerd2-proxy-init pkg/iptables, linkerd2 chart values).
const (
	LinkerdRedirectAllMode    = "redirect-all"
	LinkerdRedirectListedMode = "redirect-listed"
	ChainLinkerdRedirect      = "PROXY_INIT_REDIRECT" // nat, jumped to from PREROUTING
	ChainLinkerdOutput        = "PROXY_INIT_OUTPUT"   // nat, jumped to from OUTPUT
	LinkerdMultiportLimit     = 15                    // iptables multiport: at most 15 ports per rule, a range counts 2

	LinkerdInboundPort  = 4143 // proxy inbound listener (--incoming-proxy-port)
	LinkerdOutboundPort = 4140 // proxy outbound listener (--outgoing-proxy-port)
	LinkerdAdminPort    = 4191
	LinkerdControlPort  = 4190
	LinkerdProxyUID     = 2102
)

// LinkerdConfig is proxy-init's FirewallConfiguration.
type LinkerdConfig struct {
	Mode                   string   // redirect-all or redirect-listed
	PortsToRedirectInbound []int    // -r, only in redirect-listed mode
	InboundPortsToIgnore   []string // --inbound-ports-to-ignore: ports or ranges "a-b"
	OutboundPortsToIgnore  []string // --outbound-ports-to-ignore
	SubnetsToIgnore        []string // --subnets-to-ignore (inbound sources)
	ProxyInboundPort       int
	ProxyOutgoingPort      int
	ProxyUID               int // traffic from this uid is not redirected (avoids loops); <=0: no rule
	ProxyGID               int // same for the gid; <=0: no rule
	IPv6                   bool
	BinPath                string // iptables-legacy or iptables-nft (ip6tables-* with IPv6)
	SaveBinPath            string
	// InstalledBy is "linkerd-init" (init container) or "linkerd-cni" (CNI plugin, same rules).
	InstalledBy string
}

// Mesh implements Config.
func (LinkerdConfig) Mesh() Mesh { return MeshLinkerd }

// LinkerdOptions are proxy-init's command-line options (-1 = not given).
type LinkerdOptions struct {
	IncomingProxyPort     int
	OutgoingProxyPort     int
	ProxyUserID           int
	ProxyGroupID          int
	PortsToRedirect       []int
	InboundPortsToIgnore  []string
	OutboundPortsToIgnore []string
	SubnetsToIgnore       []string
	IPv6                  bool
	IPTablesMode          string // "legacy" (default) or "nft"
}

// NewLinkerdOptions returns proxy-init's option defaults.
func NewLinkerdOptions() LinkerdOptions {
	return LinkerdOptions{IncomingProxyPort: -1, OutgoingProxyPort: -1, ProxyUserID: -1, ProxyGroupID: -1, IPTablesMode: "legacy"}
}

func validPort(p int) bool { return p > 0 && p <= 65535 }

// BuildLinkerdConfig validates options like proxy-init's BuildFirewallConfiguration; the error texts are
// proxy-init's.
func BuildLinkerdConfig(o LinkerdOptions) (LinkerdConfig, error) {
	if !validPort(o.IncomingProxyPort) {
		return LinkerdConfig{}, fmt.Errorf("--incoming-proxy-port must be a valid TCP port number")
	}
	if !validPort(o.OutgoingProxyPort) {
		return LinkerdConfig{}, fmt.Errorf("--outgoing-proxy-port must be a valid TCP port number")
	}
	subnets := []string{}
	for _, s := range o.SubnetsToIgnore {
		s = strings.TrimSpace(s)
		if _, _, err := net.ParseCIDR(s); err != nil {
			return LinkerdConfig{}, fmt.Errorf("%s is not a valid CIDR address", s)
		}
		subnets = append(subnets, s)
	}
	mode := o.IPTablesMode
	if mode == "" {
		mode = "legacy"
	}
	if mode != "legacy" && mode != "nft" {
		return LinkerdConfig{}, fmt.Errorf("--iptables-mode must be one of: legacy, nft (got %q)", mode)
	}
	bin := "iptables"
	if o.IPv6 {
		bin = "ip6tables"
	}
	c := LinkerdConfig{
		Mode:                   LinkerdRedirectAllMode,
		PortsToRedirectInbound: nonNilInts(o.PortsToRedirect),
		InboundPortsToIgnore:   nonNilStrings(o.InboundPortsToIgnore),
		OutboundPortsToIgnore:  nonNilStrings(o.OutboundPortsToIgnore),
		SubnetsToIgnore:        subnets,
		ProxyInboundPort:       o.IncomingProxyPort,
		ProxyOutgoingPort:      o.OutgoingProxyPort,
		ProxyUID:               o.ProxyUserID,
		ProxyGID:               o.ProxyGroupID,
		IPv6:                   o.IPv6,
		BinPath:                bin + "-" + mode,
		SaveBinPath:            bin + "-" + mode + "-save",
		InstalledBy:            "linkerd-init",
	}
	if len(o.PortsToRedirect) > 0 {
		c.Mode = LinkerdRedirectListedMode
	}
	return c, nil
}

func nonNilInts(v []int) []int {
	if v == nil {
		return []int{}
	}
	return v
}

func nonNilStrings(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// ParseLinkerdArgs parses a linkerd-init container's args into options (the flags kpath models; others,
// like --log-level, are ignored and reported).
func ParseLinkerdArgs(args []string) (LinkerdOptions, []Evidence, error) {
	o := NewLinkerdOptions()
	var ev []Evidence
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		next := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("linkerd-init args: flag %s needs a value", name)
			}
			i++
			return args[i], nil
		}
		atoi := func() (int, error) {
			s, err := next()
			if err != nil {
				return 0, err
			}
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return 0, fmt.Errorf("linkerd-init args: %s %q is not a number", name, s)
			}
			return n, nil
		}
		list := func() ([]string, error) {
			s, err := next()
			if err != nil {
				return nil, err
			}
			return strings.Split(s, ","), nil
		}
		var err error
		switch name {
		case "-p", "--incoming-proxy-port":
			o.IncomingProxyPort, err = atoi()
		case "-o", "--outgoing-proxy-port":
			o.OutgoingProxyPort, err = atoi()
		case "-u", "--proxy-uid":
			o.ProxyUserID, err = atoi()
		case "-g", "--proxy-gid":
			o.ProxyGroupID, err = atoi()
		case "-r", "--ports-to-redirect":
			var l []string
			if l, err = list(); err == nil {
				for _, s := range l {
					n, e := strconv.Atoi(strings.TrimSpace(s))
					if e != nil {
						return o, ev, fmt.Errorf("linkerd-init args: --ports-to-redirect %q is not a number", s)
					}
					o.PortsToRedirect = append(o.PortsToRedirect, n)
				}
			}
		case "--inbound-ports-to-ignore":
			var l []string
			l, err = list()
			o.InboundPortsToIgnore = append(o.InboundPortsToIgnore, l...)
		case "--outbound-ports-to-ignore":
			var l []string
			l, err = list()
			o.OutboundPortsToIgnore = append(o.OutboundPortsToIgnore, l...)
		case "--subnets-to-ignore":
			var l []string
			l, err = list()
			o.SubnetsToIgnore = append(o.SubnetsToIgnore, l...)
		case "--ipv6":
			if !hasVal {
				o.IPv6 = true
			} else {
				o.IPv6, err = strconv.ParseBool(val)
			}
		case "--iptables-mode":
			o.IPTablesMode, err = next()
		case "--firewall-bin-path", "--firewall-save-bin-path", "--log-level", "--log-format", "--netns", "--timeout-close-wait-secs":
			v, e := next()
			err = e
			ev = append(ev, Evidence{Setting: name, Value: v, Source: SourceContainer, Why: "does not change the rules"})
		case "--simulate", "-w", "--use-wait-flag":
			ev = append(ev, Evidence{Setting: name, Value: "true", Source: SourceContainer, Why: "does not change the rules"})
		default:
			ev = append(ev, Evidence{Setting: name, Value: a, Source: SourceContainer, Warning: true, Why: "unknown proxy-init flag, ignored"})
		}
		if err != nil {
			return o, ev, err
		}
	}
	return o, ev, nil
}

// LinkerdPortRange is an inclusive port range.
type LinkerdPortRange struct{ Lower, Upper int }

// ParseLinkerdPortRange parses "80" or "8000-9000" like proxy-init's util.ParsePortRange.
func ParseLinkerdPortRange(s string) (LinkerdPortRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	l, err := strconv.Atoi(lo)
	if err != nil || !validPort(l) {
		return LinkerdPortRange{}, fmt.Errorf("port %q is not a number in 1-65535", s)
	}
	if !isRange {
		return LinkerdPortRange{l, l}, nil
	}
	h, err := strconv.Atoi(hi)
	if err != nil || !validPort(h) || h < l {
		return LinkerdPortRange{}, fmt.Errorf("port range %q is not lower-upper within 1-65535", s)
	}
	return LinkerdPortRange{l, h}, nil
}

// LinkerdMultiportDestinations groups ports/ranges into iptables multiport lists of at most 15 slots
// (a range takes 2), converting "a-b" to "a:b" and dropping invalid entries, like proxy-init.
func LinkerdMultiportDestinations(ports []string) (groups [][]string, invalid []string) {
	groups = [][]string{}
	if len(ports) == 0 {
		return groups, nil
	}
	cur := []string{}
	count := 0
	for _, p := range ports {
		r, err := ParseLinkerdPortRange(p)
		if err != nil {
			invalid = append(invalid, p)
			continue
		}
		n := 2
		if r.Lower == r.Upper {
			n = 1
		}
		if count+n > LinkerdMultiportLimit {
			groups = append(groups, cur)
			cur, count = []string{}, 0
		}
		if n == 1 {
			cur = append(cur, strconv.Itoa(r.Lower))
		} else {
			cur = append(cur, fmt.Sprintf("%d:%d", r.Lower, r.Upper))
		}
		count += n
	}
	return append(groups, cur), invalid
}

func comment(s string) []string { return []string{"-m", "comment", "--comment", "proxy-init/" + s} }

// LinkerdExisting says which proxy-init objects already exist in the nat table (from iptables-save).
type LinkerdExisting struct {
	RedirectChain, OutputChain, PreroutingJump, OutputJump bool
}

// ParseLinkerdExisting inspects `iptables-save -t nat` output the way proxy-init does.
func ParseLinkerdExisting(save string) LinkerdExisting {
	var e LinkerdExisting
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, ":"+ChainLinkerdRedirect+" "):
			e.RedirectChain = true
		case strings.HasPrefix(l, ":"+ChainLinkerdOutput+" "):
			e.OutputChain = true
		case strings.HasPrefix(l, "-A PREROUTING ") && strings.HasSuffix(strings.TrimSpace(l), "-j "+ChainLinkerdRedirect) || strings.HasPrefix(l, "-A PREROUTING ") && strings.Contains(l, " -j "+ChainLinkerdRedirect):
			e.PreroutingJump = true
		case strings.HasPrefix(l, "-A OUTPUT ") && strings.Contains(l, " -j "+ChainLinkerdOutput):
			e.OutputJump = true
		}
	}
	return e
}

func (c LinkerdConfig) bin() string {
	if c.BinPath == "" {
		return "iptables"
	}
	return c.BinPath
}

// LinkerdIncomingCommands returns proxy-init's argv sequence for the inbound chain.
func LinkerdIncomingCommands(c LinkerdConfig, ex LinkerdExisting) [][]string {
	b := c.bin()
	nat := func(a ...string) []string { return append([]string{b, "-t", "nat"}, a...) }
	var cmds [][]string
	if ex.RedirectChain {
		cmds = append(cmds, nat("-F", ChainLinkerdRedirect))
	} else {
		cmds = append(cmds, nat("-N", ChainLinkerdRedirect))
	}
	groups, _ := LinkerdMultiportDestinations(c.InboundPortsToIgnore)
	for _, g := range groups {
		d := strings.Join(g, ",")
		cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdRedirect, "-p", "tcp", "--match", "multiport", "--dports", d, "-j", "RETURN"}, comment("ignore-port-"+d)...)...))
	}
	for _, s := range c.SubnetsToIgnore {
		cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdRedirect, "-p", "all", "-j", "RETURN", "-s", s}, comment("ignore-subnet-"+s)...)...))
	}
	switch c.Mode {
	case LinkerdRedirectAllMode:
		cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdRedirect, "-p", "tcp", "-j", "REDIRECT", "--to-port", strconv.Itoa(c.ProxyInboundPort)}, comment("redirect-all-incoming-to-proxy-port")...)...))
	case LinkerdRedirectListedMode:
		for _, p := range c.PortsToRedirectInbound {
			cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdRedirect, "-p", "tcp", "--destination-port", strconv.Itoa(p), "-j", "REDIRECT", "--to-port", strconv.Itoa(c.ProxyInboundPort)}, comment(fmt.Sprintf("redirect-port-%d-to-proxy-port", p))...)...))
		}
	}
	if !ex.PreroutingJump {
		cmds = append(cmds, nat(append([]string{"-A", "PREROUTING", "-j", ChainLinkerdRedirect}, comment("install-proxy-init-prerouting")...)...))
	}
	return cmds
}

// LinkerdOutgoingCommands returns proxy-init's argv sequence for the outbound chain.
func LinkerdOutgoingCommands(c LinkerdConfig, ex LinkerdExisting) [][]string {
	b := c.bin()
	nat := func(a ...string) []string { return append([]string{b, "-t", "nat"}, a...) }
	var cmds [][]string
	if ex.OutputChain {
		cmds = append(cmds, nat("-F", ChainLinkerdOutput))
	} else {
		cmds = append(cmds, nat("-N", ChainLinkerdOutput))
	}
	if c.ProxyUID > 0 {
		cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdOutput, "-m", "owner", "--uid-owner", strconv.Itoa(c.ProxyUID), "-j", "RETURN"}, comment("ignore-proxy-user-id")...)...))
	}
	if c.ProxyGID > 0 {
		cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdOutput, "-m", "owner", "--gid-owner", strconv.Itoa(c.ProxyGID), "-j", "RETURN"}, comment("ignore-proxy-group-id")...)...))
	}
	cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdOutput, "-o", "lo", "-j", "RETURN"}, comment("ignore-loopback")...)...))
	groups, _ := LinkerdMultiportDestinations(c.OutboundPortsToIgnore)
	for _, g := range groups {
		d := strings.Join(g, ",")
		cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdOutput, "-p", "tcp", "--match", "multiport", "--dports", d, "-j", "RETURN"}, comment("ignore-port-"+d)...)...))
	}
	cmds = append(cmds, nat(append([]string{"-A", ChainLinkerdOutput, "-p", "tcp", "-j", "REDIRECT", "--to-port", strconv.Itoa(c.ProxyOutgoingPort)}, comment("redirect-all-outgoing-to-proxy-port")...)...))
	if !ex.OutputJump {
		cmds = append(cmds, nat(append([]string{"-A", "OUTPUT", "-j", ChainLinkerdOutput}, comment("install-proxy-init-output")...)...))
	}
	return cmds
}

// LinkerdCleanupCommands returns proxy-init's argv sequence that removes its rules.
func LinkerdCleanupCommands(c LinkerdConfig) [][]string {
	b := c.bin()
	nat := func(a ...string) []string { return append([]string{b, "-t", "nat"}, a...) }
	return [][]string{
		nat(append([]string{"-D", "PREROUTING", "-j", ChainLinkerdRedirect}, comment("install-proxy-init-prerouting")...)...),
		nat(append([]string{"-D", "OUTPUT", "-j", ChainLinkerdOutput}, comment("install-proxy-init-output")...)...),
		nat("-F", ChainLinkerdOutput),
		nat("-F", ChainLinkerdRedirect),
		nat("-X", ChainLinkerdOutput),
		nat("-X", ChainLinkerdRedirect),
	}
}

// LinkerdCommands is the full sequence proxy-init runs on a pod with no previous rules.
func LinkerdCommands(c LinkerdConfig) [][]string {
	return append(LinkerdIncomingCommands(c, LinkerdExisting{}), LinkerdOutgoingCommands(c, LinkerdExisting{})...)
}

// saveRule turns one "-A CHAIN ..." argv tail into iptables-save's canonical text: addresses and
// interfaces first, then the protocol, then matches in order ("--match" spelled "-m",
// "--destination-port" as "-m tcp --dport", "-p all" and "/0" sources dropped), the comment quoted, and
// the target with its options last ("--to-port" printed as "--to-ports").
func saveRule(args []string) (chain, line string) {
	chain = args[1]
	var addrs, proto, matches, target []string
	var commentText string
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch a {
		case "-j":
			target = append(target, "-j", args[i+1])
			i++
			for i+1 < len(args) && !isMatchStart(args[i+1]) {
				i++
				t := args[i]
				if t == "--to-port" {
					t = "--to-ports"
				}
				target = append(target, t)
			}
		case "-m", "--match":
			if args[i+1] == "comment" {
				commentText = args[i+3]
				i += 3
				continue
			}
			matches = append(matches, "-m", args[i+1])
			i++
		case "--destination-port":
			matches = append(matches, "-m", "tcp", "--dport", args[i+1])
			i++
		case "-p":
			if args[i+1] != "all" {
				proto = append(proto, "-p", args[i+1])
			}
			i++
		case "-s", "-d":
			p := canonicalSubnet(args[i+1])
			if !strings.HasSuffix(p, "/0") {
				addrs = append(addrs, a, p)
			}
			i++
		case "-i", "-o":
			addrs = append(addrs, a, args[i+1])
			i++
		default:
			matches = append(matches, a)
		}
	}
	parts := append([]string{"-A", chain}, addrs...)
	parts = append(parts, proto...)
	parts = append(parts, matches...)
	if commentText != "" {
		parts = append(parts, "-m", "comment", "--comment", strconv.Quote(commentText))
	}
	parts = append(parts, target...)
	return chain, strings.Join(parts, " ")
}

func isMatchStart(a string) bool {
	switch a {
	case "-m", "--match", "-p", "-s", "-d", "-i", "-o", "--destination-port":
		return true
	}
	return false
}

// canonicalSubnet normalises a CIDR the way iptables prints it (network address and prefix length).
func canonicalSubnet(s string) string {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		return s
	}
	return n.String()
}

// RenderLinkerdIPTables writes the nat table proxy-init leaves behind, as iptables-save prints it
// (built-in chains, then PROXY_INIT_* chains sorted, rules grouped per chain in chain order).
func RenderLinkerdIPTables(w io.Writer, c LinkerdConfig) error {
	if c.ProxyInboundPort == 0 && c.ProxyOutgoingPort == 0 {
		return fmt.Errorf("rendering linkerd iptables: proxy ports are unset; build the config with BuildLinkerdConfig or LinkerdFromPod")
	}
	perChain := map[string][]string{}
	for _, cmd := range LinkerdCommands(c) {
		args := cmd[3:]
		if args[0] != "-A" {
			continue
		}
		ch, line := saveRule(args)
		perChain[ch] = append(perChain[ch], line)
	}
	var sb strings.Builder
	sb.WriteString("*nat\n")
	for _, b := range []string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"} {
		fmt.Fprintf(&sb, ":%s ACCEPT [0:0]\n", b)
	}
	users := []string{ChainLinkerdOutput, ChainLinkerdRedirect}
	sort.Strings(users)
	for _, u := range users {
		fmt.Fprintf(&sb, ":%s - [0:0]\n", u)
	}
	for _, ch := range append([]string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}, users...) {
		for _, l := range perChain[ch] {
			sb.WriteString(l + "\n")
		}
	}
	sb.WriteString("COMMIT\n")
	_, err := io.WriteString(w, sb.String())
	return err
}
