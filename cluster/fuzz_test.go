package cluster

import (
	"testing"
)

// FuzzLoad feeds arbitrary bytes to the loader. It must never panic, and whatever it returns must be consistent:
// either an error, or a snapshot whose indexes answer for every object it lists.
// Seeds live in testdata/fuzz/FuzzLoad; run with: go test ./cluster -run '^$' -fuzz FuzzLoad -fuzztime 5m
func FuzzLoad(f *testing.F) {
	f.Add([]byte(pod("a")))
	f.Add([]byte(workloads))
	f.Add([]byte(`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"x"}}]}`))
	f.Add([]byte("apiVersion: v1\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: a}\nkind: List\n"))
	f.Add([]byte("{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[{\"metadata\":{\"name\":\"a\"}}]}\n---\nkind: Pod\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Load([]Source{BytesSource("fuzz", data)}, Options{})
		if err != nil {
			return
		}
		for _, p := range s.Pods {
			if s.Pod(p.Namespace, p.Name) != p {
				t.Fatalf("pod %s/%s not indexed", p.Namespace, p.Name)
			}
		}
		for _, svc := range s.Services {
			if s.Service(svc.Namespace, svc.Name) != svc {
				t.Fatalf("service %s/%s not indexed", svc.Namespace, svc.Name)
			}
		}
	})
}
