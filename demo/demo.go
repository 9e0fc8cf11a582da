// Package demo embeds the kpath demo cluster: a kind-like, four-node cluster running a small web shop, written as kubectl manifests.
package demo

import (
	"embed"
	"io/fs"
)

// manifests holds every demo file. Names sort in the order a reader should meet them:
// 00 the cluster, 10 kube-system (DNS, kube-proxy, CNI), 20 the shop, 30 its policies, 40 tools.
//
//go:embed *.yaml
var manifests embed.FS

// File is one embedded manifest file: its name (e.g. "20-shop.yaml") and its YAML bytes,
// a multi-document stream as `kubectl apply -f` accepts it.
type File struct {
	Name string
	Data []byte
}

// Files returns the demo manifests sorted by name. Each call returns fresh copies of the bytes,
// so callers may modify them.
func Files() []File {
	entries, err := fs.ReadDir(manifests, ".")
	if err != nil {
		// The embedded FS is compiled in; ReadDir on its root cannot fail.
		panic("demo: reading embedded manifests: " + err.Error())
	}
	out := make([]File, 0, len(entries))
	for _, e := range entries { // fs.ReadDir returns entries sorted by name
		data, err := manifests.ReadFile(e.Name())
		if err != nil {
			panic("demo: reading embedded " + e.Name() + ": " + err.Error())
		}
		out = append(out, File{Name: e.Name(), Data: data})
	}
	return out
}

// FS returns the demo manifests as a read-only file system (flat, "*.yaml" at the root), for loaders
// that already walk directories.
func FS() fs.FS { return manifests }
