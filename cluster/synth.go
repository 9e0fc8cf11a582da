package cluster

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// Synthesis rules (deterministic: the same input gives the same output, independent of input order):
//   - Namespaces referenced but not given are created; every Namespace gets the kubernetes.io/metadata.name label
//     the API server adds.
//   - Nodes named by pods but not given are created; with no nodes at all, three are created in two zones.
//   - Nodes without spec.podCIDR get a /24 from the cluster pod CIDR; nodes without an InternalIP get one from
//     172.18.0.0/16 (kind's docker network).
//   - Workloads without pods get pods from their template (stable names, as the controllers name them), placed on
//     eligible nodes (nodeName, nodeSelector, required node affinity, taints) spreading replicas across nodes.
//   - Pods without an IP get the next free address of their node's pod CIDR (.2 upward; .1 is the bridge);
//     hostNetwork pods get the node's IP. Pods without status are Running and Ready.
//   - Services get ClusterIPs, NodePorts, healthCheckNodePorts and LoadBalancer ingress IPs when unset.
//   - Services with a selector and no EndpointSlices get slices as the EndpointSlice controller builds them.
// Each synthesized object or field is recorded in Snapshot.Synthesized and the object's SynthesizedAnnotation.

func (b *builder) markSynth(kind string, m metav1.Object, from string, fields ...string) {
	a := m.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	if prev := a[SynthesizedAnnotation]; prev != "" && prev != "*" {
		fields = append(splitComma(prev), fields...)
	} else if prev == "*" {
		return
	}
	a[SynthesizedAnnotation] = strings.Join(fields, ",")
	m.SetAnnotations(a)
	r := refOf(kind, m)
	if prev, ok := b.synthIndex[r]; ok && prev != from && !strings.Contains(prev, from) {
		from = prev + "; " + from
	}
	b.synthIndex[r] = from
}

func hash64(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// safeEncode renders a hash like k8s.io/apimachinery/pkg/util/rand.SafeEncodeString: no vowels, no confusable digits.
func safeEncode(h uint64, n int) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	out := make([]byte, n)
	for i := range out {
		out[i] = alphabet[h%uint64(len(alphabet))]
		h /= uint64(len(alphabet))
	}
	return string(out)
}

func (b *builder) synthesize() {
	b.synthNamespaces()
	b.synthNodes()
	b.synthWorkloadPods()
	b.placePods()
	b.synthServices()
	b.namespacesForSynthesized()
}

// ---- namespaces ----

func (b *builder) ensureNamespace(ns, from string) {
	if ns == "" || b.namespaces[ns] != nil {
		return
	}
	n := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{corev1.LabelMetadataName: ns}}}
	n.Kind, n.APIVersion = "Namespace", "v1"
	b.namespaces[ns] = n
	b.markSynth("Namespace", n, from, "*")
}

func (b *builder) synthNamespaces() {
	for _, ns := range sortedValues(b.namespaces) {
		if ns.Labels[corev1.LabelMetadataName] != ns.Name {
			if ns.Labels == nil {
				ns.Labels = map[string]string{}
			}
			ns.Labels[corev1.LabelMetadataName] = ns.Name
			// Not marked: the API server always sets this label, so it is part of the real object.
		}
	}
	b.namespacesForSynthesized()
}

func (b *builder) namespacesForSynthesized() {
	seen := map[string]bool{}
	var nss []string
	add := func(ns string) {
		if ns != "" && !seen[ns] {
			seen[ns] = true
			nss = append(nss, ns)
		}
	}
	for r := range b.seen {
		add(r.Namespace)
	}
	for _, p := range b.pods {
		add(p.Namespace)
	}
	sort.Strings(nss)
	for _, ns := range nss {
		b.ensureNamespace(ns, "referenced by objects in it")
	}
}

// ---- nodes ----

var kindUnderlay = netip.MustParsePrefix("172.18.0.0/16")

