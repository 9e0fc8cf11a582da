package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"

	"github.com/kpath/kpath/cluster"
)

// Options tune how a cluster is read. The zero value is sensible.
type Options struct {
	// PageSize is the limit of each list request (500, as kubectl, when 0).
	PageSize int64
	// Concurrency is how many kinds are listed at once (4 when 0).
	Concurrency int
	// RequestTimeout bounds each request (60s when 0).
	RequestTimeout time.Duration
	// Progress, when set, is called about once a second while listing, and once at the end.
	Progress func(Progress)
	// Kinds overrides the kinds to list (Kinds when nil).
	Kinds []Kind
}

func (o *Options) defaults() {
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 60 * time.Second
	}
	if o.Kinds == nil {
		o.Kinds = Kinds
	}
}

// Status says what happened to one kind.
type Status string

const (
	StatusListed    Status = "listed"
	StatusForbidden Status = "forbidden"  // 401/403: the credentials may not list it
	StatusNotServed Status = "not served" // 404 / not in discovery: the API (usually a CRD) is not installed
)

// KindReport is the outcome for one kind.
type KindReport struct {
	Kind     Kind          `json:"kind"`
	Version  string        `json:"version,omitempty"`
	Status   Status        `json:"status"`
	Reason   string        `json:"reason,omitempty"`
	Items    int           `json:"items"`
	Pages    int           `json:"pages"`
	Bytes    int64         `json:"bytes"`
	Elapsed  time.Duration `json:"elapsedNs"`
	Restarts int           `json:"restarts,omitempty"` // continue tokens that expired mid-list
	done     bool
}

// Report summarises a listing.
type Report struct {
	Name    string        `json:"name"`   // "live:CONTEXT"
	Server  string        `json:"server"` // API server URL
	Kinds   []KindReport  `json:"kinds"`
	Elapsed time.Duration `json:"elapsedNs"`
	Err     error         `json:"-"`
	mu      sync.Mutex    // guards Kinds while listing
	streams []*pageStream // one per kind, in Kinds order
	cancel  func()        // stops listing
	done    chan struct{} // closed when every kind is finished
	opts    Options       // with defaults
	start   time.Time     // listing start
	client  *rest.RESTClient
	disc    *discovery.DiscoveryClient
	ctx     context.Context
}

// Progress is a moment of a listing, for a progress line.
type Progress struct {
	Elapsed time.Duration
	Items   int // listed so far, all kinds
	Kinds   []KindProgress
	Done    bool
}

// KindProgress is one kind's count so far.
type KindProgress struct {
	Kind  string
	Items int
	Done  bool
}

// Unlisted returns the kinds the credentials may not list, with the reason: their absence from the snapshot means
// "unknown", not "none". Kinds the cluster does not serve are not here: without the CRD no such object exists.
func (r *Report) Unlisted() map[string]string {
	out := map[string]string{}
	for _, k := range r.Kinds {
		if k.Status == StatusForbidden {
			out[k.Kind.Kind] = k.Reason
		}
	}
	return out
}

// Items is the number of objects listed.
func (r *Report) Items() int {
	n := 0
	for _, k := range r.Kinds {
		n += k.Items
	}
	return n
}

// Start begins listing every kind with bounded concurrency and returns at once. Pages stream to Sources (for the
// loader) or Pages (for writing a snapshot file) as they arrive; Wait returns when listing has finished.
//
// Read-only by construction: the only requests are discovery GETs and paginated list GETs; Secrets are never read.
func Start(ctx context.Context, cfg *rest.Config, name string, opts Options) (*Report, error) {
	opts.defaults()
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = 50, 100
	c.Timeout = opts.RequestTimeout
	c.AcceptContentTypes = "application/json"
	c.UserAgent = "kpath (read-only list)"
	c.WarningHandler = rest.NoWarnings{} // "v1 Endpoints is deprecated" is not the user's problem here
	c.WarningHandlerWithContext = nil
	disc, err := discovery.NewDiscoveryClientForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &Report{Name: name, Server: cfg.Host, opts: opts, start: time.Now(), cancel: cancel, done: make(chan struct{}),
		disc: disc, client: disc.RESTClient().(*rest.RESTClient), ctx: ctx}
	for _, k := range opts.Kinds {
		r.Kinds = append(r.Kinds, KindReport{Kind: k, Version: k.Version})
		r.streams = append(r.streams, newPageStream())
	}
	go r.run()
	return r, nil
}

