package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/demo"
	"github.com/kpath/kpath/live"
)

// liveFlags are the cluster source flags (like kubectl's). They live beside globals, keyed by it, because every
// command shares them.
type liveFlags struct {
	kubeconfig string
	context    string
	timeout    time.Duration
}

var (
	liveFlagsMu sync.Mutex
	liveFlagsOf = map[*globals]*liveFlags{}
)

func (g *globals) live() *liveFlags {
	liveFlagsMu.Lock()
	defer liveFlagsMu.Unlock()
	lf := liveFlagsOf[g]
	if lf == nil {
		lf = &liveFlags{}
		liveFlagsOf[g] = lf
	}
	return lf
}

// liveCommands registers the cluster source flags on root and returns the live-only commands.
func liveCommands(root *cobra.Command, g *globals) []*cobra.Command {
	lf := g.live()
	pf := root.PersistentFlags()
	pf.StringVar(&lf.kubeconfig, "kubeconfig", "", "kubeconfig file for a live cluster (default $KUBECONFIG, ~/.kube/config, or in-cluster); used when neither -f nor --demo is given")
	pf.StringVar(&lf.context, "context", "", "kubeconfig context to read (default: the current context)")
	pf.DurationVar(&lf.timeout, "request-timeout", 60*time.Second, "timeout of each list request to a live cluster")
	return []*cobra.Command{newSnapshotCmd(g), newRBACCmd(g)}
}

// loadLive reads the cluster named by --kubeconfig/--context (or the current context, or in-cluster config).
func (g *globals) loadLive() (*cluster.Snapshot, error) {
	cfg, name, opts, err := g.liveConfig()
	if err != nil {
		return nil, err
	}
	snap, _, err := live.Load(context.Background(), cfg, name, opts,
		cluster.Options{Strict: g.strict, DefaultNamespace: g.namespace, Overrides: g.overrides})
	if err != nil {
		var le *cluster.LoadError
		if errors.As(err, &le) {
			for _, d := range le.Diagnostics {
				fmt.Fprintln(g.stderr, d)
			}
		}
		return nil, &exitError{ExitError, err}
	}
	return snap, nil
}

// liveConfig resolves the cluster; no kubeconfig at all is a usage error that points at -f and --demo.
func (g *globals) liveConfig() (*rest.Config, string, live.Options, error) {
	lf := g.live()
	cfg, name, err := live.RESTConfig(lf.kubeconfig, lf.context)
	if err != nil {
		if errors.Is(err, live.ErrNoConfig) {
			return nil, "", live.Options{}, usageErr("no cluster state given: %v.\n"+
				"  Read a cluster with --kubeconfig FILE [--context NAME], give manifests or a kubectl dump with -f FILE|DIR|-,\n"+
				"  or try the embedded demo cluster: kpath inspect --demo", err)
		}
		return nil, "", live.Options{}, &exitError{ExitError, err}
	}
	return cfg, name, live.Options{RequestTimeout: lf.timeout, Progress: progressLine(g.stderr, name)}, nil
}

// progressLine prints "kpath: listing live:ctx: 12,345 objects (pods 10,000 · services 1,000 …) 3.2s" on stderr
// for listings that take more than two seconds: redrawn in place on a terminal, a line every 5 s otherwise.
func progressLine(w io.Writer, name string) func(live.Progress) {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	printed := false
	var last time.Duration
	return func(p live.Progress) {
		if p.Elapsed < 2*time.Second || (p.Done && !printed) {
			return
		}
		if !tty && !p.Done && printed && p.Elapsed-last < 5*time.Second {
			return
		}
		last = p.Elapsed
		kinds := append([]live.KindProgress(nil), p.Kinds...)
		sort.SliceStable(kinds, func(i, j int) bool { return kinds[i].Items > kinds[j].Items })
		var parts []string
		for i, k := range kinds {
			if i == 4 {
				parts = append(parts, "…")
				break
			}
			if k.Items > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", strings.ToLower(k.Kind)+"s", k.Items))
			}
		}
		state := "listing"
		if p.Done {
			state = "listed"
		}
		line := fmt.Sprintf("kpath: %s %s: %d objects (%s) %.1fs", state, name, p.Items, strings.Join(parts, " · "), p.Elapsed.Seconds())
		if tty {
			fmt.Fprint(w, "\r\033[K"+line)
			if p.Done {
				fmt.Fprintln(w)
			}
		} else {
			fmt.Fprintln(w, line)
		}
		printed = true
	}
}

