package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/netpol"
	"github.com/kpath/kpath/reach"
)

// reachFormats are the -o values `kpath reach` accepts (yaml too, through writeStructured).
var reachFormats = append(append([]string{}, reach.Formats...), "yaml")

func newReachCmd(g *globals) *cobra.Command {
	var ports string
	var explain, external, hostNetAsPods, ipBlockExternal bool
	cmd := &cobra.Command{
		Use:   "reach [-f FILE|DIR|- ... | --demo] [--ports tcp/80,udp/53] [-o text|csv|json|md|dot|html] [--explain SRC DST]",
		Short: "Who can talk to whom under policy: the workload × workload connectivity matrix, or why one pair can or cannot",
		Example: `  kpath reach --demo
  kpath reach --demo --ports tcp/8080 -o md
  kpath reach --demo --explain shop/checkout shop/cart
  kpath reach -f manifests/ -R -o html > reach.html`,
		Args: func(cmd *cobra.Command, args []string) error {
			if explain && len(args) != 2 {
				return usageErr("--explain needs two arguments: SRC DST (NAMESPACE/WORKLOAD or NAMESPACE/POD)")
			}
			if !explain && len(args) != 0 {
				return usageErr("unexpected arguments %v (did you mean --explain SRC DST?)", args)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(g.output, reachFormats); err != nil {
				return err
			}
			var pc netpol.ConnSet
			if ports != "" {
				var err error
				if pc, err = reach.ParsePorts(ports); err != nil {
					return usageErr("%v", err)
				}
			}
			snap, err := g.load()
			if err != nil {
				return err
			}
			g.reportDiagnostics(snap)
			eng := netpol.NewWithOptions(snap, netpol.Options{HostNetworkAsPods: hostNetAsPods, IPBlockExternalOnly: ipBlockExternal})
			if g.verbose > 0 {
				for _, n := range eng.Notes() {
					fmt.Fprintln(g.stderr, "policy:", n)
				}
			}
			if explain {
				x, err := reach.Explain(eng, args[0], args[1], pc)
				if err != nil {
					return usageErr("%v", err)
				}
				switch g.output {
				case "json", "yaml":
					return writeStructured(g.stdout, g.output, x)
				case "", "text":
					return reach.WriteExplainText(g.stdout, x)
				}
				return usageErr("--explain prints text, json or yaml, not %s", g.output)
			}
			m := reach.Build(eng, reach.Options{Ports: pc, Namespace: g.namespace, External: external})
			if g.output == "yaml" {
				var buf strings.Builder
				if err := reach.Render(&buf, m, "json"); err != nil {
					return err
				}
				var v any
				if err := jsonUnmarshal([]byte(buf.String()), &v); err != nil {
					return err
				}
				return writeStructured(g.stdout, "yaml", v)
			}
			return reach.Render(g.stdout, m, g.output)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ports, "ports", "", "only these connections: tcp/80,udp/53,8080,tcp/8000-8100,sctp (a bare number is TCP)")
	f.BoolVar(&explain, "explain", false, "explain one pair: kpath reach --explain SRC DST")
	f.BoolVar(&external, "external", false, "add rows/columns for outside address ranges, cut at every ipBlock/networks boundary")
	f.BoolVar(&hostNetAsPods, "hostnetwork-as-pods", false, "apply policy to hostNetwork pods like pod-network pods (netpol-analyzer's reading; default: they are their node's address)")
	f.BoolVar(&ipBlockExternal, "ipblock-external-only", false, "NetworkPolicy ipBlocks match only addresses outside the cluster (netpol-analyzer's reading; default: pod IPs too, as upstream e2e requires)")
	return cmd
}

// checkFormat validates -o for commands with their own format list.
func checkFormat(o string, allowed []string) error {
	if o == "" {
		return nil
	}
	for _, a := range allowed {
		if o == a {
			return nil
		}
	}
	return usageErr("-o %s: want one of %s", o, strings.Join(allowed, ", "))
}
