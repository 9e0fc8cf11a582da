package trace_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kpath/kpath/trace"
)

func TestBatchAnswersEveryLineAndNamesBadOnes(t *testing.T) {
	e := engine(t, demoSnapshot(t))
	in, err := os.ReadFile(filepath.Join("testdata", "batch-questions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	st, err := e.Batch(bytes.NewReader(in), &out, trace.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Questions != 12 || st.Errors != 6 {
		t.Errorf("stats = %+v, want 12 questions, 6 errors", st)
	}
	path := filepath.Join("testdata", "batch.golden")
	if *update {
		os.WriteFile(path, out.Bytes(), 0o644)
	} else if want, err := os.ReadFile(path); err != nil {
		t.Fatalf("%v (run go test ./trace -update)", err)
	} else if out.String() != string(want) {
		t.Errorf("batch output differs from %s (run go test ./trace -update and review the diff):\n%s", path, diffLines(string(want), out.String()))
	}

	// Each line is one compact record: the line number, and either a verdict or an error naming the line.
	cases := []struct {
		name    string
		line    int
		verdict trace.Verdict
		errHas  string
	}{
		{"a workload source reaching a Service by URL is delivered", 1, trace.Delivered, ""},
		{"a policy drop names its blocker", 2, trace.Dropped, ""},
		{"a UDP question honours its proto", 4, trace.Delivered, ""},
		{"a Service without ready endpoints is rejected", 5, trace.Rejected, ""},
		{"an external client to an eTP Local NodePort is dropped", 6, trace.Dropped, ""},
		{"a line that is not JSON is an error record for its line", 7, "", "line 7: not a question"},
		{"an unknown field is reported rather than ignored", 8, "", `unknown field "port"`},
		{"a question without a destination is an error record", 9, "", `"to" are required`},
		{"an unknown protocol is an error record", 10, "", "line 10: proto"},
		{"an unknown pod is an error record and the batch goes on", 11, "", `no pod`},
		{"two JSON values on one line are refused", 12, "", "more than one JSON value"},
		{"a name that does not exist is rejected at DNS", 13, trace.Rejected, ""},
	}
	recs := map[int]trace.BatchRecord{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var r trace.BatchRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("output line %q is not a record: %v", sc.Text(), err)
		}
		recs[r.Line] = r
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := recs[tc.line]
			if !ok {
				t.Fatalf("no record for line %d", tc.line)
			}
			if r.Verdict != tc.verdict || !strings.Contains(r.Error, tc.errHas) || (tc.errHas == "") != (r.Error == "") {
				t.Errorf("line %d: verdict %q error %q, want verdict %q error containing %q", tc.line, r.Verdict, r.Error, tc.verdict, tc.errHas)
			}
			if r.Verdict == trace.Dropped || r.Verdict == trace.Rejected {
				if len(r.Blockers) == 0 {
					t.Errorf("line %d: %s without blockers", tc.line, r.Verdict)
				}
			}
		})
	}
}

func TestBatchFullWritesWholeJourneys(t *testing.T) {
	e := engine(t, demoSnapshot(t))
	in := `{"from": "deploy/shop/frontend", "to": "http://cart.shop:8080/"}` + "\n" + `{"from": "nope/x", "to": "cart.shop:8080"}`
	var out bytes.Buffer
	if _, err := e.Batch(strings.NewReader(in), &out, trace.BatchOptions{Full: true}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 output lines, got %d:\n%s", len(lines), out.String())
	}
	var full struct {
		Line int `json:"line"`
		trace.Journey
	}
	if err := json.Unmarshal([]byte(lines[0]), &full); err != nil {
		t.Fatal(err)
	}
	if full.Line != 1 || full.Schema != trace.Schema || len(full.Hops) == 0 || full.Verdict != trace.Delivered {
		t.Errorf("full record: line %d schema %q %d hops verdict %s", full.Line, full.Schema, len(full.Hops), full.Verdict)
	}
	if err := full.Journey.Validate(); err != nil {
		t.Errorf("full journey does not validate: %v", err)
	}
	if !strings.Contains(lines[1], `"line":2`) || !strings.Contains(lines[1], `"error":"line 2: `) {
		t.Errorf("bad question in --full mode should stay a compact error record, got %s", lines[1])
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestBatchReportsWriteFailures(t *testing.T) {
	e := engine(t, demoSnapshot(t))
	in := strings.Repeat(`{"from": "shop/checkout", "to": "cart.shop:8080"}`+"\n", 2000)
	if _, err := e.Batch(strings.NewReader(in), failingWriter{}, trace.BatchOptions{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("err = %v, want the write failure", err)
	}
}
