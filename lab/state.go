package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kpath/kpath/cluster"
)

// StateSchema versions the state file.
const StateSchema = "kpath.dev/lab-state/v1"

// StateDir holds one state file per lab (lab-<name>.json) and the agent's logs. KPATH_LAB_DIR overrides it.
func StateDir() string {
	if d := os.Getenv("KPATH_LAB_DIR"); d != "" {
		return d
	}
	return "/run/kpath"
}

// StatePath is where lab name's state file lives.
func StatePath(name string) string { return filepath.Join(StateDir(), "lab-"+name+".json") }

// Inputs is how the snapshot was given to `lab up`, so the agent and `lab trace` load the same one.
type Inputs struct {
	Demo      bool              `json:"demo,omitempty"`
	Files     []string          `json:"files,omitempty"` // absolute paths
	Recursive bool              `json:"recursive,omitempty"`
	Overrides cluster.Overrides `json:"overrides"`
}

// State is everything a lab created. `lab down` deletes exactly what it lists, so it is written before anything
// is created and updated as the build goes on.
type State struct {
	Schema  string    `json:"schema"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Inputs  Inputs    `json:"inputs"`
	Plan    *Plan     `json:"plan"`
	// Namespaces are the network namespaces (names under /var/run/netns) this lab owns.
	Namespaces []string `json:"namespaces"`
	// Paths are files and directories this lab owns (resolv.conf dirs under /etc/netns, logs).
	Paths []string `json:"paths"`
	// Agent is the process serving DNS and echo in the lab's namespaces.
	Agent *Process `json:"agent,omitempty"`
	// Policy says whether NetworkPolicy is enforced, and how or why not.
	Policy  PolicyState `json:"policy"`
	Sysctls []string    `json:"sysctls"`
	// Real is set when the lab runs the real Kubernetes components (`lab up --real`).
	Real     *RealState `json:"real,omitempty"`
	Ready    bool       `json:"ready"`
	BuildFor string     `json:"buildTime,omitempty"`
	Notes    []string   `json:"notes,omitempty"`
}

// PolicyState reports policy enforcement.
type PolicyState struct {
	Enforced bool   `json:"enforced"`
	How      string `json:"how"`
	Rules    int    `json:"rules,omitempty"` // allow-set elements loaded
	// IngressPods are the pods (ns/name) whose namespaces hold ingress rules.
	IngressPods []string `json:"ingressPods,omitempty"`
}

// Process is a process the lab started, identified by pid and kernel start time (so a reused pid is never killed).
type Process struct {
	PID       int    `json:"pid"`
	StartTime string `json:"startTime"`
	Cmd       string `json:"cmd"`
}

// DNSLog is the agent's DNS query log (JSON lines, one per query answered).
func (s *State) DNSLog() string { return filepath.Join(StateDir(), "lab-"+s.Name+".dns.log") }

// AgentLog is the agent's own log.
func (s *State) AgentLog() string { return filepath.Join(StateDir(), "lab-"+s.Name+".agent.log") }

// Save writes the state file atomically.
func (s *State) Save() error {
	if err := os.MkdirAll(StateDir(), 0o755); err != nil {
		return fmt.Errorf("creating the lab state directory: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := StatePath(s.Name) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing lab state: %w", err)
	}
	return os.Rename(tmp, StatePath(s.Name))
}

// ErrNoLab is returned by LoadState when no lab of that name exists.
var ErrNoLab = errors.New("no such lab")

// LoadState reads lab name's state file.
func LoadState(name string) (*State, error) {
	b, err := os.ReadFile(StatePath(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("lab %q: %w (no %s; start one with `kpath lab up`)", name, ErrNoLab, StatePath(name))
	}
	if err != nil {
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StatePath(name), err)
	}
	if s.Schema != StateSchema {
		return nil, fmt.Errorf("%s: schema %q, want %q", StatePath(name), s.Schema, StateSchema)
	}
	return &s, nil
}

// ListStates returns the names of every lab with a state file.
func ListStates() []string {
	m, _ := filepath.Glob(filepath.Join(StateDir(), "lab-*.json"))
	var out []string
	for _, f := range m {
		b := filepath.Base(f)
		out = append(out, b[len("lab-"):len(b)-len(".json")])
	}
	return out
}
