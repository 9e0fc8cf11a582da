package cli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/gen"
)

func newGenCmd(g *globals) *cobra.Command {
	o := gen.DefaultOptions()
	var size string
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate a synthetic, realistic cluster snapshot (for tests and benchmarks) as a kubectl-style List",
		Long: `Generate a deterministic synthetic cluster: namespaces, nodes in zones, workloads with running pods (IPs,
nodes, readiness), Services with 1–250 endpoints, EndpointSlices and a realistic NetworkPolicy mix. The same flags
always give byte-identical output, so a snapshot can be regenerated instead of shared.

Sizes (--size): ` + presetList(),
		Example: `  kpath gen --nodes 50 --pods 2000 --services 300 --policies 100 --seed 7 -o json > cluster.json
  kpath gen --size large -o json > large.json    # 5,000 nodes / 150,000 pods / 10,000 services
  kpath inspect -f cluster.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if size != "" {
				p, ok := gen.PresetByName(size)
				if !ok {
					return usageErr("--size %q: want one of %s", size, presetNames())
				}
				for _, f := range []string{"nodes", "pods", "services", "policies", "namespaces", "seed"} {
					if cmd.Flags().Changed(f) {
						return usageErr("--size and --%s cannot be combined", f)
					}
				}
				o = p
			}
			if err := o.Validate(); err != nil {
				return usageErr("%v", err)
			}
			w := bufio.NewWriterSize(g.stdout, 1<<20)
			var err error
			switch g.output {
			case "yaml":
				err = gen.WriteYAML(w, o)
			case "json", "text", "":
				err = gen.WriteJSON(w, o)
			}
			if err == nil {
				err = w.Flush()
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Nodes, "nodes", o.Nodes, "worker nodes")
	f.IntVar(&o.Pods, "pods", o.Pods, "application pods (system pods come on top)")
	f.IntVar(&o.Services, "services", o.Services, "application Services")
	f.IntVar(&o.Policies, "policies", o.Policies, "NetworkPolicies")
	f.IntVar(&o.Namespaces, "namespaces", o.Namespaces, "application namespaces")
	f.Int64Var(&o.Seed, "seed", o.Seed, "seed: the same options give byte-identical output")
	f.StringVar(&size, "size", "", "a preset size: "+presetNames())
	return cmd
}

func presetNames() string {
	var n []string
	for _, p := range gen.Presets() {
		n = append(n, p.Name)
	}
	return strings.Join(n, "|")
}

func presetList() string {
	var b strings.Builder
	for _, p := range gen.Presets() {
		fmt.Fprintf(&b, "\n  %-8s %s", p.Name, p.Description)
	}
	return b.String()
}
