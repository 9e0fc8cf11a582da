package trace_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/gen"
	"github.com/kpath/kpath/kubeproxy"
	"github.com/kpath/kpath/packet"
	"github.com/kpath/kpath/trace"
)

// Speed targets (issue 3), on the generated "large" snapshot (5,000 nodes / 150,000 pods / 10,000 services):
// one warm trace p50 ≤ 1 ms and p99 ≤ 10 ms; ≥ 10,000 traces/s on one core in batch. Run with
//
//	go test ./trace -run '^$' -bench Large -benchtime 2s -cpu 1 -timeout 30m
//
// (time-based: the cold benchmarks take ~0.5 s per iteration). KPATH_TRACE_CPUPROFILE=FILE profiles the warm loop.
//
// The snapshot is generated once into $TMPDIR/kpath-bench (the file cluster's load benchmarks use) and loaded once
// per process (~30 s on the shared machine). See trace/BENCH_NOTES.md for recorded numbers.

var large struct {
	once sync.Once
	snap *cluster.Snapshot
	err  error
}

// largeFile writes the generated snapshot once (same name scheme as cluster/bench_test.go, so the file is shared).
func largeFile(b *testing.B) string {
	b.Helper()
	o, _ := gen.PresetByName("large")
	dir := filepath.Join(os.TempDir(), "kpath-bench")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("large-seed%d.json", o.Seed))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	err = gen.WriteJSON(w, o)
	if err == nil {
		err = w.Flush()
	}
	f.Close()
	if err == nil {
		err = os.Rename(path+".tmp", path)
	}
	if err != nil {
		b.Fatal(err)
	}
	return path
}

func largeSnapshot(b *testing.B) *cluster.Snapshot {
	b.Helper()
	large.once.Do(func() {
		path := largeFile(b)
		large.snap, large.err = cluster.Load([]cluster.Source{cluster.FileSource(path)}, cluster.Options{})
	})
	if large.err != nil {
		b.Fatal(large.err)
	}
	return large.snap
}

// benchQuestions is a deterministic mix of what users ask: mostly pod → Service by the name an app would write
// (DNS, kube-proxy, routing), plus svc/NS/NAME:PORT, pod → pod IP, node → Service and external → NodePort. Sources
// spread over the whole cluster, so the per-node kube-proxy views of many nodes are exercised.
func benchQuestions(s *cluster.Snapshot, n int) []trace.BatchQuestion {
	var pods []*corev1.Pod
	for _, p := range s.Pods {
		if p.Status.PodIP != "" && !p.Spec.HostNetwork && p.Namespace != "kube-system" {
			pods = append(pods, p)
		}
	}
	var svcs, nodePorts []*corev1.Service
	for _, v := range s.Services {
		if len(v.Spec.Ports) == 0 || v.Namespace == "default" {
			continue
		}
		svcs = append(svcs, v)
		if v.Spec.Ports[0].NodePort != 0 {
			nodePorts = append(nodePorts, v)
		}
	}
	qs := make([]trace.BatchQuestion, 0, n)
	for i := 0; i < n; i++ {
		p := pods[(i*7919)%len(pods)]
		v := svcs[(i*104729)%len(svcs)]
		from := "pod/" + p.Namespace + "/" + p.Name
		to := fmt.Sprintf("%s.%s:%d", v.Name, v.Namespace, v.Spec.Ports[0].Port)
		proto := v.Spec.Ports[0].Protocol
		switch {
		case i%13 == 12 && len(nodePorts) > 0:
			np := nodePorts[(i*31)%len(nodePorts)]
			nd := s.Nodes[(i*17)%len(s.Nodes)]
			from, to = "external:203.0.113.7", fmt.Sprintf("node/%s:%d", nd.Name, np.Spec.Ports[0].NodePort)
			proto = np.Spec.Ports[0].Protocol
		case i%11 == 10:
			from = "node/" + s.Nodes[(i*23)%len(s.Nodes)].Name
		case i%7 == 6:
			dp := pods[(i*4099)%len(pods)]
			port := 80
			if cs := dp.Spec.Containers; len(cs) > 0 && len(cs[0].Ports) > 0 {
				port = int(cs[0].Ports[0].ContainerPort)
			}
			to, proto = fmt.Sprintf("%s:%d", dp.Status.PodIP, port), corev1.ProtocolTCP
		case i%5 == 4:
			to = fmt.Sprintf("svc/%s/%s:%d", v.Namespace, v.Name, v.Spec.Ports[0].Port)
		}
		qs = append(qs, trace.BatchQuestion{From: from, To: to, Proto: strings.ToLower(string(proto))})
	}
	return qs
}

