package dns

import (
	"fmt"
	"net/netip"
	"strings"

	miekg "github.com/miekg/dns"
)

// modelledPlugins are plugins whose effect on an answer the model knows (or that do not change answers).
var modelledPlugins = map[string]bool{
	"kubernetes": true, "forward": true, "cache": true, "errors": true, "health": true, "ready": true,
	"prometheus": true, "log": true, "loop": true, "reload": true, "loadbalance": true, "debug": true,
	"bind": true, "whoami": false,
}

// ServerOptions are the runtime facts a Corefile does not hold.
type ServerOptions struct {
	// LocalIPs are the CoreDNS pod IPs (NS records).
	LocalIPs []netip.Addr
	// Serial is the SOA serial.
	Serial uint32
	// Upstream, when set, answers forwarded names and ExternalName targets (the lab's stand-in for the
	// internet); nil means such answers are unknown.
	Upstream Upstream
	// Port the client queries (default "53").
	Port string
}

// Server models a CoreDNS instance: its Corefile server blocks and the plugins the model knows.
type Server struct {
	blocks   []serverBlock
	port     string
	upstream Upstream
}

type serverBlock struct {
	ServerBlock
	k8s        *Kubernetes
	forward    *Forward
	cache      *Cache
	unmodelled []string
}

// NewServer builds a server model from a Corefile. Plugin-setup errors carry their Corefile line.
func NewServer(cf *Corefile, c Cluster, opt ServerOptions) (*Server, error) {
	s := &Server{port: opt.Port, upstream: opt.Upstream}
	if s.port == "" {
		s.port = "53"
	}
	for _, b := range cf.Blocks {
		sb := serverBlock{ServerBlock: b}
		for _, d := range b.Directives {
			switch d.Name {
			case "kubernetes":
				if sb.k8s != nil {
					return nil, &CorefileError{Line: d.Line, Msg: "plugin/kubernetes: this plugin can only be used once per Server Block"}
				}
				o, err := KubernetesFromDirective(d, b.Zones)
				if err != nil {
					return nil, err
				}
				k, err := NewKubernetes(o, c)
				if err != nil {
					return nil, &CorefileError{Line: d.Line, Msg: err.Error()}
				}
				k.LocalIPs, k.Serial, k.Upstream = opt.LocalIPs, opt.Serial, opt.Upstream
				sb.k8s = k
			case "forward":
				f, err := ForwardFromDirective(d)
				if err != nil {
					return nil, err
				}
				sb.forward = &f
			case "cache":
				ch, err := CacheFromDirective(d, b.Zones)
				if err != nil {
					return nil, err
				}
				sb.cache = &ch
			default:
				if !modelledPlugins[d.Name] {
					sb.unmodelled = append(sb.unmodelled, d.Name)
				}
			}
		}
		s.blocks = append(s.blocks, sb)
	}
	return s, nil
}

// Kubernetes returns the kubernetes plugin of the block serving zone (e.g. "cluster.local."), or nil.
func (s *Server) Kubernetes(zone string) *Kubernetes {
	if b := s.block(strings.ToLower(miekg.Fqdn(zone))); b != nil {
		return b.k8s
	}
	return nil
}

func (s *Server) block(name string) *serverBlock {
	var best *serverBlock
	bestLen := -1
	for i := range s.blocks {
		b := &s.blocks[i]
		if b.Port != s.port {
			continue
		}
		if z := matchZone(b.Zones, name); z != "" && len(z) > bestLen {
			best, bestLen = b, len(z)
		}
	}
	return best
}

// Answer answers q the way the modelled CoreDNS does: pick the server block with the longest matching zone, run
// the kubernetes plugin, and pass what it does not handle to forward. It is safe for concurrent use and is what
// both the trace and the lab's DNS server call.
func (s *Server) Answer(q miekg.Question) Answer {
	name := strings.ToLower(miekg.Fqdn(q.Name))
	req := func() *miekg.Msg {
		r := new(miekg.Msg)
		r.SetQuestion(miekg.Fqdn(q.Name), q.Qtype)
		return r
	}
	b := s.block(name)
	if b == nil {
		m := new(miekg.Msg)
		m.SetRcode(req(), miekg.RcodeRefused)
		return finishAnswer(Answer{Msg: m, Known: true, Why: fmt.Sprintf("no server block for %s on port %s → REFUSED", name, s.port)})
	}
	var notes []string
	if len(b.unmodelled) > 0 {
		notes = append(notes, "plugins not modelled in this block: "+strings.Join(b.unmodelled, ", "))
	}
	var a Answer
	handled := false
	if b.k8s != nil {
		ka := b.k8s.Answer(q)
		if ka.Handled {
			a, handled = ka.Answer, true
		} else if ka.FellThrough {
			notes = append(notes, ka.Why)
		}
	}
	if !handled {
		switch {
		case b.forward != nil && b.forward.Handles(name):
			up := strings.Join(b.forward.To, " ")
			if s.upstream != nil {
				m, err := s.upstream.Lookup(miekg.Fqdn(q.Name), q.Qtype)
				if err == nil && m != nil {
					a = finishAnswer(Answer{Msg: m, Known: true, Plugin: "forward", Upstream: up, Why: "forwarded to " + up + " (answered by the configured upstream stand-in)"})
					break
				}
			}
			a = finishAnswer(Answer{Known: false, Plugin: "forward", Upstream: up, Why: "forwarded to " + up + " (not modelled: answer unknown)"})
		default:
			m := new(miekg.Msg)
			m.SetRcode(req(), miekg.RcodeServerFailure)
			a = finishAnswer(Answer{Msg: m, Known: true, Why: fmt.Sprintf("no plugin in server block %s handles %s → SERVFAIL", strings.Join(b.Keys, " "), name)})
		}
	}
	if b.cache != nil && matchZone(b.cache.Zones, name) != "" && a.Msg != nil {
		neg := a.Rcode == "NXDOMAIN" || (a.Rcode == "NOERROR" && len(a.Msg.Answer) == 0)
		switch {
		case neg && matchZone(b.cache.DisableDenial, name) != "":
		case !neg && matchZone(b.cache.DisableSuccess, name) != "":
		case neg:
			notes = append(notes, fmt.Sprintf("cache plugin keeps this negative answer up to %ds", b.cache.DenialTTL))
		default:
			notes = append(notes, fmt.Sprintf("cache plugin keeps this answer up to %ds", b.cache.MaxTTL))
		}
	}
	if len(notes) > 0 {
		a.Why += "; " + strings.Join(notes, "; ")
	}
	return a
}

// ServeDNS implements miekg/dns.Handler so the lab can serve the model's answers. Unknown answers become SERVFAIL.
func (s *Server) ServeDNS(w miekg.ResponseWriter, r *miekg.Msg) {
	m := new(miekg.Msg)
	if len(r.Question) != 1 {
		m.SetRcode(r, miekg.RcodeFormatError)
		_ = w.WriteMsg(m)
		return
	}
	a := s.Answer(r.Question[0])
	if a.Msg == nil || !a.Known {
		m.SetRcode(r, miekg.RcodeServerFailure)
	} else {
		m = a.Msg.Copy()
		m.Id = r.Id
		m.RecursionDesired = r.RecursionDesired
		m.RecursionAvailable = true
		m.Question = r.Question
	}
	_ = w.WriteMsg(m)
}