func (b *builder) synthNodes() {
	referenced := map[string]bool{}
	for _, p := range b.pods {
		if p.Spec.NodeName != "" && b.nodes[p.Spec.NodeName] == nil {
			referenced[p.Spec.NodeName] = true
		}
	}
	var names []string
	for n := range referenced {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		b.addSynthNode(n, "", fmt.Sprintf("spec.nodeName of pods"))
	}
	if len(b.nodes) == 0 {
		zones := []string{"zone-a", "zone-b", "zone-a"}
		for i := 1; i <= 3; i++ {
			b.addSynthNode(fmt.Sprintf("kpath-node-%d", i), zones[i-1], "no Nodes in the input: three synthetic nodes in two zones")
		}
	}
	nodes := sortedValues(b.nodes)
	// Validate and collect used CIDRs / IPs first, so allocation skips them.
	usedCIDR := map[netip.Prefix]bool{}
	usedIP := map[netip.Addr]bool{}
	for _, n := range nodes {
		ref := refOf("Node", n)
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		var good []string
		for i, c := range cidrs {
			p, err := netip.ParsePrefix(c)
			if err != nil {
				b.fieldError(ref, fmt.Sprintf("spec.podCIDRs[%d]", i), fmt.Sprintf("%q is not a CIDR: %v; ignored", c, err))
				continue
			}
			usedCIDR[p.Masked()] = true
			good = append(good, p.Masked().String())
		}
		n.Spec.PodCIDRs = good
		n.Spec.PodCIDR = ""
		if len(good) > 0 {
			n.Spec.PodCIDR = good[0]
		}
		var addrs []corev1.NodeAddress
		for i, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP || a.Type == corev1.NodeExternalIP {
				ip, err := netip.ParseAddr(a.Address)
				if err != nil {
					b.fieldError(ref, fmt.Sprintf("status.addresses[%d]", i), fmt.Sprintf("%q is not an IP address: %v; ignored", a.Address, err))
					continue
				}
				usedIP[ip] = true
			}
			addrs = append(addrs, a)
		}
		n.Status.Addresses = addrs
	}
	podNets := b.snap.Profile.PodCIDRs
	nextSub := 0
	for _, n := range nodes {
		if len(n.Spec.PodCIDRs) == 0 {
			for _, cluster := range podNets {
				bits := 24
				if cluster.Addr().Is6() {
					bits = 64
				}
				if cluster.Bits() > bits {
					bits = cluster.Bits()
				}
				for ; ; nextSub++ {
					sub, ok := nthSubnet(cluster, bits, nextSub)
					if !ok {
						break
					}
					if !usedCIDR[sub] {
						usedCIDR[sub] = true
						n.Spec.PodCIDRs = append(n.Spec.PodCIDRs, sub.String())
						nextSub++
						break
					}
				}
			}
			if len(n.Spec.PodCIDRs) > 0 {
				n.Spec.PodCIDR = n.Spec.PodCIDRs[0]
				b.markSynth("Node", n, "allocated from the cluster pod CIDR in node-name order", "spec.podCIDR")
			} else {
				b.diag(Diagnostic{Severity: SeverityWarning, Object: refOf("Node", n).String(), Field: "spec.podCIDR",
					Message: "no pod CIDR left to give this node; its pods get no IPs"})
			}
		}
		if nodeIP(n) == (netip.Addr{}) {
			ip := kindUnderlay.Addr().Next().Next() // 172.18.0.2, as kind numbers its nodes
			for usedIP[ip] {
				ip = ip.Next()
			}
			usedIP[ip] = true
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip.String()})
			b.markSynth("Node", n, "allocated from 172.18.0.0/16 in node-name order", "status.addresses")
		}
		if !hasNodeAddress(n, corev1.NodeHostName) {
			n.Status.Addresses = append(n.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: n.Name})
		}
		if len(n.Status.Conditions) == 0 {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady"}}
			b.markSynth("Node", n, "no status given: assumed Ready", "status.conditions")
		}
	}
}

func hasNodeAddress(n *corev1.Node, t corev1.NodeAddressType) bool {
	for _, a := range n.Status.Addresses {
		if a.Type == t {
			return true
		}
	}
	return false
}

func (b *builder) addSynthNode(name, zone, from string) {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{
		corev1.LabelHostname: name, corev1.LabelOSStable: "linux", corev1.LabelArchStable: "amd64"}}}
	n.Kind, n.APIVersion = "Node", "v1"
	if zone != "" {
		n.Labels[corev1.LabelTopologyZone] = zone
	}
	b.nodes[name] = n
	b.markSynth("Node", n, from, "*")
}

// nodeIP is the node's first InternalIP (then ExternalIP).
func nodeIP(n *corev1.Node) netip.Addr {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type == t {
				if ip, err := netip.ParseAddr(a.Address); err == nil {
					return ip
				}
			}
		}
	}
	return netip.Addr{}
}

