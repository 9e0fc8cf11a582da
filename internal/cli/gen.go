package cli

import "github.com/spf13/cobra"

func newGenCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "gen", Short: "Generate a synthetic cluster snapshot (see kpath gen --help)", Hidden: true,
		RunE: func(*cobra.Command, []string) error { return usageErr("gen: not wired yet") }}
}
