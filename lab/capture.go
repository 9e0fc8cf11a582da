package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

// Per-interface packet capture: while `lab trace` performs a journey, one AF_PACKET socket per watched namespace
// (bound to every interface of that namespace, TPACKET_V3 ring, no cgo) records each frame with the kernel's
// timestamp and the interface it crossed. Frames are decoded with gopacket, VXLAN on the overlay port included,
// so the underlay shows the outer header the model predicts. Captures are read in the namespace that took them
// (the socket is created on a thread inside it; interface indexes are resolved there too).

// CapturedPacket is one IPv4 TCP/UDP frame seen on one interface.
type CapturedPacket struct {
	NS    string         `json:"ns"`
	Iface string         `json:"iface"`
	Out   bool           `json:"out"`            // the frame left through the interface (its source MAC is the interface's)
	Loop  bool           `json:"loop,omitempty"` // on the loopback device (seen once leaving, once arriving)
	T     time.Time      `json:"t"`
	Proto string         `json:"proto"` // tcp | udp
	Src   netip.AddrPort `json:"src"`
	Dst   netip.AddrPort `json:"dst"`
	IPID  int            `json:"ipid"`
	SYN   bool           `json:"syn,omitempty"`
	ACK   bool           `json:"ack,omitempty"`
	RST   bool           `json:"rst,omitempty"`
	Len   int            `json:"len"`
	// Outer is the VXLAN encapsulation the frame carried on the wire (nil when not encapsulated).
	Outer *packet.Encap `json:"outer,omitempty"`
}

func (c CapturedPacket) String() string {
	dir := "in "
	if c.Out {
		dir = "out"
	} else if c.Loop {
		dir = "lo "
	}
	flags := ""
	switch {
	case c.SYN && c.ACK:
		flags = " [SYN,ACK]"
	case c.SYN:
		flags = " [SYN]"
	case c.RST:
		flags = " [RST]"
	}
	s := fmt.Sprintf("%s %-12s %s %s %s → %s id %d%s len %d", shortNS(c.NS), c.Iface, dir, c.Proto, c.Src, c.Dst, c.IPID, flags, c.Len)
	if c.Outer != nil {
		s += fmt.Sprintf(" in [vxlan %s → %s vni %d]", c.Outer.Src, c.Outer.Dst, c.Outer.VNI)
	}
	return s
}

func shortNS(ns string) string {
	if i := strings.Index(ns, "-pod-"); i >= 0 {
		return "pod " + ns[i+5:]
	}
	if i := strings.Index(ns, "-node-"); i >= 0 {
		return "node " + ns[i+6:]
	}
	if strings.HasSuffix(ns, "-underlay") {
		return "underlay"
	}
	if strings.HasSuffix(ns, "-external") {
		return "external"
	}
	return ns
}

type capturer struct {
	ns     string
	h      *afpacket.TPacket
	ifaces map[int]net.Interface
	vxlan  uint16
	stop   atomic.Bool
	done   chan struct{}
	pkts   []CapturedPacket
	err    error
}

// captureNamespaces: every watched namespace, the underlay and the client's.
func (x *performer) captureNamespaces(nss []string) []string {
	out := append([]string(nil), nss...)
	for _, ns := range []string{x.st.Plan.UnderlayNS, x.ns} {
		if !contains(out, ns) {
			out = append(out, ns)
		}
	}
	return out
}

// startCaptures opens one AF_PACKET socket per namespace. A namespace that cannot be captured is reported in the
// result (never silently skipped).
func startCaptures(nss []string, vxlanPort int) []*capturer {
	var cs []*capturer
	for _, ns := range nss {
		c := &capturer{ns: ns, ifaces: map[int]net.Interface{}, vxlan: uint16(vxlanPort), done: make(chan struct{})}
		c.err = inNetns(ns, func() error {
			ifs, err := net.Interfaces()
			if err != nil {
				return err
			}
			for _, i := range ifs {
				c.ifaces[i.Index] = i
			}
			c.h, err = afpacket.NewTPacket(afpacket.OptFrameSize(4096), afpacket.OptBlockSize(1<<18), afpacket.OptNumBlocks(4),
				afpacket.OptBlockTimeout(5*time.Millisecond), afpacket.OptPollTimeout(20*time.Millisecond), afpacket.TPacketVersion3)
			return err
		})
		if c.err != nil {
			close(c.done)
		} else {
			go c.read()
		}
		cs = append(cs, c)
	}
	return cs
}

