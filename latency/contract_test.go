//go:build contract

// Run with `go test -tags contract ./latency/`: it builds package trace (and what trace imports), so it is kept
// out of the default run to keep the model's tests independent of packages still being written.

package latency_test

import (
	"testing"

	"github.com/kpath/kpath/latency"
	"github.com/kpath/kpath/trace"
)

// The engine converts estimates with a plain type conversion; this stops compiling if the two types drift apart.
func TestEstimateConvertsToTheTraceEstimate(t *testing.T) {
	e := latency.Default().VethHop()
	got := trace.Estimate(e)
	if got.Nanos != e.Nanos || got.Source != e.Source {
		t.Errorf("conversion changed the estimate: %+v → %+v", e, got)
	}
}
