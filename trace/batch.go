package trace

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/kpath/kpath/packet"
)

// BatchOptions tune Engine.Batch.
type BatchOptions struct {
	// Options apply to every question; a line's "proto" overrides Options.Protocol.
	Options
	// Full writes each question's whole journey (the -o json form, plus "line") instead of the compact record.
	Full bool
	// KeepGC leaves the garbage collector's settings alone (see Batch).
	KeepGC bool
}

// BatchQuestion is one input line of a batch: {"from": "...", "to": "...", "proto": "tcp"}.
type BatchQuestion struct {
	From  string `json:"from"`
	To    string `json:"to"`
	Proto string `json:"proto,omitempty"`
}

// BatchRecord is one output line of a batch: the compact answer to one question, or Error for a line that could not
// be asked (bad JSON, unknown FROM/TO). Line is the 1-based input line number.
type BatchRecord struct {
	Line          int       `json:"line"`
	From          string    `json:"from,omitempty"`
	To            string    `json:"to,omitempty"`
	Verdict       Verdict   `json:"verdict,omitempty"`
	VerdictReason string    `json:"verdict_reason,omitempty"`
	Backend       *Endpoint `json:"backend,omitempty"`
	Blockers      []Blocker `json:"blockers"`
	// LatencyNanos is the journey's estimated first-packet latency (the latency model, not kpath's run time).
	LatencyNanos int64  `json:"latency_ns"`
	Error        string `json:"error,omitempty"`
}

// BatchStats counts what a batch did.
type BatchStats struct {
	Questions int             // non-blank input lines
	Errors    int             // lines answered with an error record
	Verdicts  map[Verdict]int // answered questions by verdict
}

// errorRecord is the output line for a question that could not be asked.
type errorRecord struct {
	Line  int    `json:"line"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	Error string `json:"error"`
}

// fullRecord is a whole journey with its input line number.
type fullRecord struct {
	Line int `json:"line"`
	*Journey
}

// Batch answers one question per JSONL input line and writes one JSON line per question, in input order. Blank lines
// are skipped. A bad line (invalid JSON, unknown field, missing from/to, bad protocol, a FROM or TO the snapshot
// cannot resolve) yields an error record naming its line number and the batch goes on; the returned error is only for
// reading or writing failures.
//
// Unless opt.KeepGC, the garbage collector is relaxed for the batch (like cluster.Load does for a load): every trace
// makes short-lived garbage beside a large, immutable snapshot, and each collection re-marks the whole snapshot (≈1 s
// of CPU for a 5,000-node cluster), so Batch lets the heap grow to 5× the live heap, bounded by a soft limit of the
// live heap plus half the available memory (at least 1 GiB), and restores the settings when it returns.
func (e *Engine) Batch(r io.Reader, w io.Writer, opt BatchOptions) (BatchStats, error) {
	if !opt.KeepGC {
		defer relaxGC()()
	}
	st := BatchStats{Verdicts: map[Verdict]int{}}
	if !opt.Full {
		opt.Options.skipAlternatives = true // the compact record does not print them
	}
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := json.NewEncoder(bw) // one line per record; HTML escaping kept off for readability
	enc.SetEscapeHTML(false)
	for lineNo := 1; ; lineNo++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			bw.Flush()
			return st, fmt.Errorf("reading batch input line %d: %w", lineNo, rerr)
		}
		if len(bytes.TrimSpace(line)) > 0 {
			st.Questions++
			var out any
			rec, j := e.batchLine(lineNo, line, opt)
			switch {
			case rec.Error != "":
				out = errorRecord{Line: rec.Line, From: rec.From, To: rec.To, Error: rec.Error}
			case opt.Full:
				out = fullRecord{Line: lineNo, Journey: j}
			default:
				out = rec
			}
			if rec.Error != "" {
				st.Errors++
			} else {
				st.Verdicts[rec.Verdict]++
			}
			if err := enc.Encode(out); err != nil {
				return st, fmt.Errorf("writing batch result for line %d: %w", lineNo, err)
			}
		}
		if rerr != nil { // io.EOF
			break
		}
	}
	if err := bw.Flush(); err != nil {
		return st, fmt.Errorf("writing batch results: %w", err)
	}
	return st, nil
}

// batchLine answers one input line.
func (e *Engine) batchLine(lineNo int, line []byte, opt BatchOptions) (BatchRecord, *Journey) {
	rec := BatchRecord{Line: lineNo, Blockers: []Blocker{}}
	var q BatchQuestion
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil {
		rec.Error = fmt.Sprintf("line %d: not a question %s: %v", lineNo, `{"from": "...", "to": "...", "proto": "tcp"}`, err)
		return rec, nil
	}
	if dec.More() {
		rec.Error = fmt.Sprintf("line %d: more than one JSON value on the line; put one question per line", lineNo)
		return rec, nil
	}
	rec.From, rec.To = q.From, q.To
	if q.From == "" || q.To == "" {
		rec.Error = fmt.Sprintf("line %d: both \"from\" and \"to\" are required", lineNo)
		return rec, nil
	}
	o := opt.Options
	if q.Proto != "" {
		p, err := packet.ParseProtocol(q.Proto)
		if err != nil {
			rec.Error = fmt.Sprintf("line %d: proto: %v", lineNo, err)
			return rec, nil
		}
		o.Protocol = p
	}
	j, err := e.Trace(q.From, q.To, o)
	if err != nil {
		rec.Error = fmt.Sprintf("line %d: %v", lineNo, err)
		return rec, nil
	}
	rec.Verdict, rec.VerdictReason, rec.Backend = j.Verdict, j.VerdictReason, j.Backend
	if j.Blockers != nil {
		rec.Blockers = j.Blockers
	}
	rec.LatencyNanos = j.Latency.Total.Nanos
	return rec, j
}

// relaxGC raises GOGC to 400 with a soft memory limit above the live heap; the returned function restores both.
func relaxGC() (restore func()) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	var live int64
	if sample[0].Value.Kind() == metrics.KindUint64 {
		live = int64(sample[0].Value.Uint64())
	}
	room := max(memAvailable()/2, 1<<30)
	prevLimit := debug.SetMemoryLimit(-1) // read the current limit
	debug.SetMemoryLimit(min(prevLimit, live+room))
	prevPct := debug.SetGCPercent(400)
	return func() {
		debug.SetGCPercent(prevPct)
		debug.SetMemoryLimit(prevLimit)
	}
}

// memAvailable is MemAvailable from /proc/meminfo in bytes (0 when unknown, e.g. not on Linux).
func memAvailable() int64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemAvailable:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
