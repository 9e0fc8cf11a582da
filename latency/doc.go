// Package latency is kpath's cited latency model: named per-hop cost constants (each with its source and how good
// that source is), the estimate functions the trace engine calls, and the calibration file that replaces constants
// with lab measurements. Every number it returns is an ESTIMATE (see docs/latency-model.md).
package latency