// Cancel stops listing; streams end with an error.
func (r *Report) Cancel() { r.cancel() }

// Wait blocks until listing has finished and returns the first plumbing error (not 403/404, which are reported per
// kind).
func (r *Report) Wait() error {
	<-r.done
	return r.Err
}

// Sources returns one streaming loader source per kind, named "live:CONTEXT/RESOURCE".
func (r *Report) Sources() []cluster.Source {
	out := make([]cluster.Source, len(r.streams))
	for i, s := range r.streams {
		out[i] = cluster.ReaderSource(r.Name+"/"+r.Kinds[i].Kind.GroupResource(), s)
	}
	return out
}

func (r *Report) run() {
	defer close(r.done)
	defer r.cancel()
	if err := r.resolveVersions(); err != nil {
		r.Err = err
		for _, s := range r.streams {
			s.finish(err)
		}
		return
	}
	stopProgress := r.progressLoop()
	sem := make(chan struct{}, r.opts.Concurrency)
	var wg sync.WaitGroup
	var errOnce sync.Once
	for i := range r.Kinds {
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			if err := r.listKind(i); err != nil {
				errOnce.Do(func() { r.Err = err; r.cancel() })
			}
		}(i)
	}
	wg.Wait()
	r.Elapsed = time.Since(r.start)
	stopProgress()
}

// resolveVersions picks the served version of each CRD kind through discovery; kinds whose API is absent are
// marked not served.
func (r *Report) resolveVersions() error {
	need := false
	for _, k := range r.Kinds {
		if k.Version == "" {
			need = true
		}
	}
	if !need {
		return nil
	}
	groups, err := r.disc.ServerGroupsWithContext(r.ctx)
	if err != nil {
		return fmt.Errorf("%s: discovery (%s): %w", r.Name, r.Server, err)
	}
	served := map[string][]string{} // group → versions, preferred first
	for _, g := range groups.Groups {
		vs := []string{g.PreferredVersion.Version}
		for _, v := range g.Versions {
			if v.Version != g.PreferredVersion.Version {
				vs = append(vs, v.Version)
			}
		}
		served[g.Name] = vs
	}
	resources := map[string]map[string]bool{} // group/version → resources
	for i := range r.Kinds {
		k := &r.Kinds[i]
		if k.Version != "" {
			continue
		}
		vs, ok := served[k.Kind.Group]
		if !ok {
			k.Status, k.Reason, k.done = StatusNotServed, "API group "+k.Kind.Group+" is not served (CRDs not installed)", true
			r.streams[i].finish(nil)
			continue
		}
		for _, v := range vs {
			gv := k.Kind.Group + "/" + v
			if resources[gv] == nil {
				resources[gv] = map[string]bool{}
				if rl, err := r.disc.ServerResourcesForGroupVersionWithContext(r.ctx, gv); err == nil {
					for _, res := range rl.APIResources {
						resources[gv][res.Name] = true
					}
				}
			}
			if resources[gv][k.Kind.Resource] {
				k.Version = v
				break
			}
		}
		if k.Version == "" {
			k.Status, k.Reason, k.done = StatusNotServed, k.Kind.GroupResource()+" is not served (CRD not installed)", true
			r.streams[i].finish(nil)
		}
	}
	return nil
}

