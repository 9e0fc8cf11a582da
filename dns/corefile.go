package dns

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	miekg "github.com/miekg/dns"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Corefile is a parsed CoreDNS configuration (the `Corefile` key of the kube-system/coredns ConfigMap).
type Corefile struct {
	Blocks []ServerBlock `json:"blocks"`
}

// ServerBlock is one `ZONE[:PORT]... { ... }` block.
type ServerBlock struct {
	// Keys as written, e.g. ".:53", "cluster.local:53".
	Keys []string `json:"keys"`
	// Zones are the keys' zones, lower-case and fully qualified.
	Zones []string `json:"zones"`
	// Port is the keys' port ("53" when omitted).
	Port       string      `json:"port"`
	Directives []Directive `json:"directives"`
	Line       int         `json:"line"`
}

// Directive is one plugin line with its arguments and optional sub-block.
type Directive struct {
	Name  string      `json:"name"`
	Args  []string    `json:"args,omitempty"`
	Block []Directive `json:"block,omitempty"`
	Line  int         `json:"line"`
}

// CorefileError is a Corefile syntax or plugin-setup error with its line.
type CorefileError struct {
	Line int
	Msg  string
}

func (e *CorefileError) Error() string {
	return fmt.Sprintf("Corefile:%d - Error during parsing: %s", e.Line, e.Msg)
}

type token struct {
	text    string
	line    int
	newline bool // a line break (not a real token)
	quoted  bool
}

func tokenize(src string) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			toks = append(toks, token{newline: true, line: line})
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '"':
			j := i + 1
			var b strings.Builder
			for j < len(src) && src[j] != '"' {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				if src[j] == '\n' {
					line++
				}
				b.WriteByte(src[j])
				j++
			}
			if j >= len(src) {
				return nil, &CorefileError{Line: line, Msg: "unterminated quoted string"}
			}
			toks = append(toks, token{text: b.String(), line: line, quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(src) && !strings.ContainsRune(" \t\r\n", rune(src[j])) {
				j++
			}
			toks = append(toks, token{text: src[i:j], line: line})
			i = j
		}
	}
	return toks, nil
}

// ParseCorefile parses Corefile text into server blocks. It does not validate plugins; see NewServer.
func ParseCorefile(src string) (*Corefile, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &tokParser{toks: toks}
	cf := &Corefile{}
	for {
		p.skipNewlines()
		if p.done() {
			return cf, nil
		}
		sb := ServerBlock{Line: p.peek().line}
		for !p.done() && !isOpen(p.peek()) {
			t := p.next()
			if t.newline {
				continue
			}
			for _, k := range strings.Split(t.text, ",") {
				if k != "" {
					sb.Keys = append(sb.Keys, k)
				}
			}
		}
		if p.done() {
			return nil, &CorefileError{Line: sb.Line, Msg: fmt.Sprintf("server block %q has no '{'", strings.Join(sb.Keys, " "))}
		}
		p.next() // {
		if len(sb.Keys) == 0 {
			return nil, &CorefileError{Line: sb.Line, Msg: "server block without a zone"}
		}
		sb.Directives, err = p.body()
		if err != nil {
			return nil, err
		}
		for _, k := range sb.Keys {
			z, port, err := splitKey(k)
			if err != nil {
				return nil, &CorefileError{Line: sb.Line, Msg: err.Error()}
			}
			if sb.Port != "" && port != sb.Port {
				return nil, &CorefileError{Line: sb.Line, Msg: fmt.Sprintf("keys of one server block use different ports %s and %s (not modelled)", sb.Port, port)}
			}
			sb.Port = port
			sb.Zones = append(sb.Zones, z)
		}
		cf.Blocks = append(cf.Blocks, sb)
	}
}

func isOpen(t token) bool  { return !t.newline && !t.quoted && t.text == "{" }
func isClose(t token) bool { return !t.newline && !t.quoted && t.text == "}" }