// nthSubnet returns the i-th subnet of size bits inside p.
func nthSubnet(p netip.Prefix, bits, i int) (netip.Prefix, bool) {
	if bits < p.Bits() || (bits-p.Bits() < 31 && i >= 1<<(bits-p.Bits())) {
		return netip.Prefix{}, false
	}
	base := new(big.Int).SetBytes(p.Masked().Addr().AsSlice())
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(p.Addr().BitLen()-bits))
	sum := new(big.Int).Add(base, off).Bytes()
	buf := make([]byte, p.Addr().BitLen()/8)
	copy(buf[len(buf)-len(sum):], sum)
	addr, _ := netip.AddrFromSlice(buf)
	return netip.PrefixFrom(addr, bits), true
}

// ---- workloads → pods ----

type podTemplateOwner struct {
	kind, ns, name string
	uid            string
	template       *corev1.PodTemplateSpec
	selector       labels.Selector
	replicas       int
	from           string
}

// givenPodsFor reports whether the input already has pods for a workload (by controller owner reference, or by
// its selector), in which case nothing is synthesized for it.
func (b *builder) hasPodsFor(kind, ns, name string, sel labels.Selector) bool {
	for _, p := range b.podsByNS[ns] {
		for _, o := range p.OwnerReferences {
			if o.Kind == kind && o.Name == name {
				return true
			}
		}
		if sel != nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
			return true
		}
	}
	return false
}

func (b *builder) selectorOf(ref Ref, ls *metav1.LabelSelector, field string) labels.Selector {
	if ls == nil {
		return nil
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		b.fieldError(ref, field, "invalid label selector: "+err.Error())
		return nil
	}
	return sel
}

func replicasOf(r *int32) int {
	if r == nil {
		return 1
	}
	return max(0, int(*r))
}

// maxSynthReplicas bounds the pods synthesized for one workload: a typo (replicas: 3000000) must not exhaust memory.
// Real runtime state in the input is never capped.
const maxSynthReplicas = 5000

func (b *builder) capReplicas(ref Ref, n int) int {
	if n <= maxSynthReplicas {
		return n
	}
	b.diag(Diagnostic{Severity: SeverityWarning, Location: b.snap.sources[ref], Object: ref.String(),
		Message: fmt.Sprintf("%d replicas: synthesized only the first %d pods (give the pods in the input to model more)", n, maxSynthReplicas)})
	return maxSynthReplicas
}

