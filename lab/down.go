package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// Down removes everything st lists and nothing else: it stops the agent (only if pid and start time still match),
// deletes the lab's network namespaces (their veths, bridges and rules go with them), the /etc/netns
// directories and logs it wrote, and finally the state file. It is idempotent: what is already gone is skipped.
func Down(ctx context.Context, st *State) error {
	var errs []string
	if st.Agent != nil {
		if err := stopProcess(st.Agent, "lab", "agent"); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if st.Real != nil {
		errs = append(errs, stopReal(st.Real)...)
	}
	var lines []string
	for _, ns := range st.Namespaces {
		if !strings.HasPrefix(ns, Prefix(st.Name)) {
			errs = append(errs, fmt.Sprintf("state lists namespace %q outside the lab's prefix %s: left alone", ns, Prefix(st.Name)))
			continue
		}
		if netnsExists(ns) {
			lines = append(lines, "netns del "+ns)
		}
	}
	if len(lines) > 0 {
		if _, err := run(ctx, strings.Join(lines, "\n")+"\n", "ip", "-force", "-batch", "-"); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, p := range st.Paths {
		if !ownedPath(st, p) {
			errs = append(errs, fmt.Sprintf("state lists path %q the lab does not own: left alone", p))
			continue
		}
		if err := os.RemoveAll(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err.Error())
		}
	}
	for _, ns := range st.Namespaces {
		if netnsExists(ns) {
			errs = append(errs, "network namespace "+ns+" still exists")
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lab %s down: %s", st.Name, strings.Join(errs, "; "))
	}
	if err := os.Remove(StatePath(st.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

func ownedPath(st *State, p string) bool {
	pre := Prefix(st.Name)
	return strings.HasPrefix(p, "/etc/netns/"+pre) || p == st.DNSLog() || p == st.AgentLog() || p == MeshDir(st.Name) || p == realDir(st.Name)
}

// stopProcess sends SIGTERM (then SIGKILL after 2 s) to p if it is still the process the lab started: same start
// time and a command line containing every marker.
func stopProcess(p *Process, markers ...string) error {
	if p.PID <= 0 {
		return nil
	}
	if st := procStartTime(p.PID); st == "" || st != p.StartTime {
		return nil // gone, or the pid now belongs to someone else
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.PID))
	for _, m := range markers {
		if !strings.Contains(string(cmdline), m) {
			return nil
		}
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if procStartTime(p.PID) != p.StartTime || isZombie(p.PID) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("killing agent %d: %w", p.PID, err)
	}
	return nil
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && len(s) > i+2 && s[i+2] == 'Z'
}
