package netfilter

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ParseNFTJSON parses `nft -j list ruleset` output. Rules are rendered back into nft syntax (what `nft list ruleset`
// would print) and parsed by the same rule parser as text dumps, so both formats share one meaning. JSON has no
// lines: problems name the rule by its handle. Malformed JSON is an error; anything else is a Problem.
func ParseNFTJSON(data []byte) (*Ruleset, error) {
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("nft JSON: %w (expected the output of `nft -j list ruleset`)", err)
	}
	rs := &Ruleset{}
	type pendingElems struct {
		t    *Table
		s    *Set
		elem []any
	}
	var pend []pendingElems
	for i, obj := range doc.Nftables {
		for kind, raw := range obj {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				rs.problem(0, "", kind, "object %d is not a JSON object", i)
				continue
			}
			fam := Family(str(m["family"]))
			switch kind {
			case "metainfo":
			case "table":
				rs.ensureTable(fam, str(m["name"]), OriginNFT, 0)
			case "chain":
				t := rs.ensureTable(fam, str(m["table"]), OriginNFT, 0)
				c := t.ensureChain(str(m["name"]), 0)
				c.declared = true
				if h := str(m["hook"]); h != "" {
					c.Base, c.Hook, c.Type = true, Hook(h), str(m["type"])
					c.Priority = int(num(m["prio"]))
					if p, ok := m["prio"].(string); ok {
						c.Priority, _ = parsePriority(p)
					}
					if p := str(m["policy"]); p != "" {
						c.Policy = p
					}
					c.Device = str(m["dev"])
				}
			case "set", "map":
				t := rs.ensureTable(fam, str(m["table"]), OriginNFT, 0)
				s := &Set{Name: str(m["name"]), Map: kind == "map"}
				t.Sets[s.Name] = s
				switch ty := m["type"].(type) {
				case string:
					s.KeyTypes = []string{ty}
				case []any:
					for _, x := range ty {
						s.KeyTypes = append(s.KeyTypes, str(x))
					}
				default:
					rs.problem(0, tableWhere(t)+" "+s.Name, kind, "set type is not understood (typeof sets in JSON are not modelled)")
				}
				switch d := m["map"].(type) {
				case string:
					s.DataType = d
				case []any:
					var parts []string
					for _, x := range d {
						parts = append(parts, str(x))
					}
					s.DataType = strings.Join(parts, " . ")
				}
				if fl, ok := m["flags"].([]any); ok {
					for _, x := range fl {
						s.Flags = append(s.Flags, str(x))
					}
				}
				if el, ok := m["elem"].([]any); ok {
					pend = append(pend, pendingElems{t, s, el})
				}
			case "element":
				t := rs.ensureTable(fam, str(m["table"]), OriginNFT, 0)
				if s := t.Sets[str(m["name"])]; s != nil {
					if el, ok := m["elem"].([]any); ok {
						pend = append(pend, pendingElems{t, s, el})
					}
				}
			case "rule":
				t := rs.ensureTable(fam, str(m["table"]), OriginNFT, 0)
				c := t.ensureChain(str(m["chain"]), 0)
				r := &Rule{Chain: c, Handle: uint64(num(m["handle"])), Comment: str(m["comment"])}
				exprs, _ := m["expr"].([]any)
				var parts []string
				var bad error
				for _, e := range exprs {
					s, err := jsonStmt(e)
					if err != nil && bad == nil {
						bad = err
					}
					parts = append(parts, s)
				}
				r.Text = strings.Join(parts, " ")
				if r.Comment != "" {
					r.Text += " comment " + strconv.Quote(r.Comment)
				}
				r.Exprs, _ = parseNFTRule(lexNFTLine(r.Text))
				if bad != nil {
					// keep the understood prefix, then stop: never guess past what JSON said
					r.Exprs = append(r.Exprs[:0:0], r.Exprs...)
				}
				if u := r.Unknown(); u != "" {
					rs.problem(0, fmt.Sprintf("%s handle %d", chainWhere(c), r.Handle), r.Text, "%s", u)
				}
				c.Rules = append(c.Rules, r)
			default:
				// counters, quotas, flowtables, ct helpers …: not needed for the walk
			}
		}
	}
	for _, p := range pend {
		var parts []string
		for _, e := range p.elem {
			s, err := jsonElem(e)
			if err != nil {
				rs.problem(0, tableWhere(p.t)+" "+p.s.Name, fmt.Sprint(e), "element not understood: %v", err)
				continue
			}
			parts = append(parts, s)
		}
		d := &nftDoc{rs: rs, t: lexNFTLine("{ " + strings.Join(parts, ", ") + " }")}
		d.elements(p.t, p.s, 0)
	}
	rs.finalize()
	return rs, nil
}

