package latency

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestCalibrationRoundTripsAndOverridesOnlyWhatItNames(t *testing.T) {
	tests := []struct {
		name string
		cal  Calibration
		want map[string]time.Duration // constants that must change
	}{
		{
			name: "an empty calibration changes nothing",
			cal:  Calibration{Schema: SchemaV1, Measured: "2026-11-21", Machine: "m"},
			want: map[string]time.Duration{},
		},
		{
			name: "one measured veth hop replaces only veth_hop",
			cal: Calibration{Schema: SchemaV1, Measured: "2026-11-21", Machine: "kpath-ci: 2 vCPU, Linux 6.18",
				Constants: map[string]CalibrationEntry{
					NameVethHop: Entry(18250*time.Nanosecond, "kpath lab bench: UDP echo over one veth pair, RTT/2", "", ""),
				}},
			want: map[string]time.Duration{NameVethHop: 18250 * time.Nanosecond},
		},
		{
			name: "entries may carry their own date and machine",
			cal: Calibration{Schema: SchemaV1, Constants: map[string]CalibrationEntry{
				NameIPTablesRule:   Entry(19*time.Nanosecond, "kpath lab bench: 5000 Service rules", "2026-11-20", "box-a"),
				NameNFTablesLookup: Entry(0, "kpath lab bench: verdict map, below timer resolution", "2026-11-21", "box-b"),
			}},
			want: map[string]time.Duration{NameIPTablesRule: 19 * time.Nanosecond, NameNFTablesLookup: 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteCalibration(&buf, tt.cal); err != nil {
				t.Fatal(err)
			}
			m, err := Load(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatalf("Load of what WriteCalibration wrote: %v\n%s", err, buf.String())
			}
			def := Default()
			for _, c := range m.Constants() {
				d, _ := def.Lookup(c.Name)
				want, named := tt.want[c.Name]
				switch {
				case named && (c.Value != want || c.Quality != QualityCalibrated):
					t.Errorf("%s = %v (%s), want %v (calibrated)", c.Name, c.Value, c.Quality, want)
				case named && (c.Source.Date == "" || c.Source.Machine == "" || c.Source.Setup == ""):
					t.Errorf("%s lost its date, machine or setup: %+v", c.Name, c.Source)
				case named && !strings.Contains(c.Label(), "calibrated "+c.Source.Date):
					t.Errorf("%s label %q does not show the calibration date", c.Name, c.Label())
				case !named && !reflect.DeepEqual(c, d):
					t.Errorf("%s changed although the file does not name it:\n got %+v\nwant %+v", c.Name, c, d)
				}
			}
			// Writing the model's calibration back gives the same file again (entries now carry date and machine).
			var again, twice bytes.Buffer
			if err := WriteCalibration(&again, m.Calibration()); err != nil {
				t.Fatal(err)
			}
			m2, err := Load(bytes.NewReader(again.Bytes()))
			if err != nil {
				t.Fatalf("reloading: %v\n%s", err, again.String())
			}
			if err := WriteCalibration(&twice, m2.Calibration()); err != nil {
				t.Fatal(err)
			}
			if again.String() != twice.String() {
				t.Errorf("calibration does not round-trip:\n%s\nvs\n%s", again.String(), twice.String())
			}
			if !reflect.DeepEqual(*m, *m2) {
				t.Error("reloading the written calibration gives a different model")
			}
		})
	}
}

