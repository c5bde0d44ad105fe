package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/engine"
	"github.com/diffsim/diffsim/session"
)

// sizer is a Model that knows the memory it holds; others are measured by the growth of the
// process's resident set while they load.
type sizer interface{ Bytes() int64 }

// ErrMemory means a model cannot be loaded without exceeding the server's memory bound,
// because the models filling it are in use.
var ErrMemory = errors.New("memory bound reached")

// options are the session options a spec loads with: the server's base, and the spec.
func options(base session.Options, spec api.Spec) session.Options {
	o := base
	o.Spec = spec
	return o
}

// parseKeepAlive reads a keep_alive value: a Go duration, or plain seconds as ollama accepts.
func parseKeepAlive(s string, def time.Duration) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return def, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("keep_alive %q: want a duration such as 5m, 0 to unload at once, or -1 to keep the model loaded", s)
	}
	return d, nil
}

// modelKey is what makes two warm models different: the normalized spec, and what the files
// it names are now (identity.go), so a model file changed on disk is another model.
type modelKey struct {
	spec  api.Spec
	files string
}

// weights is the key without what does not change the weights a session loads (the seed), so
// a footprint measured with one seed predicts another's.
func (k modelKey) weights() modelKey {
	k.spec.Seed = 0
	return k
}

// loaded is one warm model.
type loaded struct {
	key      modelKey
	spec     api.Spec // normalized
	m        api.Scorer
	info     api.ModelInfo
	bytes    int64
	refs     int
	loadedAt time.Time
	lastUsed time.Time
	keep     time.Duration // after the last request; < 0 forever
	timer    *time.Timer
	expires  time.Time
	batch    *batcher
	stale    bool // its files changed since it loaded: unloaded when its last request ends
}

type loadCall struct {
	done chan struct{}
	l    *loaded
	err  error
}

// models owns the warm models: loading (one at a time, so memory growth is measurable and
// peaks do not stack), sharing, keep-alive unloading, and the memory bound over what the
// process holds: the models as loaded and run, their feature caches, and the images and work
// of the requests admitted (memory.go).
type models struct {
	open      func(context.Context, session.Options) (api.Scorer, error)
	base      session.Options
	keepAlive time.Duration
	maxBytes  int64
	maxBatch  int
	maxActive int // requests computing at once
	maxQueue  int // requests waiting for room; more are refused (ErrBusy)
	rss       func() int64
	// predict guesses a model's memory before it loads; nil means what the same weights took
	// last time, or their size on disk.
	predict func(api.Spec) int64

	// loadMu serialises loads and each model's first forward: the growth of the resident set
	// across them is the model's, not another's.
	loadMu  sync.Mutex
	mu      sync.Mutex
	byKey   map[modelKey]*loaded
	loading map[modelKey]*loadCall
	sizes   map[modelKey]int64 // measured footprints by weights (modelKey.weights), for the next prediction
	closed  bool

	active int           // requests admitted
	line   []*int        // requests waiting to be, in arrival order
	work   int64         // bytes the admitted requests (and the image cache) hold
	wake   chan struct{} // closed, and replaced, whenever room may have appeared
}

// acquire returns the warm model for ref's spec, loading it when needed; the caller calls
// release when its request is done.
func (ms *models) acquire(ctx context.Context, ref api.ModelRef) (*loaded, func(), error) {
	keep, err := parseKeepAlive(ref.KeepAlive, ms.keepAlive)
	if err != nil {
		return nil, nil, badRequest(err)
	}
	k := modelKey{spec: ref.Spec.Normalize()}
	if k.files, err = identify(k.spec); err != nil {
		return nil, nil, err
	}
	for {
		ms.mu.Lock()
		if ms.closed {
			ms.mu.Unlock()
			return nil, nil, errors.New("the server is shutting down")
		}
		if l, ok := ms.byKey[k]; ok {
			l.refs++
			l.keep = keep
			if l.timer != nil {
				l.timer.Stop()
				l.timer = nil
			}
			ms.mu.Unlock()
			return l, func() { ms.release(l) }, nil
		}
		if c, ok := ms.loading[k]; ok {
			ms.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
			if c.err != nil {
				return nil, nil, c.err
			}
			continue // the model is in byKey now (or already unloaded again: load it anew)
		}
		c := &loadCall{done: make(chan struct{})}
		ms.loading[k] = c
		ms.mu.Unlock()

		// The load goes on when its client leaves: it is the expensive part, and the model
		// is then warm for the next request (the keep-alive unloads it if none comes).
		c.l, c.err = ms.load(context.WithoutCancel(ctx), k)
		if c.err == nil {
			if now, _ := identify(k.spec); now != k.files {
				c.err = errors.Join(statusError{http.StatusConflict, fmt.Errorf("model %s changed while it loaded; send the request again", k.spec.Model)}, c.l.m.Close())
			}
		}
		ms.mu.Lock()
		delete(ms.loading, k)
		var stale []*loaded
		if c.err == nil {
			c.l.refs, c.l.keep = 1, keep
			ms.byKey[k] = c.l
			stale = ms.supersededLocked(k)
		}
		ms.mu.Unlock()
		close(c.done)
		for _, old := range stale {
			old.m.Close()
		}
		if c.err == nil {
			ms.trim() // the prediction may have been low: the model just loaded pushes out idle ones
		}
		if c.err != nil {
			return nil, nil, c.err
		}
		l := c.l
		return l, func() { ms.release(l) }, nil
	}
}

