package gen

import (
	"io"
	"testing"
)

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

func benchWrite(b *testing.B, write func(io.Writer, Options) error, presets ...string) {
	for _, name := range presets {
		o, ok := PresetByName(name)
		if !ok {
			b.Fatalf("no preset %s", name)
		}
		b.Run(name, func(b *testing.B) {
			c, err := Count(o)
			if err != nil {
				b.Fatal(err)
			}
			var w countingWriter
			for b.Loop() {
				w.n = 0
				if err := write(&w, o); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(w.n)
			b.ReportMetric(float64(c.Total()), "objects/op")
			b.ReportMetric(float64(w.n)/(1<<20), "MiB/op")
		})
	}
}

// BenchmarkWriteJSON measures the whole pipeline: plan, build, encode, write (to a counter).
// "large" is 5,000 nodes / 150,000 pods / 10,000 services.
func BenchmarkWriteJSON(b *testing.B) { benchWrite(b, WriteJSON, "small", "medium", "large") }

func BenchmarkWriteYAML(b *testing.B) { benchWrite(b, WriteYAML, "small", "medium", "large") }

// BenchmarkPlan is the sequential part: addresses, placement, slices, policies.
func BenchmarkPlan(b *testing.B) {
	o, _ := PresetByName("large")
	for b.Loop() {
		if _, err := newPlan(o); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildPod is building one application pod object from the plan (no encoding).
func BenchmarkBuildPod(b *testing.B) {
	p, err := newPlan(DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	i := len(p.pods) - 1
	b.ReportAllocs()
	for b.Loop() {
		_ = p.pod(i)
	}
}
