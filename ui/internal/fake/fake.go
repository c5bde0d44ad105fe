// Package fake provides a deterministic stand-in for the diffsim session, for the explorer's
// tests, benchmarks and the demo binary: scores are smooth functions of layer and timestep,
// maps are fixed patterns, and a network run can be made slow or made to fail on demand.
package fake

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // decode the sample photographs
	_ "image/png"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/diffsim/diffsim/api"
	"github.com/diffsim/diffsim/features/calibration"
	"github.com/diffsim/diffsim/features/schedule"
)

// Backend is a fake session. The zero value is not usable; use New.
type Backend struct {
	// Delay is the time a network run (one timestep of one pair) takes when its features
	// are not cached yet; cached requests answer at once.
	Delay time.Duration
	// Fail, when set, is asked before every Score and LayerScores: a non-nil error fails it.
	Fail func(t, layer int) error

	info     api.ModelInfo
	progress chan api.Progress

	mu     sync.Mutex
	cached map[string]bool // pair+t+conditioning whose features were computed
	calls  Calls
	cond   api.Conditioning
	conds  int // SetConditioning calls that succeeded
}

// Calls counts what the backend was asked to do.
type Calls struct {
	Load, Score, LayerScores, Prefetch, Forwards int
}

// New returns a fake model of eight layers shaped like Stable Diffusion's paper layers,
// including a text cross-attention layer whose score is meaningless.
func New() *Backend {
	mk := func(i int, short, name string, kind api.Kind, grid int, imageKV bool) api.Layer {
		return api.Layer{Index: i, Name: name, Short: short, Kind: kind, Heads: 8, KVHeads: 8, HeadDim: 40,
			Scale: 1 / math.Sqrt(40), ImageKV: imageKV, Group: strings.ToLower(strings.TrimRight(short, "012")),
			Tokens: grid * grid, GridH: grid, GridW: grid}
	}
	layers := []api.Layer{
		mk(0, "Down0", "down_blocks.0.attentions.1.transformer_blocks.0.attn1", api.SelfAttention, 16, true),
		mk(1, "", "down_blocks.0.attentions.1.transformer_blocks.0.attn2", api.CrossAttention, 16, false),
		mk(2, "Down1", "down_blocks.1.attentions.1.transformer_blocks.0.attn1", api.SelfAttention, 8, true),
		mk(3, "Down2", "down_blocks.2.attentions.1.transformer_blocks.0.attn1", api.SelfAttention, 4, true),
		mk(4, "Mid", "mid_block.attentions.0.transformer_blocks.0.attn1", api.SelfAttention, 2, true),
		mk(5, "Up0", "up_blocks.1.attentions.2.transformer_blocks.0.attn1", api.SelfAttention, 4, true),
		mk(6, "Up1", "up_blocks.2.attentions.2.transformer_blocks.0.attn1", api.SelfAttention, 8, true),
		mk(7, "Up2", "up_blocks.3.attentions.2.transformer_blocks.0.attn1", api.SelfAttention, 16, true),
	}
	return &Backend{
		info: api.ModelInfo{
			Name: "fake", Family: "diffusion", Description: "fake model for tests: scores are made up",
			Device: "cpu", Layers: layers, DefaultLayer: 5, Timesteps: true, DefaultT: 401, Size: 256, Seed: 2334,
			Caps: api.Capabilities{Prompt: true, CFG: true, Progress: true},
		},
		progress: make(chan api.Progress, 16),
		cached:   map[string]bool{},
	}
}

// WithoutTimesteps makes the fake a model without timesteps, like a ViT.
func (f *Backend) WithoutTimesteps() *Backend {
	f.info.Timesteps = false
	f.info.DefaultT = 0
	f.info.Family = "vit"
	f.info.Caps.Prompt, f.info.Caps.CFG = false, false
	return f
}