// splitKey splits "dns://cluster.local:53" into "cluster.local." and "53".
func splitKey(k string) (string, string, error) {
	for _, scheme := range []string{"dns://", "tls://", "https://", "grpc://", "quic://"} {
		if strings.HasPrefix(k, scheme) {
			if scheme != "dns://" {
				return "", "", fmt.Errorf("server key %q: only plain DNS servers are modelled", k)
			}
			k = strings.TrimPrefix(k, scheme)
		}
	}
	port := "53"
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		port = k[i+1:]
		k = k[:i]
		if _, err := strconv.Atoi(port); err != nil {
			return "", "", fmt.Errorf("server key %q: bad port %q", k, port)
		}
	}
	if k == "" {
		k = "."
	}
	return normalizeZone(k), port, nil
}

// normalizeZone lower-cases and qualifies a zone; a CIDR such as 10.0.0.0/17 becomes its reverse zone.
func normalizeZone(z string) string {
	if strings.Contains(z, "/") {
		if rz, ok := cidrReverseZone(z); ok {
			return rz
		}
	}
	return strings.ToLower(miekg.Fqdn(z))
}

// cidrReverseZone turns an IPv4 CIDR on an octet boundary into its in-addr.arpa zone (CoreDNS splits other
// prefixes into several zones; those are not modelled and the CIDR is kept as written).
func cidrReverseZone(c string) (string, bool) {
	ip, bits, ok := strings.Cut(c, "/")
	if !ok {
		return "", false
	}
	n, err := strconv.Atoi(bits)
	parts := strings.Split(ip, ".")
	if err != nil || len(parts) != 4 || n%8 != 0 || n > 32 {
		return "", false
	}
	var labels []string
	for i := n/8 - 1; i >= 0; i-- {
		labels = append(labels, parts[i])
	}
	return strings.Join(append(labels, "in-addr.arpa."), "."), true
}

type tokParser struct {
	toks []token
	pos  int
}

func (p *tokParser) done() bool  { return p.pos >= len(p.toks) }
func (p *tokParser) peek() token { return p.toks[p.pos] }
func (p *tokParser) next() token { t := p.toks[p.pos]; p.pos++; return t }
func (p *tokParser) skipNewlines() {
	for !p.done() && p.peek().newline {
		p.pos++
	}
}

// body parses directives until the matching '}' (consumed), or to the end of input at top level.
func (p *tokParser) body() ([]Directive, error) {
	var out []Directive
	for {
		p.skipNewlines()
		if p.done() {
			return out, &CorefileError{Line: p.toks[len(p.toks)-1].line, Msg: "unexpected end of file: missing '}'"}
		}
		t := p.next()
		if isClose(t) {
			return out, nil
		}
		if isOpen(t) {
			return nil, &CorefileError{Line: t.line, Msg: "unexpected '{'"}
		}
		d := Directive{Name: t.text, Line: t.line}
		for !p.done() && !p.peek().newline && !isOpen(p.peek()) && !isClose(p.peek()) {
			d.Args = append(d.Args, p.next().text)
		}
		if !p.done() && isOpen(p.peek()) {
			p.next()
			blk, err := p.body()
			if err != nil {
				return nil, err
			}
			d.Block = blk
		}
		out = append(out, d)
	}
}

// parseDirectives parses a bare list of directives (a server block body without braces).
func parseDirectives(src string) ([]Directive, error) {
	toks, err := tokenize(src + "\n}")
	if err != nil {
		return nil, err
	}
	p := &tokParser{toks: toks}
	return p.body()
}

// ParseKubernetesStanza parses the text of `kubernetes` directives as CoreDNS's setup does (plugin/kubernetes
// setup.go); serverZones are the enclosing server block's zones, used when the directive names none. Error texts
// follow CoreDNS's.
func ParseKubernetesStanza(src string, serverZones []string) (KubernetesOptions, error) {
	ds, err := parseDirectives(src)
	if err != nil {
		return KubernetesOptions{}, err
	}
	var k8s []Directive
	for _, d := range ds {
		if d.Name == "kubernetes" {
			k8s = append(k8s, d)
		}
	}
	if len(k8s) == 0 {
		return KubernetesOptions{}, errors.New("no kubernetes directive")
	}
	if len(k8s) > 1 {
		return KubernetesOptions{}, &CorefileError{Line: k8s[1].Line, Msg: "plugin/kubernetes: this plugin can only be used once per Server Block"}
	}
	return KubernetesFromDirective(k8s[0], serverZones)
}

func argErr(d Directive) error {
	return &CorefileError{Line: d.Line, Msg: fmt.Sprintf("Wrong argument count or unexpected line ending after '%s'", lastTok(d))}
}

