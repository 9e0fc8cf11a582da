package gen

import corev1 "k8s.io/api/core/v1"

// The vocabulary of the synthetic cluster: team names for namespaces, words for workloads and
// the port layouts of common server software. Data, not code: extend the tables to change the mix.

// teams name the generated namespaces (team "search" owns namespace "search", then "search-2", …).
var teams = []string{
	"payments", "checkout", "search", "identity", "catalog", "shipping", "analytics", "billing",
	"orders", "inventory", "reviews", "recommend", "notify", "media", "ads", "fraud", "ledger",
	"pricing", "profile", "gateway", "support", "loyalty", "maps", "tax",
}

// roles and subjects make workload names like "orders-api" or "invoice-worker".
var (
	subjects = []string{
		"order", "invoice", "cart", "user", "session", "quote", "rate", "stock", "price", "image",
		"email", "report", "event", "audit", "token", "feed", "graph", "ledger", "label", "route",
		"slot", "review", "coupon", "wallet", "search", "index", "thumb", "video", "geo", "tax",
	}
	roles = []string{
		"api", "web", "worker", "svc", "gateway", "sync", "indexer", "scheduler", "exporter",
		"consumer", "publisher", "cache", "renderer", "resolver", "backend",
	}
)

// envs label namespaces.
var envs = []string{"prod", "prod", "prod", "staging", "dev"}

// tiers label pods; policies select on them.
var tiers = []string{"web", "api", "api", "worker", "data"}

// portDef is one port of a workload: the container port (always named, as most charts do)
// and, when the workload has a Service, the Service port in front of it.
type portDef struct {
	name          string
	containerPort int32
	servicePort   int32
	proto         corev1.Protocol
	byName        bool // the Service's targetPort refers to the container port by name
}

// portProfile is the port layout and image of one kind of server.
type portProfile struct {
	key    string
	image  string
	ports  []portDef
	weight int
	probe  bool // has an HTTP readiness probe on its first port
}

// deploymentProfiles are chosen for Deployments (stateless servers). Weights are relative.
var deploymentProfiles = []portProfile{
	{key: "http", image: "registry.example.com/%s/%s:v1.%d.%d", weight: 50, probe: true,
		ports: []portDef{{name: "http", containerPort: 8080, servicePort: 80, proto: corev1.ProtocolTCP}}},
	{key: "http-named", image: "registry.example.com/%s/%s:v2.%d.%d", weight: 14, probe: true,
		ports: []portDef{{name: "http", containerPort: 8080, servicePort: 80, proto: corev1.ProtocolTCP, byName: true}}},
	{key: "http-metrics", image: "registry.example.com/%s/%s:v1.%d.%d", weight: 12, probe: true,
		ports: []portDef{
			{name: "http", containerPort: 8080, servicePort: 80, proto: corev1.ProtocolTCP},
			{name: "metrics", containerPort: 9090, servicePort: 9090, proto: corev1.ProtocolTCP, byName: true},
		}},
	{key: "grpc", image: "registry.example.com/%s/%s:v0.%d.%d", weight: 10,
		ports: []portDef{{name: "grpc", containerPort: 50051, servicePort: 9000, proto: corev1.ProtocolTCP, byName: true}}},
	{key: "https", image: "registry.example.com/%s/%s:v3.%d.%d", weight: 8,
		ports: []portDef{{name: "https", containerPort: 8443, servicePort: 443, proto: corev1.ProtocolTCP}}},
	{key: "statsd", image: "registry.example.com/%s/%s:v1.%d.%d", weight: 3,
		ports: []portDef{
			{name: "statsd", containerPort: 8125, servicePort: 8125, proto: corev1.ProtocolUDP},
			{name: "admin", containerPort: 8126, servicePort: 8126, proto: corev1.ProtocolTCP},
		}},
	{key: "sctp", image: "registry.example.com/%s/%s:v1.%d.%d", weight: 1,
		ports: []portDef{{name: "diameter", containerPort: 3868, servicePort: 3868, proto: corev1.ProtocolSCTP}}},
}

// statefulProfiles are chosen for StatefulSets behind headless Services.
var statefulProfiles = []portProfile{
	{key: "postgres", image: "postgres:17.%d", weight: 35,
		ports: []portDef{{name: "postgres", containerPort: 5432, servicePort: 5432, proto: corev1.ProtocolTCP, byName: true}}},
	{key: "redis", image: "redis:8.%d", weight: 30,
		ports: []portDef{{name: "redis", containerPort: 6379, servicePort: 6379, proto: corev1.ProtocolTCP}}},
	{key: "kafka", image: "apache/kafka:4.%d.0", weight: 15,
		ports: []portDef{
			{name: "broker", containerPort: 9092, servicePort: 9092, proto: corev1.ProtocolTCP},
			{name: "controller", containerPort: 9093, servicePort: 9093, proto: corev1.ProtocolTCP},
		}},
	{key: "cassandra", image: "cassandra:5.0.%d", weight: 10,
		ports: []portDef{
			{name: "cql", containerPort: 9042, servicePort: 9042, proto: corev1.ProtocolTCP},
			{name: "intra-node", containerPort: 7000, servicePort: 7000, proto: corev1.ProtocolTCP},
		}},
	{key: "zookeeper", image: "zookeeper:3.9.%d", weight: 10,
		ports: []portDef{
			{name: "client", containerPort: 2181, servicePort: 2181, proto: corev1.ProtocolTCP},
			{name: "follower", containerPort: 2888, servicePort: 2888, proto: corev1.ProtocolTCP},
			{name: "election", containerPort: 3888, servicePort: 3888, proto: corev1.ProtocolTCP},
		}},
}

// dnsProfile is CoreDNS's port layout (kube-system/kube-dns).
var dnsProfile = portProfile{key: "coredns", image: "registry.k8s.io/coredns/coredns:v1.12.1",
	ports: []portDef{
		{name: "dns", containerPort: 53, servicePort: 53, proto: corev1.ProtocolUDP},
		{name: "dns-tcp", containerPort: 53, servicePort: 53, proto: corev1.ProtocolTCP},
		{name: "metrics", containerPort: 9153, servicePort: 9153, proto: corev1.ProtocolTCP},
	}}

func weightsOf(ps []portProfile) []int {
	w := make([]int, len(ps))
	for i, p := range ps {
		w[i] = p.weight
	}
	return w
}
