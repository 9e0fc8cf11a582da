package kubeproxy

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// categorize fills ClusterEndpoints, LocalEndpoints, Reachable, HasEndpoints and TopologyMode the
// way kube-proxy's CategorizeEndpoints (pkg/proxy/topology.go) does:
//   - "usable" means Ready, falling back (separately for Cluster and Local) to Serving+Terminating;
//   - Cluster endpoints honour topology hints (PreferSameNode, then PreferSameZone) when every
//     ready endpoint carries a hint and at least one hint names this node / zone;
//   - Local endpoints are the usable endpoints on this node.
func categorize(sp *ServicePort, nodeName, zone string) {
	sp.choices = &choiceCache{}
	eps := sp.AllEndpoints
	if len(eps) == 0 {
		return
	}
	useServingTerminating := false
	if sp.usesClusterEndpoints() {
		sp.TopologyMode = topologyMode(eps, nodeName, zone)
		sp.ClusterEndpoints = filterEndpoints(eps, func(e *Endpoint) bool {
			return e.Ready && availableForTopology(e, sp.TopologyMode, nodeName, zone)
		})
		if len(sp.ClusterEndpoints) == 0 {
			sp.ClusterEndpoints = filterEndpoints(eps, func(e *Endpoint) bool { return e.Serving && e.Terminating })
		}
		if len(sp.ClusterEndpoints) > 0 {
			sp.HasEndpoints = true
		}
	}
	if !sp.usesLocalEndpoints() {
		sp.Reachable = sp.ClusterEndpoints
		return
	}
	var localReady, localServingTerminating bool
	for _, e := range eps {
		if e.Ready {
			sp.HasEndpoints = true
			if e.Local {
				localReady = true
			}
		} else if e.Serving && e.Terminating {
			sp.HasEndpoints = true
			if e.Local {
				localServingTerminating = true
			}
		}
	}
	if localReady {
		sp.LocalEndpoints = filterEndpoints(eps, func(e *Endpoint) bool { return e.Local && e.Ready })
	} else if localServingTerminating {
		useServingTerminating = true
		sp.LocalEndpoints = filterEndpoints(eps, func(e *Endpoint) bool { return e.Local && e.Serving && e.Terminating })
	}
	if !sp.usesClusterEndpoints() {
		sp.Reachable = sp.LocalEndpoints
		return
	}
	if sp.TopologyMode == "" && !useServingTerminating {
		sp.Reachable = sp.ClusterEndpoints
		return
	}
	// Union of both lists (upstream iterates a map here; we keep kube-proxy's endpoint order).
	seen := make(map[string]bool, len(sp.ClusterEndpoints)+len(sp.LocalEndpoints))
	for _, e := range sp.ClusterEndpoints {
		seen[e.str] = true
	}
	for _, e := range sp.LocalEndpoints {
		seen[e.str] = true
	}
	sp.Reachable = filterEndpoints(eps, func(e *Endpoint) bool { return seen[e.str] })
	slices.SortFunc(sp.Reachable, func(a, b *Endpoint) int { return strings.Compare(a.str, b.str) })
}

func topologyMode(eps []*Endpoint, nodeName, zone string) string {
	hasReady, forNode, allNodeHints, forZone, allZoneHints := false, false, true, false, true
	for _, e := range eps {
		if !e.Ready {
			continue
		}
		hasReady = true
		if len(e.NodeHints) == 0 {
			allNodeHints = false
		} else if slices.Contains(e.NodeHints, nodeName) {
			forNode = true
		}
		if len(e.ZoneHints) == 0 {
			allZoneHints = false
		} else if slices.Contains(e.ZoneHints, zone) {
			forZone = true
		}
	}
	if !hasReady {
		return ""
	}
	// PreferSameTrafficDistribution is on by default in v1.36.
	if allNodeHints && forNode {
		return corev1.ServiceTrafficDistributionPreferSameNode
	}
	if allZoneHints && forZone {
		return corev1.ServiceTrafficDistributionPreferSameZone
	}
	return ""
}

func availableForTopology(e *Endpoint, mode, nodeName, zone string) bool {
	switch mode {
	case "":
		return true
	case corev1.ServiceTrafficDistributionPreferSameNode:
		return slices.Contains(e.NodeHints, nodeName)
	case corev1.ServiceTrafficDistributionPreferSameZone:
		return slices.Contains(e.ZoneHints, zone)
	}
	return false
}

func filterEndpoints(eps []*Endpoint, keep func(*Endpoint) bool) []*Endpoint {
	out := make([]*Endpoint, 0, len(eps))
	for _, e := range eps {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}