func (b *builder) synthWorkloadPods() {
	b.podsByNS = map[string][]*corev1.Pod{}
	for _, p := range b.podList() {
		b.podsByNS[p.Namespace] = append(b.podsByNS[p.Namespace], p)
	}
	// Deployments → ReplicaSets (when none is given for them).
	rsByOwner := map[string]bool{}
	for _, rs := range b.replicaSets {
		for _, o := range rs.OwnerReferences {
			if o.Kind == "Deployment" {
				rsByOwner[key(rs.Namespace, o.Name)] = true
			}
		}
	}
	for _, d := range sortedValues(b.deployments) {
		ref := refOf("Deployment", d)
		sel := b.selectorOf(ref, d.Spec.Selector, "spec.selector")
		if rsByOwner[ref.Key()] || b.hasPodsFor("Deployment", d.Namespace, d.Name, sel) {
			continue
		}
		hash := safeEncode(hash64("rs", d.Namespace, d.Name, templateFingerprint(&d.Spec.Template)), 10)
		rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace,
			Labels:          withLabel(d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash),
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", d.Name, string(d.UID))},
		}}
		rs.Kind, rs.APIVersion = "ReplicaSet", "apps/v1"
		rs.Spec.Replicas = ptr.To(int32(replicasOf(d.Spec.Replicas)))
		rs.Spec.Template = *d.Spec.Template.DeepCopy()
		rs.Spec.Template.Labels = withLabel(d.Spec.Template.Labels, appsv1.DefaultDeploymentUniqueLabelKey, hash)
		if d.Spec.Selector != nil {
			rs.Spec.Selector = d.Spec.Selector.DeepCopy()
			if rs.Spec.Selector.MatchLabels == nil {
				rs.Spec.Selector.MatchLabels = map[string]string{}
			}
			rs.Spec.Selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
		}
		b.replicaSets[key(rs.Namespace, rs.Name)] = rs
		b.markSynth("ReplicaSet", rs, fmt.Sprintf("Deployment %s/%s", d.Namespace, d.Name), "*")
	}
	var owners []podTemplateOwner
	for _, rs := range sortedValues(b.replicaSets) {
		ref := refOf("ReplicaSet", rs)
		owners = append(owners, podTemplateOwner{"ReplicaSet", rs.Namespace, rs.Name, string(rs.UID), &rs.Spec.Template,
			b.selectorOf(ref, rs.Spec.Selector, "spec.selector"), replicasOf(rs.Spec.Replicas),
			fmt.Sprintf("%s replicas=%d", ref, replicasOf(rs.Spec.Replicas))})
	}
	for _, rc := range sortedValues(b.rcs) {
		var sel labels.Selector
		if len(rc.Spec.Selector) > 0 {
			sel = labels.SelectorFromSet(rc.Spec.Selector)
		}
		if rc.Spec.Template == nil {
			continue
		}
		owners = append(owners, podTemplateOwner{"ReplicationController", rc.Namespace, rc.Name, string(rc.UID),
			rc.Spec.Template, sel, replicasOf(rc.Spec.Replicas),
			fmt.Sprintf("ReplicationController %s/%s replicas=%d", rc.Namespace, rc.Name, replicasOf(rc.Spec.Replicas))})
	}
	for _, j := range sortedValues(b.jobs) {
		ref := refOf("Job", j)
		n := replicasOf(j.Spec.Parallelism)
		if j.Spec.Completions != nil && int(*j.Spec.Completions)-int(j.Status.Succeeded) < n {
			n = max(0, int(*j.Spec.Completions)-int(j.Status.Succeeded))
		}
		owners = append(owners, podTemplateOwner{"Job", j.Namespace, j.Name, string(j.UID), &j.Spec.Template,
			b.selectorOf(ref, j.Spec.Selector, "spec.selector"), n, fmt.Sprintf("Job %s/%s parallelism=%d", j.Namespace, j.Name, n)})
	}
	for _, o := range owners {
		if o.replicas == 0 || b.hasPodsFor(o.kind, o.ns, o.name, o.selector) {
			continue
		}
		n := b.capReplicas(Ref{Kind: o.kind, Namespace: o.ns, Name: o.name}, o.replicas)
		for i := 0; i < n; i++ {
			name := o.name + "-" + safeEncode(hash64("pod", o.ns, o.name, strconv.Itoa(i)), 5)
			p := podFromTemplate(o.template, o.ns, name, controllerRef(apiVersionOf(o.kind), o.kind, o.name, o.uid))
			b.addSynthPod(p, o.from)
		}
	}
	for _, s := range sortedValues(b.statefulSets) {
		ref := refOf("StatefulSet", s)
		sel := b.selectorOf(ref, s.Spec.Selector, "spec.selector")
		if b.hasPodsFor("StatefulSet", s.Namespace, s.Name, sel) {
			continue
		}
		n := b.capReplicas(ref, replicasOf(s.Spec.Replicas))
		for i := 0; i < n; i++ {
			name := fmt.Sprintf("%s-%d", s.Name, i)
			p := podFromTemplate(&s.Spec.Template, s.Namespace, name, controllerRef("apps/v1", "StatefulSet", s.Name, string(s.UID)))
			p.Labels = withLabel(p.Labels, appsv1.StatefulSetPodNameLabel, name)
			p.Labels[appsv1.PodIndexLabel] = strconv.Itoa(i)
			p.Spec.Hostname = name
			p.Spec.Subdomain = s.Spec.ServiceName
			b.addSynthPod(p, fmt.Sprintf("StatefulSet %s/%s replicas=%d", s.Namespace, s.Name, n))
		}
	}
	for _, ds := range sortedValues(b.daemonSets) {
		ref := refOf("DaemonSet", ds)
		sel := b.selectorOf(ref, ds.Spec.Selector, "spec.selector")
		if b.hasPodsFor("DaemonSet", ds.Namespace, ds.Name, sel) {
			continue
		}
		for _, n := range sortedValues(b.nodes) {
			if ok, _ := eligible(&ds.Spec.Template.Spec, n, true); !ok {
				continue
			}
			name := ds.Name + "-" + safeEncode(hash64("ds", ds.Namespace, ds.Name, n.Name), 5)
			p := podFromTemplate(&ds.Spec.Template, ds.Namespace, name, controllerRef("apps/v1", "DaemonSet", ds.Name, string(ds.UID)))
			p.Spec.NodeName = n.Name
			b.addSynthPod(p, fmt.Sprintf("DaemonSet %s/%s on node %s", ds.Namespace, ds.Name, n.Name))
		}
	}
	for _, cj := range sortedValues(b.cronJobs) {
		b.diag(Diagnostic{Severity: SeverityInfo, Location: b.snap.sources[refOf("CronJob", cj)], Object: refOf("CronJob", cj).String(),
			Message: "a CronJob has pods only while a Job it started runs; none is in the input, so no pods were synthesized"})
	}
}

