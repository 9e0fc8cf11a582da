package lab

import (
	"fmt"
	"io"
	"os"
)

// Status is what `lab status -o json` prints.
type Status struct {
	Name         string      `json:"name"`
	Ready        bool        `json:"ready"`
	Mode         string      `json:"mode"`
	Nodes        int         `json:"nodes"`
	Pods         int         `json:"pods"`
	Namespaces   int         `json:"namespaces"`
	Missing      []string    `json:"missingNamespaces,omitempty"`
	AgentRunning bool        `json:"agentRunning"`
	Policy       PolicyState `json:"policy"`
	BuildTime    string      `json:"buildTime,omitempty"`
	Notes        []string    `json:"notes,omitempty"`
	Features     Features    `json:"features"`
}

// StatusOf checks a lab against the kernel.
func StatusOf(st *State) Status {
	s := Status{Name: st.Name, Ready: st.Ready, Namespaces: len(st.Namespaces), Policy: st.Policy, BuildTime: st.BuildFor,
		Notes: st.Notes, Features: DetectFeatures()}
	if st.Plan != nil {
		s.Mode, s.Nodes, s.Pods = string(st.Plan.Mode), len(st.Plan.Nodes), len(st.Plan.Pods)
	}
	for _, ns := range st.Namespaces {
		if !netnsExists(ns) {
			s.Missing = append(s.Missing, ns)
		}
	}
	if st.Agent != nil {
		s.AgentRunning = procStartTime(st.Agent.PID) == st.Agent.StartTime && !isZombie(st.Agent.PID)
	}
	return s
}

// WriteStatus prints a lab's status.
func WriteStatus(w io.Writer, st *State) {
	s := StatusOf(st)
	state := "ready"
	if !s.Ready {
		state = "INCOMPLETE (interrupted or failed build: run `kpath lab down --name " + s.Name + "`)"
	}
	fmt.Fprintf(w, "lab %s: %s — %d nodes, %d pods, %d namespaces (prefix %s), kube-proxy %s", s.Name, state, s.Nodes, s.Pods, s.Namespaces, Prefix(s.Name), orDash(s.Mode))
	if s.BuildTime != "" {
		fmt.Fprintf(w, ", built in %s", s.BuildTime)
	}
	fmt.Fprintln(w)
	if len(s.Missing) > 0 {
		fmt.Fprintf(w, "  MISSING namespaces: %v\n", s.Missing)
	}
	agent := "not running"
	if s.AgentRunning {
		agent = fmt.Sprintf("running (pid %d)", st.Agent.PID)
	}
	fmt.Fprintf(w, "  agent (DNS + echo): %s\n", agent)
	pol := "NOT enforced"
	if s.Policy.Enforced {
		pol = "enforced"
	}
	fmt.Fprintf(w, "  NetworkPolicy: %s — %s\n", pol, s.Policy.How)
	if st.Plan != nil {
		p := st.Plan
		fmt.Fprintf(w, "  underlay %s (gateway/external client %s in %s), overlay %s, MTU %d (pods %d)\n", p.Underlay, p.Gateway, p.ExternalNS, orDash(p.Overlay.Type), p.MTU, p.PodMTU)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	writeRealStatus(w, st)
	fmt.Fprintf(w, "  state: %s\n", StatePath(st.Name))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteFeatures prints what the kernel offers the lab.
func WriteFeatures(w io.Writer, f Features) {
	fmt.Fprintf(w, "kernel %s:\n", f.Kernel)
	for _, x := range []struct {
		name string
		f    Feature
	}{{"vxlan", f.VXLAN}, {"geneve", f.Geneve}, {"ipip", f.IPIP}, {"wireguard", f.WireGuard}, {"br_netfilter per netns", f.BrNetfilterPerNetns}} {
		ok := "missing"
		if x.f.OK {
			ok = "yes"
		}
		fmt.Fprintf(w, "  %-24s %-8s %s\n", x.name, ok, x.f.Why)
	}
	_ = os.Stdout
}
