package latency

import (
	"bytes"
	"testing"
	"time"
)

var sink Estimate

func BenchmarkFixedEstimate(b *testing.B) {
	m := Default()
	b.ReportAllocs()
	for b.Loop() {
		sink = m.VethHop()
	}
}

func BenchmarkIPTablesRules(b *testing.B) {
	m := Default()
	b.ReportAllocs()
	for b.Loop() {
		sink = m.IPTablesRules(412)
	}
}

func BenchmarkDNSQuery(b *testing.B) {
	m := Default()
	b.ReportAllocs()
	for b.Loop() {
		sink = m.DNSQuery()
	}
}

func BenchmarkDefault(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m := Default()
		sink.Nanos = int64(m.VethHopCost.Value)
	}
}

// BenchmarkLoadFullCalibration loads a calibration file that names every constant.
func BenchmarkLoadFullCalibration(b *testing.B) {
	c := Calibration{Schema: SchemaV1, Measured: "2026-11-21", Machine: "bench", Constants: map[string]CalibrationEntry{}}
	for i, name := range Names() {
		c.Constants[name] = Entry(time.Duration(i+1)*time.Microsecond, "bench", "", "")
	}
	var buf bytes.Buffer
	if err := WriteCalibration(&buf, c); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
