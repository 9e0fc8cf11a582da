package cluster

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Source is one input stream: a file, stdin, or an embedded demo file.
type Source struct {
	Name string // shown in locations: the path, "-" for stdin, "demo/NAME" for the demo
	open func() (io.ReadCloser, error)
}

// Open returns the source's content, transparently gunzipped.
func (s Source) Open() (io.ReadCloser, error) {
	rc, err := s.open()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 256<<10)
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("%s: gzip: %w", s.Name, err)
		}
		return readCloser{zr, rc}, nil
	}
	return readCloser{br, rc}, nil
}

type readCloser struct {
	io.Reader
	c io.Closer
}

func (r readCloser) Close() error { return r.c.Close() }

// ReaderSource wraps an already open stream (stdin). It can be read only once.
func ReaderSource(name string, r io.Reader) Source {
	used := false
	return Source{Name: name, open: func() (io.ReadCloser, error) {
		if used {
			return nil, fmt.Errorf("%s: can be read only once", name)
		}
		used = true
		return io.NopCloser(r), nil
	}}
}

// BytesSource is a source held in memory (the embedded demo, tests, fuzzing).
func BytesSource(name string, data []byte) Source {
	return Source{Name: name, open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}}
}

// FileSource reads one file.
func FileSource(path string) Source {
	return Source{Name: path, open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// manifestExt is what kubectl reads from a directory given to -f.
func manifestExt(name string) bool {
	n := strings.TrimSuffix(strings.ToLower(name), ".gz")
	return strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml") || strings.HasSuffix(n, ".json")
}

// FileSources expands -f arguments the way kubectl does: "-" is stdin, a file is read whatever its extension, a
// directory contributes its .yaml/.yml/.json files (descending into subdirectories only when recursive). Files are
// returned in a deterministic order. A path that does not exist is an error naming it.
func FileSources(paths []string, recursive bool, stdin io.Reader) ([]Source, error) {
	var out []Source
	for _, p := range paths {
		if p == "-" {
			out = append(out, ReaderSource("-", stdin))
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		if !st.IsDir() {
			out = append(out, FileSource(p))
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if path != p && !recursive {
					return fs.SkipDir
				}
				return nil
			}
			if manifestExt(d.Name()) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("-f %s: %w", p, err)
		}
		sort.Strings(files)
		for _, f := range files {
			out = append(out, FileSource(f))
		}
	}
	return out, nil
}
