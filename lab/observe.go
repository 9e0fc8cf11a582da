package lab

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TraceEvent is one line of `nft monitor trace` from one namespace, with the packet header it belongs to.
type TraceEvent struct {
	NS      string
	Seq     int
	Table   string // "ip kube-proxy", "ip nat", …
	Chain   string
	Kind    string // packet | rule | policy | verdict
	Rule    string
	Verdict string
	Hdr     PacketHeader
}

// PacketHeader is what nft prints on a trace's "packet:" line.
type PacketHeader struct {
	IIF, OIF     string
	Src, Dst     string
	Proto        string // tcp | udp | icmp | …
	SPort, DPort int
	IPID         int
	SYN          bool
	Raw          string
}

// monitor runs `nft monitor trace` in one namespace, line-buffered.
type monitor struct {
	ns     string
	cmd    *exec.Cmd
	out    lockedBuffer
	cancel context.CancelFunc
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startMonitors(ctx context.Context, nss []string) ([]*monitor, error) {
	var ms []*monitor
	for _, ns := range nss {
		c, cancel := context.WithCancel(ctx)
		m := &monitor{ns: ns, cancel: cancel}
		m.cmd = exec.CommandContext(c, "ip", "netns", "exec", ns, "stdbuf", "-oL", "nft", "monitor", "trace")
		m.cmd.Stdout = &m.out
		m.cmd.Stderr = &m.out
		m.cmd.Cancel = func() error { return m.cmd.Process.Signal(syscall.SIGTERM) }
		if err := m.cmd.Start(); err != nil {
			cancel()
			stopMonitors(ms)
			return nil, err
		}
		ms = append(ms, m)
	}
	// nft prints nothing when it is ready: send a probe inside each namespace (to its own loopback, port 9) until
	// its monitor reports it, so no monitor misses the traced packet on a busy machine.
	deadline := time.Now().Add(5 * time.Second)
	for _, m := range ms {
		for !strings.Contains(m.out.String(), "udp dport 9 ") {
			if time.Now().After(deadline) {
				stopMonitors(ms)
				return nil, fmt.Errorf("nft monitor trace in %s did not start within 5s", m.ns)
			}
			_ = inNetns(m.ns, func() error {
				c, err := net.Dial("udp4", "127.0.0.1:9")
				if err == nil {
					c.Write([]byte("kpath-probe"))
					c.Close()
				}
				return nil
			})
			time.Sleep(20 * time.Millisecond)
		}
	}
	return ms, nil
}

func stopMonitors(ms []*monitor) map[string][]TraceEvent {
	time.Sleep(150 * time.Millisecond) // let the last events arrive
	out := map[string][]TraceEvent{}
	var wg sync.WaitGroup
	for _, m := range ms {
		m.cancel()
		wg.Add(1)
		go func() { defer wg.Done(); _ = m.cmd.Wait() }()
	}
	wg.Wait()
	for _, m := range ms {
		out[m.ns] = parseTrace(m.ns, m.out.String())
	}
	return out
}

// parseTrace reads `nft monitor trace` output. Rule lines inherit the header of the last "packet:" line of their
// trace id.
func parseTrace(ns, text string) []TraceEvent {
	var evs []TraceEvent
	cur := map[string]PacketHeader{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	seq := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 || f[0] != "trace" || f[1] != "id" {
			continue
		}
		id := f[2]
		e := TraceEvent{NS: ns, Table: f[3] + " " + f[4], Chain: f[5], Kind: strings.TrimSuffix(f[6], ":")}
		switch e.Kind {
		case "packet":
			h := parseHeader(f[7:])
			cur[id] = h
			e.Hdr = h
		case "rule":
			rest := strings.Join(f[7:], " ")
			if i := strings.LastIndex(rest, " (verdict "); i >= 0 {
				e.Rule, e.Verdict = rest[:i], strings.TrimSuffix(rest[i+len(" (verdict "):], ")")
			} else {
				e.Rule = rest
			}
			e.Hdr = cur[id]
		case "policy", "verdict":
			if len(f) > 7 {
				e.Verdict = f[7]
			}
			e.Hdr = cur[id]
		default:
			continue
		}
		seq++
		e.Seq = seq
		evs = append(evs, e)
	}
	return evs
}

func parseHeader(f []string) PacketHeader {
	h := PacketHeader{Raw: strings.Join(f, " ")}
	for i := 0; i < len(f); i++ {
		next := func() string {
			if i+1 < len(f) {
				return strings.Trim(f[i+1], `"`)
			}
			return ""
		}
		switch f[i] {
		case "iif":
			h.IIF = next()
		case "oif":
			h.OIF = next()
		case "saddr":
			if i > 0 && f[i-1] == "ip" {
				h.Src = next()
			}
		case "daddr":
			if i > 0 && f[i-1] == "ip" {
				h.Dst = next()
			}
		case "id":
			if i > 0 && f[i-1] == "ip" {
				h.IPID, _ = strconv.Atoi(next())
			}
		case "sport":
			if i > 0 && (f[i-1] == "tcp" || f[i-1] == "udp") {
				h.Proto = f[i-1]
				h.SPort, _ = strconv.Atoi(next())
			}
		case "dport":
			if i > 0 && (f[i-1] == "tcp" || f[i-1] == "udp") {
				h.DPort, _ = strconv.Atoi(next())
			}
		case "flags":
			if i > 0 && f[i-1] == "tcp" && i+2 < len(f) && f[i+1] == "==" && f[i+2] == "syn" {
				h.SYN = true
			}
		case "icmp":
			if h.Proto == "" {
				h.Proto = "icmp"
			}
		}
	}
	return h
}

// conntrackLines lists the conntrack entries of one namespace whose original source port is sport.
func conntrackLines(ctx context.Context, ns, proto string, sport int) []string {
	out, err := run(ctx, "", "ip", "netns", "exec", ns, "conntrack", "-L", "-p", proto, "--orig-port-src", strconv.Itoa(sport))
	if err != nil {
		return nil
	}
	var ls []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.TrimSpace(l) != "" {
			ls = append(ls, strings.Join(strings.Fields(l), " "))
		}
	}
	return ls
}
