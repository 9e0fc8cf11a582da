// Package live reads a running cluster, read-only (list only, paginated, never Secrets), into the same snapshot model
// the offline loader builds, and writes shareable (optionally redacted) snapshot files.
package live
