package lab

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/kpath/kpath/cluster"
)

// sliceView is what kube-proxy and CoreDNS read from a Service's EndpointSlices, without names, uids and order:
// per address type, the port set and each endpoint's addresses, conditions, node, zone, hostname, target and
// hints.
type sliceView struct {
	ports     map[string]bool   // "addressType name/proto/port"
	endpoints map[string]string // "addressType address" → attributes
	synth     map[string]bool   // endpoints of slices kpath synthesized
}

func boolp(b *bool) string {
	if b == nil {
		return "unset"
	}
	if *b {
		return "true"
	}
	return "false"
}

func endpointAttrs(e discoveryv1.Endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "ready=%s serving=%s terminating=%s", boolp(e.Conditions.Ready), boolp(e.Conditions.Serving), boolp(e.Conditions.Terminating))
	if e.NodeName != nil {
		fmt.Fprintf(&b, " node=%s", *e.NodeName)
	}
	if e.Zone != nil {
		fmt.Fprintf(&b, " zone=%s", *e.Zone)
	}
	if e.Hostname != nil {
		fmt.Fprintf(&b, " hostname=%s", *e.Hostname)
	}
	if e.TargetRef != nil {
		fmt.Fprintf(&b, " target=%s/%s/%s", e.TargetRef.Kind, e.TargetRef.Namespace, e.TargetRef.Name)
	}
	if e.Hints != nil {
		var zs []string
		for _, z := range e.Hints.ForZones {
			zs = append(zs, z.Name)
		}
		for _, n := range e.Hints.ForNodes {
			zs = append(zs, "node:"+n.Name)
		}
		fmt.Fprintf(&b, " hints=%s", strings.Join(zs, ","))
	}
	return b.String()
}

func viewOf(slices []*discoveryv1.EndpointSlice) sliceView {
	v := sliceView{ports: map[string]bool{}, endpoints: map[string]string{}, synth: map[string]bool{}}
	for _, sl := range slices {
		at := string(sl.AddressType)
		for _, p := range sl.Ports {
			name, proto, port := "", "TCP", int32(0)
			if p.Name != nil {
				name = *p.Name
			}
			if p.Protocol != nil {
				proto = string(*p.Protocol)
			}
			if p.Port != nil {
				port = *p.Port
			}
			v.ports[fmt.Sprintf("%s %s/%s/%d", at, name, proto, port)] = true
		}
		syn := cluster.IsSynthesized(sl, "")
		for _, e := range sl.Endpoints {
			for _, a := range e.Addresses {
				k := at + " " + a
				v.endpoints[k] = endpointAttrs(e)
				if syn {
					v.synth[k] = true
				}
			}
		}
	}
	return v
}

// diffSlices compares, per Service, the snapshot's EndpointSlices (given in the input or synthesized by kpath)
// with the ones on the server: endpoints by address (conditions, node, zone, hostname, target, hints) and ports.
func diffSlices(snap *cluster.Snapshot, real []discoveryv1.EndpointSlice) []Difference {
	realBy := map[string][]*discoveryv1.EndpointSlice{}
	for i := range real {
		sl := &real[i]
		k := sl.Namespace + "/" + sl.Labels[discoveryv1.LabelServiceName]
		realBy[k] = append(realBy[k], sl)
	}
	var keys []string
	seen := map[string]bool{}
	for _, s := range snap.Services {
		if s.Spec.Type == corev1.ServiceTypeExternalName {
			continue
		}
		k := s.Namespace + "/" + s.Name
		seen[k] = true
		keys = append(keys, k)
	}
	for k := range realBy {
		if !seen[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []Difference
	for _, k := range keys {
		ns, name, _ := strings.Cut(k, "/")
		model := viewOf(snap.SlicesFor(ns, name))
		obs := viewOf(realBy[k])
		tag := func(ep string) string {
			if model.synth[ep] {
				return " (synthesized by kpath)"
			}
			return ""
		}
		for _, ep := range unionSorted(model.endpoints, obs.endpoints) {
			m, mok := model.endpoints[ep]
			o, ook := obs.endpoints[ep]
			switch {
			case !mok:
				out = append(out, Difference{What: "EndpointSlice " + k + " endpoint " + ep, Predicted: "absent", Observed: o})
			case !ook:
				out = append(out, Difference{What: "EndpointSlice " + k + " endpoint " + ep, Predicted: m + tag(ep), Observed: "absent"})
			case m != o:
				out = append(out, Difference{What: "EndpointSlice " + k + " endpoint " + ep, Predicted: m + tag(ep), Observed: o})
			}
		}
		mp, op := sortedKeys(model.ports), sortedKeys(obs.ports)
		if strings.Join(mp, ",") != strings.Join(op, ",") && (len(model.endpoints) > 0 || len(obs.endpoints) > 0) {
			out = append(out, Difference{What: "EndpointSlice " + k + " ports", Predicted: strings.Join(mp, ", "), Observed: strings.Join(op, ", ")})
		}
	}
	return out
}

func unionSorted(a, b map[string]string) []string {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return sortedKeys(m)
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
