package serve

import (
	"context"
	"errors"
	"sync"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/session"
)

// Shared is the api.Scorer for explorers that run inside the server's own process (the SSH
// front, one per session): the same warm models, batcher and feature caches as the API's
// handlers, called directly instead of through the socket. Images are decoded once, by Load,
// and handed to the model as they are, so a session's pair is not read again for every layer
// and t (the socket's path-and-hash check guards a file read by two processes, which cannot
// differ here). The model is held only during a call, so the keep-alive and the memory bound
// treat a session as they treat a socket client.
type Shared struct {
	s    *Server
	ref  api.ModelRef
	info api.ModelInfo
	load func(name string) (*api.Image, error)

	mu    sync.Mutex
	stats api.Stats // the last counters, for when the model is not loaded
	// held are the images Load decoded last (most recent last), counted against the
	// server's memory bound while the session may still show them; Close gives them back.
	held   []heldImage
	closed bool
}

type heldImage struct {
	img  *api.Image
	free func()
}

// errSharedPrompt is why a shared explorer cannot switch prompts: every session uses the one
// model, loaded with one prompt. Short: the explorer's status line shows it.
var errSharedPrompt = errors.New("fixed: the model is shared by every session")

// Shared loads the model spec names (if it is not warm) and returns a scorer on it that reads
// images with load (nil: session.LoadImage within the server's limits, any path). The SSH front's load resolves names
// inside its images folder, so a session can open nothing else, through the open-pair key
// either.
func (s *Server) Shared(ctx context.Context, spec api.Spec, load func(name string) (*api.Image, error)) (*Shared, error) {
	if err := modelPath(spec); err != nil {
		return nil, err
	}
	ref := api.ModelRef{Spec: spec}
	l, release, err := s.ms.acquire(ctx, ref)
	if err != nil {
		return nil, err
	}
	defer release()
	info := l.info
	info.Caps.Served = true
	info.Caps.Progress = false
	if info.Caps.Prompt {
		info.Caps.PromptFixed = errSharedPrompt.Error()
	}
	if load == nil {
		load = func(path string) (*api.Image, error) {
			return session.LoadImage(context.Background(), path, s.cfg.Base.Images)
		}
	}
	return &Shared{s: s, ref: ref, info: info, load: load}, nil
}

// Info describes the model.
func (b *Shared) Info() api.ModelInfo { return b.info }

// Resolve resolves a selection against the model.
func (b *Shared) Resolve(sel api.Selection) (api.Target, error) { return b.info.Resolve(sel) }

// Load reads and decodes an image as the scorer's loader does. The decoded pixels count
// against the server's memory bound (as an HTTP explorer's kept images do) while they may
// be on the session's screen: the last maxCachedImages loaded, the pair shown and the one
// before it, until Close.
func (b *Shared) Load(name string) (*api.Image, error) {
	img, err := b.load(name)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return img, nil
	}
	if len(b.held) >= maxCachedImages {
		b.held[0].free()
		b.held = b.held[1:]
	}
	b.held = append(b.held, heldImage{img: img, free: b.s.ms.hold(decodedBytes(img))})
	return img, nil
}

// decodedBytes is what img's decoded pixels take, as imagefile accounts a file before
// decoding it.
func decodedBytes(img *api.Image) int64 {
	if img.Pixels == nil {
		return 0
	}
	b := img.Pixels.Bounds()
	return imagefile.Info{Width: b.Dx(), Height: b.Dy(), Model: img.Pixels.ColorModel()}.DecodedBytes()
}

// with runs f on the warm model, loading it again if the keep-alive unloaded it. The call is
// admitted as an API request is (it takes a turn among the requests computing, and waits in
// the same line), so SSH sessions and socket clients share the server alike.
func (b *Shared) with(ctx context.Context, f func(l *loaded) error) error {
	l, release, err := b.s.ms.acquire(ctx, b.ref)
	if err != nil {
		return err
	}
	defer release()
	done, err := b.s.ms.admit(ctx, 0)
	if err != nil {
		return err
	}
	defer done()
	return f(l)
}

// Score computes req's result; the pair's features come through the batcher, shared with
// every other client asking at the same t.
func (b *Shared) Score(ctx context.Context, req api.Request) (api.Result, error) {
	m, err := api.ParseMetric(string(req.Metric))
	if err != nil {
		return api.Result{Req: req}, err
	}
	req.Metric = m
	var res api.Result
	err = b.with(ctx, func(l *loaded) error {
		if err := l.info.CheckLayer(req.Layer); err != nil {
			return err
		}
		var err error
		res, _, err = l.score(ctx, req)
		return err
	})
	if err != nil {
		return api.Result{Req: req}, err
	}
	return res, nil
}

// Sweep scores the pair at layers × ts on the shared model.
func (b *Shared) Sweep(ctx context.Context, x, y *api.Image, layers, ts []int, m api.Metric, afterStep func()) (api.Sweep, error) {
	var sw api.Sweep
	err := b.with(ctx, func(l *loaded) error {
		var err error
		sw, err = l.m.Sweep(ctx, x, y, layers, ts, m, afterStep)
		return err
	})
	return sw, err
}

// errNoRank: ranking reads files by path, which a shared session's loader confines; the
// explorer does not rank.
var errNoRank = errors.New("rank is not offered to explorer sessions inside the server; use diffsim rank")

// Rank is not offered: see errNoRank.
func (b *Shared) Rank(context.Context, *api.Image, []string, int, int, api.Metric, func()) ([]api.Ranked, []api.Skipped, error) {
	return nil, nil, errNoRank
}

// LayerScores is every layer's score at t, from one (batched) forward.
func (b *Shared) LayerScores(ctx context.Context, x, y *api.Image, t int, m api.Metric) ([]api.LayerScore, error) {
	var out []api.LayerScore
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

// Prefetch computes the images' features at t through the batcher.
func (b *Shared) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	return b.with(ctx, func(l *loaded) error { return l.batch.prefetch(ctx, t, imgs...) })
}

// Cached says whether the pair's features at t are kept. It never loads the model: a
// session's status line asks twice a second, and an unloaded model has nothing cached.
func (b *Shared) Cached(x, y *api.Image, t int) bool {
	cached := false
	b.s.ms.peek(b.ref.Spec, func(l *loaded) { cached = l.m.Cached(x, y, t) })
	return cached
}

// Stats are the model's counters: every client's work, not only this session's. The last
// ones known when the model is not loaded (Stats never loads it).
func (b *Shared) Stats() api.Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.s.ms.peek(b.ref.Spec, func(l *loaded) { b.stats = l.m.Stats() })
	return b.stats
}

// Conditioning is the prompt the model was loaded with.
func (b *Shared) Conditioning() api.Conditioning { return b.ref.Conditioning() }

// SetConditioning refuses any conditioning but the one the model was loaded with
// (Caps.PromptFixed says why before anyone asks).
func (b *Shared) SetConditioning(_ context.Context, c api.Conditioning) error {
	if c == b.Conditioning() {
		return nil
	}
	return errSharedPrompt
}

// Close gives the session's images back to the memory bound. The model stays warm for the
// other sessions, until its keep-alive ends.
func (b *Shared) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.held {
		h.free()
	}
	b.held, b.closed = nil, true
	return nil
}

var _ api.Scorer = (*Shared)(nil)
