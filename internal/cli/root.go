// Package cli holds kpath's commands: flag parsing, loading the snapshot, and choosing a renderer. The work itself
// lives in the domain packages; nothing here decides how a packet moves.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/mesh"
)

// Exit codes, documented in README.md.
const (
	ExitOK        = 0 // success; for trace: the packet was delivered
	ExitError     = 1 // the tool failed (unreadable input, internal error)
	ExitUsage     = 2 // bad flags or arguments, or no input at all
	ExitDropped   = 3 // trace: the packet was dropped
	ExitRejected  = 4 // trace: the packet was rejected (ICMP unreachable / TCP RST)
	ExitUnknown   = 5 // trace: kpath cannot decide
	ExitViolation = 6 // check: an expectation was violated
)

// version is set at build time with -ldflags "-X github.com/kpath/kpath/internal/cli.version=v0.1.0".
var version = ""

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{ExitUsage, fmt.Errorf(format, a...)}
}

// globals are the flags every command shares.
type globals struct {
	files       []string
	recursive   bool
	namespace   string
	allNS       bool
	output      string
	demo        bool
	demoVariant string // "" (the shop) or "mesh" (the shop plus meshed namespaces)
	strict      bool
	verbose     int
	overrides   cluster.Overrides
	stdin       io.Reader
	stdout      io.Writer
	stderr      io.Writer
	outputSeen  bool
}

// Main runs kpath with args and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	code := ExitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return code
		}
	} else if isFlagError(err) {
		code = ExitUsage
	}
	fmt.Fprintf(stderr, "kpath: %v\n", err)
	return code
}

