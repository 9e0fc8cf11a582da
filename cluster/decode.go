package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// sink receives every decoded object with its location. Problems go to diag.
type sink interface {
	object(obj runtime.Object, loc Location)
	custom(u *unstructured.Unstructured, loc Location)
	diag(d Diagnostic)
}

// decodeStream reads one source and hands every object to s. It never holds more than one document (or one item of
// a List) in memory: JSON is read with a token stream, YAML is split into documents and `items:` entries by lines.
func decodeStream(name string, r io.Reader, s sink) error {
	br := bufio.NewReaderSize(r, 256<<10)
	// Skip a UTF-8 BOM and leading whitespace to tell JSON from YAML.
	if bom, _ := br.Peek(3); bytes.Equal(bom, []byte{0xEF, 0xBB, 0xBF}) {
		br.Discard(3)
	}
	for {
		c, err := br.Peek(1)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch c[0] {
		case ' ', '\t', '\r', '\n':
			br.ReadByte()
			continue
		case '{', '[':
			return decodeJSONStream(name, br, s)
		}
		return decodeYAMLStream(name, br, s)
	}
}

// ---- JSON ----

func decodeJSONStream(name string, r io.Reader, s sink) error {
	sc := newJSONScanner(r)
	bat := &batcher{s: s}
	defer bat.flush()
	doc := 0
	for {
		c := sc.peek()
		if c == 0 {
			return sc.err
		}
		if c == '-' {
			// JSON followed by a `---` line: the file is a YAML stream whose first documents are JSON (valid YAML).
			// Hand the rest to the YAML splitter, keeping line numbers.
			bat.flush()
			rest := io.MultiReader(bytes.NewReader(append([]byte(nil), sc.buf[sc.pos:]...)), sc.r)
			return decodeYAMLFrom(name, bufio.NewReaderSize(rest, 256<<10), s, doc, sc.line-1)
		}
		doc++
		loc := Location{File: name, Line: sc.line, Doc: doc}
		switch c {
		case '[':
			sc.advance(1)
			if !scanJSONArray(sc, loc, s, bat, nil) {
				return nil
			}
		case '{':
			sc.advance(1)
			if !scanJSONObject(sc, loc, s, bat) {
				return nil
			}
		default:
			bat.flush()
			s.diag(Diagnostic{Severity: SeverityError, Location: loc,
				Message: fmt.Sprintf("expected a JSON object or array, found %q; the rest of the file was not loaded", c)})
			return nil
		}
	}
}

func jsonStop(sc *jsonScanner, loc Location, s sink, bat *batcher, err error) bool {
	bat.flush()
	loc.Line = sc.line
	s.diag(Diagnostic{Severity: SeverityError, Location: loc, Message: fmt.Sprintf("invalid JSON: %v; the rest of this file was not loaded", err)})
	return false
}

// scanJSONArray queues each element of an array whose '[' was consumed.
func scanJSONArray(sc *jsonScanner, loc Location, s sink, bat *batcher, onPending func(pendingItem)) bool {
	if sc.peek() == ']' {
		sc.advance(1)
		return true
	}
	for item := 1; ; item++ {
		v, line, err := sc.value()
		if err != nil {
			return jsonStop(sc, loc, s, bat, err)
		}
		iloc := loc
		iloc.Line, iloc.Item = line, item
		bat.add(append([]byte(nil), v...), false, iloc, onPending)
		switch sc.peek() {
		case ',':
			sc.advance(1)
		case ']':
			sc.advance(1)
			return true
		default:
			return jsonStop(sc, loc, s, bat, errors.New("expected ',' or ']' after an array element"))
		}
	}
}

type rawField struct {
	key string
	val []byte
}

