package netfilter

import (
	"strconv"
	"strings"
)

// ParseNFT parses nft text: `nft list ruleset` output (with or without -a handles) and command files such as
// knftables' Fake.Dump() or `nft -f` input (add table …, add rule …, add element …). It never fails: what it does not
// understand is reported in Ruleset.Problems with its line.
func ParseNFT(text string) *Ruleset {
	rs := &Ruleset{}
	d := &nftDoc{rs: rs, t: lexNFT(text)}
	d.parse()
	rs.finalize()
	return rs
}

type nftDoc struct {
	rs *Ruleset
	t  []tok
	i  int
}

func (d *nftDoc) eof() bool { return d.i >= len(d.t) }
func (d *nftDoc) peek() tok {
	if d.eof() {
		return tok{}
	}
	return d.t[d.i]
}
func (d *nftDoc) next() tok {
	if d.eof() {
		return tok{}
	}
	t := d.t[d.i]
	d.i++
	return t
}
func (d *nftDoc) line() int {
	if d.eof() {
		if len(d.t) > 0 {
			return d.t[len(d.t)-1].line
		}
		return 0
	}
	return d.t[d.i].line
}

// restOfStatement consumes tokens up to the end of the statement (newline or ';' outside braces, or a '}' closing an
// enclosing block, which is left unconsumed).
func (d *nftDoc) restOfStatement() []tok {
	start := d.i
	depth := 0
	for !d.eof() {
		t := d.t[d.i]
		if !t.quoted {
			switch t.s {
			case "{":
				depth++
			case "}":
				if depth == 0 {
					return d.t[start:d.i]
				}
				depth--
			case ";":
				if depth == 0 {
					out := d.t[start:d.i]
					d.i++
					return out
				}
			case "\n":
				if depth == 0 {
					out := d.t[start:d.i]
					d.i++
					return out
				}
			}
		}
		d.i++
	}
	return d.t[start:d.i]
}

func (d *nftDoc) skipSeparators() {
	for !d.eof() && !d.peek().quoted && (d.peek().s == "\n" || d.peek().s == ";") {
		d.i++
	}
}

func (d *nftDoc) skipStatement(reason string) {
	line := d.line()
	ts := d.restOfStatement()
	if reason != "" {
		d.rs.problem(line, "", joinToks(ts), "%s", reason)
	}
}

func isFamily(s string) bool {
	switch Family(s) {
	case FamilyIP, FamilyIP6, FamilyINet, FamilyARP, FamilyBridge, FamilyNetdev:
		return true
	}
	return false
}

func (d *nftDoc) family() Family {
	if t := d.peek(); !t.quoted && isFamily(t.s) {
		d.i++
		return Family(t.s)
	}
	return FamilyIP
}

func (d *nftDoc) parse() {
	for {
		d.skipSeparators()
		if d.eof() {
			return
		}
		t := d.next()
		switch t.s {
		case "table":
			d.tableBlock(t.line)
		case "add", "create", "insert", "replace":
			d.command(t.s, t.line)
		case "flush":
			d.flush(t.line)
		case "delete", "destroy":
			d.skipStatement("delete commands are not applied; the dump should describe the final state")
		case "}":
			d.rs.problem(t.line, "", "}", "unbalanced }")
		default:
			d.i--
			d.skipStatement("not an nft statement")
		}
	}
}

func (d *nftDoc) flush(line int) {
	what := d.next().s
	switch what {
	case "ruleset":
		d.rs.Tables = nil
		d.rs.tables = nil
	case "table":
		f := d.family()
		if t := d.rs.Table(f, d.next().s); t != nil {
			for _, c := range t.Order {
				c.Rules = nil
			}
			for _, s := range t.Sets {
				s.Elements = nil
			}
		}
	case "chain":
		f := d.family()
		if t := d.rs.Table(f, d.next().s); t != nil {
			if c := t.Chains[d.next().s]; c != nil {
				c.Rules = nil
			}
		}
	case "set", "map":
		f := d.family()
		if t := d.rs.Table(f, d.next().s); t != nil {
			if s := t.Sets[d.next().s]; s != nil {
				s.Elements = nil
			}
		}
	}
	d.restOfStatement()
	_ = line
}