func apiVersionOf(kind string) string {
	switch kind {
	case "ReplicaSet", "StatefulSet", "DaemonSet", "Deployment":
		return "apps/v1"
	case "Job", "CronJob":
		return "batch/v1"
	}
	return "v1"
}

func controllerRef(apiVersion, kind, name, uid string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: typesUID(uid),
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}
}

func withLabel(in map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(in)+1)
	for a, b := range in {
		out[a] = b
	}
	out[k] = v
	return out
}

// templateFingerprint is a stable digest of a pod template (labels, containers, ports) for naming.
func templateFingerprint(t *corev1.PodTemplateSpec) string {
	var sb strings.Builder
	keys := make([]string, 0, len(t.Labels))
	for k := range t.Labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		sb.WriteString(k + "=" + t.Labels[k] + ";")
	}
	for _, c := range t.Spec.Containers {
		sb.WriteString(c.Name + ":" + c.Image + ";")
	}
	return sb.String()
}

func podFromTemplate(t *corev1.PodTemplateSpec, ns, name string, owner metav1.OwnerReference) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: *t.ObjectMeta.DeepCopy(), Spec: *t.Spec.DeepCopy()}
	p.Kind, p.APIVersion = "Pod", "v1"
	p.Name, p.Namespace = name, ns
	p.GenerateName = ""
	p.OwnerReferences = []metav1.OwnerReference{owner}
	if p.Labels == nil {
		p.Labels = map[string]string{}
	}
	return p
}

func (b *builder) addSynthPod(p *corev1.Pod, from string) {
	k := key(p.Namespace, p.Name)
	if b.pods[k] != nil {
		return
	}
	b.pods[k] = p
	b.podsByNS[p.Namespace] = append(b.podsByNS[p.Namespace], p)
	b.markSynth("Pod", p, from, "*")
}

// ---- placement and pod IPs ----

// eligible reports whether a pod may run on a node: nodeSelector, required node affinity, taints (NoSchedule and
// NoExecute must be tolerated; daemon pods tolerate unschedulable). The reason names what excluded the node.
func eligible(spec *corev1.PodSpec, n *corev1.Node, daemon bool) (bool, string) {
	if n.Spec.Unschedulable && !daemon {
		return false, "node is cordoned"
	}
	for k, v := range spec.NodeSelector {
		if n.Labels[k] != v {
			return false, fmt.Sprintf("nodeSelector %s=%s", k, v)
		}
	}
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		ok := false
		for _, term := range a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
			if nodeTermMatches(term, n) {
				ok = true
				break
			}
		}
		if !ok {
			return false, "required node affinity"
		}
	}
	for _, t := range n.Spec.Taints {
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		tolerated := false
		for _, tol := range spec.Tolerations {
			if tol.ToleratesTaint(klog.Background(), &t, false) {
				tolerated = true
				break
			}
		}
		if !tolerated {
			return false, "taint " + t.ToString()
		}
	}
	return true, ""
}