func isFlagError(err error) bool {
	m := err.Error()
	return strings.Contains(m, "unknown flag") || strings.Contains(m, "unknown command") ||
		strings.Contains(m, "flag needs an argument") || strings.Contains(m, "invalid argument") ||
		strings.Contains(m, "accepts ") || strings.Contains(m, "requires ")
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "kpath",
		Short: "kpath explains the life of a packet in a Kubernetes cluster",
		Long: `kpath takes cluster state (manifests, kubectl dumps, or the embedded demo) and a question, and tells the
packet's whole life hop by hop: DNS, Service translation, routing, policy, mesh — with the object or rule behind each
step, every blocker, and a latency budget.

Start with the demo:
  kpath inspect --demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			switch g.output {
			case "", "text", "json", "yaml":
			default:
				// reach renders more formats and checks -o itself; every other command stays strict.
				if cmd.Name() != "reach" {
					return usageErr("-o %s: want text, json or yaml", g.output)
				}
			}
			if err := g.overrides.Validate(); err != nil {
				return usageErr("%v", err)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringSliceVarP(&g.files, "filename", "f", nil, "manifests or kubectl dumps: files, directories, or - for stdin (repeatable)")
	pf.BoolVarP(&g.recursive, "recursive", "R", false, "descend into subdirectories of -f directories")
	pf.StringVarP(&g.namespace, "namespace", "n", "", "namespace for objects that have none, and the scope of listings")
	pf.BoolVarP(&g.allNS, "all-namespaces", "A", false, "list every namespace (the default when -n is not given)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format: text|json|yaml")
	pf.Var(&demoFlag{on: &g.demo, variant: &g.demoVariant}, "demo", "use the embedded demo cluster (with -f: add the files to it); --demo=mesh adds Linkerd- and Istio-meshed namespaces")
	pf.Lookup("demo").NoOptDefVal = "true"
	pf.BoolVar(&g.strict, "strict", false, "stop at the first input error instead of reporting it and going on")
	pf.CountVarP(&g.verbose, "verbose", "v", "more detail (repeat for more)")
	pf.StringVar(&g.overrides.ProxyMode, "proxy-mode", "", "override the detected kube-proxy mode: iptables|ipvs|nftables|cilium-ebpf|none")
	pf.StringVar(&g.overrides.CNI, "cni", "", "override the detected CNI (e.g. flannel-vxlan, calico-bgp, cilium-native)")
	pf.StringVar(&g.overrides.Mesh, "mesh", "", "override the detected mesh: none|linkerd|istio-sidecar|istio-ambient|cilium")
	pf.StringVar(&g.overrides.Encryption, "encryption", "", "override node-to-node encryption: none|wireguard|ipsec")
	pf.StringVar(&g.overrides.ClusterDomain, "cluster-domain", "", "override the cluster DNS domain (default: from the CoreDNS Corefile)")
	pf.StringVar(&g.overrides.PodCIDR, "pod-cidr", "", "override the cluster pod CIDR(s), comma-separated")
	pf.StringVar(&g.overrides.ServiceCIDR, "service-cidr", "", "override the service CIDR(s), comma-separated")
	pf.StringVar(&g.overrides.PolicyEnforcer, "policy-enforcer", "", "override what enforces NetworkPolicy (calico, cilium, kube-network-policies, …) or none")

	root.AddCommand(append([]*cobra.Command{newVersionCmd(g), newInspectCmd(g), newGenCmd(g), newTraceCmd(g), newRulesCmd(g), newReachCmd(g), newCheckCmd(g), newLabCmd(g), newDiffCmd(g)}, liveCommands(root, g)...)...)
	return root
}

// load builds the snapshot from --demo and/or -f, or else from the live cluster.
func (g *globals) load() (*cluster.Snapshot, error) {
	var srcs []cluster.Source
	if g.demo {
		for _, f := range demo.Files() {
			srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
		}
		if g.demoVariant == "mesh" {
			for _, f := range mesh.DemoFiles() {
				srcs = append(srcs, cluster.BytesSource("demo/mesh/"+f.Name, f.Data))
			}
		}
	}
	if len(g.files) > 0 {
		fs, err := cluster.FileSources(g.files, g.recursive, g.stdin)
		if err != nil {
			return nil, &exitError{ExitError, err}
		}
		srcs = append(srcs, fs...)
	}
	if len(srcs) == 0 {
		// Neither -f nor --demo: the live cluster of --kubeconfig/--context (or the current context, or in-cluster).
		return g.loadLive()
	}
	ns := g.namespace
	snap, err := cluster.Load(srcs, cluster.Options{Strict: g.strict, DefaultNamespace: ns, Overrides: g.overrides})
	if err != nil {
		var le *cluster.LoadError
		if errors.As(err, &le) {
			for _, d := range le.Diagnostics {
				fmt.Fprintln(g.stderr, d)
			}
			if le.Empty {
				return nil, &exitError{ExitUsage, err}
			}
		}
		return nil, &exitError{ExitError, err}
	}
	return snap, nil
}

// reportDiagnostics prints a one-line summary of input problems on stderr (all of them with -v), for commands
// whose main output is something else.
func (g *globals) reportDiagnostics(s *cluster.Snapshot) {
	var errs, warns int
	for _, d := range s.Diagnostics {
		switch d.Severity {
		case cluster.SeverityError:
			errs++
		case cluster.SeverityWarning:
			warns++
		}
		if g.verbose > 0 && d.Severity != cluster.SeverityInfo {
			fmt.Fprintln(g.stderr, d)
		}
	}
	if (errs > 0 || warns > 0) && g.verbose == 0 {
		fmt.Fprintf(g.stderr, "kpath: input has %d error(s) and %d warning(s); see `kpath inspect` or use -v\n", errs, warns)
	}
}

func versionString() string {
	v := version
	goV := ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		goV = bi.GoVersion
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
	}
	if v == "" {
		v = "dev"
	}
	return fmt.Sprintf("kpath %s (%s)", v, goV)
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print kpath's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(g.stdout, versionString())
			return nil
		},
	}
}

var _ = os.Stdout

// demoFlag is --demo (a boolean) that also accepts a variant: --demo=mesh.
type demoFlag struct {
	on      *bool
	variant *string
}

func (d *demoFlag) String() string {
	if d.on == nil || !*d.on {
		return "false"
	}
	if *d.variant != "" {
		return *d.variant
	}
	return "true"
}

func (d *demoFlag) Set(v string) error {
	switch v {
	case "true", "shop":
		*d.on, *d.variant = true, ""
	case "false":
		*d.on, *d.variant = false, ""
	case "mesh":
		*d.on, *d.variant = true, "mesh"
	default:
		return fmt.Errorf("want --demo, --demo=mesh or --demo=false, not %q", v)
	}
	return nil
}

func (d *demoFlag) Type() string     { return "demo" }
func (d *demoFlag) IsBoolFlag() bool { return true }
