package live

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"net/netip"
	"regexp"
	"strings"
)

// Redactor replaces names, label values and IP addresses with pseudonyms that are consistent (the same input and
// key give the same output, in every field and every object) so a redacted snapshot still loads and its journeys
// still make sense:
//
//   - Names (objects, namespaces, nodes) and label values become "r" + 8 base32 characters, everywhere they occur:
//     selectors, owner and target references, nodeName, DNS names ("cart.shop.svc.cluster.local" keeps its
//     structure), env values. A generated suffix stays readable: pod "cart-7d9f8b6c4-x7k2p" becomes
//     "<cart's pseudonym>-7d9f8b6c4-x7k2p", so pods still sort under their owner.
//   - IP addresses and CIDRs are mapped prefix-preservingly (Crypto-PAn style): two addresses share exactly as
//     many leading bits after redaction as before, so pod IPs stay inside their node's redacted pod CIDR and Service
//     IPs inside the Service CIDR. Private ranges keep their well-known prefix (10/8, 172.16/12, 192.168/16,
//     100.64/10, fc00::/7); loopback and link-local addresses (NodeLocal DNS's 169.254.20.10) are kept.
//   - Inside free text (images, provider IDs, URLs, annotations, ConfigMap data) known names and IPv4 addresses are
//     replaced; other words stay.
//   - Kept as they are: label keys, objects and names in system namespaces (default, kube-*) that kpath detects the
//     dataplane from (kube-proxy, coredns, …), well-known protocol words and numbers.
//
// The key makes pseudonyms unguessable: without one (the default key), a short name can be found by trying
// candidates. Pass a private key to share snapshots that must not be reversed.
type Redactor struct {
	key   []byte
	cand  map[string]bool   // names and label values seen outside system namespaces
	keep  map[string]bool   // strings system objects use: never replaced
	memo  map[string]string // word → pseudonym
	flips map[string]bool   // IP prefix (as bit string) → flip the next bit
}

// DefaultRedactKey is used when no key is given.
const DefaultRedactKey = "kpath-redact-v1"

// NewRedactor makes a redactor; key "" means DefaultRedactKey.
func NewRedactor(key string) *Redactor {
	if key == "" {
		key = DefaultRedactKey
	}
	return &Redactor{key: []byte(key), cand: map[string]bool{}, keep: map[string]bool{}, memo: map[string]string{},
		flips: map[string]bool{}}
}

var reserved = map[string]bool{
	"": true, "true": true, "false": true, "default": true, "kubernetes": true, "none": true,
	"http": true, "https": true, "http2": true, "h2c": true, "grpc": true, "grpc-web": true, "tcp": true, "udp": true,
	"sctp": true, "tls": true, "dns": true, "dns-tcp": true, "metrics": true, "kube-dns": true, "coredns": true,
	"cluster.local": true, "linux": true, "windows": true, "amd64": true, "arm64": true,
}

// Field names whose string values are schema, not names: never replaced (IPs in them still are).
var schemaFields = map[string]bool{
	"key": true, "topologyKey": true, "matchLabelKeys": true, "mismatchLabelKeys": true, "kind": true,
	"apiVersion": true, "operator": true, "type": true, "protocol": true, "appProtocol": true, "addressType": true,
	"effect": true, "dnsPolicy": true, "restartPolicy": true, "imagePullPolicy": true, "phase": true, "status": true,
	"reason": true, "fieldPath": true, "resource": true, "apiGroup": true, "mountPath": true, "path": true,
	"schedulerName": true, "sessionAffinity": true,
	"externalTrafficPolicy": true, "internalTrafficPolicy": true, "ipFamilyPolicy": true, "ipFamilies": true,
}

func systemNamespace(ns string) bool {
	return ns == "kube-system" || ns == "kube-public" || ns == "kube-node-lease" || strings.HasPrefix(ns, "kube-") ||
		ns == "istio-system" || ns == "linkerd" || ns == "calico-system" || ns == "tigera-operator" || ns == "cilium"
}

