package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/dns"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

func newTraceCmd(g *globals) *cobra.Command {
	var proto, libc, batch string
	var all, rules, full bool
	cmd := &cobra.Command{
		Use:   "trace FROM TO | --batch FILE",
		Short: "Follow one packet from FROM to TO: DNS, Service translation, routing, policy — hop by hop, with a verdict",
		Long: `Follow one packet through the cluster and print its journey.

FROM: pod/NS/NAME | deploy/NS/NAME (any workload kind: sts, ds, rs, job) | NS/NAME | node/NAME | external:IP
TO:   http://NAME:PORT/PATH | NAME[:PORT] (resolved through DNS from the source) | IP:PORT |
      svc/NS/NAME:PORT|PORTNAME | pod/NS/NAME:PORT | node/NAME:PORT

Exit code: 0 delivered, 3 dropped, 4 rejected, 5 unknown (1 tool error, 2 usage).

--batch FILE (- for stdin) answers one question per line, JSON lines in and out, on one loaded snapshot:
  in:  {"from": "shop/checkout", "to": "cart.shop:8080", "proto": "tcp"}
  out: {"line":1,"from":…,"to":…,"verdict":…,"verdict_reason":…,"backend":{…},"blockers":[…],"latency_ns":…}
       (--full: the whole journey, as -o json prints it, plus "line")
A line that cannot be asked gets {"line":N,"error":"line N: …"} and the batch goes on.
Batch exit code: 0 every line answered (whatever the verdicts), 2 some lines were errors, 1 reading/writing failed.`,
		Example: `  kpath trace --demo deploy/shop/frontend http://cart.shop:8080/
  kpath trace --demo shop/checkout cart.shop:8080
  kpath trace --demo external:203.0.113.7 node/kpath-worker2:30080
  kpath trace -f dump.yaml pod/default/client svc/default/web:http -o json
  kpath trace -f dump.yaml --batch questions.jsonl > answers.jsonl`,
		Args: func(cmd *cobra.Command, args []string) error {
			if batch != "" {
				if len(args) != 0 {
					return usageErr("--batch reads FROM and TO from %s: give no FROM TO arguments", batch)
				}
				return nil
			}
			if len(args) != 2 {
				return usageErr("trace needs FROM and TO (or --batch FILE), got %d argument(s)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := packet.ParseProtocol(proto)
			if err != nil {
				return usageErr("--proto: %v", err)
			}
			if batch == "" && full {
				return usageErr("--full applies to --batch only (use -o json for one journey)")
			}
			if batch != "" && all {
				return usageErr("--batch answers each question with one backend: --all-backends is not supported with it")
			}
			if f := cmd.Flag("output"); batch != "" && f != nil && f.Changed && g.output != "json" {
				return usageErr("--batch writes JSON lines: -o %s is not supported with it", g.output)
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
			if batch != "" {
				return runBatch(g, eng, batch, trace.BatchOptions{Options: opt, Full: full})
			}
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
	cmd.Flags().StringVar(&batch, "batch", "", "answer the questions in `FILE` (JSON lines: {\"from\",\"to\",\"proto\"}; - for stdin) and write one JSON line each")
	cmd.Flags().BoolVar(&full, "full", false, "with --batch: write each question's whole journey instead of the compact result")
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

// runBatch answers the questions in path (- for stdin) on eng, one JSON line each to stdout.
func runBatch(g *globals, eng *trace.Engine, path string, opt trace.BatchOptions) error {
	var in io.Reader = g.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return usageErr("--batch: %v", err)
		}
		defer f.Close()
		in = f
	}
	st, err := eng.Batch(in, g.stdout, opt)
	if err != nil {
		return &exitError{ExitError, fmt.Errorf("--batch %s: %w", path, err)}
	}
	if st.Errors > 0 {
		return &exitError{ExitUsage, fmt.Errorf("--batch %s: %d of %d line(s) could not be asked (see their \"error\" records)", path, st.Errors, st.Questions)}
	}
	return nil
}