// scanJSONObject reads one top-level object whose '{' was consumed. A top-level "items" array (a List) is queued
// item by item; any other object is reassembled and decoded whole. It returns false when the stream is broken.
func scanJSONObject(sc *jsonScanner, loc Location, s sink, bat *batcher) bool {
	var fields []rawField
	isList := false
	var pending []pendingItem // items without kind, decoded once the list's kind is known
	if sc.peek() == '}' {
		sc.advance(1)
	} else {
		for {
			k, err := sc.key()
			if err != nil {
				return jsonStop(sc, loc, s, bat, err)
			}
			if k == "items" && (sc.peek() == '[' || sc.peek() == 'n') {
				isList = true
				if sc.peek() == 'n' {
					if _, _, err := sc.value(); err != nil {
						return jsonStop(sc, loc, s, bat, err)
					}
				} else {
					sc.advance(1)
					if !scanJSONArray(sc, loc, s, bat, func(p pendingItem) { pending = append(pending, p) }) {
						return false
					}
				}
			} else {
				v, _, err := sc.value()
				if err != nil {
					return jsonStop(sc, loc, s, bat, err)
				}
				fields = append(fields, rawField{k, append([]byte(nil), v...)})
			}
			c := sc.peek()
			if c == ',' {
				sc.advance(1)
				continue
			}
			if c == '}' {
				sc.advance(1)
				break
			}
			return jsonStop(sc, loc, s, bat, errors.New("expected ',' or '}' after an object member"))
		}
	}
	bat.flush()
	if isList {
		var tm metav1.TypeMeta
		for _, f := range fields {
			switch f.key {
			case "kind":
				json.Unmarshal(f.val, &tm.Kind)
			case "apiVersion":
				json.Unmarshal(f.val, &tm.APIVersion)
			}
		}
		decodePending(pending, tm, s)
		return true
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
		buf.Write(k)
		buf.WriteByte(':')
		buf.Write(f.val)
	}
	buf.WriteByte('}')
	decodeObject(buf.Bytes(), loc, nil, s)
	return true
}

type pendingItem struct {
	raw []byte
	loc Location
}

// decodePending decodes List items that carry no kind (as the API server returns them in a typed PodList, say),
// taking the kind from the list's own kind.
func decodePending(items []pendingItem, list metav1.TypeMeta, s sink) {
	if len(items) == 0 {
		return
	}
	kind := strings.TrimSuffix(list.Kind, "List")
	if kind == "" || kind == list.Kind {
		for _, it := range items {
			s.diag(Diagnostic{Severity: SeverityError, Location: it.loc, Field: "kind",
				Message: fmt.Sprintf("list item has no kind and the list (kind %q) does not say which it holds; skipped", list.Kind)})
		}
		return
	}
	gv, _ := schema.ParseGroupVersion(list.APIVersion)
	def := gv.WithKind(kind)
	for _, it := range items {
		decodeObject(it.raw, it.loc, &def, s)
	}
}

// hasKind reports whether a JSON object has a non-empty "kind" key at its top level, without decoding it all.
func hasKind(raw []byte) bool { return sniffTypeMeta(raw).Kind != "" }

// ---- YAML ----

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

// decodeYAMLStream splits a YAML stream into documents at `---` lines. Inside a document, a top-level `items:` block
// (what `kubectl get -o yaml` prints) is split further into its entries so that a huge List is never held whole and
// every item keeps its own line number.
func decodeYAMLStream(name string, r *bufio.Reader, s sink) error {
	return decodeYAMLFrom(name, r, s, 1, 0)
}

