// Package reach computes who can talk to whom under policy: the workload × workload (× port/protocol) matrix over
// equivalence classes, a per-pair explanation, intent checks for CI, and one renderer per output format.
package reach
