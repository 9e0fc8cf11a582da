package latency

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// SchemaV1 is the schema string of a version-1 calibration file.
const SchemaV1 = "kpath.latency.calibration/v1"

// Calibration is the file `kpath lab bench` writes: measured values that replace named constants. Constants it
// does not name keep their cited defaults. See docs/latency-model.md, "Calibration file".
//
//	{
//	  "schema": "kpath.latency.calibration/v1",
//	  "measured": "2026-11-21",                      // default date for every entry
//	  "machine": "ci-runner-3: 2 vCPU, Linux 6.18",  // default machine for every entry
//	  "constants": {
//	    "veth_hop": {"ns": 18250, "source": "kpath lab bench: UDP echo across one veth pair, RTT/2, p50 of 10000"}
//	  }
//	}
type Calibration struct {
	Schema    string                      `json:"schema"`
	Measured  string                      `json:"measured,omitempty"`
	Machine   string                      `json:"machine,omitempty"`
	Constants map[string]CalibrationEntry `json:"constants"`
}

// CalibrationEntry is one measured constant.
type CalibrationEntry struct {
	// Nanos is the measured value in nanoseconds (required, ≥ 0).
	Nanos *int64 `json:"ns"`
	// Source says what was measured and how (required).
	Source string `json:"source"`
	// Measured is the measurement date; defaults to the file's "measured".
	Measured string `json:"measured,omitempty"`
	// Machine is the machine measured on; defaults to the file's "machine".
	Machine string `json:"machine,omitempty"`
}

// Entry builds a CalibrationEntry for a measured duration.
func Entry(d time.Duration, source, measured, machine string) CalibrationEntry {
	ns := int64(d)
	return CalibrationEntry{Nanos: &ns, Source: source, Measured: measured, Machine: machine}
}

// CalibrationError is a calibration file that cannot be used. Problems lists every problem found, not only the
// first, each naming the constant (or the line and column) it is about.
type CalibrationError struct {
	File     string // path, or "calibration" when read from a reader
	Problems []string
}

func (e *CalibrationError) Error() string {
	return e.File + ": " + strings.Join(e.Problems, "; ")
}

// IsCalibrationError reports whether err is (or wraps) a *CalibrationError.
func IsCalibrationError(err error) bool {
	var ce *CalibrationError
	return errors.As(err, &ce)
}

// Load reads a calibration file and returns Default() with the constants it names replaced.
func Load(r io.Reader) (*Model, error) { return load(r, "calibration") }

// Calibrated reads the calibration file at path and returns Default() with the constants it names replaced.
func Calibrated(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("latency calibration: %w (write one with `kpath lab bench`, or run without it "+
			"to use the cited defaults)", err)
	}
	defer f.Close()
	return load(f, path)
}

func load(r io.Reader, file string) (*Model, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("%s: reading calibration: %w", file, err)
	}
	c, err := decodeCalibration(data, file)
	if err != nil {
		return nil, err
	}
	return Default().apply(c, file)
}

func decodeCalibration(data []byte, file string) (Calibration, error) {
	var c Calibration
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Calibration{}, &CalibrationError{File: file, Problems: []string{describeJSONError(data, err)}}
	}
	if dec.More() {
		off := dec.InputOffset()
		return Calibration{}, &CalibrationError{File: file, Problems: []string{
			fmt.Sprintf("%s: unexpected data after the calibration object; a file holds exactly one object", position(data, off))}}
	}
	return c, nil
}

// Apply returns a copy of m with the constants c names replaced by their measurements; m itself is not changed.
// It checks the whole file and reports every problem: the schema, unknown constant names, missing or negative
// values, missing sources, dates and machines.
func (m *Model) Apply(c Calibration) (*Model, error) { return m.apply(c, "calibration") }

