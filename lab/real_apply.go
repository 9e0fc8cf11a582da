package lab

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	discoveryv1client "k8s.io/client-go/kubernetes/typed/discovery/v1"
	networkingv1client "k8s.io/client-go/kubernetes/typed/networking/v1"
	"k8s.io/client-go/rest"
)

// sliceControllerName is the managed-by label value of slices the EndpointSlice controller owns.
const sliceControllerName = "endpointslice-controller.k8s.io"

// realClients are typed clients for the kinds the lab writes and reads.
type realClients struct {
	core *corev1client.CoreV1Client
	disc *discoveryv1client.DiscoveryV1Client
	net  *networkingv1client.NetworkingV1Client
}

func newRealClients(cfg *rest.Config) (*realClients, error) {
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discoveryv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	nc, err := networkingv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &realClients{core, disc, nc}, nil
}

// cleanMeta drops what the server assigns, so an object read from a dump can be created again.
func cleanMeta(m *metav1.ObjectMeta) {
	m.ResourceVersion, m.UID, m.Generation = "", "", 0
	m.CreationTimestamp = metav1.Time{}
	m.DeletionTimestamp, m.DeletionGracePeriodSeconds = nil, nil
	m.ManagedFields = nil
	m.SelfLink = ""
}

// apply writes the snapshot to the API server as the kubelet, the scheduler and the user would have: objects
// first, then the status of Nodes, Pods and LoadBalancer Services through the status subresource (a create drops
// status). EndpointSlices are not written — the real controller makes them — except for Services without a
// selector, whose slices a user or another controller writes.
func (r *realBuilder) apply(ctx context.Context) error {
	cs, err := newRealClients(r.rs.restConfig(r.creds.caPEM, r.creds.tokens[userAdmin]))
	if err != nil {
		return err
	}
	snap := r.b.snap
	rs := r.rs
	rs.Applied = map[string]int{}
	opts := metav1.CreateOptions{FieldManager: "kpath-lab"}
	uopts := metav1.UpdateOptions{FieldManager: "kpath-lab"}
	skip := func(kind, ref string, err error) {
		rs.Skipped = append(rs.Skipped, fmt.Sprintf("%s %s: %v", kind, ref, err))
	}
	ok := func(kind string) { rs.Applied[kind]++ }

	// Namespaces: the snapshot's, and every namespace an object uses.
	nsSeen := map[string]bool{}
	var nss []*corev1.Namespace
	for _, n := range snap.Namespaces {
		nsSeen[n.Name] = true
		nss = append(nss, n.DeepCopy())
	}
	use := func(ns string) {
		if ns != "" && !nsSeen[ns] {
			nsSeen[ns] = true
			nss = append(nss, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
	}
	for _, o := range snap.Services {
		use(o.Namespace)
	}
	for _, o := range snap.Pods {
		use(o.Namespace)
	}
	for _, o := range snap.ConfigMaps {
		use(o.Namespace)
	}
	for _, o := range snap.NetworkPolicies {
		use(o.Namespace)
	}
	for _, n := range nss {
		cleanMeta(&n.ObjectMeta)
		n.Status = corev1.NamespaceStatus{}
		if _, err := cs.core.Namespaces().Create(ctx, n, opts); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("Namespace %s: %w", n.Name, err)
		}
		ok("Namespace")
	}

	for _, n0 := range snap.Nodes {
		n := n0.DeepCopy()
		cleanMeta(&n.ObjectMeta)
		status := n.Status
		n.Status = corev1.NodeStatus{}
		got, err := cs.core.Nodes().Create(ctx, n, opts)
		if err != nil {
			skip("Node", n.Name, err)
			continue
		}
		got.Status = status
		if _, err := cs.core.Nodes().UpdateStatus(ctx, got, uopts); err != nil {
			skip("Node status", n.Name, err)
			continue
		}
		ok("Node")
	}

	for _, s0 := range snap.Services {
		s := s0.DeepCopy()
		cleanMeta(&s.ObjectMeta)
		status := s.Status
		s.Status = corev1.ServiceStatus{}
		got, err := cs.core.Services(s.Namespace).Create(ctx, s, opts)
		if err != nil {
			if cur, gerr := cs.core.Services(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{}); gerr == nil {
				// The API server made it (default/kubernetes): keep the server's, say so when it differs.
				if cur.Spec.ClusterIP != s.Spec.ClusterIP {
					skip("Service", s.Namespace+"/"+s.Name, fmt.Errorf("exists on the server with ClusterIP %s (snapshot: %s)", cur.Spec.ClusterIP, s.Spec.ClusterIP))
				}
				ok("Service")
				continue
			}
			skip("Service", s.Namespace+"/"+s.Name, err)
			continue
		}
		if len(status.LoadBalancer.Ingress) > 0 {
			got.Status = status
			if _, err := cs.core.Services(s.Namespace).UpdateStatus(ctx, got, uopts); err != nil {
				skip("Service status", s.Namespace+"/"+s.Name, err)
			}
		}
		ok("Service")
	}

	for _, c0 := range snap.ConfigMaps {
		c := c0.DeepCopy()
		cleanMeta(&c.ObjectMeta)
		if _, err := cs.core.ConfigMaps(c.Namespace).Create(ctx, c, opts); err != nil && !apierrors.IsAlreadyExists(err) {
			skip("ConfigMap", c.Namespace+"/"+c.Name, err)
			continue
		}
		ok("ConfigMap")
	}
	for _, p0 := range snap.NetworkPolicies {
		p := p0.DeepCopy()
		cleanMeta(&p.ObjectMeta)
		if _, err := cs.net.NetworkPolicies(p.Namespace).Create(ctx, p, opts); err != nil {
			skip("NetworkPolicy", p.Namespace+"/"+p.Name, err)
			continue
		}
		ok("NetworkPolicy")
	}

	// Pods: created bound to their node (no scheduler runs), then their status as the kubelet reports it: the
	// lab's IPs, phase, conditions.
	var droppedOwners, addedClaims []string
	for _, p0 := range snap.Pods {
		p := p0.DeepCopy()
		cleanMeta(&p.ObjectMeta)
		if fixPodForCreate(p) {
			addedClaims = append(addedClaims, p.Namespace+"/"+p.Name)
		}
		if dropOwnersWithoutUID(&p.ObjectMeta) {
			droppedOwners = append(droppedOwners, p.Namespace+"/"+p.Name)
		}
		status := p.Status
		p.Status = corev1.PodStatus{}
		got, err := cs.core.Pods(p.Namespace).Create(ctx, p, opts)
		if err != nil {
			skip("Pod", p.Namespace+"/"+p.Name, err)
			continue
		}
		got.Status = status
		if _, err := cs.core.Pods(p.Namespace).UpdateStatus(ctx, got, uopts); err != nil {
			skip("Pod status", p.Namespace+"/"+p.Name, err)
			continue
		}
		ok("Pod")
	}

	if len(droppedOwners) > 0 {
		rs.Notes = append(rs.Notes, fmt.Sprintf("%d pods synthesized by kpath have ownerReferences without a uid (the API server requires one): created without them (%s)", len(droppedOwners), strings.Join(droppedOwners, ", ")))
	}
	if len(addedClaims) > 0 {
		rs.Notes = append(rs.Notes, fmt.Sprintf("%d pods mount volumes their spec lacks (kpath's StatefulSet pod synthesis does not add the volumeClaimTemplates' volumes): created with the persistentVolumeClaim volume the StatefulSet controller would add (%s)", len(addedClaims), strings.Join(addedClaims, ", ")))
	}
	// EndpointSlices of Services without a selector: nobody but their writer makes them.
	for _, sl0 := range snap.EndpointSlices {
		svc := snap.Service(sl0.Namespace, sl0.Labels[discoveryv1.LabelServiceName])
		if svc == nil || len(svc.Spec.Selector) > 0 || sl0.Labels[discoveryv1.LabelManagedBy] == sliceControllerName {
			continue
		}
		sl := sl0.DeepCopy()
		cleanMeta(&sl.ObjectMeta)
		sl.OwnerReferences = nil
		if _, err := cs.disc.EndpointSlices(sl.Namespace).Create(ctx, sl, opts); err != nil {
			skip("EndpointSlice", sl.Namespace+"/"+sl.Name, err)
			continue
		}
		ok("EndpointSlice (selectorless Service, as given)")
	}
	return nil
}

// dropOwnersWithoutUID removes owner references the server would reject (no uid), reporting whether it did.
func dropOwnersWithoutUID(m *metav1.ObjectMeta) bool {
	var keep []metav1.OwnerReference
	for _, o := range m.OwnerReferences {
		if o.UID != "" {
			keep = append(keep, o)
		}
	}
	dropped := len(keep) != len(m.OwnerReferences)
	m.OwnerReferences = keep
	return dropped
}

// fixPodForCreate adds a volume for every volumeMount that names none, as the StatefulSet controller does for its
// volumeClaimTemplates (claim "<volume>-<pod>"), reporting whether it did.
func fixPodForCreate(p *corev1.Pod) bool {
	have := map[string]bool{}
	for _, v := range p.Spec.Volumes {
		have[v.Name] = true
	}
	added := false
	for _, cs := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range cs {
			for _, vm := range c.VolumeMounts {
				if have[vm.Name] {
					continue
				}
				have[vm.Name] = true
				added = true
				p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: vm.Name, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: vm.Name + "-" + p.Name}}})
			}
		}
	}
	return added
}

