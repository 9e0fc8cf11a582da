package lab

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Feature is one kernel capability the lab may need.
type Feature struct {
	OK  bool   `json:"ok"`
	Why string `json:"why"`
}

// Features is what this kernel can do for the lab. Probes run in a scratch namespace that is deleted at once; the
// root namespace is never touched.
type Features struct {
	VXLAN               Feature `json:"vxlan"`
	Geneve              Feature `json:"geneve"`
	IPIP                Feature `json:"ipip"`
	WireGuard           Feature `json:"wireguard"`
	BrNetfilterPerNetns Feature `json:"brNetfilterPerNetns"`
	Kernel              string  `json:"kernel"`
}

var (
	featOnce sync.Once
	feats    Features
)

// DetectFeatures probes once per process.
func DetectFeatures() Features {
	featOnce.Do(func() { feats = detect() })
	return feats
}

func detect() Features {
	var f Features
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		var b strings.Builder
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b.WriteByte(byte(c))
		}
		f.Kernel = b.String()
	}
	// br_netfilter's sysctls became per network namespace in Linux 5.3; before that, writing them in a node
	// namespace would change the whole machine, which the lab never does.
	maj, min := kernelVersion(f.Kernel)
	switch {
	case maj == 0:
		f.BrNetfilterPerNetns = Feature{false, "cannot read the kernel version"}
	case maj < 5 || (maj == 5 && min < 3):
		f.BrNetfilterPerNetns = Feature{false, "kernel " + f.Kernel + " < 5.3: br_netfilter sysctls are machine-wide"}
	default:
		if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
			f.BrNetfilterPerNetns = Feature{false, "br_netfilter is not loaded (modprobe br_netfilter; the lab does not load modules)"}
		} else {
			f.BrNetfilterPerNetns = Feature{true, "kernel " + f.Kernel + " ≥ 5.3: per network namespace"}
		}
	}
	if os.Geteuid() != 0 {
		why := "not probed: needs root"
		f.VXLAN, f.Geneve, f.IPIP, f.WireGuard = Feature{false, why}, Feature{false, why}, Feature{false, why}, Feature{false, why}
		return f
	}
	ns := fmt.Sprintf("kp-probe-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
		why := "cannot create a probe namespace: " + err.Error()
		f.VXLAN, f.Geneve, f.IPIP, f.WireGuard = Feature{false, why}, Feature{false, why}, Feature{false, why}, Feature{false, why}
		return f
	}
	defer run(context.Background(), "", "ip", "netns", "del", ns)
	probe := func(args ...string) Feature {
		if _, err := run(ctx, "", append([]string{"ip", "-n", ns, "link", "add", "probe0"}, args...)...); err != nil {
			return Feature{false, "`ip link add type " + args[1] + "` fails here: " + lastLine(err.Error())}
		}
		_, _ = run(ctx, "", "ip", "-n", ns, "link", "del", "probe0")
		return Feature{true, "ip link add type " + args[1] + " works"}
	}
	f.VXLAN = probe("type", "vxlan", "id", "1", "dstport", "8472")
	f.Geneve = probe("type", "geneve", "id", "1", "remote", "192.0.2.1")
	f.IPIP = probe("type", "ipip", "remote", "192.0.2.1", "local", "192.0.2.2")
	f.WireGuard = probe("type", "wireguard")
	return f
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, ": "); i >= 0 {
		return s[i+2:]
	}
	return s
}

func kernelVersion(rel string) (int, int) {
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	maj, _ := strconv.Atoi(parts[0])
	min, _ := strconv.Atoi(strings.TrimLeftFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	return maj, min
}
