package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/mesh"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

func newDiffCmd(g *globals) *cobra.Command {
	var before, after, afterMesh, proto string
	cmd := &cobra.Command{
		Use:   "diff FROM TO",
		Short: "Compare one packet's journey in two snapshots, or before and after injecting a mesh",
		Long: `Trace the same question in two cluster states and show what changed: hops added and removed, NAT that
moved (kube-proxy's DNAT replaced by a mesh proxy's endpoint choice), new policy and mesh checks, identities on the
wire, the verdict and the latency delta.

--before and --after take a snapshot source: "demo" (the embedded demo), "demo+mesh" (the demo with its meshed
namespaces), or comma-separated files/directories. Without --before, the global --demo / -f input is "before".
--after-mesh linkerd|istio|ambient makes "after" the before-state with the source's and the destination's
namespaces opted into that mesh (as if the injector had run).

Exit code: 0 when both journeys were traced (1 tool error, 2 usage).`,
		Example: `  kpath diff --demo --after-mesh linkerd shop/frontend cart.shop:8080
  kpath diff --before demo --after ./policy-v2/ tools/netshoot db.shop:5432
  kpath diff --demo --after-mesh istio shop/frontend http://catalog.shop/ -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := packet.ParseProtocol(proto)
			if err != nil {
				return usageErr("--proto: %v", err)
			}
			if after != "" && afterMesh != "" {
				return usageErr("give --after or --after-mesh, not both")
			}
			if after == "" && afterMesh == "" {
				return usageErr("nothing to compare: give --after SOURCE or --after-mesh linkerd|istio|ambient")
			}
			var meshKind cluster.Mesh
			switch afterMesh {
			case "":
			case "linkerd":
				meshKind = cluster.MeshLinkerd
			case "istio", "istio-sidecar":
				meshKind = cluster.MeshIstioSidecar
			case "ambient", "istio-ambient":
				meshKind = cluster.MeshIstioAmbient
			default:
				return usageErr("--after-mesh %q: want linkerd, istio or ambient", afterMesh)
			}
			loadBefore := func() (*cluster.Snapshot, error) {
				if before == "" {
					return g.load()
				}
				return g.loadSource(before)
			}
			bs, err := loadBefore()
			if err != nil {
				return err
			}
			g.reportDiagnostics(bs)
			opt := trace.Options{Protocol: p}
			bj, err := traceOne(bs, args[0], args[1], opt)
			if err != nil {
				return err
			}
			beforeName := whyOrStr(before, g.sourceName())
			var as *cluster.Snapshot
			afterName := after
			if meshKind != "" {
				if as, err = loadBefore(); err != nil { // a private copy to opt namespaces in
					return err
				}
				nss := injectNamespaces(as, bj, meshKind)
				afterName = fmt.Sprintf("%s with namespace(s) %s opted into %s", beforeName, strings.Join(nss, ", "), meshKind)
			} else {
				if as, err = g.loadSource(after); err != nil {
					return err
				}
			}
			aj, err := traceOne(as, args[0], args[1], opt)
			if err != nil {
				return err
			}
			d := trace.Diff(bj, aj)
			switch g.output {
			case "json", "yaml":
				return writeStructured(g.stdout, g.output, d)
			}
			trace.WriteDiffText(g.stdout, d, beforeName, afterName)
			return nil
		},
	}
	cmd.Flags().StringVar(&before, "before", "", `the "before" snapshot: demo, demo+mesh, or comma-separated files/dirs (default: --demo / -f)`)
	cmd.Flags().StringVar(&after, "after", "", `the "after" snapshot: demo, demo+mesh, or comma-separated files/dirs`)
	cmd.Flags().StringVar(&afterMesh, "after-mesh", "", "after = before with the source and destination namespaces injected: linkerd|istio|ambient")
	cmd.Flags().StringVar(&proto, "proto", "tcp", "protocol: tcp|udp|sctp")
	return cmd
}

func whyOrStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (g *globals) sourceName() string {
	var parts []string
	if g.demo {
		parts = append(parts, "the demo")
	}
	if len(g.files) > 0 {
		parts = append(parts, strings.Join(g.files, ", "))
	}
	return strings.Join(parts, " + ")
}

// loadSource loads a snapshot from "demo", "demo+mesh", or comma-separated paths, with the global overrides.
func (g *globals) loadSource(src string) (*cluster.Snapshot, error) {
	var srcs []cluster.Source
	var paths []string
	for _, part := range strings.Split(src, ",") {
		switch part = strings.TrimSpace(part); part {
		case "":
		case "demo", "demo+mesh":
			for _, f := range demo.Files() {
				srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
			}
			if part == "demo+mesh" {
				for _, f := range mesh.DemoFiles() {
					srcs = append(srcs, cluster.BytesSource("mesh/demo/"+f.Name, f.Data))
				}
			}
		default:
			paths = append(paths, part)
		}
	}
	if len(paths) > 0 {
		fs, err := cluster.FileSources(paths, g.recursive, g.stdin)
		if err != nil {
			return nil, &exitError{ExitError, err}
		}
		srcs = append(srcs, fs...)
	}
	if len(srcs) == 0 {
		return nil, usageErr("snapshot source %q names nothing: use demo, demo+mesh or files/directories", src)
	}
	snap, err := cluster.Load(srcs, cluster.Options{Strict: g.strict, DefaultNamespace: g.namespace, Overrides: g.overrides})
	if err != nil {
		return nil, &exitError{ExitError, fmt.Errorf("loading %s: %w", src, err)}
	}
	return snap, nil
}

func traceOne(s *cluster.Snapshot, from, to string, opt trace.Options) (*trace.Journey, error) {
	eng, err := trace.New(s)
	if err != nil {
		return nil, &exitError{ExitError, err}
	}
	attachPolicy(eng, s)
	j, err := eng.Trace(from, to, opt)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return j, nil
}

// injectNamespaces opts the journey's source and destination namespaces into mesh k on snapshot s (a private copy:
// the namespace objects are edited in place, as the injection webhook would see them) and returns their names.
func injectNamespaces(s *cluster.Snapshot, j *trace.Journey, k cluster.Mesh) []string {
	var names []string
	seen := map[string]bool{}
	for _, ref := range []string{j.Source.Pod, backendPod(j)} {
		ns, _, ok := strings.Cut(ref, "/")
		if !ok || seen[ns] {
			continue
		}
		n := s.Namespace(ns)
		if n == nil {
			continue
		}
		seen[ns] = true
		names = append(names, ns)
		switch k {
		case cluster.MeshLinkerd:
			if n.Annotations == nil {
				n.Annotations = map[string]string{}
			}
			n.Annotations["linkerd.io/inject"] = "enabled"
		case cluster.MeshIstioSidecar:
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels["istio-injection"] = "enabled"
		case cluster.MeshIstioAmbient:
			if n.Labels == nil {
				n.Labels = map[string]string{}
			}
			n.Labels["istio.io/dataplane-mode"] = "ambient"
		}
	}
	s.Profile.Mesh = k
	return names
}

func backendPod(j *trace.Journey) string {
	if j.Backend == nil {
		return ""
	}
	return j.Backend.Pod
}
