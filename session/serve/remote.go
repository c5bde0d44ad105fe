package serve

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/imagefile"
	"github.com/diffsim/diffsim/session"
	"github.com/diffsim/diffsim/session/baseline"
)

// Remote is the api.Scorer answered by a running diffsim serve: the model stays loaded there
// between commands and explorers, so a second one on the same model starts at once. Images
// are read here too (session.LoadImage), for their hash, the same errors as in-process, and
// the explorer's screen; the server reads them itself and checks the hash, so both key
// features alike. What it returns carries the paths as the caller gave them.
type Remote struct {
	client *api.Client
	ref    api.ModelRef
	info   api.ModelInfo
	// Images bounds the image files Load reads, as a local session's Options.Images does.
	Images imagefile.Limits

	mu    sync.Mutex
	stats api.Stats // the last counters the server answered with
}

// callTimeout bounds the calls without a context (Cached, Stats): the explorer asks them
// twice a second from a background command, and a server that stopped answering should cost
// a stale status line, not a stuck one.
const callTimeout = 2 * time.Second

// rankChunk is how many images one /v1/rank call of Rank carries: small enough for progress
// to move, large enough that the calls cost nothing beside the forwards.
const rankChunk = 16

// ErrServedPrompt is why a served scorer cannot switch prompts: the server's session is shared
// by every client and loaded with one prompt, and another prompt would load the model a
// second time (gigabytes, and seconds to minutes, for Stable Diffusion). The explorer is
// reopened with --prompt (and --cfg) for another prompt, or with --no-server to switch
// prompts in it. Short, because the explorer's status line shows it beside its counters.
var ErrServedPrompt = errors.New("fixed when served; use --no-server")

// OpenRemote asks the server for the model spec names, loading it there if it is not warm.
func OpenRemote(ctx context.Context, c *api.Client, spec api.Spec) (*Remote, error) {
	ref := api.ModelRef{Spec: spec}
	info, err := c.Info(ctx, api.InfoRequest{ModelRef: ref})
	if err != nil {
		return nil, err
	}
	info.Caps.Served = true
	info.Caps.Progress = false // the server reports none
	if info.Caps.Prompt {
		info.Caps.PromptFixed = ErrServedPrompt.Error()
	}
	// The baseline is found here, as a session finds its own (the server's records carry it
	// too, found the same way on the same machine).
	b, err := baseline.For(spec.Normalize(), info.Size)
	if err != nil {
		info.Notice = strings.TrimPrefix(info.Notice+"; ", "; ") + "scores not calibrated: " + err.Error()
	}
	info.Baseline = b
	return &Remote{client: c, ref: ref, info: info}, nil
}

// Info describes the model on the server.
func (r *Remote) Info() api.ModelInfo { return r.info }

// Resolve resolves a selection against the server's model, here.
func (r *Remote) Resolve(sel api.Selection) (api.Target, error) { return r.info.Resolve(sel) }

// Load reads and decodes path as a session does (the same hash, the same errors).
func (r *Remote) Load(path string) (*api.Image, error) {
	return session.LoadImage(context.Background(), path, r.Images)
}

func ref(img *api.Image) api.ImageRef { return api.ImageRef{Path: img.Path, Hash: img.Hash} }

// Score asks the server for req's result, maps included.
func (r *Remote) Score(ctx context.Context, req api.Request) (api.Result, error) {
	start := time.Now()
	m, err := api.ParseMetric(string(req.Metric))
	if err != nil {
		return api.Result{Req: req}, err
	}
	req.Metric = m // as a session fills it in, so the result's Req reads the same
	rr := api.ResultRequest{ModelRef: r.ref, A: ref(req.A), B: ref(req.B), Layer: req.Layer, T: req.T, Metric: req.Metric}
	if req.Token >= 0 {
		tok := req.Token
		rr.Token = &tok
	}
	ans, err := r.client.Result(ctx, rr)
	if err != nil {
		return api.Result{Req: req}, err
	}
	res := ans.Result(req)
	res.Elapsed = time.Since(start)
	return res, nil
}