func (r *Report) listKind(i int) error {
	r.mu.Lock()
	k := r.Kinds[i]
	r.mu.Unlock()
	s := r.streams[i]
	if k.done {
		return nil
	}
	start := time.Now()
	path := "/apis/" + k.Kind.Group + "/" + k.Version + "/" + k.Kind.Resource
	if k.Kind.Group == "" {
		path = "/api/" + k.Version + "/" + k.Kind.Resource
	}
	cont := ""
	for {
		raw, err := r.page(path, cont)
		if err != nil {
			var restart string
			status := Status("")
			switch {
			case apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err):
				status = StatusForbidden
			case apierrors.IsNotFound(err) && cont == "":
				status = StatusNotServed
			case apierrors.IsResourceExpired(err) || apierrors.IsGone(err):
				// The continue token outlived etcd's compaction. The server offers a token to go on with an
				// inconsistent list; take it (the loader reports doubled objects) rather than re-list what the
				// loader has already consumed.
				restart = inconsistentContinue(raw)
			}
			if status != "" {
				r.mu.Lock()
				r.Kinds[i].Status, r.Kinds[i].Reason, r.Kinds[i].done = status, apiReason(err, raw), true
				r.Kinds[i].Elapsed = time.Since(start)
				r.mu.Unlock()
				s.finish(nil)
				return nil
			}
			if restart != "" {
				r.mu.Lock()
				r.Kinds[i].Restarts++
				r.mu.Unlock()
				cont = restart
				continue
			}
			err = fmt.Errorf("%s: listing %s: %w", r.Name, k.Kind.GroupResource(), err)
			s.finish(err)
			return err
		}
		pi, err := scanPage(raw)
		if err != nil {
			err = fmt.Errorf("%s: listing %s: %w", r.Name, k.Kind.GroupResource(), err)
			s.finish(err)
			return err
		}
		s.push(raw)
		r.mu.Lock()
		r.Kinds[i].Items += pi.items
		r.Kinds[i].Pages++
		r.Kinds[i].Bytes += int64(len(raw))
		r.mu.Unlock()
		cont = pi.meta.Continue
		if cont == "" {
			break
		}
	}
	r.mu.Lock()
	r.Kinds[i].Status, r.Kinds[i].done, r.Kinds[i].Elapsed = StatusListed, true, time.Since(start)
	r.mu.Unlock()
	s.finish(nil)
	return nil
}

// page fetches one page, retrying transient failures twice.
func (r *Report) page(path, cont string) ([]byte, error) {
	var raw []byte
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-time.After(time.Duration(attempt) * time.Second):
			case <-r.ctx.Done():
				return nil, r.ctx.Err()
			}
		}
		req := r.client.Get().AbsPath(path).Param("limit", strconv.FormatInt(r.opts.PageSize, 10)).
			Timeout(r.opts.RequestTimeout)
		if cont != "" {
			req = req.Param("continue", cont)
		}
		raw, err = req.DoRaw(r.ctx)
		if err == nil || !transient(err) || r.ctx.Err() != nil {
			return raw, err
		}
	}
	return raw, err
}

// transient errors are retried: throttling, server errors, timeouts, cut connections. Never 4xx answers.
func transient(err error) bool {
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		code := st.Status().Code
		return code == 429 || code >= 500 || apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err)
	}
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, context.DeadlineExceeded)
}

// apiReason is the server's own message ("pods is forbidden: User \"x\" cannot list resource …"), read from the
// response body when the client could only make a generic error of it.
func apiReason(err error, body []byte) string {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Message != "" {
		return fmt.Sprintf("%s (HTTP %d)", st.Message, st.Code)
	}
	var se apierrors.APIStatus
	if errors.As(err, &se) {
		return fmt.Sprintf("%s (HTTP %d)", se.Status().Message, se.Status().Code)
	}
	return err.Error()
}

func inconsistentContinue(body []byte) string {
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil {
		return st.ListMeta.Continue
	}
	return ""
}