// load opens the model after making room for it under the memory bound. Its footprint is
// the resident set's growth across the load, and then across its first forward (measuring.go):
// ONNX Runtime allocates most of a model's working memory when it first runs, and weights
// mapped from disk count only once touched.
func (ms *models) load(ctx context.Context, k modelKey) (*loaded, error) {
	ms.loadMu.Lock()
	defer ms.loadMu.Unlock()
	pred := ms.predicted(k)
	if ms.maxBytes > 0 && pred > ms.maxBytes {
		return nil, fmt.Errorf("%w: model %s needs about %s, more than the server's --max-memory %s; raise it", ErrModelTooLarge, k.spec.Model, human(pred), human(ms.maxBytes))
	}
	if err := ms.makeRoom(pred); err != nil {
		return nil, err
	}
	o := options(ms.base, k.spec)
	if ms.maxBytes > 0 && o.CacheBytes <= 0 {
		o.CacheBytes = cacheBudget(ms.maxBytes, pred)
	}
	before := ms.rss()
	m, err := ms.open(ctx, o)
	if err != nil {
		return nil, err
	}
	grew := max(ms.rss()-before, 0)
	now := time.Now()
	l := &loaded{key: k, spec: k.spec, info: m.Info(), bytes: max(grew, pred), loadedAt: now, lastUsed: now}
	if sz, ok := m.(sizer); ok {
		l.bytes, l.m = sz.Bytes(), m
	} else {
		l.m = &measuring{Scorer: m, ms: ms, l: l, loadGrowth: grew}
	}
	l.batch = &batcher{m: l.m, max: ms.maxBatch}
	return l, nil
}

// makeRoom unloads idle models, least recently used first, until need more bytes fit under
// the bound beside what the process holds. It fails with ErrMemory when models in use, and
// the work of requests, fill the bound.
func (ms *models) makeRoom(need int64) error {
	if ms.maxBytes <= 0 {
		return nil
	}
	for {
		ms.mu.Lock()
		held := ms.heldLocked()
		if held+need <= ms.maxBytes {
			ms.mu.Unlock()
			return nil
		}
		victim := ms.idlestLocked()
		if victim == nil {
			busy := len(ms.byKey)
			ms.mu.Unlock()
			return fmt.Errorf("%w: %d model(s) in use and %d request(s) hold %s of the server's %s, and %s more is needed; try again when they finish, or raise --max-memory", ErrMemory, busy, ms.active, human(held), human(ms.maxBytes), human(need))
		}
		ms.removeLocked(victim)
		ms.mu.Unlock()
		victim.m.Close()
	}
}

// trim unloads idle models, least recently used first, while the process holds more than the
// bound: a model's feature cache grows as it works, and a first forward may show it larger
// than predicted.
func (ms *models) trim() {
	if ms.maxBytes <= 0 {
		return
	}
	for {
		ms.mu.Lock()
		victim := ms.idlestLocked()
		if victim == nil || ms.heldLocked() <= ms.maxBytes {
			ms.mu.Unlock()
			return
		}
		ms.removeLocked(victim)
		ms.wakeLocked()
		ms.mu.Unlock()
		victim.m.Close()
	}
}

// idlestLocked is the least recently used model no request holds; nil when all are in use.
func (ms *models) idlestLocked() *loaded {
	var victim *loaded
	for _, l := range ms.byKey {
		if l.refs == 0 && (victim == nil || l.lastUsed.Before(victim.lastUsed)) {
			victim = l
		}
	}
	return victim
}

// heldLocked is what the process holds under the bound: every model's footprint and feature
// cache, and the requests' work.
func (ms *models) heldLocked() int64 {
	n := ms.work
	for _, l := range ms.byKey {
		n += l.held()
	}
	return n
}