// Sweep asks the server for one timestep at a time, so afterStep reports progress as a local
// sweep does; the records carry a's and b's paths as given.
func (r *Remote) Sweep(ctx context.Context, a, b *api.Image, layers, ts []int, m api.Metric, afterStep func()) (api.Sweep, error) {
	steps := [][]int{}
	for _, t := range ts {
		steps = append(steps, []int{t})
	}
	if !r.info.Timesteps || len(ts) == 0 {
		steps = [][]int{ts} // one call: the server ignores or defaults the timesteps
	}
	var parts []api.Sweep
	for _, st := range steps {
		sw, err := r.client.Sweep(ctx, api.SweepRequest{ModelRef: r.ref, Layers: layers, Timesteps: st, Metric: m, ImageA: a.Path, ImageB: b.Path})
		if err != nil {
			return api.Sweep{}, err
		}
		parts = append(parts, sw)
		if afterStep != nil {
			afterStep()
		}
	}
	out := parts[0]
	out.ImageA, out.ImageB = a.Path, b.Path
	if len(parts) > 1 {
		out.Timesteps = nil
		for _, p := range parts {
			out.Timesteps = append(out.Timesteps, p.Timesteps...)
		}
		// Each part is one column; a sweep is layer-major.
		out.Scores = nil
		for li := range out.Layers {
			for _, p := range parts {
				out.Scores = append(out.Scores, p.At(li, 0))
			}
		}
	}
	for i := range out.Scores {
		out.Scores[i].ImageA, out.Scores[i].ImageB = a.Path, b.Path
	}
	return out, nil
}

// Rank asks the server to rank files against query a chunk at a time (so done reports
// progress), then ranks the answers together; paths come back as given.
func (r *Remote) Rank(ctx context.Context, query *api.Image, files []string, layer, t int, m api.Metric, done func()) ([]api.Ranked, []api.Skipped, error) {
	given := map[string]string{api.Abs(query.Path): query.Path}
	for _, f := range files {
		given[api.Abs(f)] = f
	}
	typed := func(p string) string {
		if g, ok := given[p]; ok {
			return g
		}
		return p
	}
	sel := api.Selection{Layer: strconv.Itoa(layer), T: &t, Metric: m}
	var results []api.Ranked
	var skipped []api.Skipped
	for start := 0; start < len(files); start += rankChunk {
		chunk := files[start:min(start+rankChunk, len(files))]
		ans, err := r.client.Rank(ctx, api.RankRequest{ModelRef: r.ref, Selection: sel, Query: query.Path, Images: chunk})
		if err != nil {
			return nil, nil, err
		}
		for _, res := range ans.Results {
			res.ImageA, res.ImageB = query.Path, typed(res.ImageB)
			results = append(results, res)
		}
		for _, sk := range ans.Skipped {
			abs := sk.Path
			sk.Path = typed(abs)
			if rest, ok := strings.CutPrefix(sk.Error, abs); ok {
				sk.Error = sk.Path + rest
			}
			skipped = append(skipped, sk)
		}
		if done != nil {
			for range chunk {
				done()
			}
		}
	}
	api.SortRanked(results, m.HigherIsMoreSimilar())
	return results, skipped, nil
}

// LayerScores asks the server for every layer's score at t.
func (r *Remote) LayerScores(ctx context.Context, a, b *api.Image, t int, m api.Metric) ([]api.LayerScore, error) {
	ans, err := r.client.Layers(ctx, api.LayersRequest{ModelRef: r.ref, A: ref(a), B: ref(b), T: t, Metric: m})
	if err != nil {
		return nil, err
	}
	out := make([]api.LayerScore, len(ans.Scores))
	for i, s := range ans.Scores {
		out[i] = api.LayerScore{Layer: s.Layer, T: s.T, Score: float64(s.Score), Meaningless: s.Meaningless}
	}
	return out, nil
}

// Prefetch asks the server to compute the images' features at t, in one batch.
func (r *Remote) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	refs := make([]api.ImageRef, len(imgs))
	for i, img := range imgs {
		refs[i] = ref(img)
	}
	return r.client.Prefetch(ctx, api.PrefetchRequest{ModelRef: r.ref, Images: refs, T: t})
}

// Cached asks the server whether the pair's features at t are kept; false when it does not
// answer.
func (r *Remote) Cached(a, b *api.Image, t int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	ok, err := r.client.Cached(ctx, api.CachedRequest{ModelRef: r.ref, HashA: a.Hash, HashB: b.Hash, T: t})
	return err == nil && ok
}

// Stats are the server model's counters (every client's work, not only this one's); the last
// ones known when the server does not answer.
func (r *Remote) Stats() api.Stats {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	st, err := r.client.Stats(ctx, api.StatsRequest{ModelRef: r.ref})
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.stats = st
	}
	return r.stats
}

// Conditioning is the prompt the server's model was loaded with.
func (r *Remote) Conditioning() api.Conditioning { return r.ref.Conditioning() }

// SetConditioning refuses any conditioning but the one the model was loaded with
// (Caps.PromptFixed says why before anyone asks).
func (r *Remote) SetConditioning(_ context.Context, c api.Conditioning) error {
	if c == r.Conditioning() {
		return nil
	}
	return ErrServedPrompt
}

// Close does nothing: the model stays warm on the server for the next client, until its
// keep-alive ends.
func (r *Remote) Close() error { return nil }

var _ api.Scorer = (*Remote)(nil)