// tableBlock parses "table [family] name { … }".
func (d *nftDoc) tableBlock(line int) {
	f := d.family()
	name := d.next()
	t := d.rs.ensureTable(f, name.s, OriginNFT, line)
	if d.peek().s != "{" {
		d.restOfStatement()
		return
	}
	d.next()
	for {
		d.skipSeparators()
		if d.eof() {
			d.rs.problem(line, tableWhere(t), "table "+name.s, "table block is not closed")
			return
		}
		tk := d.next()
		switch tk.s {
		case "}":
			return
		case "chain":
			cname := d.next().s
			c := t.ensureChain(cname, tk.line)
			c.declared = true
			if d.peek().s == "{" {
				d.next()
				d.chainBody(c, true)
			}
		case "set", "map":
			sname := d.next().s
			s := d.ensureSet(t, sname, tk.s == "map", tk.line)
			if d.peek().s == "{" {
				d.next()
				d.setBody(t, s)
			}
		case "comment", "flags":
			d.restOfStatement()
		default:
			// named objects (counter, quota, ct helper, flowtable, …) are not needed for the walk
			d.i--
			start := d.i
			ts := d.restOfStatement()
			if d.peek().s == "{" || (len(ts) > 0 && ts[len(ts)-1].s == "{") {
				d.i = start
				d.skipBlock()
			}
		}
	}
}

// skipBlock skips tokens up to and including the matching "}" of the next "{".
func (d *nftDoc) skipBlock() {
	depth := 0
	for !d.eof() {
		t := d.next()
		if t.quoted {
			continue
		}
		if t.s == "{" {
			depth++
		} else if t.s == "}" {
			depth--
			if depth <= 0 {
				return
			}
		}
	}
}

func tableWhere(t *Table) string { return string(t.Family) + " " + t.Name }

func (d *nftDoc) ensureSet(t *Table, name string, isMap bool, line int) *Set {
	s := t.Sets[name]
	if s == nil {
		s = &Set{Name: name, Map: isMap, Line: line}
		t.Sets[name] = s
	}
	return s
}

// chainBody parses the inside of a chain block up to its "}". In list output (block=true) every other line is a rule.
func (d *nftDoc) chainBody(c *Chain, block bool) {
	for {
		d.skipSeparators()
		if d.eof() {
			return
		}
		t := d.peek()
		if t.s == "}" && !t.quoted {
			d.next()
			return
		}
		switch t.s {
		case "type":
			d.next()
			d.chainType(c)
			continue
		case "policy":
			d.next()
			c.Policy = d.next().s
			continue
		case "comment":
			d.next()
			d.next()
			continue
		case "devices", "device":
			d.restOfStatement()
			continue
		}
		if !block {
			d.skipStatement("unexpected chain attribute")
			continue
		}
		ts := d.restOfStatement()
		d.addRule(c, ts, t.line, false, 0)
	}
}

// chainType parses "filter hook prerouting [device X] priority -110" (after "type").
func (d *nftDoc) chainType(c *Chain) {
	line := d.line()
	ts := d.restOfStatement()
	if len(ts) < 1 {
		return
	}
	c.Base = false
	c.Type = ts[0].s
	for i := 1; i < len(ts); i++ {
		switch ts[i].s {
		case "hook":
			if i+1 < len(ts) {
				c.Hook = Hook(ts[i+1].s)
				c.Base = true
				i++
			}
		case "device":
			if i+1 < len(ts) {
				c.Device = ts[i+1].s
				i++
			}
		case "priority":
			var expr []string
			for j := i + 1; j < len(ts) && ts[j].s != "policy" && ts[j].s != ";"; j++ {
				expr = append(expr, ts[j].s)
				i = j
			}
			pr, ok := parsePriority(strings.Join(expr, " "))
			if !ok {
				d.rs.problem(line, chainWhere(c), joinToks(ts), "chain priority %q is not understood; using 0", strings.Join(expr, " "))
			}
			c.Priority = pr
		case "policy":
			if i+1 < len(ts) {
				c.Policy = ts[i+1].s
				i++
			}
		}
	}
}

func chainWhere(c *Chain) string { return tableWhere(c.Table) + " " + c.Name }

var namedPriorities = map[string]int{"raw": PriorityRaw, "mangle": PriorityMangle, "dstnat": PriorityDstNAT,
	"filter": PriorityFilter, "security": PrioritySecurity, "srcnat": PrioritySrcNAT}

