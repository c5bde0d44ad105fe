package serve

import (
	"context"
	"sync"

	"github.com/diffsim/diffsim/api"
)

// batcher merges feature extractions of concurrent requests on one model: while a forward
// runs, requests for the same timestep queue into one group, and the group runs as one
// batched forward when the model is free. A session already shares a forward between callers
// asking for the same image; the batcher also shares it between different images.
type batcher struct {
	m   api.Scorer
	max int // images per forward; 0 = no bound

	mu      sync.Mutex
	running bool
	pending []*group
}

type group struct {
	t       int
	imgs    []*api.Image
	hashes  map[string]bool
	waiters int
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
}

// prefetch returns when the features of imgs at t are cached in the model (or failed), having
// run them together with whatever other requests queued for t meanwhile. Cancelling ctx
// withdraws this request; the forward is cancelled when no request waits for it any more.
func (b *batcher) prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	b.mu.Lock()
	g := b.join(t, imgs)
	g.waiters++
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		b.mu.Lock()
		g.waiters--
		if g.waiters == 0 {
			g.cancel()
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}

// join finds a queued group for t with room for imgs, or queues a new one.
func (b *batcher) join(t int, imgs []*api.Image) *group {
	for _, g := range b.pending {
		if g.t != t || g.ctx.Err() != nil { // a group all of whose requests left is dropped
			continue
		}
		add := 0
		for _, img := range imgs {
			if !g.hashes[img.Hash] {
				add++
			}
		}
		if b.max > 0 && len(g.imgs)+add > b.max && len(g.imgs) > 0 {
			continue
		}
		g.add(imgs)
		return g
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &group{t: t, hashes: map[string]bool{}, ctx: ctx, cancel: cancel, done: make(chan struct{})}
	g.add(imgs)
	b.pending = append(b.pending, g)
	return g
}

func (g *group) add(imgs []*api.Image) {
	for _, img := range imgs {
		if !g.hashes[img.Hash] {
			g.hashes[img.Hash] = true
			g.imgs = append(g.imgs, img)
		}
	}
}

// loop runs queued groups one at a time, oldest first, until none is left.
func (b *batcher) loop() {
	for {
		b.mu.Lock()
		if len(b.pending) == 0 {
			b.running = false
			b.mu.Unlock()
			return
		}
		g := b.pending[0]
		b.pending = b.pending[1:]
		b.mu.Unlock()
		if g.ctx.Err() != nil {
			g.err = g.ctx.Err()
		} else {
			g.err = b.m.Prefetch(g.ctx, g.t, g.imgs...)
		}
		g.cancel()
		close(g.done)
	}
}
