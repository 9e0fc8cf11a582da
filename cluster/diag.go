package cluster

import (
	"errors"
	"fmt"
	"strings"
)

// Location says where an object or a problem came from: a file (or "-" for stdin, "demo:NAME" for the embedded
// demo), the 1-based line where its document or list item starts (0 when unknown), the 1-based index of the YAML/JSON
// document in the file, and for items of a `kind: List` their 1-based index in `items`.
type Location struct {
	File string `json:"file"`
	Line int    `json:"line,omitempty"`
	Doc  int    `json:"doc,omitempty"`
	Item int    `json:"item,omitempty"`
}

func (l Location) String() string {
	var b strings.Builder
	b.WriteString(l.File)
	if l.Line > 0 {
		fmt.Fprintf(&b, ":%d", l.Line)
	}
	if l.Doc > 0 {
		fmt.Fprintf(&b, " (document %d", l.Doc)
		if l.Item > 0 {
			fmt.Fprintf(&b, ", item %d", l.Item)
		}
		b.WriteString(")")
	}
	return b.String()
}

// Severity of a diagnostic. Errors are bad input that loading skipped or repaired; warnings are suspicious input
// that was loaded as given.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
	SeverityInfo    Severity = "info" // worth knowing, nothing wrong
)

// Diagnostic is one problem found in the input. It is data: loading goes on past it (unless --strict).
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Location Location `json:"location"`
	Object   string   `json:"object,omitempty"` // Kind ns/name when known
	Field    string   `json:"field,omitempty"`  // JSON path of the offending field, e.g. spec.clusterIP
	Message  string   `json:"message"`
}

func (d Diagnostic) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", d.Severity, d.Location)
	if d.Object != "" {
		fmt.Fprintf(&b, ": %s", d.Object)
	}
	if d.Field != "" {
		fmt.Fprintf(&b, " %s", d.Field)
	}
	fmt.Fprintf(&b, ": %s", d.Message)
	return b.String()
}

// LoadError is returned by Load when the tool could not do its job: no input at all, an unreadable source, or (with
// Strict) the first input error. Diagnostics holds everything found up to that point.
type LoadError struct {
	Msg         string
	Diagnostics []Diagnostic
	Empty       bool // no objects were found in any source
}

func (e *LoadError) Error() string { return e.Msg }

// IsEmptyInput reports whether err says the sources held no objects at all.
func IsEmptyInput(err error) bool {
	var le *LoadError
	return errors.As(err, &le) && le.Empty
}
