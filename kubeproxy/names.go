package kubeproxy

import (
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// nftables chain-name prefixes (pkg/proxy/nftables).
const (
	nftServicePrefix  = "service-"
	nftLocalPrefix    = "local-"
	nftExternalPrefix = "external-"
	nftEndpointPrefix = "endpoint-"
	nftAffinityPrefix = "affinity-"
	nftFirewallPrefix = "firewall-"

	// knftables.NameLengthMax (256) minus the longest prefix kube-proxy reserves (16).
	nftChainNameBaseLengthMax = 256 - 16
)

// iptables chain-name prefixes (pkg/proxy/iptables).
const (
	iptSVCPrefix = "KUBE-SVC-"
	iptSVLPrefix = "KUBE-SVL-"
	iptEXTPrefix = "KUBE-EXT-"
	iptFWPrefix  = "KUBE-FW-"
	iptSEPPrefix = "KUBE-SEP-"
)

// nftHashAndTruncate is kube-proxy's hashAndTruncate: base32(sha256(name))[:8] + "-" + name,
// truncated with "..." past the chain-name budget.
func nftHashAndTruncate(name string) string {
	h := sha256.Sum256([]byte(name))
	enc := base32.StdEncoding.EncodeToString(h[:])
	name = enc[:8] + "-" + name
	if len(name) > nftChainNameBaseLengthMax {
		name = name[:nftChainNameBaseLengthMax-3] + "..."
	}
	return name
}

// nftServiceBase is servicePortChainNameBase: "HASH-ns/name/proto/portName".
func nftServiceBase(ns, name, proto, portName string) string {
	return nftHashAndTruncate(ns + "/" + name + "/" + proto + "/" + portName)
}

// nftEndpointBase is servicePortEndpointChainNameBase: "HASH-ns/name/proto/portName__ip/port"
// with the colons of an IPv6 address replaced by dots.
func nftEndpointBase(ns, name, proto, portName, ip, port string) string {
	ip = strings.ReplaceAll(ip, ":", ".")
	return nftHashAndTruncate(ns + "/" + name + "/" + proto + "/" + portName + "__" + ip + "/" + port)
}

// iptPortProtoHash is portProtoHash: base32(sha256(servicePortName + protocol))[:16].
func iptPortProtoHash(servicePortName, proto string) string {
	h := sha256.Sum256([]byte(servicePortName + proto))
	return base32.StdEncoding.EncodeToString(h[:])[:16]
}

// iptEndpointChain is servicePortEndpointChainName: KUBE-SEP- + base32(sha256(spn+proto+ep))[:16].
func iptEndpointChain(servicePortName, proto, endpoint string) string {
	h := sha256.Sum256([]byte(servicePortName + proto + endpoint))
	return iptSEPPrefix + base32.StdEncoding.EncodeToString(h[:])[:16]
}
