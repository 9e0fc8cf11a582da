package netfilter

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// builtinChains gives the hook, type and priority of each built-in chain of each iptables table (iptables-nft creates
// the same base chains).
var builtinChains = map[string]map[string]struct {
	hook Hook
	typ  string
	prio int
}{
	"raw": {"PREROUTING": {HookPrerouting, "filter", PriorityRaw}, "OUTPUT": {HookOutput, "filter", PriorityRaw}},
	"mangle": {"PREROUTING": {HookPrerouting, "filter", PriorityMangle}, "INPUT": {HookInput, "filter", PriorityMangle},
		"FORWARD": {HookForward, "filter", PriorityMangle}, "OUTPUT": {HookOutput, "route", PriorityMangle},
		"POSTROUTING": {HookPostrouting, "filter", PriorityMangle}},
	"nat": {"PREROUTING": {HookPrerouting, "nat", PriorityDstNAT}, "INPUT": {HookInput, "nat", PrioritySrcNAT},
		"OUTPUT": {HookOutput, "nat", PriorityDstNAT}, "POSTROUTING": {HookPostrouting, "nat", PrioritySrcNAT}},
	"filter": {"INPUT": {HookInput, "filter", PriorityFilter}, "FORWARD": {HookForward, "filter", PriorityFilter},
		"OUTPUT": {HookOutput, "filter", PriorityFilter}},
	"security": {"INPUT": {HookInput, "filter", PrioritySecurity}, "FORWARD": {HookForward, "filter", PrioritySecurity},
		"OUTPUT": {HookOutput, "filter", PrioritySecurity}},
}

// ParseIPTables parses iptables-save output, iptables-restore input (also the "* nat", "-N", "-I" spellings) and
// scripts of iptables commands ("iptables -t nat -A CHAIN …"). family is FamilyIP or FamilyIP6; a table block whose
// addresses are all of the other IP version goes to that family instead (files that hold both dumps). It never fails:
// what it does not understand is reported in Ruleset.Problems with its line, per rule.
func ParseIPTables(text string, family Family) *Ruleset {
	if family != FamilyIP6 {
		family = FamilyIP
	}
	rs := &Ruleset{}
	p := &iptParser{rs: rs, def: family}
	lines := strings.Split(text, "\n")
	var block []iptLine
	inBlock := false
	flush := func() {
		p.block(block)
		block = block[:0]
		inBlock = false
	}
	for i, raw := range lines {
		ln := i + 1
		s := strings.TrimSpace(raw)
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(s, "*"):
			if inBlock {
				flush()
			}
			inBlock = true
			block = append(block, iptLine{ln, s})
		case s == "COMMIT":
			if inBlock {
				flush()
			}
		case isIPTablesCommand(s):
			if inBlock {
				flush()
			}
			p.command(ln, s)
		default:
			if inBlock {
				block = append(block, iptLine{ln, s})
			} else if strings.HasPrefix(s, "-") || strings.HasPrefix(s, ":") || strings.HasPrefix(s, "[") {
				p.block([]iptLine{{0, "*filter"}, {ln, s}})
			} else {
				rs.problem(ln, "", s, "not an iptables-save line")
			}
		}
	}
	if inBlock {
		rs.problem(block[0].n, "", block[0].s, "table block without COMMIT; rules kept")
		flush()
	}
	rs.finalize()
	return rs
}

type iptLine struct {
	n int
	s string
}

type iptParser struct {
	rs  *Ruleset
	def Family
}

func isIPTablesCommand(s string) bool {
	w := strings.Fields(s)[0]
	if w == "-t" || w == "--table" { // iptables argv without the binary name
		return true
	}
	switch w {
	case "iptables", "ip6tables", "iptables-nft", "ip6tables-nft", "iptables-legacy", "ip6tables-legacy",
		"iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore", "<iptables>", "<ip6tables>":
		return true
	}
	return false
}