// Redact rewrites the objects in place. Call it once with every object of a snapshot, so references between
// objects are known before any is rewritten.
func (r *Redactor) Redact(objs []Object) {
	for _, o := range objs {
		r.collect(o)
	}
	for _, o := range objs {
		r.walk(o, "")
	}
}

func (r *Redactor) collect(o Object) {
	md, _ := o["metadata"].(map[string]any)
	kind, _ := o["kind"].(string)
	name, _ := md["name"].(string)
	ns, _ := md["namespace"].(string)
	set := r.cand
	if systemNamespace(ns) || (kind == "Namespace" && systemNamespace(name)) {
		set = r.keep
	}
	set[name] = true
	if ns != "" {
		if systemNamespace(ns) {
			r.keep[ns] = true
		} else {
			r.cand[ns] = true
		}
	}
	if gn, ok := md["generateName"].(string); ok {
		set[strings.TrimSuffix(gn, "-")] = true
	}
	if labels, ok := md["labels"].(map[string]any); ok {
		for k, v := range labels {
			s, _ := v.(string)
			if strings.Contains(k, "kubernetes.io/") || strings.Contains(k, "k8s.io/") || strings.HasSuffix(k, "-hash") {
				continue
			}
			set[s] = true
		}
	}
}

// word reports whether s is a name or label value to replace.
func (r *Redactor) word(s string) bool {
	return r.cand[s] && !r.keep[s] && !reserved[s] && !allDigits(s)
}

func (r *Redactor) walk(v any, field string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == "managedFields" {
				continue
			}
			x[k] = r.walk(e, k)
		}
		// Label and selector maps: keys stay, values are words; annotations are free text.
		return x
	case []any:
		for i, e := range x {
			x[i] = r.walk(e, field)
		}
		return x
	case string:
		return r.str(x, schemaFields[field])
	}
	return v
}

var (
	ipv4InText = regexp.MustCompile(`\b(?:\d{1,3}\.){3}\d{1,3}(?:/\d{1,2})?\b`)
	wordInText = regexp.MustCompile(`[a-z0-9](?:[a-z0-9-]*[a-z0-9])?`)
)

func (r *Redactor) str(s string, schema bool) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return r.IP(a).String()
	}
	if p, err := netip.ParsePrefix(s); err == nil {
		return r.Prefix(p).String()
	}
	if strings.IndexByte(s, '.') >= 0 {
		s = ipv4InText.ReplaceAllStringFunc(s, func(m string) string {
			if a, err := netip.ParseAddr(m); err == nil {
				return r.IP(a).String()
			}
			if p, err := netip.ParsePrefix(m); err == nil {
				return r.Prefix(p).String()
			}
			return m
		})
	}
	if schema {
		return s
	}
	if p := r.name(s); p != s {
		return p
	}
	// Names inside DNS names, URLs, provider IDs, images, "ns/name" references, JSON text.
	return wordInText.ReplaceAllStringFunc(s, r.name)
}

// name maps one name-like string (or returns it unchanged).
func (r *Redactor) name(s string) string {
	if out, ok := r.memo[s]; ok {
		return out
	}
	out := s
	switch {
	case r.word(s):
		out = r.pseudo(s)
	case strings.HasSuffix(s, "-") && r.word(s[:len(s)-1]):
		out = r.name(s[:len(s)-1]) + "-"
	default:
		if p, rest, ok := r.ownerPrefix(s); ok {
			out = r.name(p) + rest
		}
	}
	r.memo[s] = out
	return out
}

// pseudo hashes a word; a name made of an owner's name and generated suffixes keeps the owner's pseudonym.
func (r *Redactor) pseudo(s string) string {
	if p, rest, ok := r.ownerPrefix(s); ok {
		return r.name(p) + rest
	}
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte("name\x00" + s))
	return "r" + strings.ToLower(base32.HexEncoding.EncodeToString(m.Sum(nil))[:8])
}