// waitSlices waits until the EndpointSlice controller has written a slice for every Service with a selector (it
// writes a placeholder without endpoints when no pod matches), then until the slices stop changing, and records
// every difference from the snapshot's slices.
func (r *realBuilder) waitSlices(ctx context.Context, kcm *RealProcess) error {
	cs, err := newRealClients(r.rs.restConfig(r.creds.caPEM, r.creds.tokens[userAdmin]))
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, s := range r.b.snap.Services {
		if len(s.Spec.Selector) > 0 && s.Spec.Type != corev1.ServiceTypeExternalName {
			want[s.Namespace+"/"+s.Name] = true
		}
	}
	deadline := time.Now().Add(90 * time.Second)
	var last []discoveryv1.EndpointSlice
	lastRV, stable := "", 0
	for {
		if !kcm.alive() {
			return kcm.exitedErr()
		}
		list, err := cs.disc.EndpointSlices("").List(ctx, metav1.ListOptions{})
		if err == nil {
			have := map[string]bool{}
			for _, sl := range list.Items {
				if sl.Labels[discoveryv1.LabelManagedBy] == sliceControllerName {
					have[sl.Namespace+"/"+sl.Labels[discoveryv1.LabelServiceName]] = true
				}
			}
			var missing []string
			for k := range want {
				if !have[k] {
					missing = append(missing, k)
				}
			}
			if len(missing) == 0 {
				if list.ResourceVersion == lastRV {
					stable++
				} else {
					stable = 0
				}
				lastRV, last = list.ResourceVersion, list.Items
				if stable >= 3 {
					break
				}
			} else if time.Now().After(deadline) {
				sort.Strings(missing)
				return fmt.Errorf("the EndpointSlice controller wrote no slice within 90s for %v", missing)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("listing EndpointSlices: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
	r.rs.SliceDiffs = diffSlices(r.b.snap, last)
	return nil
}
