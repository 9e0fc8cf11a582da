package gen

import (
	"encoding/json"
	"reflect"
	"testing"

	sigyaml "sigs.k8s.io/yaml"
)

// roundTrip transcodes JSON to YAML with jsonToYAML and reads it back with sigs.k8s.io/yaml (the
// reader Kubernetes tools use); the value must come back unchanged.
func roundTrip(t *testing.T, in string) string {
	t.Helper()
	y, err := jsonToYAML(nil, []byte(in))
	if err != nil {
		t.Fatalf("jsonToYAML(%s): %v", in, err)
	}
	back, err := sigyaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("YAML does not parse: %v\n%s", err, y)
	}
	var want, got any
	if err := json.Unmarshal([]byte(in), &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("round trip changed the value\n in: %s\nyaml:\n%s\nout: %s", in, y, back)
	}
	return string(y)
}

func TestJSONToYAMLKeepsEveryStringAString(t *testing.T) {
	tricky := []string{
		"", " ", "a b", " lead", "trail ", "true", "True", "TRUE", "false", "yes", "no", "y", "n", "on", "off", "Off",
		"null", "Null", "~", "<<", "=", "0", "1", "-1", "+1", "007", "0x1f", "0o17", "0b101", "1_000", "1e3", "1.5", ".5", "5.",
		".inf", "-.inf", ".NaN", "inf", "1:20", "190:20:30", "2026-10-01", "2026-10-01T08:00:00Z", "10.244.0.0/24", "10.0.0.16",
		"1.2.3", "25%", "100m", "64Gi", "-conf", "--config=/var/lib/x", "-", "- x", "?", "? x", ":", ":x", "a: b", "a:b", "a:",
		"#x", "a #b", "a#b", "*ref", "&anchor", "!tag", "|", ">", "'q'", `"q"`, "%x", "@x", "`x`", ",x", "[x]", "{x}", "x]", "x}",
		"a\nb", "a\nb\n", "a\n\n", "\na", " a\nb", "line1\n  indented\n", "tab\there", "a\r\nb", "é", "\u2028", "<b>&amp;</b>",
		"{\"VNI\":1}", "$(NODE_NAME)", "None", "/dev/termination-log", "---", "--- x", "...", "-- x", "2e4545", "1e+3", "0xzz", "1:2:3",
	}
	for _, s := range tricky {
		t.Run("the string "+strconvQuote(s)+" survives as a map value, a key and a list item", func(t *testing.T) {
			b, _ := json.Marshal(map[string]any{"v": s, s: 1, "l": []string{s, s}, "nested": map[string]any{"deep": []any{map[string]string{"k": s}}}})
			roundTrip(t, string(b))
		})
	}
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func TestJSONToYAMLHandlesEveryShape(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"an object becomes a block mapping", `{"a":1,"b":"x"}`, "a: 1\nb: x\n"},
		{"nested objects indent by two", `{"a":{"b":{"c":true}}}`, "a:\n  b:\n    c: true\n"},
		{"a list sits at its key's indentation", `{"a":["u","v"]}`, "a:\n- u\n- v\n"},
		{"a list of objects puts the first key after the dash", `{"a":[{"b":1,"c":2}]}`, "a:\n- b: 1\n  c: 2\n"},
		{"empty containers are flow style", `{"a":{},"b":[],"c":[{}],"d":[[]]}`, "a: {}\nb: []\nc:\n- {}\nd:\n- []\n"},
		{"a list of lists nests", `[[1,2],[3]]`, "-\n  - 1\n  - 2\n-\n  - 3\n"},
		{"null and numbers are copied", `{"a":null,"b":-1.5e3}`, "a: null\nb: -1.5e3\n"},
		{"multi-line text is a literal block", `{"c":"l1\n  l2\n"}`, "c: |\n  l1\n    l2\n"},
		{"text without a final newline strips it", `{"c":"l1\nl2"}`, "c: |-\n  l1\n  l2\n"},
		{"key order is kept", `{"kind":"Pod","apiVersion":"v1"}`, "kind: Pod\napiVersion: v1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := roundTrip(t, tc.in); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestJSONToYAMLRejectsBrokenJSON(t *testing.T) {
	for _, in := range []string{`{"a":`, `{"a" 1}`, `{"a":1,}x`, `["x"`, `{"a":tru}`, `"unterminated`, `{1:2}`} {
		t.Run("the input "+in+" is an error, not a panic", func(t *testing.T) {
			if _, err := jsonToYAML(nil, []byte(in)); err == nil {
				t.Errorf("no error")
			}
		})
	}
}

func FuzzJSONToYAML(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `[1,"x",{"k":["v"]}]`, `{"c":"l1\nl2\n"}`, `{"":""}`, `"yes"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var v any
		if json.Unmarshal([]byte(in), &v) != nil {
			if _, err := jsonToYAML(nil, []byte(in)); err == nil && !json.Valid([]byte(in)) {
				// Accepting some invalid JSON is fine (the input is always encoding/json's output);
				// panicking is not, and reaching here means it did not panic.
				return
			}
			return
		}
		norm, _ := json.Marshal(v) // the transcoder's real input is encoding/json output
		roundTrip(t, string(norm))
	})
}