// Calls returns the counters so far.
func (f *Backend) Calls() Calls {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// Info describes the fake model.
func (f *Backend) Info() api.ModelInfo { return f.info }

// Progress reports network runs in progress.
func (f *Backend) Progress() <-chan api.Progress { return f.progress }

// Load reads and decodes an image file. A path "fake:NAME" gives a generated 64×64 image.
func (f *Backend) Load(path string) (*api.Image, error) {
	f.mu.Lock()
	f.calls.Load++
	f.mu.Unlock()
	if name, ok := strings.CutPrefix(path, "fake:"); ok {
		m := Pattern(name, 64, 64)
		h := sha256.Sum256([]byte(path))
		return &api.Image{Path: path, Hash: hex.EncodeToString(h[:]), W: 64, H: 64, Pixels: m}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("open %s: not a PNG or JPEG image: %w", path, err)
	}
	h := sha256.Sum256(data)
	b := m.Bounds()
	return &api.Image{Path: path, Hash: hex.EncodeToString(h[:]), W: b.Dx(), H: b.Dy(), Pixels: m}, nil
}

// Pattern is a deterministic test picture: diagonal colour bands seeded by name.
func Pattern(name string, w, h int) image.Image {
	var seed uint32
	for _, c := range name {
		seed = seed*31 + uint32(c)
	}
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			v := uint8((x*int(seed%7+1) + y*3) * 4)
			m.Set(x, y, color.RGBA{v, uint8(seed) + uint8(y*4), 255 - v, 255})
		}
	}
	return m
}

func (f *Backend) key(a, b *api.Image, t int) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return a.Hash + "/" + b.Hash + "/" + fmt.Sprint(t) + "/" + f.cond.String()
}

// Conditioning is the prompt scores use now.
func (f *Backend) Conditioning() api.Conditioning {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cond
}

// SetConditioning switches to c after Delay (the text encoder's run). A prompt containing
// "refuse" is refused with a usage error, as a real session refuses a prompt too long.
func (f *Backend) SetConditioning(ctx context.Context, c api.Conditioning) error {
	if f.Delay > 0 {
		timer := time.NewTimer(f.Delay)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
	}
	if strings.Contains(c.Prompt, "refuse") {
		return fmt.Errorf("prompt %q: %w (the fake refuses it)", c.Prompt, api.ErrUsage)
	}
	f.mu.Lock()
	f.cond = c
	f.conds++
	f.mu.Unlock()
	return nil
}

// CondShift is how much a prompt moves every fake score, so tests can tell results of
// one conditioning from another's.
func CondShift(c api.Conditioning) float64 {
	if c == (api.Conditioning{}) {
		return 0
	}
	return 0.02
}

// forward simulates the network run for (a, b, t) unless cached.
func (f *Backend) forward(ctx context.Context, a, b *api.Image, t int) (cached bool, err error) {
	k := f.key(a, b, t)
	f.mu.Lock()
	cached = f.cached[k]
	f.mu.Unlock()
	if cached {
		return true, nil
	}
	if f.Delay > 0 {
		select {
		case f.progress <- api.Progress{What: fmt.Sprintf("unet t=%d", t), Done: 0, Total: 1}:
		default:
		}
		timer := time.NewTimer(f.Delay)
		defer timer.Stop()
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer.C:
		}
	}
	f.mu.Lock()
	f.cached[k] = true
	f.calls.Forwards++
	f.mu.Unlock()
	return false, nil
}

// Cached reports whether (a, b, t) was computed.
func (f *Backend) Cached(a, b *api.Image, t int) bool {
	k := f.key(a, b, t)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cached[k]
}

// Prefetch computes the features of the images (taken in pairs, the last with itself when
// their number is odd) at t.
func (f *Backend) Prefetch(ctx context.Context, t int, imgs ...*api.Image) error {
	f.mu.Lock()
	f.calls.Prefetch++
	f.mu.Unlock()
	for i := 0; i < len(imgs); i += 2 {
		if _, err := f.forward(ctx, imgs[i], imgs[min(i+1, len(imgs)-1)], t); err != nil {
			return err
		}
	}
	return nil
}

// Resolve resolves a selection against the fake model.
func (f *Backend) Resolve(sel api.Selection) (api.Target, error) { return f.info.Resolve(sel) }

// Sweep scores a and b at each layer (nil: all) and t, one Score each.
func (f *Backend) Sweep(ctx context.Context, a, b *api.Image, layers, ts []int, m api.Metric, afterStep func()) (api.Sweep, error) {
	if layers == nil {
		for i := range f.info.Layers {
			layers = append(layers, i)
		}
	}
	sw := api.Sweep{ImageA: a.Path, ImageB: b.Path, Setup: api.SetupOf(f, m), Timesteps: ts}
	for _, li := range layers {
		l := f.info.Layers[li]
		sw.Layers = append(sw.Layers, api.SweepLayer{Index: li, Name: l.Name, Short: l.Short, Kind: string(l.Kind)})
		for _, t := range ts {
			r, err := f.Score(ctx, api.Request{A: a, B: b, Layer: li, T: t, Metric: m, Token: -1})
			if err != nil {
				return api.Sweep{}, err
			}
			sw.Scores = append(sw.Scores, api.RecordOf(f, r))
		}
	}
	for range ts {
		if afterStep != nil {
			afterStep()
		}
	}
	return sw, nil
}

