package cluster_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/kpath/kpath/cluster"
	"github.com/kpath/kpath/gen"
)

// genFile writes a generated snapshot once per process (benchmarks only; regular tests never call it).
func genFile(b *testing.B, preset, format string) string {
	b.Helper()
	o, ok := gen.PresetByName(preset)
	if !ok {
		b.Fatalf("no preset %s", preset)
	}
	dir := filepath.Join(os.TempDir(), "kpath-bench")
	os.MkdirAll(dir, 0o755)
	path := filepath.Join(dir, fmt.Sprintf("%s-seed%d.%s", preset, o.Seed, format))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	f, err := os.Create(path + ".tmp")
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	if format == "json" {
		err = gen.WriteJSON(w, o)
	} else {
		err = gen.WriteYAML(w, o)
	}
	if err == nil {
		err = w.Flush()
	}
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		b.Fatal(err)
	}
	return path
}

func benchLoad(b *testing.B, preset, format string) {
	path := genFile(b, preset, format)
	st, _ := os.Stat(path)
	b.SetBytes(st.Size())
	b.ResetTimer()
	var pods int
	var heap uint64
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		s, err := cluster.Load([]cluster.Source{cluster.FileSource(path)}, cluster.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		runtime.GC()
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		pods = len(s.Pods)
		heap = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	b.ReportMetric(float64(pods), "pods")
	b.ReportMetric(float64(heap)/float64(pods)/1024, "KiB-heap/pod")
}

// BenchmarkLoadLargeJSON: 5,000 nodes / 150,000 pods / 10,000 services from one kubectl-style JSON List.
// Target (issue 2): ≤ 10 s and ≤ 8 KiB of retained heap per pod.
//
//	go test ./cluster -run '^$' -bench 'LoadLarge' -benchtime 1x -timeout 60m
func BenchmarkLoadLargeJSON(b *testing.B) { benchLoad(b, "large", "json") }

// BenchmarkLoadLargeYAML is the same snapshot as multi-document YAML (reported; YAML decoding is slower).
func BenchmarkLoadLargeYAML(b *testing.B) { benchLoad(b, "large", "yaml") }

// BenchmarkLoadMediumJSON is a quick version for comparisons.
func BenchmarkLoadMediumJSON(b *testing.B) { benchLoad(b, "medium", "json") }