func nodeTermMatches(term corev1.NodeSelectorTerm, n *corev1.Node) bool {
	if len(term.MatchExpressions) == 0 && len(term.MatchFields) == 0 {
		return false
	}
	for _, e := range term.MatchExpressions {
		v, has := n.Labels[e.Key]
		switch e.Operator {
		case corev1.NodeSelectorOpIn:
			if !has || !contains(e.Values, v) {
				return false
			}
		case corev1.NodeSelectorOpNotIn:
			if has && contains(e.Values, v) {
				return false
			}
		case corev1.NodeSelectorOpExists:
			if !has {
				return false
			}
		case corev1.NodeSelectorOpDoesNotExist:
			if has {
				return false
			}
		case corev1.NodeSelectorOpGt, corev1.NodeSelectorOpLt:
			a, err1 := strconv.ParseInt(v, 10, 64)
			if !has || len(e.Values) != 1 {
				return false
			}
			c, err2 := strconv.ParseInt(e.Values[0], 10, 64)
			if err1 != nil || err2 != nil || (e.Operator == corev1.NodeSelectorOpGt) != (a > c) || a == c {
				return false
			}
		}
	}
	for _, f := range term.MatchFields {
		if f.Key == "metadata.name" {
			in := contains(f.Values, n.Name)
			if (f.Operator == corev1.NodeSelectorOpIn) != in {
				return false
			}
		}
	}
	return true
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

func ownerKey(p *corev1.Pod) string {
	for _, o := range p.OwnerReferences {
		if o.Controller != nil && *o.Controller {
			return p.Namespace + "/" + o.Kind + "/" + o.Name
		}
	}
	return p.Namespace + "/Pod/" + p.Name
}

func (b *builder) placePods() {
	nodes := sortedValues(b.nodes)
	// Nodes interleaved by zone, so consecutive replicas land in different zones where possible.
	order := interleaveZones(nodes)
	pods := b.podList()

	// IPs already taken, per node pod CIDR.
	used := map[netip.Addr]bool{}
	for _, p := range pods {
		ref := refOf("Pod", p)
		var good []corev1.PodIP
		ips := p.Status.PodIPs
		if len(ips) == 0 && p.Status.PodIP != "" {
			ips = []corev1.PodIP{{IP: p.Status.PodIP}}
		}
		for i, ip := range ips {
			a, err := netip.ParseAddr(ip.IP)
			if err != nil {
				b.fieldError(ref, fmt.Sprintf("status.podIPs[%d]", i), fmt.Sprintf("%q is not an IP address: %v; ignored", ip.IP, err))
				continue
			}
			used[a] = true
			good = append(good, ip)
		}
		p.Status.PodIPs = good
		p.Status.PodIP = ""
		if len(good) > 0 {
			p.Status.PodIP = good[0].IP
		}
		if p.Status.HostIP != "" {
			if _, err := netip.ParseAddr(p.Status.HostIP); err != nil {
				b.fieldError(ref, "status.hostIP", fmt.Sprintf("%q is not an IP address; ignored", p.Status.HostIP))
				p.Status.HostIP = ""
			}
		}
	}
	// Node cursors for allocation.
	nextIP := map[string]map[netip.Prefix]netip.Addr{}
	replica := map[string]int{}
	for _, p := range pods {
		ref := refOf("Pod", p)
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		synthPod := IsSynthesized(p, "*")
		if p.Spec.NodeName == "" && p.Status.PodIP != "" {
			// A pod with an IP but no node: the node whose pod CIDR holds the IP.
			ip, _ := netip.ParseAddr(p.Status.PodIP)
			for _, n := range nodes {
				if nodeHoldsPodIP(n, ip) {
					p.Spec.NodeName = n.Name
					b.markSynthField(ref, p, "spec.nodeName", "the node whose pod CIDR holds status.podIP")
					break
				}
			}
		}
		if p.Spec.NodeName == "" {
			var cands []*corev1.Node
			var reasons []string
			for _, n := range order {
				if ok, why := eligible(&p.Spec, n, false); ok {
					cands = append(cands, n)
				} else {
					reasons = append(reasons, n.Name+": "+why)
				}
			}
			if len(cands) == 0 {
				p.Status.Phase = corev1.PodPending
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
					Reason: "Unschedulable", Message: "no eligible node: " + strings.Join(reasons, "; ")}}
				b.markSynthField(ref, p, "status", "no eligible node")
				b.diag(Diagnostic{Severity: SeverityWarning, Location: b.snap.sources[ref], Object: ref.String(),
					Message: "no node can run this pod (" + strings.Join(reasons, "; ") + "); it stays Pending without an IP"})
				continue
			}
			ok := ownerKey(p)
			i := replica[ok]
			replica[ok]++
			start := int(hash64(ok) % uint64(len(cands)))
			p.Spec.NodeName = cands[(start+i)%len(cands)].Name
			b.markSynthField(ref, p, "spec.nodeName", "spread over eligible nodes")
		}
		n := b.nodes[p.Spec.NodeName]
		if n == nil {
			continue
		}
		hostIP := nodeIP(n)
		if p.Status.HostIP == "" && hostIP.IsValid() {
			p.Status.HostIP = hostIP.String()
			p.Status.HostIPs = []corev1.HostIP{{IP: hostIP.String()}}
			if !synthPod {
				b.markSynthField(ref, p, "status.hostIP", "node InternalIP")
			}
		}
		if p.Status.PodIP == "" {
			if p.Spec.HostNetwork {
				if hostIP.IsValid() {
					p.Status.PodIP = hostIP.String()
					p.Status.PodIPs = []corev1.PodIP{{IP: hostIP.String()}}
				}
			} else {
				for _, c := range n.Spec.PodCIDRs {
					cidr, _ := netip.ParsePrefix(c)
					if nextIP[n.Name] == nil {
						nextIP[n.Name] = map[netip.Prefix]netip.Addr{}
					}
					ip, ok := nextIP[n.Name][cidr]
					if !ok {
						ip = cidr.Addr().Next().Next() // .0 is the network, .1 the node's bridge (cni0)
					}
					for used[ip] && cidr.Contains(ip) {
						ip = ip.Next()
					}
					if !cidr.Contains(ip) {
						b.diag(Diagnostic{Severity: SeverityWarning, Object: ref.String(), Field: "status.podIP",
							Message: "node " + n.Name + " pod CIDR " + c + " is full; pod left without an IP"})
						continue
					}
					used[ip] = true
					nextIP[n.Name][cidr] = ip.Next()
					p.Status.PodIPs = append(p.Status.PodIPs, corev1.PodIP{IP: ip.String()})
				}
				if len(p.Status.PodIPs) > 0 {
					p.Status.PodIP = p.Status.PodIPs[0].IP
				}
			}
			if p.Status.PodIP != "" && !synthPod {
				b.markSynthField(ref, p, "status.podIP", "next free address in the node's pod CIDR")
			}
		}
		if p.Status.Phase == "" {
			p.Status.Phase = corev1.PodRunning
			if len(p.Status.Conditions) == 0 {
				p.Status.Conditions = []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionTrue},
					{Type: corev1.PodInitialized, Status: corev1.ConditionTrue},
					{Type: corev1.ContainersReady, Status: corev1.ConditionTrue},
					{Type: corev1.PodReady, Status: corev1.ConditionTrue},
				}
			}
			if !synthPod {
				b.markSynthField(ref, p, "status.phase", "no status given: assumed Running and Ready")
			}
		}
	}
}