// blockFamily guesses the IP version of a table block from the addresses it mentions.
func (p *iptParser) blockFamily(lines []iptLine) Family {
	v4, v6 := false, false
	for _, l := range lines {
		for _, w := range strings.Fields(l.s) {
			w = strings.Trim(w, "[]\"")
			if h, _, ok := strings.Cut(w, "/"); ok {
				w = h
			}
			if strings.Count(w, ":") == 1 { // 1.2.3.4:80
				w, _, _ = strings.Cut(w, ":")
			}
			if i := strings.LastIndex(w, "]:"); i > 0 {
				w = w[:i]
			}
			if a, err := netip.ParseAddr(strings.Trim(w, "[]")); err == nil {
				if a.Is4() {
					v4 = true
				} else {
					v6 = true
				}
			}
		}
	}
	switch {
	case v6 && !v4:
		return FamilyIP6
	case v4 && !v6:
		return FamilyIP
	}
	return p.def
}

func (p *iptParser) table(f Family, name string, line int) *Table {
	return p.rs.ensureTable(f, name, OriginIPTables, line)
}

func (p *iptParser) chain(t *Table, name string, line int) *Chain {
	c := t.Chains[name]
	if c != nil {
		return c
	}
	c = t.ensureChain(name, line)
	c.declared = true
	if bc, ok := builtinChains[t.Name][name]; ok {
		c.Base, c.Hook, c.Type, c.Priority = true, bc.hook, bc.typ, bc.prio
	}
	return c
}

func (p *iptParser) block(lines []iptLine) {
	if len(lines) == 0 {
		return
	}
	name := strings.TrimSpace(strings.TrimPrefix(lines[0].s, "*"))
	f := p.blockFamily(lines)
	if _, ok := builtinChains[name]; !ok {
		p.rs.problem(lines[0].n, "", lines[0].s, "unknown iptables table %q; its chains get no hooks", name)
	}
	t := p.table(f, name, lines[0].n)
	for _, l := range lines[1:] {
		if strings.HasPrefix(l.s, ":") {
			fs := strings.Fields(l.s[1:])
			if len(fs) == 0 {
				continue
			}
			c := p.chain(t, fs[0], l.n)
			if len(fs) > 1 && fs[1] != "-" && c.Base {
				c.Policy = strings.ToLower(fs[1])
			}
			continue
		}
		p.ruleLine(t, l.n, l.s, tokenizeShell(l.s))
	}
}

// command handles "iptables [-w] [-t table] -A …" lines.
func (p *iptParser) command(ln int, s string) {
	args := tokenizeShell(s)
	if args[0] == "-t" || args[0] == "--table" {
		args = append([]string{"iptables"}, args...)
	}
	switch args[0] {
	case "iptables-save", "ip6tables-save", "iptables-restore", "ip6tables-restore":
		return // command names recorded by tools that shell out (istio goldens); nothing to load
	}
	f := p.def
	if strings.HasPrefix(args[0], "ip6") || args[0] == "<ip6tables>" {
		f = FamilyIP6
	}
	table := "filter"
	var rest []string
	for i := 1; i < len(args); i++ {
		switch args[i] {
		case "-t", "--table":
			if i+1 < len(args) {
				table = args[i+1]
				i++
			}
		case "-w", "--wait":
			if i+1 < len(args) && isNumber(args[i+1]) {
				i++
			}
		default:
			rest = append(rest, args[i])
		}
	}
	if fam := p.blockFamily([]iptLine{{ln, s}}); fam != p.def {
		f = fam
	}
	t := p.table(f, table, ln)
	p.ruleLine(t, ln, strings.Join(quoteArgs(rest), " "), rest)
}

func isNumber(s string) bool { _, err := strconv.Atoi(s); return err == nil }

func quoteArgs(a []string) []string {
	out := make([]string, len(a))
	for i, s := range a {
		if strings.ContainsAny(s, " \t\"") || s == "" {
			out[i] = strconv.Quote(s)
		} else {
			out[i] = s
		}
	}
	return out
}

