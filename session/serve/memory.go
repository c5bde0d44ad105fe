package serve

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/diffsim/diffsim/session"
)

// Defaults for the work the server admits.
const (
	// DefaultMaxActive requests compute at once: enough to fill two batched forwards.
	DefaultMaxActive = 2 * DefaultMaxBatch
	// DefaultMaxQueue requests may wait for room; the next is answered 503 with Retry-After.
	DefaultMaxQueue = 256
)

// ErrBusy means the queue of requests waiting for room is full: the client should retry
// after a while (the answer is a 503 with Retry-After), as ollama answers.
var ErrBusy = errors.New("the server is busy")

// ErrModelTooLarge means a model alone needs more memory than the server's bound.
var ErrModelTooLarge = errors.New("model too large for the memory bound")

// cacheBudget is each model's feature cache under a memory bound: a quarter of what the bound
// leaves beside the model, at least 8 MiB (a few pairs of a small model) and at most
// session.DefaultCacheBytes. The caches count against the bound as they fill.
func cacheBudget(maxBytes, model int64) int64 {
	return min(max((maxBytes-model)/4, 8<<20), session.DefaultCacheBytes)
}

// held is what a model holds now: its footprint and its feature cache. The caller holds ms.mu.
func (l *loaded) held() int64 { return l.bytes + l.m.Stats().CacheBytes }

// measured reports whether the model's footprint includes its first forward.
func (l *loaded) measured() bool {
	w, ok := l.m.(*measuring)
	return !ok || w.done.Load()
}

// wakeLocked tells the requests waiting for room to look again. The caller holds ms.mu.
func (ms *models) wakeLocked() {
	if ms.wake != nil {
		close(ms.wake)
	}
	ms.wake = make(chan struct{})
}

// admit lets a request compute once fewer than maxActive do and need bytes (its images)
// fit under the bound, unloading idle models to make room. Requests that cannot go at once
// wait in line, first come first served (so none starves behind later ones), at most maxQueue
// of them (beyond: ErrBusy); one that could never fit (nothing else would release memory)
// fails with ErrMemory at once. done ends the request's claim.
func (ms *models) admit(ctx context.Context, need int64) (done func(), err error) {
	me := new(int) // identity in line
	inLine := false
	ms.mu.Lock()
	defer func() {
		if inLine {
			ms.leaveLineLocked(me)
		}
		ms.mu.Unlock()
	}()
	for {
		if ms.closed {
			return nil, errors.New("the server is shutting down")
		}
		first := len(ms.line) == 0 || ms.line[0] == me
		fits := ms.maxBytes <= 0 || ms.heldLocked()+need <= ms.maxBytes
		if first && fits && ms.active < ms.maxActive {
			ms.active++
			ms.work += need
			var once atomic.Bool
			return func() {
				if once.Swap(true) {
					return
				}
				ms.mu.Lock()
				ms.active--
				ms.work -= need
				ms.wakeLocked()
				ms.mu.Unlock()
				ms.trim()
			}, nil
		}
		if first && !fits {
			if victim := ms.idlestLocked(); victim != nil {
				ms.removeLocked(victim)
				ms.mu.Unlock()
				victim.m.Close()
				ms.mu.Lock()
				continue
			}
			if ms.active == 0 {
				return nil, fmt.Errorf("%w: this request's images need %s, and the models in use hold %s of the server's %s; try again when they finish, or raise --max-memory", ErrMemory, human(need), human(ms.heldLocked()), human(ms.maxBytes))
			}
		}
		if !inLine {
			if len(ms.line) >= ms.maxQueue {
				return nil, fmt.Errorf("%w: %d requests are computing and %d waiting, the most it queues (--max-queue); retry shortly", ErrBusy, ms.active, len(ms.line))
			}
			ms.line = append(ms.line, me)
			inLine = true
			continue // first in an empty line: look again at once
		}
		if ms.wake == nil {
			ms.wake = make(chan struct{})
		}
		wake := ms.wake
		ms.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			ms.mu.Lock()
			return nil, ctx.Err()
		}
		ms.mu.Lock()
	}
}

// leaveLineLocked takes me out of the line and lets the next request look again.
func (ms *models) leaveLineLocked(me *int) {
	for i, w := range ms.line {
		if w == me {
			ms.line = append(ms.line[:i:i], ms.line[i+1:]...)
			break
		}
	}
	ms.wakeLocked()
}

// hold counts bytes kept beyond one request (the explorer's decoded images) against the bound,
// without waiting; the returned func gives them back.
func (ms *models) hold(n int64) func() {
	ms.mu.Lock()
	ms.work += n
	ms.mu.Unlock()
	var once atomic.Bool
	return func() {
		if once.Swap(true) {
			return
		}
		ms.mu.Lock()
		ms.work -= n
		ms.wakeLocked()
		ms.mu.Unlock()
	}
}