// parsePriority reads "-110", "dstnat", "dstnat + 10", "filter - 5", "mangle-1".
func parsePriority(s string) (int, bool) {
	s = strings.ReplaceAll(s, " ", "")
	if v, err := strconv.Atoi(s); err == nil {
		return v, true
	}
	for name, base := range namedPriorities {
		if rest, ok := strings.CutPrefix(s, name); ok {
			if rest == "" {
				return base, true
			}
			if v, err := strconv.Atoi(rest); err == nil {
				return base + v, true
			}
		}
	}
	return 0, false
}

// setBody parses the inside of a set/map block (list output or add set { … }) up to its "}".
func (d *nftDoc) setBody(t *Table, s *Set) {
	for {
		d.skipSeparators()
		if d.eof() {
			return
		}
		tk := d.next()
		switch tk.s {
		case "}":
			return
		case "type":
			ts := d.restOfStatement()
			s.KeyTypes, s.DataType = nil, ""
			inData := false
			for _, x := range ts {
				switch x.s {
				case ".":
				case ":":
					inData = true
				default:
					if inData {
						if s.DataType != "" {
							s.DataType += " . "
						}
						s.DataType += x.s
					} else {
						s.KeyTypes = append(s.KeyTypes, x.s)
					}
				}
			}
		case "typeof":
			ts := d.restOfStatement()
			key, data := ts, []tok(nil)
			for i, x := range ts {
				if x.s == ":" {
					key, data = ts[:i], ts[i+1:]
				}
			}
			s.KeyTypes = typeofTypes(key)
			if data != nil {
				if len(data) == 1 && data[0].s == "verdict" {
					s.DataType = "verdict"
				} else {
					s.DataType = strings.Join(typeofTypes(data), " . ")
				}
			}
			if len(s.KeyTypes) == 0 {
				d.rs.problem(tk.line, tableWhere(t)+" "+s.Name, joinToks(ts), "typeof expression is not understood")
			}
		case "flags":
			ts := d.restOfStatement()
			for _, x := range ts {
				if x.s != "," {
					s.Flags = append(s.Flags, x.s)
				}
			}
		case "elements":
			if d.peek().s == "=" {
				d.next()
			}
			d.elements(t, s, tk.line)
		default:
			d.restOfStatement()
		}
	}
}