// decodeYAMLFrom splits YAML starting in document doc after line lines of the file.
func decodeYAMLFrom(name string, r *bufio.Reader, s sink, doc, lines int) error {
	y := yamlSplitter{name: name, s: s, doc: doc, bat: &batcher{s: s}}
	line := lines
	for {
		b, err := r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A very long line: collect it whole.
			long := append([]byte(nil), b...)
			for err == bufio.ErrBufferFull {
				b, err = r.ReadSlice('\n')
				long = append(long, b...)
			}
			b = long
		}
		if len(b) > 0 {
			line++
			y.line(b, line)
		}
		if err == io.EOF {
			y.flushDoc()
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type yamlSplitter struct {
	name string
	s    sink
	doc  int

	shell     bytes.Buffer // the document outside its items block
	shellLine int          // first line of the document
	inItems   bool
	itemsSeen bool
	indent    int // column of the "- " that starts each item; -1 until the first item
	item      bytes.Buffer
	itemLine  int
	nItems    int
	pending   []pendingItem
	bat       *batcher
}

func isDocSep(b []byte) bool {
	if !bytes.HasPrefix(b, []byte("---")) {
		return false
	}
	rest := b[3:]
	return len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r'
}

func blankOrComment(b []byte) bool {
	t := bytes.TrimSpace(b)
	return len(t) == 0 || t[0] == '#'
}

func leadingSpaces(b []byte) int {
	n := 0
	for n < len(b) && b[n] == ' ' {
		n++
	}
	return n
}

func (y *yamlSplitter) line(b []byte, n int) {
	if isDocSep(b) {
		y.flushDoc()
		y.doc++
		return
	}
	if bytes.Equal(bytes.TrimRight(b, " \t\r\n"), []byte("...")) {
		return // document end marker
	}
	if y.inItems {
		if blankOrComment(b) {
			if y.item.Len() > 0 {
				y.item.WriteString("\n")
			}
			return
		}
		sp := leadingSpaces(b)
		if y.indent < 0 && (bytes.HasPrefix(b[sp:], []byte("- ")) || isDash(b[sp:])) {
			y.indent = sp
		}
		switch {
		case y.indent >= 0 && sp == y.indent && (bytes.HasPrefix(b[sp:], []byte("- ")) || isDash(b[sp:])):
			y.flushItem()
			y.itemLine = n
			if len(b) > sp+2 {
				y.item.Write(b[sp+2:])
			} else {
				y.item.WriteString("\n")
			}
			return
		case y.indent >= 0 && sp >= y.indent+2:
			y.item.Write(b[y.indent+2:])
			return
		case sp == 0:
			y.flushItem()
			y.inItems = false
		default:
			// Unexpected indentation inside items: give up splitting; keep it as part of the item so the YAML
			// parser reports the real problem with a line number.
			y.item.Write(b)
			return
		}
	}
	if y.shell.Len() == 0 && blankOrComment(b) {
		return
	}
	if y.shell.Len() == 0 {
		y.shellLine = n
	}
	if t := bytes.TrimRight(b, " \t\r\n"); bytes.Equal(t, []byte("items:")) && !y.itemsSeen {
		y.inItems, y.itemsSeen, y.indent = true, true, -1
		// Keep a placeholder so the shell still parses as a mapping with an (empty) items key.
		y.shell.WriteString("items: []\n")
		return
	}
	y.shell.Write(b)
}

func isDash(b []byte) bool {
	t := bytes.TrimRight(b, " \t\r\n")
	return len(t) == 1 && t[0] == '-'
}

func (y *yamlSplitter) flushItem() {
	if y.itemLine == 0 {
		return
	}
	y.nItems++
	loc := Location{File: y.name, Line: y.itemLine, Doc: y.doc, Item: y.nItems}
	data := append([]byte(nil), y.item.Bytes()...)
	y.itemLine = 0
	y.item.Reset()
	y.bat.add(data, true, loc, func(p pendingItem) { y.pending = append(y.pending, p) })
}

func (y *yamlSplitter) flushDoc() {
	y.flushItem()
	y.bat.flush()
	defer func() {
		y.shell.Reset()
		y.inItems, y.itemsSeen, y.nItems, y.pending = false, false, 0, nil
	}()
	if y.shell.Len() == 0 {
		return
	}
	loc := Location{File: y.name, Line: y.shellLine, Doc: y.doc}
	j, err := yaml.YAMLToJSON(y.shell.Bytes())
	if err != nil {
		y.s.diag(yamlDiag(loc, err))
		return
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return
	}
	if y.itemsSeen {
		var tm metav1.TypeMeta
		json.Unmarshal(j, &tm)
		decodePending(y.pending, tm, y.s)
		return
	}
	decodeObject(j, loc, nil, y.s)
}

// yamlDiag rewrites the parser's document-relative line into a file line.
func yamlDiag(loc Location, err error) Diagnostic {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "error converting YAML to JSON: ")
	if m := yamlLineRE.FindStringSubmatchIndex(msg); m != nil && loc.Line > 0 {
		rel, _ := strconv.Atoi(msg[m[2]:m[3]])
		loc.Line += rel - 1
		msg = msg[:m[0]] + msg[m[1]:]
		msg = strings.Replace(msg, "yaml: : ", "yaml: ", 1)
	}
	return Diagnostic{Severity: SeverityError, Location: loc, Message: "invalid YAML: " + msg + "; this document was skipped"}
}

// ---- objects ----

// decodeObject turns one JSON object into a typed object (scheme kinds), an unstructured custom resource (unknown
// kinds), or a diagnostic. Nested Lists are expanded.
func decodeObject(data []byte, loc Location, defaults *schema.GroupVersionKind, s sink) {
	obj, err := fastDecode(data, defaults)
	if err != nil {
		switch {
		case runtime.IsNotRegisteredError(err):
			u := &unstructured.Unstructured{}
			if uerr := u.UnmarshalJSON(data); uerr != nil {
				s.diag(Diagnostic{Severity: SeverityError, Location: loc, Message: "cannot decode object: " + uerr.Error()})
				return
			}
			if u.IsList() {
				u.EachListItem(func(o runtime.Object) error {
					b, _ := json.Marshal(o)
					decodeObject(b, loc, nil, s)
					return nil
				})
				return
			}
			s.custom(u, loc)
		case runtime.IsMissingKind(err) && !hasAPIVersion(data):
			// Neither apiVersion nor kind: not a Kubernetes object at all (a tool's output lying next to the
			// manifests, a values file). Worth saying, not an error in the manifests.
			s.diag(Diagnostic{Severity: SeverityWarning, Location: loc, Message: notK8sMessage})
		case runtime.IsMissingKind(err):
			s.diag(Diagnostic{Severity: SeverityError, Location: loc, Field: "kind", Message: "object has no kind; skipped"})
		case runtime.IsMissingVersion(err):
			s.diag(Diagnostic{Severity: SeverityError, Location: loc, Field: "apiVersion", Message: "object has no apiVersion; skipped"})
		default:
			s.diag(Diagnostic{Severity: SeverityError, Location: loc, Object: objectHint(data),
				Message: "cannot decode: " + trimDecodeErr(err) + "; skipped"})
		}
		return
	}
	if l, ok := obj.(*corev1.List); ok {
		for i, it := range l.Items {
			iloc := loc
			iloc.Item = i + 1
			decodeObject(it.Raw, iloc, nil, s)
		}
		return
	}
	if meta.IsListType(obj) {
		items, err := meta.ExtractList(obj)
		if err != nil {
			s.diag(Diagnostic{Severity: SeverityError, Location: loc, Message: "cannot read list items: " + err.Error()})
			return
		}
		for i, it := range items {
			iloc := loc
			iloc.Item = i + 1
			s.object(it, iloc)
		}
		return
	}
	s.object(obj, loc)
}

func trimDecodeErr(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "json: "); i >= 0 {
		msg = msg[i+len("json: "):]
	}
	return msg
}

