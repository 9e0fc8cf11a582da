package cluster

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1a2 "sigs.k8s.io/gateway-api/apis/v1alpha2"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	anpv1a1 "sigs.k8s.io/network-policy-api/apis/v1alpha1"
	cnpv1a2 "sigs.k8s.io/network-policy-api/apis/v1alpha2"
)

// Scheme holds every API type the snapshot decodes into typed objects.
var Scheme = runtime.NewScheme()

var codecs serializer.CodecFactory

func init() {
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, discoveryv1.AddToScheme,
		networkingv1.AddToScheme, gwv1.Install, gwv1b1.Install, gwv1a2.Install,
		anpv1a1.AddToScheme, cnpv1a2.AddToScheme,
	} {
		utilruntime.Must(add(Scheme))
	}
	codecs = serializer.NewCodecFactory(Scheme)
}

// Kinds in scope: decoded into typed objects and modelled. Other kinds the scheme knows are listed as ignored; kinds
// it does not know are kept as unstructured custom resources.
var inScope = map[schema.GroupKind]bool{
	{Group: "", Kind: "Namespace"}: true, {Group: "", Kind: "Node"}: true, {Group: "", Kind: "Pod"}: true,
	{Group: "", Kind: "Service"}: true, {Group: "", Kind: "Endpoints"}: true, {Group: "", Kind: "ConfigMap"}: true,
	{Group: "", Kind: "ServiceAccount"}: true, {Group: "", Kind: "ReplicationController"}: true,
	{Group: "discovery.k8s.io", Kind: "EndpointSlice"}:  true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}: true,
	{Group: "apps", Kind: "Deployment"}:                 true, {Group: "apps", Kind: "ReplicaSet"}: true,
	{Group: "apps", Kind: "StatefulSet"}: true, {Group: "apps", Kind: "DaemonSet"}: true,
	{Group: "batch", Kind: "Job"}: true, {Group: "batch", Kind: "CronJob"}: true,
	{Group: gwv1.GroupName, Kind: "GatewayClass"}: true, {Group: gwv1.GroupName, Kind: "Gateway"}: true,
	{Group: gwv1.GroupName, Kind: "HTTPRoute"}: true, {Group: gwv1.GroupName, Kind: "GRPCRoute"}: true,
	{Group: gwv1.GroupName, Kind: "ReferenceGrant"}: true, {Group: gwv1.GroupName, Kind: "TCPRoute"}: true,
	{Group: gwv1.GroupName, Kind: "TLSRoute"}: true, {Group: gwv1.GroupName, Kind: "UDPRoute"}: true,
	{Group: anpv1a1.GroupName, Kind: "AdminNetworkPolicy"}:         true,
	{Group: anpv1a1.GroupName, Kind: "BaselineAdminNetworkPolicy"}: true,
	{Group: cnpv1a2.GroupName, Kind: "ClusterNetworkPolicy"}:       true,
}

// clusterScoped lists the in-scope kinds that have no namespace.
var clusterScoped = map[string]bool{
	"Namespace": true, "Node": true, "GatewayClass": true, "AdminNetworkPolicy": true,
	"BaselineAdminNetworkPolicy": true, "ClusterNetworkPolicy": true,
}
