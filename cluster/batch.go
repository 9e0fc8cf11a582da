package cluster

import (
	"runtime"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// batcher decodes List items on every core while keeping input order: items are queued, decoded in parallel in
// batches, and their results replayed into the sink in the order they were read. Anything that decodes directly
// must flush first.
type batcher struct {
	s        sink
	jobs     []*job
	inflight *inflight // the previous batch, decoding while the reader scans the next
}

type inflight struct {
	jobs []*job
	done chan struct{}
}

type job struct {
	data      []byte
	yaml      bool
	loc       Location
	onPending func(pendingItem) // items without kind, decoded later with the list's kind
	out       collector
	pending   *pendingItem
}

const batchSize = 256

func (b *batcher) add(data []byte, isYAML bool, loc Location, onPending func(pendingItem)) {
	b.jobs = append(b.jobs, &job{data: data, yaml: isYAML, loc: loc, onPending: onPending})
	if len(b.jobs) >= batchSize {
		b.launch()
	}
}

// launch starts decoding the queued batch in the background, first delivering the batch before it (so results
// reach the sink in input order and at most two batches are held).
func (b *batcher) launch() {
	b.wait()
	if len(b.jobs) == 0 {
		return
	}
	fl := &inflight{jobs: b.jobs, done: make(chan struct{})}
	b.jobs = nil
	b.inflight = fl
	go func() {
		defer close(fl.done)
		decodeAll(fl.jobs)
	}()
}

// wait delivers the in-flight batch, if any.
func (b *batcher) wait() {
	fl := b.inflight
	if fl == nil {
		return
	}
	<-fl.done
	b.inflight = nil
	for _, j := range fl.jobs {
		if j.pending != nil {
			j.onPending(*j.pending)
			continue
		}
		j.out.replay(b.s)
	}
}

// flush decodes and delivers everything queued.
func (b *batcher) flush() {
	b.launch()
	b.wait()
}

func decodeAll(jobs []*job) {
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				jobs[i].run()
			}
		}()
	}
	wg.Wait()
}

func (j *job) run() {
	data := j.data
	if j.yaml {
		var err error
		data, err = yaml.YAMLToJSON(data)
		if err != nil {
			j.out.diag(yamlDiag(j.loc, err))
			return
		}
	}
	if tm := sniffTypeMeta(data); tm.Kind == "" && j.onPending != nil {
		j.pending = &pendingItem{raw: data, loc: j.loc}
		return
	}
	decodeObject(data, j.loc, nil, &j.out)
	for _, c := range j.out.calls {
		if c.obj != nil {
			intern(c.obj)
		}
	}
}

// collector records sink calls to replay them later, in order.
type collector struct{ calls []call }

type call struct {
	obj kruntime.Object
	u   *unstructured.Unstructured
	d   *Diagnostic
	loc Location
}

func (c *collector) object(o kruntime.Object, loc Location) {
	c.calls = append(c.calls, call{obj: o, loc: loc})
}
func (c *collector) custom(u *unstructured.Unstructured, loc Location) {
	c.calls = append(c.calls, call{u: u, loc: loc})
}
func (c *collector) diag(d Diagnostic) { c.calls = append(c.calls, call{d: &d}) }

func (c *collector) replay(s sink) {
	for _, cl := range c.calls {
		switch {
		case cl.obj != nil:
			s.object(cl.obj, cl.loc)
		case cl.u != nil:
			s.custom(cl.u, cl.loc)
		case cl.d != nil:
			s.diag(*cl.d)
		}
	}
}

// sniffTypeMeta finds the top-level "apiVersion" and "kind" of a JSON object without decoding it: a byte scan
// that stops as soon as both are found (kubectl and the API server print them first).
func sniffTypeMeta(data []byte) schema.GroupVersionKind {
	var gvk schema.GroupVersionKind
	var apiVersion string
	depth := 0
	haveKind, haveAV := false, false
	i := 0
	n := len(data)
	readString := func() (string, bool) { // data[i] == '"'
		i++
		start := i
		simple := true
		for i < n {
			switch data[i] {
			case '\\':
				simple = false
				i += 2
				continue
			case '"':
				s := data[start:i]
				i++
				if !simple {
					return "", false
				}
				return string(s), true
			}
			i++
		}
		return "", false
	}
	for i < n && !(haveKind && haveAV) {
		c := data[i]
		switch c {
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		case '"':
			s, ok := readString()
			if depth != 1 || !ok {
				continue
			}
			// Is it a key? Skip whitespace to a colon.
			k := i
			for k < n && (data[k] == ' ' || data[k] == '\t' || data[k] == '\n' || data[k] == '\r') {
				k++
			}
			if k >= n || data[k] != ':' {
				continue
			}
			if s != "kind" && s != "apiVersion" {
				continue
			}
			i = k + 1
			for i < n && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
				i++
			}
			if i < n && data[i] == '"' {
				v, ok := readString()
				if !ok {
					continue
				}
				if s == "kind" {
					gvk.Kind, haveKind = v, true
				} else {
					apiVersion, haveAV = v, true
				}
			}
		default:
			i++
		}
	}
	if gv, err := schema.ParseGroupVersion(apiVersion); err == nil {
		gvk.Group, gvk.Version = gv.Group, gv.Version
	}
	return gvk
}
