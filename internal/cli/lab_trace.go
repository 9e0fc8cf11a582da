package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/lab"
	"github.com/kpath/kpath/latency"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

func newLabTraceCmd(g *globals) *cobra.Command {
	var name, proto string
	var count int
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "trace FROM TO",
		Short: "Perform FROM → TO for real in the lab, watch the kernel, and diff it against the prediction",
		Long: `Perform the journey inside the lab — DNS through the source pod's resolver (getent, glibc, the pod's
resolv.conf), the TCP/UDP connection, an HTTP GET for URLs — while 'nft monitor trace' watches every node
namespace and conntrack records the NAT. The observed journey is printed in the same form as 'kpath trace', then
the diff against the prediction: MATCH, or every verdict/backend/DNS query/hop/chain that differs.

FROM and TO take the same forms as 'kpath trace'. Exit code: 0 MATCH, 6 different, 1 tool error.`,
		Example: `  sudo kpath lab trace pod/shop/frontend- http://cart.shop:8080/
  sudo kpath lab trace --count 20 deploy/shop/frontend cart.shop:8080
  sudo kpath lab trace external:203.0.113.7 node/kpath-worker:30808`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := packet.ParseProtocol(proto)
			if err != nil {
				return usageErr("--proto: %v", err)
			}
			if err := requireRoot(); err != nil {
				return err
			}
			st, err := lab.LoadState(name)
			if err != nil {
				return &exitError{ExitError, err}
			}
			snap, err := g.loadLabInputs(st)
			if err != nil {
				return err
			}
			eng, err := trace.New(snap)
			if err != nil {
				return &exitError{ExitError, err}
			}
			attachPolicy(eng, snap)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := lab.Trace(ctx, st, snap, eng, args[0], args[1], lab.TraceOptions{Protocol: p, Count: count, Timeout: timeout})
			if err != nil {
				var qe *trace.QuestionError
				if asQuestion(err, &qe) {
					return usageErr("%v", err)
				}
				return &exitError{ExitError, err}
			}
			if g.output == "json" || g.output == "yaml" {
				if err := writeStructured(g.stdout, g.output, res); err != nil {
					return err
				}
			} else {
				lab.WriteResult(g.stdout, res)
			}
			if !res.Match() {
				return &exitError{code: ExitViolation}
			}
			return nil
		},
	}
	labName(cmd, &name)
	cmd.Flags().StringVar(&proto, "proto", "tcp", "protocol: tcp|udp")
	cmd.Flags().IntVar(&count, "count", 1, "connections to make (the first is traced; all count toward the backend set)")
	cmd.Flags().DurationVar(&timeout, "timeout", 1500*time.Millisecond, "no answer within this is a drop")
	return cmd
}

func asQuestion(err error, qe **trace.QuestionError) bool {
	e, ok := err.(*trace.QuestionError)
	if ok {
		*qe = e
	}
	return ok
}

func newLabBenchCmd(g *globals) *cobra.Command {
	var out string
	var services []int
	var samples int
	cmd := &cobra.Command{
		Use:   "bench [--out calibration.json]",
		Short: "Measure per-hop costs on this kernel (veth, bridge, VXLAN, nftables vs iptables DNAT) and write a latency calibration",
		Long: `Build throwaway labs and measure: UDP echo round trips across one veth, a bridge and the VXLAN overlay, and new
TCP connections to a ClusterIP versus the pod IP with kube-proxy's nftables and iptables rules for 1,000 and 5,000
Services. The result is written in the calibration format package latency reads (docs/latency-model.md).`,
		Example: `  sudo kpath lab bench --out calibration.json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			rep, err := lab.Bench(ctx, lab.BenchOptions{Services: services, Samples: samples, Log: g.stderr})
			if err != nil {
				return &exitError{ExitError, err}
			}
			w := g.stdout
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return &exitError{ExitError, err}
				}
				defer f.Close()
				w = f
			}
			if g.output == "json" && out == "" {
				return writeStructured(g.stdout, "json", rep)
			}
			return latency.WriteCalibration(w, rep.Calibration)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the calibration file here (default: stdout)")
	cmd.Flags().IntSliceVar(&services, "services", []int{1000, 5000}, "Service counts for the DNAT measurements")
	cmd.Flags().IntVar(&samples, "samples", 2000, "samples per echo measurement (connections: a quarter)")
	return cmd
}