// ownerPrefix splits "cart-7d9f8b6c4-x7k2p" into a known name ("cart") and generated suffixes.
func (r *Redactor) ownerPrefix(s string) (string, string, bool) {
	for i := strings.IndexByte(s, '-'); i > 0; i = nextDash(s, i) {
		if r.word(s[:i]) && allGenerated(s[i+1:]) {
			return s[:i], s[i:], true
		}
	}
	return "", "", false
}

func nextDash(s string, i int) int {
	j := strings.IndexByte(s[i+1:], '-')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

func allGenerated(rest string) bool {
	for _, seg := range strings.Split(rest, "-") {
		if !generatedSuffix(seg) {
			return false
		}
	}
	return rest != ""
}

// generatedSuffix: a StatefulSet ordinal, or a hash in the alphabet Kubernetes uses for generated names.
func generatedSuffix(seg string) bool {
	if seg == "" {
		return false
	}
	if allDigits(seg) {
		return true
	}
	if len(seg) < 5 || len(seg) > 10 {
		return false
	}
	for _, c := range seg {
		if !strings.ContainsRune("bcdfghjklmnpqrstvwxz2456789", c) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func dnsLike(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// keptBits says how many leading bits of an address stay as they are; -1 keeps the whole address.
func keptBits(a netip.Addr) int {
	special := []struct {
		p    string
		keep int
	}{
		{"127.0.0.0/8", -1}, {"169.254.0.0/16", -1}, {"0.0.0.0/8", -1}, {"224.0.0.0/4", -1}, {"255.255.255.255/32", -1},
		{"10.0.0.0/8", 8}, {"172.16.0.0/12", 12}, {"192.168.0.0/16", 16}, {"100.64.0.0/10", 10},
		{"::1/128", -1}, {"::/128", -1}, {"fe80::/10", -1}, {"ff00::/8", -1}, {"fc00::/7", 8},
	}
	for _, sp := range special {
		if netip.MustParsePrefix(sp.p).Contains(a) {
			return sp.keep
		}
	}
	if a.Is4() {
		return 8 // public IPv4 keeps its first octet
	}
	return 16
}

// IP maps one address prefix-preservingly.
func (r *Redactor) IP(a netip.Addr) netip.Addr {
	keep := keptBits(a)
	if keep < 0 {
		return a
	}
	b := a.AsSlice()
	n := len(b) * 8
	out := make([]byte, len(b))
	copy(out, b)
	var prefix strings.Builder
	for i := 0; i < n; i++ {
		bit := b[i/8] >> (7 - uint(i%8)) & 1
		if i >= keep && r.flip(prefix.String()) {
			out[i/8] ^= 1 << (7 - uint(i%8))
		}
		prefix.WriteByte('0' + bit)
	}
	res, _ := netip.AddrFromSlice(out)
	if a.Is4In6() {
		return netip.AddrFrom16(res.As16())
	}
	return res
}

// Prefix maps a CIDR: its address is mapped like any address in it, then masked, so every address of the original
// prefix lands in the mapped one.
func (r *Redactor) Prefix(p netip.Prefix) netip.Prefix {
	m := netip.PrefixFrom(r.IP(p.Addr()), p.Bits())
	if keptBits(p.Addr()) < 0 || p.Bits() == 0 {
		return p
	}
	return m.Masked()
}

func (r *Redactor) flip(prefix string) bool {
	if f, ok := r.flips[prefix]; ok {
		return f
	}
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte("ip\x00" + prefix))
	f := m.Sum(nil)[0]&1 == 1
	r.flips[prefix] = f
	return f
}

// Name returns the pseudonym of a name, DNS name or address as Redact rewrote it (call after Redact), to translate
// questions about the original cluster into the redacted one.
func (r *Redactor) Name(s string) string { return r.str(s, false) }