// Diagnostics turns kinds that could not be listed into warnings for the snapshot.
func (r *Report) Diagnostics() []cluster.Diagnostic {
	var out []cluster.Diagnostic
	notServed := map[string][]string{}
	var groups []string
	for _, k := range r.Kinds {
		switch k.Status {
		case StatusForbidden:
			msg := fmt.Sprintf("cannot list %s: %s; the snapshot has none of them", k.Kind.GroupResource(), k.Reason)
			if k.Kind.Policy {
				msg += ", so policy verdicts are unknown, not allowed"
			}
			out = append(out, cluster.Diagnostic{Severity: cluster.SeverityWarning, Location: cluster.Location{File: r.Name},
				Object: k.Kind.Kind, Message: msg + " (`kpath rbac` prints the role kpath needs)"})
		case StatusNotServed:
			if _, ok := notServed[k.Kind.Group]; !ok {
				groups = append(groups, k.Kind.Group)
			}
			notServed[k.Kind.Group] = append(notServed[k.Kind.Group], k.Kind.Kind)
		}
		if k.Restarts > 0 {
			out = append(out, cluster.Diagnostic{Severity: cluster.SeverityWarning, Location: cluster.Location{File: r.Name},
				Object: k.Kind.Kind, Message: fmt.Sprintf("listing %s took longer than the server keeps list snapshots; "+
					"it went on with an inconsistent list (objects changed meanwhile may be missing or doubled)", k.Kind.GroupResource())})
		}
	}
	for _, g := range groups {
		out = append(out, cluster.Diagnostic{Severity: cluster.SeverityWarning, Location: cluster.Location{File: r.Name},
			Message: fmt.Sprintf("the cluster does not serve %s (CRDs not installed): no %v objects", g, notServed[g])})
	}
	return out
}

func (r *Report) progressLoop() func() {
	if r.opts.Progress == nil {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				r.opts.Progress(r.progress(true))
				return
			case <-t.C:
				r.opts.Progress(r.progress(false))
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

func (r *Report) progress(done bool) Progress {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := Progress{Elapsed: time.Since(r.start), Done: done}
	for _, k := range r.Kinds {
		p.Items += k.Items
		if k.Items > 0 || !k.done {
			p.Kinds = append(p.Kinds, KindProgress{Kind: k.Kind.Kind, Items: k.Items, Done: k.done})
		}
	}
	return p
}

// pageStream hands pages from a lister to one reader in order, without bounding how far the lister runs ahead
// (pages are already in memory; blocking the lister could starve the kind the loader is waiting for).
type pageStream struct {
	mu    sync.Mutex
	cond  *sync.Cond
	pages [][]byte
	cur   []byte
	done  bool
	err   error
}

func newPageStream() *pageStream {
	s := &pageStream{}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *pageStream) push(p []byte) {
	s.mu.Lock()
	s.pages = append(s.pages, p)
	s.mu.Unlock()
	s.cond.Signal()
}

func (s *pageStream) finish(err error) {
	s.mu.Lock()
	if !s.done {
		s.done, s.err = true, err
	}
	s.mu.Unlock()
	s.cond.Broadcast()
}

// next returns the next whole page, or io.EOF / the listing error.
func (s *pageStream) next() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.pages) == 0 && !s.done {
		s.cond.Wait()
	}
	if len(s.pages) > 0 {
		p := s.pages[0]
		s.pages[0] = nil
		s.pages = s.pages[1:]
		return p, nil
	}
	if s.err != nil {
		return nil, s.err
	}
	return nil, io.EOF
}

// Read concatenates the pages, one JSON document each, for the loader.
func (s *pageStream) Read(p []byte) (int, error) {
	for len(s.cur) == 0 {
		page, err := s.next()
		if err != nil {
			return 0, err
		}
		s.cur = append(page, '\n')
	}
	n := copy(p, s.cur)
	s.cur = s.cur[n:]
	return n, nil
}
