package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/lab"
)

func newLabCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Build the cluster's network from real Linux namespaces and prove predicted journeys on the kernel (root)",
		Long: `The lab materializes a snapshot as real kernel state on this machine: one network namespace per node and per
pod, veth pairs, a cni0 bridge per node, an underlay between nodes, flannel-style VXLAN, the kube-proxy rules
'kpath rules' renders, a DNS server answering exactly as the model's CoreDNS, and echo servers on every declared
container port. 'kpath lab trace' then performs a journey for real and diffs it against the prediction.

Nothing in the root network namespace is changed. Everything the lab creates is recorded in
/run/kpath/lab-NAME.json and removed by 'kpath lab down', even after a crash.`,
		Example: `  sudo kpath lab up --demo
  sudo kpath lab trace pod/shop/frontend- http://cart.shop:8080/
  sudo kpath lab down`,
	}
	cmd.AddCommand(newLabUpCmd(g), newLabDownCmd(g), newLabStatusCmd(g), newLabTraceCmd(g), newLabBenchCmd(g), newLabAgentCmd(g))
	return cmd
}

func labName(cmd *cobra.Command, name *string) {
	cmd.Flags().StringVar(name, "name", lab.DefaultName, "lab name (namespaces are prefixed kp-NAME-)")
}

func requireRoot() error {
	if os.Geteuid() != 0 {
		return &exitError{ExitError, lab.ErrNotRoot}
	}
	return nil
}

func newLabUpCmd(g *globals) *cobra.Command {
	var name, mode string
	var noPolicy, real bool
	cmd := &cobra.Command{
		Use:   "up [-f FILE|--demo] [--mode nftables|iptables] [--name LAB] [--real]",
		Short: "Build the lab: namespaces, links, routes, VXLAN, kube-proxy rules, DNS and echo servers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := lab.ValidName(name); err != nil {
				return usageErr("--name: %v", err)
			}
			m, err := parseRulesMode(mode)
			if err != nil {
				return err
			}
			if err := requireRoot(); err != nil {
				return err
			}
			in := lab.Inputs{Demo: g.demo, Recursive: g.recursive, Overrides: g.overrides}
			for _, f := range g.files {
				if f == "-" {
					return usageErr("-f -: the lab reloads its inputs (agent, lab trace), so give files or directories, not stdin")
				}
				abs, err := filepath.Abs(f)
				if err != nil {
					return usageErr("-f %s: %v", f, err)
				}
				in.Files = append(in.Files, abs)
			}
			snap, err := g.load()
			if err != nil {
				return err
			}
			g.reportDiagnostics(snap)
			exe, err := os.Executable()
			if err != nil {
				return &exitError{ExitError, err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			kind := "kube-proxy " + labModeName(snap, m)
			if real {
				kind = "real kube-apiserver, kube-controller-manager, kube-proxy " + labModeName(snap, m) + " and CoreDNS"
			}
			fmt.Fprintf(g.stdout, "building lab %s (%d nodes, %d pods, %s)\n", name, len(snap.Nodes), len(snap.Pods), kind)
			st, err := lab.Up(ctx, snap, lab.Options{Name: name, Mode: m, Inputs: in, NoPolicy: noPolicy, Real: real,
				Agent: []string{exe, "lab", "agent", "--name", name}, Log: g.stdout})
			if err != nil {
				return &exitError{ExitError, err}
			}
			lab.WriteStatus(g.stdout, st)
			return nil
		},
	}
	labName(cmd, &name)
	cmd.Flags().StringVar(&mode, "mode", "", "kube-proxy rules to load: nftables|iptables (default: the profile's mode)")
	cmd.Flags().BoolVar(&noPolicy, "no-policy", false, "do not enforce NetworkPolicy")
	cmd.Flags().BoolVar(&real, "real", false, "run the real kube-apiserver+etcd (own namespace), kube-controller-manager, kube-proxy (every node) and CoreDNS (kube-dns pods) instead of kpath's rules and DNS model; binaries from test/apiserver/build.sh and test/coredns/build.sh")
	return cmd
}

func labModeName(snap *cluster.Snapshot, m kubeproxy.Mode) string {
	if m != "" {
		return string(m)
	}
	return string(snap.Profile.ProxyMode)
}

func newLabDownCmd(g *globals) *cobra.Command {
	var name string
	var all bool
	cmd := &cobra.Command{
		Use:   "down [--name LAB | --all]",
		Short: "Remove everything a lab created (idempotent; works after the lab's processes were killed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireRoot(); err != nil {
				return err
			}
			names := []string{name}
			if all {
				names = lab.ListStates()
			}
			for _, n := range names {
				st, err := lab.LoadState(n)
				if errors.Is(err, lab.ErrNoLab) {
					fmt.Fprintf(g.stdout, "lab %s: nothing to remove\n", n)
					continue
				}
				if err != nil {
					return &exitError{ExitError, err}
				}
				if err := lab.Down(context.Background(), st); err != nil {
					return &exitError{ExitError, err}
				}
				fmt.Fprintf(g.stdout, "lab %s removed (%d namespaces)\n", n, len(st.Namespaces))
			}
			return nil
		},
	}
	labName(cmd, &name)
	cmd.Flags().BoolVar(&all, "all", false, "remove every lab that has a state file")
	return cmd
}

func newLabStatusCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "status [--name LAB]",
		Short: "Show what a lab built, whether its agent runs, and what this kernel can do",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := lab.LoadState(name)
			if errors.Is(err, lab.ErrNoLab) {
				fmt.Fprintf(g.stdout, "no lab %q (labs: %s)\n", name, orNone(lab.ListStates()))
				lab.WriteFeatures(g.stdout, lab.DetectFeatures())
				return nil
			}
			if err != nil {
				return &exitError{ExitError, err}
			}
			if g.output == "json" || g.output == "yaml" {
				return writeStructured(g.stdout, g.output, lab.StatusOf(st))
			}
			lab.WriteStatus(g.stdout, st)
			lab.WriteFeatures(g.stdout, lab.DetectFeatures())
			return nil
		},
	}
	labName(cmd, &name)
	return cmd
}

func orNone(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	return strings.Join(ss, ", ")
}

// newLabAgentCmd is the process `lab up` starts: it serves DNS and echo inside the lab's namespaces.
func newLabAgentCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:    "agent --name LAB",
		Short:  "Serve DNS and echo in a lab's namespaces (started by lab up)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := lab.LoadState(name)
			if err != nil {
				return &exitError{ExitError, err}
			}
			snap, err := g.loadLabInputs(st)
			if err != nil {
				return err
			}
			ready := os.NewFile(3, "ready")
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := lab.RunAgent(ctx, st, snap, ready); err != nil {
				if ready != nil {
					fmt.Fprintf(ready, "error: %v\n", err)
					ready.Close()
				}
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	labName(cmd, &name)
	return cmd
}

// loadLabInputs loads the snapshot a lab was built from.
func (g *globals) loadLabInputs(st *lab.State) (*cluster.Snapshot, error) {
	g.demo, g.files, g.recursive, g.overrides = st.Inputs.Demo, st.Inputs.Files, st.Inputs.Recursive, st.Inputs.Overrides
	if st.Plan != nil && st.Plan.Mode != "" {
		g.overrides.ProxyMode = string(st.Plan.Mode) // predictions follow the rules the lab loaded
	}
	return g.load()
}
