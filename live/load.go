package live

import (
	"context"
	"errors"

	"k8s.io/client-go/rest"

	"github.com/kpath/kpath/cluster"
)

// Load lists the cluster and loads it through the same loader as offline input: the listed objects are streamed
// into cluster.Load as JSON, so live and offline share one code path, and runtime state the cluster reports (pod
// IPs, nodes, EndpointSlices) is used as observed, never marked synthesized. Kinds that could not be listed become
// warnings in the snapshot's diagnostics and are named in the report (Report.Unlisted).
//
// Errors are plumbing only: an unreachable server, a failed list (after retries), or a snapshot with no objects at
// all (a *cluster.LoadError, with the listing's warnings in its Diagnostics).
func Load(ctx context.Context, cfg *rest.Config, name string, opts Options, lopts cluster.Options) (*cluster.Snapshot, *Report, error) {
	rep, err := Start(ctx, cfg, name, opts)
	if err != nil {
		return nil, nil, err
	}
	snap, lerr := cluster.Load(rep.Sources(), lopts)
	if lerr != nil {
		rep.Cancel()
	}
	if err := rep.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return nil, rep, err
	}
	if lerr != nil {
		var le *cluster.LoadError
		if errors.As(lerr, &le) {
			le.Diagnostics = append(le.Diagnostics, rep.Diagnostics()...)
			if le.Empty {
				le.Msg = name + " (" + rep.Server + "): no object could be listed; check the credentials (`kpath rbac` prints the role kpath needs)"
			}
		}
		return nil, rep, lerr
	}
	// Snapshot is immutable once handed out; it is not handed out yet.
	snap.Diagnostics = append(snap.Diagnostics, rep.Diagnostics()...)
	snap.Unlisted = rep.Unlisted()
	return snap, rep, nil
}
