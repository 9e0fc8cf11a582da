package gen

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// section is a run of objects of one kind; build(i) makes the i-th from the plan alone, so
// sections can be built in any order and in parallel with identical results.
type section struct {
	kind  string
	n     int
	build func(i int) runtime.Object
}

func (p *plan) sections() []section {
	ds := len(p.deployments)
	ss := []section{
		{"Namespace", len(p.namespaces), p.namespace},
		{"Node", len(p.nodes), p.node},
		{"ConfigMap", 3, p.configMap},
		{"Service", len(p.services), p.service},
		{"DaemonSet", 2, p.daemonSet},
		{"Deployment", ds, p.deployment},
		{"ReplicaSet", ds, p.replicaSet},
		{"StatefulSet", len(p.statefulSets), p.statefulSet},
		{"Pod", 2 * len(p.nodes), p.daemonPod},
		{"Pod", len(p.pods), p.pod},
		{"EndpointSlice", len(p.slices), p.endpointSlice},
		{"NetworkPolicy", len(p.policies), p.networkPolicy},
	}
	// resourceVersions increase through the dump, as if objects were created in this order.
	rv := 1000
	for i := range ss {
		base, build := rv, ss[i].build
		ss[i].build = func(j int) runtime.Object {
			o := build(j)
			o.(metav1.Object).SetResourceVersion(strconv.Itoa(base + j))
			return o
		}
		rv += ss[i].n
	}
	return ss
}

func (p *plan) total() int {
	n := 0
	for _, s := range p.sections() {
		n += s.n
	}
	return n
}

func (p *plan) at(d time.Duration) metav1.Time { return metav1.NewTime(p.base.Add(d)) }

func (p *plan) meta(tag kindTag, idx int, ns, name string, created time.Duration) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: ns, UID: typesUID(uid(p.seed, tag, idx)), CreationTimestamp: p.at(created)}
}

func ownerRef(apiVersion, kind, name string, id string) []metav1.OwnerReference {
	t := true
	return []metav1.OwnerReference{{APIVersion: apiVersion, Kind: kind, Name: name, UID: typesUID(id), Controller: &t, BlockOwnerDeletion: &t}}
}

var (
	typeNamespace     = metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}
	typeNode          = metav1.TypeMeta{APIVersion: "v1", Kind: "Node"}
	typeConfigMap     = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
	typeService       = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
	typePod           = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	typeDeployment    = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"}
	typeReplicaSet    = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "ReplicaSet"}
	typeStatefulSet   = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "StatefulSet"}
	typeDaemonSet     = metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"}
	typeEndpointSlice = metav1.TypeMeta{APIVersion: "discovery.k8s.io/v1", Kind: "EndpointSlice"}
	typeNetworkPolicy = metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"}
)

func ptr[T any](v T) *T { return &v }

// ── Namespaces and Nodes ────────────────────────────────────────────────────────────────────

func (p *plan) namespace(i int) runtime.Object {
	n := p.namespaces[i]
	o := &corev1.Namespace{TypeMeta: typeNamespace, ObjectMeta: p.meta(tagNamespace, i, "", n.name, 0)}
	o.Labels = map[string]string{"kubernetes.io/metadata.name": n.name}
	if !n.system {
		o.Labels["team"] = n.team
		o.Labels["env"] = n.env
		o.CreationTimestamp = p.at(time.Duration(i) * time.Minute)
	}
	if n.name == "kube-flannel" {
		o.Labels["pod-security.kubernetes.io/enforce"] = "privileged"
	}
	o.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
	o.Status.Phase = corev1.NamespaceActive
	return o
}

var (
	nodeCPU     = resource.MustParse("16")
	nodeMemory  = resource.MustParse("64Gi")
	nodeMemAll  = resource.MustParse("63Gi")
	nodeStorage = resource.MustParse("200Gi")
	nodePods    = resource.MustParse(strconv.Itoa(MaxPodsPerNode))
	cpu100m     = resource.MustParse("100m")
	cpu50m      = resource.MustParse("50m")
	mem128Mi    = resource.MustParse("128Mi")
	mem70Mi     = resource.MustParse("70Mi")
	mem170Mi    = resource.MustParse("170Mi")
	storage10Gi = resource.MustParse("10Gi")
)