// Rank scores each file against query, most similar first.
func (f *Backend) Rank(ctx context.Context, query *api.Image, files []string, layer, t int, m api.Metric, done func()) ([]api.Ranked, []api.Skipped, error) {
	var out []api.Ranked
	var skipped []api.Skipped
	for _, p := range files {
		img, err := f.Load(p)
		if err != nil {
			skipped = append(skipped, api.Skipped{Path: p, Error: err.Error()})
		} else {
			r, err := f.Score(ctx, api.Request{A: query, B: img, Layer: layer, T: t, Metric: m, Token: -1})
			if err != nil {
				return nil, nil, err
			}
			out = append(out, api.Ranked{Record: api.RecordOf(f, r)})
		}
		if done != nil {
			done()
		}
	}
	api.SortRanked(out, m.HigherIsMoreSimilar())
	return out, skipped, nil
}

// Close does nothing: the fake holds no runtime.
func (f *Backend) Close() error { return nil }

var _ api.Scorer = (*Backend)(nil)

// ScoreAt is the fake score of a layer at t under metric m: smooth in both.
func ScoreAt(layer, t int, m api.Metric) float64 {
	s := 0.55 + 0.3*math.Cos(float64(layer)*0.7+float64(t)/300)
	switch m {
	case api.Cosine:
		s *= 0.8
	case api.MSE:
		s = (1 - s) * 0.5
	}
	return s
}

// Score answers one request.
func (f *Backend) Score(ctx context.Context, r api.Request) (api.Result, error) {
	f.mu.Lock()
	f.calls.Score++
	f.mu.Unlock()
	start := time.Now()
	cond := f.Conditioning() // as a session does: the conditioning when the request starts
	if r.A == nil || r.B == nil {
		return api.Result{}, errors.New("fake: no images")
	}
	if r.Layer < 0 || r.Layer >= len(f.info.Layers) {
		return api.Result{}, fmt.Errorf("fake: no layer %d", r.Layer)
	}
	if f.Fail != nil {
		if err := f.Fail(r.T, r.Layer); err != nil {
			return api.Result{}, err
		}
	}
	cached, err := f.forward(ctx, r.A, r.B, r.T)
	if err != nil {
		return api.Result{}, err
	}
	l := f.info.Layers[r.Layer]
	s := ScoreAt(r.Layer, r.T, r.Metric) + CondShift(cond)
	res := api.Result{
		Req: r, Score: s, AtoB: s + 0.01, BtoA: s - 0.01, Metric: r.Metric,
		HigherIsBetter: r.Metric.HigherIsMoreSimilar(),
		FeatureCosine:  ScoreAt(r.Layer, r.T, api.Cosine), MSE: ScoreAt(r.Layer, r.T, api.MSE),
		Global: math.NaN(), Cached: cached,
		MapA: mapOf(l, func(x, y int) float32 {
			return float32(0.5 + 0.4*math.Sin(float64(x+r.T/50)*0.6)*math.Cos(float64(y)*0.5))
		}),
		MapB: mapOf(l, func(x, y int) float32 {
			return float32(0.5 + 0.4*math.Cos(float64(x)*0.5)*math.Sin(float64(y+r.Layer)*0.6))
		}),
	}
	if !l.ImageKV {
		res.Meaningless = "cross-attention on the text prompt: keys and values do not depend on the image"
		res.Score, res.AtoB, res.BtoA = 1, 1, 1
	}
	if r.Token >= 0 && r.Token < l.GridW*l.GridH {
		tx, ty := r.Token%l.GridW, r.Token/l.GridW
		res.AttnRow = mapOf(l, func(x, y int) float32 {
			d := float64((x-tx)*(x-tx) + (y-ty)*(y-ty))
			return float32(math.Exp(-d / 4))
		})
	}
	res.Elapsed = time.Since(start)
	return res, nil
}

func mapOf(l api.Layer, f func(x, y int) float32) api.Map {
	m := api.Map{W: l.GridW, H: l.GridH, Values: make([]float32, l.GridW*l.GridH)}
	for y := range l.GridH {
		for x := range l.GridW {
			m.Values[y*l.GridW+x] = f(x, y)
		}
	}
	return m
}