// tokenizeShell splits a line like a shell would for the quoting iptables-save produces.
func tokenizeShell(s string) []string {
	var out []string
	var b strings.Builder
	in := false
	quote := byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
				b.WriteByte(s[i+1])
				i++
			} else if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
			in = true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		default:
			b.WriteByte(c)
			in = true
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out
}

// ruleLine handles one "-A/-I/-N/-P/…" line of table t.
func (p *iptParser) ruleLine(t *Table, ln int, text string, args []string) {
	// leading counters "[0:0]"
	for len(args) > 0 && strings.HasPrefix(args[0], "[") {
		args = args[1:]
	}
	if len(args) == 0 {
		return
	}
	where := t.Name
	switch args[0] {
	case "-N", "--new-chain", "--new":
		if len(args) > 1 {
			p.chain(t, args[1], ln)
		}
		return
	case "-P", "--policy":
		if len(args) > 2 {
			c := p.chain(t, args[1], ln)
			c.Policy = strings.ToLower(args[2])
		}
		return
	case "-F", "--flush":
		if len(args) > 1 {
			if c := t.Chains[args[1]]; c != nil {
				c.Rules = nil
			}
		} else {
			for _, c := range t.Order {
				c.Rules = nil
			}
		}
		p.rs.final = false
		return
	case "-X", "--delete-chain":
		for _, name := range args[1:] {
			if c := t.Chains[name]; c != nil && !c.Base {
				delete(t.Chains, name)
				for i, o := range t.Order {
					if o == c {
						t.Order = append(t.Order[:i:i], t.Order[i+1:]...)
						break
					}
				}
			}
		}
		p.rs.final = false
		return
	case "-D", "--delete":
		if len(args) > 1 {
			if c := t.Chains[args[1]]; c != nil {
				spec := strings.Join(args[2:], " ")
				for i, r := range c.Rules {
					if r.spec == spec {
						c.Rules = append(c.Rules[:i:i], c.Rules[i+1:]...)
						p.rs.final = false
						return
					}
				}
			}
		}
		p.rs.problem(ln, where, text, "-D names a rule that is not there")
		return
	case "-Z", "--zero":
		return
	case "-A", "--append", "-I", "--insert":
	default:
		p.rs.problem(ln, where, text, "iptables command %s is not applied", args[0])
		return
	}
	if len(args) < 2 {
		p.rs.problem(ln, where, text, "%s without a chain", args[0])
		return
	}
	c := p.chain(t, args[1], ln)
	rest := args[2:]
	pos := -1
	if args[0] == "-I" || args[0] == "--insert" {
		pos = 0
		if len(rest) > 0 && isNumber(rest[0]) {
			n, _ := strconv.Atoi(rest[0])
			pos = n - 1
			rest = rest[1:]
		}
	}
	r := &Rule{Chain: c, Line: ln, Text: text, spec: strings.Join(rest, " ")}
	r.Exprs, r.Comment = compileIPTables(rest, c)
	if u := r.Unknown(); u != "" {
		p.rs.problem(ln, t.Name+" "+c.Name, text, "%s", u)
	}
	if pos < 0 || pos >= len(c.Rules) {
		c.Rules = append(c.Rules, r)
	} else {
		c.Rules = append(c.Rules, nil)
		copy(c.Rules[pos+1:], c.Rules[pos:])
		c.Rules[pos] = r
	}
}

type iptOpt struct {
	name string
	neg  bool
	args []string
}

