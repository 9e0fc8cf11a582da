package gen

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sync"

	kruntime "k8s.io/apimachinery/pkg/runtime"
)

// jsonHeader and jsonFooter wrap the items the way `kubectl get -A -o json` does (compact, with
// one item per line so that the output diffs and greps well).
const (
	jsonHeader = `{"apiVersion":"v1","kind":"List","items":[` + "\n"
	jsonFooter = `],"metadata":{"resourceVersion":""}}` + "\n"
)

// WriteJSON writes the cluster as one v1 List document, like `kubectl get -A -o json`. Items are
// built and encoded in parallel batches and written in order as they are ready, so memory stays
// bounded (the 150,000-pod cluster is never held as one byte slice) and the bytes are the same
// for the same Options whatever the number of CPUs.
func WriteJSON(w io.Writer, opts Options) error {
	p, err := newPlan(opts)
	if err != nil {
		return err
	}
	return p.write(w, jsonHeader, jsonFooter, func(buf *bytes.Buffer, o kruntime.Object, last bool) error {
		b, err := json.Marshal(o)
		if err != nil {
			return err
		}
		buf.Write(b)
		if !last {
			buf.WriteByte(',')
		}
		buf.WriteByte('\n')
		return nil
	})
}

// WriteYAML writes the cluster as a multi-document YAML stream ("---" between objects), as
// `kubectl apply -f` reads it. Objects are encoded to JSON and transcoded (see jsonToYAML), so
// YAML costs a little more than JSON.
func WriteYAML(w io.Writer, opts Options) error {
	p, err := newPlan(opts)
	if err != nil {
		return err
	}
	return p.write(w, "", "", func(buf *bytes.Buffer, o kruntime.Object, _ bool) error {
		j, err := json.Marshal(o)
		if err != nil {
			return err
		}
		y := append(buf.AvailableBuffer(), "---\n"...)
		y, err = jsonToYAML(y, j)
		if err != nil {
			return err
		}
		buf.Write(y)
		return nil
	})
}

// batchSize objects are built and encoded by one worker at a time.
const batchSize = 256

type batch struct {
	sec        section
	start, end int
	last       bool // holds the last object of the whole stream
	buf        bytes.Buffer
	err        error
	done       chan struct{}
}

type encodeFunc func(buf *bytes.Buffer, o kruntime.Object, last bool) error

// write runs the batches through GOMAXPROCS workers and writes their bytes in stream order.
func (p *plan) write(w io.Writer, header, footer string, enc encodeFunc) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	if _, err := bw.WriteString(header); err != nil {
		return fmt.Errorf("gen: writing output: %w", err)
	}
	workers := runtime.GOMAXPROCS(0)
	jobs := make(chan *batch)
	order := make(chan *batch, 4*workers) // bounds the batches in flight
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				for i := b.start; i < b.end && b.err == nil; i++ {
					if err := enc(&b.buf, b.sec.build(i), b.last && i == b.end-1); err != nil {
						b.err = fmt.Errorf("gen: encoding %s #%d: %w", b.sec.kind, i, err)
					}
				}
				close(b.done)
			}
		}()
	}
	// Producer: cut the sections into batches, hand them to the workers and queue them for the writer.
	go func() {
		defer close(order)
		defer close(jobs)
		secs := p.sections()
		lastSec := -1
		for i, s := range secs {
			if s.n > 0 {
				lastSec = i
			}
		}
		for si, s := range secs {
			for start := 0; start < s.n; start += batchSize {
				b := &batch{sec: s, start: start, end: min(start+batchSize, s.n), done: make(chan struct{})}
				b.last = si == lastSec && b.end == s.n
				select {
				case order <- b:
				case <-stop:
					return
				}
				select {
				case jobs <- b:
				case <-stop:
					close(b.done)
					return
				}
			}
		}
	}()
	var err error
	for b := range order {
		<-b.done
		if err != nil {
			continue // drain
		}
		if b.err != nil {
			err = b.err
		} else if _, werr := bw.Write(b.buf.Bytes()); werr != nil {
			err = fmt.Errorf("gen: writing output: %w", werr)
		}
		if err != nil {
			close(stop)
		}
	}
	wg.Wait()
	if err != nil {
		return err
	}
	if _, err := bw.WriteString(footer); err != nil {
		return fmt.Errorf("gen: writing output: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gen: writing output: %w", err)
	}
	return nil
}
