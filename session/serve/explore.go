package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/diffsim/diffsim/session"
)

// The explorer's endpoints (/v1/info … /v1/stats): the calls of ui.Backend, one each.

// Info answers POST /v1/info.
func (s *Server) Info(ctx context.Context, req InfoRequest) (InfoResponse, error) {
	if err := modelPath(req.Spec); err != nil {
		return InfoResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.Spec)
	if err != nil {
		return InfoResponse{}, err
	}
	defer release()
	return infoResponse(l.info), nil
}

// Result answers POST /v1/result: the pair's features come through the batcher (shared with
// other clients' requests at t), then the session scores them as it does in-process.
func (s *Server) Result(ctx context.Context, req ResultRequest) (ResultResponse, error) {
	start := time.Now()
	l, a, b, release, err := s.pair(ctx, req.Spec, req.A, req.B)
	if err != nil {
		return ResultResponse{}, err
	}
	defer release()
	if err := checkLayer(l, req.Layer); err != nil {
		return ResultResponse{}, err
	}
	metric, err := explorerMetric(req.Metric)
	if err != nil {
		return ResultResponse{}, err
	}
	if err := l.batch.prefetch(ctx, req.T, a, b); err != nil {
		return ResultResponse{}, err
	}
	token := -1
	if req.Token != nil {
		if *req.Token < 0 {
			return ResultResponse{}, badf("token %d: want a token index from 0, or null for none", *req.Token)
		}
		token = *req.Token
	}
	r, err := l.m.Score(ctx, session.Request{A: a, B: b, Layer: req.Layer, T: req.T, Metric: metric, Token: token})
	if err != nil {
		return ResultResponse{}, err
	}
	out := resultResponse(r)
	out.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
	return out, nil
}

// Layers answers POST /v1/layers: one forward (batched) serves every layer.
func (s *Server) Layers(ctx context.Context, req LayersRequest) (LayersResponse, error) {
	l, a, b, release, err := s.pair(ctx, req.Spec, req.A, req.B)
	if err != nil {
		return LayersResponse{}, err
	}
	defer release()
	metric, err := explorerMetric(req.Metric)
	if err != nil {
		return LayersResponse{}, err
	}
	if err := l.batch.prefetch(ctx, req.T, a, b); err != nil {
		return LayersResponse{}, err
	}
	scores, err := l.m.LayerScores(ctx, a, b, req.T, metric)
	if err != nil {
		return LayersResponse{}, err
	}
	out := LayersResponse{Scores: make([]LayerScore, len(scores))}
	for i, sc := range scores {
		out.Scores[i] = LayerScore{Layer: sc.Layer, T: sc.T, Score: Float(sc.Score), Meaningless: sc.Meaningless}
	}
	return out, nil
}

// Prefetch answers POST /v1/prefetch.
func (s *Server) Prefetch(ctx context.Context, req PrefetchRequest) (PrefetchResponse, error) {
	l, a, b, release, err := s.pair(ctx, req.Spec, req.A, req.B)
	if err != nil {
		return PrefetchResponse{}, err
	}
	defer release()
	return PrefetchResponse{}, l.batch.prefetch(ctx, req.T, a, b)
}

// Cached answers POST /v1/cached; it reads no file.
func (s *Server) Cached(ctx context.Context, req CachedRequest) (CachedResponse, error) {
	if req.HashA == "" || req.HashB == "" {
		return CachedResponse{}, badf("hash_a and hash_b are required")
	}
	if err := modelPath(req.Spec); err != nil {
		return CachedResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.Spec)
	if err != nil {
		return CachedResponse{}, err
	}
	defer release()
	a, b := &session.Image{Hash: req.HashA}, &session.Image{Hash: req.HashB}
	return CachedResponse{Cached: l.m.Cached(a, b, req.T)}, nil
}

// Stats answers POST /v1/stats.
func (s *Server) Stats(ctx context.Context, req StatsRequest) (StatsResponse, error) {
	if err := modelPath(req.Spec); err != nil {
		return StatsResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.Spec)
	if err != nil {
		return StatsResponse{}, err
	}
	defer release()
	return statsResponse(l.m.Stats()), nil
}

