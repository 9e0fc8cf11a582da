package lab

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
)

// DefaultName is the lab name when --name is not given.
const DefaultName = "kpath"

var labNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)

// ValidName reports whether name can name a lab: it becomes part of every namespace and file the lab owns.
func ValidName(name string) error {
	if !labNameRE.MatchString(name) {
		return fmt.Errorf("lab name %q: want 1–20 characters of a-z, 0-9 and '-', starting with a letter or digit", name)
	}
	return nil
}

// Prefix is the unique prefix of every network namespace of lab name: kp-<name>-.
func Prefix(name string) string { return "kp-" + name + "-" }

// nsSafe turns an object name into something safe inside a namespace file name.
func nsSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '_'
	}, s)
}

func nodeNS(prefix, node string) string    { return prefix + "node-" + nsSafe(node) }
func podNS(prefix, ns, name string) string { return prefix + "pod-" + nsSafe(ns) + "." + nsSafe(name) }
func underlayNS(prefix string) string      { return prefix + "underlay" }
func externalNS(prefix string) string      { return prefix + "external" }
func underlayPort(i int) string            { return fmt.Sprintf("n%d", i) }
func hostVethName(podNS, podName string) string {
	// The same name the trace engine prints for the host end of a pod's veth (flannel's bridge CNI uses random
	// names; kpath uses a stable hash so predicted and observed interface names agree).
	h := fnv.New32a()
	h.Write([]byte(podNS + "/" + podName))
	return fmt.Sprintf("veth%08x", h.Sum32()%(1<<31))
}

func fnvSum(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}