func lastTok(d Directive) string {
	if len(d.Args) > 0 {
		return d.Args[len(d.Args)-1]
	}
	return d.Name
}

// KubernetesFromDirective turns a parsed `kubernetes` directive into options, validating as CoreDNS does.
func KubernetesFromDirective(d Directive, serverZones []string) (KubernetesOptions, error) {
	o := KubernetesOptions{Pods: PodsDisabled, TTL: DefaultTTL, StartupTimeout: 5 * time.Second}
	zones := d.Args
	if len(zones) == 0 {
		zones = serverZones
	}
	for _, z := range zones {
		o.Zones = append(o.Zones, normalizeZone(z))
	}
	primary := false
	for _, z := range o.Zones {
		if reverseKind(z) == 0 {
			primary = true
		}
	}
	if !primary {
		return o, &CorefileError{Line: d.Line, Msg: "non-reverse zone name must be used"}
	}
	fail := func(sub Directive, msg string, a ...any) error {
		return &CorefileError{Line: sub.Line, Msg: fmt.Sprintf(msg, a...)}
	}
	endpoints := true
	for _, s := range d.Block {
		args := s.Args
		switch s.Name {
		case "endpoint_pod_names":
			if len(args) > 0 {
				return o, argErr(s)
			}
			o.EndpointPodNames = true
		case "pods":
			if len(args) != 1 {
				return o, argErr(s)
			}
			switch PodMode(args[0]) {
			case PodsDisabled, PodsInsecure, PodsVerified:
				o.Pods = PodMode(args[0])
			default:
				return o, fail(s, "wrong value for pods: %s,  must be one of: disabled, verified, insecure", args[0])
			}
		case "namespaces":
			if len(args) == 0 {
				return o, argErr(s)
			}
			o.Namespaces = append(o.Namespaces, args...)
		case "endpoint":
			if len(args) == 0 {
				return o, argErr(s)
			}
			o.Endpoint = args
		case "tls":
			if len(args) != 3 {
				return o, argErr(s)
			}
			o.TLS = args
		case "labels", "namespace_labels":
			if len(args) == 0 {
				return o, argErr(s)
			}
			sel := strings.Join(args, " ")
			ls, err := metav1.ParseToLabelSelector(sel)
			if err != nil {
				return o, fail(s, "unable to parse label selector value: '%v': %v", sel, err)
			}
			if s.Name == "labels" {
				o.Labels = metav1.FormatLabelSelector(ls)
			} else {
				o.NamespaceLabels = metav1.FormatLabelSelector(ls)
			}
		case "fallthrough":
			if len(args) == 0 {
				o.Fallthrough = []string{"."}
			} else {
				o.Fallthrough = nil
				for _, z := range args {
					o.Fallthrough = append(o.Fallthrough, normalizeZone(z))
				}
			}
		case "ttl":
			if len(args) == 0 {
				return o, argErr(s)
			}
			t, err := strconv.Atoi(args[0])
			if err != nil {
				return o, fail(s, "ttl %q: %v", args[0], err)
			}
			if t < 0 || t > MaxTTL {
				return o, fail(s, "ttl must be in range [0, 3600]: %d", t)
			}
			o.TTL = uint32(t)
		case "noendpoints":
			if len(args) != 0 {
				return o, argErr(s)
			}
			endpoints = false
			o.NoEndpoints = true
		case "ignore":
			if len(args) > 0 {
				if args[0] != "empty_service" {
					return o, fail(s, "unable to parse ignore value: '%v'", args[0])
				}
				o.IgnoreEmptyService = true
			}
		case "kubeconfig":
			if len(args) != 1 && len(args) != 2 {
				return o, argErr(s)
			}
			o.KubeConfig = args
		case "multicluster":
			o.Multicluster = []string{}
			for _, z := range args {
				o.Multicluster = append(o.Multicluster, normalizeZone(z))
			}
			for _, z := range o.Multicluster {
				if matchZone(o.Zones, z) == "" {
					return o, fail(s, "is not authoritative for the multicluster zone %s", z)
				}
			}
		case "zonal":
			if len(args) != 0 {
				return o, argErr(s)
			}
			o.Zonal = true
		case "startup_timeout":
			if len(args) != 1 {
				return o, argErr(s)
			}
			dur, err := time.ParseDuration(args[0])
			if err != nil {
				return o, fail(s, "startup_timeout %q: %v", args[0], err)
			}
			o.StartupTimeout = dur
		case "apiserver_qps", "apiserver_burst", "apiserver_max_inflight":
			if len(args) != 1 {
				return o, argErr(s)
			}
			v, err := strconv.ParseFloat(args[0], 64)
			if err != nil {
				return o, fail(s, "%s %q: %v", s.Name, args[0], err)
			}
			if v < 0 {
				return o, fail(s, "%s must be >= 0", s.Name)
			}
			switch s.Name {
			case "apiserver_qps":
				o.APIServerQPS = v
			case "apiserver_burst":
				o.APIServerBurst = int(v)
			default:
				o.APIServerMaxInflight = int(v)
			}
		default:
			return o, fail(s, "unknown property '%s'", s.Name)
		}
	}
	if len(o.Namespaces) != 0 && o.NamespaceLabels != "" {
		return o, fail(d, "namespaces and namespace_labels cannot both be set")
	}
	if o.Zonal && !endpoints {
		return o, fail(d, "zonal requires the endpoint cache: it cannot be combined with noendpoints")
	}
	return o, nil
}