// compileIPTables turns the match/target part of an iptables rule into expressions: generic matches first (the kernel
// checks -s/-d/-i/-o/-p before any -m), then the matches in order, then the target.
func compileIPTables(args []string, c *Chain) ([]Expr, string) {
	var generic, matches []Expr
	var target []Expr
	var comment string
	unknown := func(format string, a ...any) {
		matches = append(matches, &UnknownExpr{Reason: fmt.Sprintf(format, a...), Text: strings.Join(quoteArgs(args), " ")})
	}
	var proto uint8
	module := ""
	var jump string
	var jumpOpts []iptOpt
	goto_ := false
	var modOpts []iptOpt
	flushModule := func() {
		if module == "" && len(modOpts) == 0 {
			return
		}
		es, com, err := compileModule(module, modOpts, proto)
		if err != nil {
			unknown("%v", err)
		}
		if com != "" {
			comment = com
		}
		matches = append(matches, es...)
		module, modOpts = "", nil
	}
	neg := false
	inTarget := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "!" {
			neg = true
			continue
		}
		val := func() string {
			if i+1 < len(args) {
				i++
				if args[i] == "!" && i+1 < len(args) { // old syntax: -s ! 1.2.3.4
					neg = !neg
					i++
				}
				return args[i]
			}
			return ""
		}
		switch a {
		case "-p", "--protocol":
			v := strings.ToLower(val())
			n, ok := protoNumbers[v]
			if !ok {
				x, err := parseUint(v)
				if err != nil {
					unknown("protocol %q is not known", v)
					neg = false
					continue
				}
				n = x
			}
			if n == 0 { // all
				neg = false
				continue
			}
			if !neg {
				proto = uint8(n)
			}
			generic = append(generic, iptMatch(Selector{Field: FieldL4Proto}, neg, []Val{intVal(n)}, a+" "+v))
		case "-s", "--source", "-d", "--destination":
			v := val()
			f := FieldSAddr
			if a == "-d" || a == "--destination" {
				f = FieldDAddr
			}
			var vals []Val
			for _, x := range strings.Split(v, ",") {
				av, err := parseAddrVal(x)
				if err != nil {
					unknown("%v", err)
					continue
				}
				vals = append(vals, av)
			}
			if len(vals) > 0 {
				generic = append(generic, iptMatch(Selector{Field: f, IPV: ipvOf(vals[0].A)}, neg, vals, a+" "+v))
			}
		case "-i", "--in-interface", "-o", "--out-interface":
			v := val()
			f := FieldIifName
			if a == "-o" || a == "--out-interface" {
				f = FieldOifName
			}
			iv := Val{Kind: ValStr, S: v}
			if n, ok := strings.CutSuffix(v, "+"); ok {
				iv = Val{Kind: ValStr, S: n, Wild: true}
			}
			generic = append(generic, iptMatch(Selector{Field: f}, neg, []Val{iv}, a+" "+v))
		case "-f", "--fragment":
			if !neg {
				generic = append(generic, &Match{Op: "false", Text: "-f (the walk's packets are not fragments)"})
			}
		case "-m", "--match":
			if inTarget {
				inTarget = false
			}
			flushModule()
			module = val()
		case "-j", "--jump", "-g", "--goto":
			flushModule()
			jump = val()
			goto_ = a == "-g" || a == "--goto"
			inTarget = true
		case "-c", "--set-counters":
			i += 2
		case "-4", "-6":
		default:
			if strings.HasPrefix(a, "-") {
				o := iptOpt{name: strings.TrimLeft(a, "-"), neg: neg}
				for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") && args[i+1] != "!" {
					i++
					o.args = append(o.args, args[i])
				}
				if inTarget {
					jumpOpts = append(jumpOpts, o)
				} else {
					modOpts = append(modOpts, o)
				}
			} else {
				unknown("unexpected word %q", a)
			}
		}
		neg = false
	}
	flushModule()
	if jump != "" {
		es, err := compileTarget(jump, jumpOpts, goto_, c)
		if err != nil {
			target = append(target, &UnknownExpr{Reason: err.Error(), Text: "-j " + jump})
		} else {
			target = es
		}
	}
	out := append(generic, matches...)
	return append(out, target...), comment
}

func ipvOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func iptMatch(s Selector, neg bool, vals []Val, text string) *Match {
	m := &Match{Keys: []Selector{s}, Op: "==", Text: text}
	if neg {
		m.Op = "!="
		m.Text = "! " + text
	}
	for _, v := range vals {
		m.Elems = append(m.Elems, []Val{v})
	}
	if isFlagField(s.Field) && !s.HasMask {
		m.Flags = true
	}
	return m
}

func markVal(s string) (val, mask uint64, err error) {
	v, m, hasMask := strings.Cut(s, "/")
	if val, err = parseUint(v); err != nil {
		return
	}
	mask = 0xffffffff
	if hasMask {
		mask, err = parseUint(m)
	}
	return
}

func portVal(s string) (Val, error) {
	return parseIntRange(strings.Replace(s, ":", "-", 1), serviceNames)
}

// compileModule turns one -m module's options into expressions.
func compileModule(module string, opts []iptOpt, proto uint8) ([]Expr, string, error) {
	var out []Expr
	comment := ""
	for _, o := range opts {
		arg := ""
		if len(o.args) > 0 {
			arg = o.args[0]
		}
		text := "--" + o.name + " " + strings.Join(o.args, " ")
		if o.neg {
			text = "! " + text
		}
		switch o.name {
		case "comment":
			comment = arg
		case "dport", "destination-port", "sport", "source-port":
			f := FieldDPort
			if o.name == "sport" || o.name == "source-port" {
				f = FieldSPort
			}
			pr := proto
			if pr == 0 {
				pr = uint8(protoNumbers[module])
			}
			v, err := portVal(arg)
			if err != nil {
				return out, comment, err
			}
			out = append(out, iptMatch(Selector{Field: f, Proto: pr}, o.neg, []Val{v}, text))
		case "dports", "destination-ports", "sports", "source-ports":
			f := FieldDPort
			if strings.HasPrefix(o.name, "s") {
				f = FieldSPort
			}
			var vals []Val
			for _, x := range strings.Split(arg, ",") {
				v, err := portVal(x)
				if err != nil {
					return out, comment, err
				}
				vals = append(vals, v)
			}
			out = append(out, iptMatch(Selector{Field: f, Proto: proto}, o.neg, vals, text))
		case "syn":
			s := Selector{Field: FieldTCPFlags, Proto: 6, HasMask: true, And: 0x17}
			out = append(out, iptMatch(s, o.neg, []Val{intVal(2)}, text))
		case "tcp-flags":
			if len(o.args) != 2 {
				return out, comment, fmt.Errorf("--tcp-flags needs a mask and a value")
			}
			var mask, cmp uint64
			for _, x := range strings.Split(strings.ToLower(o.args[0]), ",") {
				if x == "all" {
					mask = 0x3f
				} else if x != "none" {
					mask |= tcpFlagBits[x]
				}
			}
			for _, x := range strings.Split(strings.ToLower(o.args[1]), ",") {
				if x == "all" {
					cmp = 0x3f
				} else if x != "none" {
					cmp |= tcpFlagBits[x]
				}
			}
			s := Selector{Field: FieldTCPFlags, Proto: 6, HasMask: true, And: mask}
			out = append(out, iptMatch(s, o.neg, []Val{intVal(cmp)}, text))
		case "ctstate", "state":
			out = append(out, ctStateMatch(arg, o.neg, text))
		case "mark":
			v, m, err := markVal(arg)
			if err != nil {
				return out, comment, err
			}
			f := FieldMark
			if module == "connmark" {
				f = FieldCtMark
			}
			s := Selector{Field: f, HasMask: m != 0xffffffff, And: m}
			out = append(out, iptMatch(s, o.neg, []Val{intVal(v & m)}, text))
		case "src-type", "dst-type":
			f := FieldFibSAddrType
			if o.name == "dst-type" {
				f = FieldFibDAddrType
			}
			var vals []Val
			for _, x := range strings.Split(strings.ToLower(arg), ",") {
				t, ok := fibTypes[x]
				if !ok {
					return out, comment, fmt.Errorf("address type %q is not known", x)
				}
				vals = append(vals, intVal(t))
			}
			out = append(out, iptMatch(Selector{Field: f}, o.neg, vals, text))
		case "mode":
			if arg != "random" {
				return out, comment, fmt.Errorf("statistic mode %s is not modelled (it depends on packet counters)", arg)
			}
		case "probability":
			pv, err := strconv.ParseFloat(arg, 64)
			if err != nil || pv < 0 || pv > 1 {
				return out, comment, fmt.Errorf("bad probability %q", arg)
			}
			if o.neg {
				pv = 1 - pv
			}
			out = append(out, &Fork{P: pv, Text: "-m statistic --mode random --probability " + arg})
		case "uid-owner", "gid-owner":
			f := FieldSkUID
			if o.name == "gid-owner" {
				f = FieldSkGID
			}
			v, err := parseLit(Selector{Field: f}, arg)
			if err != nil {
				return out, comment, fmt.Errorf("owner %q is not understood", arg)
			}
			out = append(out, iptMatch(Selector{Field: f}, o.neg, []Val{v}, text))
		case "socket-exists":
			out = append(out, iptMatch(Selector{Field: FieldSocket}, o.neg, []Val{intVal(1)}, text))
		case "name", "seconds", "reap", "rsource", "rdest", "hitcount", "mask", "rttl":
			// recent options; the check is decided by rcheck/update
		case "rcheck", "update":
			name := "DEFAULT"
			for _, x := range opts {
				if x.name == "name" && len(x.args) > 0 {
					name = x.args[0]
				}
			}
			out = append(out, &RecentMatch{Name: name, Neg: o.neg, Text: "-m recent --name " + name + " --" + o.name})
		case "set":
			if module == "recent" {
				out = append(out, &NopStmt{Text: "-m recent --set (adds the source to the list)"})
				continue
			}
			return out, comment, fmt.Errorf("--set of module %s is not modelled", module)
		case "nfacct-name", "limit", "limit-burst":
			out = append(out, &NopStmt{Text: text})
		case "match-set":
			if len(o.args) < 2 {
				return out, comment, fmt.Errorf("--match-set needs a set and src|dst")
			}
			dirs := strings.Split(o.args[1], ",")
			if len(dirs) != 1 {
				return out, comment, fmt.Errorf("ipset %s with %d dimensions is not modelled", o.args[0], len(dirs))
			}
			f := FieldSAddr
			if dirs[0] == "dst" {
				f = FieldDAddr
			}
			m := &Match{Keys: []Selector{{Field: f}}, Op: "==", SetName: "ipset:" + o.args[0], Text: text}
			if o.neg {
				m.Op = "!="
			}
			out = append(out, m)
		case "src-range", "dst-range":
			f := FieldSAddr
			if o.name == "dst-range" {
				f = FieldDAddr
			}
			v, err := parseAddrVal(arg)
			if err != nil {
				return out, comment, err
			}
			out = append(out, iptMatch(Selector{Field: f, IPV: ipvOf(v.A)}, o.neg, []Val{v}, text))
		case "pkt-type":
			t, ok := pktTypes[arg]
			if !ok {
				return out, comment, fmt.Errorf("pkt-type %q is not known", arg)
			}
			out = append(out, iptMatch(Selector{Field: FieldPktType}, o.neg, []Val{intVal(t)}, text))
		default:
			return out, comment, fmt.Errorf("match -m %s --%s is not modelled", module, o.name)
		}
	}
	switch module {
	case "", "tcp", "udp", "sctp", "comment", "conntrack", "state", "mark", "connmark", "addrtype", "statistic",
		"owner", "recent", "nfacct", "multiport", "limit", "set", "iprange", "pkttype":
	default:
		if len(opts) == 0 {
			return out, comment, fmt.Errorf("match module %s is not modelled", module)
		}
	}
	return out, comment, nil
}

