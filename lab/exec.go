package lab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/vishvananda/netns"
)

// run runs argv with stdin and returns stdout; a failure names the command and carries its output.
func run(ctx context.Context, stdin string, argv ...string) (string, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errb.String() + out.String())
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, msg)
	}
	return out.String(), nil
}

// ipBatch runs `ip [-n ns] -batch -` with one command per line (ns "" is the root namespace: only `netns`
// commands are ever sent there).
func ipBatch(ctx context.Context, ns string, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	argv := []string{"ip"}
	if ns != "" {
		argv = append(argv, "-n", ns)
	}
	_, err := run(ctx, strings.Join(lines, "\n")+"\n", append(argv, "-batch", "-")...)
	return err
}

// inNetns runs f on a locked OS thread that has entered the named network namespace. Sockets created by f stay
// in that namespace after it returns. If the thread cannot return to its original namespace it is not unlocked,
// so Go retires it instead of reusing it elsewhere.
func inNetns(name string, f func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("reading the current network namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("entering network namespace %s: %w", name, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		return fmt.Errorf("returning from network namespace %s: %w (thread retired)", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// writeSysctl sets a sysctl inside the named namespace (/proc/sys/net is per network namespace of the writer).
func writeSysctl(ns, key, value string) error {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	return inNetns(ns, func() error {
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s in %s: %w", key, value, ns, err)
		}
		return nil
	})
}

func readSysctlIn(ns, key string) (string, error) {
	path := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	var v string
	err := inNetns(ns, func() error {
		b, err := os.ReadFile(path)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

func netnsExists(name string) bool {
	_, err := os.Stat("/var/run/netns/" + name)
	return err == nil
}