const benchQuestionCount = 2000

// BenchmarkLargeTraceWarm times single warm traces (engine built, the questions' nodes already seen once) and reports
// the p50 / p99 of the per-trace times.
func BenchmarkLargeTraceWarm(b *testing.B) {
	s := largeSnapshot(b)
	e, err := trace.New(s)
	if err != nil {
		b.Fatal(err)
	}
	qs := benchQuestions(s, benchQuestionCount)
	verdicts := map[trace.Verdict]int{}
	for _, q := range qs { // warm-up: every question once
		j, err := e.Trace(q.From, q.To, optsFor(q))
		if err != nil {
			b.Fatalf("%s -> %s: %v", q.From, q.To, err)
		}
		verdicts[j.Verdict]++
	}
	times := make([]time.Duration, b.N)
	stop := profileIf(b, "KPATH_TRACE_CPUPROFILE")
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		q := qs[i%len(qs)]
		t0 := time.Now()
		if _, err := e.Trace(q.From, q.To, optsFor(q)); err != nil {
			b.Fatal(err)
		}
		times[i] = time.Since(t0)
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	stop()
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/trace")
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(times[len(times)*99/100].Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(times[len(times)-1].Nanoseconds()), "max-ns")
	b.Logf("question mix verdicts: %v", verdicts)
}

// profileIf writes a CPU profile of the timed loop only (not the 30 s load) to the file named by env var, if set.
func profileIf(b *testing.B, env string) (stop func()) {
	path := os.Getenv(env)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// BenchmarkLargeBatch runs the questions through Engine.Batch (JSONL in, compact JSONL out) and reports traces/s.
// Run it with -cpu 1 for the one-core figure. The first iteration warms the engine like any batch would.
func BenchmarkLargeBatch(b *testing.B) {
	s := largeSnapshot(b)
	e, err := trace.New(s)
	if err != nil {
		b.Fatal(err)
	}
	var in bytes.Buffer
	for _, q := range benchQuestions(s, benchQuestionCount) {
		line, _ := json.Marshal(q)
		in.Write(line)
		in.WriteByte('\n')
	}
	if st, err := e.Batch(bytes.NewReader(in.Bytes()), io.Discard, trace.BatchOptions{}); err != nil || st.Errors > 0 {
		b.Fatalf("warm-up batch: %v, %d error records", err, st.Errors)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < b.N; i++ {
		if _, err := e.Batch(bytes.NewReader(in.Bytes()), io.Discard, trace.BatchOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N * benchQuestionCount)
	b.ReportMetric(n/time.Since(start).Seconds(), "traces/s")
	// On the shared machine wall time includes waiting for a core; CPU time is what one core spent.
	b.ReportMetric(n/(cpuTime()-cpu0).Seconds(), "traces/cpu-s")
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLargeFirstTrace is the cold start after loading: engine construction (CoreDNS model) plus the first trace,
// which parses the Services and EndpointSlices for kube-proxy once.
func BenchmarkLargeFirstTrace(b *testing.B) {
	s := largeSnapshot(b)
	q := benchQuestions(s, 1)[0]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, err := trace.New(s)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.Trace(q.From, q.To, optsFor(q)); err != nil {
			b.Fatal(err)
		}
	}
}

func optsFor(q trace.BatchQuestion) trace.Options {
	p, _ := packet.ParseProtocol(q.Proto)
	return trace.Options{Protocol: p}
}

// BenchmarkLargePerNodeNewIndex is what the engine used to do for every node a trace touched: build a whole
// kube-proxy index (kept for comparison with the shared index).
func BenchmarkLargePerNodeNewIndex(b *testing.B) {
	s := largeSnapshot(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n := s.Nodes[i%len(s.Nodes)]
		if _, err := kubeproxy.NewIndex(kubeproxy.ConfigFor(s, n), s.Services, s.EndpointSlices); err != nil {
			b.Fatal(err)
		}
	}
}
