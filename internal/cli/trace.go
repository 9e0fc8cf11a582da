package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/dns"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

func newTraceCmd(g *globals) *cobra.Command {
	var proto, libc string
	var all, rules bool
	cmd := &cobra.Command{
		Use:   "trace FROM TO",
		Short: "Follow one packet from FROM to TO: DNS, Service translation, routing, policy — hop by hop, with a verdict",
		Long: `Follow one packet through the cluster and print its journey.

FROM: pod/NS/NAME | deploy/NS/NAME (any workload kind: sts, ds, rs, job) | NS/NAME | node/NAME | external:IP
TO:   http://NAME:PORT/PATH | NAME[:PORT] (resolved through DNS from the source) | IP:PORT |
      svc/NS/NAME:PORT|PORTNAME | pod/NS/NAME:PORT | node/NAME:PORT

Exit code: 0 delivered, 3 dropped, 4 rejected, 5 unknown (1 tool error, 2 usage).`,
		Example: `  kpath trace --demo deploy/shop/frontend http://cart.shop:8080/
  kpath trace --demo shop/checkout cart.shop:8080
  kpath trace --demo external:203.0.113.7 node/kpath-worker2:30080
  kpath trace -f dump.yaml pod/default/client svc/default/web:http -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := packet.ParseProtocol(proto)
			if err != nil {
				return usageErr("--proto: %v", err)
			}
			if libc != "" && libc != "glibc" && libc != "musl" {
				return usageErr("--libc %q: want glibc or musl", libc)
			}
			snap, err := g.load()
			if err != nil {
				return err
			}
			g.reportDiagnostics(snap)
			eng, err := trace.New(snap)
			if err != nil {
				return &exitError{ExitError, err}
			}
			attachPolicy(eng, snap)
			opt := trace.Options{Protocol: p, Libc: dns.Libc(libc), Rules: rules}
			var js []*trace.Journey
			if all {
				js, err = eng.TraceAll(args[0], args[1], opt)
			} else {
				var j *trace.Journey
				j, err = eng.Trace(args[0], args[1], opt)
				js = []*trace.Journey{j}
			}
			if err != nil {
				return usageErr("%v", err)
			}
			switch g.output {
			case "json", "yaml":
				if all {
					err = writeStructured(g.stdout, g.output, js)
				} else {
					err = writeStructured(g.stdout, g.output, js[0])
				}
				if err != nil {
					return err
				}
			default:
				for i, j := range js {
					if i > 0 {
						fmt.Fprintln(g.stdout, "\n────────────────────────────────────────────────────────")
					}
					trace.WriteText(g.stdout, j, g.verbose)
				}
			}
			return &exitError{code: verdictCode(js[0].Verdict)}
		},
	}
	cmd.Flags().StringVar(&proto, "proto", "tcp", "protocol: tcp|udp|sctp")
	cmd.Flags().BoolVar(&all, "all-backends", false, "walk every backend the Service could pick, one journey each")
	cmd.Flags().BoolVar(&rules, "rules", false, "show, under each Service translation, the walk through the node's rendered kube-proxy rules, rule by rule")
	cmd.Flags().StringVar(&libc, "libc", "", "the source's resolver: glibc|musl (default: musl for Alpine images, else glibc)")
	return cmd
}

func verdictCode(v trace.Verdict) int {
	switch v {
	case trace.Delivered:
		return ExitOK
	case trace.Dropped:
		return ExitDropped
	case trace.Rejected:
		return ExitRejected
	}
	return ExitUnknown
}