func (c *capturer) read() {
	defer close(c.done)
	for {
		data, ci, err := c.h.ZeroCopyReadPacketData()
		if errors.Is(err, afpacket.ErrTimeout) {
			if c.stop.Load() {
				return
			}
			continue
		}
		if err != nil {
			if !c.stop.Load() {
				c.err = err
			}
			return
		}
		if p, ok := c.decode(data, ci); ok {
			c.pkts = append(c.pkts, p)
		}
	}
}

func (c *capturer) decode(data []byte, ci gopacket.CaptureInfo) (CapturedPacket, bool) {
	pk := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
	eth, _ := pk.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		return CapturedPacket{}, false
	}
	ifc := c.ifaces[ci.InterfaceIndex]
	cp := CapturedPacket{NS: c.ns, Iface: ifc.Name, T: ci.Timestamp, Len: ci.Length}
	if cp.Iface == "" {
		cp.Iface = fmt.Sprintf("if%d", ci.InterfaceIndex)
	}
	cp.Out = len(ifc.HardwareAddr) > 0 && eth.SrcMAC.String() == ifc.HardwareAddr.String()
	cp.Loop = ifc.Flags&net.FlagLoopback != 0
	if !fillIP(&cp, pk) {
		return cp, false
	}
	if udp, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP); ok && c.vxlan != 0 && uint16(udp.DstPort) == c.vxlan {
		inner := gopacket.NewPacket(udp.Payload, layers.LayerTypeVXLAN, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		vx, _ := inner.Layer(layers.LayerTypeVXLAN).(*layers.VXLAN)
		in := CapturedPacket{NS: cp.NS, Iface: cp.Iface, Out: cp.Out, Loop: cp.Loop, T: cp.T, Len: cp.Len}
		if vx != nil && fillIP(&in, inner) {
			in.Outer = &packet.Encap{Type: "vxlan", Src: cp.Src, Dst: cp.Dst, VNI: int(vx.VNI)}
			return in, true
		}
	}
	return cp, true
}

func fillIP(cp *CapturedPacket, pk gopacket.Packet) bool {
	ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	if ip == nil {
		return false
	}
	src, _ := netip.AddrFromSlice(ip.SrcIP.To4())
	dst, _ := netip.AddrFromSlice(ip.DstIP.To4())
	cp.IPID = int(ip.Id)
	switch l := pk.Layer(layers.LayerTypeTCP).(type) {
	case *layers.TCP:
		cp.Proto, cp.SYN, cp.ACK, cp.RST = "tcp", l.SYN, l.ACK, l.RST
		cp.Src, cp.Dst = netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort))
		return true
	}
	if l, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		cp.Proto = "udp"
		cp.Src, cp.Dst = netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort))
		return true
	}
	return false
}

// stopCaptures waits for the last ring block to be handed over, closes the sockets and returns the frames per
// namespace, in capture order; a namespace whose capture failed maps to nil and is named in errs.
func stopCaptures(cs []*capturer) (map[string][]CapturedPacket, []string) {
	time.Sleep(30 * time.Millisecond) // > the ring's block timeout: the last frames are retired to user space
	out := map[string][]CapturedPacket{}
	var errs []string
	var wg sync.WaitGroup
	for _, c := range cs {
		c.stop.Store(true)
		wg.Add(1)
		go func() { defer wg.Done(); <-c.done }()
	}
	wg.Wait()
	for _, c := range cs {
		if c.h != nil {
			c.h.Close()
		}
		if c.err != nil {
			errs = append(errs, fmt.Sprintf("capture in %s: %v", c.ns, c.err))
		}
		sort.SliceStable(c.pkts, func(i, j int) bool { return c.pkts[i].T.Before(c.pkts[j].T) })
		out[c.ns] = c.pkts
	}
	return out, errs
}

var _ = trace.Schema