func typeofTypes(ts []tok) []string {
	p := &ruleParser{t: ts}
	keys, err := p.selectors()
	if err != nil {
		return nil
	}
	var out []string
	for _, k := range keys {
		n := selectorType(k)
		if n == "" {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// elements parses "{ e, e, … }" into the set.
func (d *nftDoc) elements(t *Table, s *Set, line int) {
	start := d.i
	if d.peek().s != "{" {
		d.skipStatement("expected { after elements")
		return
	}
	// find the matching brace
	depth := 0
	end := d.i
	for end < len(d.t) {
		x := d.t[end]
		if !x.quoted && x.s == "{" {
			depth++
		} else if !x.quoted && x.s == "}" {
			depth--
			if depth == 0 {
				break
			}
		}
		end++
	}
	if end >= len(d.t) {
		d.i = len(d.t)
		d.rs.problem(line, tableWhere(t)+" "+s.Name, "elements", "unterminated element list")
		return
	}
	body := make([]tok, 0, end-start+1)
	for _, x := range d.t[start : end+1] {
		if !x.nl {
			body = append(body, x)
		}
	}
	d.i = end + 1
	keys, data, ok := setSelectors(s)
	if !ok {
		d.rs.problem(line, tableWhere(t)+" "+s.Name, joinToks(body), "set type %q is not modelled; its elements are ignored",
			strings.Join(s.KeyTypes, " . ")+":"+s.DataType)
		return
	}
	p := &ruleParser{t: body}
	p.next() // {
	for {
		for p.peek() == "," {
			p.next()
		}
		if p.peek() == "}" || p.eof() {
			return
		}
		from := p.i
		e, err := p.element(keys, data)
		if err != nil {
			// skip to the next comma at depth 0
			for !p.eof() && p.peek() != "," && p.peek() != "}" {
				p.next()
			}
			ln := line
			if from < len(body) {
				ln = body[from].line
			}
			d.rs.problem(ln, tableWhere(t)+" "+s.Name, joinToks(body[from:p.i]), "element not understood: %v", err)
			continue
		}
		s.Elements = append(s.Elements, e)
	}
}

func setSelectors(s *Set) (keys []Selector, data []string, ok bool) {
	for _, k := range s.KeyTypes {
		sel, ok := typeSelector(k)
		if !ok {
			return nil, nil, false
		}
		keys = append(keys, sel)
	}
	if len(keys) == 0 {
		return nil, nil, false
	}
	if s.Map || s.DataType != "" {
		if s.DataType == "" {
			return nil, nil, false
		}
		for _, x := range strings.Split(s.DataType, " . ") {
			data = append(data, strings.TrimSpace(x))
		}
	}
	return keys, data, true
}

// command parses "add|create|insert|replace <object> …".
func (d *nftDoc) command(verb string, line int) {
	obj := d.next()
	switch obj.s {
	case "table":
		f := d.family()
		name := d.next().s
		d.rs.ensureTable(f, name, OriginNFT, line)
		d.restOfStatement()
	case "chain":
		f := d.family()
		t := d.rs.ensureTable(f, d.next().s, OriginNFT, line)
		c := t.ensureChain(d.next().s, line)
		c.declared = true
		if d.peek().s == "{" {
			d.next()
			d.chainBody(c, false)
		}
		d.restOfStatement()
	case "set", "map":
		f := d.family()
		t := d.rs.ensureTable(f, d.next().s, OriginNFT, line)
		s := d.ensureSet(t, d.next().s, obj.s == "map", line)
		if d.peek().s == "{" {
			d.next()
			d.setBody(t, s)
		}
		d.restOfStatement()
	case "element":
		f := d.family()
		t := d.rs.ensureTable(f, d.next().s, OriginNFT, line)
		name := d.next().s
		s := t.Sets[name]
		if s == nil {
			d.skipStatement("element for an undeclared set " + name)
			return
		}
		d.elements(t, s, line)
		d.restOfStatement()
	case "rule":
		f := d.family()
		t := d.rs.ensureTable(f, d.next().s, OriginNFT, line)
		c := t.ensureChain(d.next().s, line)
		var pos uint64
		posKind := ""
		for d.peek().s == "position" || d.peek().s == "handle" || d.peek().s == "index" {
			posKind = d.next().s
			pos, _ = strconv.ParseUint(d.next().s, 10, 64)
		}
		ts := d.restOfStatement()
		if posKind == "index" {
			// index N: insert before (insert) or after (add) the rule currently at position N
			at := int(pos)
			if verb != "insert" {
				at++
			}
			d.addRuleAt(c, ts, line, at)
			return
		}
		d.addRule(c, ts, line, verb == "insert", pos)
	default:
		d.skipStatement(verb + " " + obj.s + " is not needed for the walk")
	}
}

func (d *nftDoc) addRule(c *Chain, ts []tok, line int, insert bool, pos uint64) {
	var handle uint64
	clean := ts[:0:0]
	for _, x := range ts {
		if x.handle != 0 {
			handle = x.handle
			continue
		}
		if x.nl {
			continue
		}
		clean = append(clean, x)
	}
	if len(clean) == 0 {
		return
	}
	exprs, comment := parseNFTRule(clean)
	r := &Rule{Chain: c, Handle: handle, Line: line, Text: joinToks(clean), Comment: comment, Exprs: exprs}
	if u := r.Unknown(); u != "" {
		d.rs.problem(line, chainWhere(c), r.Text, "%s", u)
	}
	at := len(c.Rules)
	if insert {
		at = 0
	}
	if pos != 0 {
		for i, o := range c.Rules {
			if o.Handle == pos {
				at = i
				if !insert {
					at = i + 1
				}
			}
		}
	}
	d.insertRule(c, r, at)
}

func (d *nftDoc) addRuleAt(c *Chain, ts []tok, line int, at int) {
	n := len(c.Rules)
	d.addRule(c, ts, line, false, 0)
	if len(c.Rules) == n+1 && at < n {
		r := c.Rules[n]
		c.Rules = c.Rules[:n]
		d.insertRule(c, r, at)
	}
}

func (d *nftDoc) insertRule(c *Chain, r *Rule, at int) {
	if at < 0 {
		at = 0
	}
	if at > len(c.Rules) {
		at = len(c.Rules)
	}
	c.Rules = append(c.Rules, nil)
	copy(c.Rules[at+1:], c.Rules[at:])
	c.Rules[at] = r
	d.rs.final = false
}
