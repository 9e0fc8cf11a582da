package cli

import "github.com/spf13/cobra"

func newLabTraceCmd(g *globals) *cobra.Command { return &cobra.Command{Use: "trace FROM TO"} }
func newLabBenchCmd(g *globals) *cobra.Command { return &cobra.Command{Use: "bench"} }
