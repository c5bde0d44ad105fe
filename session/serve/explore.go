package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/diffsim/diffsim/api"
)

// The explorer's endpoints (/v1/info … /v1/stats): the methods of api.Scorer that Remote
// calls, one each.

// Info answers POST /v1/info: the warm model's description, capabilities included.
func (s *Server) Info(ctx context.Context, req api.InfoRequest) (api.ModelInfo, error) {
	if err := modelPath(req.Spec); err != nil {
		return api.ModelInfo{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.ModelRef)
	if err != nil {
		return api.ModelInfo{}, err
	}
	defer release()
	return l.info, nil
}

// Result answers POST /v1/result: the pair's features come through the batcher (shared with
// other clients' requests at t), then the session scores them as it does in-process.
func (s *Server) Result(ctx context.Context, req api.ResultRequest) (api.ResultResponse, error) {
	start := time.Now()
	l, imgs, release, err := s.images(ctx, req.ModelRef, field{"a.path", req.A}, field{"b.path", req.B})
	if err != nil {
		return api.ResultResponse{}, err
	}
	defer release()
	if err := l.info.CheckLayer(req.Layer); err != nil {
		return api.ResultResponse{}, err
	}
	metric, err := api.ParseMetric(string(req.Metric))
	if err != nil {
		return api.ResultResponse{}, err
	}
	token := -1
	if req.Token != nil {
		if *req.Token < 0 {
			return api.ResultResponse{}, badf("token %d: want a token index from 0, or null for none", *req.Token)
		}
		token = *req.Token
	}
	r, _, err := l.score(ctx, api.Request{A: imgs[0], B: imgs[1], Layer: req.Layer, T: req.T, Metric: metric, Token: token})
	if err != nil {
		return api.ResultResponse{}, err
	}
	r.Elapsed = time.Since(start)
	return api.NewResultResponse(r), nil
}

// Layers answers POST /v1/layers: one forward (batched) serves every layer.
func (s *Server) Layers(ctx context.Context, req api.LayersRequest) (api.LayersResponse, error) {
	l, imgs, release, err := s.images(ctx, req.ModelRef, field{"a.path", req.A}, field{"b.path", req.B})
	if err != nil {
		return api.LayersResponse{}, err
	}
	defer release()
	metric, err := api.ParseMetric(string(req.Metric))
	if err != nil {
		return api.LayersResponse{}, err
	}
	if err := l.batch.prefetch(ctx, req.T, imgs...); err != nil {
		return api.LayersResponse{}, err
	}
	scores, err := l.m.LayerScores(ctx, imgs[0], imgs[1], req.T, metric)
	if err != nil {
		return api.LayersResponse{}, err
	}
	out := api.LayersResponse{Scores: make([]api.WireLayerScore, len(scores))}
	for i, sc := range scores {
		out.Scores[i] = api.WireLayerScore{Layer: sc.Layer, T: sc.T, Score: api.Float(sc.Score), Meaningless: sc.Meaningless}
	}
	return out, nil
}

// Prefetch answers POST /v1/prefetch: the images' missing features in one batched forward.
func (s *Server) Prefetch(ctx context.Context, req api.PrefetchRequest) (api.PrefetchResponse, error) {
	if len(req.Images) == 0 {
		return api.PrefetchResponse{}, badf("images is empty: name the images to compute")
	}
	fields := make([]field, len(req.Images))
	for i, ref := range req.Images {
		fields[i] = field{"images[].path", ref}
	}
	l, imgs, release, err := s.images(ctx, req.ModelRef, fields...)
	if err != nil {
		return api.PrefetchResponse{}, err
	}
	defer release()
	return api.PrefetchResponse{}, l.batch.prefetch(ctx, req.T, imgs...)
}

// Cached answers POST /v1/cached; it reads no file.
func (s *Server) Cached(ctx context.Context, req api.CachedRequest) (api.CachedResponse, error) {
	if req.HashA == "" || req.HashB == "" {
		return api.CachedResponse{}, badf("hash_a and hash_b are required")
	}
	if err := modelPath(req.Spec); err != nil {
		return api.CachedResponse{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.ModelRef)
	if err != nil {
		return api.CachedResponse{}, err
	}
	defer release()
	a, b := &api.Image{Hash: req.HashA}, &api.Image{Hash: req.HashB}
	return api.CachedResponse{Cached: l.m.Cached(a, b, req.T)}, nil
}

// Stats answers POST /v1/stats.
func (s *Server) Stats(ctx context.Context, req api.StatsRequest) (api.Stats, error) {
	if err := modelPath(req.Spec); err != nil {
		return api.Stats{}, err
	}
	l, release, err := s.ms.acquire(ctx, req.ModelRef)
	if err != nil {
		return api.Stats{}, err
	}
	defer release()
	return l.m.Stats(), nil
}

// field is an image of a request, and the name its errors give it.
type field struct {
	name string
	ref  api.ImageRef
}

// images checks a request's images, acquires its model, admits the request and loads the
// images; the caller calls release when done. Images the explorer asked about before are kept
// decoded (and counted against the memory bound); others are checked before a model loads, as
// a score's are.
func (s *Server) images(ctx context.Context, ref api.ModelRef, fields ...field) (*loaded, []*api.Image, func(), error) {
	errs := []error{modelPath(ref.Spec)}
	for _, f := range fields {
		errs = append(errs, needPath(f.name, f.ref.Path))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, nil, err
	}
	var need int64
	sizes := map[api.ImageRef]int64{}
	for _, f := range fields {
		if _, ok := sizes[f.ref]; ok || s.imgs.has(f.ref) {
			continue
		}
		n, err := s.checkImages(ctx, f.ref.Path)
		if err != nil {
			return nil, nil, nil, err
		}
		sizes[f.ref] = n
		need += n
	}
	l, release, err := s.ms.acquire(ctx, ref)
	if err != nil {
		return nil, nil, nil, err
	}
	done, err := s.ms.admit(ctx, need)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	imgs := make([]*api.Image, len(fields))
	for i, f := range fields {
		if imgs[i], err = s.imgs.load(ctx, s, f.ref, sizes[f.ref]); err != nil {
			done()
			release()
			return nil, nil, nil, err
		}
	}
	return l, imgs, func() { done(); release() }, nil
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
	img  *api.Image
	free func() // gives its bytes back to the memory bound
}

// maxCachedImages is two explorers' pairs.
const maxCachedImages = 4

func (c *imageCache) has(ref api.ImageRef) bool {
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
func (c *imageCache) load(ctx context.Context, s *Server, ref api.ImageRef, size int64) (*api.Image, error) {
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
	img, err := s.loadImage(ctx, ref.Path)
	if err != nil {
		return nil, err
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
	c.imgs = append(c.imgs, cachedImage{img: img, free: s.ms.hold(size)})
	c.mu.Unlock()
	return img, nil
}
