package serve

import (
	"context"
	"errors"
	"sync"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/session"
)

// SharedBackend is the explorer's backend for explorers that run inside the server's own
// process (the SSH front, one per session): the same warm models, batcher and feature caches
// as the API's handlers, called directly instead of through the socket. Images are decoded
// here once and handed to the model as they are, so a session's pair is not read again for
// every layer and t (the socket's path-and-hash check guards a file read by two processes,
// which cannot differ here). The model is held only during a call, so the keep-alive and the
// memory bound treat a session as they treat a socket client.
type SharedBackend struct {
	s    *Server
	spec Spec
	info session.ModelInfo
	// Label is what the explorer shows beside the device and in its status line (Served):
	// "served" unless set.
	Label string
	// LoadImage reads an image by the name the session gave (nil: features.LoadImage on the
	// path as it is). The SSH front resolves names inside its images folder here.
	LoadImage func(name string) (*session.Image, error)

	mu    sync.Mutex
	stats session.Stats // the last counters, for when the model is not loaded
}

// SharedBackend loads the model spec names (if it is not warm) and returns an explorer
// backend on it.
func (s *Server) SharedBackend(ctx context.Context, spec Spec) (*SharedBackend, error) {
	if err := modelPath(spec); err != nil {
		return nil, err
	}
	l, release, err := s.ms.acquire(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer release()
	return &SharedBackend{s: s, spec: spec, info: l.info}, nil
}

// Info describes the model.
func (b *SharedBackend) Info() session.ModelInfo { return b.info }

// Served says where the work runs, for the explorer's status line.
func (b *SharedBackend) Served() string {
	if b.Label != "" {
		return b.Label
	}
	return "served"
}

// ResolveLayer is session.ResolveLayer on the model.
func (b *SharedBackend) ResolveLayer(arg string) (int, error) {
	return session.ResolveLayer(b.info, arg)
}

// Load reads and decodes an image as a session does.
func (b *SharedBackend) Load(name string) (*session.Image, error) {
	if b.LoadImage != nil {
		return b.LoadImage(name)
	}
	img, hash, err := features.LoadImage(name)
	if err != nil {
		return nil, err
	}
	r := img.Bounds()
	return &session.Image{Path: name, Hash: hash, W: r.Dx(), H: r.Dy(), Pixels: img}, nil
}

// with runs f on the warm model, loading it again if the keep-alive unloaded it.
func (b *SharedBackend) with(ctx context.Context, f func(l *loaded) error) error {
	l, release, err := b.s.ms.acquire(ctx, b.spec)
	if err != nil {
		return err
	}
	defer release()
	return f(l)
}

// Score computes req's result; the pair's features come through the batcher, shared with
// every other client asking at the same t.
func (b *SharedBackend) Score(ctx context.Context, req session.Request) (session.Result, error) {
	if req.Metric == "" {
		req.Metric = session.AAS
	}
	var res session.Result
	err := b.with(ctx, func(l *loaded) error {
		if err := checkLayer(l, req.Layer); err != nil {
			return err
		}
		if err := l.batch.prefetch(ctx, req.T, req.A, req.B); err != nil {
			return err
		}
		var err error
		res, err = l.m.Score(ctx, req)
		return err
	})
	if err != nil {
		return session.Result{Req: req}, err
	}
	return res, nil
}

// LayerScores is every layer's score at t, from one (batched) forward.
func (b *SharedBackend) LayerScores(ctx context.Context, x, y *session.Image, t int, m session.Metric) ([]session.LayerScore, error) {
	var out []session.LayerScore
	err := b.with(ctx, func(l *loaded) error {
		if err := l.batch.prefetch(ctx, t, x, y); err != nil {
			return err
		}
		var err error
		out, err = l.m.LayerScores(ctx, x, y, t, m)
		return err
	})
	return out, err
}

// Prefetch computes the pair's features at t through the batcher.
func (b *SharedBackend) Prefetch(ctx context.Context, x, y *session.Image, t int) error {
	return b.with(ctx, func(l *loaded) error { return l.batch.prefetch(ctx, t, x, y) })
}

// Cached says whether the pair's features at t are kept. It never loads the model: a
// session's status line asks twice a second, and an unloaded model has nothing cached.
func (b *SharedBackend) Cached(x, y *session.Image, t int) bool {
	cached := false
	b.s.ms.peek(b.spec, func(l *loaded) { cached = l.m.Cached(x, y, t) })
	return cached
}

// Stats are the model's counters: every client's work, not only this session's. The last
// ones known when the model is not loaded (Stats never loads it).
func (b *SharedBackend) Stats() session.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.ms.peek(b.spec, func(l *loaded) { b.stats = l.m.Stats() })
	return b.stats
}

// Conditioning is the prompt the model was loaded with.
func (b *SharedBackend) Conditioning() features.Conditioning {
	return features.Conditioning{Prompt: b.spec.Prompt, CFG: b.spec.CFG}
}

// ConditioningFixed says why the prompt cannot change: the model is shared by every client.
func (b *SharedBackend) ConditioningFixed() error { return errServedPromptShared }

// SetConditioning refuses any conditioning but the one the model was loaded with.
func (b *SharedBackend) SetConditioning(_ context.Context, c features.Conditioning) error {
	if c == b.Conditioning() {
		return nil
	}
	return errServedPromptShared
}

// errServedPromptShared is ErrServedPrompt for a session inside the server, which has no
// --no-server to offer.
var errServedPromptShared = errors.New("fixed: the model is shared by every session")