func (p *plan) node(i int) runtime.Object {
	n := p.nodes[i]
	zone := p.zones[n.zone]
	o := &corev1.Node{TypeMeta: typeNode, ObjectMeta: p.meta(tagNode, i, "", n.name, time.Duration(i)*time.Second)}
	o.Labels = map[string]string{
		"beta.kubernetes.io/arch":          "amd64",
		"beta.kubernetes.io/os":            "linux",
		"kubernetes.io/arch":               "amd64",
		"kubernetes.io/hostname":           n.name,
		"kubernetes.io/os":                 "linux",
		"node.kubernetes.io/instance-type": "m7i.4xlarge",
		"topology.kubernetes.io/region":    region,
		"topology.kubernetes.io/zone":      zone,
	}
	o.Annotations = map[string]string{
		"flannel.alpha.coreos.com/backend-data":        `{"VNI":1,"VtepMAC":"` + n.vtep + `"}`,
		"flannel.alpha.coreos.com/backend-type":        "vxlan",
		"flannel.alpha.coreos.com/kube-subnet-manager": "true",
		"flannel.alpha.coreos.com/public-ip":           n.ip.String(),
		"node.alpha.kubernetes.io/ttl":                 "0",
	}
	cidr := n.cidr.String()
	o.Spec.PodCIDR = cidr
	o.Spec.PodCIDRs = []string{cidr}
	o.Spec.ProviderID = fmt.Sprintf("aws:///%s/i-%016x", zone, mix64(p.seed^uint64(i)))
	o.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: n.ip.String()},
		{Type: corev1.NodeHostName, Address: n.name},
	}
	o.Status.Capacity = corev1.ResourceList{corev1.ResourceCPU: nodeCPU, corev1.ResourceMemory: nodeMemory,
		corev1.ResourceEphemeralStorage: nodeStorage, corev1.ResourcePods: nodePods}
	o.Status.Allocatable = corev1.ResourceList{corev1.ResourceCPU: nodeCPU, corev1.ResourceMemory: nodeMemAll,
		corev1.ResourceEphemeralStorage: nodeStorage, corev1.ResourcePods: nodePods}
	beat, since := p.at(50*24*time.Hour), p.at(time.Duration(i)*time.Second+40*time.Second)
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: beat, LastTransitionTime: since}
	}
	o.Status.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
	}
	o.Status.DaemonEndpoints.KubeletEndpoint.Port = 10250
	o.Status.NodeInfo = corev1.NodeSystemInfo{
		Architecture: "amd64", OperatingSystem: "linux", OSImage: "Amazon Linux 2023.9.20251117",
		KernelVersion: "6.12.48-64.143.amzn2023.x86_64", ContainerRuntimeVersion: "containerd://2.1.3",
		KubeletVersion: "v1.35.0", MachineID: fmt.Sprintf("%016x%016x", mix64(p.seed^uint64(i)^1), mix64(p.seed^uint64(i)^2)),
		SystemUUID: uid(p.seed, tagNode, i+1<<20), BootID: uid(p.seed, tagNode, i+2<<20),
	}
	return o
}

// ── kube-system configuration ───────────────────────────────────────────────────────────────

const corefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
`

func (p *plan) configMap(i int) runtime.Object {
	o := &corev1.ConfigMap{TypeMeta: typeConfigMap}
	switch i {
	case 0:
		o.ObjectMeta = p.meta(tagConfigMap, i, "kube-system", "coredns", 0)
		o.Data = map[string]string{"Corefile": corefile}
	case 1:
		o.ObjectMeta = p.meta(tagConfigMap, i, "kube-system", "kube-proxy", 0)
		o.Labels = map[string]string{"app": "kube-proxy"}
		o.Data = map[string]string{"config.conf": "apiVersion: kubeproxy.config.k8s.io/v1alpha1\n" +
			"kind: KubeProxyConfiguration\n" +
			"bindAddress: 0.0.0.0\n" +
			"clientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n" +
			"clusterCIDR: " + p.clusterCIDR.String() + "\n" +
			"conntrack:\n  maxPerCore: null\n  min: null\n" +
			"mode: nftables\n" +
			"nftables:\n  masqueradeAll: false\n  masqueradeBit: null\n  minSyncPeriod: 1s\n  syncPeriod: 0s\n" +
			"nodePortAddresses: null\n"}
	default:
		o.ObjectMeta = p.meta(tagConfigMap, i, "kube-flannel", "kube-flannel-cfg", 0)
		o.Labels = map[string]string{"app": "flannel", "k8s-app": "flannel", "tier": "node"}
		o.Data = map[string]string{
			"cni-conf.json": `{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}` + "\n",
			"net-conf.json": `{"Network":"` + p.clusterCIDR.String() + `","Backend":{"Type":"vxlan"}}` + "\n",
		}
	}
	return o
}

// ── Services ────────────────────────────────────────────────────────────────────────────────

func (p *plan) selectorOf(w *wlPlan) map[string]string {
	if w.system {
		return map[string]string{"k8s-app": "kube-dns"}
	}
	return map[string]string{"app": w.name}
}

// serviceLabels are a Service's own labels; the EndpointSlice controller copies them to its slices.
func (p *plan) serviceLabels(s *svcPlan) map[string]string {
	switch {
	case s.name == "kubernetes" && s.ns == nsDefault:
		return map[string]string{"component": "apiserver", "provider": "kubernetes"}
	case s.wl >= 0 && p.workloads[s.wl].system:
		return map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}
	case s.wl >= 0:
		return map[string]string{"app": s.name}
	}
	return nil
}

func (p *plan) service(i int) runtime.Object {
	s := &p.services[i]
	ns := p.namespaces[s.ns].name
	o := &corev1.Service{TypeMeta: typeService, ObjectMeta: p.meta(tagService, i, ns, s.name, s.created)}
	o.Spec.Type = s.typ
	o.Spec.SessionAffinity = corev1.ServiceAffinityNone
	if s.typ == corev1.ServiceTypeExternalName {
		o.Spec.ExternalName = s.externalName
		return o
	}
	o.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	o.Spec.IPFamilyPolicy = ptr(corev1.IPFamilyPolicySingleStack)
	o.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyCluster)
	if s.itpLocal {
		o.Spec.InternalTrafficPolicy = ptr(corev1.ServiceInternalTrafficPolicyLocal)
	}
	if s.headless {
		o.Spec.ClusterIP = corev1.ClusterIPNone
	} else {
		o.Spec.ClusterIP = s.clusterIP.String()
	}
	o.Spec.ClusterIPs = []string{o.Spec.ClusterIP}
	for k, pd := range s.profile.ports {
		sp := corev1.ServicePort{Name: pd.name, Protocol: pd.proto, Port: pd.servicePort, TargetPort: intstr.FromInt32(pd.containerPort)}
		if pd.byName {
			sp.TargetPort = intstr.FromString(pd.name)
		}
		if k < len(s.nodePorts) {
			sp.NodePort = s.nodePorts[k]
		}
		o.Spec.Ports = append(o.Spec.Ports, sp)
	}
	o.Labels = p.serviceLabels(s)
	if s.wl >= 0 {
		w := &p.workloads[s.wl]
		o.Spec.Selector = p.selectorOf(w)
		if w.system {
			o.Annotations = map[string]string{"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}
		}
	}
	if s.affinity {
		o.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
		o.Spec.SessionAffinityConfig = &corev1.SessionAffinityConfig{ClientIP: &corev1.ClientIPConfig{TimeoutSeconds: ptr(int32(10800))}}
	}
	if s.preferClose {
		o.Spec.TrafficDistribution = ptr(corev1.ServiceTrafficDistributionPreferClose)
	}
	if s.typ == corev1.ServiceTypeNodePort || s.typ == corev1.ServiceTypeLoadBalancer {
		o.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
		if s.etpLocal {
			o.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
	}
	if s.typ == corev1.ServiceTypeLoadBalancer {
		o.Spec.AllocateLoadBalancerNodePorts = ptr(true)
		o.Spec.HealthCheckNodePort = s.healthCheck
		o.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: s.lbIP.String(), IPMode: ptr(corev1.LoadBalancerIPModeVIP)}}
	}
	return o
}

// ── Workloads ───────────────────────────────────────────────────────────────────────────────

func (p *plan) image(w *wlPlan) string {
	switch {
	case w.system:
		return w.profile.image
	case w.sts:
		return fmt.Sprintf(w.profile.image, w.version[1])
	default:
		return fmt.Sprintf(w.profile.image, p.namespaces[w.ns].team, w.name, w.version[0], w.version[1])
	}
}

func (p *plan) templateLabels(w *wlPlan) map[string]string {
	l := p.selectorOf(w)
	if !w.system {
		l["tier"] = w.tier
		l["app.kubernetes.io/part-of"] = p.namespaces[w.ns].team
	}
	return l
}

// container is the one container of a workload's pods, with the defaults the API server fills in.
func (p *plan) container(w *wlPlan) corev1.Container {
	c := corev1.Container{
		Name:                     w.profile.key,
		Image:                    p.image(w),
		ImagePullPolicy:          corev1.PullIfNotPresent,
		TerminationMessagePath:   corev1.TerminationMessagePathDefault,
		TerminationMessagePolicy: corev1.TerminationMessageReadFile,
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: cpu100m, corev1.ResourceMemory: mem128Mi}},
	}
	if !w.system && !w.sts {
		c.Name = w.name
	}
	for _, pd := range w.profile.ports {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: pd.name, ContainerPort: pd.containerPort, Protocol: pd.proto})
	}
	switch {
	case w.system:
		c.Args = []string{"-conf", "/etc/coredns/Corefile"}
		c.Resources = corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: mem170Mi},
			Requests: corev1.ResourceList{corev1.ResourceCPU: cpu100m, corev1.ResourceMemory: mem70Mi}}
		c.ReadinessProbe = httpProbe("/ready", intstr.FromInt32(8181))
		c.VolumeMounts = []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}}
	case w.profile.probe:
		c.ReadinessProbe = httpProbe("/healthz", intstr.FromString(w.profile.ports[0].name))
	default:
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{
			Port: intstr.FromString(w.profile.ports[0].name)}}, PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
		if w.profile.ports[0].proto != corev1.ProtocolTCP {
			c.ReadinessProbe = nil
		}
	}
	return c
}

func httpProbe(path string, port intstr.IntOrString) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port, Scheme: corev1.URISchemeHTTP}},
		PeriodSeconds: 10, TimeoutSeconds: 1, SuccessThreshold: 1, FailureThreshold: 3}
}

func (p *plan) podSpec(w *wlPlan) corev1.PodSpec {
	s := corev1.PodSpec{
		Containers:                    []corev1.Container{p.container(w)},
		RestartPolicy:                 corev1.RestartPolicyAlways,
		TerminationGracePeriodSeconds: ptr(int64(30)),
		DNSPolicy:                     corev1.DNSClusterFirst,
		ServiceAccountName:            "default",
		SecurityContext:               &corev1.PodSecurityContext{},
		SchedulerName:                 corev1.DefaultSchedulerName,
	}
	if w.zone >= 0 {
		s.NodeSelector = map[string]string{"topology.kubernetes.io/zone": p.zones[w.zone]}
	}
	if w.system {
		s.DNSPolicy = corev1.DNSDefault
		s.ServiceAccountName = "coredns"
		s.PriorityClassName = "system-cluster-critical"
		s.NodeSelector = map[string]string{"kubernetes.io/os": "linux"}
		s.Tolerations = []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}}
		s.Volumes = []corev1.Volume{{Name: "config-volume", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "coredns"},
			Items:                []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}}}}}}
	}
	if w.sts {
		s.Subdomain = w.name
	}
	return s
}

func (p *plan) readyCount(w *wlPlan) int32 {
	n := int32(0)
	for _, pod := range p.pods[w.firstPod : w.firstPod+w.replicas] {
		if pod.state == podReady && pod.node >= 0 {
			n++
		}
	}
	return n
}

func (p *plan) deployment(i int) runtime.Object {
	w := &p.workloads[p.deployments[i]]
	ns := p.namespaces[w.ns].name
	o := &appsv1.Deployment{TypeMeta: typeDeployment, ObjectMeta: p.meta(tagDeployment, i, ns, w.name, w.created)}
	o.Labels = p.selectorOf(w)
	o.Annotations = map[string]string{"deployment.kubernetes.io/revision": "1"}
	o.Generation = 1
	o.Spec = appsv1.DeploymentSpec{
		Replicas: ptr(w.replicas),
		Selector: &metav1.LabelSelector{MatchLabels: p.selectorOf(w)},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.templateLabels(w)}, Spec: p.podSpec(w)},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType, RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr(intstr.FromString("25%")), MaxSurge: ptr(intstr.FromString("25%"))}},
		RevisionHistoryLimit:    ptr(int32(10)),
		ProgressDeadlineSeconds: ptr(int32(600)),
	}
	ready := p.readyCount(w)
	o.Status = appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: w.replicas, UpdatedReplicas: w.replicas,
		ReadyReplicas: ready, AvailableReplicas: ready, UnavailableReplicas: w.replicas - ready}
	at := p.at(w.created + time.Minute)
	avail := corev1.ConditionTrue
	availReason, availMsg := "MinimumReplicasAvailable", "Deployment has minimum availability."
	if w.replicas > 0 && float64(ready) < 0.75*float64(w.replicas) { // maxUnavailable 25%
		avail, availReason, availMsg = corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
	}
	o.Status.Conditions = []appsv1.DeploymentCondition{
		{Type: appsv1.DeploymentAvailable, Status: avail, Reason: availReason, Message: availMsg, LastUpdateTime: at, LastTransitionTime: at},
		{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionTrue, Reason: "NewReplicaSetAvailable",
			Message: fmt.Sprintf("ReplicaSet %q has successfully progressed.", w.name+"-"+w.hash), LastUpdateTime: at, LastTransitionTime: at},
	}
	return o
}

func (p *plan) replicaSet(i int) runtime.Object {
	w := &p.workloads[p.deployments[i]]
	ns := p.namespaces[w.ns].name
	name := w.name + "-" + w.hash
	o := &appsv1.ReplicaSet{TypeMeta: typeReplicaSet, ObjectMeta: p.meta(tagReplicaSet, i, ns, name, w.created)}
	o.Labels = p.templateLabels(w)
	o.Labels["pod-template-hash"] = w.hash
	o.Annotations = map[string]string{
		"deployment.kubernetes.io/desired-replicas": strconv.Itoa(int(w.replicas)),
		"deployment.kubernetes.io/max-replicas":     strconv.Itoa(int(w.replicas + (w.replicas+3)/4)),
		"deployment.kubernetes.io/revision":         "1",
	}
	o.OwnerReferences = ownerRef("apps/v1", "Deployment", w.name, uid(p.seed, tagDeployment, i))
	o.Generation = 1
	sel := p.selectorOf(w)
	sel["pod-template-hash"] = w.hash
	tl := p.templateLabels(w)
	tl["pod-template-hash"] = w.hash
	o.Spec = appsv1.ReplicaSetSpec{Replicas: ptr(w.replicas), Selector: &metav1.LabelSelector{MatchLabels: sel},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tl}, Spec: p.podSpec(w)}}
	ready := p.readyCount(w)
	o.Status = appsv1.ReplicaSetStatus{Replicas: w.replicas, FullyLabeledReplicas: w.replicas, ReadyReplicas: ready,
		AvailableReplicas: ready, ObservedGeneration: 1}
	return o
}

func (p *plan) statefulSet(i int) runtime.Object {
	w := &p.workloads[p.statefulSets[i]]
	ns := p.namespaces[w.ns].name
	o := &appsv1.StatefulSet{TypeMeta: typeStatefulSet, ObjectMeta: p.meta(tagStatefulSet, i, ns, w.name, w.created)}
	o.Labels = p.selectorOf(w)
	o.Generation = 1
	o.Spec = appsv1.StatefulSetSpec{
		Replicas:            ptr(w.replicas),
		Selector:            &metav1.LabelSelector{MatchLabels: p.selectorOf(w)},
		Template:            corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: p.templateLabels(w)}, Spec: p.podSpec(w)},
		ServiceName:         w.name,
		PodManagementPolicy: appsv1.OrderedReadyPodManagement,
		UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateStatefulSetStrategy{Partition: ptr(int32(0))}},
		RevisionHistoryLimit: ptr(int32(10)),
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
			ObjectMeta: metav1.ObjectMeta{Name: "data"},
			Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: storage10Gi}}},
		}},
	}
	o.Spec.Template.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	ready := p.readyCount(w)
	rev := w.name + "-" + w.hash
	o.Status = appsv1.StatefulSetStatus{ObservedGeneration: 1, Replicas: w.replicas, ReadyReplicas: ready, CurrentReplicas: w.replicas,
		UpdatedReplicas: w.replicas, AvailableReplicas: ready, CurrentRevision: rev, UpdateRevision: rev, CollisionCount: ptr(int32(0))}
	return o
}

func (p *plan) daemonSet(i int) runtime.Object {
	o := &appsv1.DaemonSet{TypeMeta: typeDaemonSet}
	n := int32(len(p.nodes))
	o.Generation = 1
	o.Status = appsv1.DaemonSetStatus{CurrentNumberScheduled: n, DesiredNumberScheduled: n, NumberReady: n, NumberAvailable: n,
		UpdatedNumberScheduled: n, ObservedGeneration: 1}
	privileged := &corev1.SecurityContext{Privileged: ptr(true)}
	tolerate := []corev1.Toleration{{Operator: corev1.TolerationOpExists}}
	if i == 0 {
		o.ObjectMeta = p.meta(tagDaemonSet, i, "kube-system", "kube-proxy", 0)
		l := map[string]string{"k8s-app": "kube-proxy"}
		o.Labels = l
		o.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-proxy"}}
		o.Spec.Template.Labels = map[string]string{"k8s-app": "kube-proxy"}
		o.Spec.Template.Spec = corev1.PodSpec{
			HostNetwork: true, PriorityClassName: "system-node-critical", ServiceAccountName: "kube-proxy",
			DNSPolicy: corev1.DNSClusterFirst, Tolerations: tolerate, NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			Containers: []corev1.Container{{
				Name: "kube-proxy", Image: "registry.k8s.io/kube-proxy:v1.35.0", ImagePullPolicy: corev1.PullIfNotPresent,
				Command:         []string{"/usr/local/bin/kube-proxy", "--config=/var/lib/kube-proxy/config.conf", "--hostname-override=$(NODE_NAME)"},
				Env:             []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "spec.nodeName"}}}},
				SecurityContext: privileged,
				VolumeMounts:    []corev1.VolumeMount{{Name: "kube-proxy", MountPath: "/var/lib/kube-proxy"}},
			}},
			Volumes: []corev1.Volume{{Name: "kube-proxy", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "kube-proxy"}}}}},
		}
		return o
	}
	o.ObjectMeta = p.meta(tagDaemonSet, i, "kube-flannel", "kube-flannel-ds", 0)
	o.Labels = map[string]string{"app": "flannel", "k8s-app": "flannel", "tier": "node"}
	o.Spec.Selector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "flannel"}}
	o.Spec.Template.Labels = map[string]string{"app": "flannel", "tier": "node"}
	o.Spec.Template.Spec = corev1.PodSpec{
		HostNetwork: true, PriorityClassName: "system-node-critical", ServiceAccountName: "flannel",
		Tolerations: []corev1.Toleration{{Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
		Containers: []corev1.Container{{
			Name: "kube-flannel", Image: "ghcr.io/flannel-io/flannel:v0.27.4", ImagePullPolicy: corev1.PullIfNotPresent,
			Command: []string{"/opt/bin/flanneld"}, Args: []string{"--ip-masq", "--kube-subnet-mgr"},
			SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN", "NET_RAW"}}},
			VolumeMounts:    []corev1.VolumeMount{{Name: "flannel-cfg", MountPath: "/etc/kube-flannel/"}},
		}},
		Volumes: []corev1.Volume{{Name: "flannel-cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "kube-flannel-cfg"}}}}},
	}
	return o
}

// ── Pods ────────────────────────────────────────────────────────────────────────────────────

var defaultTolerations = []corev1.Toleration{
	{Key: "node.kubernetes.io/not-ready", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
	{Key: "node.kubernetes.io/unreachable", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))},
}

// daemonPod is the kube-proxy (i < nodes) or flannel (i ≥ nodes) pod of one node: host network,
// so its IP is the node's.
func (p *plan) daemonPod(i int) runtime.Object {
	nodes := len(p.nodes)
	n := p.nodes[i%nodes]
	ds := p.daemonSet(i / nodes).(*appsv1.DaemonSet)
	sfx := newSuffixer(p.seed ^ uint64(0xd5+i/nodes)).suffix(i % nodes)
	o := &corev1.Pod{TypeMeta: typePod, ObjectMeta: p.meta(tagSystemPod, i, ds.Namespace, ds.Name+"-"+sfx, time.Duration(i%nodes)*time.Second+30*time.Second)}
	o.GenerateName = ds.Name + "-"
	o.Labels = map[string]string{"controller-revision-hash": "6cb9f8d8b5", "pod-template-generation": "1"}
	for k, v := range ds.Spec.Template.Labels {
		o.Labels[k] = v
	}
	o.OwnerReferences = ownerRef("apps/v1", "DaemonSet", ds.Name, string(ds.UID))
	o.Spec = ds.Spec.Template.Spec
	o.Spec.NodeName = n.name
	o.Spec.RestartPolicy = corev1.RestartPolicyAlways
	o.Spec.SchedulerName = corev1.DefaultSchedulerName
	o.Spec.TerminationGracePeriodSeconds = ptr(int64(30))
	p.runningStatus(o, n, n.ip, podReady, 0, o.Spec.Containers[0])
	o.Status.QOSClass = corev1.PodQOSBestEffort
	return o
}

func (p *plan) pod(i int) runtime.Object {
	pp := p.pods[i]
	w := &p.workloads[pp.wl]
	ns := p.namespaces[w.ns].name
	ord := i - int(w.firstPod)
	var name string
	o := &corev1.Pod{TypeMeta: typePod}
	labels := p.templateLabels(w)
	if w.sts {
		name = fmt.Sprintf("%s-%d", w.name, ord)
		labels["controller-revision-hash"] = w.name + "-" + w.hash
		labels["statefulset.kubernetes.io/pod-name"] = name
		labels["apps.kubernetes.io/pod-index"] = strconv.Itoa(ord)
		o.ObjectMeta = p.meta(tagPod, i, ns, name, w.created+time.Duration(ord)*20*time.Second)
		o.OwnerReferences = ownerRef("apps/v1", "StatefulSet", w.name, uid(p.seed, tagStatefulSet, int(w.kindIndex)))
	} else {
		rs := w.name + "-" + w.hash
		name = rs + "-" + w.suffixes.suffix(ord)
		labels["pod-template-hash"] = w.hash
		o.ObjectMeta = p.meta(tagPod, i, ns, name, w.created+time.Second)
		o.GenerateName = rs + "-"
		o.OwnerReferences = ownerRef("apps/v1", "ReplicaSet", rs, uid(p.seed, tagReplicaSet, int(w.kindIndex)))
	}
	o.Labels = labels
	o.Spec = p.podSpec(w)
	if w.sts {
		o.Spec.Hostname = name
		o.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
		o.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
			ClaimName: "data-" + name}}}}
	}
	if !w.system {
		o.Spec.Tolerations = defaultTolerations
	}
	o.Spec.EnableServiceLinks = ptr(true)
	o.Spec.PreemptionPolicy = ptr(corev1.PreemptLowerPriority)
	o.Spec.Priority = ptr(int32(0))
	if w.system {
		o.Spec.Priority = ptr(int32(2000000000))
	}
	o.Status.QOSClass = corev1.PodQOSBurstable
	if pp.node < 0 {
		at := p.at(w.created + time.Second)
		o.Status.Phase = corev1.PodPending
		o.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: fmt.Sprintf("0/%d nodes are available: %d Too many pods. preemption: 0/%d nodes are available: %d No preemption victims found for incoming pod.",
				len(p.nodes), len(p.nodes), len(p.nodes), len(p.nodes)), LastTransitionTime: at}}
		return o
	}
	n := p.nodes[pp.node]
	o.Spec.NodeName = n.name
	p.runningStatus(o, n, pp.ip, pp.state, pp.restarts, o.Spec.Containers[0])
	return o
}

// runningStatus fills the status of a scheduled pod whose single container is running
// (ready) or crash-looping (not ready), as the kubelet reports it.
func (p *plan) runningStatus(o *corev1.Pod, n nodePlan, ip netip.Addr, state podState, restarts int32, c corev1.Container) {
	started := o.CreationTimestamp
	ready := state == podReady
	readyStatus := corev1.ConditionTrue
	if !ready {
		readyStatus = corev1.ConditionFalse
	}
	o.Status.Phase = corev1.PodRunning
	o.Status.HostIP = n.ip.String()
	o.Status.HostIPs = []corev1.HostIP{{IP: o.Status.HostIP}}
	o.Status.PodIP = ip.String()
	o.Status.PodIPs = []corev1.PodIP{{IP: o.Status.PodIP}}
	o.Status.StartTime = &started
	cond := func(t corev1.PodConditionType, s corev1.ConditionStatus) corev1.PodCondition {
		pc := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: started}
		if s == corev1.ConditionFalse {
			pc.Reason = "ContainersNotReady"
			pc.Message = "containers with unready status: [" + c.Name + "]"
		}
		return pc
	}
	o.Status.Conditions = []corev1.PodCondition{
		cond(corev1.PodReadyToStartContainers, corev1.ConditionTrue),
		cond(corev1.PodInitialized, corev1.ConditionTrue),
		cond(corev1.PodReady, readyStatus),
		cond(corev1.ContainersReady, readyStatus),
		cond(corev1.PodScheduled, corev1.ConditionTrue),
	}
	cs := corev1.ContainerStatus{
		Name: c.Name, Image: c.Image, ImageID: c.Image + "@sha256:" + hex64(p.seed^hashString(c.Image)),
		ContainerID: "containerd://" + hex64(p.seed^hashString(string(o.UID))),
		Ready:       ready, Started: ptr(ready), RestartCount: restarts,
	}
	if ready {
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: started}
	} else {
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off 5m0s restarting failed container=%s pod=%s_%s(%s)", c.Name, o.Name, o.Namespace, o.UID)}
		cs.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", StartedAt: started, FinishedAt: started}
	}
	o.Status.ContainerStatuses = []corev1.ContainerStatus{cs}
}

// hashString is FNV-1a, for deterministic IDs derived from names.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// ── EndpointSlices ──────────────────────────────────────────────────────────────────────────

func (p *plan) endpointSlice(i int) runtime.Object {
	sl := &p.slices[i]
	s := &p.services[sl.svc]
	ns := p.namespaces[s.ns].name
	o := &discoveryv1.EndpointSlice{TypeMeta: typeEndpointSlice, AddressType: discoveryv1.AddressTypeIPv4}
	if s.wl < 0 { // the API server's own slice for "kubernetes"
		o.ObjectMeta = p.meta(tagEndpointSlice, i, ns, s.name, 0)
		o.Labels = map[string]string{discoveryv1.LabelServiceName: s.name}
		for _, a := range sl.addrs {
			o.Endpoints = append(o.Endpoints, discoveryv1.Endpoint{Addresses: []string{a.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr(true)}})
		}
		o.Ports = []discoveryv1.EndpointPort{{Name: ptr("https"), Port: ptr(int32(6443)), Protocol: ptr(corev1.ProtocolTCP)}}
		return o
	}
	name := s.name + "-" + newSuffixer(p.seed^uint64(sl.svc)<<20).suffix(sl.chunk)
	o.ObjectMeta = p.meta(tagEndpointSlice, i, ns, name, s.created+time.Minute)
	o.GenerateName = s.name + "-"
	o.Labels = p.serviceLabels(s)
	o.Labels[discoveryv1.LabelServiceName] = s.name
	o.Labels[discoveryv1.LabelManagedBy] = "endpointslice-controller.k8s.io"
	w := &p.workloads[s.wl]
	if s.headless {
		o.Labels[corev1.IsHeadlessService] = ""
	}
	o.OwnerReferences = ownerRef("v1", "Service", s.name, uid(p.seed, tagService, int(sl.svc)))
	o.Annotations = map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": p.at(s.created + time.Minute).UTC().Format(time.RFC3339)}
	o.Endpoints = make([]discoveryv1.Endpoint, 0, len(sl.pods))
	for _, pi := range sl.pods {
		pp := p.pods[pi]
		n := p.nodes[pp.node]
		ready := pp.state == podReady
		pod := p.podName(pi)
		ep := discoveryv1.Endpoint{
			Addresses:  []string{pp.ip.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ready), Serving: ptr(ready), Terminating: ptr(false)},
			NodeName:   ptr(n.name),
			Zone:       ptr(p.zones[n.zone]),
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod, UID: typesUID(uid(p.seed, tagPod, int(pi)))},
		}
		if w.sts {
			ep.Hostname = ptr(pod)
		}
		if s.preferClose {
			ep.Hints = &discoveryv1.EndpointHints{ForZones: []discoveryv1.ForZone{{Name: p.zones[n.zone]}}}
		}
		o.Endpoints = append(o.Endpoints, ep)
	}
	if len(sl.pods) == 0 {
		// The controller's placeholder for a Service that selects no pod: no endpoints, no ports.
		o.Ports = []discoveryv1.EndpointPort{}
		return o
	}
	for _, pd := range s.profile.ports {
		o.Ports = append(o.Ports, discoveryv1.EndpointPort{Name: ptr(pd.name), Port: ptr(pd.containerPort), Protocol: ptr(pd.proto)})
	}
	return o
}

func (p *plan) podName(i int32) string {
	w := &p.workloads[p.pods[i].wl]
	ord := int(i - w.firstPod)
	if w.sts {
		return fmt.Sprintf("%s-%d", w.name, ord)
	}
	return w.name + "-" + w.hash + "-" + w.suffixes.suffix(ord)
}

// ── NetworkPolicies ─────────────────────────────────────────────────────────────────────────

var (
	protoTCP = corev1.ProtocolTCP
	protoUDP = corev1.ProtocolUDP
)

// dnsEgressRule allows DNS to CoreDNS, after kube-proxy's DNAT (the destination is the pod, not the VIP).
func dnsEgressRule() networkingv1.NetworkPolicyEgressRule {
	return networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
		Ports: []networkingv1.NetworkPolicyPort{
			{Protocol: ptr(protoUDP), Port: ptr(intstr.FromInt32(53))},
			{Protocol: ptr(protoTCP), Port: ptr(intstr.FromInt32(53))},
		},
	}
}

// portOf is the NetworkPolicy port of a workload's first container port (by name or number).
func portOf(w *wlPlan, byName bool) []networkingv1.NetworkPolicyPort {
	pd := w.profile.ports[0]
	port := intstr.FromInt32(pd.containerPort)
	if byName {
		port = intstr.FromString(pd.name)
	}
	return []networkingv1.NetworkPolicyPort{{Protocol: ptr(pd.proto), Port: &port}}
}

func (p *plan) networkPolicy(i int) runtime.Object {
	pol := &p.policies[i]
	ns := p.namespaces[pol.ns].name
	o := &networkingv1.NetworkPolicy{TypeMeta: typeNetworkPolicy, ObjectMeta: p.meta(tagNetworkPolicy, i, ns, pol.name, 2*time.Hour+pol.created)}
	o.Generation = 1
	ingress := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egress := []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	switch pol.kind {
	case polDefaultDenyIngress:
		o.Spec.PolicyTypes = ingress
		return o
	case polDefaultDenyAll:
		o.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
		return o
	case polAllowDNSNamespace:
		o.Spec.PolicyTypes = egress
		o.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{dnsEgressRule()}
		return o
	}
	t := &p.workloads[pol.target]
	o.Spec.PodSelector = metav1.LabelSelector{MatchLabels: p.selectorOf(t)}
	switch pol.kind {
	case polTierToTier:
		peer := &p.workloads[pol.peer]
		o.Spec.PolicyTypes = ingress
		o.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: p.selectorOf(peer)}}},
			Ports: portOf(t, pol.byName),
		}}
	case polCrossNamespace:
		peer := &p.workloads[pol.peer]
		o.Spec.PolicyTypes = ingress
		o.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": p.namespaces[peer.ns].name}},
				PodSelector:       &metav1.LabelSelector{MatchLabels: p.selectorOf(peer)},
			}},
			Ports: portOf(t, pol.byName),
		}}
	case polEgressDNS:
		peer := &p.workloads[pol.peer]
		to := networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{MatchLabels: p.selectorOf(peer)}}
		if peer.ns != t.ns {
			to.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": p.namespaces[peer.ns].name}}
		}
		o.Spec.PolicyTypes = egress
		o.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{dnsEgressRule(), {To: []networkingv1.NetworkPolicyPeer{to}, Ports: portOf(peer, false)}}
	case polIPBlock:
		o.Spec.PolicyTypes = ingress
		o.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{
				CIDR: nodeNetwork.String(), Except: []string{"10.0.255.0/24"}}}}, // the VPC, except the control-plane subnet
			Ports: portOf(t, pol.byName),
		}}
	case polEgressInternet:
		o.Spec.PolicyTypes = egress
		o.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{dnsEgressRule(), {
			To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0",
				Except: []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr(protoTCP), Port: ptr(intstr.FromInt32(443))}},
		}}
	case polEndPort:
		o.Spec.PolicyTypes = egress
		o.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{dnsEgressRule(), {
			To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: nodeNetwork.String()}}},
			Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr(protoTCP), Port: ptr(intstr.FromInt32(nodePortBase)), EndPort: ptr(int32(nodePortBase + nodePortCount - 1))}},
		}}
	case polEnvSelector:
		o.Spec.PodSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{t.name}}}}
		o.Spec.PolicyTypes = ingress
		o.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "env", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod"}}}},
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}},
			}},
			Ports: portOf(t, pol.byName),
		}}
	}
	return o
}