// pair checks a request's images, acquires its model, admits the request and loads the
// images; the caller calls release when done.
func (s *Server) pair(ctx context.Context, spec Spec, ra, rb ImageRef) (*loaded, *session.Image, *session.Image, func(), error) {
	if err := errors.Join(needPath("a.path", ra.Path), needPath("b.path", rb.Path), modelPath(spec)); err != nil {
		return nil, nil, nil, nil, err
	}
	// Images the explorer asked about before are kept decoded (and counted); others are
	// checked before a model loads, as a score's are.
	var need int64
	sizes := map[ImageRef]int64{}
	for _, ref := range []ImageRef{ra, rb} {
		if _, ok := sizes[ref]; ok || s.imgs.has(ref) {
			continue
		}
		n, err := s.checkImages(ctx, ref.Path)
		if err != nil {
			return nil, nil, nil, nil, err
		}
		sizes[ref] = n
		need += n
	}
	l, release, err := s.ms.acquire(ctx, spec)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		release()
		return nil, nil, nil, nil, err
	}
	a, err := s.imgs.load(ctx, s.ms, l.m, ra, sizes[ra])
	if err != nil {
		done()
		release()
		return nil, nil, nil, nil, err
	}
	b, err := s.imgs.load(ctx, s.ms, l.m, rb, sizes[rb])
	if err != nil {
		done()
		release()
		return nil, nil, nil, nil, err
	}
	return l, a, b, func() { done(); release() }, nil
}

func checkLayer(l *loaded, layer int) error {
	if n := len(l.info.Layers); layer < 0 || layer >= n {
		return badf("layer %d is outside 0..%d", layer, n-1)
	}
	return nil
}

func explorerMetric(m string) (session.Metric, error) {
	switch session.Metric(m) {
	case "":
		return session.AAS, nil
	case session.AAS, session.Cosine, session.MSE:
		return session.Metric(m), nil
	}
	return "", badf("metric %q: want aas, cos or mse", m)
}

// statusConflict answers an image whose bytes changed since the client hashed them.
const statusConflict = http.StatusConflict

// imageCache keeps the last few images the explorer's calls decoded: an explorer asks about
// the same pair many times (every layer and t), and decoding a photo each time would cost more
// than scoring from cached features. Entries are keyed by path and the client's hash, so a
// file rewritten since is read again (and refused if it no longer has that hash). The images
// kept count against the server's memory bound.
type imageCache struct {
	mu   sync.Mutex
	imgs []cachedImage // most recently used last
}

type cachedImage struct {
	img  *session.Image
	free func() // gives its bytes back to the memory bound
}

// maxCachedImages is two explorers' pairs.
const maxCachedImages = 4

func (c *imageCache) has(ref ImageRef) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ci := range c.imgs {
		if ref.Hash != "" && ci.img.Path == ref.Path && ci.img.Hash == ref.Hash {
			return true
		}
	}
	return false
}

// load returns the image ref names, from the cache or read anew (size: what it takes, as
// checkImages measured it).
func (c *imageCache) load(ctx context.Context, ms *models, m Model, ref ImageRef, size int64) (*session.Image, error) {
	if ref.Hash != "" {
		c.mu.Lock()
		for i, ci := range c.imgs {
			if ci.img.Path == ref.Path && ci.img.Hash == ref.Hash {
				c.imgs = append(append(c.imgs[:i:i], c.imgs[i+1:]...), ci)
				c.mu.Unlock()
				return ci.img, nil
			}
		}
		c.mu.Unlock()
	}
	img, err := m.LoadContext(ctx, ref.Path)
	if err != nil {
		return nil, badRequest(err)
	}
	if ref.Hash == "" {
		return img, nil
	}
	if img.Hash != ref.Hash {
		return nil, statusError{statusConflict, fmt.Errorf("%s changed since the client read it (sha256 %.12s…, now %.12s…); open it again", ref.Path, ref.Hash, img.Hash)}
	}
	c.mu.Lock()
	if len(c.imgs) >= maxCachedImages {
		c.imgs[0].free()
		c.imgs = c.imgs[1:]
	}
	c.imgs = append(c.imgs, cachedImage{img: img, free: ms.hold(size)})
	c.mu.Unlock()
	return img, nil
}