// objectHint names an object that failed to decode, as well as its raw form allows.
func objectHint(data []byte) string {
	var o struct {
		Kind     string `json:"kind"`
		Metadata struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if json.Unmarshal(data, &o) != nil {
		return ""
	}
	if o.Metadata.Namespace != "" {
		return o.Kind + " " + o.Metadata.Namespace + "/" + o.Metadata.Name
	}
	return strings.TrimSpace(o.Kind + " " + o.Metadata.Name)
}

const notK8sMessage = "not a Kubernetes object (no apiVersion or kind); skipped"

func hasAPIVersion(data []byte) bool {
	var tm struct {
		APIVersion string `json:"apiVersion"`
	}
	json.Unmarshal(data, &tm)
	return tm.APIVersion != ""
}

// fastDecode decodes a typed object straight into the scheme's Go type, after finding its kind with a byte scan.
// It is what the universal deserializer does for JSON without its second full parse to find the kind; anything
// unusual (no kind, an unregistered kind) falls back to the universal deserializer for its exact errors.
func fastDecode(data []byte, defaults *schema.GroupVersionKind) (kruntime.Object, error) {
	gvk := sniffTypeMeta(data)
	if gvk.Kind == "" && defaults != nil {
		gvk = *defaults
	}
	if gvk.Kind != "" && gvk.Version != "" && Scheme.Recognizes(gvk) {
		obj, err := Scheme.New(gvk)
		if err == nil {
			if err := sigsjson.UnmarshalCaseSensitivePreserveInts(data, obj); err != nil {
				return nil, err
			}
			obj.GetObjectKind().SetGroupVersionKind(gvk)
			return obj, nil
		}
	}
	obj, _, err := codecs.UniversalDeserializer().Decode(data, defaults, nil)
	return obj, err
}
