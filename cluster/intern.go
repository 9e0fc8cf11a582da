package cluster

import (
	"unique"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
)

// Interning: a 150,000-pod dump repeats the same few thousand strings (label keys and values, namespaces, node
// names, images, condition types) hundreds of thousands of times. Replacing each decoded copy with one canonical
// string keeps the retained heap per pod small; it runs in the decode workers, so it costs no wall time.

func in(s string) string {
	if s == "" {
		return s
	}
	return unique.Make(s).Value()
}

func inT[T ~string](s T) T { return T(in(string(s))) }

func inMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[in(k)] = in(v)
	}
	return out
}

func internMeta(m *metav1.ObjectMeta) {
	m.Namespace = in(m.Namespace)
	m.GenerateName = in(m.GenerateName)
	m.Labels = inMap(m.Labels)
	m.Annotations = inMap(m.Annotations)
	for i := range m.OwnerReferences {
		o := &m.OwnerReferences[i]
		o.APIVersion, o.Kind, o.Name = in(o.APIVersion), in(o.Kind), in(o.Name)
	}
	m.ManagedFields = nil
}

func internContainers(cs []corev1.Container) {
	for i := range cs {
		c := &cs[i]
		c.Name, c.Image, c.TerminationMessagePath = in(c.Name), in(c.Image), in(c.TerminationMessagePath)
		c.ImagePullPolicy, c.TerminationMessagePolicy = inT(c.ImagePullPolicy), inT(c.TerminationMessagePolicy)
		for j := range c.Ports {
			p := &c.Ports[j]
			p.Name, p.Protocol = in(p.Name), inT(p.Protocol)
		}
	}
}

// intern canonicalizes the repetitive strings of the objects that come in the hundreds of thousands.
func intern(obj kruntime.Object) {
	switch o := obj.(type) {
	case *corev1.Pod:
		internMeta(&o.ObjectMeta)
		s := &o.Spec
		s.NodeName, s.ServiceAccountName, s.DeprecatedServiceAccount = in(s.NodeName), in(s.ServiceAccountName), in(s.DeprecatedServiceAccount)
		s.SchedulerName, s.RestartPolicy, s.DNSPolicy = in(s.SchedulerName), inT(s.RestartPolicy), inT(s.DNSPolicy)
		s.Hostname, s.Subdomain = in(s.Hostname), in(s.Subdomain)
		internContainers(s.InitContainers)
		internContainers(s.Containers)
		for i := range s.Tolerations {
			t := &s.Tolerations[i]
			t.Key, t.Operator, t.Effect, t.Value = in(t.Key), inT(t.Operator), inT(t.Effect), in(t.Value)
		}
		s.NodeSelector = inMap(s.NodeSelector)
		st := &o.Status
		st.Phase, st.HostIP, st.QOSClass = inT(st.Phase), in(st.HostIP), inT(st.QOSClass)
		for i := range st.HostIPs {
			st.HostIPs[i].IP = in(st.HostIPs[i].IP)
		}
		for i := range st.Conditions {
			c := &st.Conditions[i]
			c.Type, c.Status, c.Reason = inT(c.Type), inT(c.Status), in(c.Reason)
		}
		for i := range st.ContainerStatuses {
			c := &st.ContainerStatuses[i]
			c.Name, c.Image, c.ImageID = in(c.Name), in(c.Image), in(c.ImageID)
		}
	case *discoveryv1.EndpointSlice:
		internMeta(&o.ObjectMeta)
		for i := range o.Endpoints {
			e := &o.Endpoints[i]
			if e.NodeName != nil {
				v := in(*e.NodeName)
				e.NodeName = &v
			}
			if e.Zone != nil {
				v := in(*e.Zone)
				e.Zone = &v
			}
			if e.TargetRef != nil {
				e.TargetRef.Kind, e.TargetRef.Namespace = in(e.TargetRef.Kind), in(e.TargetRef.Namespace)
			}
		}
	case *corev1.Service:
		internMeta(&o.ObjectMeta)
		o.Spec.Selector = inMap(o.Spec.Selector)
	}
}