// supersededLocked unloads the models loaded from what k's files were before they changed:
// idle ones now (returned, for the caller to close outside the lock), busy ones when their
// last request ends.
func (ms *models) supersededLocked(k modelKey) []*loaded {
	var idle []*loaded
	for ok, l := range ms.byKey {
		if ok.spec != k.spec || ok.files == k.files {
			continue
		}
		if l.refs == 0 {
			ms.removeLocked(l)
			idle = append(idle, l)
		} else {
			l.stale = true
		}
	}
	return idle
}

func (ms *models) removeLocked(l *loaded) {
	if ms.byKey[l.key] == l {
		delete(ms.byKey, l.key)
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// release ends one request on l and arms its keep-alive when it was the last.
func (ms *models) release(l *loaded) {
	ms.mu.Lock()
	l.refs--
	l.lastUsed = time.Now()
	if l.refs > 0 || ms.closed {
		ms.mu.Unlock()
		return
	}
	ms.wakeLocked() // an idle model can make room for a waiting request
	switch {
	case l.keep == 0 || l.stale:
		ms.removeLocked(l)
		ms.mu.Unlock()
		l.m.Close()
		return
	case l.keep > 0:
		l.expires = l.lastUsed.Add(l.keep)
		l.timer = time.AfterFunc(l.keep, func() { ms.expire(l) })
	}
	ms.mu.Unlock()
	ms.trim()
}

// expire unloads l if it is still idle when its keep-alive runs out.
func (ms *models) expire(l *loaded) {
	ms.mu.Lock()
	if l.refs > 0 || ms.byKey[l.key] != l || time.Now().Before(l.expires) {
		ms.mu.Unlock()
		return
	}
	ms.removeLocked(l)
	ms.mu.Unlock()
	l.m.Close()
}

// list describes the loaded models, most recently used first.
func (ms *models) list() api.ModelsResponse {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	out := api.ModelsResponse{Models: []api.LoadedModel{}, MaxBytes: ms.maxBytes, WorkBytes: ms.work, Active: ms.active, Queued: len(ms.line),
		ResidentBytes: ms.rss()}
	for _, l := range ms.byKey {
		lm := api.LoadedModel{Spec: l.spec, KeepAlive: l.keep.String(), Name: l.info.Name, Family: l.info.Family, Device: l.info.Device,
			Bytes: l.held(), CacheBytes: l.m.Stats().CacheBytes, Measured: l.measured(), InUse: l.refs, LoadedAt: l.loadedAt, LastUsed: l.lastUsed}
		if l.refs == 0 && l.keep > 0 {
			e := l.expires
			lm.ExpiresAt = &e
		}
		out.Models = append(out.Models, lm)
		out.Bytes += lm.Bytes
	}
	sort.Slice(out.Models, func(i, j int) bool { return out.Models[i].LastUsed.After(out.Models[j].LastUsed) })
	return out
}

func (ms *models) count() int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return len(ms.byKey)
}

// close unloads every model; requests still running keep theirs until they end.
func (ms *models) close() error {
	ms.mu.Lock()
	ms.closed = true
	ms.wakeLocked()
	all := make([]*loaded, 0, len(ms.byKey))
	for _, l := range ms.byKey {
		all = append(all, l)
		ms.removeLocked(l)
	}
	ms.mu.Unlock()
	var errs []error
	for _, l := range all {
		errs = append(errs, l.m.Close())
	}
	return errors.Join(errs...)
}

func (ms *models) predicted(k modelKey) int64 {
	if ms.predict != nil {
		return ms.predict(k.spec)
	}
	ms.mu.Lock()
	n, ok := ms.sizes[k.weights()]
	ms.mu.Unlock()
	if ok {
		return n
	}
	return predictBytes(k.spec.Model)
}

// predictBytes guesses a model's memory before loading it from its size on disk (the
// weights dominate); names the store resolves, and the built-in model, predict nothing.
func predictBytes(model string) int64 {
	return engine.DiskBytes(model)
}

// residentBytes is the process's resident set size, from /proc/self/statm; 0 where there is none.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

func human(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d B", n)
}

// peek runs f on the warm model for spec, if there is one, without loading it or counting
// as a use (the keep-alive runs on); f runs under the registry's lock, so it must be quick.
func (ms *models) peek(spec api.Spec, f func(*loaded)) bool {
	k := modelKey{spec: spec.Normalize()}
	k.files, _ = identify(k.spec) // outside the lock: it reads the model's folder
	ms.mu.Lock()
	defer ms.mu.Unlock()
	l, ok := ms.byKey[k]
	if ok && !ms.closed {
		f(l)
	}
	return ok && !ms.closed
}
