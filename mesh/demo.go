package mesh

import (
	"embed"
	"io/fs"
)

// demoFS holds the meshed namespaces that extend the kpath demo cluster (Linkerd: linkerd-shop; Istio sidecars:
// istio-shop; their control planes and policy resources). They load on top of the demo: --demo -f mesh/demo/.
//
//go:embed demo/*.yaml
var demoFS embed.FS

// DemoFile is one embedded manifest file.
type DemoFile struct {
	Name string
	Data []byte
}

// DemoFiles returns the mesh demo manifests sorted by name (fresh copies).
func DemoFiles() []DemoFile {
	entries, err := fs.ReadDir(demoFS, "demo")
	if err != nil {
		panic("mesh: reading embedded demo: " + err.Error())
	}
	var out []DemoFile
	for _, e := range entries {
		data, err := demoFS.ReadFile("demo/" + e.Name())
		if err != nil {
			panic("mesh: reading embedded demo " + e.Name() + ": " + err.Error())
		}
		out = append(out, DemoFile{Name: e.Name(), Data: data})
	}
	return out
}