func TestBadCalibrationFilesAreErrorsThatSayWhere(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings the error must contain
	}{
		{"an unknown constant name is an error naming the key",
			`{"schema":"kpath.latency.calibration/v1","measured":"d","machine":"m","constants":{"veth_hops":{"ns":1,"source":"s"}}}`,
			[]string{`unknown constant "veth_hops"`, `did you mean "veth_hop"?`}},
		{"every unknown name is reported, not only the first",
			`{"schema":"kpath.latency.calibration/v1","measured":"d","machine":"m","constants":{"a":{"ns":1,"source":"s"},"b":{"ns":1,"source":"s"}}}`,
			[]string{`unknown constant "a"`, `unknown constant "b"`}},
		{"a negative duration is rejected",
			`{"schema":"kpath.latency.calibration/v1","measured":"d","machine":"m","constants":{"veth_hop":{"ns":-5,"source":"s"}}}`,
			[]string{`constant "veth_hop"`, "cannot be negative"}},
		{"a missing value is rejected",
			`{"schema":"kpath.latency.calibration/v1","measured":"d","machine":"m","constants":{"veth_hop":{"source":"s"}}}`,
			[]string{`constant "veth_hop"`, `"ns" is missing`}},
		{"an entry without a source is rejected",
			`{"schema":"kpath.latency.calibration/v1","measured":"d","machine":"m","constants":{"veth_hop":{"ns":1,"source":" "}}}`,
			[]string{`constant "veth_hop"`, `"source" is empty`}},
		{"an entry without a date or machine anywhere is rejected",
			`{"schema":"kpath.latency.calibration/v1","constants":{"underlay":{"ns":1,"source":"s"}}}`,
			[]string{`constant "underlay"`, "no measurement date", "no machine"}},
		{"the wrong schema is rejected",
			`{"schema":"kpath.latency.calibration/v2","constants":{}}`,
			[]string{`schema is "kpath.latency.calibration/v2"`}},
		{"a missing schema is rejected",
			`{"constants":{}}`,
			[]string{`schema is ""`}},
		{"broken JSON reports line and column",
			"{\n  \"schema\": \"kpath.latency.calibration/v1\",\n  \"constants\": {,}\n}",
			[]string{"line 3, column", "invalid JSON"}},
		{"a value of the wrong type names the field",
			`{"schema":"kpath.latency.calibration/v1","measured":"d","machine":"m","constants":{"veth_hop":{"ns":"18us","source":"s"}}}`,
			[]string{"ns", "whole number of nanoseconds", "line 1"}},
		{"an unknown field in the file is rejected",
			`{"schema":"kpath.latency.calibration/v1","constants":{},"comment":"x"}`,
			[]string{`unknown field "comment"`}},
		{"an unknown field in an entry is rejected",
			`{"schema":"kpath.latency.calibration/v1","measured":"d","machine":"m","constants":{"veth_hop":{"ns":1,"source":"s","p99":3}}}`,
			[]string{`unknown field "p99"`}},
		{"a second object after the first is rejected",
			`{"schema":"kpath.latency.calibration/v1","constants":{}} {}`,
			[]string{"unexpected data after the calibration object", "line 1"}},
		{"an empty file is rejected", ``, []string{"empty file"}},
		{"a truncated file is rejected", `{"schema":"kpath.latency.calibration/v1",`, []string{"truncated"}},
		{"an array instead of an object is rejected", `[]`, []string{"the top level must be a JSON object"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(strings.NewReader(tt.file))
			if err == nil {
				t.Fatal("no error")
			}
			if !IsCalibrationError(err) {
				t.Errorf("%v is not a *CalibrationError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestApplyKeepsTheModelWhenTheFileIsBad(t *testing.T) {
	m := Default()
	_, err := m.Apply(Calibration{Schema: SchemaV1, Measured: "d", Machine: "m", Constants: map[string]CalibrationEntry{
		NameVethHop: Entry(time.Nanosecond, "s", "", ""),
		"nope":      Entry(time.Nanosecond, "s", "", ""),
	}})
	if err == nil {
		t.Fatal("no error for an unknown name")
	}
	if m.VethHopCost.Value != Default().VethHopCost.Value {
		t.Error("a rejected calibration changed the model it was applied to")
	}
}

func TestCalibratedReadsAFileAndNamesItInErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "calibration.json")
	var buf bytes.Buffer
	if err := WriteCalibration(&buf, Calibration{Schema: SchemaV1, Measured: "2026-11-21", Machine: "m",
		Constants: map[string]CalibrationEntry{NameUnderlay: Entry(40*time.Microsecond, "lab", "", "")}}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"schema":"kpath.latency.calibration/v1","constants":{"x":{"ns":1,"source":"s"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}

	m, err := Calibrated(good)
	if err != nil {
		t.Fatal(err)
	}
	if m.Underlay().Duration() != 40*time.Microsecond {
		t.Errorf("underlay %v, want the calibrated 40µs", m.Underlay().Duration())
	}

	tests := []struct {
		name, path string
		want       []string
	}{
		{"a missing file names the path and says what to do", filepath.Join(dir, "absent.json"), []string{"absent.json", "kpath lab bench"}},
		{"a bad file names the path and the key", bad, []string{bad, `unknown constant "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Calibrated(tt.path)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := Calibrated(filepath.Join(dir, "absent.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing-file error %v does not wrap os.ErrNotExist", err)
	}
}

func TestCalibratedSourceKeepsTheDefaultItReplaced(t *testing.T) {
	m, err := Default().Apply(Calibration{Schema: SchemaV1, Measured: "2026-11-21", Machine: "m",
		Constants: map[string]CalibrationEntry{NameWireGuard: Entry(30*time.Microsecond, "lab: wg pair", "", "")}})
	if err != nil {
		t.Fatal(err)
	}
	s := m.WireGuardCost.Source
	if s.Citation != "kpath lab measurement 2026-11-21" || !strings.Contains(s.Derivation, "50µs (placeholder") {
		t.Errorf("calibrated source %+v should cite the lab measurement and the default it replaced", s)
	}
	if m.WireGuardCost.Meaning == "" {
		t.Error("calibration dropped the constant's meaning")
	}
}