func lexNFTLine(s string) []tok {
	ts := lexNFT(s)
	out := ts[:0]
	for _, t := range ts {
		if !t.nl {
			out = append(out, t)
		}
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// jsonStmt renders one JSON statement as nft text.
func jsonStmt(e any) (string, error) {
	m, ok := e.(map[string]any)
	if !ok || len(m) != 1 {
		return "unknown-json", fmt.Errorf("statement is not a one-key object")
	}
	for k, v := range m {
		a, _ := v.(map[string]any)
		switch k {
		case "match":
			l, err1 := jsonExpr(a["left"])
			r, err2 := jsonExpr(a["right"])
			op := str(a["op"])
			if err1 != nil || err2 != nil {
				return "unknown-json-match", fmt.Errorf("match: %v %v", err1, err2)
			}
			switch op {
			case "==", "in":
				return l + " " + r, nil
			}
			return l + " " + op + " " + r, nil
		case "accept", "drop", "continue", "return":
			return k, nil
		case "jump", "goto":
			return k + " " + str(a["target"]), nil
		case "reject":
			s := "reject"
			if t := str(a["type"]); t != "" {
				if t == "tcp reset" {
					s += " with tcp reset"
				} else if x := str(a["expr"]); x != "" {
					s += " with " + t + " " + x
				}
			}
			return s, nil
		case "counter":
			return "counter", nil
		case "log":
			return "log", nil
		case "notrack":
			return "notrack", nil
		case "limit":
			s := "limit rate "
			if b, _ := a["inv"].(bool); b {
				s += "over "
			}
			return s + strconv.FormatFloat(num(a["rate"]), 'f', -1, 64) + "/" + str(a["per"]), nil
		case "mangle":
			key, err1 := jsonExpr(a["key"])
			val, err2 := jsonExpr(a["value"])
			if err1 != nil || err2 != nil {
				return "unknown-json-mangle", fmt.Errorf("mangle: %v %v", err1, err2)
			}
			return key + " set " + val, nil
		case "dnat", "snat", "tproxy":
			s := k
			if f := str(a["family"]); f != "" {
				s += " " + f
			}
			if mp, ok := a["addr"].(map[string]any); ok {
				if _, isMap := mp["map"]; isMap {
					x, err := jsonExpr(a["addr"])
					if err != nil {
						return "unknown-json-" + k, err
					}
					return s + " to " + x, nil
				}
			}
			addr := str(a["addr"])
			if strings.Contains(addr, ":") && a["port"] != nil {
				addr = "[" + addr + "]"
			}
			s += " to " + addr
			if p, ok := a["port"]; ok {
				x, err := jsonExpr(p)
				if err != nil {
					return "unknown-json-" + k, err
				}
				s += ":" + x
			}
			return s, nil
		case "masquerade", "redirect":
			s := k
			if p, ok := a["port"]; ok {
				x, err := jsonExpr(p)
				if err != nil {
					return "unknown-json-" + k, err
				}
				s += " to :" + x
			}
			return s, nil
		case "vmap":
			key, err1 := jsonExpr(a["key"])
			data, err2 := jsonExpr(a["data"])
			if err1 != nil || err2 != nil {
				return "unknown-json-vmap", fmt.Errorf("vmap: %v %v", err1, err2)
			}
			return key + " vmap " + data, nil
		case "set":
			el, err := jsonExpr(a["elem"])
			if err != nil {
				return "unknown-json-set", err
			}
			return str(a["op"]) + " " + str(a["set"]) + " { " + el + " }", nil
		case "xt":
			return "xt " + str(a["type"]) + " " + str(a["name"]), fmt.Errorf("iptables-nft compat expression")
		}
		return "unknown-json-" + k, fmt.Errorf("statement %q is not modelled", k)
	}
	return "", nil
}

// jsonExpr renders one JSON expression as nft text.
func jsonExpr(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", fmt.Errorf("missing expression")
	case string:
		if strings.ContainsAny(x, " \"") || x == "" {
			return strconv.Quote(x), nil
		}
		return x, nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		if x {
			return "1", nil
		}
		return "0", nil
	case []any: // flag lists: ct state { established, related }
		var parts []string
		for _, e := range x {
			s, err := jsonExpr(e)
			if err != nil {
				return "", err
			}
			parts = append(parts, s)
		}
		return "{ " + strings.Join(parts, ", ") + " }", nil
	case map[string]any:
		if len(x) != 1 {
			return "", fmt.Errorf("expression object with %d keys", len(x))
		}
		for k, val := range x {
			a, _ := val.(map[string]any)
			switch k {
			case "payload":
				if p := str(a["protocol"]); p != "" {
					return p + " " + str(a["field"]), nil
				}
				return "", fmt.Errorf("raw payload expressions are not modelled")
			case "meta":
				return "meta " + str(a["key"]), nil
			case "ct":
				if d := str(a["dir"]); d != "" {
					return "ct " + d + " " + str(a["key"]), nil
				}
				return "ct " + str(a["key"]), nil
			case "fib":
				var flags []string
				switch f := a["flags"].(type) {
				case string:
					flags = []string{f}
				case []any:
					for _, e := range f {
						flags = append(flags, str(e))
					}
				}
				return "fib " + strings.Join(flags, " . ") + " " + str(a["result"]), nil
			case "numgen":
				s := "numgen " + str(a["mode"]) + " mod " + strconv.FormatFloat(num(a["mod"]), 'f', -1, 64)
				if o := num(a["offset"]); o != 0 {
					s += " offset " + strconv.FormatFloat(o, 'f', -1, 64)
				}
				return s, nil
			case "concat":
				l, _ := val.([]any)
				var parts []string
				for _, e := range l {
					s, err := jsonExpr(e)
					if err != nil {
						return "", err
					}
					parts = append(parts, s)
				}
				return strings.Join(parts, " . "), nil
			case "prefix":
				return str(a["addr"]) + "/" + strconv.FormatFloat(num(a["len"]), 'f', -1, 64), nil
			case "range":
				l, _ := val.([]any)
				if len(l) != 2 {
					return "", fmt.Errorf("range needs two ends")
				}
				lo, err1 := jsonExpr(l[0])
				hi, err2 := jsonExpr(l[1])
				if err1 != nil || err2 != nil {
					return "", fmt.Errorf("bad range")
				}
				return lo + "-" + hi, nil
			case "set":
				switch l := val.(type) {
				case []any:
					var parts []string
					for _, e := range l {
						s, err := jsonElem(e)
						if err != nil {
							return "", err
						}
						parts = append(parts, s)
					}
					return "{ " + strings.Join(parts, ", ") + " }", nil
				case string:
					return l, nil
				default:
					s, err := jsonExpr(val)
					return "{ " + s + " }", err
				}
			case "map":
				key, err1 := jsonExpr(a["key"])
				data, err2 := jsonExpr(a["data"])
				if err1 != nil || err2 != nil {
					return "", fmt.Errorf("map: %v %v", err1, err2)
				}
				return key + " map " + data, nil
			case "&", "|", "^", "<<", ">>":
				l, _ := val.([]any)
				var parts []string
				for _, e := range l {
					s, err := jsonExpr(e)
					if err != nil {
						return "", err
					}
					parts = append(parts, s)
				}
				return strings.Join(parts, " "+k+" "), nil
			case "accept", "drop", "continue", "return":
				return k, nil
			case "jump", "goto":
				return k + " " + str(a["target"]), nil
			case "elem":
				return jsonElem(x)
			}
			return "", fmt.Errorf("expression %q is not modelled", k)
		}
	}
	return "", fmt.Errorf("unexpected JSON value %v", v)
}

// jsonElem renders a set element: a value, [key, data] for maps, or {"elem": {"val": …, "comment": …}}.
func jsonElem(e any) (string, error) {
	switch x := e.(type) {
	case []any:
		if len(x) != 2 {
			return "", fmt.Errorf("map element needs key and value")
		}
		k, err1 := jsonElem(x[0])
		d, err2 := jsonExpr(x[1])
		if err1 != nil || err2 != nil {
			return "", fmt.Errorf("bad map element")
		}
		return k + " : " + d, nil
	case map[string]any:
		if el, ok := x["elem"].(map[string]any); ok {
			s, err := jsonExpr(el["val"])
			if err != nil {
				return "", err
			}
			if c := str(el["comment"]); c != "" {
				s += " comment " + strconv.Quote(c)
			}
			return s, nil
		}
	}
	return jsonExpr(e)
}

var _ = sort.Strings
