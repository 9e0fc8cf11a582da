// Package netfilter parses real netfilter ruleset dumps (nft text, nft JSON, knftables dumps, iptables-save) into one
// model and walks a packet through them in kernel hook order, forking on random load balancing.
package netfilter