// Forward is a parsed `forward FROM TO...` directive.
type Forward struct {
	From   string   `json:"from"`
	To     []string `json:"to"`
	Except []string `json:"except,omitempty"`
}

// ForwardFromDirective parses a `forward` directive.
func ForwardFromDirective(d Directive) (Forward, error) {
	if len(d.Args) < 2 {
		return Forward{}, argErr(d)
	}
	f := Forward{From: normalizeZone(d.Args[0]), To: d.Args[1:]}
	for _, s := range d.Block {
		if s.Name == "except" {
			for _, z := range s.Args {
				f.Except = append(f.Except, normalizeZone(z))
			}
		}
	}
	return f, nil
}

// Handles reports whether the forward plugin takes name (lower-case FQDN).
func (f Forward) Handles(name string) bool {
	return matchZone([]string{f.From}, name) != "" && matchZone(f.Except, name) == ""
}

// Cache is a parsed `cache [TTL] [ZONES...]` directive.
type Cache struct {
	// MaxTTL caps positive answers (default 3600s); DenialTTL caps negative answers (default 1800s).
	MaxTTL    int      `json:"maxTTL"`
	DenialTTL int      `json:"denialTTL"`
	Zones     []string `json:"zones"`
	// DisableSuccess and DisableDenial list zones whose answers are not cached (`disable success|denial ZONES`).
	DisableSuccess []string `json:"disableSuccess,omitempty"`
	DisableDenial  []string `json:"disableDenial,omitempty"`
}

// CacheFromDirective parses a `cache` directive.
func CacheFromDirective(d Directive, serverZones []string) (Cache, error) {
	c := Cache{MaxTTL: 3600, DenialTTL: 1800}
	args := d.Args
	if len(args) > 0 {
		if n, err := strconv.Atoi(args[0]); err == nil {
			if n <= 0 {
				return c, &CorefileError{Line: d.Line, Msg: fmt.Sprintf("cache TTL can not be zero or negative: %d", n)}
			}
			c.MaxTTL, c.DenialTTL = n, n
			args = args[1:]
		}
	}
	for _, z := range args {
		c.Zones = append(c.Zones, normalizeZone(z))
	}
	if len(c.Zones) == 0 {
		c.Zones = serverZones
	}
	for _, s := range d.Block {
		switch s.Name {
		case "success", "denial":
			if len(s.Args) >= 2 {
				if n, err := strconv.Atoi(s.Args[1]); err == nil {
					if s.Name == "success" {
						c.MaxTTL = n
					} else {
						c.DenialTTL = n
					}
				}
			}
		case "disable":
			if len(s.Args) < 1 {
				return c, argErr(s)
			}
			var zs []string
			for _, z := range s.Args[1:] {
				zs = append(zs, normalizeZone(z))
			}
			if len(zs) == 0 {
				zs = c.Zones
			}
			if s.Args[0] == "success" {
				c.DisableSuccess = append(c.DisableSuccess, zs...)
			} else {
				c.DisableDenial = append(c.DisableDenial, zs...)
			}
		}
	}
	return c, nil
}