func (b *builder) markSynthField(ref Ref, m metav1.Object, field, from string) {
	b.markSynth(ref.Kind, m, from, field)
}

func nodeHoldsPodIP(n *corev1.Node, ip netip.Addr) bool {
	for _, c := range n.Spec.PodCIDRs {
		if p, err := netip.ParsePrefix(c); err == nil && p.Contains(ip) {
			return true
		}
	}
	return false
}

func interleaveZones(nodes []*corev1.Node) []*corev1.Node {
	byZone := map[string][]*corev1.Node{}
	var zones []string
	for _, n := range nodes {
		z := n.Labels[corev1.LabelTopologyZone]
		if _, ok := byZone[z]; !ok {
			zones = append(zones, z)
		}
		byZone[z] = append(byZone[z], n)
	}
	sort.Strings(zones)
	var out []*corev1.Node
	for i := 0; len(out) < len(nodes); i++ {
		for _, z := range zones {
			if i < len(byZone[z]) {
				out = append(out, byZone[z][i])
			}
		}
	}
	return out
}

func (b *builder) fieldError(ref Ref, field, msg string) {
	b.diag(Diagnostic{Severity: SeverityError, Location: b.snap.sources[ref], Object: ref.String(), Field: field, Message: msg})
}

// ---- helpers for address arithmetic ----

func addrAdd(base netip.Addr, n uint64) netip.Addr {
	a := base.As16()
	hi := binary.BigEndian.Uint64(a[:8])
	lo := binary.BigEndian.Uint64(a[8:])
	lo2 := lo + n
	if lo2 < lo {
		hi++
	}
	binary.BigEndian.PutUint64(a[:8], hi)
	binary.BigEndian.PutUint64(a[8:], lo2)
	r := netip.AddrFrom16(a)
	if base.Is4() {
		return r.Unmap()
	}
	return r
}

func prefixSize(p netip.Prefix) uint64 {
	hostBits := p.Addr().BitLen() - p.Bits()
	if hostBits >= 63 {
		return 1 << 62
	}
	return 1 << hostBits
}

var _ = intstr.Int