func (m *Model) apply(c Calibration, file string) (*Model, error) {
	next := *m
	var problems []string
	if c.Schema != SchemaV1 {
		problems = append(problems, fmt.Sprintf("schema is %q, want %q", c.Schema, SchemaV1))
	}
	names := make([]string, 0, len(c.Constants))
	for name := range c.Constants {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		e := c.Constants[name]
		i, known := fieldIndex[name]
		if !known {
			hint := ""
			if near := closestName(name); near != "" {
				hint = fmt.Sprintf("did you mean %q? ", near)
			}
			problems = append(problems, fmt.Sprintf("unknown constant %q (%sknown: %s)", name, hint, strings.Join(Names(), ", ")))
			continue
		}
		measured, machine := firstNonEmpty(e.Measured, c.Measured), firstNonEmpty(e.Machine, c.Machine)
		var bad []string
		switch {
		case e.Nanos == nil:
			bad = append(bad, `"ns" is missing`)
		case *e.Nanos < 0:
			bad = append(bad, fmt.Sprintf(`"ns" is %d, a duration cannot be negative`, *e.Nanos))
		}
		if strings.TrimSpace(e.Source) == "" {
			bad = append(bad, `"source" is empty: say what was measured and how`)
		}
		if strings.TrimSpace(measured) == "" {
			bad = append(bad, `no measurement date: set "measured" on the entry or the file`)
		}
		if strings.TrimSpace(machine) == "" {
			bad = append(bad, `no machine: set "machine" on the entry or the file`)
		}
		if len(bad) > 0 {
			problems = append(problems, fmt.Sprintf("constant %q: %s", name, strings.Join(bad, ", ")))
			continue
		}
		dst := fields[i].get(&next)
		old := *dst
		*dst = Constant{
			Name:    name,
			Meaning: old.Meaning,
			Value:   time.Duration(*e.Nanos),
			Quality: QualityCalibrated,
			Source: Source{
				Citation:   "kpath lab measurement " + measured,
				Setup:      e.Source,
				Derivation: fmt.Sprintf("replaces the cited default %v (%s: %s)", old.Value, old.Quality, old.Source.Citation),
				Date:       measured,
				Machine:    machine,
			},
		}
	}
	if len(problems) > 0 {
		return nil, &CalibrationError{File: file, Problems: problems}
	}
	next.relabel()
	return &next, nil
}

// Calibration returns the calibration file that reproduces m's calibrated constants (each entry with its own
// date and machine). Constants still at their cited defaults are left out.
func (m *Model) Calibration() Calibration {
	c := Calibration{Schema: SchemaV1, Constants: map[string]CalibrationEntry{}}
	for _, k := range m.Constants() {
		if k.Quality != QualityCalibrated {
			continue
		}
		c.Constants[k.Name] = Entry(k.Value, k.Source.Setup, k.Source.Date, k.Source.Machine)
	}
	return c
}

// WriteCalibration writes c as indented JSON with sorted keys: the format Load reads.
func WriteCalibration(w io.Writer, c Calibration) error {
	if c.Constants == nil {
		c.Constants = map[string]CalibrationEntry{}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding calibration: %w", err)
	}
	b = append(b, '\n')
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("writing calibration: %w", err)
	}
	return nil
}

func firstNonEmpty(a, b string) string {
	if strings.TrimSpace(a) != "" {
		return a
	}
	return b
}

func describeJSONError(data []byte, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s: invalid JSON: %v", position(data, syn.Offset), syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the top level"
		}
		return fmt.Sprintf("%s: %s must be %s, not a JSON %s", position(data, typ.Offset), field, typeName(typ.Type.String()), typ.Value)
	case errors.Is(err, io.EOF):
		return "empty file: want a JSON object with \"schema\" and \"constants\""
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON: the object is not closed"
	}
	// Unknown top-level or entry field (DisallowUnknownFields) and anything else: the decoder names the field.
	return err.Error()
}

func typeName(t string) string {
	switch {
	case strings.Contains(t, "int"):
		return "a whole number of nanoseconds"
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "map"):
		return "an object of constant name → entry"
	case strings.HasSuffix(t, "Calibration"):
		return `a JSON object with "schema" and "constants"`
	case strings.HasSuffix(t, "CalibrationEntry"):
		return `an object with "ns" and "source"`
	}
	return t
}

// position turns a byte offset into "line L, column C" (1-based).
func position(data []byte, off int64) string {
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line, col := 1, 1
	for _, b := range data[:off] {
		if b == '\n' {
			line++
			col = 1
		} else {
			col++
		}
	}
	return fmt.Sprintf("line %d, column %d", line, col)
}

// closestName is the known constant name within edit distance 3 of name, if exactly one is closest.
func closestName(name string) string {
	best, bestD, tie := "", 4, false
	for _, f := range fields {
		d := editDistance(name, f.name)
		switch {
		case d < bestD:
			best, bestD, tie = f.name, d, false
		case d == bestD:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
