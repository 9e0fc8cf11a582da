package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/netpol"
	"github.com/kpath/kpath/reach"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

func newCheckCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "check INTENTS.yaml [-f FILE|DIR|- ... | --demo]",
		Short: "Check declared connectivity intents against the policies; exit 6 on any violation (for CI)",
		Long: `kpath check reads expectations and checks every matching workload pair with the policy engine.

  intents:
  - from: shop/frontend            # NAMESPACE/WORKLOAD, NAMESPACE/POD, NAMESPACE/* or *
    to: shop/cart
    port: 8080                     # the pod's port (policy runs after Service DNAT); omit for "any port"
    protocol: TCP                  # TCP (default), UDP or SCTP
    expect: allowed                # allowed | denied
  - from: "*"
    to: shop/db
    port: 5432
    expect: denied
    except: [shop/cart, shop/adminer]   # these sources must be allowed instead
  - dns: true                      # every pod-network workload reaches kube-dns on UDP 53

Exit codes: 0 all intents hold, 6 a violation (each is printed with the deciding policy), 2 bad intents file.`,
		Example: `  kpath check --demo intents.yaml
  kpath check -f manifests/ -R intents.yaml -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(g.output, []string{"text", "json", "yaml"}); err != nil {
				return err
			}
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(g.stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return usageErr("reading intents: %v", err)
			}
			in, err := reach.ParseIntents(data)
			if err != nil {
				return usageErr("%s: %v", args[0], err)
			}
			snap, err := g.load()
			if err != nil {
				return err
			}
			g.reportDiagnostics(snap)
			res := reach.Check(netpol.New(snap), in)
			if g.output == "json" || g.output == "yaml" {
				if err := writeStructured(g.stdout, g.output, res); err != nil {
					return err
				}
			} else {
				reach.WriteCheckText(g.stdout, res)
			}
			if !res.OK() {
				return &exitError{ExitViolation, nil}
			}
			return nil
		},
	}
}

var _ = fmt.Sprint
