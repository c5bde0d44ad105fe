package serve

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/diffsim/diffsim/features"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/session"
)

// Backend is the explorer's backend (it has ui.Backend's methods) answered by a server: the
// model stays loaded there between explorers, so a second explorer on the same model opens at
// once. Images are decoded here too, for the screen; the server reads them itself and checks
// their hash against the one computed here, so both key features alike.
type Backend struct {
	client *Client
	spec   Spec
	info   session.ModelInfo
	// Images bounds the image files Load reads, as a local session's Options.Images does.
	Images imagefile.Limits

	mu    sync.Mutex
	stats session.Stats // the last counters the server answered with
}

// callTimeout bounds the calls without a context (Cached, Stats): the explorer asks them
// twice a second from a background command, and a server that stopped answering should cost
// a stale status line, not a stuck one.
const callTimeout = 2 * time.Second

// OpenBackend asks the server for the model spec names, loading it there if it is not warm.
func OpenBackend(ctx context.Context, c *Client, spec Spec) (*Backend, error) {
	r, err := c.Info(ctx, InfoRequest{Spec: spec})
	if err != nil {
		return nil, err
	}
	return &Backend{client: c, spec: spec, info: r.ModelInfo()}, nil
}

// Info describes the model on the server.
func (b *Backend) Info() session.ModelInfo { return b.info }

// Served says where the work runs, for the explorer's status line.
func (b *Backend) Served() string { return "served" }

// ResolveLayer is session.ResolveLayer on the server's model.
func (b *Backend) ResolveLayer(arg string) (int, error) { return session.ResolveLayer(b.info, arg) }

// Load reads and decodes path as a session does (the same hash, the same errors).
func (b *Backend) Load(path string) (*session.Image, error) {
	img, hash, err := imagefile.Load(context.Background(), path, b.Images)
	if err != nil {
		return nil, err
	}
	r := img.Bounds()
	return &session.Image{Path: path, Hash: hash, W: r.Dx(), H: r.Dy(), Pixels: img}, nil
}

func ref(img *session.Image) ImageRef { return ImageRef{Path: img.Path, Hash: img.Hash} }

// Score asks the server for req's result, maps included.
func (b *Backend) Score(ctx context.Context, req session.Request) (session.Result, error) {
	start := time.Now()
	if req.Metric == "" {
		req.Metric = session.AAS // as a session fills it in, so the result's Req reads the same
	}
	rr := ResultRequest{Spec: b.spec, A: ref(req.A), B: ref(req.B), Layer: req.Layer, T: req.T, Metric: string(req.Metric)}
	if req.Token >= 0 {
		tok := req.Token
		rr.Token = &tok
	}
	r, err := b.client.Result(ctx, rr)
	if err != nil {
		return session.Result{Req: req}, err
	}
	res, err := r.result(req)
	res.Elapsed = time.Since(start)
	return res, err
}

// LayerScores asks the server for every layer's score at t.
func (b *Backend) LayerScores(ctx context.Context, x, y *session.Image, t int, m session.Metric) ([]session.LayerScore, error) {
	r, err := b.client.Layers(ctx, LayersRequest{Spec: b.spec, A: ref(x), B: ref(y), T: t, Metric: string(m)})
	if err != nil {
		return nil, err
	}
	out := make([]session.LayerScore, len(r.Scores))
	for i, s := range r.Scores {
		out[i] = session.LayerScore{Layer: s.Layer, T: s.T, Score: float64(s.Score), Meaningless: s.Meaningless}
	}
	return out, nil
}

// Prefetch asks the server to compute the pair's features at t.
func (b *Backend) Prefetch(ctx context.Context, x, y *session.Image, t int) error {
	return b.client.Prefetch(ctx, PrefetchRequest{Spec: b.spec, A: ref(x), B: ref(y), T: t})
}

// Cached asks the server whether the pair's features at t are kept; false when it does not
// answer.
func (b *Backend) Cached(x, y *session.Image, t int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	ok, err := b.client.Cached(ctx, CachedRequest{Spec: b.spec, HashA: x.Hash, HashB: y.Hash, T: t})
	return err == nil && ok
}

// Stats are the server model's counters (every client's work, not only this explorer's); the
// last ones known when the server does not answer.
func (b *Backend) Stats() session.Stats {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	r, err := b.client.Stats(ctx, StatsRequest{Spec: b.spec})
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		b.stats = r.stats()
	}
	return b.stats
}

// Conditioning is the prompt the server's model was loaded with.
func (b *Backend) Conditioning() features.Conditioning {
	return features.Conditioning{Prompt: b.spec.Prompt, CFG: b.spec.CFG}
}

// ErrServedPrompt is why a served explorer cannot switch prompts: the server's session is
// shared by every client and loaded with one prompt, and another prompt would load the model
// a second time (gigabytes, and seconds to minutes, for Stable Diffusion). The explorer is
// reopened with --prompt (and --cfg) for another prompt, or with --no-server to switch
// prompts in it. Short, because the explorer's status line shows it beside its counters.
var ErrServedPrompt = errors.New("fixed when served; use --no-server")

// ConditioningFixed says why the prompt cannot change (the explorer says so when the prompt
// is asked for).
func (b *Backend) ConditioningFixed() error { return ErrServedPrompt }

// SetConditioning refuses any conditioning but the one the model was loaded with.
func (b *Backend) SetConditioning(_ context.Context, c features.Conditioning) error {
	if c == b.Conditioning() {
		return nil
	}
	return ErrServedPrompt
}