// CtStateMatch is iptables' conntrack --ctstate, which also knows the virtual states DNAT and SNAT.
type CtStateMatch struct {
	States uint64 // nft ct state bits
	DNAT   bool
	SNAT   bool
	Neg    bool
	Text   string
}

func (m *CtStateMatch) exprText() string { return m.Text }

func ctStateMatch(arg string, neg bool, text string) Expr {
	m := &CtStateMatch{Neg: neg, Text: text}
	for _, s := range strings.Split(strings.ToLower(arg), ",") {
		switch s {
		case "dnat":
			m.DNAT = true
		case "snat":
			m.SNAT = true
		default:
			b, ok := ctStateBits[s]
			if !ok {
				return &UnknownExpr{Reason: fmt.Sprintf("conntrack state %q is not known", s), Text: text}
			}
			m.States |= b
		}
	}
	return m
}

// RecentMatch is iptables -m recent --rcheck/--update (session affinity): true when the packet's source is already
// in the list, which is an input of the walk (Packet.Recent).
type RecentMatch struct {
	Name string
	Neg  bool
	Text string
}

func (m *RecentMatch) exprText() string { return m.Text }

func compileTarget(t string, opts []iptOpt, isGoto bool, c *Chain) ([]Expr, error) {
	opt := func(names ...string) (string, bool) {
		for _, o := range opts {
			for _, n := range names {
				if o.name == n {
					if len(o.args) > 0 {
						return o.args[0], true
					}
					return "", true
				}
			}
		}
		return "", false
	}
	text := "-j " + t
	for _, o := range opts {
		text += " --" + o.name
		if len(o.args) > 0 {
			text += " " + strings.Join(o.args, " ")
		}
	}
	if isGoto {
		return []Expr{&VerdictStmt{Verdict{Kind: "goto", Chain: t}}}, nil
	}
	switch t {
	case "ACCEPT", "DROP", "RETURN":
		return []Expr{&VerdictStmt{Verdict{Kind: strings.ToLower(t)}}}, nil
	case "REJECT":
		w, _ := opt("reject-with")
		return []Expr{&VerdictStmt{Verdict{Kind: "reject", With: w}}}, nil
	case "QUEUE", "NFQUEUE":
		return nil, fmt.Errorf("%s hands the packet to a userspace program; its verdict is not in the ruleset", t)
	case "MARK", "CONNMARK":
		return compileMarkTarget(t, opts, text)
	case "DNAT", "SNAT":
		key := "to-destination"
		kind := "dnat"
		if t == "SNAT" {
			key, kind = "to-source", "snat"
		}
		n := 0
		for _, o := range opts {
			if o.name == key {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%s needs exactly one --%s", t, key)
		}
		v, _ := opt(key)
		return natTarget(kind, v, text)
	case "MASQUERADE":
		return []Expr{&NATStmt{Kind: "masquerade", Text: text}}, nil
	case "REDIRECT":
		v, _ := opt("to-ports", "to-port")
		return natTarget("redirect", ":"+v, text)
	case "TPROXY":
		port, _ := opt("on-port")
		ip, _ := opt("on-ip")
		n := &NATStmt{Kind: "tproxy", Text: text}
		if port != "" {
			pv, err := strconv.ParseUint(port, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("bad --on-port %q", port)
			}
			n.Port, n.PortHi = uint16(pv), uint16(pv)
		}
		if ip != "" {
			a, err := netip.ParseAddr(ip)
			if err != nil {
				return nil, fmt.Errorf("bad --on-ip %q", ip)
			}
			n.Addr, n.AddrHi = a, a
		}
		if m, ok := opt("tproxy-mark"); ok {
			v, mask, err := markVal(m)
			if err != nil {
				return nil, err
			}
			n.TProxyMark = &MarkStmt{Text: "--tproxy-mark " + m, Apply: func(mk, ct uint32) (uint32, uint32) {
				return (mk &^ uint32(mask)) ^ uint32(v), ct
			}}
		}
		return []Expr{n}, nil
	case "LOG", "NFLOG", "TRACE", "CT", "NOTRACK", "CHECKSUM", "TCPMSS", "CLASSIFY", "DSCP", "TOS", "SET", "AUDIT",
		"ULOG", "IDLETIMER", "LED", "SECMARK", "CONNSECMARK", "TEE":
		return []Expr{&NopStmt{Text: text}}, nil
	}
	if strings.ToUpper(t) == t && c.Table.Chains[t] == nil && !strings.Contains(t, "-") && !strings.Contains(t, "_") {
		// an all-caps name that is no chain here is most likely a target extension we do not know
		return nil, fmt.Errorf("target %s is not modelled", t)
	}
	return []Expr{&VerdictStmt{Verdict{Kind: "jump", Chain: t}}}, nil
}

func natTarget(kind, v, text string) ([]Expr, error) {
	n := &NATStmt{Kind: kind, Text: text}
	host, port := splitHostPort(v)
	if host != "" {
		av, err := parseAddrVal(host)
		if err != nil {
			return nil, err
		}
		n.Addr, n.AddrHi = av.A, av.B
	}
	if port != "" {
		pv, err := parseIntRange(port, nil)
		if err != nil || pv.J > 65535 {
			return nil, fmt.Errorf("bad port %q", port)
		}
		n.Port, n.PortHi = uint16(pv.I), uint16(pv.J)
	}
	return []Expr{n}, nil
}

func compileMarkTarget(t string, opts []iptOpt, text string) ([]Expr, error) {
	var fns []func(m, ct uint32) (uint32, uint32)
	for _, o := range opts {
		arg := ""
		if len(o.args) > 0 {
			arg = o.args[0]
		}
		ct := t == "CONNMARK"
		set := func(f func(x uint32) uint32) {
			fns = append(fns, func(m, c uint32) (uint32, uint32) {
				if ct {
					return m, f(c)
				}
				return f(m), c
			})
		}
		switch o.name {
		case "set-xmark", "set-mark":
			v, mask, err := markVal(arg)
			if err != nil {
				return nil, err
			}
			if o.name == "set-xmark" {
				set(func(x uint32) uint32 { return (x &^ uint32(mask)) ^ uint32(v) })
			} else {
				set(func(x uint32) uint32 { return (x &^ uint32(mask)) | uint32(v) })
			}
		case "or-mark", "and-mark", "xor-mark":
			v, err := parseUint(arg)
			if err != nil {
				return nil, err
			}
			switch o.name {
			case "or-mark":
				set(func(x uint32) uint32 { return x | uint32(v) })
			case "and-mark":
				set(func(x uint32) uint32 { return x & uint32(v) })
			default:
				set(func(x uint32) uint32 { return x ^ uint32(v) })
			}
		case "save-mark", "restore-mark":
			nf, ctm := uint64(0xffffffff), uint64(0xffffffff)
			for _, x := range opts {
				if len(x.args) == 0 {
					continue
				}
				v, err := parseUint(x.args[0])
				if err != nil {
					continue
				}
				switch x.name {
				case "nfmask":
					nf = v
				case "ctmask":
					ctm = v
				case "mask":
					nf, ctm = v, v
				}
			}
			if o.name == "save-mark" {
				fns = append(fns, func(m, c uint32) (uint32, uint32) {
					return m, (c &^ uint32(ctm)) ^ (m & uint32(nf))
				})
			} else {
				fns = append(fns, func(m, c uint32) (uint32, uint32) {
					return (m &^ uint32(nf)) ^ (c & uint32(ctm)), c
				})
			}
		case "nfmask", "ctmask", "mask":
		default:
			return nil, fmt.Errorf("%s --%s is not modelled", t, o.name)
		}
	}
	if len(fns) == 0 {
		return nil, fmt.Errorf("%s without an action", t)
	}
	return []Expr{&MarkStmt{Text: text, Apply: func(m, c uint32) (uint32, uint32) {
		for _, f := range fns {
			m, c = f(m, c)
		}
		return m, c
	}}}, nil
}