// LayerScores scores every layer at t (one network run).
func (f *Backend) LayerScores(ctx context.Context, a, b *api.Image, t int, m api.Metric) ([]api.LayerScore, error) {
	f.mu.Lock()
	f.calls.LayerScores++
	cond := f.cond
	f.mu.Unlock()
	if f.Fail != nil {
		if err := f.Fail(t, -1); err != nil {
			return nil, err
		}
	}
	if _, err := f.forward(ctx, a, b, t); err != nil {
		return nil, err
	}
	out := make([]api.LayerScore, len(f.info.Layers))
	for i, l := range f.info.Layers {
		out[i] = api.LayerScore{Layer: i, T: t, Score: ScoreAt(i, t, m) + CondShift(cond), Meaningless: !l.ImageKV}
		if !l.ImageKV {
			out[i].Score = 1
		}
	}
	return out, nil
}

// Stats reports the work done.
func (f *Backend) Stats() api.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return api.Stats{Forwards: f.calls.Forwards, CacheHits: f.calls.Score - f.calls.Forwards,
		CacheBytes: int64(len(f.cached)) << 20, CacheBudget: 1 << 30}
}

// NewSD returns a fake shaped like a full Stable Diffusion 1.5 U-Net at 256 px: its 16
// transformer blocks, each with a self-attention layer (attn1) and a text cross-attention
// layer (attn2, meaningless without an IP-Adapter): 32 layers, the paper's short names on
// the last block of each group.
func NewSD() *Backend {
	f := New()
	type block struct {
		path  string
		grid  int
		short string
	}
	var blocks []block
	for d, grid := range []int{32, 16, 8} {
		for a := range 2 {
			short := ""
			if a == 1 {
				short = fmt.Sprintf("Down%d", d)
			}
			blocks = append(blocks, block{fmt.Sprintf("down_blocks.%d.attentions.%d", d, a), grid, short})
		}
	}
	blocks = append(blocks, block{"mid_block.attentions.0", 4, "Mid"})
	for u, grid := range []int{8, 16, 32} {
		for a := range 3 {
			short := ""
			if a == 2 {
				short = fmt.Sprintf("Up%d", u)
			}
			blocks = append(blocks, block{fmt.Sprintf("up_blocks.%d.attentions.%d", u+1, a), grid, short})
		}
	}
	var layers []api.Layer
	def := 0
	for _, b := range blocks {
		for k, kind := range []api.Kind{api.SelfAttention, api.CrossAttention} {
			short := b.short
			if short != "" && k == 1 {
				short += ".x"
			}
			if short == "Up0" {
				def = len(layers)
			}
			group := strings.SplitN(b.path, "_", 2)[0]
			layers = append(layers, api.Layer{Index: len(layers),
				Name: fmt.Sprintf("%s.transformer_blocks.0.attn%d", b.path, k+1), Short: short, Kind: kind, Heads: 8, KVHeads: 8,
				HeadDim: 40, Scale: 1 / math.Sqrt(40), ImageKV: k == 0, Group: group,
				Tokens: b.grid * b.grid, GridH: b.grid, GridW: b.grid})
		}
	}
	f.info.Layers, f.info.DefaultLayer = layers, def
	return f
}

// WithBaseline gives the fake model its Baseline, as a session finds one for its model.
func (f *Backend) WithBaseline() *Backend {
	f.info.Baseline = f.Baseline()
	return f
}

// Baseline is a baseline for the fake model, as `diffsim baseline build` would make one:
// at each layer, timestep and metric, 21 unrelated pairs spread evenly around a mean a
// little less similar than the fake's own pair, which lands about three quarters up.
func (f *Backend) Baseline() *calibration.Baseline {
	ts := append(schedule.SweepTimesteps(), schedule.Timesteps-1)
	b := &calibration.Baseline{Version: calibration.Version, Key: "fakebaseline0123456789abcdef", Model: "fake",
		Size: f.info.Size, Seed: f.info.Seed, Source: "fake photos/", Images: 21, Pairs: 21, Timesteps: ts}
	for _, m := range api.Metrics {
		b.Metrics = append(b.Metrics, string(m))
	}
	for i, l := range f.info.Layers {
		b.Layers = append(b.Layers, l.Name)
		if !l.ImageKV {
			continue
		}
		for _, t := range ts {
			for _, m := range api.Metrics {
				s := ScoreAt(i, t, m)
				step, shift := 0.005, -0.075
				if !m.HigherIsMoreSimilar() {
					step, shift = -0.002, 0.03
				}
				xs := make([]float64, 21)
				for k := range xs {
					xs[k] = s + shift + step*float64(k)
				}
				b.Cells = append(b.Cells, calibration.NewCell(i, t, string(m), xs))
			}
		}
	}
	b.Sort()
	return b
}