func newSnapshotCmd(g *globals) *cobra.Command {
	var out, key string
	var redact bool
	cmd := &cobra.Command{
		Use:   "snapshot -o FILE[.json|.yaml][.gz]",
		Short: "Save a live cluster's state (read-only) to a file the offline commands read with -f; --redact for sharing",
		Long: `Save what kpath reads from a live cluster — every kind it models, never Secrets — into one file that
` + "`kpath … -f FILE`" + ` loads exactly as the live cluster, for bug reports and reproducible questions.

The format follows the name: .json (a kind: List) or .yaml/.yml (a YAML stream), optionally gzipped with .gz;
"-" writes YAML to stdout. With -f or --demo instead of a live cluster, the given files are normalised (and
redacted) the same way.

--redact replaces object names, namespaces, node names, label values and IP addresses with consistent pseudonyms
(the same input gives the same output, in every field), keeping CIDR containment, so journeys in the redacted
snapshot still make sense. Kept: label keys, system namespaces (kube-*), container images and free text except
IPv4 addresses. --redact-key makes pseudonyms unguessable (without it a short name can be found by trying).`,
		Example: `  kpath snapshot -o cluster.yaml.gz
  kpath snapshot --context prod -o prod.json --redact
  kpath inspect -f cluster.yaml.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErr("snapshot needs -o FILE (.json, .yaml or .yml, optionally .gz; - for stdout)")
			}
			var objs []live.Object
			var header []string
			if g.demo || len(g.files) > 0 {
				var srcs []cluster.Source
				if g.demo {
					for _, f := range demo.Files() {
						srcs = append(srcs, cluster.BytesSource("demo/"+f.Name, f.Data))
					}
				}
				fs, err := cluster.FileSources(g.files, g.recursive, g.stdin)
				if err != nil {
					return &exitError{ExitError, err}
				}
				srcs = append(srcs, fs...)
				objs, err = live.ReadObjects(srcs)
				if err != nil {
					return &exitError{ExitError, err}
				}
				header = append(header, fmt.Sprintf("kpath snapshot of %d files", len(srcs)))
			} else {
				cfg, name, opts, err := g.liveConfig()
				if err != nil {
					return err
				}
				rep, err := live.Start(context.Background(), cfg, name, opts)
				if err != nil {
					return &exitError{ExitError, err}
				}
				objs, err = rep.Objects()
				if err != nil {
					return &exitError{ExitError, err}
				}
				header = append(header, fmt.Sprintf("kpath snapshot of %s (%s): %d objects, listed in %.1fs",
					rep.Name, rep.Server, len(objs), rep.Elapsed.Seconds()))
				for _, d := range rep.Diagnostics() {
					header = append(header, d.String())
					fmt.Fprintln(g.stderr, d)
				}
			}
			if redact {
				live.NewRedactor(key).Redact(objs)
				header = append(header, "redacted: names, namespaces, label values and IP addresses are pseudonyms")
			}
			f, gz := live.FormatFor(out)
			var w io.Writer = g.stdout
			var file *os.File
			if out != "-" {
				var err error
				file, err = os.CreateTemp(filepath.Dir(out), ".kpath-snapshot-*")
				if err != nil {
					return &exitError{ExitError, fmt.Errorf("-o %s: %w", out, err)}
				}
				defer os.Remove(file.Name())
				w = file
			}
			if err := live.WriteSnapshot(w, objs, f, gz, header); err != nil {
				return &exitError{ExitError, fmt.Errorf("writing %s: %w", out, err)}
			}
			if file != nil {
				if err := file.Close(); err != nil {
					return &exitError{ExitError, fmt.Errorf("writing %s: %w", out, err)}
				}
				if err := os.Rename(file.Name(), out); err != nil {
					return &exitError{ExitError, fmt.Errorf("writing %s: %w", out, err)}
				}
				fmt.Fprintf(g.stderr, "kpath: wrote %d objects to %s\n", len(objs), out)
			}
			return nil
		},
	}
	// -o here is the file: it shadows the global output format for this command.
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write: NAME.json, NAME.yaml or NAME.yml, optionally .gz; - for stdout (YAML)")
	cmd.Flags().BoolVar(&redact, "redact", false, "replace names, namespaces, label values and IPs with consistent pseudonyms")
	cmd.Flags().StringVar(&key, "redact-key", "", "secret that keys the pseudonyms (default: a fixed key; same input → same output either way)")
	return cmd
}

func newRBACCmd(g *globals) *cobra.Command {
	var name, user, group, sa string
	cmd := &cobra.Command{
		Use:   "rbac",
		Short: "Print the minimal ClusterRole (and a binding example) kpath needs to read a live cluster",
		Long: `Print the ClusterRole kpath needs to read a live cluster: "list" on each kind it models and nothing else —
no get, watch or writes, and no Secrets — plus a ClusterRoleBinding for a user, group or service account.
docs/live.md explains each rule. Apply with: kpath rbac --user alice | kubectl apply -f -`,
		Example: `  kpath rbac --user alice@example.com
  kpath rbac --service-account monitoring/kpath`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kind, subject, ns := "User", user, ""
			switch {
			case sa != "":
				var ok bool
				ns, subject, ok = strings.Cut(sa, "/")
				if !ok || ns == "" || subject == "" {
					return usageErr("--service-account %q: want NAMESPACE/NAME", sa)
				}
				kind = "ServiceAccount"
			case group != "":
				kind, subject = "Group", group
			case user == "":
				subject = "REPLACE-WITH-USER"
			}
			fmt.Fprint(g.stdout, live.ClusterRoleYAML(name, kind, subject, ns))
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "kpath-reader", "name of the ClusterRole and ClusterRoleBinding")
	cmd.Flags().StringVar(&user, "user", "", "bind the role to this user")
	cmd.Flags().StringVar(&group, "group", "", "bind the role to this group")
	cmd.Flags().StringVar(&sa, "service-account", "", "bind the role to this service account (NAMESPACE/NAME)")
	return cmd
}
