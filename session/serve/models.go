package serve

import (
	"context"
	"errors"
	"fmt"
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

// loaded is one warm model.
type loaded struct {
	spec     api.Spec // normalized: the cache key
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
}

type loadCall struct {
	done chan struct{}
	l    *loaded
	err  error
}

// models owns the warm models: loading (one at a time, so memory growth is measurable and
// peaks do not stack), sharing, keep-alive unloading and the memory bound.
type models struct {
	open      func(context.Context, session.Options) (api.Scorer, error)
	base      session.Options
	keepAlive time.Duration
	maxBytes  int64
	maxBatch  int
	rss       func() int64
	// predict guesses a model's memory before it loads; nil means what it took last time, or
	// its size on disk.
	predict func(api.Spec) int64

	loadMu  sync.Mutex // serialises loads
	mu      sync.Mutex
	byKey   map[api.Spec]*loaded
	loading map[api.Spec]*loadCall
	sizes   map[api.Spec]int64 // measured at each load, for the next prediction
	closed  bool
}

// acquire returns the warm model for ref's spec, loading it when needed; the caller calls
// release when its request is done.
func (ms *models) acquire(ctx context.Context, ref api.ModelRef) (*loaded, func(), error) {
	keep, err := parseKeepAlive(ref.KeepAlive, ms.keepAlive)
	if err != nil {
		return nil, nil, badRequest(err)
	}
	k := ref.Spec.Normalize()
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
			ms.mu.Lock()
			c.l.lastUsed = time.Now()
			ms.mu.Unlock()
		}
		ms.mu.Lock()
		delete(ms.loading, k)
		if c.err == nil {
			c.l.refs, c.l.keep = 1, keep
			ms.byKey[k] = c.l
		}
		ms.mu.Unlock()
		close(c.done)
		if c.err != nil {
			return nil, nil, c.err
		}
		l := c.l
		return l, func() { ms.release(l) }, nil
	}
}

// load opens the model after making room for it under the memory bound.
func (ms *models) load(ctx context.Context, k api.Spec) (*loaded, error) {
	ms.loadMu.Lock()
	defer ms.loadMu.Unlock()
	if err := ms.makeRoom(ms.predicted(k)); err != nil {
		return nil, err
	}
	before := ms.rss()
	m, err := ms.open(ctx, options(ms.base, k))
	if err != nil {
		return nil, err
	}
	n := ms.rss() - before
	if sz, ok := m.(sizer); ok {
		n = sz.Bytes()
	}
	ms.mu.Lock()
	ms.sizes[k] = max(n, 0)
	ms.mu.Unlock()
	now := time.Now()
	l := &loaded{spec: k, m: m, info: m.Info(), bytes: max(n, 0), loadedAt: now, lastUsed: now}
	l.batch = &batcher{m: m, max: ms.maxBatch}
	// The prediction may have been low: let the model just loaded push out idle ones.
	_ = ms.makeRoom(0, l.bytes)
	return l, nil
}

// makeRoom unloads idle models, least recently used first, until need more bytes fit under
// the bound beside the models loaded (plus extra already counted outside the map). It fails
// with ErrMemory only when models in use fill the bound; a single model larger than the bound
// still loads when nothing else is held.
func (ms *models) makeRoom(need int64, extra ...int64) error {
	if ms.maxBytes <= 0 {
		return nil
	}
	for _, e := range extra {
		need += e
	}
	for {
		ms.mu.Lock()
		var total int64
		var idle []*loaded
		busy := 0
		for _, l := range ms.byKey {
			total += l.bytes
			if l.refs == 0 {
				idle = append(idle, l)
			} else {
				busy++
			}
		}
		if total+need <= ms.maxBytes || total == 0 {
			ms.mu.Unlock()
			return nil
		}
		if len(idle) == 0 {
			ms.mu.Unlock()
			if len(extra) > 0 {
				return nil // already loaded: over the bound until a model is released
			}
			return fmt.Errorf("%w: %d model(s) in use hold %s of the server's %s; try again when they finish, or raise --max-memory", ErrMemory, busy, human(total), human(ms.maxBytes))
		}
		sort.Slice(idle, func(i, j int) bool { return idle[i].lastUsed.Before(idle[j].lastUsed) })
		victim := idle[0]
		ms.removeLocked(victim)
		ms.mu.Unlock()
		victim.m.Close()
	}
}

func (ms *models) removeLocked(l *loaded) {
	if ms.byKey[l.spec] == l {
		delete(ms.byKey, l.spec)
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
	switch {
	case l.keep == 0:
		ms.removeLocked(l)
		ms.mu.Unlock()
		l.m.Close()
		return
	case l.keep > 0:
		l.expires = l.lastUsed.Add(l.keep)
		l.timer = time.AfterFunc(l.keep, func() { ms.expire(l) })
	}
	ms.mu.Unlock()
}

// expire unloads l if it is still idle when its keep-alive runs out.
func (ms *models) expire(l *loaded) {
	ms.mu.Lock()
	if l.refs > 0 || ms.byKey[l.spec] != l || time.Now().Before(l.expires) {
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
	out := api.ModelsResponse{Models: []api.LoadedModel{}, MaxBytes: ms.maxBytes}
	for _, l := range ms.byKey {
		lm := api.LoadedModel{Spec: l.spec, KeepAlive: l.keep.String(), Name: l.info.Name, Family: l.info.Family, Device: l.info.Device,
			Bytes: l.bytes, InUse: l.refs, LoadedAt: l.loadedAt, LastUsed: l.lastUsed}
		if l.refs == 0 && l.keep > 0 {
			e := l.expires
			lm.ExpiresAt = &e
		}
		out.Models = append(out.Models, lm)
		out.Bytes += l.bytes
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

func (ms *models) predicted(k api.Spec) int64 {
	if ms.predict != nil {
		return ms.predict(k)
	}
	ms.mu.Lock()
	n, ok := ms.sizes[k]
	ms.mu.Unlock()
	if ok {
		return n
	}
	return predictBytes(k.Model)
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
	ms.mu.Lock()
	defer ms.mu.Unlock()
	l, ok := ms.byKey[spec.Normalize()]
	if ok && !ms.closed {
		f(l)
	}
	return ok && !ms.closed
}
